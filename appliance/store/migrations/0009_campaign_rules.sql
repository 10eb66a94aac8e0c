-- A campaign's full calling rules: the days and holidays of its window (in each contact's zone),
-- pacing, the retry rule per outcome, the caller ID shown and how long to let a phone ring.
ALTER TABLE campaigns ADD COLUMN days TEXT NOT NULL DEFAULT 'mon,tue,wed,thu,fri';
ALTER TABLE campaigns ADD COLUMN holidays TEXT NOT NULL DEFAULT '';     -- 'YYYY-MM-DD,…'
ALTER TABLE campaigns ADD COLUMN calls_per_minute BIGINT NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN retry_policy TEXT NOT NULL DEFAULT ''; -- 'busy=3/10m,…'; '' none
ALTER TABLE campaigns ADD COLUMN caller_id TEXT;                       -- From user part; the trunk's when NULL
ALTER TABLE campaigns ADD COLUMN ring_timeout_s BIGINT NOT NULL DEFAULT 30;
CREATE INDEX campaign_attempts_claimed ON campaign_attempts (claimed_by, status);
