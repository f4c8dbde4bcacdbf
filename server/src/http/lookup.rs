//! Key look-ups under the rate limits: every handler that takes a registration key goes
//! through here, so unknown and malformed keys count against the client address on every
//! path (native, GLPI `/info`, marketplace).

use super::client_addr;
use crate::app::AppState;
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

/// The caller, refused with `429` while its address is over the failed look-up limit.
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

impl Caller {
    /// Counts one failed look-up.
    pub fn failed(&self, state: &AppState) {
        state
            .limits
            .failed_lookups
            .count(&self.addr, state.clock.now().timestamp());
    }

    /// Parses a key; a malformed one counts as a failed look-up. The display prefix goes to
    /// the request log.
    pub fn parse_key(
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
                self.failed(state);
                Err(e.into())
            }
        }
    }

    /// Parses a key that must be of `kind` (DESIGN §11.4): a malformed one is
    /// `invalid_key_format`, a generated key of another kind `key_not_found` without a look-up;
    /// both count as failed look-ups.
    pub fn parse_kind_key(
        &self,
        state: &AppState,
        req: &HttpRequest,
        raw: &str,
        kind: KeyKind,
    ) -> Result<PlainKey, ApiError> {
        let key = self.parse_key(state, req, raw)?;
        if !key.may_be(kind) {
            self.failed(state);
            return Err(crate::db::Error::UnknownKeyOf(kind).into());
        }
        Ok(key)
    }

    /// Counts the look-up as failed when the key was unknown.
    pub fn note<T>(&self, state: &AppState, result: &Result<T, ApiError>) {
        if let Err(e) = result
            && e.code() == ErrorCode::KeyNotFound
        {
            self.failed(state);
        }
    }
}

/// Counts one registration attempt for `key`; `429` beyond the per-key limit.
pub(crate) fn registration_attempt(
    state: &AppState,
    key: &RegistrationKey,
) -> Result<(), ApiError> {
    state
        .limits
        .registrations
        .hit(&key.hash(), state.clock.now().timestamp())
        .map_err(|over| refused(state, "registrations_per_key", over))
}
