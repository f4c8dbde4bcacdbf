-- Plugin licenses, enrollment keys and invitation keys (DESIGN §11) (SQLite). Keep in step with
-- migrations/postgres. Every kind stores only its key's hash and display prefix.

-- A catalogue plugin's commercial terms (a row only for plugins that have some).
CREATE TABLE plugin_terms (
    plugin_key TEXT PRIMARY KEY NOT NULL REFERENCES plugins(key) ON DELETE CASCADE,
    commercial BOOLEAN NOT NULL DEFAULT FALSE,
    license_term_days INTEGER,
    price TEXT
);

-- A license binds to one instance (URL, UID or both) on its own row: activation is a
-- conditional update, so two instances racing for one license cannot both win.
CREATE TABLE licenses (
    id TEXT PRIMARY KEY NOT NULL,
    subscriber_id TEXT NOT NULL REFERENCES subscribers(id),
    plugin_key TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    instance_url TEXT,
    instance_uid TEXT,
    activated_at TIMESTAMP,
    ver BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX licenses_key_hash ON licenses(key_hash);
CREATE INDEX licenses_subscriber ON licenses(subscriber_id);
CREATE INDEX licenses_plugin_uid ON licenses(plugin_key, instance_uid);

-- uses never exceeds max_uses (0 = unlimited): a use is taken by
-- UPDATE ... SET uses = uses + 1 WHERE id = ? AND (max_uses = 0 OR uses < max_uses).
CREATE TABLE enrollment_keys (
    id TEXT PRIMARY KEY NOT NULL,
    subscriber_id TEXT NOT NULL REFERENCES subscribers(id),
    entity TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    max_uses INTEGER NOT NULL CHECK (max_uses >= 0),
    uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    ver BIGINT NOT NULL DEFAULT 1,
    CHECK (max_uses = 0 OR uses <= max_uses)
);
CREATE UNIQUE INDEX enrollment_keys_key_hash ON enrollment_keys(key_hash);
CREATE INDEX enrollment_keys_subscriber ON enrollment_keys(subscriber_id);

CREATE TABLE enrollments (
    id TEXT PRIMARY KEY NOT NULL,
    enrollment_key_id TEXT NOT NULL REFERENCES enrollment_keys(id),
    agent_id TEXT NOT NULL,
    hostname TEXT,
    mac TEXT,
    enrolled_at TIMESTAMP NOT NULL,
    released_at TIMESTAMP
);
-- one live enrollment per agent and key, whatever the concurrency
CREATE UNIQUE INDEX enrollments_live_agent ON enrollments(enrollment_key_id, agent_id)
    WHERE released_at IS NULL;

CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    subscriber_id TEXT NOT NULL REFERENCES subscribers(id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'viewer')),
    key_hash TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    max_uses INTEGER NOT NULL CHECK (max_uses >= 0),
    uses INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    ver BIGINT NOT NULL DEFAULT 1,
    CHECK (max_uses = 0 OR uses <= max_uses)
);
CREATE UNIQUE INDEX invitations_key_hash ON invitations(key_hash);
CREATE INDEX invitations_subscriber ON invitations(subscriber_id);

-- Portal accounts, as the portal's migration creates them (skipped when it ran first).
-- An account created by an API redemption without a password has password_hash '!', which
-- no password matches.
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY NOT NULL,
    subscriber_id TEXT NOT NULL REFERENCES subscribers(id),
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'viewer')),
    created_at TIMESTAMP NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    failed_since TIMESTAMP
);
CREATE UNIQUE INDEX IF NOT EXISTS accounts_email ON accounts(email);
CREATE INDEX IF NOT EXISTS accounts_subscriber ON accounts(subscriber_id);
