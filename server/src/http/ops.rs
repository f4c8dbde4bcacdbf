//! Operations: liveness and readiness.

use crate::app::AppState;
use crate::db;
use crate::http::error::ApiError;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /.well-known/jwks.json`: every public key that may still verify a live token.
pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now_naive();
    let signer = state.signer.clone();
    super::run(&state.db, move |c| signer.refresh_if_stale(c, now)).await?;
    Ok(HttpResponse::Ok().json(state.signer.jwks()))
}

/// `GET /readyz`: the database answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match super::run(&state.db, |c| db::ping(c)).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Ok(HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"})))
        }
    }
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(depth) = super::run(&state.db, |c| crate::db::webhooks::depth(c)).await {
        state.metrics.webhook_outbox_depth.set(depth);
    }
    let pool = state.db.pool().state();
    let m = &state.metrics;
    m.pool
        .with_label_values(&["idle"])
        .set(i64::from(pool.idle_connections));
    m.pool
        .with_label_values(&["in_use"])
        .set(i64::from(pool.connections - pool.idle_connections));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(m.render())
}
