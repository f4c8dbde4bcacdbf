//! Plugin licenses, enrollment keys and invitations (DESIGN §11): issue, list (paged, and
//! narrowed to one subscriber with `?q=<subscriber id>`), revoke. A new key (an invitation's
//! URL) is shown once.

use super::list::*;
use super::*;
use crate::db::{enrollments, invitations, licenses};
use crate::domain::account::Role;
use crate::domain::key::KeyStatus;

/// The pages of the three kinds, added to the console's scope.
pub(super) fn routes(scope: Scope) -> Scope {
    scope
        .service(
            web::resource("/licenses")
                .route(web::get().to(kinds::licenses_page))
                .route(web::post().to(kinds::issue_license)),
        )
        .route(
            "/licenses/{id}/revoke",
            web::post().to(kinds::revoke_license),
        )
        .service(
            web::resource("/enrollment-keys")
                .route(web::get().to(kinds::enrollment_keys_page))
                .route(web::post().to(kinds::issue_enrollment_key)),
        )
        .route("/licenses/{id}/renew", web::post().to(renew_license))
        .route(
            "/enrollment-keys/{id}/enrollments",
            web::get().to(enrollments_page),
        )
        .route(
            "/enrollments/{id}/release",
            web::post().to(release_enrollment),
        )
        .route(
            "/enrollment-keys/{id}/revoke",
            web::post().to(kinds::revoke_enrollment_key),
        )
        .service(
            web::resource("/invitations")
                .route(web::get().to(kinds::invitations_page))
                .route(web::post().to(kinds::create_invitation)),
        )
        .route(
            "/invitations/{id}/revoke",
            web::post().to(kinds::revoke_invitation),
        )
}

/// The admin list query of a console page: one page after `cursor`, of one subscriber when
/// `q` names one.
fn list_query(q: &PageQuery) -> ListQuery {
    ListQuery {
        limit: Some(PAGE),
        cursor: q.cursor.clone(),
        subscriber_id: q
            .q
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        ..ListQuery::default()
    }
}

fn revoke_action(path: &str, id: &str, status: KeyStatus) -> Vec<RowAction> {
    if status == KeyStatus::Revoked {
        return Vec::new();
    }
    vec![act(
        format!("{path}/{id}/revoke"),
        "Revoke",
        "danger revoke",
    )]
}

fn uses(uses: i32, max: i32) -> String {
    if max == 0 {
        format!("{uses} (unlimited)")
    } else {
        format!("{uses} of {max}")
    }
}

fn issued(v: &Vendor, path: &'static str, notice: String, shown: String) -> Res {
    let mut p = ListPage::new(v, path, "Key issued");
    p.layout.notice = Some(notice);
    p.new_key = Some(shown);
    p.done()
}

// ---------------------------------------------------------------- licenses

fn license_actions(id: &str, status: KeyStatus) -> Vec<RowAction> {
    let mut actions = revoke_action("/console/licenses", id, status);
    if status != KeyStatus::Revoked {
        let renew = format!("/console/licenses/{id}/renew");
        actions.push(act(renew, "Renew one term", "secondary renew"));
    }
    actions
}

/// Renews a license for one more term of its plugin, from its expiry (or from now when it
/// has expired).
pub(super) async fn renew_license(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.db, move |c| {
        let l = licenses::get(c, &id)?;
        let days = crate::db::plugin_terms::find(c, &l.plugin)?
            .map_or(crate::domain::catalogue::DEFAULT_LICENSE_TERM_DAYS, |t| {
                t.term_days()
            });
        let until = l.expires_at.max(now) + chrono::Duration::days(i64::from(days));
        licenses::renew(c, &id, until, now, &a)
    })
    .await?;
    Ok(see_other("/console/licenses"))
}

pub(super) async fn licenses_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let lq = list_query(&q);
    let found = run(&state.db, move |c| licenses::list(c, &lq)).await?;
    let mut p = ListPage::new(&v, "/console/licenses", "Plugin licenses").search(
        &q,
        "Subscriber id",
        found.next_cursor,
    );
    p.forms.push(FormSpec {
        id: "issue-license",
        open: false,
        title: "Issue a license",
        action: "/console/licenses",
        submit: "Issue license",
        multipart: false,
        fields: vec![
            field("subscriber_id", "Subscriber id", true),
            field("plugin", "Commercial plugin (key)", true),
        ],
    });
    p.headers = vec![
        "Key",
        "Plugin",
        "Status",
        "Subscriber",
        "Instance",
        "Expires",
    ];
    p.rows = found
        .items
        .into_iter()
        .map(|l| Row {
            cells: vec![
                cell("Key", l.key_prefix.clone()),
                cell("Plugin", l.plugin.clone()),
                status_cell("Status", l.status.as_str()),
                cell("Subscriber", l.subscriber_id.clone()),
                cell(
                    "Instance",
                    or_dash(l.instance_url.as_deref().or(l.instance_uid.as_deref())),
                ),
                cell("Expires", when(l.expires_at)),
            ],
            actions: license_actions(&l.id, l.status),
            id: l.id,
        })
        .collect();
    p.done()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct LicenseForm {
    subscriber_id: String,
    plugin: String,
    csrf_token: String,
}

pub(super) async fn issue_license(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LicenseForm>,
) -> Res {
    let v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    let (sub, plugin) = (
        form.subscriber_id.trim().to_owned(),
        form.plugin.trim().to_owned(),
    );
    let (l, key) = run(&state.db, move |c| {
        let new = licenses::NewLicense {
            subscriber_id: &sub,
            plugin: &plugin,
            expires_at: None,
            status: KeyStatus::Active,
        };
        licenses::issue(c, &new, now, &a)
    })
    .await?;
    let notice = format!("License {} of {} issued.", l.key_prefix, l.plugin);
    issued(&v, "/console/licenses", notice, key.expose().to_owned())
}

pub(super) async fn revoke_license(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.db, move |c| licenses::revoke(c, &id, now, &a)).await?;
    Ok(see_other("/console/licenses"))
}

// ---------------------------------------------------------------- enrollment keys

pub(super) async fn enrollment_keys_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let lq = list_query(&q);
    let found = run(&state.db, move |c| enrollments::list(c, &lq)).await?;
    let mut p = ListPage::new(&v, "/console/enrollment-keys", "Enrollment keys").search(
        &q,
        "Subscriber id",
        found.next_cursor,
    );
    p.forms.push(FormSpec {
        id: "issue-enrollment-key",
        open: false,
        title: "Issue an enrollment key",
        action: "/console/enrollment-keys",
        submit: "Issue enrollment key",
        multipart: false,
        fields: vec![
            field("subscriber_id", "Subscriber id", true),
            field("entity", "Entity", true),
            field("max_uses", "Agents it may enroll (0: unlimited)", true),
        ],
    });
    p.headers = vec![
        "Key",
        "Entity",
        "Status",
        "Uses",
        "Agents",
        "Subscriber",
        "Expires",
    ];
    p.rows = found
        .items
        .into_iter()
        .map(|k| Row {
            cells: vec![
                cell("Key", k.key_prefix.clone()),
                cell("Entity", k.entity.clone()),
                status_cell("Status", k.status.as_str()),
                cell("Uses", uses(k.uses, k.max_uses)),
                Cell {
                    href: Some(format!("/console/enrollment-keys/{}/enrollments", k.id)),
                    ..cell("Agents", "List")
                },
                cell("Subscriber", k.subscriber_id.clone()),
                cell(
                    "Expires",
                    k.expires_at.map(when).unwrap_or_else(|| "never".into()),
                ),
            ],
            actions: revoke_action("/console/enrollment-keys", &k.id, k.status),
            id: k.id,
        })
        .collect();
    p.done()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct EnrollmentKeyForm {
    subscriber_id: String,
    entity: String,
    max_uses: String,
    csrf_token: String,
}

/// A use count from a form: 0 (unlimited) or more.
fn max_uses(raw: &str) -> Result<i32, PageError> {
    raw.trim()
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            PageError(ApiError::bad_request(
                "max_uses must be a whole number, 0 or more",
            ))
        })
}

pub(super) async fn issue_enrollment_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<EnrollmentKeyForm>,
) -> Res {
    let v = signed_in!(state, req, &form.csrf_token);
    let max = max_uses(&form.max_uses)?;
    let entity =
        crate::domain::enrollment::check_text("entity", &form.entity).map_err(ApiError::from)?;
    let now = state.clock.now_naive();
    let a = actor(&req);
    let sub = form.subscriber_id.trim().to_owned();
    let (k, key) = run(&state.db, move |c| {
        let new = enrollments::NewEnrollmentKey {
            subscriber_id: &sub,
            entity: &entity,
            max_uses: max,
            expires_at: None,
            status: KeyStatus::Active,
        };
        enrollments::issue(c, &new, now, &a)
    })
    .await?;
    let notice = format!("Enrollment key {} for {} issued.", k.key_prefix, k.entity);
    issued(
        &v,
        "/console/enrollment-keys",
        notice,
        key.expose().to_owned(),
    )
}

pub(super) async fn revoke_enrollment_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.db, move |c| enrollments::revoke(c, &id, now, &a)).await?;
    Ok(see_other("/console/enrollment-keys"))
}

/// `GET /console/enrollment-keys/{id}/enrollments`: the agents a key enrolled, each with
/// "Release" (frees its use).
pub(super) async fn enrollments_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let lq = ListQuery {
        limit: Some(PAGE),
        cursor: q.cursor.clone(),
        ..ListQuery::default()
    };
    let key_id = id.into_inner();
    let kid = key_id.clone();
    let found = run(&state.db, move |c| {
        enrollments::list_enrollments(c, &kid, &lq)
    })
    .await?;
    let mut p = ListPage::new(&v, "/console/enrollment-keys", "Enrolled agents");
    p.next_href = found
        .next_cursor
        .map(|c| format!("/console/enrollment-keys/{key_id}/enrollments?cursor={c}"));
    p.headers = vec!["Agent", "Host name", "Enrolled", "Released"];
    p.rows = found
        .items
        .into_iter()
        .map(|e| Row {
            cells: vec![
                cell("Agent", e.agent_id.clone()),
                cell("Host name", or_dash(e.hostname.as_deref())),
                cell("Enrolled", when(e.enrolled_at)),
                cell(
                    "Released",
                    e.released_at.map(when).unwrap_or_else(|| "—".into()),
                ),
            ],
            actions: if e.released_at.is_none() {
                let path = format!("/console/enrollments/{}/release", e.id);
                vec![act(path, "Release", "danger release")]
            } else {
                Vec::new()
            },
            id: e.id,
        })
        .collect();
    p.done()
}

/// Releases an enrolled agent: its use is free again.
pub(super) async fn release_enrollment(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.db, move |c| enrollments::release(c, &id, now, &a)).await?;
    Ok(see_other("/console/enrollment-keys"))
}

// ---------------------------------------------------------------- invitations

pub(super) async fn invitations_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let lq = list_query(&q);
    let found = run(&state.db, move |c| invitations::list(c, &lq)).await?;
    let mut p = ListPage::new(&v, "/console/invitations", "Invitations").search(
        &q,
        "Subscriber id",
        found.next_cursor,
    );
    let mut role = field("role", "Role", true);
    role.options = vec!["viewer".into(), "manager".into(), "owner".into()];
    p.forms.push(FormSpec {
        id: "create-invitation",
        open: false,
        title: "Invite people",
        action: "/console/invitations",
        submit: "Create invitation",
        multipart: false,
        fields: vec![
            field("subscriber_id", "Subscriber id", true),
            role,
            field("max_uses", "People it may invite (0: unlimited)", true),
        ],
    });
    p.headers = vec!["Key", "Role", "Status", "Uses", "Subscriber", "Expires"];
    p.rows = found
        .items
        .into_iter()
        .map(|i| Row {
            cells: vec![
                cell("Key", i.key_prefix.clone()),
                cell("Role", i.role.as_str()),
                status_cell("Status", i.status.as_str()),
                cell("Uses", uses(i.uses, i.max_uses)),
                cell("Subscriber", i.subscriber_id.clone()),
                cell(
                    "Expires",
                    i.expires_at.map(when).unwrap_or_else(|| "never".into()),
                ),
            ],
            actions: revoke_action("/console/invitations", &i.id, i.status),
            id: i.id,
        })
        .collect();
    p.done()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct InvitationForm {
    subscriber_id: String,
    role: String,
    max_uses: String,
    csrf_token: String,
}

pub(super) async fn create_invitation(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<InvitationForm>,
) -> Res {
    let v = signed_in!(state, req, &form.csrf_token);
    let max = max_uses(&form.max_uses)?;
    let role = Role::parse(form.role.trim()).ok_or_else(|| {
        PageError(ApiError::bad_request(
            "role must be owner, manager or viewer",
        ))
    })?;
    let now = state.clock.now_naive();
    let validity = crate::domain::invitation::DEFAULT_VALIDITY_DAYS;
    let expires = Some(now + chrono::Duration::days(validity));
    let a = actor(&req);
    let sub = form.subscriber_id.trim().to_owned();
    let (i, key) = run(&state.db, move |c| {
        let new = invitations::NewInvitation {
            subscriber_id: &sub,
            role,
            max_uses: max,
            expires_at: expires,
            status: KeyStatus::Active,
        };
        invitations::issue(c, &new, now, &a)
    })
    .await?;
    let url = format!("{}/portal/invite/{}", state.public_url, key.expose());
    let notice = format!(
        "Invitation {} ({}) created: send this link.",
        i.key_prefix,
        i.role.as_str()
    );
    issued(&v, "/console/invitations", notice, url)
}

pub(super) async fn revoke_invitation(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.db, move |c| invitations::revoke(c, &id, now, &a)).await?;
    Ok(see_other("/console/invitations"))
}
