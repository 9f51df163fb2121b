//! The job runtime (high level): workers that drain the outbox and apply each job
//! through `crate::discord::effects`. Idle workers sleep until a NOTIFY (sent by
//! `outbox::enqueue` at commit) or until the next `run_at`; a periodic sweep reclaims
//! jobs whose lease expired (a crashed worker, in any process) and prunes old ones.
//! Stops when the daemon's token is cancelled, releasing any job it still holds.

mod alerts;
mod batch;
pub mod db;
pub mod retry;
pub mod scheduled;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::JobsConfig;
use crate::db::tenant::{self, CrossCommunity};
use crate::discord::effects::{EffectError, Executor, FailureKind};
use crate::outbox::{self, Event, Job, NewJob, Status};
use batch::Books;
use db::{Claimed, Finish};

/// Everything the workers share.
pub struct Runtime {
    /// The queue's own connections (see [`bookkeeping_pool`]).
    pub pool: PgPool,
    /// The daemon's pool, handed to scheduled handlers.
    app_pool: PgPool,
    pub executor: Arc<Executor>,
    handlers: scheduled::Handlers,
    pub config: JobsConfig,
    wake: Notify,
    /// Names this process in `locked_by` (each claim adds its own number).
    node: String,
}

impl Runtime {
    /// `pool` is the daemon's; the workers use their own small pool to the same
    /// database (see [`bookkeeping_pool`]).
    pub fn new(
        pool: &PgPool,
        executor: Arc<Executor>,
        handlers: scheduled::Handlers,
        config: JobsConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool: bookkeeping_pool(pool, config.workers),
            app_pool: pool.clone(),
            executor,
            handlers,
            config,
            wake: Notify::new(),
            node: Uuid::new_v4().simple().to_string()[..12].to_owned(),
        })
    }
}

/// Connections for claiming and finishing jobs. Each session keeps the `job_queue`
/// cross-community purpose (see `db::tenant`): claims, renewals, the sweep and pruning
/// see every community's jobs and nothing else. They run with `synchronous_commit = off`: a
/// claim or a "done" lost to a PostgreSQL crash only means the job runs again, which
/// at-least-once delivery already allows, and not waiting for the WAL flush on every
/// claim and finish multiplies throughput. Enqueues stay in the callers' durable
/// transactions.
///
/// Sequential and bitmap scans are off for these sessions, whose every query has an
/// index made for it: the row-level security quals make the planner estimate one due
/// row however many there are, so it would read and sort every pending job for each
/// claim (4 ms per claim with 3,000 pending, measured) instead of walking `jobs_due`
/// in order and stopping after the few it takes (0.1 ms).
fn bookkeeping_pool(pool: &PgPool, workers: usize) -> PgPool {
    let options = pool.connect_options().as_ref().clone().options([
        ("synchronous_commit", "off"),
        ("enable_seqscan", "off"),
        ("enable_bitmapscan", "off"),
    ]);
    let options = tenant::cross_community_session(options, CrossCommunity::JobQueue);
    let size = u32::try_from(workers).unwrap_or(u32::MAX).saturating_add(3);
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options)
}

/// Runs the listener, the sweeper, the claimer and finisher (`batch`) and
/// `config.workers` workers until `stop`.
pub async fn run(rt: Arc<Runtime>, stop: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(listen(rt.clone(), stop.clone()));
    tasks.spawn(sweep(rt.clone(), stop.clone()));
    let books = batch::start(&rt, &mut tasks);
    for _ in 0..rt.config.workers.max(1) {
        tasks.spawn(work(rt.clone(), books.clone(), stop.clone()));
    }
    drop(books);
    tracing::info!(workers = rt.config.workers, "job workers started");
    while tasks.join_next().await.is_some() {}
    // Before the daemon stops an embedded PostgreSQL, which waits for its sessions.
    rt.pool.close().await;
    tracing::info!("job workers stopped");
}

/// LISTEN for enqueues; each notification wakes the workers. sqlx reconnects the
/// listener after a lost connection; the sweep covers what was missed meanwhile.
async fn listen(rt: Arc<Runtime>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let mut listener = match PgListener::connect_with(&rt.pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "job listener cannot connect; retrying");
                sleep_or_stop(Duration::from_secs(1), &stop).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(outbox::CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            sleep_or_stop(Duration::from_secs(1), &stop).await;
            continue;
        }
        rt.wake.notify_waiters();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                note = listener.recv() => match note {
                    Ok(_) => rt.wake.notify_waiters(),
                    Err(e) => {
                        tracing::warn!(error = %e, "job listener lost its connection");
                        break;
                    }
                },
            }
        }
    }
}

/// Reclaims expired leases every sweep, prunes old jobs every hundred sweeps.
async fn sweep(rt: Arc<Runtime>, stop: CancellationToken) {
    let every = Duration::from_millis(rt.config.sweep_interval_ms.max(10));
    let mut round: u64 = 0;
    while !stop.is_cancelled() {
        match db::reclaim_expired(&rt.pool, rt.config.max_attempts).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(jobs = n, "reclaimed jobs whose lease expired");
                rt.wake.notify_waiters();
            }
            Err(e) => tracing::warn!(error = %e, "job sweep failed"),
        }
        if round.is_multiple_of(100) {
            prune(&rt).await;
        }
        round += 1;
        // Scheduled jobs become due without a NOTIFY; idle workers also wake on their own.
        rt.wake.notify_waiters();
        sleep_or_stop(every, &stop).await;
    }
}

async fn prune(rt: &Runtime) {
    let day = 86_400;
    let done = rt.config.done_retention_days as i64 * day;
    let failed = rt.config.failed_retention_days as i64 * day;
    match db::prune(&rt.pool, done, failed).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "pruned finished jobs"),
        Err(e) => tracing::warn!(error = %e, "job pruning failed"),
    }
}

/// One worker: claim, apply, finish; sleep when there is nothing due.
async fn work(rt: Arc<Runtime>, books: Books, stop: CancellationToken) {
    while !stop.is_cancelled() {
        // Registered before the claim, so a NOTIFY arriving in between is not lost.
        let woken = rt.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let claimed = tokio::select! {
            claimed = books.claim() => claimed,
            () = stop.cancelled() => return,
        };
        match claimed {
            Ok(Some(job)) => run_one(&rt, &books, job, &stop).await,
            Ok(None) => idle(&rt, woken, &stop).await,
            // The claimer logged why.
            Err(()) => sleep_or_stop(Duration::from_secs(1), &stop).await,
        }
    }
}

async fn idle(
    rt: &Runtime,
    woken: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    stop: &CancellationToken,
) {
    let mut wait = Duration::from_millis(rt.config.sweep_interval_ms.max(10));
    if let Ok(Some(due)) = db::next_due(&rt.pool).await {
        let until = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        wait = wait.min(until.max(Duration::from_millis(5)));
    }
    tokio::select! {
        () = woken => {}
        () = tokio::time::sleep(wait) => {}
        () = stop.cancelled() => {}
    }
}

/// Applies a held job while renewing its lease; releases it if the daemon stops first.
async fn run_one(rt: &Runtime, books: &Books, claimed: Claimed, stop: &CancellationToken) {
    let job: Job = match serde_json::from_value(claimed.payload.clone()) {
        Ok(job) => job,
        Err(e) => {
            let error = format!("unreadable payload: {e}");
            let finish = failed(error, FailureKind::Rejected);
            return record(rt, books, &claimed, finish, Extras::default()).await;
        }
    };
    let outcome = tokio::select! {
        result = apply(rt, &claimed, &job) => Some(result),
        () = renew_forever(rt, &claimed) => None,
        () = stop.cancelled() => None,
    };
    let (finish, extras) = match outcome {
        Some(Ok(posted)) => (ended(Event::Succeed, None), posted_extras(&job, posted)),
        Some(Err(EffectError::Temporary(e))) => (retry_later(rt, &claimed, e), Extras::default()),
        Some(Err(EffectError::Permanent { kind, message })) => {
            let extras = Extras {
                alert: alerts::alert_text(&job, kind).map(|text| (kind, text)),
                follow_up: match &job {
                    Job::SendDm { on_failure, .. } => on_failure.clone(),
                    _ => None,
                },
                follow_up_key: "failed",
            };
            (failed(message, kind), extras)
        }
        None => (released(), Extras::default()),
    };
    record(rt, books, &claimed, finish, extras).await;
}

/// What an outcome writes besides itself, in the same transaction: a permanent
/// failure's alert and follow-up, or a post's follow-up with the new message's id.
#[derive(Default)]
struct Extras {
    alert: Option<(FailureKind, String)>,
    follow_up: Option<outbox::FollowUp>,
    /// Names the follow-up's job key (`failed` or `posted`), one per job.
    follow_up_key: &'static str,
}

/// A posted message's `on_posted` work, told the message's id.
fn posted_extras(job: &Job, posted: Option<serenity::all::MessageId>) -> Extras {
    let (
        Job::ModLog {
            on_posted: Some(f), ..
        },
        Some(id),
    ) = (job, posted)
    else {
        return Extras::default();
    };
    let mut data = f.data.clone();
    data["message_id"] = serde_json::json!(id.to_string());
    Extras {
        alert: None,
        follow_up: Some(outbox::FollowUp {
            name: f.name.clone(),
            data,
        }),
        follow_up_key: "posted",
    }
}

/// A Discord effect through the executor; scheduled work through its handler.
async fn apply(
    rt: &Runtime,
    claimed: &Claimed,
    job: &Job,
) -> Result<Option<serenity::all::MessageId>, EffectError> {
    let Job::Scheduled { name, data } = job else {
        return rt.executor.apply(job).await;
    };
    let ctx = scheduled::Context {
        pool: rt.app_pool.clone(),
        community_id: claimed.community_id,
        data: data.clone(),
    };
    rt.handlers
        .run(name, ctx)
        .await
        .map(|()| None)
        .map_err(|e| match e {
            scheduled::HandlerError::Temporary(m) => EffectError::Temporary(m),
            scheduled::HandlerError::Permanent(message) => EffectError::Permanent {
                kind: FailureKind::Rejected,
                message,
            },
        })
}

/// Renews the lease every third of its length; ends only if the lease was lost.
async fn renew_forever(rt: &Runtime, claimed: &Claimed) {
    let (id, lease) = (claimed.id, rt.config.lease_secs.max(1));
    loop {
        tokio::time::sleep(Duration::from_secs(lease) / 3).await;
        match db::renew(&rt.pool, id, &claimed.token, lease as i64).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    job.id = id,
                    "lost the lease on a job; another worker has it"
                );
                return;
            }
            Err(e) => tracing::warn!(job.id = id, error = %e, "lease renewal failed"),
        }
    }
}

fn ended(event: Event, error: Option<String>) -> Finish {
    Finish {
        status: Status::Running.transition(event).unwrap_or(Status::Pending),
        run_at: None,
        error,
        failure_kind: None,
        refund_attempt: false,
    }
}

fn failed(message: String, kind: FailureKind) -> Finish {
    Finish {
        failure_kind: Some(kind.as_str()),
        ..ended(Event::FailPermanently, Some(message))
    }
}

pub(crate) fn released() -> Finish {
    Finish {
        refund_attempt: true,
        ..ended(Event::Release, None)
    }
}

fn retry_later(rt: &Runtime, claimed: &Claimed, error: String) -> Finish {
    if claimed.attempts >= rt.config.max_attempts {
        return ended(Event::GiveUp, Some(error));
    }
    let delay = retry::backoff(claimed.attempts, retry::jitter(claimed.id));
    let run_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
    tracing::info!(
        job.id = claimed.id,
        attempts = claimed.attempts,
        ?delay,
        error,
        "job will be retried"
    );
    Finish {
        run_at: Some(run_at),
        ..ended(Event::RetryLater, Some(error))
    }
}

/// Writes the outcome; a permanent failure also enqueues its (grouped) admin alert in
/// the same transaction. A database error here leaves the lease to expire: the job runs
/// again, which the idempotent Discord calls tolerate.
async fn record(rt: &Runtime, books: &Books, claimed: &Claimed, finish: Finish, extras: Extras) {
    let (status, error) = (finish.status, finish.error.clone());
    let has_extras = extras.alert.is_some() || extras.follow_up.is_some();
    let result = match claimed.community_id {
        Some(community) if has_extras => with_extras(rt, claimed, &finish, community, extras)
            .await
            .map_err(|e| e.to_string()),
        // The common case: shares one statement with the other workers' outcomes.
        _ => books.finish(claimed, finish).await.map(drop),
    };
    if status == Status::Failed {
        tracing::warn!(job.id = claimed.id, error, "job failed permanently");
    }
    metrics::counter!("guildops_jobs_finished_total", "status" => status.as_str()).increment(1);
    if let Err(e) = result {
        tracing::error!(job.id = claimed.id, error = %e, "could not record a job's outcome");
    }
}

/// The alert reads the community's settings and writes its alert slot; the follow-up
/// is the job's own scheduled work for a failure. Both are scoped, in the same
/// transaction as the finish, and only when this worker still held the job.
async fn with_extras(
    rt: &Runtime,
    claimed: &Claimed,
    finish: &Finish,
    community: Uuid,
    extras: Extras,
) -> Result<(), sqlx::Error> {
    let mut tx = rt.pool.begin().await?;
    tenant::scope(&mut tx, community).await?;
    if db::finish(&mut tx, claimed.id, &claimed.token, finish).await? {
        if let Some((kind, text)) = extras.alert {
            enqueue_alert(&mut tx, community, kind, text).await?;
        }
        if let Some(f) = extras.follow_up {
            let job = Job::Scheduled {
                name: f.name,
                data: f.data,
            };
            let key = format!("{}:{}:follow-up", extras.follow_up_key, claimed.id);
            outbox::enqueue(&mut tx, NewJob::new(Some(community), key, job)).await?;
        }
    }
    tx.commit().await
}

async fn enqueue_alert(
    tx: &mut sqlx::PgConnection,
    community: Uuid,
    kind: FailureKind,
    text: String,
) -> Result<(), sqlx::Error> {
    let Some(channel) = db::admin_channel(tx, community).await? else {
        return Ok(());
    };
    if !db::take_alert_slot(tx, community, kind.as_str()).await? {
        return Ok(());
    }
    let key = format!("alert:{community}:{}:{}", kind.as_str(), Uuid::now_v7());
    let job = Job::AdminAlert {
        channel_id: serenity::all::ChannelId::new(channel as u64),
        content: text,
    };
    outbox::enqueue(tx, NewJob::new(Some(community), key, job)).await?;
    Ok(())
}

async fn sleep_or_stop(d: Duration, stop: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = stop.cancelled() => {}
    }
}
