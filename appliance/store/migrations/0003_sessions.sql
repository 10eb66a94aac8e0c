-- Browser sessions of the admin UI. Apart from api_tokens because they live differently: created
-- by a login, ended by a logout or a short expiry, never named or listed. As for API tokens, only
-- the SHA-256 digest of the cookie's token is stored, so a copy of the database opens no session.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
