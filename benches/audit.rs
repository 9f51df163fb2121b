//! Audit-log benchmark: prints figures, asserts nothing about time.
//!
//! 1. The cost of a `/setup`-shaped state change (lock the settings row, update it,
//!    commit) with its audit entry versus without, as a ratio (goal ≤ 1.5×): one
//!    connection in sequence, and 8 connections on 8 communities at once.
//! 2. The same change with 8 connections on ONE community (the chain's worst case).
//! 3. Chain verification throughput (goal ≥ 100,000 entries/s).
//!
//! Run: `GUILDOPS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
//! cargo bench --bench audit`. It creates and uses its own database.

use std::time::{Duration, Instant};

use guildops::audit::{self, Actor, NewEntry};
use serde_json::json;
use serenity::all::UserId;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

const CHANGES: usize = 2_000;
const WORKERS: usize = 8;
const VERIFY_ENTRIES: i64 = 100_000;

#[tokio::main]
async fn main() {
    let pool = database().await;
    let communities = communities(&pool, WORKERS).await;
    // Warm up connections, plans and the chain heads.
    run(&pool, &communities, 200, true).await;
    run(&pool, &communities, 200, false).await;
    compare(&pool, &communities[..1], "1 connection, 1 community ").await;
    compare(&pool, &communities, "8 connections, 8 communities").await;
    let one = vec![communities[0]; WORKERS];
    compare(&pool, &one, "8 connections, 1 community ").await;
    verification(&pool).await;
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
    let mut tx = pool.begin().await.expect("begin");
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
async fn verification(pool: &PgPool) {
    let community = communities(pool, 1).await[0];
    let mut conn = pool.acquire().await.expect("conn");
    for batch in 0..VERIFY_ENTRIES / 1_000 {
        let mut tx = conn.begin().await.expect("begin");
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
    drop(conn);
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

async fn database() -> PgPool {
    let admin = std::env::var("GUILDOPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("admin connection");
    let name = format!("guildops_bench_{}", Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("database in url");
    let pool = PgPoolOptions::new()
        .max_connections(WORKERS as u32)
        .connect(&format!("{base}/{name}"))
        .await
        .expect("bench pool");
    guildops::db::MIGRATOR.run(&pool).await.expect("migrate");
    println!("database {name} (left in place for inspection)");
    pool
}

async fn communities(pool: &PgPool, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = Uuid::now_v7();
        let guild = (id.as_u128() as u64 >> 2) as i64;
        sqlx::query(
            "insert into communities (id, slug, name, discord_guild_id, owner_discord_id)
             values ($1, $2, 'Bench', $3, 1)",
        )
        .bind(id)
        .bind(format!("bench-{}", id.simple()))
        .bind(guild)
        .execute(pool)
        .await
        .expect("community");
        sqlx::query("insert into community_settings (community_id) values ($1)")
            .bind(id)
            .execute(pool)
            .await
            .expect("settings");
        ids.push(id);
    }
    ids
}
