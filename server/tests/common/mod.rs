//! Helpers shared by the tests that run the real server binary as processes (`crash.rs`,
//! `race_processes.rs`, `api/processes.rs`): a fresh PostgreSQL database per test, server processes killed when
//! dropped, and the admin calls they make.
#![allow(dead_code)] // each test binary uses its own subset

use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin token of every server these helpers start.
pub const ADMIN: &str = "process-test-admin-token";

/// A fresh PostgreSQL database named `gn_<prefix>_<random>`; returns (server URL, db URL, name).
/// Same rule as `tests/api/helpers.rs`: skip when `TEST_DATABASE_URL` is unset, unless `CI` is.
pub fn create_pg_database(prefix: &str) -> Option<(String, String, String)> {
    let base = match std::env::var("TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "TEST_DATABASE_URL must be set in CI: the PostgreSQL tests cannot be skipped there"
                );
            }
            eprintln!("skipping a PostgreSQL test: TEST_DATABASE_URL is not set");
            return None;
        }
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("gn_{prefix}_{nanos:x}{:x}", std::process::id());
    let mut conn = PgConnection::establish(&base)
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at TEST_DATABASE_URL: {e}"));
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("CREATE DATABASE");
    let mut url = url::Url::parse(&base).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    // Tests talk to a local server: no TLS. libpq's OpenSSL otherwise races the process's
    // exit-time OPENSSL_cleanup when r2d2 is still opening a connection in the background.
    if !url.query_pairs().any(|(k, _)| k == "sslmode") {
        url.query_pairs_mut().append_pair("sslmode", "disable");
    }
    Some((base, url.to_string(), name))
}

/// Drops the test database when the test ends, passed or not (after the servers stopped).
pub struct PgDb {
    pub base: String,
    pub name: String,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.base) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// A server process, killed when dropped.
pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process on `db_url` with limits raised for load (registrations per key, failed
/// look-ups) and 2 workers.
pub fn start(db_url: &str, data_dir: &std::path::Path) -> Proc {
    start_with(
        db_url,
        data_dir,
        &[
            "--workers",
            "2",
            "--registrations-per-key-per-minute",
            "1000",
            "--failed-lookups-per-minute",
            "100000",
        ],
    )
}

/// A server process on `db_url` with these extra flags.
pub fn start_with(db_url: &str, data_dir: &std::path::Path, extra: &[&str]) -> Proc {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_glpi-network-server"))
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--database-url", db_url, "--admin-token", ADMIN])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

pub async fn wait_ready(client: &reqwest::Client, p: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{}/readyz", p.base)).send().await
            && r.status() == 200
        {
            return;
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("server exited early: {status}");
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn admin_post(client: &reqwest::Client, p: &Proc, path: &str, body: Value) -> Value {
    let resp = client
        .post(format!("{}{path}", p.base))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "POST {path}");
    resp.json().await.unwrap()
}

pub async fn admin_get(client: &reqwest::Client, p: &Proc, path: &str) -> Value {
    let resp = client
        .get(format!("{}{path}", p.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

/// Every item of a paged admin list (`limit=500`, following `next_cursor`).
pub async fn all_pages(client: &reqwest::Client, p: &Proc, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = admin_get(client, p, &url).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
    panic!("{path}: more pages than expected");
}
