//! Audit-log benchmark: prints figures, asserts nothing about time.
//!
//! 1. The cost of a `/setup`-shaped state change (lock the settings row, update it,
//!    commit) with its audit entry versus without, as the median of 5 interleaved
//!    rounds' ratios (goal ≤ 1.5×), with the daemon's sealer running beside the
//!    writers as it does in production. After each
//!    audited run it prints how long after the last commit every entry was sealed.
//!    Next to it, the previous design for comparison: the entry sealed inside the
//!    change's transaction (one statement that upserts the community's chain head,
//!    holding its row lock to commit, and inserts the sealed entry).
//!    Runs: one connection in sequence, 8 connections on 8 communities, and 8
//!    connections on ONE community (the chain's worst case).
//! 2. Sealing throughput of a 100,000-entry backlog, then chain verification of it
//!    (goal ≥ 100,000 entries/s).
//!
//! Every variant runs as the daemon does: as the tenant role, in a transaction scoped
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
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod common;
use common::BenchDb;

const CHANGES: usize = 4_000;
const ROUNDS: usize = 5;
const WORKERS: usize = 8;
const VERIFY_ENTRIES: i64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    Audited,
    SealedInTransaction,
}

#[tokio::main]
async fn main() {
    let db = BenchDb::create(WORKERS as u32 + 2).await;
    let pool = db.app.clone();
    let mut communities = Vec::new();
    let mut in_tx_communities = Vec::new();
    for _ in 0..WORKERS {
        communities.push(db.community().await.0);
        // The previous design's entries are never sealed by the sealer: own chains.
        in_tx_communities.push(db.community().await.0);
    }
    let stop = CancellationToken::new();
    let sealer = tokio::spawn(audit::seal::run(pool.clone(), stop.clone()));
    // Warm up connections, plans and the chain heads.
    for variant in [
        Variant::Plain,
        Variant::Audited,
        Variant::SealedInTransaction,
    ] {
        run(&pool, &communities, &in_tx_communities, 400, variant).await;
    }
    compare(
        &pool,
        &communities[..1],
        &in_tx_communities[..1],
        "1 connection, 1 community ",
    )
    .await;
    compare(
        &pool,
        &communities,
        &in_tx_communities,
        "8 connections, 8 communities",
    )
    .await;
    let one = vec![communities[0]; WORKERS];
    let one_in_tx = vec![in_tx_communities[0]; WORKERS];
    compare(&pool, &one, &one_in_tx, "8 connections, 1 community ").await;
    stop.cancel();
    sealer.await.expect("sealer");
    verification(&pool, db.community().await.0).await;
    db.drop().await;
}

/// Runs the variants back to back `ROUNDS` times and prints each variant's median
/// rate and the median of the rounds' ratios (a ratio taken within one round, so a
/// checkpoint or a neighbour's load that slows a whole round cancels out), with the
/// range of the ratios, and the worst time from an audited run's last commit to its
/// last seal.
async fn compare(pool: &PgPool, communities: &[Uuid], in_tx: &[Uuid], label: &str) {
    let (mut plain, mut audited, mut sealed_in_tx) = (Vec::new(), Vec::new(), Vec::new());
    let mut lag = Duration::ZERO;
    for _ in 0..ROUNDS {
        plain.push(run(pool, communities, in_tx, CHANGES, Variant::Plain).await);
        audited.push(run(pool, communities, in_tx, CHANGES, Variant::Audited).await);
        lag = lag.max(sealed_after(pool, communities).await);
        sealed_in_tx.push(
            run(
                pool,
                communities,
                in_tx,
                CHANGES,
                Variant::SealedInTransaction,
            )
            .await,
        );
    }
    let ratios = |of: &[f64]| -> Vec<f64> { plain.iter().zip(of).map(|(p, a)| p / a).collect() };
    let (async_ratios, in_tx_ratios) = (ratios(&audited), ratios(&sealed_in_tx));
    println!(
        "state change, {label}: without audit {:>6.0}/s, with audit {:>6.0}/s, cost ratio {:.2}x (range {}; goal <= 1.5x), all sealed {:.0} ms after the last commit; sealed in the transaction {:>6.0}/s, ratio {:.2}x (range {})",
        median(&plain),
        median(&audited),
        median(&async_ratios),
        range(&async_ratios),
        lag.as_secs_f64() * 1e3,
        median(&sealed_in_tx),
        median(&in_tx_ratios),
        range(&in_tx_ratios),
    );
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn range(values: &[f64]) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    format!("{lo:.2}-{hi:.2}")
}

/// How long until nothing of `communities` awaits its seal.
async fn sealed_after(pool: &PgPool, communities: &[Uuid]) -> Duration {
    let started = Instant::now();
    for &community in communities {
        loop {
            let mut tx = tenant::begin(pool, community).await.expect("begin");
            let pending: i64 =
                sqlx::query_scalar("select count(*) from audit_log where seq is null")
                    .fetch_one(&mut *tx)
                    .await
                    .expect("pending");
            tx.rollback().await.expect("rollback");
            if pending == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    started.elapsed()
}

/// `total` changes spread over one task per entry of `communities`; changes per second.
async fn run(
    pool: &PgPool,
    communities: &[Uuid],
    in_tx: &[Uuid],
    total: usize,
    variant: Variant,
) -> f64 {
    let per_task = total / communities.len();
    let started = Instant::now();
    let targets = if variant == Variant::SealedInTransaction {
        in_tx
    } else {
        communities
    };
    let tasks: Vec<_> = targets
        .iter()
        .map(|&community| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    change(&pool, community, i, variant).await;
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
async fn change(pool: &PgPool, community: Uuid, i: usize, variant: Variant) {
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
    let mut e = NewEntry::new(
        community,
        Actor::User(UserId::new(42)),
        "settings.updated",
        format!("community:{community}"),
    );
    e.before = Some(json!({ "welcome_message": before }));
    e.after = Some(json!({ "welcome_message": after }));
    e.correlation_id = Some(format!("bench:{i}"));
    match variant {
        Variant::Plain => {}
        Variant::Audited => {
            audit::record(&mut tx, e).await.expect("record");
        }
        Variant::SealedInTransaction => sealed_in_transaction(&mut tx, e).await,
    }
    tx.commit().await.expect("commit");
}

/// The previous design's append, kept here only as the comparison: the head's row
/// lock is taken and held to commit, and PostgreSQL hashes the entry (an encoding of
/// the same size as the real canonical one) in the same statement.
async fn sealed_in_transaction(tx: &mut sqlx::PgConnection, e: NewEntry) {
    let actor = e.actor.to_string();
    let canonical = serde_json::to_vec(&json!({
        "community": e.community_id, "actor": actor, "action": e.action, "target": e.target,
        "before": e.before, "after": e.after, "correlation": e.correlation_id,
    }))
    .expect("encode");
    sqlx::query(
        "with head as (
            insert into audit_chain_heads as h (community_id, last_seq, last_hash)
            values ($2, 1, sha256($10::bytea || int8send(1::bigint) || $11::bytea))
            on conflict (community_id) do update
               set last_seq = h.last_seq + 1,
                   last_hash = sha256(h.last_hash || int8send(h.last_seq + 1) || $11::bytea),
                   updated_at = now()
            returning last_seq, last_hash
         )
         insert into audit_log (id, community_id, seq, occurred_at, actor, action, target,
                                before, after, correlation_id, hash)
         select $1, $2, head.last_seq, $3, $4, $5, $6, $7, $8, $9, head.last_hash from head",
    )
    .bind(Uuid::now_v7())
    .bind(e.community_id)
    .bind(chrono::Utc::now())
    .bind(&actor)
    .bind(e.action)
    .bind(&e.target)
    .bind(e.before.map(sqlx::types::Json))
    .bind(e.after.map(sqlx::types::Json))
    .bind(e.correlation_id)
    .bind([0u8; 32].as_slice())
    .bind(canonical)
    .execute(tx)
    .await
    .expect("append sealed");
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
    let started = Instant::now();
    let sealed = audit::seal(pool, community).await.expect("seal");
    let took = started.elapsed();
    println!(
        "seal: a backlog of {sealed} entries in {:.0} ms = {:.0} entries/s",
        took.as_secs_f64() * 1e3,
        sealed as f64 / took.as_secs_f64()
    );
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
