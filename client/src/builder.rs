//! `ClientBuilder`: every setting of a [`Client`], checked once at `build`.

use crate::Client;
use crate::cache::CacheFile;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::http::Http;
use crate::status::Policy;
use glpi_network_shared::{InstanceUrl, RegistrationKey, Verifier};
use jsonwebtoken::jwk::JwkSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default time allowed to connect (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for a whole call, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// Default lag of the wall clock behind the latest server time seen before `clock_rollback`.
pub const DEFAULT_ROLLBACK_TOLERANCE: Duration = Duration::from_secs(300);
/// Default age of the cached JWKS after which it is fetched again (six hours).
pub const DEFAULT_JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// The builder's default cache file when none is set: `glpi-network/state.json` under the
/// user's cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux), or `None` when there is
/// no such directory. A program that serves several instances gives each its own file, as the
/// CLI does with [`instance_cache_path`](crate::instance_cache_path).
pub fn default_cache_path() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("glpi-network").join("state.json"))
}

/// Builds a [`Client`]. Every setting is optional: the server URL, instance URL and key fall
/// back to the ones cached by a previous registration.
pub struct ClientBuilder {
    server_url: Option<String>,
    issuer: Option<String>,
    instance_url: Option<String>,
    key: Option<RegistrationKey>,
    cache_path: Option<PathBuf>,
    connect_timeout: Duration,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    rollback_tolerance: Duration,
    leeway: Duration,
    refresh_after: Option<Duration>,
    jwks_refresh_interval: Duration,
    pinned_keys: Option<JwkSet>,
    ca_files: Vec<PathBuf>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            server_url: None,
            issuer: None,
            instance_url: None,
            key: None,
            cache_path: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock),
            rollback_tolerance: DEFAULT_ROLLBACK_TOLERANCE,
            leeway: Duration::from_secs(glpi_network_shared::token::DEFAULT_LEEWAY_SECS as u64),
            refresh_after: None,
            jwks_refresh_interval: DEFAULT_JWKS_REFRESH_INTERVAL,
            pinned_keys: None,
            ca_files: Vec::new(),
        }
    }
}

impl ClientBuilder {
    /// The server's base URL, e.g. `https://services.example.com`.
    pub fn server_url(mut self, url: impl Into<String>) -> Self {
        self.server_url = Some(url.into());
        self
    }

    /// The `iss` tokens must carry (default: the server URL, as the server signs it when it
    /// has no `--public-url`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// This instance's URL (canonicalised as the server does).
    pub fn instance_url(mut self, url: impl Into<String>) -> Self {
        self.instance_url = Some(url.into());
        self
    }

    /// The registration key for `validate`, `check` and `release` (default: the cached one).
    pub fn key(mut self, key: RegistrationKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The cache file (default: [`default_cache_path`]).
    pub fn cache_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache_path = Some(path.into());
        self
    }

    /// Time allowed to connect, TLS handshake included.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Time allowed for one whole call, reading the answer included: a server that hangs
    /// costs at most this.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The clock (default: [`SystemClock`]). Any `Fn() -> i64` returning Unix seconds works.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How far the wall clock may lag the latest server time seen before the client refuses
    /// with `clock_rollback` (default five minutes).
    pub fn clock_rollback_tolerance(mut self, d: Duration) -> Self {
        self.rollback_tolerance = d;
        self
    }

    /// Leeway on `exp` and `nbf` (default one minute).
    pub fn leeway(mut self, d: Duration) -> Self {
        self.leeway = d;
        self
    }

    /// How long after its `iat` a cached token counts as fresh for [`Client::check`]
    /// (default: half its lifetime).
    pub fn refresh_after(mut self, d: Duration) -> Self {
        self.refresh_after = Some(d);
        self
    }

    /// How old the cached JWKS may grow before the next call to the server fetches it again
    /// (default [`DEFAULT_JWKS_REFRESH_INTERVAL`]). A token whose signing key a refresh shows
    /// withdrawn is refused, and so is a cached token signed by it ([`Reason::KeyWithdrawn`]).
    /// [`Client::check`] asks the server once the cached set is due. Offline, the cached set
    /// keeps verifying the cached token until its `grace_until`.
    ///
    /// [`Reason::KeyWithdrawn`]: crate::Reason::KeyWithdrawn
    pub fn jwks_refresh_interval(mut self, d: Duration) -> Self {
        self.jwks_refresh_interval = d;
        self
    }

    /// Pins the server's public keys: every token, fresh or cached, then verifies only against
    /// these keys (matched by `kid`, with the key material given here, whatever the server's
    /// JWKS or the cache says), and only while the server still publishes that `kid`. A cache
    /// forged by someone who can read the local seal secret can then never bring its own
    /// keys. The price: a server that rotates to a key not pinned is refused until the program
    /// ships the new key. `build` refuses an empty set or a key that is not an Ed25519 public
    /// key with a `kid`.
    pub fn pinned_keys(mut self, keys: JwkSet) -> Self {
        self.pinned_keys = Some(keys);
        self
    }

    /// Trusts the certificate authorities of this PEM file as well as the platform's
    /// certificate store, for a server behind a private certificate authority. May be called
    /// more than once. `build` refuses a file that cannot be read or holds no certificate.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Checks the settings and builds the client. Nothing is read or sent yet.
    pub fn build(self) -> Result<Client, Error> {
        let server_url = self
            .server_url
            .as_deref()
            .map(parse_server_url)
            .transpose()?;
        let instance_url = self
            .instance_url
            .as_deref()
            .map(InstanceUrl::parse)
            .transpose()
            .map_err(|e| Error::Config(format!("invalid instance URL: {e}")))?;
        let cache_path = match self.cache_path.or_else(default_cache_path) {
            Some(p) => p,
            None => {
                return Err(Error::Config(
                    "no cache directory on this system: set a cache path".into(),
                ));
            }
        };
        let pins = self.pinned_keys.map(check_pins).transpose()?;
        let roots = crate::http::root_certs(&self.ca_files)?;
        Ok(Client {
            pins,
            server_url,
            issuer: self.issuer.map(|i| i.trim_end_matches('/').to_owned()),
            instance_url,
            key: self.key,
            cache: CacheFile::new(cache_path),
            http: Http::new(self.connect_timeout, self.timeout, roots),
            clock: self.clock,
            policy: Policy {
                rollback_tolerance: secs(self.rollback_tolerance),
                leeway: secs(self.leeway),
                refresh_after: self.refresh_after.map(secs),
                jwks_refresh_after: secs(self.jwks_refresh_interval),
            },
        })
    }
}

/// Pinned keys must be usable Ed25519 keys with a `kid`, and at least one.
fn check_pins(keys: JwkSet) -> Result<JwkSet, Error> {
    if keys.keys.is_empty() {
        return Err(Error::Config(
            "no key to pin: the pinned set is empty".into(),
        ));
    }
    Verifier::new("", &keys).map_err(|e| Error::Config(format!("invalid pinned key: {e}")))?;
    Ok(keys)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// An http(s) base URL without query or fragment, with no trailing `/`.
fn parse_server_url(raw: &str) -> Result<String, Error> {
    let bad = |why: &str| Error::Config(format!("invalid server URL {raw:?}: {why}"));
    let u = url::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("only http and https are supported"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        return Err(bad("no user name, query or fragment allowed"));
    }
    Ok(u.as_str().trim_end_matches('/').to_owned())
}
