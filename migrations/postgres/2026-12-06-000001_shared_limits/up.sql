-- Rate-limit counters shared by every server process (DESIGN §9): one row per
-- (kind, subject, window start), incremented by one atomic conditional upsert.
CREATE TABLE rate_limits (
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (kind, subject, window_start)
);
CREATE INDEX rate_limits_window ON rate_limits(window_start);

-- Identical refusals within a minute are one audit event with a count (outside the hash chain).
ALTER TABLE audit_events ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
CREATE INDEX audit_events_key_id ON audit_events(key_id, id);

-- A signing key derived from test mode's --signing-seed (its private half comes from a public
-- string): it never signs outside test mode.
ALTER TABLE signing_keys ADD COLUMN seeded BOOLEAN NOT NULL DEFAULT FALSE;
