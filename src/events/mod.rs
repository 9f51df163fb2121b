//! Events: create, edit, cancel, list and show them; RSVPs against a capacity with a
//! waitlist (a freed seat promotes the next member, who is told by DM), optionally for
//! one tier's members or with seats held for them (`seats`); tickets whose token
//! exists only in the member's DM (as text and a QR code) and as a SHA-256 in the
//! database; door staff keys; check-in (`checkin`). Every state change commits
//! with its audit entry and its effects as outbox jobs; reminders and cancellation
//! notices are scheduled jobs, so they survive restarts.

pub mod chart;
pub mod checkin;
pub mod db;
mod limiter;
mod manage;
mod notify;
pub mod qr;
pub mod refusals;
mod rsvp;
pub mod seats;
pub mod ticket;
pub mod when;

use serenity::all::{GuildId, Permissions, RoleId, UserId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::community;
pub use db::{Event, EventFields, EventStatus, Ticket};
pub use manage::{
    EventChange, NewEvent, Overview, cancel, configure, create, edit, list, set_attended_role,
    show, staff_key,
};
pub use notify::{details as notify_details, notify_cancelled, posted, remind};
pub use rsvp::{Rsvp, RsvpOutcome, cancel_rsvp, resend_ticket, revoke, rsvp};
pub use seats::release;
pub use ticket::TicketStatus;

/// Scheduled job names (registered in `daemon::scheduled_handlers`).
pub const REMIND_JOB: &str = "events.remind";
pub const CANCELLED_JOB: &str = "events.cancelled";
pub const RELEASE_JOB: &str = "events.release";
pub const POSTED_JOB: &str = "events.posted";

/// Custom-id prefixes of the buttons under an event's post.
pub const RSVP_BUTTON: &str = "event:rsvp:";
pub const CANCEL_BUTTON: &str = "event:cancel:";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Community(#[from] community::Error),
    #[error("there is no event `{0}` in this server (see `/event list`)")]
    NoSuchEvent(String),
    #[error("that event is cancelled")]
    Cancelled,
    #[error("that event has already ended")]
    Ended,
    #[error("the end must be after the start")]
    EndsBeforeStart,
    #[error("capacity must be between 1 and 100000")]
    BadCapacity,
    #[error("capacity cannot go below the {0} seats already taken")]
    CapacityBelowSeats(i64),
    #[error("a title is 1 to 100 characters; a description at most 1500; a venue at most 300")]
    BadText,
    #[error("{0}")]
    BadTime(String),
    #[error("reserved seats are held for a tier's members: give `tier` too")]
    ReservedNeedsTier,
    #[error("cannot hold more seats than the event has ({0})")]
    ReservedOverCapacity(i32),
    #[error("`reserved_until` is when held seats open to everyone: give `reserved_seats` too")]
    ReleaseNeedsReserved,
    #[error("there is no tier named `{0}` (see `/tiers`)")]
    NoSuchTier(String),
    #[error("this event is for members of the **{0}** tier (see `/subscribe`)")]
    TierOnly(String),
    #[error("you have no ticket for this event")]
    NoTicket,
    #[error("your ticket is {0}, so that is not possible")]
    TicketIs(TicketStatus),
    #[error("{0} has no ticket that can be revoked for this event")]
    NothingToRevoke(UserId),
    #[error("your ticket was revoked by the organisers")]
    TicketRevoked,
    #[error("nothing to change: give at least one option")]
    NothingToChange,
    #[error("cannot draw a random secret: {0}")]
    Random(String),
    #[error("cannot make the QR code: {0}")]
    Qr(#[from] qr::QrError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Database(_) | Error::Random(_) | Error::Qr(_) => false,
            Error::Community(e) => e.is_user_error(),
            _ => true,
        }
    }
}

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Self {
        Error::Random(e.to_string())
    }
}

/// The short code members and organisers type: the last 8 hex digits of the id (the
/// random part of a UUIDv7, so events made in the same second still differ).
pub fn short_id(id: Uuid) -> String {
    let hex = id.simple().to_string();
    hex[hex.len() - 8..].to_owned()
}

/// Whether someone may organise: Manage Events (or Manage Server, Administrator), or
/// the organiser role from `/event organizers`.
pub async fn is_organizer(
    pool: &PgPool,
    guild: GuildId,
    roles: &[RoleId],
    permissions: Permissions,
) -> Result<bool, Error> {
    if permissions.administrator() || permissions.manage_guild() || permissions.manage_events() {
        return Ok(true);
    }
    let (_, mut tx) = community::begin(pool, guild).await?;
    let (role, _) = db::settings(&mut tx).await?;
    tx.commit().await?;
    Ok(role.is_some_and(|r| roles.contains(&r)))
}

/// The event behind a short code (or a full id).
async fn find(conn: &mut PgConnection, code: &str) -> Result<Event, Error> {
    let id = resolve(conn, code).await?;
    db::event(conn, id)
        .await?
        .ok_or_else(|| Error::NoSuchEvent(code.into()))
}

async fn find_for_update(conn: &mut PgConnection, code: &str) -> Result<Event, Error> {
    let id = resolve(conn, code).await?;
    db::event_for_update(conn, id)
        .await?
        .ok_or_else(|| Error::NoSuchEvent(code.into()))
}

async fn resolve(conn: &mut PgConnection, code: &str) -> Result<Uuid, Error> {
    let code = code.trim().to_ascii_lowercase();
    if let Ok(id) = Uuid::parse_str(&code) {
        return Ok(id);
    }
    if code.len() != 8 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NoSuchEvent(code));
    }
    db::event_by_code(conn, &code)
        .await?
        .ok_or(Error::NoSuchEvent(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_the_random_tail() {
        let id = Uuid::parse_str("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").expect("uuid");
        assert_eq!(short_id(id), "2e3f4a5b");
    }
}
