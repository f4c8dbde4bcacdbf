//! What the handlers of the other kinds of keys share (DESIGN §11): the signed token of a use,
//! the nonce rule and the views' time format.

use crate::app::AppState;
use crate::http::error::ApiError;
use glpi_network_shared::token::{AUDIENCE, KindClaims, LocalSigners};
use serde_json::{Map, Value};

pub(crate) use crate::http::dto::utc;

/// Signs a token for a use of the key `sub` (its id) at version `ver`, with the kind's claims
/// (with the worker's parsed signers in `local`, see `Signer::sign`).
pub(crate) fn sign(
    state: &AppState,
    local: Option<&LocalSigners>,
    sub: &str,
    ver: i64,
    nonce: Option<&str>,
    extra: Value,
) -> Result<String, ApiError> {
    let lifetimes = state.signer.lifetimes();
    let iat = state.clock.now().timestamp();
    let exp = iat + lifetimes.ttl_secs;
    let claims = KindClaims {
        iss: state.public_url.to_string(),
        aud: AUDIENCE.to_owned(),
        sub: sub.to_owned(),
        iat,
        nbf: iat,
        exp,
        jti: uuid::Uuid::new_v4().to_string(),
        grace_until: exp + lifetimes.grace_secs,
        ver,
        nonce: nonce.map(str::to_owned),
        extra: match extra {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    };
    let started = std::time::Instant::now();
    let token = state.signer.sign(local, &claims);
    state
        .metrics
        .signing
        .observe(started.elapsed().as_secs_f64());
    Ok(token?)
}

/// The longest nonce echoed in tokens.
const MAX_NONCE_LEN: usize = 128;

/// Refuses an overlong or non-printable nonce.
pub(crate) fn check_nonce(nonce: Option<&str>) -> Result<(), ApiError> {
    match nonce {
        Some(n) if n.len() > MAX_NONCE_LEN || n.chars().any(char::is_control) => {
            Err(ApiError::bad_request(format!(
                "nonce must be at most {MAX_NONCE_LEN} printable characters"
            )))
        }
        _ => Ok(()),
    }
}
