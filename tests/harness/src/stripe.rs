//! A fake Stripe API for end-to-end tests, and a builder of signed webhook events.
//!
//! [`FakeStripe`] serves, on loopback, the few endpoints guildops calls (products,
//! prices, Checkout sessions, billing-portal sessions, subscription retrieve and
//! update) in
//! Stripe's wire format: `application/x-www-form-urlencoded` requests with bracketed
//! keys (`metadata[k]=v`, `line_items[0][price]=…`), a `Bearer` secret key, JSON
//! objects shaped like Stripe's own fixtures (`stripe-openapi/fixtures3.json` under
//! `$GUILDOPS_SHARED_DIR/fixtures/stripe`, overlaid with the request's values), and
//! Stripe's error body. async-stripe reaches it through `ClientBuilder::url(..)`.
//!
//! [`Events`] wraps an object in an event envelope and signs it the way Stripe does
//! (`t=…,v1=HMAC-SHA256(secret, "t.body")`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The secret key the fake accepts unless told otherwise.
pub const SECRET_KEY: &str = "sk_test_guildops_fake";
/// The webhook signing secret tests use.
pub const WEBHOOK_SECRET: &str = "whsec_guildops_test";

/// Where the shared fixtures are: `$GUILDOPS_SHARED_DIR/fixtures/stripe` (default
/// `../shared` beside the checkout). Panics with a clear message when absent.
pub fn fixtures_dir() -> PathBuf {
    let shared = std::env::var("GUILDOPS_SHARED_DIR")
        .unwrap_or_else(|_| format!("{}/../../../shared", env!("CARGO_MANIFEST_DIR")));
    let dir = PathBuf::from(shared).join("fixtures/stripe");
    assert!(
        dir.join("stripe-openapi/fixtures3.json").is_file(),
        "the Stripe fixtures are missing: expected {} (set GUILDOPS_SHARED_DIR to the shared folder)",
        dir.display()
    );
    dir
}

/// Stripe's sample object for a resource (`"subscription"`, `"checkout.session"`, …).
pub fn fixture(resource: &str) -> Value {
    static ALL: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        let path = fixtures_dir().join("stripe-openapi/fixtures3.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("fixtures3.json is JSON")
    });
    all["resources"][resource].clone()
}

/// A captured event envelope (`supabase-stripe-sync-engine/<name>.json`).
pub fn captured_event(name: &str) -> Value {
    let path = fixtures_dir().join(format!("supabase-stripe-sync-engine/{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("captured event is JSON")
}

/// Wraps `object` in an event envelope of `kind`, created at `created` (Unix seconds).
pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    let mut envelope = fixture("event");
    envelope["id"] = json!(id);
    envelope["type"] = json!(kind);
    envelope["created"] = json!(created);
    envelope["api_version"] = json!("2026-09-30.clover");
    envelope["data"] = json!({ "object": object });
    envelope
}

/// The `Stripe-Signature` header for `body` signed with `secret` at `timestamp`.
pub fn sign(body: &str, secret: &str, timestamp: i64) -> String {
    stripe_webhook::Webhook::generate_test_header(body, secret, Some(timestamp))
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct StripeRequest {
    pub method: String,
    pub path: String,
    /// Decoded form fields, bracketed keys as sent (`metadata[k]`).
    pub form: BTreeMap<String, String>,
    pub status: u16,
}

#[derive(Default)]
struct State_ {
    next: u64,
    products: BTreeMap<String, Value>,
    prices: BTreeMap<String, Value>,
    sessions: BTreeMap<String, Value>,
    subscriptions: BTreeMap<String, Value>,
    last_session: Option<String>,
    requests: Vec<StripeRequest>,
}

/// The fake. Cheap to clone.
#[derive(Clone)]
pub struct FakeStripe {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State_>>,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        fixtures_dir();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Stripe on loopback");
        let fake = FakeStripe {
            addr: listener.local_addr().expect("addr"),
            state: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    /// `http://127.0.0.1:PORT/`: give it to `stripe.api_base`.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn requests(&self) -> Vec<StripeRequest> {
        self.lock().requests.clone()
    }

    pub fn session(&self, id: &str) -> Option<Value> {
        self.lock().sessions.get(id).cloned()
    }

    /// The newest Checkout session created.
    pub fn last_session(&self) -> Option<Value> {
        let st = self.lock();
        let id = st.last_session.as_ref()?;
        st.sessions.get(id).cloned().map(strip_private)
    }

    pub fn subscription(&self, id: &str) -> Option<Value> {
        self.lock().subscriptions.get(id).cloned()
    }

    pub fn price(&self, id: &str) -> Option<Value> {
        self.lock().prices.get(id).cloned()
    }

    /// The member paid: the session completes, a customer and an active subscription
    /// exist (carrying the session's `subscription_data[metadata]`). Returns the
    /// completed session object.
    pub fn complete_checkout(&self, session_id: &str) -> Value {
        let mut st = self.lock();
        st.next += 1;
        let n = st.next;
        let mut session = st.sessions.get(session_id).cloned().expect("known session");
        let price_id = session["_price"].as_str().unwrap_or_default().to_owned();
        let price = st.prices.get(&price_id).cloned().unwrap_or_else(|| {
            let mut p = fixture("price");
            p["id"] = json!(price_id);
            p
        });
        let customer = session["customer"]
            .as_str()
            .map_or_else(|| format!("cus_fake{n}"), str::to_owned);
        let sub_id = format!("sub_fake{n}");
        let mut sub = subscription_object(&sub_id, &customer, &price, "active");
        sub["metadata"] = session["_subscription_metadata"].clone();
        st.subscriptions.insert(sub_id.clone(), sub);
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        session["customer"] = json!(customer);
        session["subscription"] = json!(sub_id);
        st.sessions.insert(session_id.to_owned(), session.clone());
        strip_private(session)
    }

    /// Changes a stored subscription (its status, say) and returns the new object.
    pub fn update_subscription(&self, id: &str, change: impl FnOnce(&mut Value)) -> Value {
        let mut st = self.lock();
        let sub = st.subscriptions.get_mut(id).expect("known subscription");
        change(sub);
        sub.clone()
    }
}

/// A subscription shaped like Stripe's fixture, for one price.
pub fn subscription_object(id: &str, customer: &str, price: &Value, status: &str) -> Value {
    let now = now();
    let mut sub = fixture("subscription");
    sub["id"] = json!(id);
    sub["customer"] = json!(customer);
    sub["status"] = json!(status);
    sub["cancel_at_period_end"] = json!(false);
    sub["cancel_at"] = Value::Null;
    sub["canceled_at"] = Value::Null;
    sub["ended_at"] = Value::Null;
    sub["created"] = json!(now);
    sub["start_date"] = json!(now);
    sub["metadata"] = json!({});
    let mut item = sub["items"]["data"][0].clone();
    item["id"] = json!(format!("si_{id}"));
    item["subscription"] = json!(id);
    item["price"] = price.clone();
    item["current_period_start"] = json!(now);
    item["current_period_end"] = json!(now + 30 * 86_400);
    sub["items"]["data"] = json!([item]);
    sub["items"]["url"] = json!(format!("/v1/subscription_items?subscription={id}"));
    sub
}

/// Fields the fake keeps for itself on stored objects start with `_`.
fn strip_private(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !k.starts_with('_'));
    }
    v
}

fn form_pairs(body: &[u8]) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// `prefix[key]=v` fields as a JSON object (`metadata[...]`).
fn map_of(form: &BTreeMap<String, String>, prefix: &str) -> Value {
    let start = format!("{prefix}[");
    let mut out = serde_json::Map::new();
    for (k, v) in form {
        if let Some(rest) = k.strip_prefix(&start)
            && let Some(key) = rest.strip_suffix(']')
            && !key.contains('[')
        {
            out.insert(key.to_owned(), json!(v));
        }
    }
    Value::Object(out)
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"type": "invalid_request_error", "message": message}});
    (status, axum::Json(body)).into_response()
}

async fn handle(State(fake): State<FakeStripe>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let authorized = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {SECRET_KEY}").as_str());
    let body: Bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let form = form_pairs(&body);
    let (status, response) = if authorized {
        route(&fake, &method, &path, &form)
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Err("Invalid API Key provided".to_owned()),
        )
    };
    fake.lock().requests.push(StripeRequest {
        method: method.to_string(),
        path,
        form,
        status: status.as_u16(),
    });
    match response {
        Ok(v) => (status, axum::Json(strip_private(v))).into_response(),
        Err(message) => error(status, &message),
    }
}

type Routed = (StatusCode, Result<Value, String>);

fn route(
    fake: &FakeStripe,
    method: &Method,
    path: &str,
    form: &BTreeMap<String, String>,
) -> Routed {
    let mut st = fake.lock();
    st.next += 1;
    let n = st.next;
    let now = now();
    let ok = |v: Value| (StatusCode::OK, Ok(v));
    let missing = |what: &str| (StatusCode::NOT_FOUND, Err(format!("No such {what}")));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "products"]) => {
            let Some(name) = form.get("name") else {
                return (
                    StatusCode::BAD_REQUEST,
                    Err("Missing required param: name.".into()),
                );
            };
            let mut p = fixture("product");
            p["id"] = json!(format!("prod_fake{n}"));
            p["name"] = json!(name);
            p["description"] = json!(form.get("description"));
            p["metadata"] = map_of(form, "metadata");
            p["created"] = json!(now);
            p["default_price"] = Value::Null;
            st.products.insert(format!("prod_fake{n}"), p.clone());
            ok(p)
        }
        ("POST", ["v1", "prices"]) => {
            let product = form.get("product").cloned().unwrap_or_default();
            if !st.products.contains_key(&product) {
                return missing("product");
            }
            let mut p = fixture("price");
            p["id"] = json!(format!("price_fake{n}"));
            p["product"] = json!(product);
            p["currency"] = json!(form.get("currency").cloned().unwrap_or_default());
            let amount: i64 = form
                .get("unit_amount")
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            p["unit_amount"] = json!(amount);
            p["unit_amount_decimal"] = json!(amount.to_string());
            p["recurring"]["interval"] = json!(
                form.get("recurring[interval]")
                    .cloned()
                    .unwrap_or_else(|| "month".into())
            );
            p["metadata"] = map_of(form, "metadata");
            p["created"] = json!(now);
            st.prices.insert(format!("price_fake{n}"), p.clone());
            ok(p)
        }
        ("GET", ["v1", "prices", id]) => match st.prices.get(*id) {
            Some(p) => ok(p.clone()),
            None => missing("price"),
        },
        ("POST", ["v1", "checkout", "sessions"]) => {
            let price = form
                .get("line_items[0][price]")
                .cloned()
                .unwrap_or_default();
            if !st.prices.contains_key(&price) {
                return missing("price");
            }
            if form.get("mode").map(String::as_str) != Some("subscription") {
                return (
                    StatusCode::BAD_REQUEST,
                    Err("mode must be subscription here".into()),
                );
            }
            let id = format!("cs_test_fake{n}");
            let mut s = fixture("checkout.session");
            s["id"] = json!(id);
            s["object"] = json!("checkout.session");
            s["mode"] = json!("subscription");
            s["status"] = json!("open");
            s["payment_status"] = json!("unpaid");
            s["url"] = json!(format!("https://checkout.stripe.test/c/pay/{id}"));
            s["client_reference_id"] = json!(form.get("client_reference_id"));
            s["customer"] = json!(form.get("customer"));
            s["success_url"] = json!(form.get("success_url"));
            s["cancel_url"] = json!(form.get("cancel_url"));
            s["metadata"] = map_of(form, "metadata");
            s["created"] = json!(now);
            s["subscription"] = Value::Null;
            s["_price"] = json!(price);
            s["_subscription_metadata"] = map_of(form, "subscription_data[metadata]");
            st.sessions.insert(id.clone(), s.clone());
            st.last_session = Some(id);
            ok(s)
        }
        ("POST", ["v1", "billing_portal", "sessions"]) => {
            let Some(customer) = form.get("customer") else {
                return (
                    StatusCode::BAD_REQUEST,
                    Err("Missing required param: customer.".into()),
                );
            };
            let mut s = fixture("billing_portal.session");
            s["id"] = json!(format!("bps_fake{n}"));
            s["customer"] = json!(customer);
            s["return_url"] = json!(form.get("return_url"));
            s["url"] = json!(format!("https://billing.stripe.test/p/session/bps_fake{n}"));
            s["created"] = json!(now);
            s["flow"] = Value::Null;
            ok(s)
        }
        ("GET", ["v1", "subscriptions", id]) => match st.subscriptions.get(*id) {
            Some(s) => ok(s.clone()),
            None => missing("subscription"),
        },
        ("POST", ["v1", "subscriptions", id]) => match st.subscriptions.get_mut(*id) {
            Some(s) => {
                if let Some(flag) = form.get("cancel_at_period_end") {
                    s["cancel_at_period_end"] = json!(flag == "true");
                }
                ok(s.clone())
            }
            None => missing("subscription"),
        },
        _ => (
            StatusCode::NOT_FOUND,
            Err(format!("Unrecognized request URL ({method} {path})")),
        ),
    }
}
