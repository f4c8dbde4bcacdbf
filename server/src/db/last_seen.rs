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

/// A binding's id as the record keeps it: a UUID in its canonical text (every id this server
/// makes) as its 128 bits, with no allocation; anything else as text. Ordered as the text is
/// (lower-case hex at fixed places sorts as the number does).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Id {
    Uuid(u128),
    Text(Box<str>),
}

impl Id {
    fn of(id: &str) -> Id {
        if let Ok(u) = uuid::Uuid::try_parse(id) {
            let mut buf = uuid::Uuid::encode_buffer();
            if u.hyphenated().encode_lower(&mut buf) == id {
                return Id::Uuid(u.as_u128());
            }
        }
        Id::Text(id.into())
    }

    fn into_string(self) -> String {
        match self {
            Id::Uuid(u) => {
                let mut buf = uuid::Uuid::encode_buffer();
                (*uuid::Uuid::from_u128(u).hyphenated().encode_lower(&mut buf)).to_owned()
            }
            Id::Text(t) => t.into_string(),
        }
    }
}

/// The refreshes recorded since the last flush, by registration id.
#[derive(Debug, Default)]
pub struct LastSeen {
    pending: Mutex<HashMap<Id, NaiveDateTime>>,
}

impl LastSeen {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<Id, NaiveDateTime>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that binding `id` was used at `at`; `false` when the map is full (the caller
    /// then writes the refresh itself). Allocates nothing for a UUID id: the 1,000,000-key
    /// fleet records ~30,000 refreshes a second on the HTTP workers, and their `String` keys,
    /// freed by the flusher's thread, cost 4% of the server's CPU in malloc and free.
    pub fn record(&self, id: &str, at: NaiveDateTime) -> bool {
        let key = Id::of(id);
        let mut p = self.pending();
        if let Some(t) = p.get_mut(&key) {
            *t = (*t).max(at);
            return true;
        }
        if p.len() >= CAPACITY {
            return false;
        }
        p.insert(key, at);
        true
    }

    /// The recorded (not yet written) use of binding `id`, if any.
    pub fn pending_for(&self, id: &str) -> Option<NaiveDateTime> {
        self.pending().get(&Id::of(id)).copied()
    }

    /// Takes everything recorded so far, in the order of the bindings' ids; the map is left
    /// empty, sized for as many as were taken (at most [`CAPACITY`]: ~2 MiB). Ids are
    /// time-ordered (UUID v7), so this is nearly the rows' order on disk: each write
    /// transaction then changes a run of neighbouring pages instead of as many scattered pages
    /// as it has rows (in a map's order, the 1,000,000-key fleet wrote ~1.5 pages per refresh
    /// to the WAL, 3 `pwrite` per request).
    pub fn take(&self) -> Vec<(String, NaiveDateTime)> {
        let taken = {
            let mut p = self.pending();
            let fresh = HashMap::with_capacity(p.len());
            std::mem::replace(&mut *p, fresh)
        };
        let mut items: Vec<_> = taken.into_iter().collect();
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        items
            .into_iter()
            .map(|(id, at)| (id.into_string(), at))
            .collect()
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

/// Writes a batch of refreshes (never moving a `last_seen_at` back) in one statement, prepared
/// once per connection: on SQLite the batch is bound as one JSON object (id: timestamp) that
/// `json_each` walks, on PostgreSQL as two arrays that `unnest` zips. One statement a row cost
/// the flusher a bind, a step and a reset each (a fifth of its time on the 1,000,000-key fleet)
/// and on PostgreSQL a round trip each. Returns how many rows changed.
pub fn write_batch(c: &mut AnyConnection, batch: &[(String, NaiveDateTime)]) -> QueryResult<usize> {
    if batch.is_empty() {
        return Ok(0);
    }
    match c {
        AnyConnection::Sqlite(c) => {
            // sized for a batch of UUIDs and full timestamps, so it is written without a copy
            let mut json = Vec::with_capacity(batch.len() * 72 + 2);
            serde_json::to_writer(&mut json, &AsObject(batch))
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            let json = String::from_utf8(json)
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            SqliteBatch(&json).execute(c)
        }
        AnyConnection::Postgresql(c) => {
            let ids: Vec<&str> = batch.iter().map(|(id, _)| id.as_str()).collect();
            let ats: Vec<NaiveDateTime> = batch.iter().map(|(_, at)| *at).collect();
            PgBatch {
                ids: &ids,
                ats: &ats,
            }
            .execute(c)
        }
    }
}

/// A batch as the JSON object `{"<id>": "<timestamp as diesel writes it to SQLite>", ...}`.
struct AsObject<'a>(&'a [(String, NaiveDateTime)]);

impl serde::Serialize for AsObject<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(id, at)| (id, sqlite_timestamp(*at))))
    }
}

/// `UPDATE registrations ... FROM json_each($batch)` (SQLite). `+last_seen_at` has no
/// affinity, so the stored text is compared with the batch's text as text, as diesel's own
/// comparison does, without SQLite first trying each value as a number (the column is
/// `TIMESTAMP`: numeric affinity).
struct SqliteBatch<'a>(&'a str);

impl QueryId for SqliteBatch<'_> {
    type QueryId = SqliteBatch<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<diesel::sqlite::Sqlite> for SqliteBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        out.push_sql("UPDATE registrations SET last_seen_at = j.value FROM json_each(");
        out.push_bind_param::<Text, _>(self.0)?;
        out.push_sql(
            ") AS j WHERE registrations.id = j.key AND +registrations.last_seen_at < j.value",
        );
        Ok(())
    }
}

impl<C> RunQueryDsl<C> for SqliteBatch<'_> {}

/// `UPDATE registrations ... FROM unnest($ids, $ats)` (PostgreSQL).
struct PgBatch<'a> {
    ids: &'a [&'a str],
    ats: &'a [NaiveDateTime],
}

impl QueryId for PgBatch<'_> {
    type QueryId = PgBatch<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<diesel::pg::Pg> for PgBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        use diesel::sql_types::Array;
        out.push_sql("UPDATE registrations AS r SET last_seen_at = v.at FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamp>, _>(self.ats)?;
        out.push_sql(") AS v(id, at) WHERE r.id = v.id AND r.last_seen_at < v.at");
        Ok(())
    }
}

impl<C> RunQueryDsl<C> for PgBatch<'_> {}

/// The size of the write transactions a flush uses.
pub fn batches(
    items: &[(String, NaiveDateTime)],
) -> impl Iterator<Item = &[(String, NaiveDateTime)]> {
    items.chunks(BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Id {
        fn is_uuid(&self) -> bool {
            matches!(self, Id::Uuid(_))
        }
    }

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
    fn uuid_ids_come_back_as_they_were_recorded_in_text_order() {
        let ls = LastSeen::default();
        let at = t("2026-01-01T00:00:00");
        let ids = [
            "01a24d22-6715-7109-bfa2-ea9bf0479c55".to_owned(),
            "01a24d22-1343-7040-b43d-178672fa5670".to_owned(),
            "01A24D22-1343-7040-B43D-178672FA5670".to_owned(), // not canonical: kept as text
            "{01a24d22-1343-7040-b43d-178672fa5671}".to_owned(),
            "not-a-uuid".to_owned(),
            uuid::Uuid::now_v7().to_string(),
        ];
        for id in &ids {
            assert!(ls.record(id, at));
            assert_eq!(ls.pending_for(id), Some(at), "{id}");
        }
        let mut uuids: Vec<&String> = ids.iter().filter(|i| Id::of(i).is_uuid()).collect();
        uuids.sort();
        assert_eq!(uuids.len(), 3);
        let taken: Vec<String> = ls.take().into_iter().map(|(id, _)| id).collect();
        assert_eq!(taken.len(), ids.len(), "every id, each once");
        for id in &ids {
            assert!(taken.contains(id), "{id} comes back as it was recorded");
        }
        let taken_uuids: Vec<&String> = taken.iter().take(3).collect();
        assert_eq!(taken_uuids, uuids, "UUIDs first, in their text's order");
    }

    /// SQLite walks the batch and finds each row through the primary key's index: never a scan
    /// of `registrations` (1,000,000 rows on the large fleet).
    #[test]
    fn sqlite_finds_each_row_of_a_batch_by_its_id() {
        let db = crate::db::Db::open("sqlite::memory:", 1).unwrap();
        let mut conn = db.get().unwrap();
        let AnyConnection::Sqlite(c) = &mut *conn else {
            panic!("an SQLite connection")
        };
        let json = r#"{"a": "2026-01-01 00:00:00"}"#;
        let (_, plan) = crate::db::sqlite_plan(c, &SqliteBatch(json), &[json]);
        assert!(
            plan.iter()
                .any(|d| d.starts_with("SEARCH registrations USING INDEX") && d.contains("(id=?)")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|d| d.starts_with("SCAN registrations")),
            "{plan:?}"
        );
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
