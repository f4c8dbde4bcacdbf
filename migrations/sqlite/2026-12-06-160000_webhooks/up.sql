-- Webhooks (DESIGN §12) (sqlite). Keep in step with migrations/postgres.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    -- JSON array of event types, or ["*"]
    events TEXT NOT NULL,
    description TEXT,
    -- the signing secret's bytes, sealed with the master key (associated data: the id)
    secret_enc BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- The outbox: one row per event, written in the transaction of the change it reports (only
-- when some webhook takes its type). seq is the event order.
CREATE TABLE webhook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- the request body, exactly as sent
    body TEXT NOT NULL
);

-- One row per (webhook, event): its state and retry schedule.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_seq BIGINT NOT NULL REFERENCES webhook_events(seq),
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    -- due time on the server's clock (test mode's clock included); null once settled
    next_attempt_at TIMESTAMP,
    -- a process attempting it holds it until then (real clock), so no other process does
    lease_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_order ON webhook_deliveries(webhook_id, event_seq);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(status, next_attempt_at);
