//! A worker's own SQLite read connection: the database path of `/info` and validations without
//! the hop to the blocking pool.
//!
//! A key's state is one indexed `SELECT` that SQLite answers in tens of microseconds from its
//! page cache; handing it to the blocking pool costs two thread wake-ups and a pool check-out per
//! request, which on two cores cost more than the query (with the key cache off the pooled path
//! reached 0.74x of the naive baseline's `/info`). Each actix worker builds one [`Reader`] in the
//! app factory (a value, not a thread-local) and reads through it on its own thread.
//!
//! What may run here is bounded: only [`super::key_state::load_state_by_hash`], in autocommit (no read
//! transaction stays open, so checkpoints are never held back), with `busy_timeout = 0` so a
//! read never sleeps on a lock. Anything else (a write, a refusal to audit, a lock, an error, or
//! PostgreSQL, whose round trip would block the worker) answers `None`, and the caller takes the
//! pooled path, which is the complete one.

use super::batch::BatchReads;
use super::{AnyConnection, Backend, Db, key_state};
use crate::domain::binding::KeyState;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::cell::RefCell;

/// The SQLite file the workers read keys from, when `url` names one (not PostgreSQL, not an
/// in-memory database).
fn read_path(url: &str) -> Option<String> {
    match Backend::from_url(url) {
        Ok(b @ Backend::Sqlite(_)) if b.is_memory() => None,
        Ok(Backend::Sqlite(path)) => Some(path),
        _ => None,
    }
}

/// Whether the HTTP workers read keys themselves on a database at `url` (an SQLite file); on
/// PostgreSQL they go through the pool.
pub fn reads_on_workers(url: &str) -> bool {
    read_path(url).is_some()
}

/// One worker's read connection, opened on first use (see the module documentation), or on
/// PostgreSQL its handle on the batched reads ([`super::batch`]).
pub struct Reader {
    db: Db,
    path: Option<String>,
    conn: RefCell<Option<AnyConnection>>,
    batch: Option<BatchReads>,
}

/// Where a key's state was read from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPath {
    /// On the HTTP worker's own SQLite connection.
    Worker,
    /// In a batch of reads on PostgreSQL ([`super::batch`]).
    Batch,
    /// Through the pool (the complete path: binds, refusals, errors).
    Pool,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("path", &self.path).finish()
    }
}

impl Reader {
    /// A reader on `db` for the worker that calls it: it reads only from an SQLite file (for
    /// PostgreSQL and an in-memory database every call answers `None`). `url` is the one `db`
    /// was opened on.
    pub fn new(db: &Db, url: &str) -> Reader {
        Reader {
            db: db.clone(),
            path: read_path(url),
            conn: RefCell::new(None),
            batch: None,
        }
    }

    /// A reader that reads through `batch` (PostgreSQL).
    pub fn batched(db: &Db, batch: BatchReads) -> Reader {
        Reader {
            db: db.clone(),
            path: None,
            conn: RefCell::new(None),
            batch: Some(batch),
        }
    }

    /// Where the reads of [`Reader::state`] happen.
    pub fn path(&self) -> ReadPath {
        if self.batch.is_some() {
            ReadPath::Batch
        } else {
            ReadPath::Worker
        }
    }

    /// The key's state as the database holds it now, or `None` when it cannot be read here
    /// (an in-memory database, unknown key, locked, any error): the caller then reads it
    /// through the pool.
    pub async fn state(&self, key_hash: &str) -> Option<KeyState> {
        match &self.batch {
            Some(batch) => batch.state(key_hash).await,
            None => self.state_here(key_hash),
        }
    }

    /// [`Reader::state`] on the worker's own SQLite connection.
    fn state_here(&self, key_hash: &str) -> Option<KeyState> {
        let mut slot = self.conn.try_borrow_mut().ok()?;
        if slot.is_none() {
            *slot = Some(self.connect()?);
        }
        let conn = slot.as_mut()?;
        match key_state::load_state_by_hash(conn, key_hash) {
            Ok(state) => Some(state),
            Err(super::Error::UnknownKey) => None,
            Err(e) => {
                tracing::debug!(error = %e, "worker read failed; reading through the pool");
                // a broken connection is opened again on the next call
                *slot = None;
                None
            }
        }
    }

    /// Refreshes the binding's due `last_seen_at` in `state` and records it for the next batch
    /// (as [`key_state::refresh_last_seen`] does on a pooled connection); `false` when the
    /// record is full, so the refresh must be written by the pooled path.
    pub fn note_use(&self, state: &mut KeyState, now: chrono::NaiveDateTime) -> bool {
        match state.registration.as_mut() {
            Some(reg) if reg.last_seen_due(now) => {
                let recorded = self.db.record_last_seen(&reg.id, now);
                if recorded {
                    reg.last_seen_at = now;
                }
                recorded
            }
            _ => true,
        }
    }

    fn connect(&self) -> Option<AnyConnection> {
        let path = self.path.as_deref()?;
        let mut c = match diesel::SqliteConnection::establish(path) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "could not open a worker's read connection");
                return None;
            }
        };
        // never sleep on the event loop: a busy database sends the read to the pool instead
        c.batch_execute(
            "PRAGMA busy_timeout = 0; PRAGMA query_only = ON; PRAGMA cache_size = -1024;",
        )
        .ok()?;
        Some(AnyConnection::Sqlite(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::audit::Actor;
    use crate::testmode::fixtures::{Fixtures, load};
    use std::time::{Duration, Instant};

    const KEY: &str = "GN-READER-TEST-KEY";

    #[test]
    fn only_an_sqlite_file_is_read_on_the_workers() {
        assert!(reads_on_workers("sqlite:///var/lib/glpi-network/db.sqlite"));
        assert!(reads_on_workers("sqlite:data.db"));
        assert!(reads_on_workers("data.db"));
        assert!(!reads_on_workers("sqlite::memory:"));
        assert!(!reads_on_workers(":memory:"));
        assert!(!reads_on_workers("postgres://postgres@127.0.0.1/gn"));
        assert!(!reads_on_workers("postgresql://postgres@127.0.0.1/gn"));
        assert!(!reads_on_workers("mysql://root@127.0.0.1/gn"));
    }

    /// A migrated SQLite file with one key bound to an instance, every connection closed.
    fn database(dir: &std::path::Path) -> String {
        let url = dir.join("reader.db").to_str().unwrap().to_owned();
        let db = Db::open(&url, 2).unwrap();
        let fx: Fixtures = serde_json::from_value(serde_json::json!({
            "subscribers": [{"ref": "o", "name": "Reader Corp"}],
            "subscriptions": [{"ref": "s", "subscriber": "o", "offer": "basic"}],
            "keys": [{"key": KEY, "subscription": "s"}],
            "registrations": [{"key": KEY, "instance_url": "https://reader.example/glpi"}],
        }))
        .unwrap();
        let now = chrono::Utc::now().naive_utc();
        load(&mut db.get().unwrap(), &fx, now, &Actor::new("test", None)).unwrap();
        url
    }

    #[test]
    fn reads_a_state_and_never_waits_on_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let url = database(dir.path());
        let hash = glpi_network_shared::RegistrationKey::parse(KEY)
            .unwrap()
            .hash();
        // the reader's own database handle only records uses: an in-memory one will do
        let reader = Reader::new(&Db::open("sqlite::memory:", 1).unwrap(), &url);

        let state = reader.state_here(&hash).expect("a known key is read");
        assert_eq!(state.owner, "Reader Corp");
        assert!(
            reader.state_here("0".repeat(64).as_str()).is_none(),
            "unknown key"
        );

        // another connection holds the database locked: the read gives up at once (the pooled
        // path, with its busy timeout, takes over), then reads again once the lock is gone
        drop(reader);
        let mut locker = diesel::SqliteConnection::establish(&url).unwrap();
        locker
            .batch_execute("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
            .unwrap();
        let reader = Reader::new(&Db::open("sqlite::memory:", 1).unwrap(), &url);
        let started = Instant::now();
        assert!(
            reader.state_here(&hash).is_none(),
            "a locked database is not read"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the read did not sleep on the lock: {:?}",
            started.elapsed()
        );
        locker.batch_execute("COMMIT").unwrap();
        drop(locker);
        assert!(
            reader.state_here(&hash).is_some(),
            "read again after the lock"
        );
    }

    /// The flags of `.cargo/config.toml` reached the SQLite compiled in.
    #[test]
    fn the_bundled_sqlite_is_built_as_configured() {
        #[derive(diesel::QueryableByName)]
        struct CompileOption {
            #[diesel(sql_type = diesel::sql_types::Text)]
            compile_options: String,
        }
        let mut c = diesel::SqliteConnection::establish(":memory:").unwrap();
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<CompileOption>(&mut c)
            .unwrap()
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        assert!(options.iter().any(|o| o == "ENABLE_QPSG"), "{options:?}");
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "one page cache lock for every connection: {options:?}"
        );
    }

    #[test]
    fn reads_nothing_from_postgres_or_memory() {
        let db = Db::open("sqlite::memory:", 1).unwrap();
        assert!(
            Reader::new(&db, "sqlite::memory:")
                .state_here("00")
                .is_none()
        );
        assert!(
            Reader::new(&db, "postgres://nobody@127.0.0.1:1/x")
                .state_here("00")
                .is_none()
        );
    }
}
