//! The database path of `/info` and validations with the key cache off: when the answer needs
//! no write, a worker reads a key's state on its own SQLite connection (`db::reader`), or on
//! PostgreSQL in a batch of reads (`db::batch`); everything else (a bind, a refusal and its
//! audit row) goes through the pool. `/metrics` counts each path:
//! `glpi_network_key_state_reads_total{path}`. (A locked database is tested on the reader
//! itself, in `db::reader`.)

use crate::glpi::info;
use crate::helpers::{Db, TestApp, spawn_app};
use serde_json::json;

const URL: &str = "https://worker.example.com/glpi";
const UID: &str = "work0000000000000000000000000000000000001";

/// A counter of `/metrics` (0 when absent).
fn counter(text: &str, name: &str) -> u64 {
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// `(worker, batch, pool)` key-state reads counted by `/metrics`.
async fn reads(app: &TestApp) -> (u64, u64, u64) {
    let text = app.metrics().await;
    let count = |path: &str| {
        counter(
            &text,
            &format!("glpi_network_key_state_reads_total{{path=\"{path}\"}}"),
        )
    };
    (count("worker"), count("batch"), count("pool"))
}

/// The reads since `before`.
async fn since(app: &TestApp, before: (u64, u64, u64)) -> (u64, u64, u64) {
    let now = reads(app).await;
    (now.0 - before.0, now.1 - before.1, now.2 - before.2)
}

async fn status_of(app: &TestApp, key: &str) -> String {
    let v = app.validate(key, URL).await.expect(200);
    v["status"].as_str().unwrap().to_owned()
}

async fn last_seen(app: &TestApp, reg_id: &str) -> String {
    let v = app
        .admin_get(&format!("/v1/admin/registrations/{reg_id}"))
        .await
        .expect(200);
    v["last_seen_at"].as_str().unwrap().to_owned()
}

async fn audited(app: &TestApp, action: &str, outcome: &str) -> bool {
    let audit = app.admin_get("/v1/admin/audit?limit=500").await.expect(200);
    audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == action && e["outcome"] == outcome)
}

async fn cache_off(db: Db) -> Option<TestApp> {
    spawn_app(db, |b| {
        b.settings(|s| {
            s.key_cache_size = 0;
        })
    })
    .await
}

/// Every answer and every rule of the pooled path, with the cache off: `split(read, pool)`
/// is `read` reads on the worker (SQLite) or in a batch (PostgreSQL) and `pool` through the pool.
async fn scenario(app: &TestApp, sqlite: bool) {
    let split = |read: u64, pool: u64| {
        if sqlite {
            (read, 0, pool)
        } else {
            (0, read, pool)
        }
    };
    let sub = app.subscription("standard", json!({})).await;
    let (key_id, key) = app.issue_key(&sub).await;
    let reg = app.register(&key, URL).await.expect(201);
    let reg_id = reg["registration"]["id"].as_str().unwrap().to_owned();

    let before = reads(app).await;
    for _ in 0..3 {
        assert_eq!(status_of(app, &key).await, "valid");
    }
    assert_eq!(since(app, before).await, split(3, 0), "valid validations");

    // a due last_seen_at is recorded by the read and shown at once, without a write
    let seen = last_seen(app, &reg_id).await;
    app.clock.advance(120);
    let before = reads(app).await;
    assert_eq!(status_of(app, &key).await, "valid");
    assert_eq!(
        since(app, before).await,
        split(1, 0),
        "a validation with last_seen_at due"
    );
    let after = last_seen(app, &reg_id).await;
    assert!(after > seen, "last_seen_at moved: {seen} -> {after}");

    // /info: the first call with a UID binds it (pool), the next ones only read
    let before = reads(app).await;
    assert_eq!(info(app, &key, UID, "en_GB").await["is_valid"], true);
    assert_eq!(
        since(app, before).await,
        split(0, 1),
        "the /info that binds the UID"
    );
    let before = reads(app).await;
    for _ in 0..2 {
        assert_eq!(info(app, &key, UID, "en_GB").await["is_valid"], true);
    }
    assert_eq!(
        since(app, before).await,
        split(2, 0),
        "/info of the bound instance"
    );
    let other = info(
        app,
        &key,
        "othe0000000000000000000000000000000000001",
        "en_GB",
    )
    .await;
    assert_eq!(other["is_valid"], false, "another UID: {other}");

    // a refusal goes through the pool, which audits it
    app.admin_post(&format!("/v1/admin/keys/{key_id}/revoke"), json!({}))
        .await
        .expect(200);
    let before = reads(app).await;
    assert_eq!(status_of(app, &key).await, "key_revoked");
    assert_eq!(info(app, &key, UID, "en_GB").await["is_valid"], false);
    assert_eq!(since(app, before).await, split(0, 2), "refusals");
    assert!(audited(app, "validation", "key_revoked").await);
    app.clock.reset();
}

#[tokio::test]
async fn sqlite_reads_on_the_worker_and_keeps_every_rule() {
    let app = cache_off(Db::Sqlite).await.expect("SQLite always runs");
    scenario(&app, true).await;
}

#[tokio::test]
async fn postgres_reads_in_batches_and_keeps_every_rule() {
    let Some(app) = cache_off(Db::Postgres).await else {
        return;
    };
    scenario(&app, false).await;
}

/// Concurrent validations of many keys on PostgreSQL: each gets its own key's answer, every
/// read is a batched one, and the batches gather several reads into one statement.
#[tokio::test]
async fn postgres_gathers_concurrent_reads_into_batches() {
    const KEYS: usize = 48;
    const ROUNDS: usize = 4;
    let Some(app) = cache_off(Db::Postgres).await else {
        return;
    };
    let sub = app.subscription("standard", json!({})).await;
    let mut keys = Vec::new();
    for i in 0..KEYS {
        let (_, key) = app.issue_key(&sub).await;
        let url = format!("https://batch{i}.example.com/glpi");
        app.register(&key, &url).await.expect(201);
        keys.push((key, url));
    }
    // one key of the lot is revoked: its answer must stay its own
    let (revoked_id, revoked) = app.issue_key(&sub).await;
    app.register(&revoked, URL).await.expect(201);
    app.admin_post(&format!("/v1/admin/keys/{revoked_id}/revoke"), json!({}))
        .await
        .expect(200);

    let before = reads(&app).await;
    let batches_before = counter(&app.metrics().await, "glpi_network_key_state_batches_total");
    let app = &app;
    for _ in 0..ROUNDS {
        let asks = keys.iter().map(|(key, url)| async move {
            let v = app.validate(key, url).await.expect(200);
            let token = v["token"].as_str().unwrap();
            let instance_url = crate::licenses::claims(token)["instance_url"].clone();
            (v["status"].as_str().unwrap().to_owned(), instance_url, url)
        });
        let (answers, refused) = futures::join!(futures::future::join_all(asks), async {
            status_of(app, &revoked).await
        });
        for (status, instance_url, url) in answers {
            assert_eq!(status, "valid", "{url}");
            assert_eq!(instance_url, url.as_str(), "each answer is its own key's");
        }
        assert_eq!(refused, "key_revoked");
    }
    let (worker, batch, pool) = since(app, before).await;
    let batches =
        counter(&app.metrics().await, "glpi_network_key_state_batches_total") - batches_before;
    let n = (KEYS * ROUNDS) as u64;
    assert_eq!(worker, 0);
    assert_eq!(batch, n, "every valid read was batched");
    assert_eq!(pool, ROUNDS as u64, "the refusals went through the pool");
    // the refused key is read in a batch too, before the pool refuses it
    assert!(
        batches > 0 && batches < n + ROUNDS as u64,
        "{batches} statements for {} reads: concurrent reads share statements",
        n + ROUNDS as u64
    );
}
