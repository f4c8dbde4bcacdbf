ALTER TABLE signing_keys DROP COLUMN seeded;
DROP INDEX audit_events_key_id;
ALTER TABLE audit_events DROP COLUMN count;
DROP TABLE rate_limits;
