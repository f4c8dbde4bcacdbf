//! The test-mode fixture loader on arbitrary documents (JSON, or TOML when the bytes are not
//! JSON) against one in-memory SQLite database. Nothing may panic, and a load is
//! all-or-nothing: after a refused document every table holds exactly what it held before (in
//! particular no subscriber); after an accepted one it holds what the document named, and a
//! reset brings the database back to the baseline for the next input.
//!
//! Plugin versions that name an `archive` file are stripped first: the loader would read that
//! path from the local file system, which is not what this target explores.
#![no_main]

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use glpi_network_server::db::audit::Actor;
use glpi_network_server::db::{self, AnyConnection, Conn, schema};
use glpi_network_server::testmode::fixtures::{self, Fixtures};
use libfuzzer_sys::fuzz_target;
use std::sync::{LazyLock, Mutex};

fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 6, 1)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
}

/// Row counts of every table a fixture document can touch.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    subscribers: i64,
    subscriptions: i64,
    keys: i64,
    registrations: i64,
    audit_events: i64,
    plugins: i64,
    plugin_versions: i64,
    offers: i64,
}

fn counts(c: &mut AnyConnection) -> Counts {
    use schema::*;
    Counts {
        subscribers: subscribers::table.count().get_result(c).unwrap(),
        subscriptions: subscriptions::table.count().get_result(c).unwrap(),
        keys: registration_keys::table.count().get_result(c).unwrap(),
        registrations: registrations::table.count().get_result(c).unwrap(),
        audit_events: audit_events::table.count().get_result(c).unwrap(),
        plugins: plugins::table.count().get_result(c).unwrap(),
        plugin_versions: plugin_versions::table.count().get_result(c).unwrap(),
        offers: offers::table.count().get_result(c).unwrap(),
    }
}

struct Db {
    conn: Conn,
    baseline: Counts,
}

static DB: LazyLock<Mutex<Db>> = LazyLock::new(|| {
    let pool = db::Db::open("sqlite::memory:", 1).expect("in-memory database");
    let mut conn = pool.get().expect("connection");
    // what a fresh server holds: the seeded offers and the demo plugins
    fixtures::reset(&mut conn, now()).expect("reset");
    let baseline = counts(&mut conn);
    assert_eq!(baseline.subscribers, 0);
    Mutex::new(Db { conn, baseline })
});

fn parse(data: &[u8]) -> Option<Fixtures> {
    if let Ok(fx) = serde_json::from_slice(data) {
        return Some(fx);
    }
    toml::from_str(std::str::from_utf8(data).ok()?).ok()
}

/// `FIXTURE_LOAD_TRACE=1` prints one line per input (`unparsed`, `refused`, `loaded`), to see
/// how much of a corpus reaches the database: run the target over it with `-runs=0`.
static TRACE: LazyLock<bool> = LazyLock::new(|| std::env::var_os("FIXTURE_LOAD_TRACE").is_some());

fn trace(what: &str) {
    if *TRACE {
        eprintln!("fixture_load: {what}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(mut fx) = parse(data) else {
        trace("unparsed");
        return;
    };
    for p in &mut fx.plugins {
        for v in &mut p.versions {
            v.archive = None;
        }
    }
    let mut guard = DB.lock().unwrap_or_else(|e| e.into_inner());
    let db = &mut *guard;
    let c = &mut db.conn;
    match fixtures::load(c, &fx, now(), &Actor::new("test", None)) {
        Err(_) => {
            trace("refused");
            assert_eq!(
                counts(c),
                db.baseline,
                "a refused document left rows behind"
            );
        }
        Ok(loaded) => {
            trace("loaded");
            let after = counts(c);
            assert_eq!(after.subscribers as usize, fx.subscribers.len());
            assert_eq!(after.subscriptions as usize, fx.subscriptions.len());
            assert_eq!(after.keys as usize, fx.keys.len());
            assert_eq!(loaded.registrations.len(), fx.registrations.len());
            assert!(after.registrations as usize <= fx.registrations.len());
            fixtures::reset(c, now()).expect("reset after a load");
            assert_eq!(counts(c), db.baseline, "reset did not restore the baseline");
        }
    }
});
