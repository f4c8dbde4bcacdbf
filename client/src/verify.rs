//! Token verification through shared's pinned `Verifier`: a fresh token is checked against the
//! cached JWKS, refreshed once (no more) when its `kid` is unknown; a cached token is checked
//! again, at the time it was issued, when the cache is read. Also which server, instance and
//! key a call is about.

use crate::Client;
use crate::cache::{Discard, Entry};
use crate::error::Error;
use glpi_network_shared::token::Expect;
use glpi_network_shared::{Claims, InstanceUrl, RegistrationKey, TokenError, Verifier};
use jsonwebtoken::jwk::JwkSet;
use ring::rand::{SecureRandom, SystemRandom};

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
            Ok(Some(e)) => match reverify(&e) {
                Ok(()) => Some(e),
                Err(err) => {
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

    /// Verifies a token just received: pinned to EdDSA, `iss`, `aud`, time at `now`, the
    /// instance and the nonce sent. `jwks` is the cached set for this server, if any; when it
    /// lacks the token's `kid` it is refreshed once and the refreshed set is left in `jwks`.
    pub(crate) fn verify_fresh(
        &self,
        t: &Target,
        token: &str,
        nonce: &str,
        now: i64,
        jwks: &mut Option<JwkSet>,
    ) -> Result<Claims, Error> {
        let kid = Verifier::peek_kid(token).ok().flatten();
        let known = match (jwks.as_ref(), kid.as_deref()) {
            (None, _) => false,
            (Some(set), Some(kid)) => set.find(kid).is_some(),
            // No readable kid: let the verifier say what is wrong with the token.
            (Some(_), None) => true,
        };
        if !known {
            *jwks = Some(self.get_jwks(&t.server)?);
        }
        let set = jwks.as_ref().expect("fetched above when missing");
        let verifier = Verifier::new(&t.issuer, set)?.with_leeway(self.policy.leeway);
        let expect = Expect {
            instance_url: Some(t.instance.as_str()),
            nonce: Some(nonce),
        };
        Ok(verifier.verify(token, now, &expect)?)
    }
}

/// Checks a cached entry again: its token must verify against its JWKS and issuer, as of the
/// time it was issued, for its instance, and carry exactly the cached claims.
fn reverify(e: &Entry) -> Result<(), TokenError> {
    let verifier = Verifier::new(&e.issuer, &e.jwks)?;
    let expect = Expect {
        instance_url: Some(&e.instance_url),
        nonce: None,
    };
    let claims = verifier.verify(&e.token, e.claims.iat, &expect)?;
    if claims != e.claims {
        return Err(TokenError::Malformed(
            "cached claims differ from the token".into(),
        ));
    }
    Ok(())
}
