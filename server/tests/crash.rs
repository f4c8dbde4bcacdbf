//! Crash safety, on SQLite and on PostgreSQL: a stream of registrations against the real
//! binary, `kill -9` of the server mid-stream (`Child::kill` sends SIGKILL), then a restart on
//! the same database and data directory.
//!
//! The stream: 16 concurrent clients register fresh keys, each key to its own instance URL
//! (so every request that the server answers before the kill is a `201`). Once 200 answers
//! have arrived the server is killed with requests in flight; each client stops at its first
//! failed request. A request is *sent* when the client starts it, *acknowledged* when its
//! whole `201` answer arrived, *unanswered* otherwise (in flight at the kill, or sent to the
//! dead server).
//!
//! Asserted after the restart, from the admin API (registrations listed with
//! `include_released=true`, so no row can hide):
//! 1. every acknowledged registration is there and in force, with the id, key and canonical
//!    URL of its `201` answer;
//! 2. every registration row belongs to a request this test sent (its key and that request's
//!    URL), and each row that was not acknowledged belongs to an unanswered request: an answer
//!    lost in flight may have been committed, nothing else may exist;
//! 3. no row is half-written: every row has its URL, `bound_at == last_seen_at`, no
//!    `released_at`, and the other writes of its transaction are there too and only with it:
//!    the key's `ver` is 2 (bumped by the bind) exactly for keys that have a row and 1 for every
//!    other key, and the audit trail holds exactly one `registration.bind` `ok` event per row
//!    (same key and URL) and none for any other key; its hash chain verifies as intact;
//! 4. the restarted server carries on: resending each unanswered request answers `200` (same
//!    binding, same id) when its row exists and `201` when it does not.
//!
//! Nothing about timings is asserted.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEYS: usize = 2000;
const CLIENTS: usize = 16;
/// Acknowledged registrations before the kill.
const KILL_AFTER: usize = 200;

fn url_of(i: usize) -> String {
    format!("https://glpi-{i}.crash.example/glpi")
}

/// What the clients saw, by key index.
#[derive(Default)]
struct Log {
    sent: BTreeSet<usize>,
    /// Acknowledged: key index -> registration id of the `201` answer.
    acked: BTreeMap<usize, String>,
}

async fn register(client: &reqwest::Client, base: &str, key: &str, url: &str) -> (u16, Value) {
    let resp = client
        .post(format!("{base}/v1/registrations"))
        .json(&json!({"registration_key": key, "instance_url": url}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn crash_and_restart(db_url: &str, data_dir: &std::path::Path) {
    let client = reqwest::Client::new();
    let mut server = start(db_url, data_dir);
    wait_ready(&client, &mut server).await;
    let subscriber = admin_post(
        &client,
        &server,
        "/v1/admin/subscribers",
        json!({"name": "Crash Corp"}),
    )
    .await;
    let subscription = admin_post(
        &client,
        &server,
        "/v1/admin/subscriptions",
        json!({"subscriber_id": subscriber["id"], "offer": "basic"}),
    )
    .await;
    let issued = admin_post(
        &client,
        &server,
        "/v1/admin/keys/bulk",
        json!({"subscription_id": subscription["id"], "count": KEYS}),
    )
    .await;
    let keys: Arc<Vec<(String, String)>> = Arc::new(
        issued["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["id"].as_str().unwrap().to_owned(),
                    k["key"].as_str().unwrap().to_owned(),
                )
            })
            .collect(),
    );
    assert_eq!(keys.len(), KEYS);

    // the stream: client `c` registers keys c, c + CLIENTS, c + 2 * CLIENTS, ...
    let log = Arc::new(Mutex::new(Log::default()));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (client, keys, log) = (client.clone(), keys.clone(), log.clone());
            let base = server.base.clone();
            actix_web::rt::spawn(async move {
                for i in (c..KEYS).step_by(CLIENTS) {
                    log.lock().unwrap().sent.insert(i);
                    let resp = client
                        .post(format!("{base}/v1/registrations"))
                        .json(&json!({"registration_key": keys[i].1, "instance_url": url_of(i)}))
                        .send()
                        .await;
                    let Ok(resp) = resp else { return };
                    let status = resp.status().as_u16();
                    let Ok(body) = resp.json::<Value>().await else {
                        return;
                    };
                    assert_eq!(
                        status, 201,
                        "before the kill, every answer is a 201: {body}"
                    );
                    let id = body["registration"]["id"].as_str().unwrap().to_owned();
                    log.lock().unwrap().acked.insert(i, id);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while log.lock().unwrap().acked.len() < KILL_AFTER {
        assert!(Instant::now() < deadline, "the stream stalled");
        actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    }
    server.child.kill().unwrap(); // SIGKILL, requests in flight
    server.child.wait().unwrap();
    for w in workers {
        w.await.expect("a client panicked");
    }
    let log = std::mem::take(&mut *log.lock().unwrap());
    assert!(log.acked.len() >= KILL_AFTER);
    assert!(log.sent.len() < KEYS, "the kill came mid-stream");
    let unanswered: BTreeSet<usize> = log
        .sent
        .iter()
        .copied()
        .filter(|i| !log.acked.contains_key(i))
        .collect();
    drop(server);

    let mut server = start(db_url, data_dir);
    wait_ready(&client, &mut server).await;
    let index: BTreeMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    let rows = all_pages(
        &client,
        &server,
        "/v1/admin/registrations?include_released=true",
    )
    .await;
    let mut stored: BTreeMap<usize, String> = BTreeMap::new(); // key index -> registration id
    for r in &rows {
        let i = *index
            .get(r["key_id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("a row for a key this test did not use: {r}"));
        // 2. it belongs to a request we sent, with that request's URL
        assert!(log.sent.contains(&i), "a row for a request never sent: {r}");
        assert_eq!(r["instance_url"], json!(url_of(i)), "{r}");
        // 3. complete
        assert!(r["released_at"].is_null(), "{r}");
        assert!(r["bound_at"].is_string(), "{r}");
        assert_eq!(r["bound_at"], r["last_seen_at"], "{r}");
        let id = r["id"].as_str().unwrap().to_owned();
        assert!(stored.insert(i, id).is_none(), "two rows for one key: {r}");
    }
    // 1. every acknowledged registration is there, as it was answered
    for (i, id) in &log.acked {
        assert_eq!(
            stored.get(i),
            Some(id),
            "acknowledged registration {} lost",
            url_of(*i)
        );
    }
    // 2. rows that were not acknowledged were unanswered requests
    for i in stored.keys() {
        assert!(
            log.acked.contains_key(i) || unanswered.contains(i),
            "row {i} was neither acknowledged nor in flight"
        );
    }
    // 3. the other writes of the bind transaction are there exactly with the row
    for k in all_pages(&client, &server, "/v1/admin/keys").await {
        let Some(&i) = index.get(k["id"].as_str().unwrap()) else {
            continue;
        };
        let expected = if stored.contains_key(&i) { 2 } else { 1 };
        assert_eq!(k["ver"], json!(expected), "key {i}: {k}");
    }
    let events = all_pages(&client, &server, "/v1/admin/audit").await;
    let bound: BTreeMap<usize, String> = events
        .iter()
        .filter(|e| e["action"] == "registration.bind")
        .map(|e| {
            assert_eq!(e["outcome"], "ok", "no refusal in this stream: {e}");
            let i = index[e["key_id"].as_str().unwrap()];
            (i, e["instance_url"].as_str().unwrap().to_owned())
        })
        .collect();
    let bind_events = events
        .iter()
        .filter(|e| e["action"] == "registration.bind")
        .count();
    assert_eq!(bind_events, stored.len(), "one bind event per row");
    let expected: BTreeMap<usize, String> = stored.keys().map(|&i| (i, url_of(i))).collect();
    assert_eq!(bound, expected, "the bind events name exactly the rows");
    let check = admin_get(&client, &server, "/v1/admin/audit/verify").await;
    assert_eq!(check["intact"], true, "{check}");
    eprintln!(
        "{} sent, {} acknowledged, {} unanswered of which {} committed",
        log.sent.len(),
        log.acked.len(),
        unanswered.len(),
        stored.len() - log.acked.len()
    );

    // 4. retrying an unanswered request is safe
    for &i in &unanswered {
        let (status, body) = register(&client, &server.base, &keys[i].1, &url_of(i)).await;
        match stored.get(&i) {
            Some(id) => {
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["registration"]["id"], json!(id), "{body}");
            }
            None => assert_eq!(status, 201, "{body}"),
        }
    }
}

#[actix_web::test]
async fn sqlite_kill_9_mid_stream_loses_no_acknowledged_registration() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    crash_and_restart(&db, dir.path()).await;
}

#[actix_web::test]
async fn postgres_kill_9_mid_stream_loses_no_acknowledged_registration() {
    let Some((base, db_url, name)) = create_pg_database("crash") else {
        return;
    };
    let _db = PgDb { base, name };
    let dir = tempfile::tempdir().unwrap();
    crash_and_restart(&db_url, dir.path()).await;
}
