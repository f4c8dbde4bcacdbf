//! The real server (the server crate's `TestServer`, test mode off), admin helpers over
//! blocking HTTP, and a client clock the tests move.

use glpi_network_client::{Client, ClientBuilder, RegistrationKey};
use glpi_network_server::domain::clock::Clock as ServerClock;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub const INSTANCE: &str = "https://glpi.example.com/glpi";

/// The real server, stopped on drop.
pub struct TestServer {
    pub url: String,
    pub admin_token: String,
    pub clock: ServerClock,
    server: glpi_network_server::TestServer,
    http: ureq::Agent,
}

pub fn spawn_server() -> TestServer {
    let server = glpi_network_server::TestServer::builder()
        .test_mode(false)
        .workers(1)
        .start()
        .expect("the server starts");
    TestServer {
        url: server.url().to_owned(),
        admin_token: server.admin_token().to_owned(),
        clock: server.clock().clone(),
        server,
        http: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent(),
    }
}

impl TestServer {
    /// Stops the server and waits until its port is closed.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.admin_token);
        let res = match method {
            "POST" => self
                .http
                .post(&url)
                .header("Authorization", &auth)
                .send_json(body.unwrap_or(json!({}))),
            _ => self.http.get(&url).header("Authorization", &auth).call(),
        }
        .unwrap();
        let status = res.status().as_u16();
        let text = res.into_body().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    #[track_caller]
    pub fn admin_post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.admin("POST", path, Some(body));
        assert!((200..300).contains(&status), "POST {path}: {status} {v}");
        v
    }

    /// A fresh subscription of `offer` with one key: (subscription id, key id, key).
    pub fn new_key(&self, offer: &str) -> (String, String, RegistrationKey) {
        let sub = self.admin_post(
            "/v1/admin/subscribers",
            json!({"name": "ACME Corp", "email": "it@acme.test"}),
        );
        let subscription = self.admin_post(
            "/v1/admin/subscriptions",
            json!({"subscriber_id": sub["id"], "offer": offer}),
        );
        let sid = subscription["id"].as_str().unwrap().to_owned();
        let key = self.admin_post("/v1/admin/keys", json!({"subscription_id": sid}));
        let plain = RegistrationKey::parse(key["key"].as_str().unwrap()).unwrap();
        (sid, key["id"].as_str().unwrap().to_owned(), plain)
    }

    pub fn revoke(&self, key_id: &str) {
        self.admin_post(&format!("/v1/admin/keys/{key_id}/revoke"), json!({}));
    }

    pub fn suspend(&self, subscription_id: &str) {
        self.admin_post(
            &format!("/v1/admin/subscriptions/{subscription_id}/suspend"),
            json!({}),
        );
    }

    pub fn resume(&self, subscription_id: &str) {
        self.admin_post(
            &format!("/v1/admin/subscriptions/{subscription_id}/resume"),
            json!({}),
        );
    }

    pub fn rotate_signing_key(&self) {
        self.admin_post("/v1/admin/signing-keys/rotate", json!({}));
    }

    /// The number of unreleased registrations the admin API lists.
    pub fn registrations(&self) -> usize {
        let (status, v) = self.admin("GET", "/v1/admin/registrations", None);
        assert_eq!(status, 200, "{v}");
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["released_at"].is_null())
            .count()
    }
}

/// A client clock: real time plus an offset the test moves.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.0.load(Ordering::SeqCst)
    }

    pub fn as_fn(&self) -> impl Fn() -> i64 + Send + Sync + 'static {
        let c = self.clone();
        move || c.now()
    }
}

/// A temp dir holding the cache.
pub struct CacheDir(tempfile::TempDir);

impl CacheDir {
    pub fn new() -> Self {
        CacheDir(tempfile::tempdir().unwrap())
    }

    pub fn path(&self) -> PathBuf {
        self.0.path().join("glpi-network").join("state.json")
    }
}

/// A builder for `server` and [`INSTANCE`] with the cache in `cache` and the clock `clock`.
pub fn builder(server: &str, cache: &CacheDir, clock: &TestClock) -> ClientBuilder {
    Client::builder()
        .server_url(server)
        .instance_url(INSTANCE)
        .cache_path(cache.path())
        .clock(clock.as_fn())
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
}
