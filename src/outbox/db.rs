//! SQL for writing jobs and for the admin's view of failed ones. Claiming and
//! finishing jobs is in `crate::jobs::db`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{NewJob, Status};

/// A failed or dead job as `/ops failures` shows it.
#[derive(Debug, Clone)]
pub struct FailedJob {
    pub id: i64,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// The new job's id, or `None` when the idempotency key was already used.
pub async fn insert(conn: &mut PgConnection, job: &NewJob) -> Result<Option<i64>, sqlx::Error> {
    let payload = serde_json::to_value(&job.job).map_err(|e| sqlx::Error::Encode(e.into()))?;
    sqlx::query_scalar(
        "insert into jobs (kind, payload, community_id, idempotency_key, run_at)
         values ($1, $2, $3, $4, $5)
         on conflict (idempotency_key) do nothing
         returning id",
    )
    .bind(job.job.kind())
    .bind(payload)
    .bind(job.community_id)
    .bind(&job.idempotency_key)
    .bind(job.run_at)
    .fetch_optional(conn)
    .await
}

pub async fn notify(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    // Static SQL: the channel name is the constant `super::CHANNEL`.
    sqlx::query("notify guildops_jobs").execute(conn).await?;
    Ok(())
}

pub async fn failures(
    conn: &mut PgConnection,
    community_id: Uuid,
    limit: i64,
) -> Result<Vec<FailedJob>, sqlx::Error> {
    let rows = sqlx::query(
        "select id, kind, status, attempts, last_error, updated_at from jobs
         where community_id = $1 and status in ('failed', 'dead')
         order by updated_at desc limit $2",
    )
    .bind(community_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(FailedJob {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

pub async fn status_for_update(
    conn: &mut PgConnection,
    community_id: Uuid,
    id: i64,
) -> Result<Option<Status>, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar(
        "select status from jobs where id = $1 and community_id = $2 for update",
    )
    .bind(id)
    .bind(community_id)
    .fetch_optional(conn)
    .await?;
    Ok(status.as_deref().and_then(Status::parse))
}

/// A fresh start: attempts reset so the retry gets its full backoff budget.
pub async fn requeue(conn: &mut PgConnection, id: i64, next: Status) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update jobs set status = $2, attempts = 0, run_at = now(), failure_kind = null,
                updated_at = now(), finished_at = null
         where id = $1",
    )
    .bind(id)
    .bind(next.as_str())
    .execute(conn)
    .await?;
    Ok(())
}
