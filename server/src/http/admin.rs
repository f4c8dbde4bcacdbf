//! The admin API under `/v1/admin` (bearer admin token).

use super::{client_addr, created, run};
use crate::app::AppState;
use crate::db::{
    self, audit, audit::Actor, keys, offers, registrations, subscribers, subscriptions,
};
use crate::domain::subscription::Action;
use crate::http::auth::AdminAuth;
use crate::http::dto::*;
use crate::http::error::ApiError;
use crate::http::query::*;
use actix_web::{HttpRequest, HttpResponse, web};

type Res = Result<HttpResponse, ApiError>;

fn admin(req: &HttpRequest) -> Actor {
    Actor::new("admin", client_addr(req))
}

fn ok<T: serde::Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

pub async fn list_offers(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<PageParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let rows = run(&state.db, |c| offers::list(c)).await?;
    let page = crate::db::page::page_in_memory(rows, &q, |o| o.reference.clone())?;
    Ok(ok(&page.map(OfferView::from)))
}

pub async fn create_subscriber(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<CreateSubscriberRequest>,
) -> Res {
    let now = state.clock.now_naive();
    let row = run(&state.db, move |c| {
        subscribers::create(c, &body.name, body.email.as_deref(), now)
    })
    .await?;
    Ok(created(&SubscriberView::from(row)))
}

pub async fn list_subscribers(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<PageParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let page = run(&state.db, move |c| subscribers::list(c, &q)).await?;
    Ok(ok(&page.map(SubscriberView::from)))
}

pub async fn get_subscriber(
    _: AdminAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Res {
    let row = run(&state.db, move |c| subscribers::get(c, &id)).await?;
    Ok(ok(&SubscriberView::from(row)))
}

pub async fn create_subscription(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<CreateSubscriptionRequest>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let new = body.into_inner().into();
    let row = run(&state.db, move |c| {
        subscriptions::create(c, &new, now, &actor)
    })
    .await?;
    Ok(created(&SubscriptionView::new(row, now.date())))
}

pub async fn list_subscriptions(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<SubscriptionParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let today = state.clock.now_naive().date();
    let page = run(&state.db, move |c| subscriptions::list(c, &q)).await?;
    Ok(ok(&page.map(|s| SubscriptionView::new(s, today))))
}

pub async fn get_subscription(
    _: AdminAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let row = run(&state.db, move |c| subscriptions::get(c, &id)).await?;
    Ok(ok(&SubscriptionView::new(row, now.date())))
}

async fn transition(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: String,
    action: Action,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let row = run(&state.db, move |c| {
        subscriptions::transition(c, &id, action, now, &actor)
    })
    .await?;
    Ok(ok(&SubscriptionView::new(row, now.date())))
}

pub async fn suspend_subscription(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    transition(state, req, id.into_inner(), Action::Suspend).await
}

pub async fn resume_subscription(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    transition(state, req, id.into_inner(), Action::Resume).await
}

pub async fn cancel_subscription(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    transition(state, req, id.into_inner(), Action::Cancel).await
}

pub async fn create_key(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<CreateKeyRequest>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let expires = body.expires_at.map(|t| t.naive_utc());
    let (row, plaintext) = run(&state.db, move |c| {
        keys::issue(c, &body.subscription_id, expires, now, &actor)
    })
    .await?;
    let mut view = KeyView::new(row, now);
    view.key = Some(plaintext.expose().to_owned());
    Ok(created(&view))
}

pub async fn list_keys(_: AdminAuth, state: web::Data<AppState>, q: web::Query<KeyParams>) -> Res {
    let q: ListQuery = q.into_inner().into();
    let now = state.clock.now_naive();
    let page = run(&state.db, move |c| keys::list(c, &q)).await?;
    Ok(ok(&page.map(|k| KeyView::new(k, now))))
}

pub async fn get_key(_: AdminAuth, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    let now = state.clock.now_naive();
    let row = run(&state.db, move |c| keys::get(c, &id)).await?;
    Ok(ok(&KeyView::new(row, now)))
}

pub async fn revoke_key(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let row = run(&state.db, move |c| keys::revoke(c, &id, now, &actor)).await?;
    Ok(ok(&KeyView::new(row, now)))
}

pub async fn regenerate_key(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let (row, plaintext) = run(&state.db, move |c| keys::regenerate(c, &id, now, &actor)).await?;
    let mut view = KeyView::new(row, now);
    view.key = Some(plaintext.expose().to_owned());
    Ok(created(&view))
}

pub async fn list_registrations(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<RegistrationParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let page = run(&state.db, move |c| registrations::list(c, &q)).await?;
    Ok(ok(&page.map(|(r, prefix)| {
        registration_view(with_pending_seen(&state, r), prefix)
    })))
}

pub async fn get_registration(
    _: AdminAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Res {
    let (row, prefix) = run(&state.db, move |c| {
        let row = registrations::get(c, &id)?;
        registrations::with_prefix(c, row)
    })
    .await?;
    Ok(ok(&registration_view(
        with_pending_seen(&state, row),
        prefix,
    )))
}

/// The binding with its latest recorded use, written out or not yet (see
/// [`crate::db::last_seen`]).
fn with_pending_seen(
    state: &AppState,
    mut r: crate::domain::binding::Binding,
) -> crate::domain::binding::Binding {
    if let Some(at) = state.db.pending_last_seen(&r.id) {
        r.last_seen_at = r.last_seen_at.max(at);
    }
    r
}

pub async fn release_registration(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    run(&state.db, move |c| {
        registrations::release_by_id(c, &id, now, &actor)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list_audit(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<AuditParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let page = run(&state.db, move |c| audit::list(c, &q)).await?;
    Ok(ok(&page.map(AuditView::from)))
}

pub async fn list_signing_keys(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<PageParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let now = state.clock.now_naive();
    let rows = run(&state.db, |c| db::signing_keys::all(c)).await?;
    let page = crate::db::page::page_in_memory(rows, &q, |k| k.kid.clone())?;
    Ok(ok(&page.map(|r| SigningKeyView::new(r, &state.signer, now))))
}

pub async fn rotate_signing_key(_: AdminAuth, state: web::Data<AppState>, req: HttpRequest) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let signer = state.signer.clone();
    let row = run(&state.db, move |c| signer.rotate(c, now, &actor)).await?;
    Ok(created(&SigningKeyView::new(row, &state.signer, now)))
}

pub async fn get_offer(
    _: AdminAuth,
    state: web::Data<AppState>,
    reference: web::Path<String>,
) -> Res {
    let row = state
        .offers
        .get(reference.as_str())
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no offer {reference}")))?;
    Ok(ok(&OfferView::from(row)))
}

pub async fn get_audit_event(_: AdminAuth, state: web::Data<AppState>, id: web::Path<i64>) -> Res {
    let id = id.into_inner();
    let row = run(&state.db, move |c| audit::get(c, id)).await?;
    Ok(ok(&AuditView::from(row)))
}

pub async fn get_signing_key(
    _: AdminAuth,
    state: web::Data<AppState>,
    kid: web::Path<String>,
) -> Res {
    let now = state.clock.now_naive();
    let kid = kid.into_inner();
    let rows = run(&state.db, |c| db::signing_keys::all(c)).await?;
    let row = rows
        .into_iter()
        .find(|r| r.kid == kid)
        .ok_or_else(|| ApiError::not_found(format!("no signing key {kid}")))?;
    Ok(ok(&SigningKeyView::new(row, &state.signer, now)))
}

pub async fn verify_audit(_: AdminAuth, state: web::Data<AppState>) -> Res {
    let check = run(&state.db, |c| audit::verify_chain(c)).await?;
    Ok(ok(&match check {
        audit::ChainCheck::Intact { events } => {
            serde_json::json!({"intact": true, "events": events})
        }
        audit::ChainCheck::Broken { id, reason } => {
            serde_json::json!({"intact": false, "broken_at": id, "reason": reason})
        }
    }))
}

/// `POST /v1/admin/keys/bulk` body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct BulkKeysRequest {
    pub subscription_id: String,
    /// 1 to [`MAX_BULK`].
    #[schema(minimum = 1, maximum = 10000)]
    pub count: usize,
    #[serde(default)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The most keys one bulk request issues.
pub const MAX_BULK: usize = 10_000;

pub async fn bulk_create_keys(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<BulkKeysRequest>,
) -> Res {
    let body = body.into_inner();
    if body.count == 0 || body.count > MAX_BULK {
        return Err(ApiError::bad_request(format!(
            "count must be 1 to {MAX_BULK}"
        )));
    }
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let expires = body.expires_at.map(|t| t.naive_utc());
    let issued = run(&state.db, move |c| {
        let mut all = Vec::with_capacity(body.count);
        let mut left = body.count;
        while left > 0 {
            let n = left.min(keys::BATCH);
            all.extend(keys::issue_batch(
                c,
                &body.subscription_id,
                n,
                expires,
                now,
                &actor,
            )?);
            left -= n;
        }
        Ok(all)
    })
    .await?;
    let items: Vec<KeyView> = issued
        .into_iter()
        .map(|(row, key)| {
            let mut v = KeyView::new(row, now);
            v.key = Some(key.expose().to_owned());
            v
        })
        .collect();
    Ok(created(&Page {
        items,
        next_cursor: None,
    }))
}
