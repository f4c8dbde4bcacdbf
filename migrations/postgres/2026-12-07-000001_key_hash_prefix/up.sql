-- Kept in step with migrations/sqlite/2026-12-07-000001_key_hash_prefix, which adds an index
-- of the key hash's first 16 hex digits for SQLite's page cache. PostgreSQL's shared buffers
-- hold the key_hash index whole, and its read (db/key_state.rs) uses that index: nothing to do.
SELECT 1;
