//! The Stripe webhook's edges: bad deliveries (each with its status, none changing
//! state), unknown types, communities and members, duplicates, secret rotation, the
//! captured older-API-version events, and a replay of 10,000+ deliveries with 30 %
//! duplicates in shuffled order that must end exactly where in-order delivery ends.

use guildops::app::App;
use guildops::community::{self, GuildSnapshot, MemberSnapshot};
use guildops::membership::{self, Interval, Tier, stripe::Stripe};
use guildops_harness::stripe::{self as fake, WEBHOOK_SECRET};
use secrecy::SecretString;
use serde_json::{Value, json};
use serenity::all::{GuildId, RoleId, UserId};
use sqlx::PgPool;
use uuid::Uuid;

use crate::membership::{Paid, evt};
use crate::support::{app_pool, deliver, migrated_database, pool, post_webhook};

async fn community_id(pool: &PgPool) -> Uuid {
    sqlx::query_scalar("select id from communities")
        .fetch_one(pool)
        .await
        .expect("community")
}

/// (events recorded, subscriptions, role jobs): what a delivery may change.
async fn counts(pool: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "select (select count(*) from stripe_events), (select count(*) from subscriptions),
                (select count(*) from jobs where kind in ('add_role', 'remove_role'))",
    )
    .fetch_one(pool)
    .await
    .expect("counts")
}

fn price(id: &str) -> Value {
    let mut p = fake::fixture("price");
    p["id"] = json!(id);
    p
}

fn owned_sub(id: &str, tier: &Tier, community: Option<Uuid>, user: Option<u64>) -> Value {
    let mut sub =
        fake::subscription_object(id, &format!("cus_{id}"), &price(&tier.price_id), "active");
    let mut meta = serde_json::Map::new();
    if let Some(c) = community {
        meta.insert(
            membership::event::META_COMMUNITY.into(),
            json!(c.to_string()),
        );
    }
    if let Some(u) = user {
        meta.insert(membership::event::META_USER.into(), json!(u.to_string()));
    }
    sub["metadata"] = Value::Object(meta);
    sub
}

#[tokio::test]
async fn bad_deliveries_get_their_status_and_change_nothing() {
    let paid = Paid::start().await;
    let alice = paid.member("alice").await;
    let community = community_id(&paid.world.pool).await;
    let (client, addr) = (&paid.client, paid.daemon.http_addr);
    let sub = owned_sub("sub_edge", &paid.tier, Some(community), Some(alice));
    let body = fake::event(
        "evt_edge",
        "customer.subscription.created",
        fake::now(),
        sub,
    )
    .to_string();
    let now = fake::now();
    let good = fake::sign(&body, WEBHOOK_SECRET, now);
    let before = counts(&paid.world.pool).await;

    let forged = body.replace("\"active\"", "\"trialing\"");
    let malformed = "{\"id\": \"evt_x\", \"type\": ";
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    let cases: Vec<(&str, String, Option<String>, u16)> = vec![
        ("forged body", forged, Some(good.clone()), 400),
        (
            "stale timestamp",
            body.clone(),
            Some(fake::sign(&body, WEBHOOK_SECRET, now - 301)),
            400,
        ),
        (
            "wrong secret",
            body.clone(),
            Some(fake::sign(&body, "whsec_wrong", now)),
            400,
        ),
        ("no signature", body.clone(), None, 400),
        (
            "garbage signature",
            body.clone(),
            Some("t=abc,v1=zz".into()),
            400,
        ),
        (
            "malformed JSON",
            malformed.into(),
            Some(fake::sign(malformed, WEBHOOK_SECRET, now)),
            400,
        ),
        (
            "oversized body",
            huge.clone(),
            Some(fake::sign(&huge, WEBHOOK_SECRET, now)),
            413,
        ),
    ];
    for (case, body, sig, want) in cases {
        let (status, _) = post_webhook(client, addr, &body, sig.as_deref()).await;
        assert_eq!(status, want, "{case}");
        assert_eq!(
            counts(&paid.world.pool).await,
            before,
            "{case} changed state"
        );
    }

    // Authentic but not ours to act on: 200, recorded, nothing else.
    let plan = fake::event(&evt(), "plan.created", now, fake::fixture("plan"));
    let stranger = owned_sub(
        "sub_stranger",
        &paid.tier,
        Some(Uuid::now_v7()),
        Some(alice),
    );
    let nobody = owned_sub("sub_nobody", &paid.tier, Some(community), None);
    for (n, event) in [
        plan,
        fake::event(&evt(), "customer.subscription.created", now, stranger),
        fake::event(&evt(), "customer.subscription.created", now, nobody),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(deliver(client, addr, &event).await.0, 200);
        let (events, subs, jobs) = counts(&paid.world.pool).await;
        assert_eq!(
            (events, subs, jobs),
            (before.0 + n as i64 + 1, before.1, before.2)
        );
    }

    // The real thing, during a secret rotation (two v1 signatures), twice.
    let rotated = format!("{good},v1={}", "0".repeat(64));
    let (status, first) = post_webhook(client, addr, &body, Some(&rotated)).await;
    assert_eq!(status, 200);
    assert!(first.contains("applied"), "{first}");
    let (status, second) = post_webhook(client, addr, &body, Some(&good)).await;
    assert_eq!(status, 200);
    assert!(second.contains("duplicate"), "{second}");
    paid.wait_role(alice, true).await;
    let after = counts(&paid.world.pool).await;
    assert_eq!(
        (after.1, after.2),
        (before.1 + 1, before.2 + 1),
        "one subscription, one role job"
    );
    paid.daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn captured_events_of_an_older_api_version_are_handled() {
    let paid = Paid::start().await;
    let bob = paid.member("bob").await;
    let names = [
        "charge_dispute_closed",
        "charge_dispute_created",
        "charge_refunded",
        "checkout_session_completed",
        "customer_deleted",
        "customer_updated",
        "invoice_finalized",
        "invoice_paid",
        "invoice_payment_paid",
        "invoice_voided",
        "subscription_created",
        "subscription_deleted",
        "subscription_updated",
    ];
    let mut ids = std::collections::BTreeSet::new();
    for name in names {
        let event = fake::captured_event(name);
        ids.insert(event["id"].as_str().expect("id").to_owned());
        let (status, body) = deliver(&paid.client, paid.daemon.http_addr, &event).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    let recorded: i64 = sqlx::query_scalar("select count(*) from stripe_events")
        .fetch_one(&paid.world.pool)
        .await
        .expect("events");
    assert_eq!(
        recorded,
        ids.len() as i64,
        "each distinct captured event recorded once"
    );

    // A 2020-03-02 subscription (plan, top-level current_period_end) of ours grants.
    let mut event = fake::captured_event("subscription_created");
    event["id"] = json!(evt());
    let sub = &mut event["data"]["object"];
    sub["plan"]["id"] = json!(paid.tier.price_id);
    sub["items"]["data"][0]["price"]["id"] = json!(paid.tier.price_id);
    sub["items"]["data"][0]["plan"]["id"] = json!(paid.tier.price_id);
    sub["metadata"] = json!({
        membership::event::META_COMMUNITY: community_id(&paid.world.pool).await.to_string(),
        membership::event::META_USER: bob.to_string(),
    });
    assert_eq!(
        deliver(&paid.client, paid.daemon.http_addr, &event).await.0,
        200
    );
    paid.wait_role(bob, true).await;
    paid.daemon.stop().await.expect("stops");
}

// ----- replay ------------------------------------------------------------------------------

const MEMBERS: u64 = 1_600;
const GUILD: u64 = 900_000;
const ROLE: u64 = 777;

/// A small deterministic generator (no extra dependency for shuffling).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn user_of(i: u64) -> u64 {
    10_000 + i
}

/// Each member's lifecycle, in event-time order; four kinds of story.
fn lifecycle(community: Uuid, i: u64, t0: i64) -> Vec<Value> {
    let sub_id = format!("sub_r{i}");
    let customer = format!("cus_r{i}");
    let mut sub = fake::subscription_object(&sub_id, &customer, &price("price_replay"), "active");
    sub["metadata"] = json!({
        membership::event::META_COMMUNITY: community.to_string(),
        membership::event::META_USER: user_of(i).to_string(),
    });
    let snap = |status: &str, cancel: bool| {
        let mut s = sub.clone();
        s["status"] = json!(status);
        s["cancel_at_period_end"] = json!(cancel);
        s
    };
    // Stripe copies the subscription's metadata onto its invoices.
    let inv = |n: u32| {
        let mut v = crate::membership::invoice(&format!("in_r{i}_{n}"), &sub_id, &customer, None);
        v["parent"]["subscription_details"]["metadata"] = sub["metadata"].clone();
        v
    };
    let e = |step: u32, kind: &str, dt: i64, object: Value| {
        fake::event(&format!("evt_r{i}_{step}"), kind, t0 + dt, object)
    };
    let mut events = vec![
        e(0, "customer.subscription.created", 0, snap("active", false)),
        e(1, "invoice.paid", 1, inv(1)),
    ];
    match i % 4 {
        0 => {}
        1 => events.extend([
            e(2, "invoice.payment_failed", 100, inv(2)),
            e(
                3,
                "customer.subscription.updated",
                101,
                snap("past_due", false),
            ),
            e(4, "invoice.payment_failed", 200, inv(2)),
            e(5, "invoice.paid", 300, inv(2)),
            e(
                6,
                "customer.subscription.updated",
                301,
                snap("active", false),
            ),
        ]),
        2 => events.extend([
            e(2, "invoice.payment_failed", 100, inv(2)),
            e(
                3,
                "customer.subscription.updated",
                101,
                snap("past_due", false),
            ),
            e(
                4,
                "customer.subscription.updated",
                400,
                snap("unpaid", false),
            ),
        ]),
        _ => events.extend([
            e(
                2,
                "customer.subscription.updated",
                500,
                snap("active", true),
            ),
            e(
                3,
                "customer.subscription.deleted",
                600,
                snap("canceled", false),
            ),
        ]),
    }
    events
}

type Time = chrono::DateTime<chrono::Utc>;
/// A subscription row as compared: id, status, prices, cancel flag, standing, mark.
type SubState = (
    String,
    String,
    Vec<String>,
    bool,
    Option<Time>,
    Vec<Time>,
    Option<Time>,
);

struct Replay {
    admin: PgPool,
    addr: std::net::SocketAddr,
    client: reqwest::Client,
    community: Uuid,
}

impl Replay {
    async fn start() -> Replay {
        let url = migrated_database().await;
        let admin = pool(&url).await;
        let app_pool = app_pool(&url).await;
        let members = (0..MEMBERS)
            .map(|i| MemberSnapshot {
                user_id: UserId::new(user_of(i)),
                is_bot: false,
                joined_at: None,
                roles: vec![],
            })
            .collect();
        let snapshot = GuildSnapshot {
            guild_id: GuildId::new(GUILD),
            name: "Replay".into(),
            owner_id: UserId::new(1),
            members,
        };
        let (community, _) = community::provision(&app_pool, &snapshot)
            .await
            .expect("provision");
        let tier = Tier {
            id: Uuid::now_v7(),
            name: "Replay".into(),
            description: None,
            role_id: RoleId::new(ROLE),
            product_id: None,
            price_id: "price_replay".into(),
            unit_amount: 500,
            currency: "eur".into(),
            interval: Interval::Month,
            archived_at: None,
            lapse_kicks: false,
        };
        membership::save_new_tier(
            &app_pool,
            GuildId::new(GUILD),
            UserId::new(1),
            &tier,
            chrono::Duration::hours(1),
        )
        .await
        .expect("tier");
        let mut config = guildops::config::Config::default();
        // Never contacted: these events need no API call. Loopback regardless.
        config.stripe.api_base = Some("http://127.0.0.1:9/".into());
        let stripe = Stripe::from_secrets(
            &config.stripe,
            Some(&SecretString::from(fake::SECRET_KEY.to_owned())),
            Some(&SecretString::from(WEBHOOK_SECRET.to_owned())),
        )
        .expect("stripe");
        let app = App::new(app_pool, config).with_stripe(stripe);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, guildops::http::router(app)).await;
        });
        Replay {
            admin,
            addr,
            client: reqwest::Client::new(),
            community: community.id,
        }
    }

    /// Delivers `streams` concurrently, each in its own order; every answer must be 200.
    async fn deliver(&self, streams: Vec<Vec<Value>>) {
        let mut tasks = tokio::task::JoinSet::new();
        for stream in streams {
            let (client, addr) = (self.client.clone(), self.addr);
            tasks.spawn(async move {
                for event in stream {
                    let (status, body) = deliver(&client, addr, &event).await;
                    assert_eq!(status, 200, "{body}");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("delivery task");
        }
    }

    /// Everything the events decide, without the community's own (random) id.
    async fn state(&self) -> Vec<String> {
        let subs: Vec<SubState> = sqlx::query_as(
            "select stripe_subscription_id, status, price_ids, cancel_at_period_end,
                        good_standing_at, failure_times, last_event_at
                   from subscriptions order by 1",
        )
        .fetch_all(&self.admin)
        .await
        .expect("subscriptions");
        let roles: Vec<(i64, i64)> =
            sqlx::query_as("select discord_user_id, discord_role_id from paid_roles order by 1, 2")
                .fetch_all(&self.admin)
                .await
                .expect("paid roles");
        let payments: Vec<(String, String, i64)> =
            sqlx::query_as("select stripe_invoice_id, status, amount from payments order by 1")
                .fetch_all(&self.admin)
                .await
                .expect("payments");
        let mut out: Vec<String> = subs.iter().map(|s| format!("{s:?}")).collect();
        out.extend(roles.iter().map(|r| format!("role {r:?}")));
        out.extend(payments.iter().map(|p| format!("payment {p:?}")));
        out
    }

    /// Role jobs per (member, role), oldest first.
    async fn role_jobs(&self) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "select payload ->> 'user_id', payload ->> 'role_id', kind from jobs
              where kind in ('add_role', 'remove_role') order by payload ->> 'user_id', id",
        )
        .fetch_all(&self.admin)
        .await
        .expect("jobs")
    }
}

#[tokio::test]
async fn replay_with_duplicates_in_shuffled_order_ends_in_the_in_order_state() {
    let t0 = fake::now() - 10_000;
    let in_order = Replay::start().await;
    let shuffled = Replay::start().await;

    // In order: each member's events in time order (members side by side).
    let mut streams: Vec<Vec<Value>> = vec![Vec::new(); 8];
    for i in 0..MEMBERS {
        streams[(i % 8) as usize].extend(lifecycle(in_order.community, i, t0));
    }
    in_order.deliver(streams).await;

    // Shuffled, with 30 % of the deliveries duplicates.
    let mut rng = Lcg(42);
    let mut all: Vec<Value> = (0..MEMBERS)
        .flat_map(|i| lifecycle(shuffled.community, i, t0))
        .collect();
    let unique = all.len();
    let duplicates = unique * 3 / 7;
    for _ in 0..duplicates {
        let pick = all[(rng.next() as usize) % unique].clone();
        all.push(pick);
    }
    for k in (1..all.len()).rev() {
        all.swap(k, (rng.next() as usize) % (k + 1));
    }
    let deliveries = all.len();
    assert!(deliveries >= 10_000, "{deliveries} deliveries");
    let mut streams: Vec<Vec<Value>> = vec![Vec::new(); 8];
    for (k, e) in all.iter().enumerate() {
        streams[k % 8].push(e.clone());
    }
    shuffled.deliver(streams.clone()).await;

    let expected = in_order.state().await;
    assert_eq!(
        shuffled.state().await,
        expected,
        "shuffled delivery ended elsewhere"
    );
    let paid_roles = expected.iter().filter(|l| l.starts_with("role")).count();
    assert_eq!(
        paid_roles,
        (MEMBERS / 2) as usize,
        "kinds 0 and 1 keep the role, 2 and 3 lose it"
    );

    // No role change applied twice: per member and role, adds and removes alternate,
    // starting with an add; and delivering everything again adds nothing at all.
    let jobs = shuffled.role_jobs().await;
    let mut last: std::collections::BTreeMap<(String, String), String> = Default::default();
    for (user, role, kind) in &jobs {
        let prev = last.insert((user.clone(), role.clone()), kind.clone());
        let expected_prev = if kind == "add_role" {
            "remove_role"
        } else {
            "add_role"
        };
        assert!(
            prev.as_deref().is_none_or(|p| p == expected_prev)
                && (prev.is_some() || kind == "add_role"),
            "member {user}: {kind} after {prev:?}"
        );
    }
    shuffled.deliver(streams).await;
    assert_eq!(
        shuffled.role_jobs().await,
        jobs,
        "redelivery enqueued role changes"
    );
    assert_eq!(shuffled.state().await, expected);
}

#[tokio::test]
async fn old_events_are_pruned_on_schedule_and_drift_repair_reschedules_itself() {
    let paid = Paid::start().await;
    let admin = &paid.world.pool;
    let started: String = sqlx::query_scalar(
        "select status from jobs where idempotency_key like 'stripe-events-cleanup:%' order by id limit 1",
    )
    .fetch_one(admin)
    .await
    .expect("the daemon scheduled the clean-up at start");
    assert!(
        ["pending", "running", "done"].contains(&started.as_str()),
        "{started}"
    );
    for (id, age) in [("evt_old", 31), ("evt_recent", 29)] {
        sqlx::query(
            "insert into stripe_events (id, event_type, event_created_at, outcome, payload, received_at)
             values ($1, 'x', now(), 'ignored', '{}', now() - make_interval(days => $2))",
        )
        .bind(id)
        .bind(age)
        .execute(admin)
        .await
        .expect("event");
    }
    let pruned = membership::timers::cleanup_events(&paid.daemon.app.pool, 30)
        .await
        .expect("clean-up");
    assert_eq!(pruned, 1);
    let left: Vec<String> = sqlx::query_scalar("select id from stripe_events order by id")
        .fetch_all(admin)
        .await
        .expect("events");
    assert_eq!(left, vec!["evt_recent".to_owned()]);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let next: i64 = sqlx::query_scalar("select count(*) from jobs where idempotency_key = $1")
        .bind(format!("stripe-events-cleanup:{tomorrow}"))
        .fetch_one(admin)
        .await
        .expect("next");
    assert_eq!(next, 1, "the clean-up schedules its next run");

    let community = community_id(admin).await;
    let reconciles = |admin: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from jobs where idempotency_key like 'reconcile:%' and status = 'pending'",
        )
        .fetch_one(&admin)
        .await
        .expect("reconciles")
    };
    assert_eq!(
        reconciles(admin.clone()).await,
        1,
        "creating a tier scheduled drift repair"
    );
    let changed = membership::timers::reconcile(
        &paid.daemon.app.pool,
        community,
        chrono::Duration::seconds(60),
    )
    .await
    .expect("reconcile");
    assert_eq!(changed, 0, "nothing drifted");
    assert!(
        reconciles(admin.clone()).await >= 1,
        "drift repair schedules its next run"
    );
    paid.daemon.stop().await.expect("stops");
}
