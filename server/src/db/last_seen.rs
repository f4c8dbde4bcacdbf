//! `last_seen_at` refreshes, coalesced: a read that finds its binding's `last_seen_at` due
//! records the time here (no write on the read path) and [`LastSeen::flush`] writes what was
//! recorded in batched write transactions, every [`FLUSH_EVERY_SECS`] and at shutdown. The
//! stored value then lags a use by at most the refresh granularity plus the flush period
//! (60 s, DESIGN §4.1).
//!
//! Memory is bounded by [`CAPACITY`] (not by the number of keys): when the map is full a
//! refresh is written at once, as it was before coalescing.

use super::AnyConnection;
use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Text, Timestamp};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};

/// How often the recorded refreshes are written out. Every second, so that a fleet walking its
/// keys at tens of thousands of requests a second stays under [`CAPACITY`] between two flushes
/// (at 5 s, 100,000 keys seen once each filled the map, and every further refresh was written
/// by its own request).
pub const FLUSH_EVERY_SECS: u64 = 1;
/// The most bindings recorded between two flushes (about 100 bytes each).
pub const CAPACITY: usize = 65_536;
/// Refreshes written per write transaction, so a flush never holds SQLite's writer long.
const BATCH: usize = 500;

/// The refreshes recorded since the last flush, by registration id.
#[derive(Debug, Default)]
pub struct LastSeen {
    pending: Mutex<HashMap<String, NaiveDateTime>>,
}

impl LastSeen {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, NaiveDateTime>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that binding `id` was used at `at`; `false` when the map is full (the caller
    /// then writes the refresh itself).
    pub fn record(&self, id: &str, at: NaiveDateTime) -> bool {
        let mut p = self.pending();
        if let Some(t) = p.get_mut(id) {
            *t = (*t).max(at);
            return true;
        }
        if p.len() >= CAPACITY {
            return false;
        }
        p.insert(id.to_owned(), at);
        true
    }

    /// The recorded (not yet written) use of binding `id`, if any.
    pub fn pending_for(&self, id: &str) -> Option<NaiveDateTime> {
        self.pending().get(id).copied()
    }

    /// Takes everything recorded so far (the map is left empty, its memory released), in the
    /// order of the bindings' ids. Ids are time-ordered (UUID v7), so this is nearly the rows'
    /// order on disk: each write transaction then changes a run of neighbouring pages instead
    /// of as many scattered pages as it has rows (in a map's order, the 1,000,000-key fleet
    /// wrote ~1.5 pages per refresh to the WAL, 3 `pwrite` per request).
    pub fn take(&self) -> Vec<(String, NaiveDateTime)> {
        let mut items: Vec<_> = std::mem::take(&mut *self.pending()).into_iter().collect();
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        items
    }

    /// Puts back refreshes a failed flush could not write (never past [`CAPACITY`]).
    pub fn restore(&self, items: impl IntoIterator<Item = (String, NaiveDateTime)>) {
        for (id, at) in items {
            if !self.record(&id, at) {
                break;
            }
        }
    }
}

/// Writes one refresh (never moving `last_seen_at` back).
///
/// Run on the backend's own connection through [`Refresh`], a statement diesel prepares once
/// per connection and finds again by its type: diesel's own `UPDATE` builder is never cached,
/// so each refresh was parsed and planned anew (on the 1,000,000-key fleet the flusher spent
/// most of its time in SQLite's parser).
pub fn write_one(c: &mut AnyConnection, id: &str, at: NaiveDateTime) -> QueryResult<usize> {
    match c {
        AnyConnection::Sqlite(c) => Refresh::<_, Text>::new(id, sqlite_timestamp(at)).execute(c),
        AnyConnection::Postgresql(c) => Refresh::<_, Timestamp>::new(id, at).execute(c),
    }
}

/// `at` as diesel writes a `Timestamp` to SQLite (`%F %T%.f`: SQLite compares these as text,
/// so the format must be the same), through chrono's `Display`, which gives the same text
/// without parsing a format string each time (a quarter of the flusher's time).
fn sqlite_timestamp(at: NaiveDateTime) -> String {
    use chrono::Datelike;
    if (0..=9999).contains(&at.year()) {
        at.to_string()
    } else {
        at.format("%F %T%.f").to_string()
    }
}

/// `UPDATE registrations SET last_seen_at = $at WHERE id = $id AND last_seen_at < $at`, with
/// a static query id so that the connection's statement cache keeps it prepared; `at` is bound
/// once formatted on SQLite (as `Text`) and as a `Timestamp` on PostgreSQL.
struct Refresh<'a, T, ST> {
    id: &'a str,
    at: T,
    sql_type: PhantomData<ST>,
}

impl<'a, T, ST> Refresh<'a, T, ST> {
    fn new(id: &'a str, at: T) -> Self {
        Refresh {
            id,
            at,
            sql_type: PhantomData,
        }
    }
}

impl<T: 'static, ST: 'static> QueryId for Refresh<'_, T, ST> {
    type QueryId = Refresh<'static, T, ST>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB, T, ST> QueryFragment<DB> for Refresh<'_, T, ST>
where
    DB: Backend + HasSqlType<ST>,
    str: ToSql<Text, DB>,
    T: ToSql<ST, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE registrations SET last_seen_at = ");
        out.push_bind_param::<ST, _>(&self.at)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.id)?;
        out.push_sql(" AND last_seen_at < ");
        out.push_bind_param::<ST, _>(&self.at)?;
        Ok(())
    }
}

impl<C, T, ST> RunQueryDsl<C> for Refresh<'_, T, ST> {}

/// The size of the write transactions a flush uses.
pub fn batches(
    items: &[(String, NaiveDateTime)],
) -> impl Iterator<Item = &[(String, NaiveDateTime)]> {
    items.chunks(BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        s.parse().unwrap()
    }

    #[test]
    fn keeps_the_latest_use_and_empties_on_take() {
        let ls = LastSeen::default();
        assert!(ls.record("a", t("2026-01-01T00:01:00")));
        assert!(ls.record("a", t("2026-01-01T00:00:00")));
        assert_eq!(ls.pending_for("a"), Some(t("2026-01-01T00:01:00")));
        assert!(ls.record("0", t("2026-01-01T00:00:00")));
        let taken = ls.take();
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0].0, "0", "in the order of the ids");
        assert_eq!(ls.pending_for("a"), None);
    }

    #[test]
    fn sqlite_timestamps_are_what_diesel_writes() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        for (h, m, sec, nano) in [
            (0, 0, 0, 0),
            (21, 4, 10, 623_686_000),
            (9, 5, 7, 120_000_000),
            (23, 59, 59, 1),
            (23, 59, 59, 1_500_000_000), // a leap second
            (12, 0, 0, 999_999_999),
        ] {
            let at = day.and_hms_nano_opt(h, m, sec, nano).unwrap();
            assert_eq!(sqlite_timestamp(at), at.format("%F %T%.f").to_string());
        }
        for y in [1, 999, 9999, 10_000, -1] {
            let at = chrono::NaiveDate::from_ymd_opt(y, 1, 2)
                .unwrap()
                .and_hms_micro_opt(3, 4, 5, 6)
                .unwrap();
            assert_eq!(sqlite_timestamp(at), at.format("%F %T%.f").to_string());
        }
    }

    #[test]
    fn bounded() {
        let ls = LastSeen::default();
        let at = t("2026-01-01T00:00:00");
        for i in 0..CAPACITY {
            assert!(ls.record(&i.to_string(), at));
        }
        assert!(!ls.record("one more", at));
        assert!(ls.record("0", at), "a recorded binding is still updated");
    }
}
