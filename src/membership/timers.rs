//! Time-based paid-tier work, run by the job runtime as scheduled jobs (registered in
//! `daemon::scheduled_handlers`): a member's re-check when a grace or paid period ends,
//! each community's periodic drift repair (which schedules its own next run), and the
//! daily clean-up of raw Stripe events. Each decides from the database's current state,
//! so running one twice is harmless.

use chrono::{DateTime, Utc};
use serenity::all::UserId;
use sqlx::PgPool;
use uuid::Uuid;

use super::sync::{self, Baseline, Cause};
use super::{EVENTS_CLEANUP_JOB, Error, SCHEDULER_ACTOR, db, schedule_reconcile};
use crate::db::tenant::{self, CrossCommunity};
use crate::outbox::{self, Job, NewJob};

/// Re-evaluates one member (data: `{"user_id": "…"}`) now.
#[tracing::instrument(skip_all, fields(community.id = %community))]
pub async fn recheck(
    pool: &PgPool,
    community: Uuid,
    data: &serde_json::Value,
) -> Result<(), Error> {
    let user = data["user_id"]
        .as_str()
        .and_then(|u| u.parse::<u64>().ok())
        .filter(|u| *u > 0)
        .map(UserId::new)
        .ok_or_else(|| Error::Invalid("recheck job without a user_id".into()))?;
    let mut tx = tenant::begin(pool, community).await?;
    let guild = crate::community::guild_of(&mut tx, community).await?;
    let cause = Cause {
        key: format!("recheck:{}", Utc::now().timestamp_millis()),
        actor: SCHEDULER_ACTOR,
        reason: "a grace or paid period ended",
    };
    sync::member(&mut tx, community, guild, user, &cause, Baseline::Held).await?;
    tx.commit().await?;
    Ok(())
}

/// Drift repair for the whole community, then the next run one interval later.
#[tracing::instrument(skip_all, fields(community.id = %community))]
pub async fn reconcile(
    pool: &PgPool,
    community: Uuid,
    every: chrono::Duration,
) -> Result<usize, Error> {
    let now = Utc::now();
    let mut tx = tenant::begin(pool, community).await?;
    let guild = crate::community::guild_of(&mut tx, community).await?;
    let cause = Cause {
        key: format!("reconcile:{}", now.timestamp_millis()),
        actor: SCHEDULER_ACTOR,
        reason: "periodic drift repair",
    };
    let mut changed = 0;
    for user in db::members_with_paid_interest(&mut tx, community).await? {
        let change =
            sync::member(&mut tx, community, guild, user, &cause, Baseline::Discord).await?;
        changed += usize::from(!change.is_empty());
    }
    schedule_reconcile(&mut tx, community, now, every).await?;
    tx.commit().await?;
    if changed > 0 {
        tracing::info!(members = changed, "drift repair changed paid roles");
    }
    Ok(changed)
}

/// Deletes raw events older than `retention_days` and schedules tomorrow's run.
pub async fn cleanup_events(pool: &PgPool, retention_days: u32) -> Result<u64, Error> {
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::StripeWebhook).await?;
    let days = i32::try_from(retention_days).unwrap_or(i32::MAX);
    let pruned = db::prune_events(&mut tx, days).await?;
    schedule_cleanup_in(&mut tx, Utc::now() + chrono::Duration::days(1)).await?;
    tx.commit().await?;
    Ok(pruned)
}

/// Makes sure a clean-up is scheduled (the daemon calls this at start; once a day).
pub async fn schedule_cleanup(pool: &PgPool) -> Result<(), Error> {
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::StripeWebhook).await?;
    schedule_cleanup_in(&mut tx, Utc::now()).await?;
    tx.commit().await?;
    Ok(())
}

async fn schedule_cleanup_in(
    conn: &mut sqlx::PgConnection,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let job = Job::Scheduled {
        name: EVENTS_CLEANUP_JOB.into(),
        data: serde_json::json!({}),
    };
    let key = format!("stripe-events-cleanup:{}", at.format("%Y-%m-%d"));
    outbox::enqueue(conn, NewJob::new(None, key, job).at(at)).await?;
    Ok(())
}
