//! Login (limited per address and per account, audited) and logout.

use super::*;

// ---------------------------------------------------------------- login, logout

#[derive(Template)]
#[template(path = "portal/login.html")]
pub(super) struct LoginPage {
    layout: Layout,
    csrf: String,
    email: String,
    signup_open: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct LoginForm {
    email: String,
    password: String,
    csrf_token: String,
}

pub(super) fn login_page(
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

pub(super) async fn login_form(state: web::Data<AppState>, req: HttpRequest) -> Res {
    if member(&state, &req).await?.is_some() {
        return Ok(see_other("/portal/"));
    }
    Ok(login_page(&state, &req, StatusCode::OK, None, ""))
}

/// How a login attempt ended.
pub(super) enum Attempt {
    /// Wrong email or password (counted and audited).
    Wrong,
    /// The account is over its limit for now (retry after these seconds).
    Limited(u64),
    /// The address is over the failed look-up limit (retry after these seconds).
    AddressLimited(u64),
    /// Signed in with this session token.
    In(String),
}

/// Checks an email and password (the per-account limit first), counts a failure against the
/// address and the account, and opens a session on success.
pub(super) async fn attempt(
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
            let over = crate::http::lookup::failed_login(state, addr).await?;
            let ev = actor.event("account.login", "unknown_email", now);
            run(&state.db, move |c| crate::db::audit::record(c, &ev)).await?;
            return Ok(over.map_or(Attempt::Wrong, Attempt::AddressLimited));
        }
    };
    let phc = acc.password_hash.clone();
    let ok = web::block(move || session::verify_password(&pw, &phc))
        .await
        .map_err(ApiError::internal)?;
    if !ok {
        let over = crate::http::lookup::failed_login(state, addr).await?;
        run(&state.db, move |c| {
            accounts::note_failed_login(c, &acc.id, now, &actor)
        })
        .await?;
        return Ok(over.map_or(Attempt::Wrong, Attempt::AddressLimited));
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

fn address_over(secs: u64) -> String {
    format!("Too many failed attempts from your address; try again in {secs} seconds.")
}

pub(super) async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Res {
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
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &address_over(over.retry_after),
        );
    }
    let Ok(email) = Email::parse(&form.email) else {
        return refuse(StatusCode::BAD_REQUEST, "Enter a valid email address.");
    };
    if form.password.is_empty() || form.password.len() > account::MAX_PASSWORD_BYTES {
        return refuse(StatusCode::BAD_REQUEST, "Enter your password.");
    }
    match attempt(&state, email, form.password.clone(), &addr).await? {
        Attempt::Wrong => refuse(StatusCode::UNAUTHORIZED, "Wrong email or password."),
        Attempt::AddressLimited(secs) => refuse(StatusCode::TOO_MANY_REQUESTS, &address_over(secs)),
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

pub(super) async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Res {
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
