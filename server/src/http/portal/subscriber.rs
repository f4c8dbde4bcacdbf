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

type Res = Result<HttpResponse, PageError>;

pub fn scope() -> Scope {
    web::scope("/portal")
        .route("/", web::get().to(dashboard))
        .service(
            web::resource("/signup")
                .route(web::get().to(signup_form))
                .route(web::post().to(signup)),
        )
        .service(
            web::resource("/login")
                .route(web::get().to(login_form))
                .route(web::post().to(login)),
        )
        .route("/logout", web::post().to(logout))
        .route("/registrations/{id}/release", web::post().to(release))
        .route("/keys/{id}/regenerate", web::post().to(regenerate))
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

// ---------------------------------------------------------------- sign-up

#[derive(Template)]
#[template(path = "portal/signup.html")]
struct SignupPage {
    layout: Layout,
    csrf: String,
    name: String,
    email: String,
    invite_only: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignupForm {
    name: String,
    email: String,
    password: String,
    invitation_key: String,
    csrf_token: String,
}

fn signup_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    error: Option<String>,
    form: Option<&SignupForm>,
) -> HttpResponse {
    let (pre, set) = session::pre_session(state, req);
    let mut l = layout("Create an account");
    l.error = error;
    l.nav.push(NavLink {
        href: "/portal/login",
        label: "Log in",
        current: false,
    });
    let mut resp = render(
        status,
        &SignupPage {
            layout: l,
            csrf: session::csrf_for(Binding::Pre, &pre),
            name: form.map(|f| f.name.clone()).unwrap_or_default(),
            email: form.map(|f| f.email.clone()).unwrap_or_default(),
            invite_only: state.portal_signup == PortalSignup::Invite,
        },
    );
    if let Some(c) = set {
        let _ = resp.add_cookie(&c);
    }
    resp
}

fn signup_off(state: &AppState) -> Result<(), PageError> {
    if state.portal_signup == PortalSignup::Off {
        return Err(PageError(ApiError::not_found(
            "sign-up is closed on this server",
        )));
    }
    Ok(())
}

async fn signup_form(state: web::Data<AppState>, req: HttpRequest) -> Res {
    signup_off(&state)?;
    Ok(signup_page(&state, &req, StatusCode::OK, None, None))
}

/// The name and email of a sign-up form, or the message that refuses it.
fn checked_signup(form: &SignupForm) -> Result<(String, Email), String> {
    let name = account::check_name(&form.name).map_err(|e| e.to_string())?;
    let email = Email::parse(&form.email).map_err(|e| e.to_string())?;
    account::check_password(&form.password).map_err(|e| e.to_string())?;
    Ok((name.to_owned(), email))
}

/// Hashes the password, creates the subscriber, subscription, key and owner account, and
/// signs the account in: the session's token and what was created.
async fn create_account(
    state: &AppState,
    (name, email): (String, Email),
    password: String,
    actor: Actor,
) -> Result<(String, accounts::SignedUp), ApiError> {
    let hash = web::block(move || session::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let now = state.clock.now_naive();
    let token = session::random_token();
    let token_hash = session::sha256_hex(&token);
    let expires = now + chrono::Duration::hours(PORTAL_SESSION_HOURS);
    let signed = run(&state.db, move |c| {
        let s = accounts::signup(c, &name, &email, &hash, now, &actor)?;
        accounts::open_session(c, &token_hash, Some(&s.account), now, expires, &actor)?;
        Ok(s)
    })
    .await?;
    Ok((token, signed))
}

/// Refuses every sign-up under `--portal-signup invite` (invitations come with the invitation
/// keys, §11.3: until then no sign-up can carry a valid one) and while the address is over the
/// failed look-up limit.
fn signup_allowed(state: &AppState, addr: &str) -> Result<(), (StatusCode, String)> {
    if state.portal_signup == PortalSignup::Invite {
        let msg = "Sign-up needs a valid invitation key on this server.";
        return Err((StatusCode::BAD_REQUEST, msg.into()));
    }
    let now = state.clock.now().timestamp();
    state
        .limits
        .failed_lookups
        .check(addr, now)
        .map_err(|over| {
            let msg = format!(
                "Too many attempts from your address; try again in {} seconds.",
                over.retry_after
            );
            (StatusCode::TOO_MANY_REQUESTS, msg)
        })
}

async fn signup(state: web::Data<AppState>, req: HttpRequest, form: web::Form<SignupForm>) -> Res {
    signup_off(&state)?;
    let form = form.into_inner();
    if !session::csrf_ok(&req, Binding::Pre, &form.csrf_token) {
        return Err(forbidden(CSRF_REFUSED));
    }
    let refuse = |status: StatusCode, msg: &str| {
        Ok(signup_page(
            &state,
            &req,
            status,
            Some(capitalise(msg)),
            Some(&form),
        ))
    };
    let addr = client_addr(&req).unwrap_or_else(|| "unknown".into());
    if let Err((status, msg)) = signup_allowed(&state, &addr) {
        return refuse(status, &msg);
    }
    let checked = match checked_signup(&form) {
        Ok(v) => v,
        Err(msg) => return refuse(StatusCode::BAD_REQUEST, &msg),
    };
    let actor = Actor::new("portal", Some(addr));
    let (token, signed) = match create_account(&state, checked, form.password.clone(), actor).await
    {
        Ok(v) => v,
        Err(ApiError::Client {
            status, message, ..
        }) => return refuse(status, &message),
        Err(e) => return Err(e.into()),
    };
    let member = Member {
        token: token.clone(),
        account: signed.account,
    };
    let shown = Some(signed.plaintext.expose().to_owned());
    let mut resp = dashboard_page(&state, &member, shown, None).await?;
    let _ = resp.add_cookie(&session::cookie(
        &state,
        PORTAL_COOKIE,
        token,
        PORTAL_SESSION_HOURS,
    ));
    Ok(resp)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------- login, logout

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage {
    layout: Layout,
    csrf: String,
    email: String,
    signup_open: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf_token: String,
}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    error: Option<String>,
    email: &str,
) -> HttpResponse {
    let (pre, set) = session::pre_session(state, req);
    let mut l = layout("Log in");
    l.error = error;
    if state.portal_signup != PortalSignup::Off {
        l.nav.push(NavLink {
            href: "/portal/signup",
            label: "Sign up",
            current: false,
        });
    }
    let mut resp = render(
        status,
        &LoginPage {
            layout: l,
            csrf: session::csrf_for(Binding::Pre, &pre),
            email: email.to_owned(),
            signup_open: state.portal_signup == PortalSignup::Open,
        },
    );
    if let Some(c) = set {
        let _ = resp.add_cookie(&c);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("60"),
        );
    }
    resp
}

async fn login_form(state: web::Data<AppState>, req: HttpRequest) -> Res {
    if member(&state, &req).await?.is_some() {
        return Ok(see_other("/portal/"));
    }
    Ok(login_page(&state, &req, StatusCode::OK, None, ""))
}

/// How a login attempt ended.
enum Attempt {
    /// Wrong email or password (counted and audited).
    Wrong,
    /// The account is over its limit for now (retry after these seconds).
    Limited(u64),
    /// Signed in with this session token.
    In(String),
}

/// Checks an email and password (the per-account limit first), counts a failure against the
/// address and the account, and opens a session on success.
async fn attempt(
    state: &AppState,
    email: Email,
    pw: String,
    addr: &str,
) -> Result<Attempt, ApiError> {
    let now = state.clock.now_naive();
    let actor = Actor::new("portal", Some(addr.to_owned()));
    let found = run(&state.db, move |c| accounts::find_by_email(c, &email)).await?;
    let acc = match found {
        Some(acc) => match accounts::allowance(&acc, now) {
            LoginAllowance::Limited { retry_after } => return Ok(Attempt::Limited(retry_after)),
            LoginAllowance::Open { .. } => acc,
        },
        None => {
            web::block(move || session::spend_password_time(&pw))
                .await
                .map_err(ApiError::internal)?;
            state
                .limits
                .failed_lookups
                .count(addr, state.clock.now().timestamp());
            let ev = actor.event("account.login", "unknown_email", now);
            run(&state.db, move |c| crate::db::audit::record(c, &ev)).await?;
            return Ok(Attempt::Wrong);
        }
    };
    let phc = acc.password_hash.clone();
    let ok = web::block(move || session::verify_password(&pw, &phc))
        .await
        .map_err(ApiError::internal)?;
    if !ok {
        state
            .limits
            .failed_lookups
            .count(addr, state.clock.now().timestamp());
        run(&state.db, move |c| {
            accounts::note_failed_login(c, &acc.id, now, &actor)
        })
        .await?;
        return Ok(Attempt::Wrong);
    }
    let token = session::random_token();
    let hash = session::sha256_hex(&token);
    let expires = now + chrono::Duration::hours(PORTAL_SESSION_HOURS);
    run(&state.db, move |c| {
        accounts::open_session(c, &hash, Some(&acc), now, expires, &actor)
    })
    .await?;
    Ok(Attempt::In(token))
}

async fn login(state: web::Data<AppState>, req: HttpRequest, form: web::Form<LoginForm>) -> Res {
    let form = form.into_inner();
    if !session::csrf_ok(&req, Binding::Pre, &form.csrf_token) {
        return Err(forbidden(CSRF_REFUSED));
    }
    let refuse = |status: StatusCode, msg: &str| {
        Ok(login_page(
            &state,
            &req,
            status,
            Some(msg.to_owned()),
            &form.email,
        ))
    };
    let addr = client_addr(&req).unwrap_or_else(|| "unknown".into());
    if let Err(over) = state
        .limits
        .failed_lookups
        .check(&addr, state.clock.now().timestamp())
    {
        crate::http::lookup::refused(&state, "failed_lookups", over);
        let msg = format!(
            "Too many failed attempts from your address; try again in {} seconds.",
            over.retry_after
        );
        return refuse(StatusCode::TOO_MANY_REQUESTS, &msg);
    }
    let Ok(email) = Email::parse(&form.email) else {
        return refuse(StatusCode::BAD_REQUEST, "Enter a valid email address.");
    };
    if form.password.is_empty() || form.password.len() > account::MAX_PASSWORD_BYTES {
        return refuse(StatusCode::BAD_REQUEST, "Enter your password.");
    }
    match attempt(&state, email, form.password.clone(), &addr).await? {
        Attempt::Wrong => refuse(StatusCode::UNAUTHORIZED, "Wrong email or password."),
        Attempt::Limited(secs) => {
            let msg = format!(
                "Too many failed logins for this account; try again in {} minutes.",
                secs.div_ceil(60)
            );
            refuse(StatusCode::TOO_MANY_REQUESTS, &msg)
        }
        Attempt::In(token) => {
            let mut resp = see_other("/portal/");
            let _ = resp.add_cookie(&session::cookie(
                &state,
                PORTAL_COOKIE,
                token,
                PORTAL_SESSION_HOURS,
            ));
            Ok(resp)
        }
    }
}

async fn logout(state: web::Data<AppState>, req: HttpRequest, form: web::Form<CsrfForm>) -> Res {
    let Some(m) = member_for_post(&state, &req, &form.csrf_token).await? else {
        return Ok(see_other("/portal/login"));
    };
    let now = state.clock.now_naive();
    let actor = m.actor(&req);
    let hash = session::sha256_hex(&m.token);
    run(&state.db, move |c| {
        accounts::close_session(c, &hash, now, &actor)
    })
    .await?;
    let mut resp = see_other("/portal/login");
    let _ = resp.add_cookie(&session::removal(&state, PORTAL_COOKIE));
    Ok(resp)
}

// ---------------------------------------------------------------- dashboard

#[derive(Template)]
#[template(path = "portal/dashboard.html")]
struct DashboardPage {
    layout: Layout,
    csrf: String,
    subscriber_name: String,
    account_name: String,
    account_email: String,
    account_role: String,
    new_key: Option<String>,
    subscriptions: Vec<SubscriptionCard>,
    members: Vec<MemberLine>,
    can_release: bool,
    can_regenerate: bool,
}

struct SubscriptionCard {
    offer_title: String,
    status: String,
    running: bool,
    begin: String,
    end: String,
    keys: Vec<KeyCard>,
}

struct KeyCard {
    id: String,
    prefix: String,
    created: String,
    expires: String,
    bindings: Vec<BindingLine>,
}

struct BindingLine {
    id: String,
    url: String,
    uid: String,
    bound: String,
    last_seen: String,
}

struct MemberLine {
    name: String,
    email: String,
    role: String,
}

fn subscription_card(
    state: &AppState,
    o: &accounts::Overview,
    s: &crate::domain::subscription::Subscription,
    today: chrono::NaiveDate,
) -> SubscriptionCard {
    let binding = |b: &crate::db::models::RegistrationRow| BindingLine {
        id: b.id.clone(),
        url: or_dash(b.instance_url.as_deref()),
        uid: or_dash(b.instance_uid.as_deref()),
        bound: when(b.bound_at),
        last_seen: when(b.last_seen_at),
    };
    let keys = o.keys.iter().filter(|k| k.subscription_id == s.id);
    SubscriptionCard {
        offer_title: state
            .offers
            .get(s.offer.as_str())
            .map(|x| x.title.clone())
            .unwrap_or_else(|| s.offer.clone()),
        status: s.status.as_str().to_owned(),
        running: s.is_running(today),
        begin: s.begin_date.to_string(),
        end: s
            .end_date
            .map(|d| d.to_string())
            .unwrap_or_else(|| "open-ended".into()),
        keys: keys
            .map(|k| KeyCard {
                id: k.id.clone(),
                prefix: k.key_prefix.clone(),
                created: when(k.created_at),
                expires: k.expires_at.map(when).unwrap_or_default(),
                bindings: o
                    .bindings
                    .iter()
                    .filter(|b| b.key_id == k.id)
                    .map(binding)
                    .collect(),
            })
            .collect(),
    }
}

async fn dashboard_page(
    state: &AppState,
    m: &Member,
    new_key: Option<String>,
    notice: Option<String>,
) -> Res {
    let sid = m.account.subscriber_id.clone();
    let o = run(&state.db, move |c| accounts::overview(c, &sid)).await?;
    let today = state.clock.now_naive().date();
    let subscriptions = o
        .subscriptions
        .iter()
        .map(|s| subscription_card(state, &o, s, today))
        .collect();
    let mut l = layout("Dashboard");
    l.nav.push(NavLink {
        href: "/portal/",
        label: "Dashboard",
        current: true,
    });
    l.logout = Some(Logout {
        action: "/portal/logout",
        csrf: m.csrf(),
    });
    l.notice = notice;
    Ok(render(
        StatusCode::OK,
        &DashboardPage {
            layout: l,
            csrf: m.csrf(),
            subscriber_name: o.subscriber.name.clone(),
            account_name: m.account.name.clone(),
            account_email: m.account.email.clone(),
            account_role: m.role().to_string(),
            new_key,
            subscriptions,
            members: o
                .members
                .into_iter()
                .map(|a| MemberLine {
                    role: a.role.clone(),
                    name: a.name,
                    email: a.email,
                })
                .collect(),
            can_release: m.role().may(PortalAction::ReleaseInstance),
            can_regenerate: m.role().may(PortalAction::RegenerateKey),
        },
    ))
}

async fn dashboard(state: web::Data<AppState>, req: HttpRequest) -> Res {
    match member(&state, &req).await? {
        Some(m) => dashboard_page(&state, &m, None, None).await,
        None => Ok(see_other("/portal/login")),
    }
}

/// `404` unless the subscriber owns the thing (another subscriber's ids are not revealed).
fn owned(owner: Option<String>, m: &Member, what: &str) -> Result<(), PageError> {
    if owner.as_deref() == Some(m.account.subscriber_id.as_str()) {
        Ok(())
    } else {
        Err(PageError(ApiError::not_found(format!("no such {what}"))))
    }
}

async fn release(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let Some(m) = member_for_post(&state, &req, &form.csrf_token).await? else {
        return Ok(see_other("/portal/login"));
    };
    m.require(PortalAction::ReleaseInstance)?;
    let id = id.into_inner();
    let rid = id.clone();
    let owner = run(&state.db, move |c| accounts::registration_owner(c, &rid)).await?;
    owned(owner, &m, "instance")?;
    let now = state.clock.now_naive();
    let actor = m.actor(&req);
    run(&state.db, move |c| {
        registrations::release_by_id(c, &id, now, &actor)
    })
    .await?;
    Ok(see_other("/portal/"))
}

async fn regenerate(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let Some(m) = member_for_post(&state, &req, &form.csrf_token).await? else {
        return Ok(see_other("/portal/login"));
    };
    m.require(PortalAction::RegenerateKey)?;
    let id = id.into_inner();
    let kid = id.clone();
    let owner = run(&state.db, move |c| accounts::key_owner(c, &kid)).await?;
    owned(owner, &m, "key")?;
    let now = state.clock.now_naive();
    let actor = m.actor(&req);
    let (_, plaintext) = run(&state.db, move |c| keys::regenerate(c, &id, now, &actor)).await?;
    dashboard_page(
        &state,
        &m,
        Some(plaintext.expose().to_owned()),
        Some(
            "The old key is revoked and its instance released; paste the new key into GLPI.".into(),
        ),
    )
    .await
}
