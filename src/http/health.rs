//! Liveness, readiness and the Prometheus scrape endpoint.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::app::App;

/// Alive: the process answers. Says nothing about dependencies, on purpose, so an
/// orchestrator does not restart the daemon for a database blip.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready: the database answers and the gateway is connected.
pub async fn readyz(State(app): State<App>) -> impl IntoResponse {
    let database = crate::db::ping(&app.pool).await;
    let gateway = app.status.gateway_connected();
    let status = if database && gateway {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"database": database, "gateway": gateway})),
    )
}

pub async fn metrics() -> impl IntoResponse {
    let body = crate::telemetry::metrics().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
