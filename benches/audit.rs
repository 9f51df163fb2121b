//! Audit-log benchmark: prints figures, asserts nothing about time.
//!
//! 1. The cost of a `/setup`-shaped state change (lock the settings row, update it,
//!    commit) with its audit entry versus without, as a ratio (goal ≤ 1.5×): one
//!    connection in sequence, and 8 connections on 8 communities at once.
//! 2. The same change with 8 connections on ONE community (the chain's worst case).
//! 3. Chain verification throughput (goal ≥ 100,000 entries/s).
//!
//! Both variants run as the daemon does: as the tenant role, in a transaction scoped
//! to the community (row-level security in force).
//!
//! Run: `GUILDOPS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
//! cargo bench --bench audit`. It creates its own database and drops it at the end.

use std::time::{Duration, Instant};

use guildops::audit::{self, Actor, NewEntry};
use guildops::db::tenant;
use serde_json::json;
use serenity::all::UserId;
use sqlx::PgPool;
use uuid::Uuid;

mod common;
use common::BenchDb;

const CHANGES: usize = 2_000;
const WORKERS: usize = 8;
const VERIFY_ENTRIES: i64 = 100_000;

#[tokio::main]
async fn main() {
    let db = BenchDb::create(WORKERS as u32).await;
    let pool = db.app.clone();
    let mut communities = Vec::new();
    for _ in 0..WORKERS {
        communities.push(db.community().await);
    }
    // Warm up connections, plans and the chain heads.
    run(&pool, &communities, 200, true).await;
    run(&pool, &communities, 200, false).await;
    compare(&pool, &communities[..1], "1 connection, 1 community ").await;
    compare(&pool, &communities, "8 connections, 8 communities").await;
    let one = vec![communities[0]; WORKERS];
    compare(&pool, &one, "8 connections, 1 community ").await;
    verification(&pool, db.community().await).await;
    db.drop().await;
}

/// Alternates the two variants three times and prints the best rate of each.
async fn compare(pool: &PgPool, communities: &[Uuid], label: &str) {
    let (mut plain, mut audited) = (0f64, 0f64);
    for _ in 0..3 {
        plain = plain.max(run(pool, communities, CHANGES, false).await);
        audited = audited.max(run(pool, communities, CHANGES, true).await);
    }
    println!(
        "state change, {label}: without audit {plain:>7.0}/s, with audit {audited:>7.0}/s, cost ratio {:.2}x",
        plain / audited
    );
}

/// `total` changes spread over one task per entry of `communities`; changes per second.
async fn run(pool: &PgPool, communities: &[Uuid], total: usize, with_audit: bool) -> f64 {
    let per_task = total / communities.len();
    let started = Instant::now();
    let tasks: Vec<_> = communities
        .iter()
        .map(|&community| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    change(&pool, community, i, with_audit).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("bench task");
    }
    (per_task * communities.len()) as f64 / started.elapsed().as_secs_f64()
}

/// The shape of `community::update_settings`, with or without its audit entry.
async fn change(pool: &PgPool, community: Uuid, i: usize, with_audit: bool) {
    let mut tx = tenant::begin(pool, community).await.expect("begin");
    let before: Option<String> = sqlx::query_scalar(
        "select welcome_message from community_settings where community_id = $1 for update",
    )
    .bind(community)
    .fetch_one(&mut *tx)
    .await
    .expect("lock");
    let after = format!("Welcome #{i}!");
    sqlx::query("update community_settings set welcome_message = $2, updated_at = now() where community_id = $1")
        .bind(community)
        .bind(&after)
        .execute(&mut *tx)
        .await
        .expect("update");
    if with_audit {
        let mut e = NewEntry::new(
            community,
            Actor::User(UserId::new(42)),
            "settings.updated",
            format!("community:{community}"),
        );
        e.before = Some(json!({ "welcome_message": before }));
        e.after = Some(json!({ "welcome_message": after }));
        e.correlation_id = Some(format!("bench:{i}"));
        audit::record(&mut tx, e).await.expect("record");
    }
    tx.commit().await.expect("commit");
}

/// Fills one community's chain with `VERIFY_ENTRIES` and times `audit::verify`.
async fn verification(pool: &PgPool, community: Uuid) {
    for batch in 0..VERIFY_ENTRIES / 1_000 {
        let mut tx = tenant::begin(pool, community).await.expect("begin");
        for i in 0..1_000 {
            let mut e = NewEntry::new(
                community,
                Actor::System("bench"),
                "settings.updated",
                format!("community:{community}"),
            );
            e.before = Some(
                json!({ "welcome_message": format!("old {batch}/{i}"), "moderator_roles": ["1", "2"] }),
            );
            e.after = Some(
                json!({ "welcome_message": format!("new {batch}/{i}"), "moderator_roles": ["1", "2", "3"] }),
            );
            audit::record(&mut tx, e).await.expect("record");
        }
        tx.commit().await.expect("commit");
    }
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let report = audit::verify(pool, community).await.expect("verify");
        best = best.min(started.elapsed());
        assert!(report.is_intact(), "{report}");
    }
    println!(
        "verify: {VERIFY_ENTRIES} entries in {:.0} ms = {:.0} entries/s (best of 3)",
        best.as_secs_f64() * 1e3,
        VERIFY_ENTRIES as f64 / best.as_secs_f64()
    );
}
