//! The instance API: the registration key is the credential.

use super::lookup as guard;
use super::run;
use crate::app::AppState;
use crate::db::reader::{ReadPath, Reader};
use crate::db::{audit::Actor, registrations};
use crate::domain::binding::{Binding, KeyState};
use crate::domain::token;
use crate::http::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use glpi_network_shared::ValidationStatus;
use glpi_network_shared::token::LocalSigners;
use glpi_network_shared::wire::{
    RegisterRequest, RegisterResponse, ReleaseRequest, ValidateRequest, ValidationResponse,
};
use glpi_network_shared::{InstanceUrl, RegistrationKey};
use std::sync::Arc;

/// The longest nonce echoed in tokens.
pub const MAX_NONCE_LEN: usize = 128;

fn check_nonce(nonce: Option<&str>) -> Result<(), ApiError> {
    match nonce {
        Some(n) if n.len() > MAX_NONCE_LEN || n.chars().any(char::is_control) => {
            Err(ApiError::bad_request(format!(
                "nonce must be at most {MAX_NONCE_LEN} printable characters"
            )))
        }
        _ => Ok(()),
    }
}

/// Signs a token for `ks` as seen by the instance at `instance_url`.
pub(crate) fn issue_token(
    state: &AppState,
    local: Option<&LocalSigners>,
    ks: &KeyState,
    registration: Option<&Binding>,
    instance_url: Option<&str>,
    status: ValidationStatus,
    nonce: Option<&str>,
) -> Result<String, ApiError> {
    let input = token::TokenInput {
        key: &ks.key,
        subscription: &ks.subscription,
        owner: &ks.owner,
        registration,
        instance_url,
        status,
        nonce,
    };
    let claims = token::claims(
        &input,
        &state.offers,
        &state.public_url,
        state.signer.lifetimes(),
        state.clock.now(),
    );
    let started = std::time::Instant::now();
    let token = state.signer.sign(local, &claims);
    state
        .metrics
        .signing
        .observe(started.elapsed().as_secs_f64());
    Ok(token?)
}

/// `POST /v1/registrations`: `201` for a new binding, `200` for the same one again.
pub async fn register_instance(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = guard::caller(&state, &req)?;
    let key = caller
        .parse_key(&state, &req, &body.registration_key)
        .await?;
    let url = InstanceUrl::parse(&body.instance_url)?;
    let uid = body
        .instance_uid
        .as_deref()
        .map(crate::domain::binding::parse_uid)
        .transpose()?;
    check_nonce(body.nonce.as_deref())?;
    guard::registration_attempt(&state, &key).await?;
    let now = state.clock.now_naive();
    let actor = Actor::new("instance", Some(caller.addr.clone()));
    let signer = state.signer.clone();
    let result = run(&state.db, move |c| {
        signer.refresh_if_stale(c, now)?;
        registrations::register(c, &key, Some(&url), uid.as_deref(), now, &actor)
    })
    .await;
    let bound = caller.note(&state, result).await?;
    if bound.created {
        state.metrics.registrations_bound.inc();
    }
    let view = crate::http::dto::registration_view(
        bound.registration.clone(),
        bound.state.key.key_prefix.clone(),
    );
    let st = bound
        .state
        .status_for(view.instance_url.as_deref().unwrap_or_default(), now);
    let token = issue_token(
        &state,
        req.app_data(),
        &bound.state,
        Some(&bound.registration),
        bound.registration.instance_url.as_deref(),
        st,
        body.nonce.as_deref(),
    )?;
    let body = RegisterResponse {
        registration: view,
        valid: st.is_valid(),
        status: st,
        token,
    };
    Ok(if bound.created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// A cached state that is valid for this URL answers without the database (a refusal is
/// audited, a stale `last_seen_at` refreshed and a stale signing ring reloaded, through the
/// database path).
fn cached_validation(
    state: &AppState,
    hash: &str,
    canonical: &str,
    now: chrono::NaiveDateTime,
) -> Option<(Arc<KeyState>, ValidationStatus)> {
    let ks = state.keys.get(hash).filter(|_| !state.signer.is_stale())?;
    let st = ks.status_for(canonical, now);
    let fresh = ks
        .registration
        .as_ref()
        .is_some_and(|r| !r.last_seen_due(now));
    (st.is_valid() && fresh).then_some((ks, st))
}

/// A valid validation read by the worker's `reader` (its own SQLite connection, or a batch on
/// PostgreSQL; a due `last_seen_at` recorded for the next batch), counted by the path that
/// read it; `None` sends the request down the pooled path, which refreshes the signing keys and
/// audits refusals. The state is cached under the stamp taken before the read.
async fn validate_from_worker(
    state: &AppState,
    reader: Option<&Reader>,
    hash: &str,
    canonical: &str,
    now: chrono::NaiveDateTime,
) -> Option<(Arc<KeyState>, ValidationStatus)> {
    let read = match reader {
        Some(r) if !state.signer.is_stale() => read_valid(state, r, hash, canonical, now).await,
        _ => None,
    };
    let path = match (&read, reader) {
        (Some(_), Some(r)) => r.path(),
        _ => ReadPath::Pool,
    };
    state.metrics.key_read(path);
    read
}

/// The key's state read by `reader` when it is valid for `canonical` and its use is recorded.
async fn read_valid(
    state: &AppState,
    reader: &Reader,
    hash: &str,
    canonical: &str,
    now: chrono::NaiveDateTime,
) -> Option<(Arc<KeyState>, ValidationStatus)> {
    let stamp = state.keys.stamp(hash);
    let mut ks = super::read_state(reader, hash).await?;
    let status = ks.status_for(canonical, now);
    (status.is_valid() && reader.note_use(&mut ks, now)).then_some(())?;
    let ks = Arc::new(ks);
    state.keys.put(hash, ks.clone(), stamp);
    Some((ks, status))
}

/// A validation read from the database: a valid state is cached under the stamp taken before
/// the read; any other forgets the key's cached state (a cached "valid" read before a change
/// made elsewhere, and not yet notified, is never served after this answer).
async fn validate_from_database(
    state: &AppState,
    caller: &guard::Caller,
    key: RegistrationKey,
    url: InstanceUrl,
    now: chrono::NaiveDateTime,
) -> Result<(Arc<KeyState>, ValidationStatus), ApiError> {
    let hash = key.hash();
    let stamp = state.keys.stamp(&hash);
    let actor = Actor::new("instance", Some(caller.addr.clone()));
    let signer = state.signer.clone();
    let result = run(&state.db, move |c| {
        signer.refresh_if_stale(c, now)?;
        registrations::validate(c, &key, &url, now, &actor)
    })
    .await;
    let v = caller.note(state, result).await?;
    let ks = Arc::new(v.state);
    if v.status.is_valid() {
        state.keys.put(&hash, ks.clone(), stamp);
    } else {
        state.keys.forget(&hash);
    }
    Ok((ks, v.status))
}

/// `POST /v1/validations`: `200` with the status for any known key.
pub async fn validate_instance(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ValidateRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = guard::caller(&state, &req)?;
    let key = caller
        .parse_key(&state, &req, &body.registration_key)
        .await?;
    let url = InstanceUrl::parse(&body.instance_url)?;
    check_nonce(body.nonce.as_deref())?;
    let now = state.clock.now_naive();
    let canonical = url.as_str().to_owned();
    let hash = key.hash();
    let cached = cached_validation(&state, &hash, &canonical, now);
    state
        .metrics
        .key_cache(state.keys.enabled(), cached.is_some());
    let (ks, status) = match cached {
        Some(hit) => hit,
        None => match validate_from_worker(&state, req.app_data(), &hash, &canonical, now).await {
            Some(hit) => hit,
            None => validate_from_database(&state, &caller, key, url, now).await?,
        },
    };
    state
        .metrics
        .validations
        .with_label_values(&[status.as_str()])
        .inc();
    let mine = ks
        .registration
        .as_ref()
        .filter(|r| r.instance_url.as_deref() == Some(canonical.as_str()));
    let token = issue_token(
        &state,
        req.app_data(),
        &ks,
        mine,
        Some(&canonical),
        status,
        body.nonce.as_deref(),
    )?;
    Ok(HttpResponse::Ok().json(ValidationResponse {
        valid: status.is_valid(),
        status,
        token,
    }))
}

/// `DELETE /v1/registrations`: the instance releases its own binding; `204`.
pub async fn release_instance(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ReleaseRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = guard::caller(&state, &req)?;
    let key = caller
        .parse_key(&state, &req, &body.registration_key)
        .await?;
    let url = InstanceUrl::parse(&body.instance_url)?;
    let now = state.clock.now_naive();
    let actor = Actor::new("instance", Some(caller.addr.clone()));
    let result = run(&state.db, move |c| {
        registrations::release_by_key(c, &key, &url, now, &actor)
    })
    .await;
    caller.note(&state, result).await?;
    Ok(HttpResponse::NoContent().finish())
}
