//! Storage: one binary, two backends (SQLite and PostgreSQL) through diesel's MultiConnection.
//!
//! The backend follows the URL scheme (`postgres://`/`postgresql://` or `sqlite://path`,
//! `sqlite::memory:`, or a bare file path). Connections are built by our own r2d2 manager so a
//! PostgreSQL URL never silently falls back to creating an SQLite file.

pub mod accounts;
pub mod audit;
pub mod catalogue;
pub mod console;
pub mod error;
pub mod keycache;
pub mod keys;
pub mod models;
pub mod offers;
pub mod page;
pub mod plugins;
pub mod registrations;
pub mod schema;
pub mod signing_keys;
pub mod subscribers;
pub mod subscriptions;

pub use error::{Error, Result};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

/// The connection type every query is written against.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// The connection pool.
pub type Pool = r2d2::Pool<Manager>;
/// A pooled connection.
pub type PooledConn = r2d2::PooledConnection<Manager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
/// Advisory lock id held while migrations run on PostgreSQL ("glpinet" in ASCII).
const MIGRATION_LOCK: i64 = 0x0067_6c70_696e_6574;

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Postgres(String),
    Sqlite(String),
}

impl Backend {
    /// Picks the backend from the URL scheme.
    pub fn from_url(url: &str) -> anyhow::Result<Backend> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            anyhow::bail!("empty SQLite path in database URL");
        }
        if path.contains("://") {
            anyhow::bail!("unsupported database URL scheme (use postgres:// or sqlite://)");
        }
        Ok(Backend::Sqlite(path.to_owned()))
    }

    fn is_memory(&self) -> bool {
        matches!(self, Backend::Sqlite(p) if p == ":memory:")
    }
}

/// An r2d2 manager that builds the right backend and configures SQLite connections
/// (WAL, `foreign_keys`, `busy_timeout`).
#[derive(Debug)]
pub struct Manager {
    backend: Backend,
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        match &self.backend {
            Backend::Postgres(url) => diesel::PgConnection::establish(url)
                .map(AnyConnection::Postgresql)
                .map_err(r2d2::Error::ConnectionError),
            Backend::Sqlite(path) => {
                let mut c = diesel::SqliteConnection::establish(path)
                    .map_err(r2d2::Error::ConnectionError)?;
                c.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA cache_size = -1024;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(c))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// The most connections an SQLite pool holds.
pub const SQLITE_POOL_MAX: u32 = 8;

/// Opens a pool on `url`, checks the database answers (with the driver's real error), and runs
/// pending migrations.
pub fn open(url: &str, max_size: u32) -> anyhow::Result<Pool> {
    let pool = open_unmigrated(url, max_size)?;
    let applied = migrate(&mut *pool.get()?)?;
    if applied > 0 {
        tracing::info!(applied, "ran database migrations");
    }
    Ok(pool)
}

/// Opens a pool on `url` without running migrations (`glpi-network-server migrate`).
pub fn open_unmigrated(url: &str, max_size: u32) -> anyhow::Result<Pool> {
    let backend = Backend::from_url(url)?;
    if let Backend::Postgres(u) = &backend {
        // Surface the real libpq error (the pool would only say "timed out").
        diesel::PgConnection::establish(u)
            .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?;
    }
    if let Backend::Sqlite(path) = &backend
        && !backend.is_memory()
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let size = match &backend {
        b if b.is_memory() => 1,
        // SQLite has one writer (queued in-process, see `SQLITE_WRITER`) and reads are
        // microseconds: more connections only add page caches (2 MiB each) to the RSS.
        Backend::Sqlite(_) => max_size.clamp(1, SQLITE_POOL_MAX),
        Backend::Postgres(_) => max_size.max(1),
    };
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        // no `SELECT 1` on every check-out: a broken connection is detected by `has_broken`
        // and dropped after its first failure
        .test_on_check_out(false)
        .build(Manager { backend })?;
    Ok(pool)
}

/// Runs pending migrations (on PostgreSQL under an advisory lock, so several processes may
/// start together).
pub fn migrate(conn: &mut AnyConnection) -> anyhow::Result<usize> {
    let n = match conn {
        AnyConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?
            .len(),
        AnyConnection::Postgresql(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
            let res = c
                .run_pending_migrations(PG_MIGRATIONS)
                .map(|v| v.len())
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"));
            c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
            res?
        }
    };
    Ok(n)
}

thread_local! {
    /// Audit events recorded inside the current write transaction of this thread, appended to
    /// the chain just before it commits (see [`audit::record`]).
    static PENDING_AUDIT: std::cell::RefCell<Option<Vec<models::NewAuditEvent>>> =
        const { std::cell::RefCell::new(None) };
}

/// Queues an audit event in the current write transaction; `false` when there is none.
pub(crate) fn queue_audit(ev: &models::NewAuditEvent) -> bool {
    PENDING_AUDIT.with(|p| match p.borrow_mut().as_mut() {
        Some(list) => {
            list.push(ev.clone());
            true
        }
        None => false,
    })
}

/// What a write transaction may change, so the key-state cache ([`crate::db::keycache`]) drops
/// exactly what it must once the transaction ends.
#[derive(Debug, Clone, Copy)]
pub enum Touches<'a> {
    /// Anything (the safe default of [`write_txn`]): every cached state is dropped.
    Anything,
    /// Only the key with this hash (its row or its binding).
    Key(&'a str),
    /// Only the audit trail.
    AuditOnly,
}

#[derive(Default)]
struct TxnScope {
    all: bool,
    keys: Vec<String>,
}

impl TxnScope {
    fn add(&mut self, t: Touches<'_>) {
        match t {
            Touches::Anything => self.all = true,
            Touches::Key(h) => self.keys.push(h.to_owned()),
            Touches::AuditOnly => {}
        }
    }
}

thread_local! {
    /// What the current write transaction of this thread changes.
    static TXN_SCOPE: std::cell::RefCell<Option<TxnScope>> = const { std::cell::RefCell::new(None) };
}

/// Bumps the cache generations of the transaction that ends when it is dropped: after the
/// commit (or the rollback, where it costs only a few cache misses).
struct InvalidateOnEnd;

impl Drop for InvalidateOnEnd {
    fn drop(&mut self) {
        let Some(scope) = TXN_SCOPE.with(|s| s.borrow_mut().take()) else {
            return;
        };
        let gens = &crate::db::keycache::GENERATIONS;
        if scope.all {
            gens.invalidate_all();
        }
        for k in &scope.keys {
            gens.invalidate_key(k);
        }
    }
}

/// Serialises this process's SQLite write transactions. SQLite allows one writer at a time;
/// without this, concurrent writers wait in SQLite's busy handler, which sleeps with back-off
/// (up to 100 ms a sleep) while newcomers barge in: a queue here turns those tails into plain
/// waiting. Other processes are still kept out by SQLite's own lock and `busy_timeout`.
static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a write transaction that may change anything (see [`write_txn_touching`]).
pub fn write_txn<T, E: From<DieselError>>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E> {
    write_txn_touching(conn, Touches::Anything, f)
}

/// Runs `f` in a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so the write lock is
/// taken up front and concurrent writers wait on `busy_timeout` instead of failing on a lock
/// upgrade (and this process's writers queue on [`SQLITE_WRITER`] first). Called inside another
/// write transaction, `f` joins the outer one, so several operations (e.g. a fixture file) can
/// be all-or-nothing.
///
/// Audit events recorded by `f` are appended to the hash chain last, just before the commit:
/// the lock that serialises the chain is then always the last one a transaction takes, so it
/// cannot deadlock with row locks.
///
/// `touches` says which cached key states the transaction can change; they are invalidated
/// once it has ended.
pub fn write_txn_touching<T, E: From<DieselError>>(
    conn: &mut AnyConnection,
    touches: Touches<'_>,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E> {
    type Tm = <AnyConnection as Connection>::TransactionManager;
    let depth = Tm::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map_err(E::from)?;
    if depth.is_some() {
        TXN_SCOPE.with(|s| {
            if let Some(scope) = s.borrow_mut().as_mut() {
                scope.add(touches);
            }
        });
        return f(conn);
    }
    let _writer = match conn {
        AnyConnection::Sqlite(c) => {
            let guard = SQLITE_WRITER
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
            Some(guard)
        }
        AnyConnection::Postgresql(c) => {
            AnsiTransactionManager::begin_transaction(c)?;
            None
        }
    };
    let mut scope = TxnScope::default();
    scope.add(touches);
    TXN_SCOPE.with(|s| *s.borrow_mut() = Some(scope));
    let _invalidate = InvalidateOnEnd;
    PENDING_AUDIT.with(|p| *p.borrow_mut() = Some(Vec::new()));
    let result = f(conn);
    let pending = PENDING_AUDIT
        .with(|p| p.borrow_mut().take())
        .unwrap_or_default();
    let result = result.and_then(|v| {
        audit::append_chained(conn, &pending)
            .map(|()| v)
            .map_err(E::from)
    });
    match result {
        Ok(v) => match Tm::commit_transaction(conn) {
            Ok(()) => Ok(v),
            Err(e) => {
                let _ = Tm::rollback_transaction(conn);
                Err(e.into())
            }
        },
        Err(e) => {
            Tm::rollback_transaction(conn)?;
            Err(e)
        }
    }
}

/// Which unique index a violation hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueHit {
    RegistrationKey,
    RegistrationUrl,
    RegistrationUid,
    KeyHash,
    Other,
}

/// Classifies a unique violation by the index or column it names (PostgreSQL reports the
/// index name, SQLite the columns; both contain the column name).
pub fn unique_violation(e: &DieselError) -> Option<UniqueHit> {
    let DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = e else {
        return None;
    };
    let text = format!(
        "{} {}",
        info.message(),
        info.constraint_name().unwrap_or("")
    );
    Some(if text.contains("instance_url") {
        UniqueHit::RegistrationUrl
    } else if text.contains("instance_uid") {
        UniqueHit::RegistrationUid
    } else if text.contains("key_hash") {
        UniqueHit::KeyHash
    } else if text.contains("key_id") {
        UniqueHit::RegistrationKey
    } else {
        UniqueHit::Other
    })
}

/// Whether the database answers (for `/readyz`).
pub fn ping(conn: &mut AnyConnection) -> Result<()> {
    Ok(conn.batch_execute("SELECT 1")?)
}
