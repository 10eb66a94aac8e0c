-- The audit log as a hash chain (issue: a tamper-evident audit): each entry carries its place in
-- the chain and the SHA-256 of itself and its predecessor, so an edited, inserted or deleted row
-- breaks `switchboard audit verify`. Entries made before this migration are chained once, in
-- the order they were made, when the store next opens.
ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
