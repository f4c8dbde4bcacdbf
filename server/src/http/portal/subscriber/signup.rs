//! Sign-up: a subscriber, its running `registered` subscription, a key shown once, and the
//! owner account, signed in.

use super::dashboard::dashboard_page;
use super::invite::Redeem;
use super::*;

// ---------------------------------------------------------------- sign-up

#[derive(Template)]
#[template(path = "portal/signup.html")]
pub(super) struct SignupPage {
    layout: Layout,
    csrf: String,
    name: String,
    email: String,
    invite_only: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SignupForm {
    pub name: String,
    pub email: String,
    pub password: String,
    pub invitation_key: String,
    pub csrf_token: String,
}

pub(super) fn signup_page(
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

pub(super) fn signup_off(state: &AppState) -> Result<(), PageError> {
    if state.portal_signup == PortalSignup::Off {
        return Err(PageError(ApiError::not_found(
            "sign-up is closed on this server",
        )));
    }
    Ok(())
}

pub(super) async fn signup_form(state: web::Data<AppState>, req: HttpRequest) -> Res {
    signup_off(&state)?;
    Ok(signup_page(&state, &req, StatusCode::OK, None, None))
}

/// The name and email of a sign-up form, or the message that refuses it.
pub(super) fn checked_signup(form: &SignupForm) -> Result<(String, Email), String> {
    let name = account::check_name(&form.name).map_err(|e| e.to_string())?;
    let email = Email::parse(&form.email).map_err(|e| e.to_string())?;
    account::check_password(&form.password).map_err(|e| e.to_string())?;
    Ok((name.to_owned(), email))
}

/// Hashes the password, creates the subscriber, subscription, key and owner account, and
/// signs the account in: the session's token and what was created.
pub(super) async fn create_account(
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

/// Refuses a sign-up without an invitation key under `--portal-signup invite`, and any while
/// the address is over the failed look-up limit.
pub(super) fn signup_allowed(state: &AppState, addr: &str) -> Result<(), (StatusCode, String)> {
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

pub(super) async fn signup(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SignupForm>,
) -> Res {
    signup_off(&state)?;
    let form = form.into_inner();
    if !form.invitation_key.trim().is_empty() {
        return signup_by_invitation(&state, &req, &form).await;
    }
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

/// A sign-up that carries an invitation key: a member of the inviting subscriber, with the
/// invitation's role (§10, §11.3), instead of a new subscriber and key.
async fn signup_by_invitation(state: &AppState, req: &HttpRequest, form: &SignupForm) -> Res {
    let key = form.invitation_key.trim();
    match super::invite::redeem(state, req, key, form).await? {
        Redeem::In(resp) => Ok(resp),
        Redeem::Refused(status, msg) => Ok(signup_page(
            state,
            req,
            status,
            Some(capitalise(&msg)),
            Some(form),
        )),
    }
}

pub(super) fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
