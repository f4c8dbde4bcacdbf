//! Web pages served by the binary (DESIGN §10): the subscriber portal under `/portal/`, the
//! vendor console under `/console/`, their stylesheet and script under `/static/`.
//!
//! Pages are askama templates (`server/templates`, compiled in, every value HTML-escaped);
//! every task works without JavaScript. The handlers call the same db functions as the admin
//! API. Every page carries a Content-Security-Policy without inline scripts and
//! `frame-ancestors 'none'` (the app adds `X-Frame-Options: DENY` and `nosniff`).

pub mod admin_api;
mod console;
pub mod session;
mod subscriber;

use crate::http::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, middleware::DefaultHeaders, web};
use askama::Template;

/// The Content-Security-Policy of every page: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn page_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CSP))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
}

/// Registers the portal, the console and their static files.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/static")
            .wrap(page_headers())
            .route("/portal.css", web::get().to(stylesheet))
            .route("/portal.js", web::get().to(script)),
    )
    .route("/portal", web::get().to(|| async { see_other("/portal/") }))
    .route(
        "/console",
        web::get().to(|| async { see_other("/console/") }),
    )
    .service(subscriber::scope().wrap(page_headers()))
    .service(console::scope().wrap(page_headers()));
}

const STYLESHEET: &str = include_str!("../../../static/portal.css");
const SCRIPT: &str = include_str!("../../../static/portal.js");

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(STYLESHEET)
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(SCRIPT)
}

/// A link of the header's navigation.
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The logout form of the header.
pub struct Logout {
    pub action: &'static str,
    pub csrf: String,
}

/// What the base template needs.
pub struct Layout {
    pub title: String,
    pub area: &'static str,
    pub home: &'static str,
    pub nav: Vec<NavLink>,
    pub logout: Option<Logout>,
    pub error: Option<String>,
    pub notice: Option<String>,
}

impl Layout {
    pub fn new(area: &'static str, home: &'static str, title: impl Into<String>) -> Self {
        Layout {
            title: title.into(),
            area,
            home,
            nav: Vec::new(),
            logout: None,
            error: None,
            notice: None,
        }
    }

    pub fn error(mut self, msg: impl Into<String>) -> Self {
        self.error = Some(msg.into());
        self
    }
}

/// A page with a title, a sentence and a link (errors, confirmations).
#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub layout: Layout,
    pub text: String,
    pub link: &'static str,
    pub link_label: &'static str,
}

/// Renders a template with a status.
pub fn render(status: StatusCode, t: &impl Template) -> HttpResponse {
    match t.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => ApiError::internal(e).error_response(),
    }
}

/// `303 See Other` to `location` (after a form).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

/// A failed page request: rendered as an HTML page with the error's status and message.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (title, text) = match &self.0 {
            ApiError::Client { message, .. } => (
                status.canonical_reason().unwrap_or("Error").to_owned(),
                message.clone(),
            ),
            ApiError::RateLimited { retry_after, .. } => (
                "Too many attempts".to_owned(),
                format!("Too many attempts; try again in {retry_after} seconds."),
            ),
            ApiError::Unavailable(_) => (
                "Unavailable".to_owned(),
                "The database cannot be reached; please try again in a moment.".to_owned(),
            ),
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error on a page");
                (
                    "Something went wrong".to_owned(),
                    "The server could not answer; please try again.".to_owned(),
                )
            }
        };
        let mut resp = render(
            status,
            &Message {
                layout: Layout::new("", "/portal/", title),
                text,
                link: "/portal/",
                link_label: "Back to the portal",
            },
        );
        if let ApiError::RateLimited { retry_after, .. } = &self.0
            && let Ok(v) = actix_web::http::header::HeaderValue::from_str(&retry_after.to_string())
        {
            resp.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, v);
        }
        resp
    }
}

/// `403`: a form without a valid CSRF token, or an action the role does not allow.
pub fn forbidden(msg: &str) -> PageError {
    PageError(ApiError::new(
        StatusCode::FORBIDDEN,
        glpi_network_shared::ErrorCode::InvalidRequest,
        msg,
    ))
}

/// The message of a refused form without a valid CSRF token.
pub const CSRF_REFUSED: &str =
    "This form has expired or did not come from this site; reload the page and try again.";

/// A date-time as pages show it.
pub fn when(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An optional value as pages show it.
pub fn or_dash(v: Option<impl std::fmt::Display>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "—".to_owned())
}
