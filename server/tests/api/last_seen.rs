//! The `last_seen_at` refreshes a read records, written out by `Db::flush_last_seen` on both
//! backends: one statement a batch (`json_each` on SQLite, `unnest` on PostgreSQL), which must
//! write each recorded time exactly, never move a time back, skip ids no row has, and carry any
//! id text through (JSON escaping on SQLite).

use crate::helpers;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use glpi_network_server::db::audit::Actor;
use glpi_network_server::db::schema::registrations::dsl as r;
use glpi_network_server::db::{AnyConnection, Db};
use glpi_network_server::testmode::fixtures::{Fixtures, load};

/// An id no server makes, with what JSON must escape.
const ODD_ID: &str = "odd \"id\" \\ ü\u{1}";

/// Three keys bound to three instances; the database, its registrations' ids (the last one
/// renamed to [`ODD_ID`]) and the time they were bound.
fn fleet(url: &str) -> (Db, Vec<String>, NaiveDateTime) {
    let db = Db::open(url, 2).unwrap();
    let keys: Vec<_> = (0..3)
        .map(|i| serde_json::json!({"key": format!("GN-SEEN-{i}"), "subscription": "s"}))
        .collect();
    let bindings: Vec<_> = (0..3)
        .map(|i| {
            serde_json::json!({
                "key": format!("GN-SEEN-{i}"),
                "instance_url": format!("https://seen-{i}.example/glpi"),
            })
        })
        .collect();
    let fx: Fixtures = serde_json::from_value(serde_json::json!({
        "subscribers": [{"ref": "o", "name": "Seen Corp"}],
        "subscriptions": [{"ref": "s", "subscriber": "o", "offer": "basic"}],
        "keys": keys,
        "registrations": bindings,
    }))
    .unwrap();
    let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
        .unwrap()
        .and_hms_micro_opt(10, 0, 0, 250_000)
        .unwrap();
    let mut conn = db.get().unwrap();
    load(&mut conn, &fx, now, &Actor::new("test", None)).unwrap();
    let mut ids: Vec<String> = r::registrations
        .select(r::id)
        .order(r::id)
        .load(&mut *conn)
        .unwrap();
    assert_eq!(ids.len(), 3);
    diesel::update(r::registrations.filter(r::id.eq(&ids[2])))
        .set(r::id.eq(ODD_ID))
        .execute(&mut *conn)
        .unwrap();
    ids[2] = ODD_ID.to_owned();
    (db, ids, now)
}

fn seen(db: &Db, id: &str) -> NaiveDateTime {
    let mut conn = db.get().unwrap();
    let c: &mut AnyConnection = &mut conn;
    r::registrations
        .filter(r::id.eq(id))
        .select(r::last_seen_at)
        .first(c)
        .unwrap()
}

fn flushes_exactly(url: &str) {
    let (db, ids, bound) = fleet(url);
    let later = bound + Duration::seconds(125) + Duration::microseconds(17);
    let earlier = bound - Duration::hours(1);
    assert!(db.record_last_seen(&ids[0], later));
    assert!(db.record_last_seen(&ids[1], earlier), "older than the row");
    assert!(db.record_last_seen(&ids[2], later + Duration::seconds(1)));
    // ids no row has, enough for three write transactions
    for i in 0..1_200 {
        assert!(db.record_last_seen(&format!("gone-{i}"), later));
    }
    assert_eq!(
        db.flush_last_seen().unwrap(),
        1_203,
        "every recorded refresh was written"
    );
    assert_eq!(
        seen(&db, &ids[0]),
        later,
        "the recorded time, to the microsecond"
    );
    assert_eq!(seen(&db, &ids[1]), bound, "never moved back");
    assert_eq!(
        seen(&db, &ids[2]),
        later + Duration::seconds(1),
        "{ODD_ID:?}"
    );
    assert_eq!(db.pending_last_seen(&ids[0]), None, "nothing left to write");
    assert_eq!(db.flush_last_seen().unwrap(), 0);

    // a later flush moves it again; an earlier one does not
    assert!(db.record_last_seen(&ids[0], later + Duration::seconds(90)));
    assert_eq!(db.flush_last_seen().unwrap(), 1);
    assert_eq!(seen(&db, &ids[0]), later + Duration::seconds(90));
    assert!(db.record_last_seen(&ids[0], later));
    db.flush_last_seen().unwrap();
    assert_eq!(seen(&db, &ids[0]), later + Duration::seconds(90));
}

#[test]
fn sqlite_flushes_each_recorded_time_exactly() {
    let dir = tempfile::tempdir().unwrap();
    flushes_exactly(dir.path().join("seen.db").to_str().unwrap());
}

#[test]
fn postgres_flushes_each_recorded_time_exactly() {
    let Some((base, url, name)) = helpers::create_pg_database() else {
        return;
    };
    let _drop = crate::common::PgDb { base, name };
    flushes_exactly(&url);
}
