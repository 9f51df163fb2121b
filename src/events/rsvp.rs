//! RSVPs and the seats they hold. The event's row is locked for the whole
//! transaction, so concurrent RSVPs and cancellations of one event count seats one at
//! a time; [`fill_seats`] keeps the rule "no free seat while someone waits".

use chrono::Utc;
use serde_json::json;
use serenity::all::{GuildId, RoleId, UserId};
use sqlx::PgConnection;
use sqlx::PgPool;
use uuid::Uuid;

use super::db::{self, Event, EventStatus, Ticket};
use super::ticket::{self, TicketEvent, TicketStatus};
use super::{Error, find_for_update, notify, seats};
use crate::audit::{self, Actor, NewEntry};
use crate::community;

/// A member asking for a seat.
#[derive(Debug, Clone)]
pub struct Rsvp {
    pub guild: GuildId,
    pub code: String,
    pub user: UserId,
    pub display_name: String,
    /// The member's roles, for a tier-restricted event.
    pub roles: Vec<RoleId>,
    pub correlation_id: Option<String>,
}

#[derive(Debug, Clone)]
pub enum RsvpOutcome {
    /// A seat; the ticket is on its way by DM.
    Confirmed(Event),
    /// No seat free for this member: `position` in the waitlist (1 is next).
    /// `held` says that seats are free but held for a tier's members (see `seats`).
    Waitlisted {
        event: Event,
        position: usize,
        held: Option<String>,
    },
    AlreadyConfirmed(Event),
    AlreadyWaitlisted {
        event: Event,
        position: usize,
    },
    AlreadyCheckedIn(Event),
}

#[tracing::instrument(skip_all, fields(guild.id = %r.guild, user.id = %r.user))]
pub async fn rsvp(pool: &PgPool, r: Rsvp) -> Result<RsvpOutcome, Error> {
    let (community, mut tx) = community::begin(pool, r.guild).await?;
    let event = find_for_update(&mut tx, &r.code).await?;
    open_for_rsvp(&event)?;
    let tier_name = match &event.tier {
        Some((name, role)) if r.roles.contains(role) => Some(name.as_str()),
        Some((name, _)) if event.reserved_seats.is_none() => {
            return Err(Error::TierOnly(name.clone()));
        }
        _ => None,
    };
    let existing = db::ticket_of(&mut tx, event.id, r.user).await?;
    match existing.as_ref().map(|t| t.status) {
        Some(TicketStatus::Confirmed) => return Ok(RsvpOutcome::AlreadyConfirmed(event)),
        Some(TicketStatus::CheckedIn) => return Ok(RsvpOutcome::AlreadyCheckedIn(event)),
        Some(TicketStatus::Revoked) => return Err(Error::TicketRevoked),
        Some(TicketStatus::Waitlisted) => {
            let position = position(&mut tx, &event, r.user).await?;
            return Ok(RsvpOutcome::AlreadyWaitlisted { event, position });
        }
        Some(TicketStatus::Cancelled) | None => {}
    }
    // Whoever is in line and could take a seat gets it first (held seats may have
    // been released since): then a free seat for this member is nobody else's.
    fill_seats(&mut tx, community.id, &event).await?;
    let seats = seats::now(&mut tx, &event).await?;
    let step = if seats.free_for(tier_name.is_some()) > 0 {
        TicketEvent::Seat
    } else {
        TicketEvent::Queue
    };
    let status = TicketStatus::Cancelled
        .transition(step)
        .map_err(invariant)?;
    let ticket = match existing {
        Some(t) => {
            db::request_again(&mut tx, t.id, status, tier_name).await?;
            Ticket {
                status,
                tier_name: tier_name.map(str::to_owned),
                ..t
            }
        }
        None => {
            db::insert_ticket(
                &mut tx,
                community.id,
                event.id,
                r.user,
                &r.display_name,
                tier_name,
                status,
            )
            .await?
        }
    };
    let action = if status == TicketStatus::Confirmed {
        notify::send_ticket(
            &mut tx,
            community.id,
            &event,
            &ticket,
            notify::TicketNews::Confirmed,
        )
        .await?;
        "ticket.confirmed"
    } else {
        "ticket.waitlisted"
    };
    audit_ticket(
        &mut tx,
        community.id,
        Actor::User(r.user),
        action,
        &ticket,
        r.correlation_id,
    )
    .await?;
    let outcome = if status == TicketStatus::Confirmed {
        RsvpOutcome::Confirmed(event)
    } else {
        let position = position(&mut tx, &event, r.user).await?;
        let held = (seats.free_for(true) > 0)
            .then(|| seats::held_text(&event))
            .flatten();
        RsvpOutcome::Waitlisted {
            event,
            position,
            held,
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

fn open_for_rsvp(event: &Event) -> Result<(), Error> {
    if event.status == EventStatus::Cancelled {
        return Err(Error::Cancelled);
    }
    if event.ends_at <= Utc::now() {
        return Err(Error::Ended);
    }
    Ok(())
}

/// A state the CHECKs make impossible, reported as a database inconsistency.
fn invariant(e: ticket::InvalidTransition) -> Error {
    Error::Database(sqlx::Error::Protocol(e.to_string()))
}

async fn position(conn: &mut PgConnection, event: &Event, user: UserId) -> Result<usize, Error> {
    let waiting = db::tickets(conn, event.id, &["waitlisted"]).await?;
    Ok(waiting
        .iter()
        .position(|t| t.user == user)
        .map_or(0, |i| i + 1))
}

/// Gives up a seat or a waitlist place; the seat goes to the next in line.
#[tracing::instrument(skip_all, fields(guild.id = %guild, user.id = %user))]
pub async fn cancel_rsvp(
    pool: &PgPool,
    guild: GuildId,
    code: &str,
    user: UserId,
) -> Result<Event, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let event = find_for_update(&mut tx, code).await?;
    let ticket = db::ticket_of(&mut tx, event.id, user)
        .await?
        .ok_or(Error::NoTicket)?;
    let next = ticket
        .status
        .transition(TicketEvent::Cancel)
        .map_err(|_| Error::TicketIs(ticket.status))?;
    db::set_ticket_status(&mut tx, ticket.id, next, false).await?;
    audit_ticket(
        &mut tx,
        community.id,
        Actor::User(user),
        "ticket.cancelled",
        &ticket,
        None,
    )
    .await?;
    fill_seats(&mut tx, community.id, &event).await?;
    tx.commit().await?;
    Ok(event)
}

/// A new token for a seated member (the old QR code stops admitting): the only way to
/// re-send a ticket, since its token is not stored.
pub async fn resend_ticket(
    pool: &PgPool,
    guild: GuildId,
    code: &str,
    user: UserId,
) -> Result<Event, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let event = find_for_update(&mut tx, code).await?;
    open_for_rsvp(&event)?;
    let ticket = db::ticket_of(&mut tx, event.id, user)
        .await?
        .ok_or(Error::NoTicket)?;
    if ticket.status != TicketStatus::Confirmed {
        return Err(Error::TicketIs(ticket.status));
    }
    notify::send_ticket(
        &mut tx,
        community.id,
        &event,
        &ticket,
        notify::TicketNews::Reissued,
    )
    .await?;
    audit_ticket(
        &mut tx,
        community.id,
        Actor::User(user),
        "ticket.reissued",
        &ticket,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(event)
}

/// An organiser takes a member's ticket (or waitlist place) away; the member is told
/// and the seat goes to the next in line. The token's digest stays, so the door says
/// "revoked" rather than "invalid".
#[tracing::instrument(skip_all, fields(guild.id = %guild, user.id = %member))]
pub async fn revoke(
    pool: &PgPool,
    guild: GuildId,
    code: &str,
    member: UserId,
    actor: UserId,
) -> Result<Event, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let event = find_for_update(&mut tx, code).await?;
    let ticket = db::ticket_of(&mut tx, event.id, member)
        .await?
        .ok_or(Error::NothingToRevoke(member))?;
    let next = ticket
        .status
        .transition(TicketEvent::Revoke)
        .map_err(|_| Error::NothingToRevoke(member))?;
    db::set_ticket_status(&mut tx, ticket.id, next, false).await?;
    notify::revoked(&mut tx, community.id, &event, &ticket).await?;
    audit_ticket(
        &mut tx,
        community.id,
        Actor::User(actor),
        "ticket.revoked",
        &ticket,
        None,
    )
    .await?;
    fill_seats(&mut tx, community.id, &event).await?;
    tx.commit().await?;
    Ok(event)
}

/// Promotes waitlisted members, in request order, into the free seats they may take
/// (`seats::promotions`); each gets a ticket by DM. Called after anything that may
/// free a seat or open held ones.
pub(super) async fn fill_seats(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Event,
) -> Result<(), Error> {
    if event.status == EventStatus::Cancelled || event.ends_at <= Utc::now() {
        return Ok(());
    }
    let mut seats = seats::now(conn, event).await?;
    if seats.free_for(true) == 0 {
        return Ok(());
    }
    let waiting = db::next_waitlisted(conn, event.id, i64::MAX).await?;
    let members: Vec<bool> = waiting.iter().map(|t| t.tier_name.is_some()).collect();
    for i in seats::promotions(&mut seats, &members) {
        let ticket = &waiting[i];
        let next = ticket
            .status
            .transition(TicketEvent::Promote)
            .map_err(invariant)?;
        db::set_ticket_status(conn, ticket.id, next, false).await?;
        notify::send_ticket(conn, community, event, ticket, notify::TicketNews::Promoted).await?;
        audit_ticket(
            conn,
            community,
            Actor::System("events"),
            "ticket.promoted",
            ticket,
            None,
        )
        .await?;
    }
    Ok(())
}

async fn audit_ticket(
    conn: &mut PgConnection,
    community: Uuid,
    actor: Actor,
    action: &'static str,
    ticket: &Ticket,
    correlation_id: Option<String>,
) -> Result<(), sqlx::Error> {
    let mut entry = NewEntry::new(community, actor, action, format!("user:{}", ticket.user));
    entry.after = Some(json!({"event": ticket.event_id, "ticket": ticket.id}));
    entry.names = vec![ticket.display_name.clone()];
    entry.correlation_id = correlation_id;
    audit::record(conn, entry).await?;
    Ok(())
}
