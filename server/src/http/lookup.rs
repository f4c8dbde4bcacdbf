//! Key look-ups under the rate limits: every handler that takes a registration key goes
//! through here, so unknown and malformed keys count against the client address on every
//! path (native, GLPI `/info`, marketplace).
//!
//! A failed look-up is answered only once one atomic conditional increment in the database
//! has counted it ([`crate::db::limits::hit`]); past the allowance it is answered `429`
//! instead, whichever process it reached. A successful look-up writes nothing: it only
//! consults this process's memory of addresses already over.

use super::client_addr;
use crate::app::AppState;
use crate::db::limits::{Hit, Limit};
use crate::http::error::ApiError;
use crate::http::telemetry::KeyPrefix;
use actix_web::{HttpMessage, HttpRequest};
use glpi_network_shared::{ErrorCode, KeyKind, PlainKey, RegistrationKey};

/// Who is looking a key up.
pub(crate) struct Caller {
    pub addr: String,
}

/// A `429` for a limit that is over, counted in the metrics under `limit`.
pub(crate) fn refused(state: &AppState, limit: &str, over: crate::http::limits::Over) -> ApiError {
    state.metrics.rate_limited.with_label_values(&[limit]).inc();
    ApiError::RateLimited {
        retry_after: over.retry_after,
        limit: over.limit,
    }
}

/// The caller, refused with `429` while its address is known (to this process) to be over the
/// failed look-up limit.
pub(crate) fn caller(state: &AppState, req: &HttpRequest) -> Result<Caller, ApiError> {
    let addr = client_addr(req).unwrap_or_else(|| "unknown".into());
    let now = state.clock.now().timestamp();
    state
        .limits
        .failed_lookups
        .check(&addr, now)
        .map_err(|over| refused(state, "failed_lookups", over))?;
    Ok(Caller { addr })
}

/// Counts one event of `limit` for `subject` in the database (shared by every process):
/// `Ok` while within the allowance, `429` once over (remembered in this process's front).
pub(crate) async fn count(state: &AppState, limit: Limit, subject: &str) -> Result<(), ApiError> {
    let (limiter, label) = match limit {
        Limit::FailedLookup | Limit::FailedLogin => {
            (&state.limits.failed_lookups, "failed_lookups")
        }
        Limit::Registration => (&state.limits.registrations, "registrations_per_key"),
    };
    let now = state.clock.now().timestamp();
    if let Err(over) = limiter.check(subject, now) {
        return Err(refused(state, label, over));
    }
    let allowance = limiter.limit();
    // an IPv6 client counts for its /64 (a key hash is left as it is)
    let owned = crate::http::limits::limit_key(subject).into_owned();
    let hit = crate::http::run(&state.db, move |c| {
        crate::db::limits::hit(c, limit, &owned, now, allowance)
    })
    .await?;
    match hit {
        Hit::Allowed { .. } => Ok(()),
        Hit::Over { retry_after } => {
            limiter.mark_over(subject, now);
            Err(refused(
                state,
                label,
                crate::http::limits::Over {
                    retry_after,
                    limit: allowance,
                },
            ))
        }
    }
}

/// Counts one failed portal or console login from `addr` in the database, like a failed key
/// look-up (DESIGN §8), so that every process sees it: `Ok(None)` while within the allowance,
/// `Ok(Some(retry_after))` once this failure is over it (the form then answers `429`, as a
/// failed look-up over the limit does), a database failure as an error.
pub(crate) async fn failed_login(state: &AppState, addr: &str) -> Result<Option<u64>, ApiError> {
    match count(state, Limit::FailedLogin, addr).await {
        Ok(()) => Ok(None),
        Err(ApiError::RateLimited { retry_after, .. }) => Ok(Some(retry_after)),
        Err(e) => Err(e),
    }
}

impl Caller {
    /// Counts one failed look-up: `Ok` while within the allowance (the caller may then answer
    /// the failure), the `429` to answer instead once over.
    pub async fn failed(&self, state: &AppState) -> Result<(), ApiError> {
        count(state, Limit::FailedLookup, &self.addr).await
    }

    /// Parses a key; a malformed one counts as a failed look-up (and answers `429` once over).
    /// The display prefix goes to the request log.
    pub async fn parse_key(
        &self,
        state: &AppState,
        req: &HttpRequest,
        raw: &str,
    ) -> Result<RegistrationKey, ApiError> {
        match RegistrationKey::parse(raw) {
            Ok(k) => {
                req.extensions_mut().insert(KeyPrefix(k.display_prefix()));
                Ok(k)
            }
            Err(e) => {
                self.failed(state).await?;
                Err(e.into())
            }
        }
    }

    /// Parses a key that must be of `kind` (DESIGN §11.4): a malformed one is
    /// `invalid_key_format`, a generated key of another kind `key_not_found` without a look-up;
    /// both count as failed look-ups.
    pub async fn parse_kind_key(
        &self,
        state: &AppState,
        req: &HttpRequest,
        raw: &str,
        kind: KeyKind,
    ) -> Result<PlainKey, ApiError> {
        let key = self.parse_key(state, req, raw).await?;
        if !key.may_be(kind) {
            self.failed(state).await?;
            return Err(crate::db::Error::UnknownKeyOf(kind).into());
        }
        Ok(key)
    }

    /// Passes `result` through, once an unknown key has been counted as a failed look-up
    /// (`429` instead of `404` once over). Refusals of a known key are never counted.
    pub async fn note<T>(
        &self,
        state: &AppState,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if let Err(e) = &result
            && e.code() == ErrorCode::KeyNotFound
        {
            self.failed(state).await?;
        }
        result
    }
}

/// Counts one registration attempt for `key`; `429` beyond the per-key limit.
pub(crate) async fn registration_attempt(
    state: &AppState,
    key: &RegistrationKey,
) -> Result<(), ApiError> {
    count(state, Limit::Registration, &key.hash()).await
}
