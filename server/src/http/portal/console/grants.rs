//! Keys (issue, revoke, regenerate, see the binding) and registrations (release).

use super::list::*;
use super::*;

// ---------------------------------------------------------------- keys

pub(super) fn key_row(k: KeyRow, b: Option<RegistrationRow>) -> Row {
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

pub(super) async fn keys_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let s = q.search();
    let found = run(&state.db, move |c| search::keys(c, &s)).await?;
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
        multipart: false,
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
pub(super) struct IssueForm {
    subscription_id: String,
    csrf_token: String,
}

pub(super) async fn issue_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<IssueForm>,
) -> Res {
    let v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    let sid = form.subscription_id.trim().to_owned();
    let (row, plaintext) = run(&state.db, move |c| keys::issue(c, &sid, None, now, &a)).await?;
    key_issued(&v, row.key_prefix, plaintext.expose().to_owned())
}

pub(super) async fn revoke_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.db, move |c| keys::revoke(c, &id, now, &a)).await?;
    Ok(see_other("/console/keys"))
}

pub(super) async fn regenerate_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    let (row, plaintext) = run(&state.db, move |c| keys::regenerate(c, &id, now, &a)).await?;
    key_issued(&v, row.key_prefix, plaintext.expose().to_owned())
}

// ---------------------------------------------------------------- registrations

pub(super) async fn registrations_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let s = q.search();
    let found = run(&state.db, move |c| search::registrations(c, &s)).await?;
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

pub(super) async fn release(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.db, move |c| {
        registrations::release_by_id(c, &id, now, &a)
    })
    .await?;
    Ok(see_other("/console/registrations"))
}
