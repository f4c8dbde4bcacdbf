//! `spawn_app`: the real server (a [`TestServer`] with test mode off) on a random port, on a
//! fresh SQLite file or a fresh PostgreSQL database (dropped afterwards), with helpers per
//! endpoint.

use glpi_network_server::TestServer;
use glpi_network_server::domain::clock::Clock;
use glpi_network_server::testmode::server::TestServerBuilder;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub admin_token: String,
    pub clock: Clock,
    pub client: reqwest::Client,
    /// Taken before the server was built: everything it loaded at start is younger.
    pub started: std::time::Instant,
    /// Stopped (joining its workers and their connections) before `pg` drops the database:
    /// fields drop in declaration order.
    _server: TestServer,
    _pg: Option<crate::common::PgDb>,
}

/// A fresh PostgreSQL database `gn_test_<random>` (see `common::create_pg_database`).
pub fn create_pg_database() -> Option<(String, String, String)> {
    crate::common::create_pg_database("test")
}

/// Starts the server, with the builder options `configure` adds; `None` when the backend is
/// unavailable on a developer machine.
pub async fn spawn_app(
    db: Db,
    configure: impl FnOnce(TestServerBuilder) -> TestServerBuilder,
) -> Option<TestApp> {
    let started = std::time::Instant::now();
    let mut builder = configure(TestServer::builder().test_mode(false).workers(2));
    let mut pg = None;
    if db == Db::Postgres {
        let (base, url, name) = create_pg_database()?;
        builder = builder.database_url(&url);
        pg = Some(crate::common::PgDb { base, name });
    }
    let server = builder.start().expect("server builds");
    Some(TestApp {
        address: server.url().to_owned(),
        admin_token: server.admin_token().to_owned(),
        clock: server.clock().clone(),
        client: reqwest::Client::new(),
        started,
        _server: server,
        _pg: pg,
    })
}

/// A decoded answer.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub async fn from(resp: Response) -> Answer {
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Answer { status, body }
    }

    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {}",
            self.body
        );
        self.body
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {}",
            self.body
        );
        assert_eq!(self.code(), code, "unexpected answer: {}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn admin_get(&self, path: &str) -> Answer {
        Answer::from(
            self.client
                .get(self.url(path))
                .bearer_auth(&self.admin_token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Answer {
        Answer::from(
            self.client
                .post(self.url(path))
                .bearer_auth(&self.admin_token)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn admin_delete(&self, path: &str) -> Answer {
        Answer::from(
            self.client
                .delete(self.url(path))
                .bearer_auth(&self.admin_token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        Answer::from(
            self.client
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Creates a subscriber and a subscription; returns the subscription id.
    pub async fn subscription(&self, offer: &str, extra: Value) -> String {
        let sub = self
            .admin_post(
                "/v1/admin/subscribers",
                json!({"name": "ACME Corp", "email": "it@acme.test"}),
            )
            .await
            .expect(201);
        let mut body = json!({"subscriber_id": sub["id"], "offer": offer});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.admin_post("/v1/admin/subscriptions", body)
            .await
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Issues a key for a subscription; returns (key id, plaintext).
    pub async fn issue_key(&self, subscription_id: &str) -> (String, String) {
        let k = self
            .admin_post(
                "/v1/admin/keys",
                json!({"subscription_id": subscription_id}),
            )
            .await
            .expect(201);
        (
            k["id"].as_str().unwrap().to_owned(),
            k["key"].as_str().unwrap().to_owned(),
        )
    }

    /// A fresh `basic` subscription with one key: (key id, plaintext).
    pub async fn new_key(&self) -> (String, String) {
        let sub = self.subscription("basic", json!({})).await;
        self.issue_key(&sub).await
    }

    pub async fn register(&self, key: &str, url: &str) -> Answer {
        self.post(
            "/v1/registrations",
            json!({"registration_key": key, "instance_url": url}),
        )
        .await
    }

    pub async fn validate(&self, key: &str, url: &str) -> Answer {
        self.post(
            "/v1/validations",
            json!({"registration_key": key, "instance_url": url}),
        )
        .await
    }

    pub async fn release(&self, key: &str, url: &str) -> Answer {
        Answer::from(
            self.client
                .delete(self.url("/v1/registrations"))
                .json(&json!({"registration_key": key, "instance_url": url}))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    /// The key's `ver` as the admin API reports it.
    pub async fn key_ver(&self, key_id: &str) -> i64 {
        self.admin_get(&format!("/v1/admin/keys/{key_id}"))
            .await
            .expect(200)["ver"]
            .as_i64()
            .unwrap()
    }
}

/// Declares each scenario `async fn name(app: TestApp)` as two tests, `sqlite::name` and
/// `postgres::name`. With `configure = f;` first, each server is started by
/// [`spawn_app`]`(db, f)`.
#[macro_export]
macro_rules! on_both_backends {
    (configure = $configure:expr; $($name:ident),* $(,)?) => {
        /// The builder options of this file's servers.
        fn configure(
            b: glpi_network_server::testmode::server::TestServerBuilder,
        ) -> glpi_network_server::testmode::server::TestServerBuilder {
            let f: fn(
                glpi_network_server::testmode::server::TestServerBuilder,
            ) -> glpi_network_server::testmode::server::TestServerBuilder = $configure;
            f(b)
        }
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    if let Some(app) = $crate::helpers::spawn_app($crate::helpers::Db::Sqlite, super::configure).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    if let Some(app) = $crate::helpers::spawn_app($crate::helpers::Db::Postgres, super::configure).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(configure = |b| b; $($name),*);
    };
}

impl TestApp {
    /// The server's JWKS.
    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        let resp = self
            .client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Verifies a token against the server's current JWKS, at the server's clock.
    pub async fn verify(
        &self,
        token: &str,
    ) -> Result<glpi_network_shared::Claims, glpi_network_shared::TokenError> {
        let v = glpi_network_shared::Verifier::new(&self.address, &self.jwks().await).unwrap();
        v.verify(token, self.clock.now().timestamp(), &Default::default())
    }
}
