//! Rate-limit counters in the database, shared by every server process on it (DESIGN §9).
//!
//! One row per (kind, subject, window start). An event is counted by **one** atomic conditional
//! upsert that either inserts the row with `n = 1`, or adds one while `n` is below the
//! allowance, and returns the new `n`; no row returned means the allowance was already used up:
//!
//! ```sql
//! INSERT INTO rate_limits (kind, subject, window_start, n) VALUES (?, ?, ?, 1)
//! ON CONFLICT (kind, subject, window_start)
//! DO UPDATE SET n = rate_limits.n + 1 WHERE rate_limits.n < ?allowance
//! RETURNING n
//! ```
//!
//! So N concurrent events, spread over any number of processes, are allowed at most
//! `allowance` times per window: the row lock (PostgreSQL) or the write lock (SQLite, where the
//! statement runs in a `BEGIN IMMEDIATE` write transaction) orders them, and each sees the
//! count its predecessors left. Old windows are removed by [`sweep`].
//!
//! The first refusal of a failed look-up in a window runs the same statement once more with the
//! allowance plus one: exactly one refusal per address and window (across processes) gets a row
//! back, and that one sends the `lookup.rate_limited` webhook event.

use super::{AnyConnection, Conn, Touches, Transact};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

/// Fixed windows of one minute.
pub const WINDOW_SECS: i64 = 60;

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A key string that is unknown or malformed, per client address (every path that takes a
    /// key shares it, and failed admin logins count against it too).
    FailedLookup,
    /// Registration attempts, per key hash.
    Registration,
    /// Failed portal logins, per client address (or account).
    FailedLogin,
}

impl Limit {
    /// The `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::FailedLookup => "failed_lookup",
            Limit::Registration => "registration",
            Limit::FailedLogin => "failed_login",
        }
    }
}

/// Whether an event was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    /// Counted: it is the `n`th of its window.
    Allowed { n: i64 },
    /// The allowance of this window is used up; retry after this many seconds.
    Over { retry_after: u64 },
}

/// The start of the window holding `now` (Unix seconds).
pub fn window_start(now: i64) -> i64 {
    now.div_euclid(WINDOW_SECS) * WINDOW_SECS
}

/// Seconds from `now` to the end of its window (at least 1).
pub fn retry_after(now: i64) -> u64 {
    (window_start(now) + WINDOW_SECS - now).max(1) as u64
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

const PG_HIT: &str = "INSERT INTO rate_limits (kind, subject, window_start, n) VALUES ($1, $2, $3, 1) \
     ON CONFLICT (kind, subject, window_start) \
     DO UPDATE SET n = rate_limits.n + 1 WHERE rate_limits.n < $4 RETURNING n";
const SQLITE_HIT: &str = "INSERT INTO rate_limits (kind, subject, window_start, n) VALUES (?1, ?2, ?3, 1) \
     ON CONFLICT (kind, subject, window_start) \
     DO UPDATE SET n = rate_limits.n + 1 WHERE rate_limits.n < ?4 RETURNING n";

/// The conditional increment on `c` (inside a write transaction on SQLite).
fn upsert(
    c: &mut AnyConnection,
    limit: Limit,
    subject: &str,
    start: i64,
    allowance: i64,
) -> QueryResult<Option<Counted>> {
    let sql = match c {
        AnyConnection::Postgresql(_) => PG_HIT,
        AnyConnection::Sqlite(_) => SQLITE_HIT,
    };
    let q = diesel::sql_query(sql)
        .bind::<Text, _>(limit.as_str())
        .bind::<Text, _>(subject)
        .bind::<BigInt, _>(start)
        .bind::<BigInt, _>(allowance);
    match c {
        AnyConnection::Postgresql(pg) => q.get_result(pg).optional(),
        AnyConnection::Sqlite(lite) => q.get_result(lite).optional(),
    }
}

/// Counts one event of `limit` for `subject` at `now` (Unix seconds, the server's clock)
/// against `allowance` events per window, with one atomic conditional increment.
pub fn hit(
    c: &mut Conn,
    limit: Limit,
    subject: &str,
    now: i64,
    allowance: u32,
) -> super::Result<Hit> {
    if allowance == 0 {
        return Ok(Hit::Over {
            retry_after: retry_after(now),
        });
    }
    let start = window_start(now);
    let allowance = i64::from(allowance);
    let counted = match &mut **c {
        pg @ AnyConnection::Postgresql(_) => upsert(pg, limit, subject, start, allowance)?,
        AnyConnection::Sqlite(_) => c.write(Touches::AuditOnly, |tx| {
            Ok::<_, super::Error>(upsert(tx.conn(), limit, subject, start, allowance)?)
        })?,
    };
    let hit = match counted {
        Some(Counted { n }) => Hit::Allowed { n },
        None => Hit::Over {
            retry_after: retry_after(now),
        },
    };
    if limit == Limit::FailedLookup && matches!(hit, Hit::Over { .. }) {
        note_first_refusal(c, subject, start, allowance, now)?;
    }
    Ok(hit)
}

/// The first refusal of an address in a window moves its count one past the allowance (one
/// atomic conditional increment, so across every process exactly one refusal does) and sends
/// the `lookup.rate_limited` webhook event (DESIGN §12: at most once per address per window).
fn note_first_refusal(
    c: &mut Conn,
    subject: &str,
    start: i64,
    allowance: i64,
    now: i64,
) -> super::Result<()> {
    c.write(Touches::AuditOnly, |tx| {
        let first = upsert(
            tx.conn(),
            Limit::FailedLookup,
            subject,
            start,
            allowance + 1,
        )?;
        if first.is_some_and(|Counted { n }| n == allowance + 1) {
            let at = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
            let data = serde_json::json!({
                "client_addr": subject,
                "limit": Limit::FailedLookup.as_str(),
                "allowance": allowance,
                "window_start": chrono::DateTime::from_timestamp(start, 0).unwrap_or_default(),
                "retry_after": retry_after(now),
            });
            tx.emit("lookup.rate_limited", &data, at.naive_utc());
        }
        Ok::<_, super::Error>(())
    })
}

/// Removes the counters of windows that ended before `now`; returns how many.
pub fn sweep(c: &mut AnyConnection, now: i64) -> QueryResult<usize> {
    use super::schema::rate_limits::dsl as l;
    diesel::delete(l::rate_limits.filter(l::window_start.lt(window_start(now)))).execute(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite() -> (tempfile::TempDir, crate::db::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db =
            crate::db::Db::open(&dir.path().join("db.sqlite").display().to_string(), 4).unwrap();
        (dir, db)
    }

    #[test]
    fn the_allowance_is_counted_atomically_per_subject_and_window_and_old_windows_are_swept() {
        let (_dir, pool) = sqlite();
        let c = &mut pool.get().unwrap();
        let t0 = 6_000_000; // a window start
        for i in 1..=3 {
            assert_eq!(
                hit(c, Limit::FailedLookup, "1.2.3.4", t0 + 5, 3).unwrap(),
                Hit::Allowed { n: i }
            );
        }
        assert_eq!(
            hit(c, Limit::FailedLookup, "1.2.3.4", t0 + 10, 3).unwrap(),
            Hit::Over { retry_after: 50 }
        );
        // another subject, another kind: their own counts
        assert_eq!(
            hit(c, Limit::FailedLookup, "5.6.7.8", t0 + 10, 3).unwrap(),
            Hit::Allowed { n: 1 }
        );
        assert_eq!(
            hit(c, Limit::Registration, "1.2.3.4", t0 + 10, 3).unwrap(),
            Hit::Allowed { n: 1 }
        );
        // a new window
        assert_eq!(
            hit(c, Limit::FailedLookup, "1.2.3.4", t0 + 60, 3).unwrap(),
            Hit::Allowed { n: 1 }
        );
        assert_eq!(
            hit(c, Limit::FailedLogin, "x", t0, 0).unwrap(),
            Hit::Over { retry_after: 60 }
        );
        assert_eq!(sweep(c, t0 + 61).unwrap(), 3, "the first window's rows");
        assert_eq!(sweep(c, t0 + 61).unwrap(), 0);
    }

    #[test]
    fn concurrent_hits_never_pass_the_allowance() {
        let (_dir, pool) = sqlite();
        let allowed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let c = &mut pool.get().unwrap();
                    for _ in 0..25 {
                        if let Hit::Allowed { .. } =
                            hit(c, Limit::FailedLookup, "9.9.9.9", 6_000_030, 30).unwrap()
                        {
                            allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(allowed.into_inner(), 30);
    }
}
