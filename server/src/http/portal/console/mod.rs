//! The vendor console: the admin API as pages, signed in with the admin token. Lists are
//! paged and searchable (`?q=`); actions are POST forms with a CSRF token, audited with the
//! actor `console`.

use super::session::{self, Binding, CONSOLE_COOKIE, CONSOLE_SESSION_HOURS};
use super::{
    CSRF_REFUSED, Layout, Logout, NavLink, PageError, forbidden, or_dash, render, see_other, when,
};
use crate::app::AppState;
use crate::db::accounts::{self, AccountRow, CONSOLE};
use crate::db::audit::{self, Actor, ChainCheck};
use crate::db::console::{self as search, Search};
use crate::db::models::{AuditRow, KeyRow, RegistrationRow, SubscriberRow};
use crate::db::{self, keys, registrations, subscribers, subscriptions};
use crate::domain::subscription::Subscription;
use crate::domain::subscription::{Action, NewSubscription, SubscriptionStatus};
use crate::http::dto::ListQuery;
use crate::http::error::ApiError;
use crate::http::{client_addr, run};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Scope, web};
use askama::Template;
use serde::Deserialize;

type Res = Result<HttpResponse, PageError>;

const PAGE: i64 = 25;

pub fn scope() -> Scope {
    webhooks::routes(kinds::routes(web::scope("/console")))
        .route(
            "/",
            web::get().to(|| async { see_other("/console/subscribers") }),
        )
        .service(
            web::resource("/login")
                .route(web::get().to(login_form))
                .route(web::post().to(login)),
        )
        .route("/logout", web::post().to(logout))
        .service(
            web::resource("/subscribers")
                .route(web::get().to(people::subscribers_page))
                .route(web::post().to(people::create_subscriber)),
        )
        .route(
            "/subscribers/{id}/end-sessions",
            web::post().to(people::end_sessions),
        )
        .service(
            web::resource("/subscriptions")
                .route(web::get().to(people::subscriptions_page))
                .route(web::post().to(people::create_subscription)),
        )
        .route(
            "/subscriptions/{id}/{action}",
            web::post().to(people::transition),
        )
        .service(
            web::resource("/keys")
                .route(web::get().to(grants::keys_page))
                .route(web::post().to(grants::issue_key)),
        )
        .route("/keys/{id}/revoke", web::post().to(grants::revoke_key))
        .route(
            "/keys/{id}/regenerate",
            web::post().to(grants::regenerate_key),
        )
        .route("/registrations", web::get().to(grants::registrations_page))
        .route(
            "/registrations/{id}/release",
            web::post().to(grants::release),
        )
        .route("/offers", web::get().to(records::offers_page))
        .route("/audit", web::get().to(records::audit_page))
        .route("/signing-keys", web::get().to(records::signing_keys_page))
        .route("/signing-keys/rotate", web::post().to(records::rotate))
        .route("/plugins", web::get().to(records::plugins_page))
        .route("/plugins/versions", web::post().to(records::add_version))
        .route(
            "/plugins/{key}/delete",
            web::post().to(records::delete_plugin),
        )
}

const NAV: [(&str, &str); 12] = [
    ("/console/subscribers", "Subscribers"),
    ("/console/subscriptions", "Subscriptions"),
    ("/console/keys", "Keys"),
    ("/console/registrations", "Registrations"),
    ("/console/licenses", "Licenses"),
    ("/console/enrollment-keys", "Enrollment keys"),
    ("/console/invitations", "Invitations"),
    ("/console/offers", "Offers"),
    ("/console/plugins", "Plugins"),
    ("/console/audit", "Audit"),
    ("/console/signing-keys", "Signing keys"),
    ("/console/webhooks", "Webhooks"),
];

/// A vendor's console session: its cookie token.
pub(super) struct Vendor {
    token: String,
}

impl Vendor {
    fn csrf(&self) -> String {
        session::csrf_for(Binding::Console, &self.token)
    }
    fn layout(&self, path: &str, title: &str) -> Layout {
        let mut l = Layout::new("Vendor console", "/console/", title);
        l.nav = NAV
            .iter()
            .map(|(href, label)| NavLink {
                href,
                label,
                current: *href == path,
            })
            .collect();
        l.logout = Some(Logout {
            action: "/console/logout",
            csrf: self.csrf(),
        });
        l
    }
}

pub(super) fn actor(req: &HttpRequest) -> Actor {
    Actor::new("console", client_addr(req))
}

async fn vendor(state: &AppState, req: &HttpRequest) -> Result<Option<Vendor>, ApiError> {
    let Some(token) = req
        .cookie(CONSOLE_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let hash = session::sha256_hex(&token);
    let now = state.clock.now_naive();
    let found = run(&state.db, move |c| {
        accounts::find_session(c, &hash, CONSOLE, now)
    })
    .await?;
    Ok(found.map(|_| Vendor { token }))
}

/// The vendor of a POST whose form carries a valid CSRF token.
async fn vendor_for_post(
    state: &AppState,
    req: &HttpRequest,
    csrf: &str,
) -> Result<Option<Vendor>, PageError> {
    let Some(v) = vendor(state, req).await? else {
        return Ok(None);
    };
    if !session::csrf_ok(req, Binding::Console, csrf) {
        return Err(forbidden(CSRF_REFUSED));
    }
    Ok(Some(v))
}

macro_rules! signed_in {
    ($state:expr, $req:expr) => {
        match vendor(&$state, &$req).await? {
            Some(v) => v,
            None => return Ok(see_other("/console/login")),
        }
    };
    ($state:expr, $req:expr, $csrf:expr) => {
        match vendor_for_post(&$state, &$req, $csrf).await? {
            Some(v) => v,
            None => return Ok(see_other("/console/login")),
        }
    };
}

// the pages, after the macro they use
mod grants;
mod kinds;
mod list;
mod people;
mod records;
mod webhooks;

use list::ListPage;

// ---------------------------------------------------------------- login

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    token: String,
    csrf_token: String,
}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let (pre, set) = session::pre_session(state, req);
    let mut l = Layout::new("Vendor console", "/console/", "Log in");
    l.error = error.map(str::to_owned);
    let mut resp = render(
        status,
        &LoginPage {
            layout: l,
            csrf: session::csrf_for(Binding::Pre, &pre),
        },
    );
    if let Some(c) = set {
        let _ = resp.add_cookie(&c);
    }
    resp
}

async fn login_form(state: web::Data<AppState>, req: HttpRequest) -> Res {
    if vendor(&state, &req).await?.is_some() {
        return Ok(see_other("/console/subscribers"));
    }
    Ok(login_page(&state, &req, StatusCode::OK, None))
}

/// The login page again, `429` with `Retry-After`: the address is over the failed look-up limit.
fn too_many(state: &AppState, req: &HttpRequest, retry_after: u64) -> HttpResponse {
    let mut resp = login_page(
        state,
        req,
        StatusCode::TOO_MANY_REQUESTS,
        Some("Too many failed attempts; try again later."),
    );
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, v);
    }
    resp
}

async fn login(state: web::Data<AppState>, req: HttpRequest, form: web::Form<LoginForm>) -> Res {
    if !session::csrf_ok(&req, Binding::Pre, &form.csrf_token) {
        return Err(forbidden(CSRF_REFUSED));
    }
    let addr = client_addr(&req).unwrap_or_else(|| "unknown".into());
    let ts = state.clock.now().timestamp();
    let now = state.clock.now_naive();
    if let Err(over) = state.limits.failed_lookups.check(&addr, ts) {
        crate::http::lookup::refused(&state, "failed_lookups", over);
        return Ok(too_many(&state, &req, over.retry_after));
    }
    let actor = Actor::new("console", Some(addr.clone()));
    if !state.admin.verify(form.token.trim()) {
        let over = crate::http::lookup::failed_login(&state, &addr).await?;
        let ev = actor.event("console.login", "unauthorized", now);
        run(&state.db, move |c| audit::record(c, &ev)).await?;
        if let Some(secs) = over {
            return Ok(too_many(&state, &req, secs));
        }
        return Ok(login_page(
            &state,
            &req,
            StatusCode::UNAUTHORIZED,
            Some("Wrong admin token."),
        ));
    }
    let token = session::random_token();
    let hash = session::sha256_hex(&token);
    let expires = now + chrono::Duration::hours(CONSOLE_SESSION_HOURS);
    run(&state.db, move |c| {
        accounts::open_session(c, &hash, None, now, expires, &actor)
    })
    .await?;
    let mut resp = see_other("/console/subscribers");
    let _ = resp.add_cookie(&session::cookie(
        &state,
        CONSOLE_COOKIE,
        token,
        CONSOLE_SESSION_HOURS,
    ));
    Ok(resp)
}

async fn logout(state: web::Data<AppState>, req: HttpRequest, form: web::Form<CsrfForm>) -> Res {
    let v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    let hash = session::sha256_hex(&v.token);
    run(&state.db, move |c| {
        accounts::close_session(c, &hash, now, &a)
    })
    .await?;
    let mut resp = see_other("/console/login");
    let _ = resp.add_cookie(&session::removal(&state, CONSOLE_COOKIE));
    Ok(resp)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PageQuery {
    q: Option<String>,
    cursor: Option<String>,
}

impl PageQuery {
    fn search(&self) -> Search {
        Search {
            q: self.q.clone(),
            cursor: self.cursor.clone(),
            limit: PAGE,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfForm {
    csrf_token: String,
}

pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(super) fn key_issued(v: &Vendor, prefix: String, plaintext: String) -> Res {
    let mut p = ListPage::new(v, "/console/keys", "Key issued");
    p.layout.notice = Some(format!("Key {prefix} issued."));
    p.new_key = Some(plaintext);
    p.done()
}
