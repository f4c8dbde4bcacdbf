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
    web::scope("/console")
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
                .route(web::get().to(subscribers_page))
                .route(web::post().to(create_subscriber)),
        )
        .route(
            "/subscribers/{id}/end-sessions",
            web::post().to(end_sessions),
        )
        .service(
            web::resource("/subscriptions")
                .route(web::get().to(subscriptions_page))
                .route(web::post().to(create_subscription)),
        )
        .route("/subscriptions/{id}/{action}", web::post().to(transition))
        .service(
            web::resource("/keys")
                .route(web::get().to(keys_page))
                .route(web::post().to(issue_key)),
        )
        .route("/keys/{id}/revoke", web::post().to(revoke_key))
        .route("/keys/{id}/regenerate", web::post().to(regenerate_key))
        .route("/registrations", web::get().to(registrations_page))
        .route("/registrations/{id}/release", web::post().to(release))
        .route("/offers", web::get().to(offers_page))
        .route("/audit", web::get().to(audit_page))
        .route("/signing-keys", web::get().to(signing_keys_page))
        .route("/signing-keys/rotate", web::post().to(rotate))
}

const NAV: [(&str, &str); 7] = [
    ("/console/subscribers", "Subscribers"),
    ("/console/subscriptions", "Subscriptions"),
    ("/console/keys", "Keys"),
    ("/console/registrations", "Registrations"),
    ("/console/offers", "Offers"),
    ("/console/audit", "Audit"),
    ("/console/signing-keys", "Signing keys"),
];

/// A vendor's console session: its cookie token.
struct Vendor {
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

fn actor(req: &HttpRequest) -> Actor {
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
    let found = run(&state.pool, move |c| {
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

async fn login(state: web::Data<AppState>, req: HttpRequest, form: web::Form<LoginForm>) -> Res {
    if !session::csrf_ok(&req, Binding::Pre, &form.csrf_token) {
        return Err(forbidden(CSRF_REFUSED));
    }
    let addr = client_addr(&req).unwrap_or_else(|| "unknown".into());
    let ts = state.clock.now().timestamp();
    let now = state.clock.now_naive();
    if let Err(over) = state.limits.failed_lookups.check(&addr, ts) {
        crate::http::lookup::refused(&state, "failed_lookups", over);
        let mut resp = login_page(
            &state,
            &req,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed attempts; try again later."),
        );
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&over.retry_after.to_string())
        {
            resp.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, v);
        }
        return Ok(resp);
    }
    let actor = Actor::new("console", Some(addr.clone()));
    if !state.admin.verify(form.token.trim()) {
        state.limits.failed_lookups.count(&addr, ts);
        let ev = actor.event("console.login", "unauthorized", now);
        run(&state.pool, move |c| audit::record(c, &ev)).await?;
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
    run(&state.pool, move |c| {
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
    run(&state.pool, move |c| {
        accounts::close_session(c, &hash, now, &a)
    })
    .await?;
    let mut resp = see_other("/console/login");
    let _ = resp.add_cookie(&session::removal(&state, CONSOLE_COOKIE));
    Ok(resp)
}

// ---------------------------------------------------------------- the list page

#[derive(Template)]
#[template(path = "console/list.html")]
struct ListPage {
    layout: Layout,
    csrf: String,
    path: &'static str,
    searchable: bool,
    search_hint: &'static str,
    q: String,
    new_key: Option<String>,
    facts: Vec<Vec<Fact>>,
    forms: Vec<FormSpec>,
    headers: Vec<&'static str>,
    rows: Vec<Row>,
    has_actions: bool,
    next_href: Option<String>,
}

struct Fact {
    label: &'static str,
    text: String,
    class: String,
}

struct FormSpec {
    id: &'static str,
    /// Shown unfolded (forms fold into a `<details>` above the list).
    open: bool,
    title: &'static str,
    action: &'static str,
    submit: &'static str,
    fields: Vec<Field>,
}

struct Field {
    name: &'static str,
    label: &'static str,
    value: String,
    required: bool,
    options: Vec<String>,
}

fn field(name: &'static str, label: &'static str, required: bool) -> Field {
    Field {
        name,
        label,
        value: String::new(),
        required,
        options: Vec::new(),
    }
}

struct Row {
    id: String,
    cells: Vec<Cell>,
    actions: Vec<RowAction>,
}

struct Cell {
    label: &'static str,
    text: String,
    class: String,
}

fn cell(label: &'static str, text: impl Into<String>) -> Cell {
    Cell {
        label,
        text: text.into(),
        class: String::new(),
    }
}

fn status_cell(label: &'static str, status: &str) -> Cell {
    Cell {
        label,
        text: status.to_owned(),
        class: format!("status status-{status}"),
    }
}

struct RowAction {
    action: String,
    label: &'static str,
    class: &'static str,
    hidden: Vec<(&'static str, String)>,
}

fn act(action: String, label: &'static str, class: &'static str) -> RowAction {
    RowAction {
        action,
        label,
        class,
        hidden: Vec::new(),
    }
}

impl ListPage {
    fn new(v: &Vendor, path: &'static str, title: &str) -> Self {
        ListPage {
            layout: v.layout(path, title),
            csrf: v.csrf(),
            path,
            searchable: false,
            search_hint: "",
            q: String::new(),
            new_key: None,
            facts: Vec::new(),
            forms: Vec::new(),
            headers: Vec::new(),
            rows: Vec::new(),
            has_actions: false,
            next_href: None,
        }
    }

    fn search(mut self, q: &PageQuery, hint: &'static str, next: Option<String>) -> Self {
        self.searchable = true;
        self.search_hint = hint;
        self.q = q.q.clone().unwrap_or_default();
        self.next_href = next.map(|c| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            if !self.q.is_empty() {
                s.append_pair("q", &self.q);
            }
            s.append_pair("cursor", &c);
            format!("{}?{}", self.path, s.finish())
        });
        self
    }

    fn done(mut self) -> Res {
        self.has_actions = self.rows.iter().any(|r| !r.actions.is_empty());
        Ok(render(StatusCode::OK, &self))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PageQuery {
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

// ---------------------------------------------------------------- subscribers

fn subscriber_row(s: SubscriberRow, accounts: &[AccountRow]) -> Row {
    let members: Vec<String> = accounts
        .iter()
        .filter(|a| a.subscriber_id == s.id)
        .map(|a| format!("{} <{}> ({})", a.name, a.email, a.role))
        .collect();
    let actions = if members.is_empty() {
        Vec::new()
    } else {
        let path = format!("/console/subscribers/{}/end-sessions", s.id);
        vec![act(path, "End sessions", "secondary")]
    };
    let accounts = if members.is_empty() {
        "—".into()
    } else {
        members.join("; ")
    };
    Row {
        cells: vec![
            cell("Name", s.name.clone()),
            cell("Email", or_dash(s.email.as_deref())),
            cell("Id", s.id.clone()),
            cell("Accounts", accounts),
            cell("Created", when(s.created_at)),
        ],
        actions,
        id: s.id,
    }
}

async fn subscribers_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let s = q.search();
    let (found, accounts) = run(&state.pool, move |c| {
        let found = search::subscribers(c, &s)?;
        let ids: Vec<String> = found.items.iter().map(|x| x.id.clone()).collect();
        Ok((found, accounts::of_subscribers(c, &ids)?))
    })
    .await?;
    let mut p = ListPage::new(&v, "/console/subscribers", "Subscribers").search(
        &q,
        "Name or email",
        found.next_cursor,
    );
    p.forms.push(FormSpec {
        id: "new-subscriber",
        open: false,
        title: "New subscriber",
        action: "/console/subscribers",
        submit: "Create subscriber",
        fields: vec![
            field("name", "Name", true),
            field("email", "Email (optional)", false),
        ],
    });
    p.headers = vec!["Name", "Email", "Id", "Accounts", "Created"];
    p.rows = found
        .items
        .into_iter()
        .map(|s| subscriber_row(s, &accounts))
        .collect();
    p.done()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscriberForm {
    name: String,
    email: String,
    csrf_token: String,
}

async fn create_subscriber(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SubscriberForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let f = form.into_inner();
    let row = run(&state.pool, move |c| {
        let email = Some(f.email.as_str()).filter(|e| !e.trim().is_empty());
        subscribers::create(c, &f.name, email, now)
    })
    .await?;
    Ok(see_other(&format!(
        "/console/subscriptions?q={}",
        urlencode(&row.name)
    )))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn end_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.pool, move |c| {
        accounts::end_sessions_of_subscriber(c, &id, now, &a)
    })
    .await?;
    Ok(see_other("/console/subscribers"))
}

// ---------------------------------------------------------------- subscriptions

fn subscription_form(state: &AppState) -> FormSpec {
    let mut offers: Vec<_> = state.offers.values().collect();
    offers.sort_by_key(|o| o.rank);
    FormSpec {
        id: "new-subscription",
        open: false,
        title: "New subscription",
        action: "/console/subscriptions",
        submit: "Create subscription",
        fields: vec![
            field("subscriber_id", "Subscriber id", true),
            Field {
                options: offers.iter().map(|o| o.reference.clone()).collect(),
                ..field("offer", "Offer", true)
            },
            field("trial_days", "Trial days (optional)", false),
        ],
    }
}

fn subscription_row(s: Subscription, owner: SubscriberRow, today: chrono::NaiveDate) -> Row {
    let base = format!("/console/subscriptions/{}", s.id);
    let mut actions = Vec::new();
    if s.status != SubscriptionStatus::Cancelled {
        actions.push(act(format!("{base}/issue-key"), "Issue key", "issue-key"));
        if s.status == SubscriptionStatus::Suspended {
            actions.push(act(format!("{base}/resume"), "Resume", "secondary resume"));
        } else {
            actions.push(act(
                format!("{base}/suspend"),
                "Suspend",
                "secondary suspend",
            ));
        }
        actions.push(act(format!("{base}/cancel"), "Cancel", "danger cancel"));
    }
    Row {
        cells: vec![
            cell("Subscriber", owner.name),
            cell("Offer", s.offer.clone()),
            status_cell("Status", s.status.as_str()),
            cell("Running", if s.is_running(today) { "yes" } else { "no" }),
            cell("From", s.begin_date.to_string()),
            cell("Until", or_dash(s.end_date)),
            cell("Id", s.id.clone()),
        ],
        actions,
        id: s.id,
    }
}

async fn subscriptions_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let s = q.search();
    let found = run(&state.pool, move |c| search::subscriptions(c, &s)).await?;
    let today = state.clock.now_naive().date();
    let mut p = ListPage::new(&v, "/console/subscriptions", "Subscriptions").search(
        &q,
        "Subscriber name or email",
        found.next_cursor,
    );
    p.forms.push(subscription_form(&state));
    p.headers = vec![
        "Subscriber",
        "Offer",
        "Status",
        "Running",
        "From",
        "Until",
        "Id",
    ];
    p.rows = found
        .items
        .into_iter()
        .map(|(s, owner)| subscription_row(s, owner, today))
        .collect();
    p.done()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscriptionForm {
    subscriber_id: String,
    offer: String,
    trial_days: String,
    csrf_token: String,
}

async fn create_subscription(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SubscriptionForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let f = form.into_inner();
    let trial_days = match f.trial_days.trim() {
        "" => None,
        t => Some(
            t.parse::<u32>()
                .map_err(|_| ApiError::bad_request("trial days must be a whole number"))?,
        ),
    };
    let body = NewSubscription {
        subscriber_id: f.subscriber_id.trim().to_owned(),
        offer: f.offer,
        begin_date: None,
        end_date: None,
        trial_days,
    };
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.pool, move |c| {
        subscriptions::create(c, &body, now, &a)
    })
    .await?;
    Ok(see_other("/console/subscriptions"))
}

async fn transition(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Res {
    let v = signed_in!(state, req, &form.csrf_token);
    let (id, action) = path.into_inner();
    let now = state.clock.now_naive();
    let a = actor(&req);
    let action = match action.as_str() {
        "suspend" => Action::Suspend,
        "resume" => Action::Resume,
        "cancel" => Action::Cancel,
        "issue-key" => {
            let (row, plaintext) =
                run(&state.pool, move |c| keys::issue(c, &id, None, now, &a)).await?;
            return key_issued(&v, row.key_prefix, plaintext.expose().to_owned());
        }
        _ => return Err(PageError(ApiError::not_found("no such action"))),
    };
    run(&state.pool, move |c| {
        subscriptions::transition(c, &id, action, now, &a)
    })
    .await?;
    Ok(see_other("/console/subscriptions"))
}

fn key_issued(v: &Vendor, prefix: String, plaintext: String) -> Res {
    let mut p = ListPage::new(v, "/console/keys", "Key issued");
    p.layout.notice = Some(format!("Key {prefix} issued."));
    p.new_key = Some(plaintext);
    p.done()
}

// ---------------------------------------------------------------- keys

fn key_row(k: KeyRow, b: Option<RegistrationRow>) -> Row {
    let mut actions = Vec::new();
    if k.status != "revoked" {
        actions.push(act(
            format!("/console/keys/{}/revoke", k.id),
            "Revoke",
            "danger revoke",
        ));
    }
    if k.replaced_by.is_none() {
        let path = format!("/console/keys/{}/regenerate", k.id);
        actions.push(act(path, "Regenerate", "secondary regenerate"));
    }
    let (url, uid) = b
        .map(|b| (b.instance_url, b.instance_uid))
        .unwrap_or_default();
    Row {
        cells: vec![
            cell("Key", k.key_prefix.clone()),
            status_cell("Status", &k.status),
            cell("Bound to", or_dash(url)),
            cell("UID", or_dash(uid)),
            cell("Subscription", k.subscription_id.clone()),
            cell("Created", when(k.created_at)),
            cell("Replaced by", or_dash(k.replaced_by.as_deref())),
        ],
        actions,
        id: k.id,
    }
}

async fn keys_page(state: web::Data<AppState>, req: HttpRequest, q: web::Query<PageQuery>) -> Res {
    let v = signed_in!(state, req);
    let s = q.search();
    let found = run(&state.pool, move |c| search::keys(c, &s)).await?;
    let mut p = ListPage::new(&v, "/console/keys", "Keys").search(
        &q,
        "Key prefix or instance URL",
        found.next_cursor,
    );
    p.forms.push(FormSpec {
        id: "issue-key",
        open: false,
        title: "Issue a key",
        action: "/console/keys",
        submit: "Issue key",
        fields: vec![field("subscription_id", "Subscription id", true)],
    });
    p.headers = vec![
        "Key",
        "Status",
        "Bound to",
        "UID",
        "Subscription",
        "Created",
        "Replaced by",
    ];
    p.rows = found
        .items
        .into_iter()
        .map(|(k, b)| key_row(k, b))
        .collect();
    p.done()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IssueForm {
    subscription_id: String,
    csrf_token: String,
}

async fn issue_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<IssueForm>,
) -> Res {
    let v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    let sid = form.subscription_id.trim().to_owned();
    let (row, plaintext) = run(&state.pool, move |c| keys::issue(c, &sid, None, now, &a)).await?;
    key_issued(&v, row.key_prefix, plaintext.expose().to_owned())
}

async fn revoke_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.pool, move |c| keys::revoke(c, &id, now, &a)).await?;
    Ok(see_other("/console/keys"))
}

async fn regenerate_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    let (row, plaintext) = run(&state.pool, move |c| keys::regenerate(c, &id, now, &a)).await?;
    key_issued(&v, row.key_prefix, plaintext.expose().to_owned())
}

// ---------------------------------------------------------------- registrations

async fn registrations_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let s = q.search();
    let found = run(&state.pool, move |c| search::registrations(c, &s)).await?;
    let mut p = ListPage::new(&v, "/console/registrations", "Registrations").search(
        &q,
        "Instance URL or key prefix",
        found.next_cursor,
    );
    p.headers = vec!["Instance URL", "UID", "Key", "Bound", "Last seen"];
    p.rows = found
        .items
        .into_iter()
        .map(|(r, prefix)| Row {
            cells: vec![
                cell("Instance URL", or_dash(r.instance_url.as_deref())),
                cell("UID", or_dash(r.instance_uid.as_deref())),
                cell("Key", prefix),
                cell("Bound", when(r.bound_at)),
                cell("Last seen", when(r.last_seen_at)),
            ],
            actions: vec![act(
                format!("/console/registrations/{}/release", r.id),
                "Release",
                "danger release",
            )],
            id: r.id,
        })
        .collect();
    p.done()
}

async fn release(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.pool, move |c| {
        registrations::release_by_id(c, &id, now, &a)
    })
    .await?;
    Ok(see_other("/console/registrations"))
}

// ---------------------------------------------------------------- offers, audit, signing keys

async fn offers_page(state: web::Data<AppState>, req: HttpRequest) -> Res {
    let v = signed_in!(state, req);
    let mut p = ListPage::new(&v, "/console/offers", "Offers");
    let mut offers: Vec<_> = state.offers.values().collect();
    offers.sort_by_key(|o| o.rank);
    p.headers = vec!["Reference", "Title", "Rank", "Entitlements"];
    p.rows = offers
        .into_iter()
        .map(|o| Row {
            id: o.reference.clone(),
            cells: vec![
                cell("Reference", o.reference.clone()),
                cell("Title", o.title.clone()),
                cell("Rank", o.rank.to_string()),
                cell("Entitlements", o.entitlements.join(", ")),
            ],
            actions: Vec::new(),
        })
        .collect();
    p.done()
}

fn fact(label: &'static str, text: impl Into<String>, class: &str) -> Fact {
    Fact {
        label,
        text: text.into(),
        class: class.to_owned(),
    }
}

/// `audit verify`'s answer as the page shows it.
fn chain_facts(check: ChainCheck) -> Vec<Fact> {
    match check {
        ChainCheck::Intact { events } => vec![
            fact("Chain", "intact", "status status-intact verify"),
            fact("Events", events.to_string(), ""),
        ],
        ChainCheck::Broken { id, reason } => vec![
            fact("Chain", "broken", "status status-broken verify"),
            fact("First broken event", id.to_string(), ""),
            fact("Why", reason, ""),
        ],
    }
}

fn audit_row(e: AuditRow) -> Row {
    Row {
        id: e.id.to_string(),
        cells: vec![
            cell("#", e.id.to_string()),
            cell("At", e.at.format("%Y-%m-%d %H:%M:%S").to_string()),
            cell("Actor", e.actor),
            cell("Action", e.action),
            cell("Outcome", e.outcome),
            cell("Key", or_dash(e.key_prefix)),
            cell("Instance", or_dash(e.instance_url.or(e.instance_uid))),
            cell("Client", or_dash(e.client_addr)),
            cell("Detail", or_dash(e.detail)),
        ],
        actions: Vec::new(),
    }
}

async fn audit_page(state: web::Data<AppState>, req: HttpRequest, q: web::Query<PageQuery>) -> Res {
    let v = signed_in!(state, req);
    let lq = ListQuery {
        limit: Some(50),
        cursor: q.cursor.clone(),
        ..Default::default()
    };
    let (page, check) = run(&state.pool, move |c| {
        Ok((audit::list(c, &lq)?, audit::verify_chain(c)?))
    })
    .await?;
    let mut p = ListPage::new(&v, "/console/audit", "Audit trail");
    p.facts.push(chain_facts(check));
    p.next_href = page
        .next_cursor
        .map(|c| format!("/console/audit?cursor={}", urlencode(&c)));
    p.headers = vec![
        "#", "At", "Actor", "Action", "Outcome", "Key", "Instance", "Client", "Detail",
    ];
    p.rows = page.items.into_iter().map(audit_row).collect();
    p.done()
}

async fn signing_keys_page(state: web::Data<AppState>, req: HttpRequest) -> Res {
    let v = signed_in!(state, req);
    let rows = run(&state.pool, db::signing_keys::all).await?;
    let mut p = ListPage::new(&v, "/console/signing-keys", "Signing keys");
    p.forms.push(FormSpec {
        id: "rotate",
        open: true,
        title: "Rotate",
        action: "/console/signing-keys/rotate",
        submit: "Rotate the signing key",
        fields: Vec::new(),
    });
    p.headers = vec!["Key id", "Active", "Created", "Retired"];
    p.rows = rows
        .into_iter()
        .map(|k| Row {
            cells: vec![
                cell("Key id", k.kid.clone()),
                cell("Active", if k.active { "yes" } else { "no" }),
                cell("Created", when(k.created_at)),
                cell("Retired", or_dash(k.retired_at.map(when))),
            ],
            actions: Vec::new(),
            id: k.kid,
        })
        .collect();
    p.done()
}

async fn rotate(state: web::Data<AppState>, req: HttpRequest, form: web::Form<CsrfForm>) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    let signer = state.signer.clone();
    run(&state.pool, move |c| signer.rotate(c, now, &a)).await?;
    Ok(see_other("/console/signing-keys"))
}
