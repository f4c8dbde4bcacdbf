//! Storage: one binary, two backends (SQLite and PostgreSQL) through diesel's MultiConnection.
//!
//! The backend follows the URL scheme (`postgres://`/`postgresql://` or `sqlite://path`,
//! `sqlite::memory:`, or a bare file path). Connections are built by our own r2d2 manager so a
//! PostgreSQL URL never silently falls back to creating an SQLite file.

pub mod accounts;
pub mod audit;
pub mod batch;
pub mod catalogue;
pub mod console;
pub mod enrollments;
pub mod error;
pub mod invitations;
pub mod key_state;
pub mod keycache;
pub mod keys;
pub mod kinds;
pub mod last_seen;
pub mod licenses;
pub mod limits;
pub mod models;
pub mod notify;
pub mod offers;
pub mod outage;
pub mod page;
pub mod plugin_terms;
pub mod plugins;
pub mod read_only;
pub mod reader;
pub mod refusals;
pub mod registrations;
pub mod schema;
pub mod sealed;
pub mod signing_keys;
pub mod sqltime;
pub mod subscribers;
pub mod subscriptions;
pub mod txn;
pub mod webhooks;

pub use error::{Error, Result};
pub use txn::{Conn, Db, SPILL_AT, Touches, Transact, Txn};

use diesel::connection::SimpleConnection;
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
    /// Connections of [`read_only::open`]: opened read-only, never creating anything.
    read_only: bool,
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        if self.read_only {
            return read_only::connect_to(&self.backend).map_err(|e| {
                r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(format!(
                    "{e:#}"
                )))
            });
        }
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

/// The most SQLite connections a pool opens: one per core, at least 2 (reads go on while the
/// one writer writes), at most [`SQLITE_POOL_MAX`].
fn sqlite_pool_max() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores)
        .unwrap_or(SQLITE_POOL_MAX)
        .clamp(2, SQLITE_POOL_MAX)
}

/// The most PostgreSQL connections a pool opens: two per core (at least 2, at most 16).
fn postgres_pool_max() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 2).unwrap_or(16).clamp(2, 16)
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
        // SQLite has one writer (queued in-process, see `txn::Db`) and reads are
        // microseconds: more connections only add page caches (2 MiB each) to the RSS.
        // One connection per core (2 to 8): on two cores, with the key cache off, 2 connections
        // gave /info 0.74x and validations 1.01x of the baseline where 8 gave 0.57x and 0.88x
        // (same run), with less CPU per request and 5 MiB less RSS.
        Backend::Sqlite(_) => max_size.clamp(1, sqlite_pool_max()),
        // Each PostgreSQL connection is a server process that competes for the same cores:
        // on two cores a pool of 16 under 32 concurrent requests gave p99 of 0.5 to 0.8 s
        // (`/readyz`), a pool of 4 gave 6 to 7 ms and 30% more requests per second.
        Backend::Postgres(_) => max_size.clamp(1, postgres_pool_max()),
    };
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        // no `SELECT 1` on every check-out: a broken connection is detected by `has_broken`
        // and dropped after its first failure
        .test_on_check_out(false)
        .build(Manager {
            backend,
            read_only: false,
        })?;
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

/// The SQL SQLite runs for `query` (its bind values left out) and SQLite's `EXPLAIN QUERY PLAN`
/// of it with `binds`, one `detail` line each: what the tests of a statement's plan read.
#[cfg(test)]
pub(crate) fn sqlite_plan<Q>(
    c: &mut diesel::SqliteConnection,
    query: &Q,
    binds: &[&str],
) -> (String, Vec<String>)
where
    Q: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
{
    use diesel::RunQueryDsl;
    use diesel::sql_types::Text;
    #[derive(diesel::QueryableByName)]
    struct PlanRow {
        #[diesel(sql_type = Text)]
        detail: String,
    }
    let sql = diesel::debug_query::<diesel::sqlite::Sqlite, _>(query).to_string();
    let sql = sql
        .split(" -- binds:")
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut explain = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}")).into_boxed();
    for b in binds {
        explain = explain.bind::<Text, _>(*b);
    }
    let plan: Vec<PlanRow> = explain.load(c).unwrap();
    (sql, plan.into_iter().map(|r| r.detail).collect())
}
