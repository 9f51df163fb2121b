//! The door under load, over loopback against the daemon's own HTTP server
//! (`guildops::http::serve`, with connect info, so the invalid-scan limiter sees
//! addresses as it does in production), with durable commits. Printed figures, not a
//! timed test; it asserts nothing about time.
//!
//! Phases, each bounded in time (BENCH_SECS, default 5 s):
//! 1. admissions: 64 clients, each request admits a distinct fresh ticket (RSVPs made
//!    through `events::rsvp` beforehand; their tokens read back from the ticket DMs
//!    waiting in the outbox, the only place a token exists);
//! 2. rejections, duplicate: 8 clients re-scan tickets admitted in phase 1 (the door's
//!    common refusal, and the full database path: lookup, scan record, refused
//!    admission, first-scan time);
//! 3. rejections, invalid: 8 clients scan unknown tokens. The limiter refuses a staff
//!    key or an address after `INVALID_PER_MINUTE` invalid scans a minute (without
//!    touching the database), so to measure the real invalid path each client moves to
//!    a fresh staff key and a fresh 127.x.y.z source address before the limit, which
//!    costs one loopback connect per that many scans, included in the figures;
//! 4. rejections, duplicate again with more doors at once (32 clients), for the rate
//!    the refusal path sustains when its batches fill;
//! 5. the same loads (64 and 8 clients) against a trivial endpoint served by a router
//!    in this bench that does one `select 1` on the same pool, for the ratio.
//!
//! Needs PostgreSQL at GUILDOPS_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).
//! Run: `cargo bench --bench checkin` (BENCH_SECS, BENCH_TICKETS, BENCH_INVALID_KEYS,
//! BENCH_CONNECTIONS, BENCH_ADMIT_CLIENTS, BENCH_REJECT_CLIENTS and
//! BENCH_REJECT_WIDE_CLIENTS adjust it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use guildops::app::App;
use guildops::events::{self, EventFields, NewEvent, Rsvp, checkin::INVALID_PER_MINUTE};
use serenity::all::{ChannelId, GuildId, UserId};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

mod common;
use common::BenchDb;
#[path = "common/load.rs"]
mod load;
use load::Report;

const ORGANIZER: UserId = UserId::new(1);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the phases scan with.
struct Door {
    addr: SocketAddr,
    staff_key: String,
    tokens: Vec<String>,
    /// Fresh staff keys for the invalid phase, each used below the limiter's threshold.
    spare_keys: Vec<String>,
}

#[tokio::main]
async fn main() {
    let secs = Duration::from_secs(env_or("BENCH_SECS", 5));
    let admit_clients = env_or("BENCH_ADMIT_CLIENTS", 64) as usize;
    let reject_clients = env_or("BENCH_REJECT_CLIENTS", 8) as usize;
    let reject_wide_clients = env_or("BENCH_REJECT_WIDE_CLIENTS", 32) as usize;
    let tickets = env_or("BENCH_TICKETS", 15_000).min(100_000) as usize;
    // The daemon's default pool size (`database.max_connections`).
    let connections = env_or("BENCH_CONNECTIONS", 10) as u32;
    let db = BenchDb::create(connections).await;
    let started = Instant::now();
    let (_, guild) = db.community().await;
    let code = make_event(&db.app, guild, tickets).await;
    let tokens = rsvp_all(&db, guild, &code, tickets).await;
    let staff_key = new_key(&db.app, guild, &code).await;
    let per_key = u64::from(INVALID_PER_MINUTE - 1);
    let spare = env_or("BENCH_INVALID_KEYS", 1_500) as usize;
    let mut spare_keys = Vec::with_capacity(spare);
    for _ in 0..spare {
        spare_keys.push(new_key(&db.app, guild, &code).await);
    }
    println!(
        "set-up: {} tickets by RSVP, {} staff keys, in {:.1} s",
        tokens.len(),
        spare + 1,
        started.elapsed().as_secs_f64()
    );

    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = App::new(db.app.clone(), guildops::config::Config::default());
    let server = tokio::spawn(guildops::http::serve(listener, app, stop.clone()));
    let trivial = serve_trivial(db.app.clone(), stop.clone()).await;
    let door = Arc::new(Door {
        addr,
        staff_key,
        tokens,
        spare_keys,
    });

    println!(
        "check-in over loopback, {} s per phase, pool of {connections} connections, durable commits",
        secs.as_secs()
    );
    let admitted = admissions(door.clone(), admit_clients, secs).await;
    let admitted_n = admitted.count("admitted") as usize;
    if admitted_n >= door.tokens.len() {
        println!("(the admissions phase ran out of tickets before its time: raise BENCH_TICKETS)");
    }
    let duplicates = duplicates(door.clone(), admitted_n, reject_clients, secs).await;
    let invalid = invalid(door.clone(), per_key, reject_clients, secs).await;
    let duplicates_wide =
        crate::duplicates(door.clone(), admitted_n, reject_wide_clients, secs).await;
    let trivial_wide = trivial_load(trivial, admit_clients, secs).await;
    let trivial_narrow = trivial_load(trivial, reject_clients, secs).await;

    print_phase(
        "admissions",
        &admitted,
        "admitted",
        "goal ≥ 2,000/s, p99 ≤ 50 ms",
    );
    print_phase(
        "rejections (duplicate: re-scans of admitted tickets)",
        &duplicates,
        "duplicate",
        "goal p99 ≤ 10 ms at 8 clients (the rate: below)",
    );
    print_phase(
        &format!(
            "rejections (invalid: unknown tokens, a fresh staff key and source address every {per_key} scans)"
        ),
        &invalid,
        "invalid",
        "goal p99 ≤ 10 ms at 8 clients (the rate: below)",
    );
    print_phase(
        "rejections (duplicate), more doors at once",
        &duplicates_wide,
        "duplicate",
        "goal ≥ 5,000 rejections/s",
    );
    print_phase("trivial endpoint (one select 1)", &trivial_wide, "ok", "");
    print_phase("trivial endpoint (one select 1)", &trivial_narrow, "ok", "");
    let ratio = |a: &Report, label: &str, t: &Report| 100.0 * a.rate(label) / t.total_rate();
    println!(
        "ratio to the trivial endpoint: admissions {:.0} % (at {admit_clients}), duplicates {:.0} %, invalid {:.0} % (at {reject_clients})",
        ratio(&admitted, "admitted", &trivial_wide),
        ratio(&duplicates, "duplicate", &trivial_narrow),
        ratio(&invalid, "invalid", &trivial_narrow),
    );
    let recorded: i64 =
        sqlx::query_scalar("select count(*) from event_tickets where status = 'checked_in'")
            .fetch_one(&db.owner)
            .await
            .expect("count");
    println!(
        "tickets checked in according to the database: {recorded} (answers said {admitted_n})"
    );
    let scans: i64 = sqlx::query_scalar("select count(*) from event_scans")
        .fetch_one(&db.owner)
        .await
        .expect("count");
    let answered = [&admitted, &duplicates, &invalid, &duplicates_wide]
        .iter()
        .map(|r| r.count("admitted") + r.count("duplicate") + r.count("invalid"))
        .sum::<u64>();
    println!("scans recorded according to the database: {scans} (answered {answered})");

    stop.cancel();
    let _ = server.await;
    db.drop().await;
}

fn print_phase(what: &str, r: &Report, label: &str, goal: &str) {
    println!("{what}, {} clients:", r.clients);
    println!(
        "  {:.0}/s {label} ({} requests in {:.2} s: {}); {}{}{goal}",
        r.rate(label),
        r.requests(),
        r.elapsed.as_secs_f64(),
        r.outcome_line(),
        r.latency_line(),
        if goal.is_empty() { "" } else { "  ← " },
    );
}

/// An event starting in an hour with a seat for every ticket; its code.
async fn make_event(pool: &PgPool, guild: GuildId, seats: usize) -> String {
    let starts_at = Utc::now() + chrono::Duration::hours(1);
    let fields = EventFields {
        title: "Bench night".into(),
        description: String::new(),
        starts_at,
        ends_at: starts_at + chrono::Duration::hours(3),
        timezone: "UTC".into(),
        capacity: seats.max(1) as i32,
        venue: "Loopback".into(),
        tier_id: None,
        reserved_seats: None,
        reserved_until: None,
    };
    let new = NewEvent {
        guild,
        fields,
        tier: None,
        channel: ChannelId::new(777),
        organizer: ORGANIZER,
        correlation_id: None,
    };
    let event = events::create(pool, new).await.expect("create event");
    events::short_id(event.id)
}

/// `count` members RSVP (a few at a time; the event's row lock orders them anyway),
/// and their tokens are read back from the ticket DMs in the outbox.
async fn rsvp_all(db: &BenchDb, guild: GuildId, code: &str, count: usize) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    let lanes = 4;
    for lane in 0..lanes {
        let (pool, code) = (db.app.clone(), code.to_owned());
        tasks.spawn(async move {
            for n in (lane..count).step_by(lanes) {
                let request = Rsvp {
                    guild,
                    code: code.clone(),
                    user: UserId::new(30_000 + n as u64),
                    display_name: format!("Guest {n}"),
                    roles: Vec::new(),
                    correlation_id: None,
                };
                match events::rsvp(&pool, request).await.expect("rsvp") {
                    events::RsvpOutcome::Confirmed(_) => {}
                    other => panic!("every guest gets a seat, not {other:?}"),
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("rsvp lane");
    }
    let contents: Vec<String> = sqlx::query_scalar(
        "select payload->>'content' from jobs where kind = 'send_dm_file' order by id",
    )
    .fetch_all(&db.owner)
    .await
    .expect("ticket DMs");
    contents.iter().filter_map(|c| token_in(c)).collect()
}

/// The token in a ticket DM ("… give this code: `gt_…`").
fn token_in(content: &str) -> Option<String> {
    let start = content.find(events::ticket::TOKEN_PREFIX)?;
    let rest = &content[start..];
    let end = rest.find('`')?;
    Some(rest[..end].to_owned())
}

async fn new_key(pool: &PgPool, guild: GuildId, code: &str) -> String {
    events::staff_key(pool, guild, code, false, ORGANIZER)
        .await
        .expect("staff key")
        .expect("a new key, not a revocation")
}

/// POSTs one scan; the label is the check-in result, or `http NNN` for a refusal.
async fn scan(client: &reqwest::Client, addr: SocketAddr, body: String) -> String {
    let sent = client
        .post(format!("http://{addr}/checkin"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(_) => return "connection error".into(),
    };
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    match body["result"].as_str() {
        Some(result) if status.is_success() => result.to_owned(),
        _ => format!("http {}", status.as_u16()),
    }
}

fn scan_body(token: &str, staff_key: &str, device: usize) -> String {
    serde_json::json!({"token": token, "staff_key": staff_key, "device_id": format!("door-{device}")})
        .to_string()
}

async fn admissions(door: Arc<Door>, clients: usize, limit: Duration) -> Report {
    let states = (0..clients).map(|i| (i, reqwest::Client::new())).collect();
    load::run(states, limit, move |(i, client), n| {
        let door = door.clone();
        async move {
            let Some(token) = door.tokens.get(n as usize) else {
                return ((i, client), None);
            };
            let label = scan(&client, door.addr, scan_body(token, &door.staff_key, i)).await;
            ((i, client), Some(label))
        }
    })
    .await
}

async fn duplicates(door: Arc<Door>, admitted: usize, clients: usize, limit: Duration) -> Report {
    let states = (0..clients).map(|i| (i, reqwest::Client::new())).collect();
    load::run(states, limit, move |(i, client), n| {
        let door = door.clone();
        async move {
            if admitted == 0 {
                return ((i, client), None);
            }
            let token = &door.tokens[n as usize % admitted];
            let label = scan(&client, door.addr, scan_body(token, &door.staff_key, i)).await;
            ((i, client), Some(label))
        }
    })
    .await
}

/// A client of the invalid phase: its connection comes from one source address and
/// scans with one staff key until that pair has made `per_key` scans.
struct Spoofer {
    device: usize,
    client: reqwest::Client,
    key: Option<usize>,
    used: u64,
}

async fn invalid(door: Arc<Door>, per_key: u64, clients: usize, limit: Duration) -> Report {
    let states = (0..clients)
        .map(|device| Spoofer {
            device,
            client: reqwest::Client::new(),
            key: None,
            used: per_key,
        })
        .collect();
    let next_pair = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    load::run(states, limit, move |mut s: Spoofer, n| {
        let (door, next_pair) = (door.clone(), next_pair.clone());
        async move {
            if s.used >= per_key {
                let pair = next_pair.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if pair >= door.spare_keys.len() {
                    return (s, None);
                }
                s.client = reqwest::Client::builder()
                    .local_address(source_address(pair))
                    .build()
                    .expect("client");
                s.key = Some(pair);
                s.used = 0;
            }
            s.used += 1;
            let key = &door.spare_keys[s.key.unwrap_or_default()];
            let token = format!("gt_{n:064x}");
            let label = scan(&s.client, door.addr, scan_body(&token, key, s.device)).await;
            (s, Some(label))
        }
    })
    .await
}

/// Loopback is all of 127.0.0.0/8; 127.1.0.1 onwards are distinct clients to the door.
fn source_address(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (n / 62_500) as u8,
        ((n / 250) % 250) as u8,
        (n % 250 + 1) as u8,
    ))
}

/// A router with one endpoint doing one database round trip on the same pool, served
/// the same way; its address.
async fn serve_trivial(pool: PgPool, stop: CancellationToken) -> SocketAddr {
    async fn one(State(pool): State<PgPool>, _body: axum::body::Bytes) -> StatusCode {
        match sqlx::query("select 1").execute(&pool).await {
            Ok(_) => StatusCode::OK,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    let router = axum::Router::new()
        .route("/one", axum::routing::post(one))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, service)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    addr
}

async fn trivial_load(addr: SocketAddr, clients: usize, limit: Duration) -> Report {
    let states = (0..clients).map(|_| reqwest::Client::new()).collect();
    let body = scan_body(&format!("gt_{:064x}", 0), "gsk_none", 0);
    load::run(states, limit, move |client: reqwest::Client, _| {
        let body = body.clone();
        async move {
            let sent = client
                .post(format!("http://{addr}/one"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let label = match sent {
                Ok(r) if r.status().is_success() => "ok".to_owned(),
                Ok(r) => format!("http {}", r.status().as_u16()),
                Err(_) => "connection error".to_owned(),
            };
            (client, Some(label))
        }
    })
    .await
}
