//! SQL for the door: staff keys, the live scan's one lookup (key, scope and ticket),
//! scans (refusals in batches), and the one conditional admission.

use chrono::{DateTime, Utc};
use serenity::all::{GuildId, RoleId, UserId};
use sqlx::postgres::PgRow;
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

/// A ticket as the door sees it: with its event's end and status, and the role an
/// admission gives (`/event attended-role`), all from one lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct DoorTicket {
    pub ticket: Ticket,
    pub ends_at: DateTime<Utc>,
    pub event_status: String,
    pub attended_role: Option<(GuildId, RoleId)>,
}

/// What a live staff key opens: its community and event, and the scanned ticket when
/// its token is known in that community.
#[derive(Debug, Clone, PartialEq)]
pub struct DoorLookup {
    pub community: Uuid,
    pub event: Uuid,
    pub ticket: Option<DoorTicket>,
}

/// The staff key's community and event and the token's ticket, in one round trip:
/// `door_lookup` (migration `20261202012000`) reads the key under the `checkin`
/// purpose, scopes to its community and looks the ticket up there. `None` for an
/// unknown or revoked key; pass no token digest to find only the key. Outside a
/// transaction the scope ends with the statement; inside one it lasts to its end.
pub async fn door_lookup(
    conn: &mut PgConnection,
    key_digest: &[u8],
    token_digest: Option<&[u8]>,
) -> Result<Option<DoorLookup>, sqlx::Error> {
    let row = sqlx::query("select * from door_lookup($1, $2)")
        .bind(key_digest)
        .bind(token_digest)
        .fetch_optional(conn)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let ticket = match r.try_get::<Option<Uuid>, _>("id")? {
        Some(_) => Some(door_ticket_from_row(&r)?),
        None => None,
    };
    Ok(Some(DoorLookup {
        community: r.try_get("key_community_id")?,
        event: r.try_get("key_event_id")?,
        ticket,
    }))
}

fn door_ticket_from_row(r: &PgRow) -> Result<DoorTicket, sqlx::Error> {
    let guild: i64 = r.try_get("discord_guild_id")?;
    let role: Option<i64> = r.try_get("attended_role_id")?;
    Ok(DoorTicket {
        ticket: ticket_from_row(r)?,
        ends_at: r.try_get("ends_at")?,
        event_status: r.try_get("event_status")?,
        attended_role: role.map(|role| (GuildId::new(guild as u64), RoleId::new(role as u64))),
    })
}

/// A ticket by its token's digest (in the scoped community), as `door_ticket`
/// (migration `20261202012000`) shows it to the door.
pub async fn ticket_by_token(
    conn: &mut PgConnection,
    hash: &[u8],
) -> Result<Option<DoorTicket>, sqlx::Error> {
    let row = sqlx::query("select * from door_ticket($1)")
        .bind(hash)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(door_ticket_from_row).transpose()
}

/// A refused live scan, waiting in the refusal log for its batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedScan {
    pub community: Uuid,
    pub event: Uuid,
    pub ticket: Option<Uuid>,
    pub result: &'static str,
    pub device_id: String,
    pub ip_hash: Option<Vec<u8>>,
    pub scanned_at: DateTime<Utc>,
}

/// Records refusals of any communities as one statement (`door_record_refusals`
/// scopes to each community in turn), one durable commit outside a transaction.
pub async fn record_refusals(
    conn: &mut PgConnection,
    scans: &[RefusedScan],
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("select door_record_refusals($1, $2, $3, $4, $5, $6, $7)")
        .bind(scans.iter().map(|s| s.community).collect::<Vec<_>>())
        .bind(scans.iter().map(|s| s.event).collect::<Vec<_>>())
        .bind(scans.iter().map(|s| s.ticket).collect::<Vec<_>>())
        .bind(scans.iter().map(|s| s.result).collect::<Vec<_>>())
        .bind(
            scans
                .iter()
                .map(|s| s.device_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(scans.iter().map(|s| s.ip_hash.clone()).collect::<Vec<_>>())
        .bind(scans.iter().map(|s| s.scanned_at).collect::<Vec<_>>())
        .fetch_one(conn)
        .await
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

/// A live admission in one statement: the ticket moves only if it is still confirmed
/// (of concurrent scans exactly one moves it; the others wait for its row lock, then
/// find it checked in), and the scan is recorded as what it came to, `admitted` or
/// `duplicate`. The scan's id is drawn first so the ticket can name its admitting scan
/// in the same update. The scan's id, and whether it admitted.
pub async fn admit_scanned(
    conn: &mut PgConnection,
    community: Uuid,
    s: &NewScan<'_>,
) -> Result<(i64, bool), sqlx::Error> {
    sqlx::query_as(
        "with scan as (select nextval(pg_get_serial_sequence('event_scans', 'id')) as id),
         admitted as (
             update event_tickets
                set status = 'checked_in', checked_in_at = $6, updated_at = now(),
                    admitted_scan_id = (select id from scan)
              where id = $3 and status = 'confirmed'
             returning id
         )
         insert into event_scans (id, community_id, event_id, ticket_id, result, device_id,
                                  ip_hash, scanned_at)
         overriding system value
         select scan.id, $1, $2, $3,
                case when exists (select 1 from admitted) then 'admitted' else 'duplicate' end,
                $4, $5, $6
           from scan
         returning id, result = 'admitted'",
    )
    .bind(community)
    .bind(s.event)
    .bind(s.ticket)
    .bind(s.device_id)
    .bind(s.ip_hash)
    .bind(s.scanned_at)
    .fetch_one(conn)
    .await
}

/// The one admission of an offline scan: only a confirmed ticket moves, so of concurrent scans exactly
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
