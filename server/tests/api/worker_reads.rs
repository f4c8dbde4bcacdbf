//! The database path of `/info` and validations with the key cache off: on SQLite a worker
//! reads a key's state on its own connection (`db::reader`) when the answer needs no write, and
//! everything else (a bind, a refusal and its audit row, PostgreSQL) goes through the pool.
//! `/metrics` counts both: `glpi_network_key_state_reads_total{path}`. (A locked database is
//! tested on the reader itself, in `db::reader`.)

use crate::glpi::info;
use crate::helpers::{Db, TestApp, spawn_app};
use serde_json::json;

const URL: &str = "https://worker.example.com/glpi";
const UID: &str = "work0000000000000000000000000000000000001";

/// `(worker, pool)` key-state reads counted by `/metrics`.
async fn reads(app: &TestApp) -> (u64, u64) {
    let text = app.metrics().await;
    let count = |path: &str| {
        let prefix = format!("glpi_network_key_state_reads_total{{path=\"{path}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    (count("worker"), count("pool"))
}

/// The reads since `before`.
async fn since(app: &TestApp, before: (u64, u64)) -> (u64, u64) {
    let now = reads(app).await;
    (now.0 - before.0, now.1 - before.1)
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

/// Every answer and every rule of the pooled path, with the cache off: `(worker, pool)` as
/// counted on SQLite; on PostgreSQL every read is a pool read.
async fn scenario(app: &TestApp, sqlite: bool) {
    let split = |worker: u64, pool: u64| {
        if sqlite {
            (worker, pool)
        } else {
            (0, worker + pool)
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
async fn postgres_reads_through_the_pool_and_keeps_every_rule() {
    let Some(app) = cache_off(Db::Postgres).await else {
        return;
    };
    scenario(&app, false).await;
}
