//! Two real server processes on one fresh PostgreSQL database race 1,000 registrations:
//! 100 instance URLs, 10 competing keys for each, every URL's competitors split between the two
//! processes and all 1,000 requests in flight at once.
//!
//! Asserted (behaviour only, never timings):
//! - exactly 100 answers are `201` (one per URL, with the winning key's id and the canonical
//!   URL in the answer) and the 900 others are `409 url_already_registered`; no `5xx`, no other
//!   answer;
//! - the admin API (asked of either process) lists exactly 100 bindings in force, one per URL,
//!   each held by the key that was answered `201`;
//! - the audit trail agrees: 100 `registration.bind` events with outcome `ok` (the winners'
//!   keys and URLs) and 900 refused ones (`url_already_registered`, the losers' keys and URLs),
//!   and `GET /v1/admin/audit/verify` says the hash chain is intact, on both processes.
//!
//! Needs `TEST_DATABASE_URL` (skipped with a message on a developer machine without it, a
//! failure when `CI` is set), like the other PostgreSQL tests.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const URLS: usize = 100;
const KEYS_PER_URL: usize = 10;

fn url_of(u: usize) -> String {
    format!("https://glpi-{u}.race.example/glpi")
}

#[actix_web::test]
async fn two_processes_race_1000_registrations_for_100_urls_and_exactly_100_bind() {
    let Some((base, db_url, name)) = create_pg_database("race") else {
        return;
    };
    let _db = PgDb { base, name };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut a = start(&db_url, dir.path());
    let mut b = start(&db_url, dir.path());
    wait_ready(&client, &mut a).await;
    wait_ready(&client, &mut b).await;
    let procs = [&a, &b];

    let subscriber = admin_post(
        &client,
        &a,
        "/v1/admin/subscribers",
        json!({"name": "Race Corp"}),
    )
    .await;
    let subscription = admin_post(
        &client,
        &b,
        "/v1/admin/subscriptions",
        json!({"subscriber_id": subscriber["id"], "offer": "basic"}),
    )
    .await;
    let issued = admin_post(
        &client,
        &a,
        "/v1/admin/keys/bulk",
        json!({"subscription_id": subscription["id"], "count": URLS * KEYS_PER_URL}),
    )
    .await;
    // (key id, plaintext); key `u * KEYS_PER_URL + j` competes for URL `u`
    let keys: Vec<(String, String)> = issued["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_owned(),
                k["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(keys.len(), URLS * KEYS_PER_URL);

    // All 1,000 at once; a URL's 10 competitors are adjacent and alternate between processes.
    let requests = (0..URLS).flat_map(|u| (0..KEYS_PER_URL).map(move |j| (u, j)));
    let answers = futures::future::join_all(requests.map(|(u, j)| {
        let client = client.clone();
        let target = procs[j % 2].base.clone();
        let (key_id, key) = keys[u * KEYS_PER_URL + j].clone();
        async move {
            let resp = client
                .post(format!("{target}/v1/registrations"))
                .json(&json!({"registration_key": key, "instance_url": url_of(u)}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("request for URL {u} key {j}: {e}"));
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.expect("a JSON answer");
            (u, key_id, status, body)
        }
    }))
    .await;

    let mut winners: BTreeMap<String, String> = BTreeMap::new(); // URL -> key id
    let mut losers: BTreeSet<(String, String)> = BTreeSet::new(); // (key id, URL)
    for (u, key_id, status, body) in &answers {
        assert!(*status < 500, "a 5xx: {status} {body}");
        match status {
            201 => {
                assert_eq!(body["registration"]["key_id"], json!(key_id), "{body}");
                assert_eq!(body["registration"]["instance_url"], json!(url_of(*u)));
                let previous = winners.insert(url_of(*u), key_id.clone());
                assert!(previous.is_none(), "a second 201 for {}", url_of(*u));
            }
            409 => {
                assert_eq!(
                    body["error"]["code"], "url_already_registered",
                    "unexpected 409: {body}"
                );
                losers.insert((key_id.clone(), url_of(*u)));
            }
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), URLS, "exactly one 201 per URL");
    assert_eq!(
        losers.len(),
        URLS * (KEYS_PER_URL - 1),
        "every other one a 409"
    );

    // the database agrees, whichever process is asked
    for p in procs {
        let bindings = all_pages(&client, p, "/v1/admin/registrations").await;
        assert_eq!(bindings.len(), URLS, "exactly 100 bindings");
        let listed: BTreeMap<String, String> = bindings
            .iter()
            .map(|r| {
                (
                    r["instance_url"].as_str().unwrap().to_owned(),
                    r["key_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(listed, winners, "each URL held by the key answered 201");
    }

    // and so does the audit trail
    let events = all_pages(&client, &a, "/v1/admin/audit").await;
    let binds: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "registration.bind")
        .collect();
    let pair = |e: &Value| {
        (
            e["key_id"].as_str().unwrap_or_default().to_owned(),
            e["instance_url"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let ok: BTreeMap<String, String> = binds
        .iter()
        .filter(|e| e["outcome"] == "ok")
        .map(|e| {
            let (k, u) = pair(e);
            (u, k)
        })
        .collect();
    let ok_events = binds.iter().filter(|e| e["outcome"] == "ok").count();
    assert_eq!(ok_events, URLS, "100 registration.bind ok events");
    assert_eq!(ok, winners, "the ok events name the winners");
    let refused: Vec<&&Value> = binds.iter().filter(|e| e["outcome"] != "ok").collect();
    assert_eq!(
        refused.len(),
        URLS * (KEYS_PER_URL - 1),
        "900 refused events"
    );
    assert!(
        refused
            .iter()
            .all(|e| e["outcome"] == "url_already_registered"),
        "every refusal is url_already_registered"
    );
    let refused: BTreeSet<(String, String)> = refused.iter().map(|e| pair(e)).collect();
    assert_eq!(refused, losers, "the refused events name the losers");
    for p in procs {
        let check = admin_get(&client, p, "/v1/admin/audit/verify").await;
        assert_eq!(check["intact"], true, "{check}");
        assert_eq!(check["events"], json!(events.len()), "{check}");
    }
    drop(a);
    drop(b);
}
