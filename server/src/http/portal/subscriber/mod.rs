//! The subscriber portal: sign-up, login, logout, the dashboard, and the actions a member's
//! role allows (release an instance, regenerate a key).

use super::session::{self, Binding, PORTAL_COOKIE, PORTAL_SESSION_HOURS};
use super::{
    CSRF_REFUSED, Layout, Logout, NavLink, PageError, forbidden, or_dash, render, see_other, when,
};
use crate::app::AppState;
use crate::config::PortalSignup;
use crate::db::accounts::{self, AccountRow, PORTAL};
use crate::db::audit::Actor;
use crate::db::{keys, registrations};
use crate::domain::account::{self, Email, LoginAllowance, PortalAction, Role};
use crate::http::error::ApiError;
use crate::http::{client_addr, run};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Scope, web};
use askama::Template;
use serde::Deserialize;

mod dashboard;
mod invite;
mod login;
mod signup;

type Res = Result<HttpResponse, PageError>;

pub fn scope() -> Scope {
    web::scope("/portal")
        .route("/", web::get().to(dashboard::dashboard))
        .service(
            web::resource("/signup")
                .route(web::get().to(signup::signup_form))
                .route(web::post().to(signup::signup)),
        )
        .service(
            web::resource("/login")
                .route(web::get().to(login::login_form))
                .route(web::post().to(login::login)),
        )
        .route("/logout", web::post().to(login::logout))
        .route("/invitations", web::post().to(invite::create))
        .service(
            web::resource("/invite/{key}")
                .route(web::get().to(invite::invite_form))
                .route(web::post().to(invite::invite)),
        )
        .route(
            "/registrations/{id}/release",
            web::post().to(dashboard::release),
        )
        .route(
            "/keys/{id}/regenerate",
            web::post().to(dashboard::regenerate),
        )
}

fn layout(title: &str) -> Layout {
    Layout::new("Portal", "/portal/", title)
}

/// A member's session: the cookie's token and the account.
struct Member {
    token: String,
    account: AccountRow,
}

impl Member {
    fn role(&self) -> Role {
        self.account.role()
    }
    fn csrf(&self) -> String {
        session::csrf_for(Binding::Portal, &self.token)
    }
    fn actor(&self, req: &HttpRequest) -> Actor {
        Actor::new(&format!("portal:{}", self.account.id), client_addr(req))
    }
    /// `403` unless the member's role allows `action`.
    fn require(&self, action: PortalAction) -> Result<(), PageError> {
        if self.role().may(action) {
            Ok(())
        } else {
            Err(forbidden(&format!(
                "Your role ({}) does not allow this action.",
                self.role()
            )))
        }
    }
}

async fn member(state: &AppState, req: &HttpRequest) -> Result<Option<Member>, ApiError> {
    let Some(token) = req
        .cookie(PORTAL_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let hash = session::sha256_hex(&token);
    let now = state.clock.now_naive();
    let found = run(&state.db, move |c| {
        accounts::find_session(c, &hash, PORTAL, now)
    })
    .await?;
    Ok(found
        .and_then(|(_, acc)| acc)
        .map(|account| Member { token, account }))
}

/// A signed-in member whose form carries a valid CSRF token; `None` (go and log in) without a
/// session.
async fn member_for_post(
    state: &AppState,
    req: &HttpRequest,
    csrf: &str,
) -> Result<Option<Member>, PageError> {
    let Some(m) = member(state, req).await? else {
        return Ok(None);
    };
    if !session::csrf_ok(req, Binding::Portal, csrf) {
        return Err(forbidden(CSRF_REFUSED));
    }
    Ok(Some(m))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfForm {
    csrf_token: String,
}
