-- Portal accounts and web sessions (PostgreSQL). Keep in step with migrations/sqlite.
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY NOT NULL,
    subscriber_id TEXT NOT NULL REFERENCES subscribers(id),
    name TEXT NOT NULL,
    -- normalised (trimmed, lower-cased): the unique index makes it case-insensitive
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL, -- Argon2id, PHC string
    role TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'viewer')),
    created_at TIMESTAMP NOT NULL,
    -- failed logins in the window that began at failed_since (per-account login limit)
    failed_logins INTEGER NOT NULL DEFAULT 0,
    failed_since TIMESTAMP
);
CREATE UNIQUE INDEX IF NOT EXISTS accounts_email ON accounts(email);
CREATE INDEX IF NOT EXISTS accounts_subscriber ON accounts(subscriber_id);

-- Signed-in browsers: a subscriber's account (kind 'portal') or the vendor console
-- (kind 'console', no account). Only the SHA-256 of the cookie's token is stored.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('portal', 'console')),
    account_id TEXT REFERENCES accounts(id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    CHECK ((kind = 'portal') = (account_id IS NOT NULL))
);
CREATE INDEX web_sessions_account ON web_sessions(account_id);
