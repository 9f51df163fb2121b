//! Scheduled jobs through the real job runtime and PostgreSQL: a handler runs once its
//! `run_at` has come (not before), with its data and community; it writes through the
//! tenant-scoped pool it is given; a temporary error is retried; an unknown name fails
//! for good with the reason instead of passing as done.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use guildops::config::JobsConfig;
use guildops::db::tenant;
use guildops::discord::effects::Executor;
use guildops::jobs::scheduled::{Context, HandlerError, Handlers};
use guildops::jobs::{self, Runtime};
use guildops::outbox::{self, Job, NewJob};
use guildops_harness::FakeDiscord;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::{WAIT, app_pool, migrated_database, pool};

async fn community(admin: &PgPool) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into communities (id, slug, name, discord_guild_id, owner_discord_id)
         values ($1, 'sched', 'Sched', 77, 1)",
    )
    .bind(id)
    .execute(admin)
    .await
    .expect("community");
    id
}

/// Renames the community (through the handler's scoped pool) to the job's data.
async fn rename(ctx: Context) -> Result<(), HandlerError> {
    let community = ctx
        .community_id
        .ok_or_else(|| HandlerError::Permanent("no community".into()))?;
    let name = ctx.data["name"].as_str().unwrap_or_default().to_owned();
    let mut tx = tenant::begin(&ctx.pool, community).await?;
    sqlx::query("update communities set name = $2 where id = $1")
        .bind(community)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn status(admin: &PgPool, key: &str) -> (String, Option<String>) {
    sqlx::query_as("select status, last_error from jobs where idempotency_key = $1")
        .bind(key)
        .fetch_one(admin)
        .await
        .expect("job")
}

async fn wait_for_status(admin: &PgPool, key: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while status(admin, key).await.0 != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {key} never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn scheduled_jobs_run_their_handler_when_due_and_unknown_names_fail() {
    let url = migrated_database().await;
    let admin = pool(&url).await;
    let app = app_pool(&url).await;
    let community = community(&admin).await;
    let flaky_runs = Arc::new(AtomicUsize::new(0));

    let mut handlers = Handlers::new();
    handlers.register("rename", rename);
    let runs = flaky_runs.clone();
    handlers.register("flaky", move |_ctx| {
        let runs = runs.clone();
        async move {
            match runs.fetch_add(1, Ordering::SeqCst) {
                0 => Err(HandlerError::Temporary("database busy".into())),
                _ => Ok(()),
            }
        }
    });
    let discord = FakeDiscord::start().await;
    let config = JobsConfig {
        workers: 2,
        sweep_interval_ms: 50,
        ..JobsConfig::default()
    };
    let executor = Arc::new(Executor::new(&discord.base_url(), discord.token(), 50));
    let stop = CancellationToken::new();
    let runtime = Runtime::new(&app, executor, handlers, config);
    let workers = tokio::spawn(jobs::run(runtime, stop.clone()));

    let due = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let mut tx = tenant::begin(&app, community).await.expect("tx");
    let scheduled = |name: &str, key: &str, data| {
        NewJob::new(
            Some(community),
            key,
            Job::Scheduled {
                name: name.into(),
                data,
            },
        )
    };
    for job in [
        scheduled("rename", "later", json!({"name": "Renamed later"})).at(due),
        scheduled("flaky", "flaky", json!({})),
        scheduled("no_such_handler", "unknown", json!({})),
    ] {
        outbox::enqueue(&mut tx, job).await.expect("enqueue");
    }
    tx.commit().await.expect("commit");

    wait_for_status(&admin, "unknown", "failed").await;
    let (_, error) = status(&admin, "unknown").await;
    assert!(
        error.is_some_and(|e| e.contains("no handler for scheduled job \"no_such_handler\"")),
        "the reason names the missing handler"
    );
    let name: String = sqlx::query_scalar("select name from communities where id = $1")
        .bind(community)
        .fetch_one(&admin)
        .await
        .expect("name");
    if chrono::Utc::now() < due {
        assert_eq!(name, "Sched", "the handler ran before its run_at");
    }
    wait_for_status(&admin, "later", "done").await;
    let name: String = sqlx::query_scalar("select name from communities where id = $1")
        .bind(community)
        .fetch_one(&admin)
        .await
        .expect("name");
    assert_eq!(name, "Renamed later");

    // The flaky handler's first run asked for a retry; backoff brings it back.
    wait_for_status(&admin, "flaky", "done").await;
    assert_eq!(flaky_runs.load(Ordering::SeqCst), 2);
    stop.cancel();
    workers.await.expect("workers stop");
}
