//! Outbox throughput and latency, printed (not a timed test), against the fake Discord
//! with zero latency, in three phases:
//! - drain: N message jobs enqueued with no worker running, then claimed + applied +
//!   completed by the workers (the queue's own rate, with a backlog);
//! - steady state: N more enqueued by 8 concurrent callers while the workers run, timed
//!   from the first enqueue until the last job is done (enqueue + claim + apply +
//!   complete at once, as the daemon sees it). The goal (≥ 1,000 jobs/s) is
//!   compared against this figure;
//! - the pickup latency of one job enqueued into an idle queue (NOTIFY → worker → request).
//!
//! Needs PostgreSQL at GUILDOPS_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres).
//! Run: `cargo bench --bench jobs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use guildops::config::JobsConfig;
use guildops::db::tenant;
use guildops::discord::effects::Executor;
use guildops::jobs::{self, Runtime};
use guildops::outbox::{self, Job, NewJob};
use guildops_harness::FakeDiscord;
use serenity::all::ChannelId;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod common;
use common::BenchDb;

const JOBS: usize = 3000;
const SAMPLES: usize = 100;
const WORKERS: usize = 8;

#[tokio::main]
async fn main() {
    let db = BenchDb::create(10).await;
    let pool = db.app.clone();
    let (community, _) = db.community().await;
    let discord = FakeDiscord::start().await;
    let guild = discord.add_guild("Bench");
    let channel = ChannelId::new(guild.general_channel);

    let started = Instant::now();
    enqueue_batch(&pool, community, channel, 0, JOBS).await;
    let enqueue_secs = started.elapsed().as_secs_f64();

    let config = JobsConfig {
        workers: WORKERS,
        discord_requests_per_sec: 1_000_000,
        ..JobsConfig::default()
    };
    let executor = Arc::new(Executor::new(
        &discord.base_url(),
        discord.token(),
        config.discord_requests_per_sec,
    ));
    let runtime = Runtime::new(&pool, executor, jobs::scheduled::Handlers::new(), config);
    let stop = CancellationToken::new();
    let workers = tokio::spawn(jobs::run(runtime, stop.clone()));
    let drain = Instant::now();
    wait_until_done(&db.owner, JOBS as i64).await;
    let drain_secs = drain.elapsed().as_secs_f64();

    // Steady state: the workers are running (and idle) while the same number arrives.
    let steady = Instant::now();
    enqueue_batch(&pool, community, channel, JOBS, JOBS).await;
    let steady_enqueue_secs = steady.elapsed().as_secs_f64();
    wait_until_done(&db.owner, 2 * JOBS as i64).await;
    let steady_secs = steady.elapsed().as_secs_f64();

    let latencies = pickup_latencies(&pool, community, &discord, channel).await;
    stop.cancel();
    let _ = workers.await;
    db.drop().await;

    let rate = |secs: f64| JOBS as f64 / secs;
    println!(
        "jobs: {WORKERS} workers, fake Discord in-process with zero latency, {JOBS} jobs per phase"
    );
    println!(
        "  enqueue alone:  {JOBS} in {enqueue_secs:.2} s = {:.0}/s (one durable transaction each, 8 concurrent callers)",
        rate(enqueue_secs)
    );
    println!(
        "  drain:          {JOBS} claimed+applied+completed from a backlog in {drain_secs:.2} s = {:.0} jobs/s",
        rate(drain_secs)
    );
    println!(
        "  steady state:   {JOBS} enqueued while the workers ran, all done in {steady_secs:.2} s = {:.0} jobs/s \
         (enqueue side {:.0}/s) <- compared with the goal, >= 1,000 jobs/s",
        rate(steady_secs),
        rate(steady_enqueue_secs)
    );
    println!(
        "  idle pickup latency over {SAMPLES} jobs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal: p99 <= 1 s)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
}

fn message(community: Uuid, channel: ChannelId, n: usize) -> NewJob {
    let job = Job::SendMessage {
        channel_id: channel,
        content: format!("bench {n}"),
    };
    NewJob::new(
        Some(community),
        format!("bench-{n}-{}", Uuid::new_v4()),
        job,
    )
}

/// Jobs `first..first + n`, one durable transaction per job, as a domain would, from 8
/// concurrent callers (gateway events and commands arrive concurrently in the daemon too).
async fn enqueue_batch(pool: &PgPool, community: Uuid, channel: ChannelId, first: usize, n: usize) {
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..8 {
        let pool = pool.clone();
        callers.spawn(async move {
            for i in (first + caller..first + n).step_by(8) {
                let mut tx = tenant::begin(&pool, community).await.expect("tx");
                outbox::enqueue(&mut tx, message(community, channel, i))
                    .await
                    .expect("enqueue");
                tx.commit().await.expect("commit");
            }
        });
    }
    while callers.join_next().await.is_some() {}
}

async fn wait_until_done(pool: &PgPool, n: i64) {
    loop {
        let done: i64 = sqlx::query_scalar("select count(*) from jobs where status = 'done'")
            .fetch_one(pool)
            .await
            .expect("count");
        if done >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Enqueue into an idle queue, time until the fake sees the request.
async fn pickup_latencies(
    pool: &PgPool,
    community: Uuid,
    discord: &FakeDiscord,
    channel: ChannelId,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let marker = format!("pickup {i}");
        let job = Job::SendMessage {
            channel_id: channel,
            content: marker.clone(),
        };
        let started = Instant::now();
        let mut tx = tenant::begin(pool, community).await.expect("tx");
        outbox::enqueue(&mut tx, NewJob::new(Some(community), marker.clone(), job))
            .await
            .expect("enqueue");
        tx.commit().await.expect("commit");
        let seen = discord
            .wait_for_request(
                |r| {
                    r.body
                        .as_ref()
                        .is_some_and(|b| b["content"] == marker.as_str())
                },
                Duration::from_secs(10),
            )
            .await;
        assert!(seen.is_some(), "job {i} was never picked up");
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    out
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}
