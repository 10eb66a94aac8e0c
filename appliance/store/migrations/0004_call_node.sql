-- The box that carried each call, so that a box restarting after a crash closes only its own
-- calls left open when several boxes share one PostgreSQL database.
ALTER TABLE calls ADD COLUMN node TEXT;
