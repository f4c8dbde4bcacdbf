//! The instance API: the registration key is the credential.

use super::client_addr;
use crate::app::AppState;
use crate::db::{self, audit::Actor, registrations};
use crate::domain::status;
use crate::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use glpi_network_shared::wire::{
    RegisterRequest, RegisterResponse, ReleaseRequest, ValidateRequest, ValidationResponse,
};
use glpi_network_shared::{InstanceUrl, RegistrationKey};

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

/// `POST /v1/registrations`: `201` for a new binding, `200` for the same one again.
pub async fn register_instance(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = RegistrationKey::parse(&body.registration_key)?;
    let url = InstanceUrl::parse(&body.instance_url)?;
    let uid = body
        .instance_uid
        .as_deref()
        .map(registrations::parse_uid)
        .transpose()?;
    check_nonce(body.nonce.as_deref())?;
    let now = state.clock.now_naive();
    let actor = Actor::new("instance", client_addr(&req));
    let (bound, view) = db::run(&state.pool, move |c| {
        let bound = registrations::register(c, &key, Some(&url), uid.as_deref(), now, &actor)?;
        let view = registrations::view(c, bound.registration.clone())?;
        Ok((bound, view))
    })
    .await?;
    let st = status::native_status(
        &bound.state.key,
        &bound.state.subscription,
        Some(&bound.registration),
        view.instance_url.as_deref().unwrap_or_default(),
        now,
    );
    let body = RegisterResponse {
        registration: view,
        valid: st.is_valid(),
        status: st,
        token: None,
    };
    Ok(if bound.created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// `POST /v1/validations`: `200` with the status for any known key.
pub async fn validate_instance(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ValidateRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = RegistrationKey::parse(&body.registration_key)?;
    let url = InstanceUrl::parse(&body.instance_url)?;
    check_nonce(body.nonce.as_deref())?;
    let now = state.clock.now_naive();
    let actor = Actor::new("instance", client_addr(&req));
    let v = db::run(&state.pool, move |c| {
        registrations::validate(c, &key, &url, now, &actor)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ValidationResponse {
        valid: v.status.is_valid(),
        status: v.status,
        token: None,
    }))
}

/// `DELETE /v1/registrations`: the instance releases its own binding; `204`.
pub async fn release_instance(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ReleaseRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = RegistrationKey::parse(&body.registration_key)?;
    let url = InstanceUrl::parse(&body.instance_url)?;
    let now = state.clock.now_naive();
    let actor = Actor::new("instance", client_addr(&req));
    db::run(&state.pool, move |c| {
        registrations::release_by_key(c, &key, &url, now, &actor)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
