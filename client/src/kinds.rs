//! The other kinds of keys (DESIGN §11) as a program uses them: a commercial plugin's license
//! (`LIC-`), bound to this instance, validated and kept through an outage like the registration
//! token; and an inventory agent's enrollment (`ENR-`).
//!
//! Every answer's token is verified as a registration token is (pinned to EdDSA and a `kid` of
//! the server's JWKS, `iss`, `aud`, `exp`/`nbf`, the nonce sent), and a license token must name
//! this instance and never go back to a lower `ver`. A license's verified token is cached in
//! its own sealed file beside the instance's cache (`<instance cache>.license-<digest>`, mode
//! 0600), so [`Client::validate_license`] answers [`State::Grace`] from it while the server
//! cannot be reached, until the token's `grace_until`.

use crate::cache::{CacheFile, Discard};
use crate::client::Client;
use crate::error::Error;
use crate::status::{Reason, State};
use crate::verify::nonce;
use glpi_network_shared::token::KindClaims;
use glpi_network_shared::{KeyKind, PlainKey, ValidationStatus, Verifier};
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What the client concludes about a plugin license.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LicenseStatus {
    /// The conclusion: [`State::Valid`] fresh from the server, [`State::Grace`] from the cache
    /// while the server cannot be used, or refused with the reason.
    pub state: State,
    /// The server's status for the license (`valid`, `license_expired`, `key_revoked`,
    /// `key_already_bound`, `not_registered`), from the verified token.
    pub status: Option<ValidationStatus>,
    /// The verified token's claims (`plugin`, `license_expires_at`, ...).
    pub claims: Option<KindClaims>,
    /// When this conclusion was reached (local clock, Unix seconds).
    pub checked_at: i64,
    /// Why the server could not be used, when the answer comes from the cache.
    pub offline_reason: Option<String>,
}

impl LicenseStatus {
    /// Whether the plugin may run its licensed features.
    pub fn is_usable(&self) -> bool {
        self.state.is_usable()
    }

    /// The plugin the license is for.
    pub fn plugin(&self) -> Option<&str> {
        self.claim("plugin").and_then(|v| v.as_str())
    }

    /// When the license expires (Unix seconds).
    pub fn expires_at(&self) -> Option<i64> {
        self.claim("license_expires_at").and_then(|v| v.as_i64())
    }

    fn claim(&self, name: &str) -> Option<&serde_json::Value> {
        self.claims.as_ref().and_then(|c| c.extra.get(name))
    }
}

/// An agent enrolled with an enrollment key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Enrollment {
    /// The enrollment's id (what `DELETE /v1/admin/enrollments/{id}` takes).
    pub id: String,
    /// The agent's own identifier, as sent.
    pub agent_id: String,
    /// The entity the key enrolls into.
    pub entity: String,
    /// When the agent was first enrolled (RFC 3339).
    pub enrolled_at: String,
    /// Whether this call enrolled it (`201`) rather than found it enrolled already (`200`).
    #[serde(skip)]
    pub created: bool,
    /// The verified token's claims (`agent_id`, `entity`, `enrollment_key_id`).
    #[serde(skip)]
    pub claims: Option<KindClaims>,
    /// [`State::Valid`] from the server; [`State::Grace`] from the cached enrollment while the
    /// server cannot be used, until its token's `grace_until`.
    #[serde(skip, default = "valid")]
    pub state: State,
    /// Why the server could not be used, when the answer comes from the cache.
    #[serde(skip)]
    pub offline_reason: Option<String>,
}

fn valid() -> State {
    State::Valid
}

/// An enrollment's verified token as cached.
#[derive(Serialize, Deserialize)]
struct EnrollmentEntry {
    server_url: String,
    issuer: String,
    enrollment: Enrollment,
    token: String,
    claims: KindClaims,
    jwks: JwkSet,
}

/// A license's verified token as cached.
#[derive(Clone, Serialize, Deserialize)]
struct LicenseEntry {
    server_url: String,
    issuer: String,
    instance_url: String,
    token: String,
    claims: KindClaims,
    jwks: JwkSet,
    max_ver: i64,
    fetched_at: i64,
}

#[derive(Serialize)]
struct LicenseRequest<'a> {
    license_key: &'a str,
    instance_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
}

#[derive(Serialize)]
struct EnrollRequest<'a> {
    enrollment_key: &'a str,
    agent_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    nonce: &'a str,
}

#[derive(Deserialize)]
struct EnrollAnswer {
    enrollment: Enrollment,
    token: String,
}

/// The server, issuer and instance a license call is about.
struct Where {
    server: String,
    issuer: String,
    instance: String,
}

/// Parses `raw` as a key of `kind` (`LIC-...` for a license, `ENR-...` for an enrollment key):
/// a malformed key, or a generated key of another kind, is an [`Error::Config`], before any
/// request.
pub fn parse_kind_key(raw: &str, kind: KeyKind) -> Result<PlainKey, Error> {
    let key = PlainKey::parse(raw).map_err(|e| Error::Config(format!("invalid key: {e}")))?;
    if !key.may_be(kind) {
        let want = kind.prefix();
        return Err(Error::Config(format!(
            "not a {want} key: {}",
            key.display_prefix()
        )));
    }
    Ok(key)
}

impl Client {
    /// Activates a plugin license on this instance (`POST /v1/licenses/activations`), verifies
    /// the token and caches it. A license bound elsewhere, revoked or expired is an
    /// [`Error::Server`] with the server's code.
    pub fn activate_license(&self, key: &PlainKey) -> Result<LicenseStatus, Error> {
        let w = self.license_target()?;
        let sent = nonce();
        let body = LicenseRequest {
            license_key: key.expose(),
            instance_url: &w.instance,
            nonce: Some(&sent),
        };
        let answer: TokenAnswer = self
            .http
            .post(&w.server, "/v1/licenses/activations", &body)?
            .json()?;
        self.accept_license(&w, key, &answer.token, &sent)
    }

    /// Asks the server for the license's status (`POST /v1/licenses/validations`): valid, or
    /// refused with the reason its signed token gives. When the server cannot be used, the
    /// cached token answers: [`State::Grace`] until its `grace_until`, then refused
    /// (`expired`); with nothing cached, the error.
    pub fn validate_license(&self, key: &PlainKey) -> Result<LicenseStatus, Error> {
        let w = self.license_target()?;
        let sent = nonce();
        let body = LicenseRequest {
            license_key: key.expose(),
            instance_url: &w.instance,
            nonce: Some(&sent),
        };
        let fresh = self
            .http
            .post(&w.server, "/v1/licenses/validations", &body)
            .and_then(|r| r.json::<TokenAnswer>())
            .and_then(|a| self.accept_license(&w, key, &a.token, &sent));
        match fresh {
            Err(e) if e.is_unavailable() => self.license_offline(&w, key, e),
            other => other,
        }
    }

    /// Releases the license from this instance (`DELETE /v1/licenses/activations`) and deletes
    /// its cached token.
    pub fn release_license(&self, key: &PlainKey) -> Result<(), Error> {
        let w = self.license_target()?;
        let body = LicenseRequest {
            license_key: key.expose(),
            instance_url: &w.instance,
            nonce: None,
        };
        self.http
            .delete(&w.server, "/v1/licenses/activations", &body)?
            .expect_success()?;
        self.license_cache(key).remove()
    }

    /// Enrolls an inventory agent with an enrollment key (`POST /v1/enrollments`): a new
    /// `agent_id` takes one of the key's uses, the same one again takes none. The token is
    /// verified (signature, issuer, times, nonce, and that it names this agent) and cached
    /// beside the instance's cache; while the server cannot be used, the cached enrollment of
    /// this key and agent answers ([`State::Grace`]) until its token's `grace_until`.
    pub fn enroll(
        &self,
        key: &PlainKey,
        agent_id: &str,
        hostname: Option<&str>,
    ) -> Result<Enrollment, Error> {
        let server = self.server()?;
        let issuer = self.issuer.clone().unwrap_or_else(|| server.clone());
        let file = CacheFile::new(self.kind_cache_path("enrollment", &[key.expose(), agent_id]));
        match self.enroll_online(&server, &issuer, key, agent_id, hostname) {
            Ok((e, entry)) => {
                if let Err(err) = file.write_as(&entry) {
                    tracing::warn!("{err}");
                }
                Ok(e)
            }
            Err(err) if err.is_unavailable() => self.enrollment_offline(&file, &server, err),
            Err(err) => Err(err),
        }
    }

    fn enroll_online(
        &self,
        server: &str,
        issuer: &str,
        key: &PlainKey,
        agent_id: &str,
        hostname: Option<&str>,
    ) -> Result<(Enrollment, EnrollmentEntry), Error> {
        let sent = nonce();
        let body = EnrollRequest {
            enrollment_key: key.expose(),
            agent_id,
            hostname,
            nonce: &sent,
        };
        let reply = self.http.post(server, "/v1/enrollments", &body)?;
        let created = reply.status == 201;
        let answer: EnrollAnswer = reply.json()?;
        let jwks = self.get_jwks(server)?;
        let claims = self.verify_kind_token(issuer, &jwks, &answer.token, Some(&sent))?;
        if claims.extra.get("agent_id").and_then(|v| v.as_str()) != Some(agent_id) {
            return Err(Error::InvalidResponse(
                "the token names another agent".into(),
            ));
        }
        let mut e = answer.enrollment;
        e.created = created;
        e.claims = Some(claims.clone());
        let entry = EnrollmentEntry {
            server_url: server.to_owned(),
            issuer: issuer.to_owned(),
            enrollment: e.clone(),
            token: answer.token,
            claims,
            jwks,
        };
        Ok((e, entry))
    }

    /// The cached enrollment when the server could not be used: verified again against its
    /// own key set, [`State::Grace`] before its `grace_until`, refused (`expired`) after.
    fn enrollment_offline(
        &self,
        file: &CacheFile,
        server: &str,
        err: Error,
    ) -> Result<Enrollment, Error> {
        let entry: EnrollmentEntry = match file.read_as() {
            Ok(Some(e)) => e,
            Ok(None) | Err(Discard::Unreadable(_)) => return Err(err),
            Err(why) => {
                tracing::warn!(path = %file.path().display(), "discarding the enrollment cache: {why}");
                file.discard();
                return Err(err);
            }
        };
        let checked = Verifier::new(&entry.issuer, &self.trusted(&entry.jwks))
            .and_then(|v| v.verify_kind(&entry.token, entry.claims.iat, None));
        if entry.server_url != server || checked.ok().as_ref() != Some(&entry.claims) {
            tracing::warn!(path = %file.path().display(), "discarding the enrollment cache: its token does not verify");
            file.discard();
            return Err(err);
        }
        let now = self.clock.now();
        let mut e = entry.enrollment;
        e.claims = Some(entry.claims.clone());
        e.created = false;
        e.state = if now.saturating_add(self.policy.rollback_tolerance) < entry.claims.iat {
            State::Refused(Reason::ClockRollback)
        } else if now > entry.claims.grace_until {
            State::Refused(Reason::Expired)
        } else {
            State::Grace
        };
        e.offline_reason = Some(err.to_string());
        Ok(e)
    }

    /// A cache file of another kind beside this instance's cache, named from a digest of
    /// `parts` (never a key itself).
    fn kind_cache_path(&self, kind: &str, parts: &[&str]) -> PathBuf {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for p in parts {
            ctx.update(p.as_bytes());
            ctx.update(&[0]);
        }
        let digest = ctx.finish();
        let base = self.cache.path();
        let mut name = base.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{kind}-{}", hex::encode(&digest.as_ref()[..8])));
        base.with_file_name(name)
    }

    /// The cache file of the license `key`: beside this instance's cache, named from a digest
    /// of the key (never the key itself).
    pub fn license_cache_path(&self, key: &PlainKey) -> PathBuf {
        self.kind_cache_path("license", &[key.expose()])
    }

    fn license_cache(&self, key: &PlainKey) -> CacheFile {
        CacheFile::new(self.license_cache_path(key))
    }

    /// The server, issuer and instance in force: the configured ones, else the instance's
    /// cached registration.
    fn license_target(&self) -> Result<Where, Error> {
        let cached = self.load();
        let server = self
            .server_url
            .clone()
            .or_else(|| cached.as_ref().map(|e| e.server_url.clone()))
            .ok_or_else(|| Error::Config("no server URL configured or cached".into()))?;
        let instance = match (&self.instance_url, &cached) {
            (Some(u), _) => u.as_str().to_owned(),
            (None, Some(e)) => e.instance_url.clone(),
            (None, None) => {
                return Err(Error::Config("no instance URL configured or cached".into()));
            }
        };
        let issuer = self
            .issuer
            .clone()
            .or_else(|| cached.filter(|e| e.server_url == server).map(|e| e.issuer))
            .unwrap_or_else(|| server.clone());
        Ok(Where {
            server,
            issuer,
            instance,
        })
    }

    /// Verifies a token of another kind against `jwks` (the pinned keys only, with pins), at
    /// the local time, with the nonce sent.
    fn verify_kind_token(
        &self,
        issuer: &str,
        jwks: &JwkSet,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<KindClaims, Error> {
        Verifier::new(issuer, jwks)?;
        let verifier = Verifier::new(issuer, &self.trusted(jwks))?.with_leeway(self.policy.leeway);
        Ok(verifier.verify_kind(token, self.clock.now(), nonce)?)
    }

    /// Verifies a fresh license token, checks its instance and `ver`, caches it, concludes.
    fn accept_license(
        &self,
        w: &Where,
        key: &PlainKey,
        token: &str,
        sent: &str,
    ) -> Result<LicenseStatus, Error> {
        let now = self.clock.now();
        let jwks = self.get_jwks(&w.server)?;
        let claims = self.verify_kind_token(&w.issuer, &jwks, token, Some(sent))?;
        if claims.extra.get("instance_url").and_then(|v| v.as_str()) != Some(&w.instance) {
            return Err(Error::Token(
                glpi_network_shared::TokenError::InstanceMismatch,
            ));
        }
        let file = self.license_cache(key);
        let seen = self.read_license(&file, w).map_or(i64::MIN, |e| e.max_ver);
        if claims.ver < seen {
            return Err(Error::StaleVersion {
                seen,
                got: claims.ver,
            });
        }
        let entry = LicenseEntry {
            server_url: w.server.clone(),
            issuer: w.issuer.clone(),
            instance_url: w.instance.clone(),
            token: token.to_owned(),
            max_ver: seen.max(claims.ver),
            claims,
            jwks,
            fetched_at: now,
        };
        file.write_as(&entry)?;
        let status = server_status(&entry.claims);
        let state = match status {
            Some(s) if s.is_valid() => State::Valid,
            Some(s) => State::Refused(license_reason(s)),
            None => State::Refused(Reason::Unknown),
        };
        Ok(license_status(state, Some(entry.claims), now, None))
    }

    /// The cached license entry for `w`, verified again against its own key set as of the
    /// time it was fetched; anything that does not verify is discarded.
    fn read_license(&self, file: &CacheFile, w: &Where) -> Option<LicenseEntry> {
        let path = file.path().display().to_string();
        let e: LicenseEntry = match file.read_as() {
            Ok(Some(e)) => e,
            Ok(None) | Err(Discard::Unreadable(_)) => return None,
            Err(why) => {
                tracing::warn!(%path, "discarding the license cache: {why}");
                file.discard();
                return None;
            }
        };
        if e.server_url != w.server || e.instance_url != w.instance {
            return None;
        }
        let checked = Verifier::new(&e.issuer, &self.trusted(&e.jwks))
            .and_then(|v| v.verify_kind(&e.token, e.claims.iat, None));
        match checked {
            Ok(c) if c == e.claims => Some(e),
            _ => {
                tracing::warn!(%path, "discarding the license cache: its token does not verify");
                file.discard();
                None
            }
        }
    }

    /// The answer from the cached license token when the server could not be used.
    fn license_offline(
        &self,
        w: &Where,
        key: &PlainKey,
        err: Error,
    ) -> Result<LicenseStatus, Error> {
        let Some(e) = self.read_license(&self.license_cache(key), w) else {
            return Err(err);
        };
        let now = self.clock.now();
        let c = &e.claims;
        let state = match server_status(c) {
            Some(s) if !s.is_valid() => State::Refused(license_reason(s)),
            None => State::Refused(Reason::Unknown),
            Some(_) if now.saturating_add(self.policy.rollback_tolerance) < c.iat => {
                State::Refused(Reason::ClockRollback)
            }
            Some(_) if now > c.grace_until => State::Refused(Reason::Expired),
            Some(_) => State::Grace,
        };
        tracing::info!(state = %state, "the server cannot be used ({err}); answering from the license cache");
        Ok(license_status(
            state,
            Some(e.claims),
            now,
            Some(err.to_string()),
        ))
    }
}

fn server_status(c: &KindClaims) -> Option<ValidationStatus> {
    c.extra
        .get("status")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The reason behind a license status that does not allow running.
fn license_reason(s: ValidationStatus) -> Reason {
    match s {
        ValidationStatus::LicenseExpired => Reason::Expired,
        other => Reason::from_server_status(other),
    }
}

fn license_status(
    state: State,
    claims: Option<KindClaims>,
    now: i64,
    offline_reason: Option<String>,
) -> LicenseStatus {
    LicenseStatus {
        status: claims.as_ref().and_then(server_status),
        state,
        claims,
        checked_at: now,
        offline_reason,
    }
}
