//! `TestServer`: the real server in-process, for Rust integration tests of programs that talk to
//! GLPI Network, and the one way this workspace's own tests start a server on a thread. It
//! listens on a random port of 127.0.0.1 with a temporary SQLite database (or the database
//! given) and test mode on (unless turned off), and stops (joining its threads) when dropped.
//!
//! ```
//! use glpi_network_server::testmode::server::TestServer;
//!
//! let server = TestServer::builder()
//!     .signing_seed("my-suite")
//!     .fixtures_json(serde_json::json!({
//!         "subscribers": [{"ref": "acme", "name": "ACME"}],
//!         "subscriptions": [{"ref": "s", "subscriber": "acme", "offer": "standard"}],
//!         "keys": [{"key": "TEST-KEY-0001", "subscription": "s"}]
//!     }))
//!     .start()
//!     .unwrap();
//! let health = std::net::TcpStream::connect(server.url().trim_start_matches("http://"));
//! assert!(health.is_ok());
//! server.clock().advance(86_400); // the server's clock, shared with every rule
//! ```

use crate::app::Application;
use crate::config::Settings;
use crate::db::audit::Actor;
use crate::domain::clock::Clock;
use crate::testmode::fixtures::{self, Fixtures};
use std::sync::mpsc;

/// A running in-process server in test mode.
pub struct TestServer {
    url: String,
    admin_token: String,
    clock: Clock,
    handle: Option<actix_web::dev::ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// A change to the settings a [`TestServer`] starts with.
type SettingsHook = Box<dyn FnOnce(&mut Settings) + Send>;

/// Options for [`TestServer`].
#[derive(Default)]
pub struct TestServerBuilder {
    settings: Option<SettingsHook>,
    fixtures: Option<Fixtures>,
    signing_seed: Option<String>,
    database_url: Option<String>,
    admin_token: Option<String>,
    test_mode: Option<bool>,
    workers: Option<usize>,
    key_cache_ttl: Option<u64>,
    webhooks_allow_private: bool,
}

impl TestServerBuilder {
    /// Fixtures loaded before the server answers.
    pub fn fixtures(mut self, fx: Fixtures) -> Self {
        self.fixtures = Some(fx);
        self
    }

    /// Fixtures as JSON (the `POST /_test/fixtures` body). Panics on a malformed document.
    pub fn fixtures_json(self, fx: serde_json::Value) -> Self {
        self.fixtures(serde_json::from_value(fx).expect("fixtures JSON has the documented shape"))
    }

    /// Derive the signing key from this string, so the JWKS is known in advance.
    pub fn signing_seed(mut self, seed: &str) -> Self {
        self.signing_seed = Some(seed.to_owned());
        self
    }

    /// Use this database instead of a temporary SQLite file (e.g. a PostgreSQL test database).
    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Use this admin token instead of a generated one.
    pub fn admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(token.to_owned());
        self
    }

    /// Changes any other setting (e.g. `portal_signup`, `public_url`) before the server starts.
    pub fn settings(mut self, f: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        self.settings = Some(Box::new(f));
        self
    }

    /// Turn test mode (the `/_test` routes and fault rules) off: the server then behaves as in
    /// production. On by default.
    pub fn test_mode(mut self, on: bool) -> Self {
        self.test_mode = Some(on);
        self
    }

    /// The number of HTTP workers (2 by default).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Seconds a cached key state is trusted (`--key-cache-ttl`, 5 by default). The server checks
    /// the database for other processes' changes every half TTL and empties its key cache when
    /// one is seen: a long TTL keeps those checks out of a test that counts cache hits.
    pub fn key_cache_ttl(mut self, secs: u64) -> Self {
        self.key_cache_ttl = Some(secs);
        self
    }

    /// Lets webhooks target loopback and other private addresses (`--webhooks-allow-private`),
    /// so a test's receiver on `127.0.0.1` can take deliveries.
    pub fn webhooks_allow_private(mut self, on: bool) -> Self {
        self.webhooks_allow_private = on;
        self
    }

    /// Starts the server and waits until it listens.
    pub fn start(self) -> anyhow::Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let mut settings = Settings::new("127.0.0.1:0", dir.path().to_path_buf());
        settings.test_mode = self.test_mode.unwrap_or(true);
        settings.workers = Some(self.workers.unwrap_or(2));
        settings.signing_seed = self.signing_seed;
        settings.database_url = self.database_url;
        settings.admin_token = self.admin_token;
        settings.webhooks_allow_private = self.webhooks_allow_private;
        if let Some(ttl) = self.key_cache_ttl {
            settings.key_cache_ttl = ttl;
        }
        if let Some(f) = self.settings {
            f(&mut settings);
        }
        let fx = self.fixtures;
        let (tx, rx) = mpsc::channel::<Started>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(serve(settings, fx, tx));
        });
        let (port, admin_token, clock, handle) = rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the test server thread died"))??;
        Ok(TestServer {
            url: format!("http://127.0.0.1:{port}"),
            admin_token,
            clock,
            handle: Some(handle),
            thread: Some(thread),
            _dir: dir,
        })
    }
}

/// What the server thread reports once it listens (or why it could not start).
type Started = anyhow::Result<(u16, String, Clock, actix_web::dev::ServerHandle)>;

/// Builds the server, loads the fixtures, reports, and serves until stopped (on the server's
/// own thread and actix system).
async fn serve(settings: Settings, fx: Option<Fixtures>, tx: mpsc::Sender<Started>) {
    let app = match Application::build(&settings) {
        Ok(app) => app,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    if let Some(fx) = fx {
        let state = app.state();
        let loaded = state
            .db
            .get()
            .map_err(anyhow::Error::from)
            .and_then(|mut c| {
                let actor = Actor::new("test", None);
                fixtures::load(&mut c, &fx, state.clock.now_naive(), &actor)
                    .map_err(|e| anyhow::anyhow!("fixtures: {e}"))
            });
        if let Err(e) = loaded {
            let _ = tx.send(Err(e));
            return;
        }
    }
    let _ = tx.send(Ok((
        app.port(),
        app.admin_token().to_owned(),
        app.state().clock.clone(),
        app.handle(),
    )));
    let _ = app.run_until_stopped().await;
}

impl TestServer {
    /// A server with default options.
    pub fn start() -> anyhow::Result<TestServer> {
        Self::builder().start()
    }

    /// Options.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// `http://127.0.0.1:<port>`, also the tokens' `iss`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The server's clock: move it and every rule (expiry, trial end, token times) follows.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Stops the server gracefully and waits until its port is closed (also done on drop).
    pub fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            futures::executor::block_on(h.stop(true));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}
