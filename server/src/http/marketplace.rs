//! The marketplace GLPI reads (protocol §4.4–§4.8), served under both `/api/marketplace/` and
//! `/api/glpi-plugins/`: `X-Range` paging that ends with `[]`, tags, the download counter and
//! archives gated by the key's offer.

use super::glpi::header;
use super::lookup as guard;
use super::run;
use crate::app::AppState;
use crate::db::{catalogue, key_state, plugins};
use crate::domain::binding::KeyState;
use crate::domain::catalogue::{PluginRecord, parse_archive_name};
use crate::domain::compat;
use crate::http::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use glpi_network_shared::ErrorCode;
use semver::Version;
use serde_json::json;

/// GLPI's page size; also the page served without `X-Range`.
pub const DEFAULT_PAGE: usize = 200;
/// The most records one request returns.
pub const MAX_PAGE: usize = 1000;

fn unauthorized() -> ApiError {
    ApiError::key_required("a valid GLPI Network registration key is required (X-Registration-Key)")
}

/// The caller's key, checked as `/info` would: it exists, is neither revoked nor expired, and
/// is not bound to another instance's UID. Anything else is `401`.
async fn access(state: &AppState, req: &HttpRequest) -> Result<KeyState, ApiError> {
    let raw = header(req, "x-registration-key").ok_or_else(unauthorized)?;
    let caller = guard::caller(state, req)?;
    let key = caller
        .parse_key(state, req, raw)
        .await
        .map_err(|e| match e {
            ApiError::Client { .. } => unauthorized(),
            other => other,
        })?;
    let uid = header(req, "x-glpi-network-uid").map(str::to_owned);
    let now = state.clock.now_naive();
    let result = run(&state.db, move |c| key_state::load_state(c, &key)).await;
    let ks = caller.note(state, result).await.map_err(|e| {
        if e.code() == ErrorCode::KeyNotFound {
            unauthorized()
        } else {
            e
        }
    })?;
    ks.usable_by(uid.as_deref(), now)
        .map_err(|_| unauthorized())?;
    Ok(ks)
}

/// Whether this key may download a plugin that requires `required` offers.
fn unlocks(state: &AppState, ks: &KeyState, required: Option<&[String]>) -> bool {
    match required {
        None => true,
        Some(list) => {
            ks.subscription.is_running(state.clock.now().date_naive())
                && list.contains(&ks.subscription.offer)
        }
    }
}

/// A commercial plugin's archive needs a valid license of that plugin held by the caller's UID
/// (`403 license_required` otherwise, DESIGN §11.1); other plugins pass.
async fn license_gate(state: &AppState, req: &HttpRequest, plugin: &str) -> Result<(), ApiError> {
    let uid = header(req, "x-glpi-network-uid").map(str::to_owned);
    let now = state.clock.now_naive();
    let plugin = plugin.to_owned();
    let allowed = run(&state.db, move |c| {
        let commercial = crate::db::plugin_terms::find(c, &plugin)?.is_some_and(|t| t.commercial);
        match (commercial, uid) {
            (false, _) => Ok(true),
            (true, None) => Ok(false),
            (true, Some(uid)) => crate::db::licenses::unlocked(c, &plugin, &uid, now),
        }
    })
    .await?;
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            ErrorCode::LicenseRequired,
            "this plugin is commercial: it needs a valid license activated for this instance's UID (X-Glpi-Network-Uid)",
        ))
    }
}

/// Parses `X-Range: a-b` (inclusive, 0-based).
fn range(req: &HttpRequest) -> Result<(usize, usize), ApiError> {
    let Some(raw) = header(req, "x-range") else {
        return Ok((0, DEFAULT_PAGE - 1));
    };
    let bad = || ApiError::bad_request("X-Range must be `start-end` with start <= end");
    let (a, b) = raw.split_once('-').ok_or_else(bad)?;
    let (a, b): (usize, usize) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a > b {
        return Err(bad());
    }
    Ok((a, b.min(a.saturating_add(MAX_PAGE - 1))))
}

/// The GLPI version the request comes from (`User-Agent: GLPI/<x.y.z> (...)`), if it names one.
fn glpi_version(req: &HttpRequest) -> Option<Version> {
    header(req, "user-agent").and_then(compat::glpi_version)
}

/// Every plugin (those with `tag` when given), each with the versions the key unlocks and the
/// caller's GLPI version (`glpi`; every version when `None`) is compatible with.
async fn records(
    state: &web::Data<AppState>,
    ks: &KeyState,
    tag: Option<String>,
    glpi: Option<Version>,
) -> Result<Vec<PluginRecord>, ApiError> {
    let (all, terms) = run(&state.db, |c| {
        Ok((plugins::all(c)?, crate::db::plugin_terms::all(c)?))
    })
    .await?;
    Ok(all
        .into_iter()
        .map(|(row, mut versions)| {
            let show = unlocks(state, ks, catalogue::required_offers(&row).as_deref());
            versions.retain(|v| compat::compatible(v.compatibility.as_deref(), glpi.as_ref()));
            catalogue::record(
                &row,
                &versions,
                &state.public_url,
                show,
                terms.get(&row.key),
            )
        })
        .filter(|r| {
            tag.as_ref()
                .is_none_or(|t| r.tags.iter().any(|x| &x.key == t))
        })
        .collect())
}

fn page(records: Vec<PluginRecord>, (a, b): (usize, usize)) -> HttpResponse {
    let slice: Vec<PluginRecord> = records.into_iter().skip(a).take(b - a + 1).collect();
    HttpResponse::Ok().json(slice)
}

/// `GET {MP}plugins`: the versions each plugin lists are those compatible with the caller's
/// GLPI version.
pub async fn list_plugins(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ks = access(&state, &req).await?;
    let r = range(&req)?;
    let glpi = glpi_version(&req);
    Ok(page(records(&state, &ks, None, glpi).await?, r))
}

/// `GET {MP}tags/{tag}/plugin`: versions filtered as in `plugins`.
pub async fn tag_plugins(
    state: web::Data<AppState>,
    req: HttpRequest,
    tag: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ks = access(&state, &req).await?;
    let r = range(&req)?;
    let glpi = glpi_version(&req);
    Ok(page(
        records(&state, &ks, Some(tag.into_inner()), glpi).await?,
        r,
    ))
}

/// `GET {MP}tags/top`: the ten most used tags.
pub async fn top_tags(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ks = access(&state, &req).await?;
    let mut counts: Vec<(String, String, usize)> = Vec::new();
    for r in records(&state, &ks, None, None).await? {
        for t in r.tags {
            match counts.iter_mut().find(|(k, _, _)| *k == t.key) {
                Some(c) => c.2 += 1,
                None => counts.push((t.key, t.tag, 1)),
            }
        }
    }
    counts.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let body: Vec<_> = counts
        .into_iter()
        .take(10)
        .map(|(key, tag, _)| json!({"key": key, "tag": tag}))
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

/// `GET {MP}plugin/{key}/download/{version}`: counts a download.
pub async fn count_download(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    access(&state, &req).await?;
    let (key, _version) = path.into_inner();
    let found = run(&state.db, move |c| plugins::count_download(c, &key)).await?;
    if !found {
        return Err(ApiError::not_found("no such plugin"));
    }
    Ok(HttpResponse::Ok().json(json!({})))
}

/// `GET {MP}archives/<key>-<version>.tar.gz`: the archive, for a key whose running offer is
/// in the plugin's `required_offers` (or any valid key for a free plugin).
pub async fn archive(
    state: web::Data<AppState>,
    req: HttpRequest,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ks = access(&state, &req).await?;
    let file = file.into_inner();
    let (key, num) =
        parse_archive_name(&file).ok_or_else(|| ApiError::not_found("no such archive"))?;
    let (key, num) = (key.to_owned(), num.to_owned());
    let k2 = key.clone();
    let row = run(&state.db, move |c| plugins::find(c, &k2))
        .await?
        .ok_or_else(|| ApiError::not_found("no such plugin"))?;
    if !unlocks(&state, &ks, catalogue::required_offers(&row).as_deref()) {
        return Err(ApiError::forbidden(
            ErrorCode::OfferRequired,
            "this plugin is a GLPI Network exclusive: it needs a running subscription to one of its required offers",
        ));
    }
    license_gate(&state, &req, &row.key).await?;
    let bytes = run(&state.db, move |c| plugins::archive(c, &key, &num))
        .await?
        .ok_or_else(|| ApiError::not_found("no such version"))?;
    Ok(HttpResponse::Ok()
        .content_type("application/gzip")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{file}\""),
        ))
        .body(bytes))
}
