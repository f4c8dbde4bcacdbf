//! The admin API's view of portal accounts: `GET /v1/admin/subscribers/{id}/accounts` and
//! `DELETE /v1/admin/subscribers/{id}/sessions`.

use crate::app::AppState;
use crate::db::{accounts, audit::Actor, subscribers};
use crate::http::auth::AdminAuth;
use crate::http::dto::Page;
use crate::http::error::ApiError;
use crate::http::{client_addr, run};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A portal account as the admin API shows it (never its password hash).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: String,
    pub subscriber_id: String,
    pub name: String,
    pub email: String,
    /// `owner`, `manager` or `viewer`.
    pub role: String,
    pub created_at: DateTime<Utc>,
}

impl From<accounts::AccountRow> for AccountView {
    fn from(r: accounts::AccountRow) -> Self {
        AccountView {
            id: r.id,
            subscriber_id: r.subscriber_id,
            name: r.name,
            email: r.email,
            role: r.role,
            created_at: r.created_at.and_utc(),
        }
    }
}

pub async fn list_accounts(
    _: AdminAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    _: web::Query<crate::http::query::NoParams>,
) -> Result<HttpResponse, ApiError> {
    let rows = run(&state.db, move |c| {
        subscribers::get(c, &id)?;
        accounts::of_subscriber(c, &id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Page {
        items: rows.into_iter().map(AccountView::from).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

pub async fn end_sessions(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now_naive();
    let actor = Actor::new("admin", client_addr(&req));
    run(&state.db, move |c| {
        accounts::end_sessions_of_subscriber(c, &id, now, &actor)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
