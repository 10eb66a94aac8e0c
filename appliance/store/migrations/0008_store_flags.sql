-- One-time work the store has done on this database, so it is not looked for again at every
-- open: `personal_data_sealed` once every row written before sealing existed is sealed.
CREATE TABLE store_flags (
    name   TEXT PRIMARY KEY,
    set_at BIGINT NOT NULL
);
