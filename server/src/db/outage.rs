//! Telling "the database cannot be reached right now" apart from other failures, so that the
//! server answers `503 unavailable` with `Retry-After` (DESIGN §4) instead of `500 internal`
//! while PostgreSQL restarts or the network to it is down.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What libpq (and PostgreSQL) say when the connection is gone or cannot be made.
const OUTAGE_MESSAGES: &[&str] = &[
    "terminating connection",
    "server closed the connection",
    "no connection to the server",
    "connection to server",
    "could not connect",
    "connection refused",
    "the database system is",
    "could not receive data",
    "could not send data",
    "ssl connection has been closed",
    "connection timed out",
];

fn outage_message(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    OUTAGE_MESSAGES.iter().any(|p| m.contains(p))
}

/// Whether a diesel error means the database is unreachable (not a bad query or a conflict).
pub fn diesel_outage(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            outage_message(info.message())
        }
        DieselError::BrokenTransactionManager => true,
        _ => false,
    }
}

/// Whether an error, or any of its causes, means the database is unreachable: a lost or
/// refused connection, or a pool that could not hand one out in time.
pub fn is_outage(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(d) = err.downcast_ref::<DieselError>()
            && diesel_outage(d)
        {
            return true;
        }
        if err.downcast_ref::<diesel::r2d2::PoolError>().is_some()
            || err.downcast_ref::<diesel::ConnectionError>().is_some()
        {
            return true;
        }
        if let Some(r) = err.downcast_ref::<diesel::r2d2::Error>() {
            return match r {
                diesel::r2d2::Error::ConnectionError(_) => true,
                diesel::r2d2::Error::QueryError(q) => diesel_outage(q),
            };
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Msg(&'static str);
    impl diesel::result::DatabaseErrorInformation for Msg {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    #[test]
    fn lost_connections_are_outages_and_query_errors_are_not() {
        let db = |k, m| DieselError::DatabaseError(k, Box::new(Msg(m)));
        assert!(diesel_outage(&db(DatabaseErrorKind::ClosedConnection, "x")));
        assert!(diesel_outage(&db(
            DatabaseErrorKind::Unknown,
            "FATAL: terminating connection due to administrator command"
        )));
        assert!(!diesel_outage(&db(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key"
        )));
        assert!(!diesel_outage(&db(
            DatabaseErrorKind::Unknown,
            "syntax error at or near"
        )));
        assert!(!diesel_outage(&DieselError::NotFound));
        let wrapped = anyhow::Error::new(db(DatabaseErrorKind::ClosedConnection, "x"))
            .context("loading a key");
        assert!(is_outage(wrapped.as_ref()));
        let other = anyhow::anyhow!("keygen failed");
        assert!(!is_outage(other.as_ref()));
    }
}
