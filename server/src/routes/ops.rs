//! Operations: liveness and readiness.

use crate::app::AppState;
use crate::db;
use crate::error::ApiError;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match db::run(&state.pool, db::ping).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Ok(HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"})))
        }
    }
}
