//! Offers, the audit trail with `audit verify`'s answer, and signing keys.

use super::list::*;
use super::*;
use crate::db::Transact;
use crate::db::catalogue;
use crate::db::plugins::{self, PluginRow, VersionRow};
use actix_multipart::Multipart;

// ---------------------------------------------------------------- offers, audit, signing keys

pub(super) async fn offers_page(state: web::Data<AppState>, req: HttpRequest) -> Res {
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

/// `audit verify`'s answer as the page shows it.
pub(super) fn chain_facts(check: ChainCheck) -> Vec<Fact> {
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

pub(super) fn audit_row(e: AuditRow) -> Row {
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

pub(super) async fn audit_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let lq = ListQuery {
        limit: Some(50),
        cursor: q.cursor.clone(),
        ..Default::default()
    };
    let (page, check) = run(&state.db, move |c| {
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

pub(super) async fn signing_keys_page(state: web::Data<AppState>, req: HttpRequest) -> Res {
    let v = signed_in!(state, req);
    let rows = run(&state.db, |c| db::signing_keys::all(c)).await?;
    let mut p = ListPage::new(&v, "/console/signing-keys", "Signing keys");
    p.forms.push(FormSpec {
        id: "rotate",
        open: true,
        title: "Rotate",
        action: "/console/signing-keys/rotate",
        submit: "Rotate the signing key",
        multipart: false,
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

pub(super) async fn rotate(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let now = state.clock.now_naive();
    let a = actor(&req);
    let signer = state.signer.clone();
    run(&state.db, move |c| signer.rotate(c, now, &a)).await?;
    Ok(see_other("/console/signing-keys"))
}

// ---------------------------------------------------------------- plugins

fn plugin_row(p: PluginRow, versions: Vec<VersionRow>) -> Row {
    let nums: Vec<String> = versions
        .iter()
        .map(|v| format!("{} ({})", v.num, v.stability))
        .collect();
    let offers = catalogue::required_offers(&p).map(|o| o.join(", "));
    Row {
        cells: vec![
            cell("Key", p.key.clone()),
            cell("Name", p.name.clone()),
            cell(
                "Versions",
                if nums.is_empty() {
                    "—".into()
                } else {
                    nums.join(", ")
                },
            ),
            cell("Required offers", offers.unwrap_or_else(|| "free".into())),
            cell("Downloads", p.download_count.to_string()),
        ],
        actions: vec![act(
            format!("/console/plugins/{}/delete", p.key),
            "Delete",
            "danger delete",
        )],
        id: p.key,
    }
}

pub(super) async fn plugins_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageQuery>,
) -> Res {
    let v = signed_in!(state, req);
    let all = run(&state.db, |c| plugins::all(c)).await?;
    let needle = q.q.clone().unwrap_or_default().trim().to_lowercase();
    let mut p = ListPage::new(&v, "/console/plugins", "Plugin catalogue").search(
        &q,
        "Plugin key or name",
        None,
    );
    p.forms.push(FormSpec {
        id: "add-version",
        open: false,
        title: "Add a version (upload its archive, or the server generates one)",
        action: "/console/plugins/versions",
        submit: "Add version",
        multipart: true,
        fields: vec![
            Field {
                options: all.iter().map(|(p, _)| p.key.clone()).collect(),
                ..field("key", "Plugin", true)
            },
            field("num", "Version number", true),
            Field {
                options: vec!["stable".into(), "beta".into(), "alpha".into()],
                ..field("stability", "Stability", true)
            },
            field(
                "compatibility",
                "GLPI versions (optional, e.g. ~10.0)",
                false,
            ),
            Field {
                input: "file",
                ..field("archive", "Archive (.tar.gz, optional)", false)
            },
        ],
    });
    p.headers = vec!["Key", "Name", "Versions", "Required offers", "Downloads"];
    p.rows = all
        .into_iter()
        .filter(|(p, _)| {
            needle.is_empty()
                || p.key.to_lowercase().contains(&needle)
                || p.name.to_lowercase().contains(&needle)
        })
        .map(|(p, versions)| plugin_row(p, versions))
        .collect();
    p.done()
}

/// The fields of the add-version form, posted as `multipart/form-data` (it may carry a file).
#[derive(Debug, Default)]
pub(super) struct VersionForm {
    key: String,
    num: String,
    stability: String,
    compatibility: String,
    csrf_token: String,
    /// The uploaded archive; `None` when no file was chosen (the server generates one).
    archive: Option<Vec<u8>>,
}

/// At most this many parts, and this many bytes in a text part.
const MAX_PARTS: usize = 8;
const MAX_TEXT_PART: usize = 4096;

/// Reads the form: text parts up to [`MAX_TEXT_PART`] bytes, the archive up to the archive
/// limit (`413` beyond), unknown parts refused.
async fn read_version_form(mut form: Multipart) -> Result<VersionForm, ApiError> {
    use futures::StreamExt;
    let mut f = VersionForm::default();
    let mut parts = 0;
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|e| ApiError::bad_request(format!("invalid form: {e}")))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::bad_request("too many form fields"));
        }
        let name = part.name().unwrap_or_default().to_owned();
        let cap = if name == "archive" {
            crate::domain::archive::MAX_ARCHIVE_BYTES
        } else {
            MAX_TEXT_PART
        };
        let mut buf = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request(format!("invalid form: {e}")))?;
            if buf.len() + chunk.len() > cap {
                return Err(ApiError::payload_too_large(format!(
                    "the field {name} is limited to {cap} bytes"
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        let text = || {
            String::from_utf8(buf.clone())
                .map_err(|_| ApiError::bad_request(format!("the field {name} is not UTF-8")))
        };
        match name.as_str() {
            "archive" => f.archive = Some(buf).filter(|b| !b.is_empty()),
            "key" => f.key = text()?,
            "num" => f.num = text()?,
            "stability" => f.stability = text()?,
            "compatibility" => f.compatibility = text()?,
            "csrf_token" => f.csrf_token = text()?,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown form field {other:?}"
                )));
            }
        }
    }
    Ok(f)
}

/// Adds a version from the console: the uploaded archive (checked as the admin API checks it),
/// or a generated one when no file was chosen.
pub(super) async fn add_version(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Multipart,
) -> Res {
    let f = read_version_form(form).await?;
    let _v = signed_in!(state, req, &f.csrf_token);
    let now = state.clock.now_naive();
    run(&state.db, move |c| {
        let spec = catalogue::VersionSpec {
            num: f.num.trim(),
            stability: Some(f.stability.as_str()),
            compatibility: Some(f.compatibility.trim()).filter(|c| !c.is_empty()),
        };
        catalogue::add_version(c, &f.key, spec, f.archive, now)
    })
    .await?;
    Ok(see_other("/console/plugins"))
}

pub(super) async fn delete_plugin(
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Res {
    let _v = signed_in!(state, req, &form.csrf_token);
    let deleted = run(&state.db, move |c| {
        c.write(db::Touches::Anything, |c| plugins::delete(c, &key))
    })
    .await?;
    if !deleted {
        return Err(PageError(ApiError::not_found("no such plugin")));
    }
    Ok(see_other("/console/plugins"))
}
