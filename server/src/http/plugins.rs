//! The plugin catalogue under `/v1/admin/plugins` (bearer admin token).

use super::created;
use super::run;
use crate::app::AppState;
use crate::db::{self, Transact, catalogue, plugins};
use crate::domain::catalogue::{PluginInput, PluginRecord, archive_path};
use crate::http::auth::AdminAuth;
use crate::http::dto::{ListQuery, Page};
use crate::http::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

type Res = Result<HttpResponse, ApiError>;

/// A version as the admin API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    pub plugin_key: String,
    pub num: String,
    pub stability: String,
    pub download_url: String,
    pub archive_sha256: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The GLPI versions this version is offered to; `null`: every GLPI.
    pub compatibility: Option<String>,
}

fn record_of(
    state: &AppState,
    key: String,
) -> impl FnOnce(&mut db::Conn) -> db::Result<PluginRecord> + use<> {
    let public = state.public_url.clone();
    move |c| {
        let (row, versions) = plugins::get(c, &key)?;
        let terms = db::plugin_terms::find(c, &key)?;
        Ok(catalogue::record(
            &row,
            &versions,
            &public,
            true,
            terms.as_ref(),
        ))
    }
}

pub async fn create_plugin(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<PluginInput>,
) -> Res {
    let now = state.clock.now_naive();
    let row = run(&state.db, move |c| catalogue::create(c, &body, now)).await?;
    let rec = run(&state.db, record_of(&state, row.key)).await?;
    Ok(created(&rec))
}

pub async fn list_plugins(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<crate::http::query::PageParams>,
) -> Res {
    let q: ListQuery = q.into_inner().into();
    let public = state.public_url.clone();
    let (all, terms) = run(&state.db, |c| {
        Ok((plugins::all(c)?, db::plugin_terms::all(c)?))
    })
    .await?;
    let limit = q.limit() as usize;
    let rest: Vec<_> = all
        .into_iter()
        .filter(|(r, _)| {
            q.cursor
                .as_ref()
                .is_none_or(|c| r.key.as_str() > c.as_str())
        })
        .collect();
    let more = rest.len() > limit;
    let items: Vec<PluginRecord> = rest
        .iter()
        .take(limit)
        .map(|(r, v)| catalogue::record(r, v, &public, true, terms.get(&r.key)))
        .collect();
    let next_cursor = if more {
        items.last().map(|r| r.key.clone())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

pub async fn get_plugin(_: AdminAuth, state: web::Data<AppState>, key: web::Path<String>) -> Res {
    Ok(HttpResponse::Ok().json(run(&state.db, record_of(&state, key.into_inner())).await?))
}

pub async fn update_plugin(
    _: AdminAuth,
    state: web::Data<AppState>,
    key: web::Path<String>,
    body: web::Json<PluginInput>,
) -> Res {
    let now = state.clock.now_naive();
    let key = key.into_inner();
    let k = key.clone();
    run(&state.db, move |c| catalogue::update(c, &k, &body, now)).await?;
    Ok(HttpResponse::Ok().json(run(&state.db, record_of(&state, key)).await?))
}

pub async fn delete_plugin(
    _: AdminAuth,
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Res {
    let deleted = run(&state.db, move |c| {
        c.write(db::Touches::Anything, |c| plugins::delete(c, &key))
    })
    .await?;
    if !deleted {
        return Err(ApiError::not_found("no such plugin"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// A new version: the JSON body, or the query string beside an archive body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct VersionQuery {
    /// Required: 1 to 64 of `A-Z`, `a-z`, `0-9`, `.`, `-` or `_`.
    #[serde(default)]
    #[schema(value_type = String, required = true, pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub num: Option<String>,
    /// `stable` when absent; GLPI hides other stabilities unless pre-releases are enabled.
    #[serde(default)]
    #[schema(pattern = r"^[a-z]{1,16}$")]
    pub stability: Option<String>,
    /// A requirement on the GLPI version in Cargo's semver syntax (`~10.0`, `>=10.0.10, <12`):
    /// the marketplace offers this version only to the GLPI versions that meet it. Absent or
    /// blank: every GLPI. An invalid requirement is `400 invalid_request`.
    #[serde(default)]
    #[schema(example = ">=10.0.10, <12")]
    pub compatibility: Option<String>,
}

/// Reads a body up to `limit` bytes; `413 payload_too_large` beyond.
async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    use futures::StreamExt;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(format!(
                "archives are limited to {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The new version's fields and uploaded archive: a JSON body (no archive), or the query
/// string beside an archive body.
fn version_input(
    req: &HttpRequest,
    query: VersionQuery,
    body: Vec<u8>,
) -> Result<(VersionQuery, Option<Vec<u8>>), ApiError> {
    let ctype = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ctype.as_str() {
        "application/json" => {
            let v: VersionQuery = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
            Ok((v, None))
        }
        "application/gzip" | "application/x-gzip" | "application/octet-stream" => {
            Ok((query, Some(body)))
        }
        _ => Err(ApiError::bad_request(
            "send the archive with Content-Type: application/gzip, or JSON {\"num\", \"stability\", \"compatibility\"}",
        )),
    }
}

/// `POST /v1/admin/plugins/{key}/versions`: the archive as the body
/// (`Content-Type: application/gzip`, `?num=&stability=&compatibility=`), or a JSON
/// `{"num", "stability", "compatibility"}` body and the server generates the archive.
pub async fn add_version(
    _: AdminAuth,
    state: web::Data<AppState>,
    req: HttpRequest,
    key: web::Path<String>,
    q: web::Query<VersionQuery>,
    payload: web::Payload,
) -> Res {
    let body = read_limited(payload, crate::domain::archive::MAX_ARCHIVE_BYTES).await?;
    let (v, archive) = version_input(&req, q.into_inner(), body)?;
    let num = v
        .num
        .ok_or_else(|| ApiError::bad_request("num is required"))?;
    let now = state.clock.now_naive();
    let key = key.into_inner();
    let row = run(&state.db, move |c| {
        let spec = catalogue::VersionSpec {
            num: &num,
            stability: v.stability.as_deref(),
            compatibility: v.compatibility.as_deref(),
        };
        catalogue::add_version(c, &key, spec, archive, now)
    })
    .await?;
    Ok(created(&VersionView {
        download_url: format!(
            "{}{}",
            state.public_url,
            archive_path(&row.plugin_key, &row.num)
        ),
        plugin_key: row.plugin_key,
        num: row.num,
        stability: row.stability,
        archive_sha256: row.archive_sha256,
        created_at: row.created_at.and_utc(),
        compatibility: row.compatibility,
    }))
}
