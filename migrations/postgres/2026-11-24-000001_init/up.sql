-- Core schema (PostgreSQL). Keep in step with migrations/sqlite.
CREATE TABLE offers (
    reference TEXT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    rank INTEGER NOT NULL,
    entitlements TEXT NOT NULL -- JSON array of strings
);
INSERT INTO offers (reference, title, rank, entitlements) VALUES
    ('registered', 'GLPI Network Registered', 0, '["marketplace"]'),
    ('basic', 'GLPI Network Basic', 1, '["marketplace","support"]'),
    ('standard', 'GLPI Network Standard', 2, '["marketplace","support","exclusive_plugins"]'),
    ('advanced', 'GLPI Network Advanced', 3, '["marketplace","support","exclusive_plugins","priority_support"]');

CREATE TABLE subscribers (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    email TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    subscriber_id TEXT NOT NULL REFERENCES subscribers(id),
    offer TEXT NOT NULL REFERENCES offers(reference),
    begin_date DATE NOT NULL,
    end_date DATE,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'cancelled')),
    trial BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX subscriptions_subscriber ON subscriptions(subscriber_id);

CREATE TABLE registration_keys (
    id TEXT PRIMARY KEY NOT NULL,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    replaced_by TEXT,
    ver BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX registration_keys_subscription ON registration_keys(subscription_id);

CREATE TABLE registrations (
    id TEXT PRIMARY KEY NOT NULL,
    key_id TEXT NOT NULL REFERENCES registration_keys(id),
    instance_url TEXT,
    instance_uid TEXT,
    bound_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    released_at TIMESTAMP,
    CHECK (instance_url IS NOT NULL OR instance_uid IS NOT NULL)
);
-- One unreleased registration per key, per canonical URL and per UID: the database decides races.
CREATE UNIQUE INDEX registrations_active_key_id ON registrations(key_id) WHERE released_at IS NULL;
CREATE UNIQUE INDEX registrations_active_instance_url ON registrations(instance_url)
    WHERE released_at IS NULL AND instance_url IS NOT NULL;
CREATE UNIQUE INDEX registrations_active_instance_uid ON registrations(instance_uid)
    WHERE released_at IS NULL AND instance_uid IS NOT NULL;
CREATE INDEX registrations_key ON registrations(key_id);

CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    key_id TEXT,
    key_prefix TEXT,
    instance_url TEXT,
    instance_uid TEXT,
    client_addr TEXT,
    detail TEXT
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    public_key BYTEA NOT NULL,
    private_key_enc BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP,
    active BOOLEAN NOT NULL
);
-- At most one active signing key: concurrent first starts cannot create two.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(active) WHERE active;
