//! The HTTP side server: health, readiness, metrics, Stripe webhooks and the door
//! check-in endpoints and page. [`router`] builds it without binding so tests can drive it;
//! [`serve`] binds and shuts down gracefully.

mod checkin;
mod health;
mod stripe;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;

pub fn router(app: App) -> Router {
    let http = &app.config.http;
    let timeout = Duration::from_secs(http.request_timeout_secs);
    let body_limit = http.body_limit_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/webhooks/stripe", post(stripe::webhook))
        .route("/checkin", get(checkin::page).post(checkin::scan))
        .route("/checkin/batch", post(checkin::batch))
        .layer(middleware::from_fn(record_request))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(app)
}

/// Serves until `stop` is cancelled, then stops accepting and finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: App,
    stop: CancellationToken,
) -> std::io::Result<()> {
    // Connect info gives the door endpoint the peer address it rate-limits by.
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

/// Counts requests by route template (not raw path: ids would explode cardinality).
async fn record_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("guildops_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("guildops_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
