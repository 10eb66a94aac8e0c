-- A blacklisting for abuse lasts a while, longer for each repeat offence (issue: the blacklist
-- as a weapon). NULL: until an operator removes it (entries made before this migration).
ALTER TABLE blacklist ADD COLUMN expires_at BIGINT;
ALTER TABLE blacklist ADD COLUMN offences INTEGER NOT NULL DEFAULT 1;
