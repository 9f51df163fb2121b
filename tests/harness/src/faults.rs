//! Fault injection for REST: scripted Discord errors and 429 rate limits.
//!
//! Faults are matched in the order they were added, after authentication and before
//! routing, so an injected failure never changes the world. Each fault fires `times`
//! times and then disappears.

use axum::http::{HeaderName, HeaderValue};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
enum Kind {
    Fail { status: u16, code: u32 },
    RateLimit { retry_after: f64, global: bool },
}

/// One injected fault (see `FakeDiscord::fail_requests` / `rate_limit`).
#[derive(Clone, Debug)]
pub struct Fault {
    method: String,
    path_contains: String,
    kind: Kind,
    remaining: usize,
}

/// What the REST layer sends instead of routing the request.
pub(crate) struct FaultResponse {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Fault {
    pub(crate) fn fail(method: &str, path: &str, status: u16, code: u32, times: usize) -> Self {
        Fault {
            method: method.to_string(),
            path_contains: path.to_string(),
            kind: Kind::Fail { status, code },
            remaining: times,
        }
    }

    pub(crate) fn rate_limit(
        method: &str,
        path: &str,
        retry_after: f64,
        global: bool,
        times: usize,
    ) -> Self {
        Fault {
            method: method.to_string(),
            path_contains: path.to_string(),
            kind: Kind::RateLimit {
                retry_after,
                global,
            },
            remaining: times,
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        // Gateway discovery only fails when a test names it: serenity answers a failed
        // `GET /gateway` by connecting to the real Discord, which a test must never do.
        let discovery = path.ends_with("/gateway") || path.ends_with("/gateway/bot");
        if discovery && !self.path_contains.contains("gateway") {
            return false;
        }
        self.remaining > 0
            && (self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && path.contains(&self.path_contains)
    }

    fn response(&self) -> FaultResponse {
        match self.kind {
            Kind::Fail { status, code } => FaultResponse {
                status,
                body: json!({"message": error_message(status, code), "code": code}),
                headers: Vec::new(),
            },
            Kind::RateLimit {
                retry_after,
                global,
            } => {
                let h = |name: &'static str, value: String| {
                    (
                        HeaderName::from_static(name),
                        HeaderValue::from_str(&value).expect("ascii header value"),
                    )
                };
                let reset = chrono::Utc::now().timestamp_millis() as f64 / 1000.0 + retry_after;
                let mut headers = vec![
                    // `retry-after` is whole seconds on Discord; the body has the float.
                    h("retry-after", format!("{}", retry_after.ceil() as u64)),
                    h("x-ratelimit-limit", "5".into()),
                    h("x-ratelimit-remaining", "0".into()),
                    h("x-ratelimit-reset", format!("{reset:.3}")),
                    h("x-ratelimit-reset-after", format!("{retry_after:.3}")),
                    h(
                        "x-ratelimit-bucket",
                        "fakebucket0000000000000000000000".into(),
                    ),
                    h(
                        "x-ratelimit-scope",
                        if global { "global" } else { "user" }.into(),
                    ),
                ];
                if global {
                    headers.push(h("x-ratelimit-global", "true".into()));
                }
                FaultResponse {
                    status: 429,
                    body: json!({
                        "message": "You are being rate limited.",
                        "retry_after": retry_after,
                        "global": global,
                        // Not in Discord's docs' example, but in its API spec; serenity
                        // parses error bodies as {code, message}.
                        "code": 0,
                    }),
                    headers,
                }
            }
        }
    }
}

/// Take one shot of the first fault matching the request, if any.
pub(crate) fn take(faults: &mut Vec<Fault>, method: &str, path: &str) -> Option<FaultResponse> {
    let i = faults.iter().position(|f| f.matches(method, path))?;
    faults[i].remaining -= 1;
    let resp = faults[i].response();
    if faults[i].remaining == 0 {
        faults.remove(i);
    }
    Some(resp)
}

/// Discord's message text for the codes tests commonly inject.
pub(crate) fn error_message(status: u16, code: u32) -> String {
    match code {
        0 => match status {
            401 => "401: Unauthorized".into(),
            403 => "403: Forbidden".into(),
            404 => "404: Not Found".into(),
            405 => "405: Method Not Allowed".into(),
            502 => "502: Bad Gateway".into(),
            s if s >= 500 => "500: Internal Server Error".into(),
            s => format!("{s}: Error"),
        },
        10003 => "Unknown Channel".into(),
        10004 => "Unknown Guild".into(),
        10007 => "Unknown Member".into(),
        10008 => "Unknown Message".into(),
        10011 => "Unknown Role".into(),
        10013 => "Unknown User".into(),
        10015 => "Unknown Webhook".into(),
        10026 => "Unknown Ban".into(),
        10062 => "Unknown interaction".into(),
        40060 => "Interaction has already been acknowledged.".into(),
        50001 => "Missing Access".into(),
        50005 => "Cannot edit a message authored by another user".into(),
        160004 => "A thread has already been created for this message".into(),
        50007 => "Cannot send messages to this user".into(),
        50013 => "Missing Permissions".into(),
        50035 => "Invalid Form Body".into(),
        _ => format!("Error {code}"),
    }
}
