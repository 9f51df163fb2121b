//! Stripe webhook ingest over loopback against the real router, printed (not a timed
//! test): C concurrent senders post signed, distinct `customer.subscription.updated`
//! and `invoice.paid` events for many members for a fixed time; each is verified,
//! recorded and applied in one durable transaction (role jobs and audit entries
//! included). Prints events/s and the p50/p99/max acknowledgement latency.
//! Needs PostgreSQL at GUILDOPS_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).
//! Run: `cargo bench --bench webhooks` (BENCH_SECS and BENCH_SENDERS adjust it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use guildops::app::App;
use guildops::membership::{self, Interval, Tier, event, stripe::Stripe};
use guildops_harness::stripe::{self as fake, SECRET_KEY, WEBHOOK_SECRET};
use secrecy::SecretString;
use serde_json::json;
use serenity::all::{RoleId, UserId};
use uuid::Uuid;

mod common;
use common::BenchDb;

const MEMBERS: u64 = 2_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let secs = env_or("BENCH_SECS", 10);
    let senders = env_or("BENCH_SENDERS", 16);
    let db = BenchDb::create(env_or("BENCH_CONNECTIONS", 10) as u32).await;
    let community = setup(&db).await;
    let mut config = guildops::config::Config::default();
    // Never contacted by these events; loopback regardless.
    config.stripe.api_base = Some("http://127.0.0.1:9/".into());
    let stripe = Stripe::from_secrets(
        &config.stripe,
        Some(&SecretString::from(SECRET_KEY.to_owned())),
        Some(&SecretString::from(WEBHOOK_SECRET.to_owned())),
    )
    .expect("stripe");
    let app = App::new(db.app.clone(), config).with_stripe(stripe);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, guildops::http::router(app)).await;
    });

    // Bodies are built before the clock starts (Stripe builds them, not us); each is
    // signed when sent, as the signature's timestamp must be fresh.
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..secs * 2_000)
            .map(|n| event_for(community, n).to_string())
            .collect(),
    );
    let seq = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..senders {
        let (seq, bodies) = (seq.clone(), bodies.clone());
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(n).cloned() else {
                    break;
                };
                let sig = fake::sign(&body, WEBHOOK_SECRET, fake::now());
                let sent = Instant::now();
                let ok = client
                    .post(format!("http://{addr}/webhooks/stripe"))
                    .header("stripe-signature", sig)
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                latencies.push(sent.elapsed());
                failures += u64::from(!ok);
            }
            (latencies, failures)
        });
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    while let Some(done) = tasks.join_next().await {
        let (l, f) = done.expect("sender");
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let recorded: i64 = sqlx::query_scalar("select count(*) from stripe_events")
        .fetch_one(&db.owner)
        .await
        .expect("count");
    println!("webhook ingest: {senders} senders for {secs} s, {MEMBERS} members, durable commits");
    println!(
        "  {} events acknowledged ({failures} failed), {recorded} recorded: {:.0} events/s",
        latencies.len(),
        latencies.len() as f64 / elapsed
    );
    println!(
        "  ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal: ≥ 1,000 events/s, p99 ≤ 200 ms)",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*latencies.last().expect("some"))
    );
    server.abort();
    db.drop().await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Event `n`: alternately a subscription update and a paid invoice, spread over members,
/// with event times that keep increasing (each applies, none is stale).
fn event_for(community: Uuid, n: u64) -> serde_json::Value {
    let member = n % MEMBERS;
    let sub_id = format!("sub_b{member}");
    let created = fake::now() - 100_000 + (n / MEMBERS) as i64;
    let meta = json!({
        event::META_COMMUNITY: community.to_string(),
        event::META_USER: (20_000 + member).to_string(),
    });
    if n.is_multiple_of(2) {
        let mut price = fake::fixture("price");
        price["id"] = json!("price_bench");
        let mut sub =
            fake::subscription_object(&sub_id, &format!("cus_b{member}"), &price, "active");
        sub["metadata"] = meta;
        fake::event(
            &format!("evt_b{n}"),
            "customer.subscription.updated",
            created,
            sub,
        )
    } else {
        let mut inv = fake::fixture("invoice");
        inv["id"] = json!(format!("in_b{n}"));
        inv["customer"] = json!(format!("cus_b{member}"));
        inv["parent"] = json!({"subscription_details": {"subscription": sub_id, "metadata": meta}});
        fake::event(&format!("evt_b{n}"), "invoice.paid", created, inv)
    }
}

async fn setup(db: &BenchDb) -> Uuid {
    let (community, guild) = db.community().await;
    sqlx::query(
        "insert into community_members (community_id, discord_user_id, joined_at)
         select $1, 20000 + g, now() from generate_series(0, $2 - 1) as g",
    )
    .bind(community)
    .bind(MEMBERS as i64)
    .execute(&db.owner)
    .await
    .expect("members");
    let tier = Tier {
        id: Uuid::now_v7(),
        name: "Bench".into(),
        description: None,
        role_id: RoleId::new(4242),
        product_id: None,
        price_id: "price_bench".into(),
        unit_amount: 500,
        currency: "eur".into(),
        interval: Interval::Month,
        archived_at: None,
        lapse_kicks: false,
    };
    membership::save_new_tier(
        &db.app,
        guild,
        UserId::new(1),
        &tier,
        chrono::Duration::hours(1),
    )
    .await
    .expect("tier");
    community
}
