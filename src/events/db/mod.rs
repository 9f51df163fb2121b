//! SQL for events, tickets, staff keys, scans and settings, in the caller's
//! community-scoped transaction (the one exception, finding a staff key's community,
//! runs under the `checkin` purpose). Events and settings here; tickets and the door
//! (staff keys, scans, admission) in their own files.

use chrono::{DateTime, Utc};
use serenity::all::{ChannelId, MessageId, RoleId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::ticket::TicketStatus;

/// Snowflakes are u64 but fit in i64 until the year 2084; PostgreSQL has no u64.
pub(super) fn sf(id: u64) -> i64 {
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
    /// With a tier: `None` keeps the event for its members only; a number opens it to
    /// everyone but holds that many seats for the tier's members (see `seats`).
    pub reserved_seats: Option<i32>,
    /// When the held seats that are still free open to everyone (never, when unset).
    pub reserved_until: Option<DateTime<Utc>>,
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
    pub reserved_seats: Option<i32>,
    pub reserved_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
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
         e.reserved_seats, e.reserved_until, e.channel_id, e.message_id, e.status"
    };
}

macro_rules! ticket_columns {
    () => {
        "id, event_id, discord_user_id, display_name, tier_name, status, checked_in_at"
    };
}

// After the macros: the submodules use them (macro scope is textual).
mod door;
mod tickets;
pub use door::*;
pub use tickets::*;

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
        reserved_seats: row.try_get("reserved_seats")?,
        reserved_until: row.try_get("reserved_until")?,
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

pub(super) fn ticket_from_row(row: &PgRow) -> Result<Ticket, sqlx::Error> {
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
                             capacity, venue, tier_id, status, created_by, reserved_seats,
                             reserved_until)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'scheduled', $11, $12, $13)",
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
    .bind(f.reserved_seats)
    .bind(f.reserved_until)
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
                timezone = $6, capacity = $7, venue = $8, tier_id = $9, reserved_seats = $10,
                reserved_until = $11, updated_at = now()
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
    .bind(f.reserved_seats)
    .bind(f.reserved_until)
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

/// Records the post's message id (once); whether the event changed since it was
/// created (edited or cancelled), `None` when it was recorded before.
pub async fn record_post(
    conn: &mut PgConnection,
    id: Uuid,
    message: MessageId,
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(
        "update events set message_id = $2 where id = $1 and message_id is null
         returning updated_at > created_at",
    )
    .bind(id)
    .bind(sf(message.get()))
    .fetch_optional(conn)
    .await
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

pub async fn set_attended_role(
    conn: &mut PgConnection,
    community: Uuid,
    role: Option<RoleId>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into event_settings (community_id, attended_role_id) values ($1, $2)
         on conflict (community_id) do update set attended_role_id = $2, updated_at = now()",
    )
    .bind(community)
    .bind(role.map(|r| sf(r.get())))
    .execute(conn)
    .await?;
    Ok(())
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
