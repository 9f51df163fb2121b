//! SQL for events, tickets, staff keys, scans and settings, in the caller's
//! community-scoped transaction (the one exception, finding a staff key's community,
//! runs under the `checkin` purpose).

use chrono::{DateTime, Utc};
use serenity::all::{ChannelId, MessageId, RoleId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::ticket::TicketStatus;

/// Snowflakes are u64 but fit in i64 until the year 2084; PostgreSQL has no u64.
fn sf(id: u64) -> i64 {
    id as i64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Scheduled,
    Cancelled,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Scheduled => "scheduled",
            EventStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
    pub capacity: i32,
    pub venue: String,
    pub tier_id: Option<Uuid>,
    pub tier: Option<(String, RoleId)>,
    pub channel_id: Option<ChannelId>,
    pub message_id: Option<MessageId>,
    pub status: EventStatus,
}

/// The fields an organiser sets (create, or edit after merging).
#[derive(Debug, Clone)]
pub struct EventFields {
    pub title: String,
    pub description: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: String,
    pub capacity: i32,
    pub venue: String,
    pub tier_id: Option<Uuid>,
}

#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: Uuid,
    pub event_id: Uuid,
    pub user: UserId,
    pub display_name: String,
    pub tier_name: Option<String>,
    pub status: TicketStatus,
    pub checked_in_at: Option<DateTime<Utc>>,
}

macro_rules! event_columns {
    () => {
        "e.id, e.title, e.description, e.starts_at, e.ends_at, e.timezone, e.capacity, \
         e.venue, e.tier_id, t.name as tier_name, t.discord_role_id as tier_role, \
         e.channel_id, e.message_id, e.status"
    };
}

fn event_from_row(row: &PgRow) -> Result<Event, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let tier_name: Option<String> = row.try_get("tier_name")?;
    let tier_role: Option<i64> = row.try_get("tier_role")?;
    Ok(Event {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
        timezone: row.try_get("timezone")?,
        capacity: row.try_get("capacity")?,
        venue: row.try_get("venue")?,
        tier_id: row.try_get("tier_id")?,
        tier: tier_name.zip(tier_role.map(|r| RoleId::new(r as u64))),
        channel_id: row
            .try_get::<Option<i64>, _>("channel_id")?
            .map(|c| ChannelId::new(c as u64)),
        message_id: row
            .try_get::<Option<i64>, _>("message_id")?
            .map(|m| MessageId::new(m as u64)),
        status: if status == "cancelled" {
            EventStatus::Cancelled
        } else {
            EventStatus::Scheduled
        },
    })
}

fn ticket_from_row(row: &PgRow) -> Result<Ticket, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(Ticket {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        user: UserId::new(row.try_get::<i64, _>("discord_user_id")? as u64),
        display_name: row.try_get("display_name")?,
        tier_name: row.try_get("tier_name")?,
        status: TicketStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown ticket status {status}").into()))?,
        checked_in_at: row.try_get("checked_in_at")?,
    })
}

pub async fn insert_event(
    conn: &mut PgConnection,
    community: Uuid,
    f: &EventFields,
    created_by: UserId,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into events (id, community_id, title, description, starts_at, ends_at, timezone,
                             capacity, venue, tier_id, status, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'scheduled', $11)",
    )
    .bind(id)
    .bind(community)
    .bind(&f.title)
    .bind(&f.description)
    .bind(f.starts_at)
    .bind(f.ends_at)
    .bind(&f.timezone)
    .bind(f.capacity)
    .bind(&f.venue)
    .bind(f.tier_id)
    .bind(sf(created_by.get()))
    .execute(conn)
    .await?;
    Ok(id)
}

pub async fn update_event(
    conn: &mut PgConnection,
    id: Uuid,
    f: &EventFields,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update events set title = $2, description = $3, starts_at = $4, ends_at = $5,
                timezone = $6, capacity = $7, venue = $8, tier_id = $9, updated_at = now()
         where id = $1",
    )
    .bind(id)
    .bind(&f.title)
    .bind(&f.description)
    .bind(f.starts_at)
    .bind(f.ends_at)
    .bind(&f.timezone)
    .bind(f.capacity)
    .bind(&f.venue)
    .bind(f.tier_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: EventStatus,
) -> Result<(), sqlx::Error> {
    sqlx::query("update events set status = $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(status.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_post(
    conn: &mut PgConnection,
    id: Uuid,
    channel: ChannelId,
) -> Result<(), sqlx::Error> {
    sqlx::query("update events set channel_id = $2 where id = $1")
        .bind(id)
        .bind(sf(channel.get()))
        .execute(conn)
        .await?;
    Ok(())
}

/// The event, locked for the rest of the transaction: RSVPs, cancellations and edits
/// of one event queue behind each other, so seats are counted once. (`no key update`
/// rows still admit the key-share locks that scans' foreign keys take, so the door
/// never waits for an RSVP, and concurrent scans cannot deadlock.)
pub async fn event_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Event>, sqlx::Error> {
    sqlx::query(concat!(
        "select ",
        event_columns!(),
        " from events e left join tiers t on t.id = e.tier_id where e.id = $1 for no key update of e"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .map(|r| event_from_row(&r))
    .transpose()
}

pub async fn event(conn: &mut PgConnection, id: Uuid) -> Result<Option<Event>, sqlx::Error> {
    sqlx::query(concat!(
        "select ",
        event_columns!(),
        " from events e left join tiers t on t.id = e.tier_id where e.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .map(|r| event_from_row(&r))
    .transpose()
}

/// Events that have not ended, soonest first (cancelled ones only if asked).
pub async fn upcoming(
    conn: &mut PgConnection,
    include_cancelled: bool,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    sqlx::query(concat!(
        "select ",
        event_columns!(),
        " from events e left join tiers t on t.id = e.tier_id
          where e.ends_at > now() and ($1 or e.status = 'scheduled')
          order by e.starts_at limit $2"
    ))
    .bind(include_cancelled)
    .bind(limit)
    .fetch_all(conn)
    .await?
    .iter()
    .map(event_from_row)
    .collect()
}

/// A tier of this community by name (for a restriction).
pub async fn tier_by_name(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("select id from tiers where lower(name) = lower($1) and archived_at is null")
        .bind(name)
        .fetch_optional(conn)
        .await
}

// ----- tickets --------------------------------------------------------------------

macro_rules! ticket_columns {
    () => {
        "id, event_id, discord_user_id, display_name, tier_name, status, checked_in_at"
    };
}

pub async fn seats_taken(conn: &mut PgConnection, event: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from event_tickets
          where event_id = $1 and status in ('confirmed', 'checked_in')",
    )
    .bind(event)
    .fetch_one(conn)
    .await
}

pub async fn ticket_of(
    conn: &mut PgConnection,
    event: Uuid,
    user: UserId,
) -> Result<Option<Ticket>, sqlx::Error> {
    sqlx::query(concat!(
        "select ",
        ticket_columns!(),
        " from event_tickets where event_id = $1 and discord_user_id = $2 for no key update"
    ))
    .bind(event)
    .bind(sf(user.get()))
    .fetch_optional(conn)
    .await?
    .map(|r| ticket_from_row(&r))
    .transpose()
}

/// A new ticket row (first RSVP of this member for this event).
pub async fn insert_ticket(
    conn: &mut PgConnection,
    community: Uuid,
    event: Uuid,
    user: UserId,
    display_name: &str,
    tier_name: Option<&str>,
    status: TicketStatus,
) -> Result<Ticket, sqlx::Error> {
    let row = sqlx::query(concat!(
        "insert into event_tickets (id, community_id, event_id, discord_user_id, display_name,
                                    tier_name, status)
         values ($1, $2, $3, $4, $5, $6, $7) returning ",
        ticket_columns!()
    ))
    .bind(Uuid::now_v7())
    .bind(community)
    .bind(event)
    .bind(sf(user.get()))
    .bind(display_name)
    .bind(tier_name)
    .bind(status.as_str())
    .fetch_one(conn)
    .await?;
    ticket_from_row(&row)
}

/// Moves a ticket to `status`; a re-request starts a fresh place in the waitlist, and
/// a ticket leaving its seat loses its token.
pub async fn set_ticket_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: TicketStatus,
    requested_again: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update event_tickets set status = $2, updated_at = now(),
                requested_at = case when $3 then now() else requested_at end,
                token_hash = case when $2 in ('confirmed', 'checked_in', 'revoked')
                                  then token_hash end
          where id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(requested_again)
    .execute(conn)
    .await?;
    Ok(())
}

/// The ticket's new token (the old one stops admitting).
pub async fn set_token(conn: &mut PgConnection, id: Uuid, hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("update event_tickets set token_hash = $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// The next waitlisted tickets, in request order, locked.
pub async fn next_waitlisted(
    conn: &mut PgConnection,
    event: Uuid,
    count: i64,
) -> Result<Vec<Ticket>, sqlx::Error> {
    sqlx::query(concat!(
        "select ",
        ticket_columns!(),
        " from event_tickets where event_id = $1 and status = 'waitlisted'
          order by requested_at, id limit $2 for no key update"
    ))
    .bind(event)
    .bind(count)
    .fetch_all(conn)
    .await?
    .iter()
    .map(ticket_from_row)
    .collect()
}

/// Tickets of an event in the given statuses.
pub async fn tickets(
    conn: &mut PgConnection,
    event: Uuid,
    statuses: &[&str],
) -> Result<Vec<Ticket>, sqlx::Error> {
    let statuses: Vec<String> = statuses.iter().map(|s| (*s).to_owned()).collect();
    sqlx::query(concat!(
        "select ",
        ticket_columns!(),
        " from event_tickets where event_id = $1 and status = any($2) order by requested_at, id"
    ))
    .bind(event)
    .bind(statuses)
    .fetch_all(conn)
    .await?
    .iter()
    .map(ticket_from_row)
    .collect()
}

/// Counts by status, for `/event show` and `/event stats`.
pub async fn counts(
    conn: &mut PgConnection,
    event: Uuid,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "select status, count(*) as n from event_tickets where event_id = $1 group by status",
    )
    .bind(event)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
        .collect()
}

// ----- staff keys, scans and check-in ---------------------------------------------

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

// ----- settings -------------------------------------------------------------------

/// The organiser role and reminder lead times (defaults when never set).
pub async fn settings(conn: &mut PgConnection) -> Result<(Option<RoleId>, Vec<i32>), sqlx::Error> {
    let row = sqlx::query("select organizer_role_id, reminder_hours from event_settings")
        .fetch_optional(conn)
        .await?;
    match row {
        Some(r) => Ok((
            r.try_get::<Option<i64>, _>("organizer_role_id")?
                .map(|id| RoleId::new(id as u64)),
            r.try_get("reminder_hours")?,
        )),
        None => Ok((None, vec![24, 1])),
    }
}

pub async fn save_settings(
    conn: &mut PgConnection,
    community: Uuid,
    organizer_role: Option<RoleId>,
    reminder_hours: &[i32],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into event_settings (community_id, organizer_role_id, reminder_hours)
         values ($1, $2, $3)
         on conflict (community_id) do update
            set organizer_role_id = $2, reminder_hours = $3, updated_at = now()",
    )
    .bind(community)
    .bind(organizer_role.map(|r| sf(r.get())))
    .bind(reminder_hours)
    .execute(conn)
    .await?;
    Ok(())
}

/// The event whose id ends in `code` (8 hex digits).
pub async fn event_by_code(
    conn: &mut PgConnection,
    code: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("select id from events where right(replace(id::text, '-', ''), 8) = $1")
        .bind(code)
        .fetch_optional(conn)
        .await
}
