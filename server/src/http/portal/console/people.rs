//! Subscribers (with their accounts) and subscriptions.

use super::list::*;
use super::*;

// ---------------------------------------------------------------- subscribers

pub(super) fn subscriber_row(s: SubscriberRow, accounts: &[AccountRow]) -> Row {
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

pub(super) async fn subscribers_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let s = q.search();
    let (found, accounts) = run(&state.db, move |c| {
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
        multipart: false,
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
pub(super) struct SubscriberForm {
    name: String,
    email: String,
    csrf_token: String,
}

pub(super) async fn create_subscriber(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<SubscriberForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let f = form.into_inner();
    let row = run(&state.db, move |c| {
        let email = Some(f.email.as_str()).filter(|e| !e.trim().is_empty());
        subscribers::create(c, &f.name, email, now)
    })
    .await?;
    Ok(see_other(&format!(
        "/console/subscriptions?q={}",
        urlencode(&row.name)
    )))
}

pub(super) async fn end_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    run(&state.db, move |c| {
        accounts::end_sessions_of_subscriber(c, &id, now, &a)
    })
    .await?;
    Ok(see_other("/console/subscribers"))
}

// ---------------------------------------------------------------- subscriptions

pub(super) fn subscription_form(state: &AppState) -> FormSpec {
    let mut offers: Vec<_> = state.offers.values().collect();
    offers.sort_by_key(|o| o.rank);
    FormSpec {
        id: "new-subscription",
        open: false,
        title: "New subscription",
        action: "/console/subscriptions",
        submit: "Create subscription",
        multipart: false,
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

pub(super) fn subscription_row(
    s: Subscription,
    owner: SubscriberRow,
    today: chrono::NaiveDate,
) -> Row {
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

pub(super) async fn subscriptions_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let s = q.search();
    let found = run(&state.db, move |c| search::subscriptions(c, &s)).await?;
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
pub(super) struct SubscriptionForm {
    subscriber_id: String,
    offer: String,
    trial_days: String,
    csrf_token: String,
}

pub(super) async fn create_subscription(
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
    run(&state.db, move |c| subscriptions::create(c, &body, now, &a)).await?;
    Ok(see_other("/console/subscriptions"))
}

pub(super) async fn transition(
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
                run(&state.db, move |c| keys::issue(c, &id, None, now, &a)).await?;
            return key_issued(&v, row.key_prefix, plaintext.expose().to_owned());
        }
        _ => return Err(PageError(ApiError::not_found("no such action"))),
    };
    run(&state.db, move |c| {
        subscriptions::transition(c, &id, action, now, &a)
    })
    .await?;
    Ok(see_other("/console/subscriptions"))
}
