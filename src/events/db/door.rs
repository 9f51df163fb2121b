//! SQL for the door: staff keys (found by digest under the `checkin` purpose), scans,
//! and the one conditional admission.

use chrono::{DateTime, Utc};
use serenity::all::UserId;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{Ticket, sf, ticket_from_row};

pub async fn insert_staff_key(
    conn: &mut PgConnection,
    community: Uuid,
    event: Uuid,
    hash: &[u8],
    by: UserId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into event_staff_keys (id, community_id, event_id, key_hash, created_by)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(community)
    .bind(event)
    .bind(hash)
    .bind(sf(by.get()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every live staff key of the event; how many there were.
pub async fn revoke_staff_keys(conn: &mut PgConnection, event: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update event_staff_keys set revoked_at = now() where event_id = $1 and revoked_at is null",
    )
    .bind(event)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A live staff key's community and event, under the `checkin` purpose.
pub async fn staff_key(
    conn: &mut PgConnection,
    hash: &[u8],
) -> Result<Option<(Uuid, Uuid)>, sqlx::Error> {
    let row = sqlx::query(
        "select community_id, event_id from event_staff_keys
          where key_hash = $1 and revoked_at is null",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get("community_id")?, r.try_get("event_id")?)))
        .transpose()
}

/// A ticket by its token's digest (in the scoped community), with its event's end.
pub async fn ticket_by_token(
    conn: &mut PgConnection,
    hash: &[u8],
) -> Result<Option<(Ticket, DateTime<Utc>, String)>, sqlx::Error> {
    let row = sqlx::query(
        "select k.id, k.event_id, k.discord_user_id, k.display_name, k.tier_name, k.status,
                k.checked_in_at, e.ends_at, e.status as event_status
           from event_tickets k join events e on e.id = k.event_id
          where k.token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok((
            ticket_from_row(&r)?,
            r.try_get("ends_at")?,
            r.try_get("event_status")?,
        ))
    })
    .transpose()
}

/// One scan. `None` when a scan with this `scan_id` was already recorded.
pub struct NewScan<'a> {
    pub event: Uuid,
    pub ticket: Option<Uuid>,
    pub scan_id: Option<Uuid>,
    pub result: &'a str,
    pub device_id: &'a str,
    pub ip_hash: Option<&'a [u8]>,
    pub scanned_at: DateTime<Utc>,
}

pub async fn insert_scan(
    conn: &mut PgConnection,
    community: Uuid,
    s: &NewScan<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into event_scans (community_id, event_id, ticket_id, scan_id, result, device_id,
                                  ip_hash, scanned_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (community_id, scan_id) do nothing returning id",
    )
    .bind(community)
    .bind(s.event)
    .bind(s.ticket)
    .bind(s.scan_id)
    .bind(s.result)
    .bind(s.device_id)
    .bind(s.ip_hash)
    .bind(s.scanned_at)
    .fetch_optional(conn)
    .await
}

/// A recorded scan's result and time, by the device's scan id.
pub async fn scan_by_id(
    conn: &mut PgConnection,
    scan_id: Uuid,
) -> Result<Option<(String, DateTime<Utc>)>, sqlx::Error> {
    let row = sqlx::query("select result, scanned_at from event_scans where scan_id = $1")
        .bind(scan_id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| Ok((r.try_get("result")?, r.try_get("scanned_at")?)))
        .transpose()
}

pub async fn set_scan_result(
    conn: &mut PgConnection,
    id: i64,
    result: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("update event_scans set result = $2 where id = $1")
        .bind(id)
        .bind(result)
        .execute(conn)
        .await?;
    Ok(())
}

/// The one admission: only a confirmed ticket moves, so of concurrent scans exactly
/// one gets a row back (the others wait for its row lock, then see `checked_in`).
pub async fn admit(
    conn: &mut PgConnection,
    ticket: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update event_tickets set status = 'checked_in', checked_in_at = $2, updated_at = now()
          where id = $1 and status = 'confirmed'",
    )
    .bind(ticket)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_admitted_scan(
    conn: &mut PgConnection,
    ticket: Uuid,
    scan: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("update event_tickets set admitted_scan_id = $2 where id = $1")
        .bind(ticket)
        .bind(scan)
        .execute(conn)
        .await?;
    Ok(())
}

/// The ticket's admission time and the scan that admitted it, locked.
pub async fn admission_for_update(
    conn: &mut PgConnection,
    ticket: Uuid,
) -> Result<Option<(Option<DateTime<Utc>>, Option<i64>, String)>, sqlx::Error> {
    let row = sqlx::query(
        "select checked_in_at, admitted_scan_id, status from event_tickets
          where id = $1 for no key update",
    )
    .bind(ticket)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok((
            r.try_get("checked_in_at")?,
            r.try_get("admitted_scan_id")?,
            r.try_get("status")?,
        ))
    })
    .transpose()
}

/// An earlier (offline) scan takes the admission over.
pub async fn set_admission(
    conn: &mut PgConnection,
    ticket: Uuid,
    at: DateTime<Utc>,
    scan: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update event_tickets set checked_in_at = $2, admitted_scan_id = $3, updated_at = now()
          where id = $1",
    )
    .bind(ticket)
    .bind(at)
    .bind(scan)
    .execute(conn)
    .await?;
    Ok(())
}

/// Admission times of an event's tickets (for the arrivals figure).
pub async fn arrivals(
    conn: &mut PgConnection,
    event: Uuid,
) -> Result<Vec<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "select checked_in_at from event_tickets
          where event_id = $1 and checked_in_at is not null order by checked_in_at",
    )
    .bind(event)
    .fetch_all(conn)
    .await
}
