//! `Client`: `register`, `validate`, `check`, `status` (offline) and `release`, plus the probes
//! the CLI's `test` uses.

use crate::builder::ClientBuilder;
use crate::cache::{CacheFile, Entry};
use crate::clock::Clock;
use crate::error::Error;
use crate::http::Http;
use crate::status::{Policy, Reason, State, Status, evaluate};
use crate::verify::{KeySet, Target, nonce};
use glpi_network_shared::wire::{
    RegisterRequest, RegisterResponse, ReleaseRequest, ValidateRequest, ValidationResponse,
};
use glpi_network_shared::{InstanceUrl, RegistrationKey, TokenError, Verifier};
use jsonwebtoken::jwk::JwkSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client for one instance of one server. Blocking; cheap to keep around.
pub struct Client {
    pub(crate) pins: Option<JwkSet>,
    pub(crate) server_url: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) instance_url: Option<InstanceUrl>,
    pub(crate) key: Option<RegistrationKey>,
    pub(crate) cache: CacheFile,
    pub(crate) http: Http,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: Policy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server_url", &self.server_url)
            .field("instance_url", &self.instance_url)
            .field("key", &self.key)
            .field("cache", &self.cache.path())
            .finish_non_exhaustive()
    }
}

/// The answer to [`Client::ping`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Ping {
    /// The server's `Date` header, in Unix seconds, when it sent a readable one.
    pub server_date: Option<i64>,
    /// How long the round trip took.
    pub elapsed: Duration,
}

/// When a fresh token replaces what is cached.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Always (a registration makes the cache speak of this instance).
    Always,
    /// Only when the cache is empty or speaks of the same server, instance and key, so that
    /// a one-off `--url`/`--key` override does not overwrite another instance's cache.
    IfSame,
}

impl Client {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The cache file.
    pub fn cache_path(&self) -> &Path {
        self.cache.path()
    }

    /// The server URL in force: the configured one, else the cached one.
    pub fn server_url(&self) -> Option<String> {
        self.server_url
            .clone()
            .or_else(|| self.load().map(|e| e.server_url))
    }

    /// Binds `key` to this instance (`POST /v1/registrations`), verifies the token and writes
    /// the cache. A signed refusal (e.g. a suspended subscription) is cached and returned as
    /// [`State::Refused`]; a refused request (`403`, `409`...) is an [`Error::Server`].
    pub fn register(&self, key: &RegistrationKey) -> Result<Status, Error> {
        let now = self.clock.now();
        let cached = self.load();
        let t = self.target(cached.as_ref(), Some(key))?;
        let nonce = nonce();
        let req = RegisterRequest {
            registration_key: t.key.expose().to_owned(),
            instance_url: t.instance.as_str().to_owned(),
            instance_uid: None,
            nonce: Some(nonce.clone()),
        };
        let resp: RegisterResponse = self
            .http
            .post(&t.server, "/v1/registrations", &req)?
            .json()?;
        self.accept(&t, cached.as_ref(), &resp.token, &nonce, now, Write::Always)
    }

    /// Asks the server (`POST /v1/validations`) and verifies its token: [`State::Valid`] or a
    /// signed refusal, which is cached and sticks offline. When the server is unavailable
    /// ([`Error::is_unavailable`]), falls back to the cache: [`State::Grace`] before
    /// `grace_until`, a refusal after it; with nothing cached, the error.
    pub fn validate(&self) -> Result<Status, Error> {
        let now = self.clock.now();
        let cached = self.load();
        let t = self.target(cached.as_ref(), None)?;
        let nonce = nonce();
        let req = ValidateRequest {
            registration_key: t.key.expose().to_owned(),
            instance_url: t.instance.as_str().to_owned(),
            nonce: Some(nonce.clone()),
        };
        let fresh = self
            .http
            .post(&t.server, "/v1/validations", &req)
            .and_then(|r| r.json::<ValidationResponse>())
            .and_then(|r| self.accept(&t, cached.as_ref(), &r.token, &nonce, now, Write::IfSame));
        match fresh {
            Err(e) if e.is_unavailable() => self.offline(&t, cached, now, e),
            other => other,
        }
    }

    /// [`State::Cached`] without any request while neither the cached token (half its
    /// lifetime by default) nor the cached JWKS (see
    /// [`ClientBuilder::jwks_refresh_interval`]) is due for a refresh; otherwise
    /// [`Client::validate`].
    pub fn check(&self) -> Result<Status, Error> {
        let now = self.clock.now();
        if let Some(e) = self.load()
            && self.target(Some(&e), None).is_ok_and(|t| t.matches(&e))
            && evaluate(&e, now, &self.policy) == State::Cached
            && !self.policy.due_for_refresh(&e.claims, now)
            && !self.policy.jwks_due(e.jwks_fetched_at, now)
        {
            return Ok(status(State::Cached, Some(e), now, None));
        }
        self.validate()
    }

    /// The state from the cache alone, without any request: [`State::Cached`] before `exp`,
    /// [`State::Grace`] until `grace_until`, then refused; a cached refusal sticks.
    pub fn status(&self) -> Result<Status, Error> {
        let now = self.clock.now();
        let e = self.load().ok_or(Error::NotRegistered)?;
        let t = self.target(Some(&e), None)?;
        if e.instance_url != t.instance.as_str() {
            return Ok(status(
                State::Refused(Reason::InstanceMismatch),
                Some(e),
                now,
                None,
            ));
        }
        if !t.matches(&e) {
            return Err(Error::NotRegistered);
        }
        let state = evaluate(&e, now, &self.policy);
        Ok(status(state, Some(e), now, None))
    }

    /// Releases this instance's binding (`DELETE /v1/registrations`) and deletes the cache.
    pub fn release(&self) -> Result<(), Error> {
        let cached = self.load();
        let t = self.target(cached.as_ref(), None)?;
        let req = ReleaseRequest {
            registration_key: t.key.expose().to_owned(),
            instance_url: t.instance.as_str().to_owned(),
        };
        self.http
            .delete(&t.server, "/v1/registrations", &req)?
            .expect_success()?;
        if cached.is_some_and(|e| t.matches(&e)) {
            self.cache.remove()?;
        }
        Ok(())
    }

    /// `GET /healthz`: whether the service answers, and its `Date`.
    pub fn ping(&self) -> Result<Ping, Error> {
        let server = self.server()?;
        let start = Instant::now();
        let reply = self.http.get(&server, "/healthz")?;
        reply.expect_success()?;
        let server_date = reply
            .date
            .as_deref()
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.timestamp());
        Ok(Ping {
            server_date,
            elapsed: start.elapsed(),
        })
    }

    /// `GET /.well-known/jwks.json`, checked: at least one key, every key an Ed25519 key of
    /// 32 bytes with a `kid`.
    pub fn fetch_jwks(&self) -> Result<JwkSet, Error> {
        let server = self.server()?;
        let set = self.get_jwks(&server)?;
        if set.keys.is_empty() {
            return Err(Error::InvalidResponse("the JWKS has no key".into()));
        }
        Verifier::new(&server, &set)?;
        Ok(set)
    }

    /// The local clock's current reading (Unix seconds).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub(crate) fn server(&self) -> Result<String, Error> {
        self.server_url
            .clone()
            .or_else(|| self.load().map(|e| e.server_url))
            .ok_or_else(|| Error::Config("no server URL configured or cached".into()))
    }

    /// Verifies a fresh token, refuses a lower `ver`, caches it, and concludes. When the JWKS
    /// was refreshed but the token is refused, the cache still learns the new set, so a cached
    /// token whose key is gone is no longer trusted.
    fn accept(
        &self,
        t: &Target,
        cached: Option<&Entry>,
        token: &str,
        nonce: &str,
        now: i64,
        write: Write,
    ) -> Result<Status, Error> {
        let same = cached.filter(|e| t.matches(e));
        let same_server = cached.filter(|e| e.server_url == t.server && e.issuer == t.issuer);
        let mut keys = same_server.map(|e| KeySet {
            jwks: e.jwks.clone(),
            fetched_at: e.jwks_fetched_at,
            refreshed: false,
        });
        let verified = self.verify_fresh(t, token, nonce, now, &mut keys);
        if verified.is_err()
            && let (Some(e), Some(k)) = (same_server, keys.as_ref().filter(|k| k.refreshed))
        {
            self.learn_keys(e, k);
        }
        let claims = match verified {
            Err(Error::Token(TokenError::NotYetValid)) => {
                tracing::warn!("the server's token is not yet valid by this clock");
                let state = State::Refused(Reason::ClockRollback);
                return Ok(status(state, None, now, None));
            }
            other => other?,
        };
        let seen = same.map_or(i64::MIN, |e| e.max_ver);
        if claims.ver < seen {
            return Err(Error::StaleVersion {
                seen,
                got: claims.ver,
            });
        }
        let keys = keys.expect("verification leaves a key set");
        let entry = Entry {
            server_url: t.server.clone(),
            issuer: t.issuer.clone(),
            instance_url: t.instance.as_str().to_owned(),
            key: t.key.expose().to_owned(),
            token: token.to_owned(),
            max_ver: seen.max(claims.ver),
            last_server_time: claims.iat,
            fetched_at: now,
            jwks: keys.jwks,
            jwks_fetched_at: keys.fetched_at,
            withdrawn: false,
            claims,
        };
        let replace = write == Write::Always || cached.is_none() || same.is_some();
        if replace && let Err(e) = self.cache.write(&entry) {
            if write == Write::Always {
                return Err(e);
            }
            tracing::warn!("{e}");
        }
        let state = if entry.claims.valid {
            State::Valid
        } else {
            State::Refused(Reason::from_server_status(entry.claims.status))
        };
        Ok(status(state, Some(entry), now, None))
    }

    /// Writes a refreshed key set into the cached entry, which keeps its token: reading it then
    /// finds the token's key withdrawn when the new set lacks it.
    fn learn_keys(&self, cached: &Entry, keys: &KeySet) {
        let mut e = cached.clone();
        e.jwks = keys.jwks.clone();
        e.jwks_fetched_at = keys.fetched_at;
        if let Err(err) = self.cache.write(&e) {
            tracing::warn!("{err}");
        }
    }

    /// The answer from the cache when the server could not be used.
    fn offline(
        &self,
        t: &Target,
        cached: Option<Entry>,
        now: i64,
        err: Error,
    ) -> Result<Status, Error> {
        let Some(e) = cached else { return Err(err) };
        let state = if e.instance_url != t.instance.as_str() {
            State::Refused(Reason::InstanceMismatch)
        } else if !t.matches(&e) {
            return Err(err);
        } else {
            match evaluate(&e, now, &self.policy) {
                State::Cached => State::Grace,
                s => s,
            }
        };
        tracing::info!(state = %state, "the server cannot be used ({err}); answering from the cache");
        Ok(status(state, Some(e), now, Some(err.to_string())))
    }
}

fn status(state: State, e: Option<Entry>, now: i64, offline_reason: Option<String>) -> Status {
    Status {
        state,
        // A token whose key was withdrawn is not trusted: its claims are not shown either.
        claims: e.filter(|e| !e.withdrawn).map(|e| e.claims),
        checked_at: now,
        offline_reason,
    }
}
