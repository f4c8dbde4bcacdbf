//! Invitation keys (DESIGN §11.3): the admin API and `POST /v1/invitations/redemptions`, which
//! creates a portal account in the inviting subscriber with the invitation's role.

use super::kinds::{self, utc};
use super::lookup as guard;
use super::{client_addr, created, run};
use crate::app::AppState;
use crate::db::audit::Actor;
use crate::db::invitations::{self, Invitee, NewInvitation};
use crate::domain::invitation::{
    DEFAULT_MAX_USES, DEFAULT_VALIDITY_DAYS, Invitation, Role, normalise_email,
};
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

/// `POST /v1/admin/invitations`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateInvitationRequest {
    pub subscriber_id: String,
    /// `owner`, `manager` or `viewer`.
    #[schema(pattern = r"^(owner|manager|viewer)$")]
    pub role: String,
    /// Default 1; 0 = unlimited.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2147483647)]
    pub max_uses: Option<i64>,
    /// Default: 7 days from now.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// An invitation as the admin API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub subscriber_id: String,
    pub role: String,
    pub key_prefix: String,
    pub status: String,
    pub max_uses: i32,
    pub uses: i32,
    pub expired: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub ver: i64,
    /// The plaintext key: present only in the answer that creates the invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `<public-url>/portal/invite/<key>`: only in the answer that creates the invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl InvitationView {
    pub fn new(v: Invitation, now: NaiveDateTime) -> Self {
        InvitationView {
            expired: v.expires_at.is_some_and(|e| e <= now),
            id: v.id,
            subscriber_id: v.subscriber_id,
            role: v.role.as_str().to_owned(),
            key_prefix: v.key_prefix,
            status: v.status.as_str().to_owned(),
            max_uses: v.max_uses,
            uses: v.uses,
            expires_at: v.expires_at.map(utc),
            created_at: utc(v.created_at),
            revoked_at: v.revoked_at.map(utc),
            ver: v.ver,
            key: None,
            url: None,
        }
    }
}

pub use crate::domain::views::AccountView;

/// `POST /v1/invitations/redemptions`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RedeemRequest {
    #[schema(pattern = r"^[ -~]*[!-~][ -~]*$", max_length = 256)]
    pub invitation_key: String,
    /// `local@domain`, at most 254 characters.
    #[schema(pattern = r"^[!-?A-~]+@[!-?A-~]+$", max_length = 254)]
    pub email: String,
    /// 1 to 200 characters (trimmed).
    #[schema(pattern = r"\S", max_length = 200)]
    pub name: String,
    /// Without one the account cannot sign in to the portal (12 characters or more).
    #[serde(default)]
    #[schema(min_length = 12, max_length = 256)]
    pub password: Option<String>,
    #[serde(default)]
    #[schema(pattern = r"^[ -~]{0,128}$")]
    pub nonce: Option<String>,
}

/// `{"account": {...}, "token"}`
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RedeemResponse {
    pub account: AccountView,
    pub token: String,
}

fn admin(req: &HttpRequest) -> Actor {
    Actor::new("admin", client_addr(req))
}

fn role(raw: &str) -> Result<Role, ApiError> {
    Role::parse(raw.trim())
        .ok_or_else(|| ApiError::bad_request("role must be owner, manager or viewer"))
}

pub async fn create_invitation(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<CreateInvitationRequest>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let role = role(&body.role)?;
    let max_uses = match body.max_uses {
        Some(m) => check_max_uses(m)?,
        None => DEFAULT_MAX_USES,
    };
    let expires_at = body
        .expires_at
        .map(|t| t.naive_utc())
        .unwrap_or(now + chrono::Duration::days(DEFAULT_VALIDITY_DAYS));
    let (v, plaintext) = run(&state.db, move |c| {
        let new = NewInvitation {
            subscriber_id: &body.subscriber_id,
            role,
            max_uses,
            expires_at: Some(expires_at),
            status: KeyStatus::Active,
        };
        invitations::issue(c, &new, now, &actor)
    })
    .await?;
    let mut view = InvitationView::new(v, now);
    view.url = Some(format!(
        "{}/portal/invite/{}",
        state.public_url,
        plaintext.expose()
    ));
    view.key = Some(plaintext.expose().to_owned());
    Ok(created(&view))
}

pub async fn list_invitations(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<crate::http::query::KindParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let now = state.clock.now_naive();
    let page = run(&state.db, move |c| invitations::list(c, &q)).await?;
    Ok(HttpResponse::Ok().json(page.map(|v| InvitationView::new(v, now))))
}

pub async fn get_invitation(
    _: AdminAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let v = run(&state.db, move |c| invitations::get(c, &id)).await?;
    Ok(HttpResponse::Ok().json(InvitationView::new(v, now)))
}

pub async fn revoke_invitation(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let v = run(&state.db, move |c| invitations::revoke(c, &id, now, &actor)).await?;
    Ok(HttpResponse::Ok().json(InvitationView::new(v, now)))
}

/// `POST /v1/invitations/redemptions`: `201` for a new account, `200` for the same email again.
pub async fn redeem_invitation(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RedeemRequest>,
) -> Res {
    let caller = guard::caller(&state, &req)?;
    let key = caller
        .parse_kind_key(&state, &req, &body.invitation_key, KeyKind::Invitation)
        .await?;
    let email = normalise_email(&body.email)?;
    let name = crate::domain::enrollment::check_text("name", &body.name)?;
    kinds::check_nonce(body.nonce.as_deref())?;
    let password_hash = match body.password.clone() {
        Some(pw) => {
            crate::domain::account::check_password(&pw)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            // Argon2id, as the portal's sign-up: the account can then sign in to the portal
            web::block(move || crate::http::portal::session::hash_password(&pw))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?
        }
        None => invitations::NO_PASSWORD.to_owned(),
    };
    let who = Invitee {
        email,
        name,
        password_hash,
    };
    let now = state.clock.now_naive();
    let actor = Actor::new("invitee", Some(caller.addr.clone()));
    let result = run(&state.db, move |c| {
        invitations::redeem(c, &key, &who, now, &actor)
    })
    .await;
    let done = caller.note(&state, result).await?;
    let token = kinds::sign(
        &state,
        req.app_data(),
        &done.invitation.id,
        done.invitation.ver,
        body.nonce.as_deref(),
        serde_json::json!({
            "valid": true,
            "status": "valid",
            "role": done.account.role.as_str(),
            "subscriber_id": done.account.subscriber_id,
            "email": done.account.email,
        }),
    )?;
    let answer = RedeemResponse {
        account: done.account.into(),
        token,
    };
    Ok(if done.created {
        HttpResponse::Created().json(answer)
    } else {
        HttpResponse::Ok().json(answer)
    })
}
