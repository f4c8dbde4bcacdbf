//! Webhooks under `/v1/admin/webhooks` (DESIGN §12): endpoints, their deliveries, and the
//! creation rules the API, the CLI and the console share (target checked after DNS
//! resolution, secret generated and sealed with the master key).

use super::{client_addr, created, run};
use crate::app::AppState;
use crate::db::audit::Actor;
use crate::db::webhooks::{self, Delivery, WebhookInput, WebhookRow};
use crate::db::{self, Transact};
use crate::domain::views::utc;
use crate::domain::webhook::{EventFilter, SECRET_PREFIX, Target, check_addresses};
use crate::http::auth::AdminAuth;
use crate::http::dto::{ListQuery, Page};
use crate::http::error::ApiError;
use crate::signing::MasterKey;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, ToSocketAddrs};

type Res = Result<HttpResponse, ApiError>;

/// `POST /v1/admin/webhooks` and `PUT /v1/admin/webhooks/{id}`
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct WebhookRequest {
    /// `http` or `https`; its host must resolve to public addresses only (unless the server
    /// runs with `--webhooks-allow-private`).
    pub url: String,
    /// Event types, or `["*"]` for every type.
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A webhook as the admin API shows it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The signing secret (`whsec_` + base64): present only in the answer that creates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<WebhookRow> for WebhookView {
    fn from(r: WebhookRow) -> Self {
        WebhookView {
            events: r.event_list(),
            id: r.id,
            url: r.url,
            description: r.description,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            secret: None,
        }
    }
}

/// A delivery of one event to one webhook.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// The HTTP status of the last attempt; null when none came back (refused target,
    /// connection error, timeout) or before the first attempt.
    pub last_status: Option<i32>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            event_id: d.event_id,
            kind: d.kind,
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            next_attempt_at: d.next_attempt_at.map(utc),
        }
    }
}

/// Resolves a target's host (an address literal resolves to itself).
pub fn resolve(t: &Target) -> Vec<IpAddr> {
    (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

/// Checks a request: the URL's shape, its host's addresses (after DNS resolution), the events.
pub fn check_request(req: &WebhookRequest, allow_private: bool) -> db::Result<WebhookInput> {
    let target = Target::parse(&req.url).map_err(db::Error::invalid)?;
    check_addresses(&resolve(&target), allow_private)
        .map_err(|why| db::Error::invalid(format!("url: {why}")))?;
    let events = EventFilter::parse(&req.events).map_err(db::Error::invalid)?;
    let description = req.description.clone().filter(|d| !d.trim().is_empty());
    if description.as_ref().is_some_and(|d| d.len() > 1000) {
        return Err(db::Error::invalid("description: at most 1000 bytes"));
    }
    Ok(WebhookInput {
        url: target.url,
        events,
        description,
    })
}

/// The text of a secret's bytes: `whsec_` + base64.
pub fn secret_text(bytes: &[u8]) -> String {
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Creates a webhook: checks the request, makes a random 32-byte secret, stores it sealed with
/// the master key. Returns the webhook and the secret's text (shown once).
pub fn create_webhook(
    c: &mut impl Transact,
    master: &MasterKey,
    req: &WebhookRequest,
    allow_private: bool,
    now: NaiveDateTime,
    actor: &Actor,
) -> db::Result<(WebhookRow, String)> {
    let input = check_request(req, allow_private)?;
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| db::Error::Other(anyhow::anyhow!("system random generator failed")))?;
    let id = webhooks::new_webhook_id();
    let row = webhooks::create(c, &id, &input, master.seal(&id, &secret), now, actor)?;
    Ok((row, secret_text(&secret)))
}

fn admin(req: &HttpRequest) -> Actor {
    Actor::new("admin", client_addr(req))
}

pub async fn create(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<WebhookRequest>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let allow = state.webhooks_allow_private;
    let st = state.clone();
    let (row, secret) = run(&state.db, move |c| {
        create_webhook(c, st.signer.master(), &body, allow, now, &actor)
    })
    .await?;
    let mut view = WebhookView::from(row);
    view.secret = Some(secret);
    Ok(created(&view))
}

pub async fn list(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<crate::http::query::PageParams>,
) -> Res {
    let q = ListQuery::from(q.into_inner());
    let page = run(&state.db, move |c| webhooks::list(c, &q)).await?;
    Ok(HttpResponse::Ok().json(page.map(WebhookView::from)))
}

pub async fn get(_: AdminAuth, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    let row = run(&state.db, move |c| webhooks::get(c, &id)).await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(row)))
}

pub async fn update(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<WebhookRequest>,
) -> Res {
    let now = state.clock.now_naive();
    let actor = admin(&req);
    let allow = state.webhooks_allow_private;
    let row = run(&state.db, move |c| {
        webhooks::get(c, &id)?;
        let input = check_request(&body, allow)?;
        webhooks::update(c, &id, &input, now, &actor)
    })
    .await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(row)))
}

pub async fn delete(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Res {
    let (now, actor) = (state.clock.now_naive(), admin(&req));
    run(&state.db, move |c| webhooks::delete(c, &id, now, &actor)).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list_deliveries(
    _: AdminAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<crate::http::query::DeliveryParams>,
) -> Res {
    let q = ListQuery::from(q.into_inner());
    let page: Page<Delivery> = run(&state.db, move |c| webhooks::deliveries(c, &id, &q)).await?;
    Ok(HttpResponse::Ok().json(page.map(DeliveryView::from)))
}

pub async fn retry_delivery(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Res {
    let (now, actor) = (state.clock.now_naive(), admin(&req));
    let (id, delivery_id) = path.into_inner();
    let d = run(&state.db, move |c| {
        webhooks::retry(c, &id, &delivery_id, now, &actor)
    })
    .await?;
    Ok(HttpResponse::Accepted().json(DeliveryView::from(d)))
}
