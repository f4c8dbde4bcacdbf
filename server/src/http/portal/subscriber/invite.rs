//! Invitations redeemed on a page (DESIGN §10, §11.3): `/portal/invite/<key>` shows a form
//! (`name`, `email`, `password`) that creates an account in the inviting subscriber with the
//! invitation's role and signs it in; the sign-up form's `invitation_key` does the same. The
//! key in the path reaches the logs only as its display prefix (see `http::telemetry`).

use super::dashboard::{Shown, dashboard_page, dashboard_showing};
use super::signup::{SignupForm, capitalise, checked_signup};
use super::*;
use crate::db::invitations::{self, Invitee};
use glpi_network_shared::{KeyKind, PlainKey};

#[derive(Template)]
#[template(path = "portal/invite.html")]
struct InvitePage {
    layout: Layout,
    csrf: String,
    action: String,
    prefix: String,
    name: String,
    email: String,
}

fn invite_page(
    state: &AppState,
    req: &HttpRequest,
    raw_key: &str,
    status: StatusCode,
    error: Option<String>,
    form: Option<&SignupForm>,
) -> HttpResponse {
    let (pre, set) = session::pre_session(state, req);
    let mut l = layout("Accept an invitation");
    l.error = error;
    let prefix = PlainKey::parse(raw_key)
        .map(|k| k.display_prefix())
        .unwrap_or_default();
    let mut resp = render(
        status,
        &InvitePage {
            layout: l,
            csrf: session::csrf_for(Binding::Pre, &pre),
            action: format!("/portal/invite/{}", percent_path(raw_key)),
            prefix,
            name: form.map(|f| f.name.clone()).unwrap_or_default(),
            email: form.map(|f| f.email.clone()).unwrap_or_default(),
        },
    );
    if let Some(c) = set {
        let _ = resp.add_cookie(&c);
    }
    resp
}

/// A path segment with everything but unreserved characters percent-encoded.
fn percent_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) async fn invite_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
) -> Res {
    Ok(invite_page(&state, &req, &key, StatusCode::OK, None, None))
}

pub(super) async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    form: web::Form<SignupForm>,
) -> Res {
    let form = form.into_inner();
    let raw = key.into_inner();
    match redeem(&state, &req, &raw, &form).await? {
        Redeem::In(resp) => Ok(resp),
        Redeem::Refused(status, msg) => Ok(invite_page(
            &state,
            &req,
            &raw,
            status,
            Some(capitalise(&msg)),
            Some(&form),
        )),
    }
}

/// What a redemption form leads to.
pub(super) enum Redeem {
    /// The new member, signed in, on the dashboard.
    In(HttpResponse),
    /// The form again, with this status and message.
    Refused(StatusCode, String),
}

/// Redeems `raw_key` for the form's person: checks the CSRF token, the address's failed
/// look-ups, the key's shape and kind, the form; creates the account (Argon2id password) and
/// signs it in. An email that already has an account is refused here (`409`): a page never
/// signs anyone in without their own password.
pub(super) async fn redeem(
    state: &AppState,
    req: &HttpRequest,
    raw_key: &str,
    form: &SignupForm,
) -> Result<Redeem, PageError> {
    if !session::csrf_ok(req, Binding::Pre, &form.csrf_token) {
        return Err(forbidden(CSRF_REFUSED));
    }
    let refused = |status, msg: String| Ok(Redeem::Refused(status, msg));
    let caller = match crate::http::lookup::caller(state, req) {
        Ok(c) => c,
        Err(e) => return refused(StatusCode::TOO_MANY_REQUESTS, too_many(&e)),
    };
    let key = match caller
        .parse_kind_key(state, req, raw_key, KeyKind::Invitation)
        .await
    {
        Ok(k) => k,
        Err(e @ ApiError::RateLimited { .. }) => {
            return refused(StatusCode::TOO_MANY_REQUESTS, too_many(&e));
        }
        Err(_) => {
            let msg = "this is not a valid invitation key".to_owned();
            return refused(StatusCode::BAD_REQUEST, msg);
        }
    };
    let (name, email) = match checked_signup(form) {
        Ok(v) => v,
        Err(msg) => return refused(StatusCode::BAD_REQUEST, msg),
    };
    let pw = form.password.clone();
    let password_hash = web::block(move || session::hash_password(&pw))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    match sign_in_invitee(state, &caller, key, name, email, password_hash).await {
        Ok(resp) => Ok(Redeem::In(resp)),
        Err(ApiError::Client {
            status, message, ..
        }) => refused(status, message),
        Err(e @ ApiError::RateLimited { .. }) => {
            refused(StatusCode::TOO_MANY_REQUESTS, too_many(&e))
        }
        Err(e) => Err(e.into()),
    }
}

fn too_many(e: &ApiError) -> String {
    match e {
        ApiError::RateLimited { retry_after, .. } => format!(
            "too many failed attempts from your address; try again in {retry_after} seconds"
        ),
        _ => "too many failed attempts from your address; try again later".into(),
    }
}

async fn sign_in_invitee(
    state: &AppState,
    caller: &crate::http::lookup::Caller,
    key: PlainKey,
    name: String,
    email: Email,
    password_hash: String,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now_naive();
    let actor = Actor::new("portal", Some(caller.addr.clone()));
    let who = Invitee {
        email: email.as_str().to_owned(),
        name,
        password_hash,
    };
    let (a, k) = (actor.clone(), key);
    let result = run(&state.db, move |c| {
        invitations::redeem(c, &k, &who, now, &a)
    })
    .await;
    let done = caller.note(state, result).await?;
    if !done.created {
        return Err(ApiError::Client {
            status: StatusCode::CONFLICT,
            code: glpi_network_shared::ErrorCode::EmailTaken,
            message: "an account with this email exists already: log in with it".into(),
        });
    }
    let token = session::random_token();
    let hash = session::sha256_hex(&token);
    let expires = now + chrono::Duration::hours(PORTAL_SESSION_HOURS);
    let account = run(&state.db, move |c| {
        let acc = accounts::find_by_email(c, &email)?
            .ok_or_else(|| crate::db::Error::NotFound("account".into()))?;
        accounts::open_session(c, &hash, Some(&acc), now, expires, &actor)?;
        Ok(acc)
    })
    .await?;
    let notice = format!("Welcome: you joined as {}.", account.role());
    let member = Member {
        token: token.clone(),
        account,
    };
    let mut resp = dashboard_page(state, &member, None, Some(notice))
        .await
        .map_err(|e| e.0)?;
    let _ = resp.add_cookie(&session::cookie(
        state,
        PORTAL_COOKIE,
        token,
        PORTAL_SESSION_HOURS,
    ));
    Ok(resp)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct InviteForm {
    role: String,
    csrf_token: String,
}

/// `POST /portal/invitations`: a manager or owner invites someone to the organisation with a
/// role its own allows (§11.3): one use, the default validity; the link is shown once.
pub(super) async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<InviteForm>,
) -> Res {
    let Some(m) = member_for_post(&state, &req, &form.csrf_token).await? else {
        return Ok(see_other("/portal/login"));
    };
    m.require(PortalAction::Invite)?;
    let role = Role::parse(form.role.trim())
        .filter(|r| m.role().may_invite(*r))
        .ok_or_else(|| {
            forbidden(&format!(
                "Your role ({}) cannot invite that role.",
                m.role()
            ))
        })?;
    let now = state.clock.now_naive();
    let days = crate::domain::invitation::DEFAULT_VALIDITY_DAYS;
    let actor = m.actor(&req);
    let sub = m.account.subscriber_id.clone();
    let (inv, key) = run(&state.db, move |c| {
        let new = invitations::NewInvitation {
            subscriber_id: &sub,
            role,
            max_uses: crate::domain::invitation::DEFAULT_MAX_USES,
            expires_at: Some(now + chrono::Duration::days(days)),
            status: crate::domain::key::KeyStatus::Active,
        };
        invitations::issue(c, &new, now, &actor)
    })
    .await?;
    let shown = Shown {
        new_key: None,
        new_invite: Some(format!(
            "{}/portal/invite/{}",
            state.public_url,
            key.expose()
        )),
    };
    let notice = format!("Invitation {} ({}) created.", inv.key_prefix, role.as_str());
    dashboard_showing(&state, &m, shown, Some(notice)).await
}
