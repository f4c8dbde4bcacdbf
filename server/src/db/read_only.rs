//! One read-only connection, for the commands that only read (DESIGN §14): no migration, no
//! directory or file created; a missing database is an error that names it.

use super::{AnyConnection, Backend};
use diesel::Connection;
use diesel::connection::SimpleConnection;

/// Connects to `url` read-only: SQLite opened with `mode=ro` (a missing file is an error, never
/// a new database), PostgreSQL sessions in read-only transactions.
pub fn connect(url: &str) -> anyhow::Result<AnyConnection> {
    match Backend::from_url(url)? {
        Backend::Postgres(u) => {
            let mut c = diesel::PgConnection::establish(&u)
                .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?;
            c.batch_execute("SET default_transaction_read_only = on")?;
            Ok(AnyConnection::Postgresql(c))
        }
        Backend::Sqlite(path) => {
            if path == ":memory:" || !std::path::Path::new(&path).is_file() {
                anyhow::bail!("the database {path} does not exist");
            }
            let escaped = path
                .replace('%', "%25")
                .replace('?', "%3F")
                .replace('#', "%23");
            let mut c = diesel::SqliteConnection::establish(&format!("file:{escaped}?mode=ro"))
                .map_err(|e| anyhow::anyhow!("cannot open the database {path}: {e}"))?;
            c.batch_execute("PRAGMA busy_timeout = 10000;")?;
            Ok(AnyConnection::Sqlite(c))
        }
    }
}
