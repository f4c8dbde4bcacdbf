//! Read-only access, for the commands that only read (DESIGN §14): no migration, no directory
//! or file created; a missing data directory or database is an error that names it.

use super::{AnyConnection, Backend, Db, Manager};
use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::r2d2;

/// Connects to `url` read-only: SQLite opened with `mode=ro` (a missing file is an error, never
/// a new database), PostgreSQL sessions in read-only transactions.
pub fn connect(url: &str) -> anyhow::Result<AnyConnection> {
    connect_to(&Backend::from_url(url)?)
}

/// [`connect`] to a parsed backend.
pub fn connect_to(backend: &Backend) -> anyhow::Result<AnyConnection> {
    match backend {
        Backend::Postgres(u) => postgres(u),
        Backend::Sqlite(path) => sqlite(path, true),
    }
}

/// [`connect_to`], but an SQLite database is always read through its locks and WAL, never as
/// immutable: for a copy that must be consistent even if a server starts writing meanwhile
/// (`backup`). SQLite may then create the `-wal` and `-shm` files beside it.
pub fn connect_locked(backend: &Backend) -> anyhow::Result<AnyConnection> {
    match backend {
        Backend::Postgres(u) => postgres(u),
        Backend::Sqlite(path) => sqlite(path, false),
    }
}

fn postgres(url: &str) -> anyhow::Result<AnyConnection> {
    let mut c = diesel::PgConnection::establish(url)
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?;
    c.batch_execute("SET default_transaction_read_only = on")?;
    Ok(AnyConnection::Postgresql(c))
}

/// A database no process has open (no `-wal`, no `-shm` beside it) is read as immutable when
/// `immutable_when_idle`, so that reading it creates not even those two files; otherwise
/// read-only through the WAL, beside the processes using it.
fn sqlite(path: &str, immutable_when_idle: bool) -> anyhow::Result<AnyConnection> {
    check_sqlite_exists(path)?;
    let escaped = path
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    let aux = |suffix: &str| std::path::Path::new(&format!("{path}{suffix}")).exists();
    let flags = if !immutable_when_idle || aux("-wal") || aux("-shm") {
        "mode=ro"
    } else {
        "mode=ro&immutable=1"
    };
    let mut c = diesel::SqliteConnection::establish(&format!("file:{escaped}?{flags}"))
        .map_err(|e| anyhow::anyhow!("cannot open the database {path}: {e}"))?;
    c.batch_execute("PRAGMA busy_timeout = 10000;")?;
    Ok(AnyConnection::Sqlite(c))
}

/// An SQLite database file that must already exist: the error names the missing directory or
/// file.
pub fn check_sqlite_exists(path: &str) -> anyhow::Result<()> {
    let file = std::path::Path::new(path);
    if path == ":memory:" {
        anyhow::bail!("an in-memory database holds nothing to read");
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        anyhow::bail!(
            "the data directory {} does not exist (no database {path})",
            dir.display()
        );
    }
    if !file.is_file() {
        anyhow::bail!("the database {path} does not exist");
    }
    Ok(())
}

/// A one-connection read-only [`Db`] on `url`: the queries of the admin commands run on it
/// unchanged, and any write would fail. Connects once first, for the driver's own error.
pub fn open(url: &str) -> anyhow::Result<Db> {
    let backend = Backend::from_url(url)?;
    drop(connect_to(&backend)?);
    let pool = r2d2::Pool::builder()
        .max_size(1)
        .min_idle(Some(0))
        .test_on_check_out(false)
        .build_unchecked(Manager {
            backend,
            read_only: true,
        });
    Ok(Db::new(pool))
}
