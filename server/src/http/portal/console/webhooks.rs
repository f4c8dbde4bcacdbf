//! Webhooks (create, delete) and their deliveries (retry), DESIGN §12.

use super::list::*;
use super::*;
use crate::db::webhooks as hooks;
use crate::http::webhooks::{WebhookRequest, WebhookView, create_webhook};

/// The webhook pages' routes, on the console's scope.
pub(super) fn routes(scope: Scope) -> Scope {
    scope
        .service(
            web::resource("/webhooks")
                .route(web::get().to(webhooks_page))
                .route(web::post().to(create)),
        )
        .route("/webhooks/{id}/delete", web::post().to(delete))
        .route("/webhooks/{id}/deliveries", web::get().to(deliveries_page))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/retry",
            web::post().to(retry),
        )
}

fn webhook_row(w: WebhookView) -> Row {
    let deliveries = format!("/console/webhooks/{}/deliveries", w.id);
    let mut url = cell("URL", w.url);
    url.href = Some(deliveries);
    Row {
        cells: vec![
            url,
            cell("Events", w.events.join(", ")),
            cell("Description", or_dash(w.description.as_deref())),
            cell("Created", when(w.created_at.naive_utc())),
        ],
        actions: vec![act(
            format!("/console/webhooks/{}/delete", w.id),
            "Delete",
            "danger delete",
        )],
        id: w.id,
    }
}

fn list_page(v: &Vendor, q: &PageQuery, rows: Vec<WebhookView>, next: Option<String>) -> ListPage {
    let mut p =
        ListPage::new(v, "/console/webhooks", "Webhooks").search(q, "URL or description", next);
    p.forms.push(FormSpec {
        id: "create-webhook",
        open: false,
        title: "Create a webhook",
        action: "/console/webhooks",
        submit: "Create webhook",
        multipart: false,
        fields: vec![
            field("url", "URL", true),
            Field {
                value: "*".into(),
                ..field("events", "Events (comma-separated, * for all)", true)
            },
            field("description", "Description", false),
        ],
    });
    p.headers = vec!["URL (its deliveries)", "Events", "Description", "Created"];
    p.rows = rows.into_iter().map(webhook_row).collect();
    p
}

pub(super) async fn webhooks_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let s = q.search();
    let found = run(&state.db, move |c| search::webhooks(c, &s)).await?;
    let rows = found.items.into_iter().map(WebhookView::from).collect();
    list_page(&v, &q, rows, found.next_cursor).done()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CreateForm {
    url: String,
    events: String,
    description: String,
    csrf_token: String,
}

pub(super) async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CreateForm>,
) -> Res {
    let v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let body = WebhookRequest {
        url: form.url.trim().to_owned(),
        events: form
            .events
            .split(',')
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect(),
        description: Some(form.description.trim().to_owned()),
    };
    let (st, allow, a) = (state.clone(), state.webhooks_allow_private, actor(&req));
    let (row, secret) = run(&state.db, move |c| {
        create_webhook(c, st.signer.master(), &body, allow, now, &a)
    })
    .await?;
    let view = WebhookView::from(row);
    let mut p = list_page(&v, &PageQuery::default(), Vec::new(), None);
    p.layout.notice = Some(format!("Webhook to {} created.", view.url));
    p.rows = vec![webhook_row(view)];
    p.new_key = Some(secret);
    p.new_key_title = "Webhook secret";
    p.new_key_note =
        "Give it to the receiver now (it verifies signatures with it): it is shown only once.";
    p.done()
}

pub(super) async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let (now, a) = (state.clock.now_naive(), actor(&req));
    run(&state.db, move |c| hooks::delete(c, &id, now, &a)).await?;
    Ok(see_other("/console/webhooks"))
}

pub(super) async fn deliveries_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let lq = ListQuery {
        limit: Some(PAGE),
        cursor: q.cursor.clone(),
        ..Default::default()
    };
    let hid = id.clone();
    let (hook, page) = run(&state.db, move |c| {
        Ok((hooks::get(c, &hid)?, hooks::deliveries(c, &hid, &lq)?))
    })
    .await?;
    let mut p = ListPage::new(&v, "/console/webhooks", "Webhook deliveries");
    p.facts.push(vec![
        fact("URL", hook.url.clone(), ""),
        fact("Events", hook.event_list().join(", "), ""),
    ]);
    p.headers = vec![
        "Event",
        "Type",
        "Status",
        "Attempts",
        "Last status",
        "Next attempt",
    ];
    p.rows = page
        .items
        .into_iter()
        .map(|d| delivery_row(&id, d))
        .collect();
    p.next_href = page
        .next_cursor
        .map(|c| format!("/console/webhooks/{id}/deliveries?cursor={}", urlencode(&c)));
    p.done()
}

fn delivery_row(hook: &str, d: hooks::Delivery) -> Row {
    Row {
        cells: vec![
            cell("Event", d.event_id),
            cell("Type", d.kind),
            status_cell("Status", &d.status),
            cell("Attempts", d.attempts.to_string()),
            cell("Last status", or_dash(d.last_status)),
            cell("Next attempt", or_dash(d.next_attempt_at.map(when))),
        ],
        actions: vec![act(
            format!("/console/webhooks/{hook}/deliveries/{}/retry", d.id),
            "Retry",
            "secondary retry",
        )],
        id: d.id,
    }
}

pub(super) async fn retry(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let (id, did) = path.into_inner();
    let back = format!("/console/webhooks/{id}/deliveries");
    let a = actor(&req);
    run(&state.db, move |c| hooks::retry(c, &id, &did, now, &a)).await?;
    Ok(see_other(&back))
}
