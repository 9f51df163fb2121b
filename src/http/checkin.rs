//! The door: `POST /checkin` (one live scan), `POST /checkin/batch` (an offline
//! device's scans) and `GET /checkin` (the page door staff open on a phone). Parses
//! and answers; `events::checkin` decides. Bodies are read as bytes so malformed JSON
//! gets the same small JSON error as every other refusal. Nothing here logs a token,
//! a key or an address.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::app::App;
use crate::events::checkin::{self, CheckinError, Door, Scan};

/// The page, with its script and style inline (no CDN, nothing else to fetch).
const PAGE: &str = include_str!("assets/checkin.html");

/// The peer's address when the server was started with connect info (the daemon is);
/// a router driven without it (a test's `oneshot`) has none, which is not an error.
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveScan {
    token: String,
    staff_key: String,
    device_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    staff_key: String,
    device_id: String,
    scans: Vec<BatchScan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchScan {
    scan_id: Uuid,
    token: String,
    scanned_at: DateTime<Utc>,
}

pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(PAGE),
    )
        .into_response()
}

pub async fn scan(State(app): State<App>, ClientIp(ip): ClientIp, body: Bytes) -> Response {
    let live: LiveScan = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("malformed request: {e}")),
    };
    let door = Door {
        staff_key: live.staff_key,
        device_id: live.device_id,
        ip,
    };
    let scan = Scan {
        token: live.token,
        scan_id: None,
        scanned_at: None,
    };
    match checkin::checkin(&app.pool, &app.checkin, &app.refusals, &door, scan).await {
        Ok(recorded) => {
            metrics::counter!("guildops_checkin_scans_total", "result" => recorded.outcome.as_str())
                .increment(1);
            Json(recorded).into_response()
        }
        Err(e) => failed(e),
    }
}

pub async fn batch(State(app): State<App>, ClientIp(ip): ClientIp, body: Bytes) -> Response {
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("malformed request: {e}")),
    };
    let door = Door {
        staff_key: batch.staff_key,
        device_id: batch.device_id,
        ip,
    };
    let scans = batch
        .scans
        .into_iter()
        .map(|s| Scan {
            token: s.token,
            scan_id: Some(s.scan_id),
            scanned_at: Some(s.scanned_at),
        })
        .collect();
    match checkin::checkin_batch(&app.pool, &app.checkin, &door, scans).await {
        Ok(results) => Json(json!({"results": results})).into_response(),
        Err(e) => failed(e),
    }
}

fn failed(e: CheckinError) -> Response {
    match e {
        CheckinError::RateLimited => refuse(StatusCode::TOO_MANY_REQUESTS, &e.to_string()),
        CheckinError::UnknownStaffKey => refuse(StatusCode::UNAUTHORIZED, &e.to_string()),
        CheckinError::BadRequest(m) => refuse(StatusCode::BAD_REQUEST, &m),
        CheckinError::Database(_) | CheckinError::NotRecorded(_) => {
            let error_id = Uuid::new_v4().simple().to_string()[..8].to_owned();
            tracing::error!(error.id = %error_id, error = %e, "check-in failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "the check-in service is unavailable; try again", "error_id": error_id})),
            )
                .into_response()
        }
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, Json(json!({"error": why}))).into_response()
}
