//! The `/_test` routes (test mode only): clock, fixtures, faults, journal, reset.

use crate::app::AppState;
use crate::db::audit::Actor;
use crate::http::client_addr;
use crate::http::error::ApiError;
use crate::testmode::fixtures::{self, Fixtures};
use crate::testmode::{FaultRule, TestMode};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

type Res = Result<HttpResponse, ApiError>;

fn test_mode(state: &AppState) -> Result<Arc<TestMode>, ApiError> {
    state
        .test_mode
        .clone()
        .ok_or_else(|| ApiError::not_found("test mode is off"))
}

/// `{"set": RFC3339}`, `{"advance_seconds": N}` or `{"real": true}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ClockRequest {
    #[serde(default)]
    pub set: Option<DateTime<Utc>>,
    #[serde(default)]
    pub advance_seconds: Option<i64>,
    #[serde(default)]
    pub real: Option<bool>,
}

pub async fn get_clock(state: web::Data<AppState>) -> Res {
    Ok(HttpResponse::Ok().json(json!({"now": state.clock.now()})))
}

pub async fn set_clock(state: web::Data<AppState>, body: web::Json<ClockRequest>) -> Res {
    match (body.set, body.advance_seconds, body.real) {
        (Some(t), None, None) => state.clock.set(t),
        (None, Some(n), None) => state.clock.advance(n),
        (None, None, Some(true)) => state.clock.reset(),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of {\"set\": RFC3339}, {\"advance_seconds\": N}, {\"real\": true}",
            ));
        }
    }
    tracing::warn!(now = %state.clock.now(), "test clock moved");
    Ok(HttpResponse::Ok().json(json!({"now": state.clock.now()})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct FaultsRequest {
    pub rules: Vec<FaultRule>,
}

pub async fn arm_faults(state: web::Data<AppState>, body: web::Json<FaultsRequest>) -> Res {
    let armed = test_mode(&state)?
        .arm(body.into_inner().rules)
        .map_err(ApiError::bad_request)?;
    Ok(HttpResponse::Created().json(json!({"rules": armed})))
}

pub async fn list_faults(state: web::Data<AppState>) -> Res {
    Ok(HttpResponse::Ok().json(json!({"rules": test_mode(&state)?.faults()})))
}

pub async fn clear_faults(state: web::Data<AppState>) -> Res {
    test_mode(&state)?.clear_faults();
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
pub struct JournalQuery {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

pub async fn journal(state: web::Data<AppState>, q: web::Query<JournalQuery>) -> Res {
    let items = test_mode(&state)?.journal(
        q.path.as_deref(),
        q.uid.as_deref(),
        q.key_prefix.as_deref(),
        q.limit
            .unwrap_or(100)
            .clamp(1, crate::testmode::JOURNAL_CAPACITY),
    );
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

/// `POST /_test/fixtures`. The body is read as JSON first: a derived `Deserialize` would also
/// take an array of the fields in order (`[]` would be an empty fixture set), and the document
/// describes an object.
pub async fn load_fixtures(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
) -> Res {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "invalid JSON body: the fixtures are an object",
        ));
    }
    let body: Fixtures = serde_json::from_value(body.into_inner())
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let now = state.clock.now_naive();
    let actor = Actor::new("test", client_addr(&req));
    let loaded =
        crate::http::run(&state.db, move |c| fixtures::load(c, &body, now, &actor)).await?;
    Ok(HttpResponse::Created().json(loaded))
}

pub async fn reset(state: web::Data<AppState>) -> Res {
    let tm = test_mode(&state)?;
    let now = state.clock.now_naive();
    crate::http::run(&state.db, move |c| fixtures::reset(c, now)).await?;
    tm.reset();
    Ok(HttpResponse::NoContent().finish())
}
