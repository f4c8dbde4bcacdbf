-- The key-state read's index (SQLite): the first 16 hex digits (64 bits) of a registration
-- key's hash. The UNIQUE index on the whole hash (64 characters) is four levels deep at
-- 1,000,000 keys, and its ~370 inner pages do not stay in a connection's 1 MiB page cache, so
-- a lookup read two pages from the file; this one is a quarter of its size, three levels deep,
-- and its inner pages stay cached. The read compares the whole hash on the row it finds
-- (db/key_state.rs). PostgreSQL keeps its own index on key_hash: its shared buffers hold it.
CREATE INDEX registration_keys_hash_prefix ON registration_keys(substr(key_hash, 1, 16));
