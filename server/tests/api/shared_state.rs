//! Two real server processes on one PostgreSQL database share their limits and see each
//! other's changes within a second, never flipping back (DESIGN §9).

use crate::common::{PgDb, Proc, start_with, wait_ready};
use crate::helpers::create_pg_database;
use serde_json::json;
use std::time::Duration;

/// Waits until at least 15 s are left in the current minute (the limits' window).
async fn away_from_a_window_edge() {
    loop {
        let s = chrono::Utc::now().timestamp().rem_euclid(60);
        if s < 45 {
            return;
        }
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn two(db_url: &str, dir: &std::path::Path, extra: &[&str]) -> (Proc, Proc) {
    let client = reqwest::Client::new();
    let mut a = start_with(db_url, dir, extra);
    let mut b = start_with(db_url, dir, extra);
    wait_ready(&client, &mut a).await;
    wait_ready(&client, &mut b).await;
    (a, b)
}

#[actix_web::test]
async fn two_processes_share_the_failed_lookup_allowance() {
    let Some((base, db_url, name)) = create_pg_database() else {
        return;
    };
    let _db = PgDb { base, name };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two(
        &db_url,
        dir.path(),
        &["--workers", "2", "--failed-lookups-per-minute", "30"],
    )
    .await;
    let client = reqwest::Client::new();
    away_from_a_window_edge().await;
    let statuses = futures::future::join_all((0..200).map(|i| {
        let client = &client;
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        async move {
            client
                .post(format!("{base}/v1/validations"))
                .json(&json!({"registration_key": format!("unknown-{i}"), "instance_url": "https://glpi.example.com"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    let not_found = statuses.iter().filter(|s| **s == 404).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    eprintln!("two processes, 200 concurrent failed look-ups: {not_found} x 404, {limited} x 429");
    assert_eq!(not_found + limited, 200, "{statuses:?}");
    assert!(not_found <= 30, "{not_found} answered 404, allowance 30");
    assert!(not_found >= 1);
}
