//! The dashboard and the actions a member's role allows: release an instance, regenerate a
//! key.

use super::*;

// ---------------------------------------------------------------- dashboard

#[derive(Template)]
#[template(path = "portal/dashboard.html")]
pub(super) struct DashboardPage {
    layout: Layout,
    csrf: String,
    subscriber_name: String,
    account_name: String,
    account_email: String,
    account_role: String,
    new_key: Option<String>,
    subscriptions: Vec<SubscriptionCard>,
    members: Vec<MemberLine>,
    licenses: Vec<LicenseLine>,
    /// The roles this member may invite (empty: no invitation form).
    invite_roles: Vec<&'static str>,
    /// A new invitation's link, shown once.
    new_invite: Option<String>,
    can_release: bool,
    can_regenerate: bool,
}

pub(super) struct SubscriptionCard {
    offer_title: String,
    status: String,
    running: bool,
    begin: String,
    end: String,
    keys: Vec<KeyCard>,
}

pub(super) struct KeyCard {
    id: String,
    prefix: String,
    created: String,
    expires: String,
    bindings: Vec<BindingLine>,
}

pub(super) struct BindingLine {
    id: String,
    url: String,
    uid: String,
    bound: String,
    last_seen: String,
}

pub(super) struct LicenseLine {
    plugin: String,
    prefix: String,
    status: String,
    instance: String,
    expires: String,
}

fn invite_roles(role: Role) -> Vec<&'static str> {
    if !role.may(PortalAction::Invite) {
        return Vec::new();
    }
    [Role::Viewer, Role::Manager, Role::Owner]
        .into_iter()
        .filter(|r| role.may_invite(*r))
        .map(Role::as_str)
        .collect()
}

fn license_lines(licenses: Vec<crate::domain::license::License>) -> Vec<LicenseLine> {
    licenses
        .into_iter()
        .map(|l| LicenseLine {
            status: l.status.as_str().to_owned(),
            instance: or_dash(l.instance_url.as_deref().or(l.instance_uid.as_deref())),
            expires: when(l.expires_at),
            prefix: l.key_prefix,
            plugin: l.plugin,
        })
        .collect()
}

pub(super) struct MemberLine {
    name: String,
    email: String,
    role: String,
}

pub(super) fn subscription_card(
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

pub(super) async fn dashboard_page(
    state: &AppState,
    m: &Member,
    new_key: Option<String>,
    notice: Option<String>,
) -> Res {
    dashboard_showing(
        state,
        m,
        Shown {
            new_key,
            new_invite: None,
        },
        notice,
    )
    .await
}

/// What a dashboard shows once: a new key, a new invitation's link.
pub(super) struct Shown {
    pub new_key: Option<String>,
    pub new_invite: Option<String>,
}

pub(super) async fn dashboard_showing(
    state: &AppState,
    m: &Member,
    shown: Shown,
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
            new_key: shown.new_key,
            new_invite: shown.new_invite,
            invite_roles: invite_roles(m.role()),
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
            licenses: license_lines(o.licenses),
            can_release: m.role().may(PortalAction::ReleaseInstance),
            can_regenerate: m.role().may(PortalAction::RegenerateKey),
        },
    ))
}

pub(super) async fn dashboard(state: web::Data<AppState>, req: HttpRequest) -> Res {
    match member(&state, &req).await? {
        Some(m) => dashboard_page(&state, &m, None, None).await,
        None => Ok(see_other("/portal/login")),
    }
}

/// `404` unless the subscriber owns the thing (another subscriber's ids are not revealed).
pub(super) fn owned(owner: Option<String>, m: &Member, what: &str) -> Result<(), PageError> {
    if owner.as_deref() == Some(m.account.subscriber_id.as_str()) {
        Ok(())
    } else {
        Err(PageError(ApiError::not_found(format!("no such {what}"))))
    }
}

pub(super) async fn release(
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

pub(super) async fn regenerate(
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
