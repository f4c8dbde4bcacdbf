//! Enrollment keys (DESIGN §11.2): the admin API and `POST /v1/enrollments` for agents.

use super::kinds::{self, utc};
use super::lookup as guard;
use super::{client_addr, created, run};
use crate::app::AppState;
use crate::db::audit::Actor;
use crate::db::enrollments::{self, AgentInput, NewEnrollmentKey};
use crate::domain::enrollment::{EnrollmentKey, check_text};
use crate::domain::key::KeyStatus;
use crate::domain::kind::check_max_uses;
use crate::http::auth::AdminAuth;
use crate::http::dto::ListQuery;
use crate::http::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use glpi_network_shared::KeyKind;
use serde::{Deserialize, Serialize};

type Res = Result<HttpResponse, ApiError>;

/// `POST /v1/admin/enrollment-keys`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateEnrollmentKeyRequest {
    pub subscriber_id: String,
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 255
    )]
    pub entity: String,
    /// 0 = unlimited.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub max_uses: i64,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// An enrollment key as the admin API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollmentKeyView {
    pub id: String,
    pub subscriber_id: String,
    pub entity: String,
    pub key_prefix: String,
    pub status: String,
    pub max_uses: i32,
    /// Live enrollments (a released one frees its use).
    pub uses: i32,
    pub expired: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub ver: i64,
    /// The plaintext key: present only in the answer that creates the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl EnrollmentKeyView {
    pub fn new(k: EnrollmentKey, now: NaiveDateTime) -> Self {
        EnrollmentKeyView {
            expired: k.expires_at.is_some_and(|e| e <= now),
            id: k.id,
            subscriber_id: k.subscriber_id,
            entity: k.entity,
            key_prefix: k.key_prefix,
            status: k.status.as_str().to_owned(),
            max_uses: k.max_uses,
            uses: k.uses,
            expires_at: k.expires_at.map(utc),
            created_at: utc(k.created_at),
            revoked_at: k.revoked_at.map(utc),
            ver: k.ver,
            key: None,
        }
    }
}

pub use crate::domain::views::EnrollmentView;

/// `POST /v1/enrollments`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EnrollRequest {
    #[schema(pattern = r"^[ -~]*[!-~][ -~]*$", max_length = 256)]
    pub enrollment_key: String,
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 255
    )]
    pub agent_id: String,
    #[serde(default)]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 255
    )]
    pub hostname: Option<String>,
    #[serde(default)]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        max_length = 255
    )]
    pub mac: Option<String>,
    #[serde(default)]
    #[schema(pattern = r"^[ -~]{0,128}$")]
    pub nonce: Option<String>,
}

/// `{"enrollment": {...}, "token"}`
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollResponse {
    pub enrollment: EnrollmentView,
    pub token: String,
}

fn admin(req: &HttpRequest) -> Actor {
    Actor::new("admin", client_addr(req))
}

pub async fn create_enrollment_key(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<CreateEnrollmentKeyRequest>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let entity = check_text("entity", &body.entity)?;
    let max_uses = check_max_uses(body.max_uses)?;
    let body = body.into_inner();
    let (k, plaintext) = run(&state.db, move |c| {
        let new = NewEnrollmentKey {
            subscriber_id: &body.subscriber_id,
            entity: &entity,
            max_uses,
            expires_at: body.expires_at.map(|t| t.naive_utc()),
            status: KeyStatus::Active,
        };
        enrollments::issue(c, &new, now, &actor)
    })
    .await?;
    let mut view = EnrollmentKeyView::new(k, now);
    view.key = Some(plaintext.expose().to_owned());
    Ok(created(&view))
}

pub async fn list_enrollment_keys(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<crate::http::query::KindParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let now = state.clock.now_naive();
    let page = run(&state.db, move |c| enrollments::list(c, &q)).await?;
    Ok(HttpResponse::Ok().json(page.map(|k| EnrollmentKeyView::new(k, now))))
}

pub async fn get_enrollment_key(
    _: AdminAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let k = run(&state.db, move |c| enrollments::get(c, &id)).await?;
    Ok(HttpResponse::Ok().json(EnrollmentKeyView::new(k, now)))
}

pub async fn revoke_enrollment_key(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let k = run(&state.db, move |c| enrollments::revoke(c, &id, now, &actor)).await?;
    Ok(HttpResponse::Ok().json(EnrollmentKeyView::new(k, now)))
}

pub async fn list_key_enrollments(
    _: AdminAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<crate::http::query::PageParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let (k, page) = run(&state.db, move |c| {
        Ok((
            enrollments::get(c, &id)?,
            enrollments::list_enrollments(c, &id, &q)?,
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(page.map(|e| EnrollmentView::new(e, &k.entity, true))))
}

pub async fn release_enrollment(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    run(&state.db, move |c| {
        enrollments::release(c, &id, now, &actor)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/enrollments`: `201` for a new agent, `200` for the same agent again.
pub async fn enroll_agent(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<EnrollRequest>,
) -> Res {
    let caller = guard::caller(&state, &req)?;
    let key = caller
        .parse_kind_key(&state, &req, &body.enrollment_key, KeyKind::Enrollment)
        .await?;
    let agent = AgentInput {
        agent_id: check_text("agent_id", &body.agent_id)?,
        hostname: body
            .hostname
            .as_deref()
            .map(|h| check_text("hostname", h))
            .transpose()?,
        mac: body
            .mac
            .as_deref()
            .map(|m| check_text("mac", m))
            .transpose()?,
    };
    kinds::check_nonce(body.nonce.as_deref())?;
    let now = state.clock.now_naive();
    let actor = Actor::new("agent", Some(caller.addr.clone()));
    let result = run(&state.db, move |c| {
        enrollments::enroll(c, &key, &agent, now, &actor)
    })
    .await;
    let done = caller.note(&state, result).await?;
    let token = kinds::sign(
        &state,
        req.app_data(),
        &done.key.id,
        done.key.ver,
        body.nonce.as_deref(),
        serde_json::json!({
            "valid": true,
            "status": "valid",
            "agent_id": done.enrollment.agent_id,
            "entity": done.key.entity,
            "enrollment_key_id": done.key.id,
        }),
    )?;
    let body = EnrollResponse {
        enrollment: EnrollmentView::new(done.enrollment, &done.key.entity, false),
        token,
    };
    Ok(if done.created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}
