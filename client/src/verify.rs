//! Token verification through shared's pinned `Verifier`: a fresh token is checked against the
//! cached JWKS, refreshed once (no more) when its `kid` is unknown or the set is older than the
//! refresh interval; a cached token is checked again, at the time it was issued, when the cache
//! is read, and is no longer trusted once a refresh showed its key withdrawn. With pinned keys,
//! both verify only against the pins. Also which server, instance and key a call is about.

use crate::Client;
use crate::cache::{Discard, Entry};
use crate::error::Error;
use glpi_network_shared::token::Expect;
use glpi_network_shared::{Claims, InstanceUrl, RegistrationKey, TokenError, Verifier};
use jsonwebtoken::jwk::JwkSet;
use ring::rand::{SecureRandom, SystemRandom};
use std::borrow::Cow;

/// The server's published key set as the client holds it.
#[derive(Debug, Clone)]
pub(crate) struct KeySet {
    pub jwks: JwkSet,
    /// The local time it was fetched.
    pub fetched_at: i64,
    /// Whether it was fetched during this call.
    pub refreshed: bool,
}

/// What reading the cache found wrong with its token.
enum Reverify {
    /// The set no longer publishes the token's `kid`: a refresh showed it withdrawn.
    Withdrawn,
    /// Anything else: the entry cannot be trusted at all.
    Bad(TokenError),
}

/// Where a fresh token must come from and what it must say.
#[derive(Debug)]
pub(crate) struct Target {
    pub server: String,
    pub issuer: String,
    pub instance: InstanceUrl,
    pub key: RegistrationKey,
}

impl Target {
    /// Whether a cache entry speaks of this server, instance and key.
    pub fn matches(&self, e: &Entry) -> bool {
        e.server_url == self.server
            && e.instance_url == self.instance.as_str()
            && e.key == self.key.expose()
    }
}

/// A fresh random nonce: 128 bits from the system CSPRNG, hex.
pub(crate) fn nonce() -> String {
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .expect("the system random generator failed");
    hex::encode(b)
}

impl Client {
    /// The server, issuer, instance and key in force: the configured ones, else the cached.
    pub(crate) fn target(
        &self,
        cached: Option<&Entry>,
        key: Option<&RegistrationKey>,
    ) -> Result<Target, Error> {
        let server = self
            .server_url
            .clone()
            .or_else(|| cached.map(|e| e.server_url.clone()))
            .ok_or_else(|| Error::Config("no server URL configured or cached".into()))?;
        let instance = match (&self.instance_url, cached) {
            (Some(u), _) => u.clone(),
            (None, Some(e)) => InstanceUrl::parse(&e.instance_url)
                .map_err(|e| Error::Config(format!("cached instance URL: {e}")))?,
            (None, None) => {
                return Err(Error::Config("no instance URL configured or cached".into()));
            }
        };
        let key = match (key.or(self.key.as_ref()), cached) {
            (Some(k), _) => k.clone(),
            (None, Some(e)) => RegistrationKey::parse(&e.key)
                .map_err(|e| Error::Config(format!("cached key: {e}")))?,
            (None, None) => {
                return Err(Error::Config(
                    "no registration key configured or cached".into(),
                ));
            }
        };
        let issuer = self
            .issuer
            .clone()
            .or_else(|| {
                cached
                    .filter(|e| e.server_url == server)
                    .map(|e| e.issuer.clone())
            })
            .unwrap_or_else(|| server.clone());
        Ok(Target {
            server,
            issuer,
            instance,
            key,
        })
    }

    /// The cached entry, if there is one that unseals and verifies; anything else is
    /// discarded with a warning.
    pub(crate) fn load(&self) -> Option<Entry> {
        let path = self.cache.path().display().to_string();
        match self.cache.read() {
            Ok(Some(mut e)) => match self.reverify(&e) {
                Ok(()) => Some(e),
                Err(Reverify::Withdrawn) => {
                    tracing::warn!(%path, "the cached token's signing key is no longer published by the server");
                    e.withdrawn = true;
                    Some(e)
                }
                Err(Reverify::Bad(err)) => {
                    tracing::warn!(%path, "discarding the cache: its token does not verify ({err})");
                    self.cache.discard();
                    None
                }
            },
            Ok(None) => None,
            Err(Discard::Unreadable(err)) => {
                tracing::warn!(%path, "ignoring the cache: it cannot be read ({err})");
                None
            }
            Err(why) => {
                tracing::warn!(%path, "discarding the cache: {why}");
                self.cache.discard();
                None
            }
        }
    }

    /// Fetches the JWKS of `server` (at most [`MAX_RESPONSE_BYTES`](crate::MAX_RESPONSE_BYTES)).
    pub(crate) fn get_jwks(&self, server: &str) -> Result<JwkSet, Error> {
        self.http.get(server, "/.well-known/jwks.json")?.json()
    }

    /// The keys a token may be verified with, given the server's published set: the published
    /// set itself, or with pins the pinned keys whose `kid` the server still publishes.
    pub(crate) fn trusted<'a>(&'a self, published: &'a JwkSet) -> Cow<'a, JwkSet> {
        match &self.pins {
            None => Cow::Borrowed(published),
            Some(pins) => Cow::Owned(JwkSet {
                keys: pins
                    .keys
                    .iter()
                    .filter(|k| {
                        k.common
                            .key_id
                            .as_deref()
                            .is_some_and(|kid| published.find(kid).is_some())
                    })
                    .cloned()
                    .collect(),
            }),
        }
    }

    /// Verifies a token just received: pinned to EdDSA, `iss`, `aud`, time at `now`, the
    /// instance and the nonce sent. `keys` is the cached set for this server, if any; when
    /// there is none, when it lacks the token's `kid` or when it is due for a refresh, it is
    /// fetched once (no more) and the new set is left in `keys`, marked `refreshed`.
    pub(crate) fn verify_fresh(
        &self,
        t: &Target,
        token: &str,
        nonce: &str,
        now: i64,
        keys: &mut Option<KeySet>,
    ) -> Result<Claims, Error> {
        let kid = Verifier::peek_kid(token).ok().flatten();
        let fetch = match (keys.as_ref(), kid.as_deref()) {
            (None, _) => true,
            (Some(k), _) if self.policy.jwks_due(k.fetched_at, now) => true,
            (Some(k), Some(kid)) => k.jwks.find(kid).is_none(),
            // No readable kid: let the verifier say what is wrong with the token.
            (Some(_), None) => false,
        };
        if fetch {
            *keys = Some(KeySet {
                jwks: self.get_jwks(&t.server)?,
                fetched_at: now,
                refreshed: true,
            });
        }
        let set = &keys.as_ref().expect("fetched above when missing").jwks;
        // The published set must be well formed even when pins decide what verifies.
        Verifier::new(&t.issuer, set)?;
        let verifier =
            Verifier::new(&t.issuer, &self.trusted(set))?.with_leeway(self.policy.leeway);
        let expect = Expect {
            instance_url: Some(t.instance.as_str()),
            nonce: Some(nonce),
        };
        Ok(verifier.verify(token, now, &expect)?)
    }
}

impl Client {
    /// Checks a cached entry again: its token must verify against its JWKS (with pins, against
    /// the pinned keys only) and issuer, as of the time it was issued, for its instance, and
    /// carry exactly the cached claims. A `kid` the cached set no longer has is `Withdrawn`:
    /// only a refresh writes such an entry.
    fn reverify(&self, e: &Entry) -> Result<(), Reverify> {
        let kid = Verifier::peek_kid(&e.token)
            .map_err(Reverify::Bad)?
            .ok_or(Reverify::Bad(TokenError::MissingKid))?;
        if e.jwks.find(&kid).is_none() {
            return Err(Reverify::Withdrawn);
        }
        let verifier = Verifier::new(&e.issuer, &self.trusted(&e.jwks)).map_err(Reverify::Bad)?;
        let expect = Expect {
            instance_url: Some(&e.instance_url),
            nonce: None,
        };
        let claims = verifier
            .verify(&e.token, e.claims.iat, &expect)
            .map_err(Reverify::Bad)?;
        if claims != e.claims {
            return Err(Reverify::Bad(TokenError::Malformed(
                "cached claims differ from the token".into(),
            )));
        }
        Ok(())
    }
}
