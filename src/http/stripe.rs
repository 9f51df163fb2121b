//! `POST /webhooks/stripe`: verify the raw body against `Stripe-Signature` (any `v1`
//! under any configured secret, 300 s tolerance) before reading it, then hand the event
//! to `membership::webhook`. A failed verification is answered 400 and logged once; an
//! authentic event that typed parsing rejects (another API version) is still handled,
//! from its raw JSON. Answers 200 for every authentic event guildops has recorded,
//! including duplicates and types it ignores, so Stripe stops retrying them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;
use stripe_webhook::{Webhook, WebhookError};

use crate::app::App;
use crate::membership::event::{self, Fact};
use crate::membership::stripe::Stripe;
use crate::membership::webhook;

pub async fn webhook(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(stripe) = app
        .stripe
        .as_deref()
        .filter(|s| !s.webhook_secrets().is_empty())
    else {
        return refuse(StatusCode::NOT_FOUND, "payments are not configured");
    };
    let Some(signature) = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return refuse(StatusCode::BAD_REQUEST, "missing Stripe-Signature header");
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "body is not UTF-8");
    };
    if let Err(why) = verify(stripe, text, signature) {
        return refuse(StatusCode::BAD_REQUEST, why);
    }
    let envelope = match event::envelope(&body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "authentic Stripe webhook with an unreadable body");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let fact = event::fact(&envelope);
    let fetched = match &fact {
        Fact::CheckoutCompleted(c) => match &c.subscription {
            Some(id) => match stripe.subscription(id).await {
                Ok(s) => Some(s),
                // The binding is still recorded; `customer.subscription.*` brings the state.
                Err(e) => {
                    tracing::warn!(error = %e, stripe.subscription = %id, "cannot fetch the subscription of a completed Checkout");
                    None
                }
            },
            None => None,
        },
        _ => None,
    };
    match webhook::ingest(&app.pool, &envelope, &fact, fetched.as_ref()).await {
        Ok(outcome) => (
            StatusCode::OK,
            Json(json!({"received": true, "outcome": outcome.as_str()})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, stripe.event_id = %envelope.id, "Stripe webhook failed; Stripe will retry");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "internal error"})),
            )
                .into_response()
        }
    }
}

/// Authentic under some configured secret. A body the SDK cannot parse as a typed
/// event passed the signature and time checks first (they come before parsing).
fn verify(stripe: &Stripe, text: &str, signature: &str) -> Result<(), &'static str> {
    let mut why = "signature does not match";
    for secret in stripe.webhook_secrets() {
        match Webhook::construct_event(text, signature, secret.expose_secret()) {
            Ok(_) | Err(WebhookError::BadParse(_)) => return Ok(()),
            Err(WebhookError::BadTimestamp(_)) => {
                why = "signature timestamp outside the 300 s tolerance"
            }
            Err(WebhookError::BadHeader(_)) => why = "malformed Stripe-Signature header",
            Err(_) => {}
        }
    }
    Err(why)
}

fn refuse(status: StatusCode, why: &str) -> Response {
    tracing::warn!(
        status = status.as_u16(),
        reason = why,
        "Stripe webhook refused"
    );
    (status, Json(json!({"error": why}))).into_response()
}
