//! Property test of the fixture loader: a fixture document, good or bad, either loads fully or
//! leaves the database exactly as it was (no half-loaded subscribers, subscriptions, keys,
//! registrations, audit events or plugins).
//!
//! Documents are coherent JSON fixtures (every reference resolves), left alone about half the
//! time and otherwise spoiled in one to three ways (duplicate or unknown refs, bad statuses,
//! dates, keys, URLs, UIDs, plugin keys and versions, a URL bound twice, a wrongly typed field),
//! so that every stage of the load can fail after earlier stages wrote rows.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use glpi_network_server::db::audit::Actor;
use glpi_network_server::db::{self, AnyConnection, schema};
use glpi_network_server::testmode::fixtures::{self, Fixtures};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::cell::RefCell;

fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 6, 1)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
}

/// Row counts of every table a fixture document can touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

const OFFERS: &[&str] = &["registered", "basic", "standard", "advanced"];

/// A consistent document: every reference names something defined earlier, statuses and
/// dates are valid, registrations bind active keys to distinct URLs and UIDs.
fn coherent() -> impl Strategy<Value = Value> {
    use prop::collection::{btree_set, vec};
    use prop::sample::{Index, select};
    (1usize..4, 0usize..4, 0usize..4, 0usize..3).prop_flat_map(|(ns, nsub, nk, np)| {
        let nk = if nsub == 0 { 0 } else { nk };
        let subscription = (
            any::<Index>(),
            select(OFFERS),
            select(vec!["active", "suspended", "cancelled"]),
            0u8..3,
            1u32..40,
            any::<bool>(),
        );
        let key = (any::<Index>(), any::<bool>(), any::<bool>(), 0u8..3);
        let plugin = (
            vec(select(OFFERS), 0..3),
            btree_set(select(vec!["1.0.0", "1.1.0", "2.0.0-beta"]), 0..3),
        );
        (
            vec(any::<bool>(), ns),
            vec(subscription, nsub),
            vec(key, nk),
            vec(plugin, np),
        )
            .prop_map(move |(emails, subs, keys, plugins)| {
                let subscribers: Vec<Value> = emails
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let email = e.then(|| format!("it@sub{i}.test"));
                        json!({"ref": format!("sub{i}"), "name": format!("Subscriber {i}"), "email": email})
                    })
                    .collect();
                let subscriptions: Vec<Value> = subs
                    .iter()
                    .enumerate()
                    .map(|(j, (who, offer, status, dates, trial, begin))| {
                        let mut v = json!({"ref": format!("s{j}"), "subscriber": format!("sub{}", who.index(ns)),
                                           "offer": offer, "status": status});
                        if *begin {
                            v["begin_date"] = json!("2026-01-01");
                        }
                        match dates {
                            0 => {}
                            1 => v["trial_days"] = json!(trial),
                            _ => v["end_date"] = json!("2026-12-31"),
                        }
                        v
                    })
                    .collect();
                let mut registrations = Vec::new();
                let keys: Vec<Value> = keys
                    .iter()
                    .enumerate()
                    .map(|(l, (sub, revoked, with_ref, bind))| {
                        let key = format!("TEST-KEY-{l}");
                        let mut v = json!({"key": key, "subscription": format!("s{}", sub.index(nsub))});
                        if *revoked {
                            v["status"] = json!("revoked");
                        } else {
                            let url = format!("https://glpi{l}.example.com/");
                            let uid = format!("uid-{l}");
                            match bind {
                                0 => {}
                                1 => registrations.push(json!({"key": key, "instance_url": url})),
                                _ => registrations.push(json!({"key": key, "instance_url": url, "instance_uid": uid})),
                            }
                        }
                        if *with_ref {
                            v["ref"] = json!(format!("k{l}"));
                        }
                        v
                    })
                    .collect();
                let plugins: Vec<Value> = plugins
                    .iter()
                    .enumerate()
                    .map(|(p, (offers, versions))| {
                        let versions: Vec<Value> = versions.iter().map(|n| json!({"num": n})).collect();
                        json!({"key": format!("fixplug{p}"), "name": format!("Plugin {p}"),
                               "required_offers": offers, "versions": versions})
                    })
                    .collect();
                json!({"subscribers": subscribers, "subscriptions": subscriptions, "keys": keys,
                       "registrations": registrations, "plugins": plugins})
            })
    })
}

/// One way to spoil a document.
#[derive(Debug, Clone, Copy)]
enum Spoil {
    DuplicateSubscriberRef,
    EmptyName,
    BadEmail,
    UnknownSubscriber,
    UnknownOffer,
    BadSubscriptionStatus,
    TrialAndEndDate,
    EndBeforeBegin,
    BadDate,
    UnknownSubscription,
    BadKeyStatus,
    MistypedGeneratedKey,
    ControlCharacterKey,
    DuplicateKey,
    UnknownRegistrationKey,
    BadUrl,
    BadUid,
    NoUrlNorUid,
    UrlTakenTwice,
    BadPluginKey,
    BadVersion,
    WrongType,
}

const SPOILS: &[Spoil] = &[
    Spoil::DuplicateSubscriberRef,
    Spoil::EmptyName,
    Spoil::BadEmail,
    Spoil::UnknownSubscriber,
    Spoil::UnknownOffer,
    Spoil::BadSubscriptionStatus,
    Spoil::TrialAndEndDate,
    Spoil::EndBeforeBegin,
    Spoil::BadDate,
    Spoil::UnknownSubscription,
    Spoil::BadKeyStatus,
    Spoil::MistypedGeneratedKey,
    Spoil::ControlCharacterKey,
    Spoil::DuplicateKey,
    Spoil::UnknownRegistrationKey,
    Spoil::BadUrl,
    Spoil::BadUid,
    Spoil::NoUrlNorUid,
    Spoil::UrlTakenTwice,
    Spoil::BadPluginKey,
    Spoil::BadVersion,
    Spoil::WrongType,
];

/// Applies `spoil` to the `at`-th entry of the list it concerns (a no-op when that list is
/// empty, so a spoiled document may still be good).
fn spoil(doc: &mut Value, spoil: Spoil, at: prop::sample::Index) {
    let list = |doc: &mut Value, name: &str| -> Option<usize> {
        let n = doc[name].as_array().map_or(0, Vec::len);
        (n > 0).then(|| at.index(n))
    };
    let set = |doc: &mut Value, name: &str, field: &str, v: Value| {
        if let Some(i) = list(doc, name) {
            doc[name][i][field] = v;
        }
    };
    let dup = |doc: &mut Value, name: &str| {
        if let Some(i) = list(doc, name) {
            let copy = doc[name][i].clone();
            doc[name].as_array_mut().unwrap().push(copy);
        }
    };
    match spoil {
        Spoil::DuplicateSubscriberRef => dup(doc, "subscribers"),
        Spoil::EmptyName => set(doc, "subscribers", "name", json!("  ")),
        Spoil::BadEmail => set(doc, "subscribers", "email", json!("not an email")),
        Spoil::UnknownSubscriber => set(doc, "subscriptions", "subscriber", json!("nobody")),
        Spoil::UnknownOffer => set(doc, "subscriptions", "offer", json!("gold")),
        Spoil::BadSubscriptionStatus => set(doc, "subscriptions", "status", json!("paused")),
        Spoil::TrialAndEndDate => {
            set(doc, "subscriptions", "trial_days", json!(7));
            set(doc, "subscriptions", "end_date", json!("2026-12-31"));
        }
        Spoil::EndBeforeBegin => {
            set(doc, "subscriptions", "begin_date", json!("2026-06-01"));
            set(doc, "subscriptions", "end_date", json!("2026-01-01"));
        }
        Spoil::BadDate => set(doc, "subscriptions", "begin_date", json!("2026-13-01")),
        Spoil::UnknownSubscription => set(doc, "keys", "subscription", json!("nope")),
        Spoil::BadKeyStatus => set(doc, "keys", "status", json!("lost")),
        Spoil::MistypedGeneratedKey => set(
            doc,
            "keys",
            "key",
            json!("GLPI-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA"),
        ),
        Spoil::ControlCharacterKey => set(doc, "keys", "key", json!("bad\u{7}key")),
        Spoil::DuplicateKey => dup(doc, "keys"),
        Spoil::UnknownRegistrationKey => set(doc, "registrations", "key", json!("UNKNOWN")),
        Spoil::BadUrl => set(doc, "registrations", "instance_url", json!("ftp://x.test")),
        Spoil::BadUid => set(doc, "registrations", "instance_uid", json!("bad uid!")),
        Spoil::NoUrlNorUid => {
            set(doc, "registrations", "instance_url", Value::Null);
            set(doc, "registrations", "instance_uid", Value::Null);
        }
        Spoil::UrlTakenTwice => {
            let n = doc["registrations"].as_array().map_or(0, Vec::len);
            if n >= 2 {
                let url = doc["registrations"][0]["instance_url"].clone();
                doc["registrations"][n - 1]["instance_url"] = url;
            }
        }
        Spoil::BadPluginKey => set(doc, "plugins", "key", json!("Bad-Key")),
        Spoil::BadVersion => set(doc, "plugins", "versions", json!([{"num": "../x"}])),
        Spoil::WrongType => set(doc, "keys", "key", json!(42)),
    }
}

/// A coherent document, left alone about half the time, otherwise spoiled one to three ways.
fn document() -> impl Strategy<Value = Value> {
    let spoils = prop_oneof![
        1 => Just(Vec::new()),
        1 => prop::collection::vec(
            (prop::sample::select(SPOILS), any::<prop::sample::Index>()),
            1..4
        ),
    ];
    (coherent(), spoils).prop_map(|(mut doc, spoils)| {
        for (s, at) in spoils {
            spoil(&mut doc, s, at);
        }
        doc
    })
}

#[derive(Default)]
struct Tally {
    unparsed: u32,
    refused: u32,
    loaded: u32,
}

#[test]
fn a_fixture_document_loads_fully_or_leaves_no_rows() {
    let pool = db::Db::open("sqlite::memory:", 1).unwrap();
    let mut conn = pool.get().unwrap();
    // what a fresh server holds: the seeded offers and the demo plugins
    fixtures::reset(&mut conn, now()).unwrap();
    let baseline = counts(&mut conn);
    assert_eq!(baseline.subscribers, 0);
    let conn = RefCell::new(conn);
    let tally = RefCell::new(Tally::default());

    let mut runner = TestRunner::new(Config::with_cases(64));
    runner
        .run(&document(), |doc| {
            let mut conn = conn.borrow_mut();
            let c = &mut *conn;
            let mut tally = tally.borrow_mut();
            let Ok(fx) = serde_json::from_value::<Fixtures>(doc.clone()) else {
                tally.unparsed += 1;
                return Ok(());
            };
            match fixtures::load(c, &fx, now(), &Actor::new("test", None)) {
                Err(e) => {
                    tally.refused += 1;
                    let after = counts(c);
                    prop_assert_eq!(after, baseline, "{} left rows behind: {}", e, doc);
                }
                Ok(loaded) => {
                    tally.loaded += 1;
                    let after = counts(c);
                    prop_assert_eq!(after.subscribers as usize, fx.subscribers.len());
                    prop_assert_eq!(after.subscriptions as usize, fx.subscriptions.len());
                    prop_assert_eq!(after.keys as usize, fx.keys.len());
                    prop_assert_eq!(loaded.registrations.len(), fx.registrations.len());
                    prop_assert!(after.registrations as usize <= fx.registrations.len());
                    fixtures::reset(c, now()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(counts(c), baseline, "reset after {}", doc);
                }
            }
            Ok(())
        })
        .unwrap();

    // the generator must exercise both outcomes, or the property says little
    let t = tally.into_inner();
    eprintln!(
        "fixture documents: {} loaded, {} refused, {} unparsed",
        t.loaded, t.refused, t.unparsed
    );
    assert!(
        t.loaded > 0 && t.refused > 0,
        "loaded {}, refused {}, unparsed {}",
        t.loaded,
        t.refused,
        t.unparsed
    );
}

/// The last stage (plugins) fails after subscribers, subscriptions, keys and a registration
/// were written: all of them are undone.
#[test]
fn a_bad_plugin_at_the_end_undoes_everything_before_it() {
    let pool = db::Db::open("sqlite::memory:", 1).unwrap();
    let mut conn = pool.get().unwrap();
    fixtures::reset(&mut conn, now()).unwrap();
    let baseline = counts(&mut conn);
    let doc = json!({
        "subscribers": [{"ref": "acme", "name": "ACME"}],
        "subscriptions": [{"ref": "s1", "subscriber": "acme", "offer": "advanced"}],
        "keys": [{"key": "TEST-KEY-1", "subscription": "s1"}],
        "registrations": [{"key": "TEST-KEY-1", "instance_url": "https://a.example.com"}],
        "plugins": [{"key": "goodplug", "name": "Good"}, {"key": "Bad-Key", "name": "Bad"}]
    });
    let fx: Fixtures = serde_json::from_value(doc).unwrap();
    let err = fixtures::load(&mut conn, &fx, now(), &Actor::new("test", None)).unwrap_err();
    assert!(err.to_string().contains("plugins[1]"), "{err}");
    assert_eq!(counts(&mut conn), baseline);
}

/// A document of `n` keys, each bound to its own instance, and maybe a bad plugin at the end.
fn bulk(n: usize, bad_plugin_at_the_end: bool) -> Fixtures {
    let keys: Vec<Value> = (0..n)
        .map(|i| json!({"key": format!("BULK-KEY-{i}"), "subscription": "s1"}))
        .collect();
    let registrations: Vec<Value> = (0..n)
        .map(|i| {
            json!({"key": format!("BULK-KEY-{i}"),
                   "instance_url": format!("https://glpi-{i}.bulk.example/glpi")})
        })
        .collect();
    let plugins = if bad_plugin_at_the_end {
        json!([{"key": "Bad-Key", "name": "Bad"}])
    } else {
        json!([])
    };
    serde_json::from_value(json!({
        "subscribers": [{"ref": "acme", "name": "ACME"}],
        "subscriptions": [{"ref": "s1", "subscriber": "acme", "offer": "advanced"}],
        "keys": keys,
        "registrations": registrations,
        "plugins": plugins,
    }))
    .unwrap()
}

/// A load that queues more audit events than a transaction keeps in memory writes them out as
/// it goes ([`db::SPILL_AT`]): the chain is still one intact chain with every event, in order,
/// and a failure after the spills still undoes every row and every event.
#[test]
fn a_bulk_load_spills_its_events_and_stays_all_or_nothing() {
    let n = db::SPILL_AT; // two events per key: the queue spills about twice
    let pool = db::Db::open("sqlite::memory:", 1).unwrap();
    let mut conn = pool.get().unwrap();
    fixtures::reset(&mut conn, now()).unwrap();
    let baseline = counts(&mut conn);

    let err =
        fixtures::load(&mut conn, &bulk(n, true), now(), &Actor::new("test", None)).unwrap_err();
    assert!(err.to_string().contains("plugins[0]"), "{err}");
    assert_eq!(
        counts(&mut conn),
        baseline,
        "nothing of a failed bulk load stays"
    );

    let loaded =
        fixtures::load(&mut conn, &bulk(n, false), now(), &Actor::new("test", None)).unwrap();
    assert_eq!(loaded.keys.len(), n);
    let after = counts(&mut conn);
    assert_eq!(after.keys - baseline.keys, n as i64);
    assert_eq!(after.registrations - baseline.registrations, n as i64);
    assert!(
        after.audit_events - baseline.audit_events >= 2 * n as i64,
        "an event per key and per binding: {after:?}"
    );
    match db::audit::verify_chain(&mut conn).unwrap() {
        db::audit::ChainCheck::Intact { events } => {
            assert_eq!(
                events as i64, after.audit_events,
                "one chain, every event in it"
            )
        }
        broken => panic!("the chain broke across the spills: {broken:?}"),
    }
    let kinds: Vec<String> = {
        use schema::audit_events::dsl as a;
        a::audit_events
            .order(a::id.asc())
            .select(a::action)
            .load(&mut *conn)
            .unwrap()
    };
    let first_bind = kinds
        .iter()
        .position(|k| k.starts_with("registration"))
        .unwrap();
    assert!(
        kinds[..first_bind]
            .iter()
            .filter(|k| *k == "key.issue")
            .count()
            == n,
        "every key.issue event comes before the first binding's, as the load wrote them"
    );
}
