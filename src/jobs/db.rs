//! SQL for running jobs: claim (FOR UPDATE SKIP LOCKED, so any number of workers in any
//! number of processes never take the same job; several jobs per statement), lease
//! renewal, finishing (several per statement), reclaiming
//! expired leases, pruning and alert grouping. Status strings come from
//! `outbox::Status::transition`, never spelled here.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::outbox::{Event, Status};

/// A job this process now holds under a lease.
#[derive(Debug)]
pub struct Claimed {
    pub id: i64,
    /// The claim's own `locked_by` token: renewals and the finish match it, so a job
    /// that was reclaimed meanwhile (and maybe claimed again) is never touched by the
    /// worker that lost it.
    pub token: String,
    pub community_id: Option<Uuid>,
    pub attempts: i32,
    pub payload: serde_json::Value,
}

/// How a held job ends this run.
#[derive(Debug, Clone)]
pub struct Finish {
    pub status: Status,
    pub run_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub failure_kind: Option<&'static str>,
    /// A release on shutdown does not count as an attempt.
    pub refund_attempt: bool,
}

fn status(event: Event, from: Status) -> &'static str {
    // The transitions used here are valid by construction; the fallback is never hit.
    from.transition(event).unwrap_or(from).as_str()
}

/// Claims up to `limit` due jobs in one statement, all under `token`. Rows another
/// transaction is claiming are skipped, not waited for.
pub async fn claim(
    pool: &PgPool,
    token: &str,
    lease_secs: i64,
    limit: usize,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows = sqlx::query(
        "update jobs set status = $3, attempts = attempts + 1, locked_by = $1,
                lease_expires_at = now() + make_interval(secs => $2), updated_at = now()
         where id in (select id from jobs where status = 'pending' and run_at <= now()
                      order by run_at limit $4 for update skip locked)
         returning id, community_id, attempts, payload",
    )
    .bind(token)
    .bind(lease_secs as f64)
    .bind(status(Event::Claim, Status::Pending))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get("id")?,
                token: token.to_owned(),
                community_id: r.try_get("community_id")?,
                attempts: r.try_get("attempts")?,
                payload: r.try_get("payload")?,
            })
        })
        .collect()
}

/// False when the lease was lost (reclaimed after expiring): stop touching the job.
pub async fn renew(
    pool: &PgPool,
    id: i64,
    token: &str,
    lease_secs: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update jobs set lease_expires_at = now() + make_interval(secs => $3)
         where id = $1 and locked_by = $2 and status = 'running'",
    )
    .bind(id)
    .bind(token)
    .bind(lease_secs as f64)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a held job; false when this worker no longer held it.
pub async fn finish(
    conn: &mut PgConnection,
    id: i64,
    token: &str,
    f: &Finish,
) -> Result<bool, sqlx::Error> {
    let held = finish_many(conn, &[(id, token, f)]).await?;
    Ok(held.contains(&id))
}

/// Ends several held jobs in one statement; returns the ids that were still held (a
/// job whose lease was lost is left to its new holder).
pub async fn finish_many(
    conn: &mut PgConnection,
    jobs: &[(i64, &str, &Finish)],
) -> Result<Vec<i64>, sqlx::Error> {
    let ids: Vec<i64> = jobs.iter().map(|j| j.0).collect();
    let tokens: Vec<&str> = jobs.iter().map(|j| j.1).collect();
    let statuses: Vec<&str> = jobs.iter().map(|j| j.2.status.as_str()).collect();
    let run_ats: Vec<Option<DateTime<Utc>>> = jobs.iter().map(|j| j.2.run_at).collect();
    let errors: Vec<Option<&str>> = jobs.iter().map(|j| j.2.error.as_deref()).collect();
    let kinds: Vec<Option<&str>> = jobs.iter().map(|j| j.2.failure_kind).collect();
    let refunds: Vec<i32> = jobs.iter().map(|j| i32::from(j.2.refund_attempt)).collect();
    sqlx::query_scalar(
        "update jobs j set status = f.status, lease_expires_at = null, locked_by = null,
                run_at = coalesce(f.run_at, j.run_at), last_error = coalesce(f.error, j.last_error),
                failure_kind = f.kind, attempts = j.attempts - f.refund,
                finished_at = case when f.status in ('done', 'failed', 'dead') then now() end,
                -- A delivered DM with a file may hold a secret (a ticket's code and QR
                -- code): neither is kept once Discord has it.
                payload = case when f.status = 'done' and j.kind = 'send_dm_file'
                               then jsonb_set(jsonb_set(j.payload, '{attachment,data_base64}',
                                                        to_jsonb(''::text)),
                                              '{content}', to_jsonb(''::text))
                               else j.payload end,
                updated_at = now()
           from unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                       $6::text[], $7::int[]) as f(id, token, status, run_at, error, kind, refund)
          where j.id = f.id and j.locked_by = f.token and j.status = 'running'
          returning j.id",
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(&statuses)
    .bind(&run_ats)
    .bind(&errors)
    .bind(&kinds)
    .bind(&refunds)
    .fetch_all(conn)
    .await
}

/// Jobs whose worker vanished go back to the queue (or die when out of attempts).
pub async fn reclaim_expired(pool: &PgPool, max_attempts: i32) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update jobs set status = case when attempts >= $1 then $3 else $2 end,
                lease_expires_at = null, locked_by = null,
                last_error = 'lease expired: the worker stopped or crashed',
                finished_at = case when attempts >= $1 then now() end, updated_at = now()
         where status = 'running' and lease_expires_at < now()",
    )
    .bind(max_attempts)
    .bind(status(Event::LeaseExpired, Status::Running))
    .bind(status(Event::GiveUp, Status::Running))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Done jobs after `done_secs`; failed and dead ones after `failed_secs`. Two
/// statements, each walking its own partial index (the queue's sessions have bitmap
/// scans off, so an `or` of both would read the whole table).
pub async fn prune(pool: &PgPool, done_secs: i64, failed_secs: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from jobs
          where status = 'done' and finished_at < now() - make_interval(secs => $1)",
    )
    .bind(done_secs as f64)
    .execute(pool)
    .await?;
    let unresolved = sqlx::query(
        "delete from jobs where status in ('failed', 'dead')
            and updated_at < now() - make_interval(secs => $1)",
    )
    .bind(failed_secs as f64)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() + unresolved.rows_affected())
}

/// When the next pending job is due, so an idle worker sleeps exactly until then.
pub async fn next_due(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("select min(run_at) from jobs where status = 'pending'")
        .fetch_one(pool)
        .await
}

pub async fn admin_channel(
    conn: &mut PgConnection,
    community_id: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    let channel: Option<Option<i64>> = sqlx::query_scalar(
        "select admin_channel_id from community_settings where community_id = $1",
    )
    .bind(community_id)
    .fetch_optional(conn)
    .await?;
    Ok(channel.flatten())
}

/// True when no alert of this kind went out in the last hour (and records this one).
pub async fn take_alert_slot(
    conn: &mut PgConnection,
    community_id: Uuid,
    kind: &str,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "insert into job_alerts (community_id, failure_kind) values ($1, $2)
         on conflict (community_id, failure_kind) do update set last_sent_at = now()
            where job_alerts.last_sent_at < now() - interval '1 hour'
         returning 1",
    )
    .bind(community_id)
    .bind(kind)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}
