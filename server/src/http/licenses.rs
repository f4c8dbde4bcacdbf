//! Plugin licenses (DESIGN §11.1): the admin API, and activation, release and validation by
//! instances (the license key is the credential).

use super::kinds::{self, utc};
use super::lookup as guard;
use super::{client_addr, created, run};
use crate::app::AppState;
use crate::db::audit::Actor;
use crate::db::licenses::{self, NewLicense};
use crate::domain::binding::parse_uid;
use crate::domain::key::KeyStatus;
use crate::domain::license::License;
use crate::http::auth::AdminAuth;
use crate::http::dto::ListQuery;
use crate::http::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use glpi_network_shared::token::LocalSigners;
use glpi_network_shared::{InstanceUrl, KeyKind, PlainKey, ValidationStatus};
use serde::{Deserialize, Serialize};

type Res = Result<HttpResponse, ApiError>;

/// `POST /v1/admin/licenses`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateLicenseRequest {
    pub subscriber_id: String,
    /// The commercial plugin's key.
    pub plugin: String,
    /// Default: now + the plugin's `license_term_days`.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /v1/admin/licenses/{id}/renew`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RenewLicenseRequest {
    pub expires_at: DateTime<Utc>,
}

pub use crate::domain::views::LicenseView;

/// `POST`/`DELETE /v1/licenses/activations`, `POST /v1/licenses/validations`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LicenseRequest {
    #[schema(pattern = r"^[ -~]*[!-~][ -~]*$", max_length = 256)]
    pub license_key: String,
    #[serde(default)]
    #[schema(
        pattern = r"^https?://([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z]([a-z0-9-]*[a-z0-9])?(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]*)*$",
        max_length = 2048
    )]
    pub instance_url: Option<String>,
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,128}$")]
    pub instance_uid: Option<String>,
    #[serde(default)]
    #[schema(pattern = r"^[ -~]{0,128}$")]
    pub nonce: Option<String>,
}

/// The answer to an activation: the license's activation and a signed token.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivationResponse {
    pub activation: ActivationView,
    pub valid: bool,
    pub status: ValidationStatus,
    pub token: String,
}

/// A license as its instance sees it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivationView {
    pub license_id: String,
    pub plugin: String,
    pub key_prefix: String,
    pub instance_url: Option<String>,
    pub instance_uid: Option<String>,
    pub activated_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

/// `{"valid", "status", "token"}`
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LicenseValidationResponse {
    pub valid: bool,
    pub status: ValidationStatus,
    pub token: String,
}

fn admin(req: &HttpRequest) -> Actor {
    Actor::new("admin", client_addr(req))
}

pub async fn create_license(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<CreateLicenseRequest>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let (l, plaintext) = run(&state.db, move |c| {
        let new = NewLicense {
            subscriber_id: &body.subscriber_id,
            plugin: &body.plugin,
            expires_at: body.expires_at.map(|t| t.naive_utc()),
            status: KeyStatus::Active,
        };
        licenses::issue(c, &new, now, &actor)
    })
    .await?;
    let mut view = LicenseView::new(l, now);
    view.key = Some(plaintext.expose().to_owned());
    Ok(created(&view))
}

pub async fn list_licenses(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<crate::http::query::LicenseParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let now = state.clock.now_naive();
    let page = run(&state.db, move |c| licenses::list(c, &q)).await?;
    Ok(HttpResponse::Ok().json(page.map(|l| LicenseView::new(l, now))))
}

pub async fn get_license(_: AdminAuth, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    let now = state.clock.now_naive();
    let l = run(&state.db, move |c| licenses::get(c, &id)).await?;
    Ok(HttpResponse::Ok().json(LicenseView::new(l, now)))
}

pub async fn revoke_license(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let l = run(&state.db, move |c| licenses::revoke(c, &id, now, &actor)).await?;
    Ok(HttpResponse::Ok().json(LicenseView::new(l, now)))
}

pub async fn renew_license(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<RenewLicenseRequest>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let until = body.expires_at.naive_utc();
    let l = run(&state.db, move |c| {
        licenses::renew(c, &id, until, now, &actor)
    })
    .await?;
    Ok(HttpResponse::Ok().json(LicenseView::new(l, now)))
}

/// The parsed instance side of a request: key, canonical URL and UID (at least one of them).
struct Instance {
    key: PlainKey,
    url: Option<String>,
    uid: Option<String>,
}

async fn instance(
    state: &AppState,
    req: &HttpRequest,
    caller: &guard::Caller,
    body: &LicenseRequest,
) -> Result<Instance, ApiError> {
    let key = caller
        .parse_kind_key(state, req, &body.license_key, KeyKind::License)
        .await?;
    let url = body
        .instance_url
        .as_deref()
        .map(|u| InstanceUrl::parse(u).map(|u| u.as_str().to_owned()))
        .transpose()?;
    let uid = body.instance_uid.as_deref().map(parse_uid).transpose()?;
    if url.is_none() && uid.is_none() {
        return Err(ApiError::bad_request(
            "instance_url or instance_uid is required",
        ));
    }
    kinds::check_nonce(body.nonce.as_deref())?;
    Ok(Instance { key, url, uid })
}

fn token(
    state: &AppState,
    local: Option<&LocalSigners>,
    l: &License,
    inst: &Instance,
    status: ValidationStatus,
    nonce: Option<&str>,
) -> Result<String, ApiError> {
    kinds::sign(
        state,
        local,
        &l.id,
        l.ver,
        nonce,
        serde_json::json!({
            "valid": status == ValidationStatus::Valid,
            "status": status,
            "plugin": l.plugin,
            "license_expires_at": l.expires_at.and_utc().timestamp(),
            "instance_url": inst.url.as_deref().or(l.instance_url.as_deref()),
            "instance_uid": inst.uid.as_deref().or(l.instance_uid.as_deref()),
        }),
    )
}

/// `POST /v1/licenses/activations`: `201` first, `200` for the same instance again.
pub async fn activate_license(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LicenseRequest>,
) -> Res {
    let caller = guard::caller(&state, &req)?;
    let inst = instance(&state, &req, &caller, &body).await?;
    let now = state.clock.now_naive();
    let actor = Actor::new("instance", Some(caller.addr.clone()));
    let (key, url, uid) = (inst.key.clone(), inst.url.clone(), inst.uid.clone());
    let result = run(&state.db, move |c| {
        licenses::activate(c, &key, url.as_deref(), uid.as_deref(), now, &actor)
    })
    .await;
    let done = caller.note(&state, result).await?;
    let l = done.license;
    let token = token(
        &state,
        req.app_data(),
        &l,
        &inst,
        ValidationStatus::Valid,
        body.nonce.as_deref(),
    )?;
    let answer = ActivationResponse {
        activation: ActivationView {
            license_id: l.id.clone(),
            plugin: l.plugin.clone(),
            key_prefix: l.key_prefix.clone(),
            instance_url: l.instance_url.clone(),
            instance_uid: l.instance_uid.clone(),
            activated_at: l.activated_at.map(utc),
            expires_at: utc(l.expires_at),
        },
        valid: true,
        status: ValidationStatus::Valid,
        token,
    };
    Ok(if done.created {
        HttpResponse::Created().json(answer)
    } else {
        HttpResponse::Ok().json(answer)
    })
}

/// `DELETE /v1/licenses/activations`: the instance releases its activation; `204`.
pub async fn release_license(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LicenseRequest>,
) -> Res {
    let caller = guard::caller(&state, &req)?;
    let inst = instance(&state, &req, &caller, &body).await?;
    let now = state.clock.now_naive();
    let actor = Actor::new("instance", Some(caller.addr.clone()));
    let result = run(&state.db, move |c| {
        licenses::release(
            c,
            &inst.key,
            inst.url.as_deref(),
            inst.uid.as_deref(),
            now,
            &actor,
        )
    })
    .await;
    caller.note(&state, result).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/licenses/validations`: `200` with the status for any known license.
pub async fn validate_license(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LicenseRequest>,
) -> Res {
    let caller = guard::caller(&state, &req)?;
    let inst = instance(&state, &req, &caller, &body).await?;
    let now = state.clock.now_naive();
    let actor = Actor::new("instance", Some(caller.addr.clone()));
    let (key, url, uid) = (inst.key.clone(), inst.url.clone(), inst.uid.clone());
    let result = run(&state.db, move |c| {
        licenses::validate(c, &key, url.as_deref(), uid.as_deref(), now, &actor)
    })
    .await;
    let (l, status) = caller.note(&state, result).await?;
    let token = token(
        &state,
        req.app_data(),
        &l,
        &inst,
        status,
        body.nonce.as_deref(),
    )?;
    Ok(HttpResponse::Ok().json(LicenseValidationResponse {
        valid: status == ValidationStatus::Valid,
        status,
        token,
    }))
}
