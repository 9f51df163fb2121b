//! SQL for tickets: seats, waitlist order, statuses and token digests.

use serenity::all::UserId;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{Ticket, sf, ticket_from_row};
use crate::events::ticket::TicketStatus;

pub async fn seats_taken(conn: &mut PgConnection, event: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from event_tickets
          where event_id = $1 and status in ('confirmed', 'checked_in')",
    )
    .bind(event)
    .fetch_one(conn)
    .await
}

/// Seated tickets as (tier members', everyone else's). A ticket carries the event's
/// tier name exactly when its holder had the tier when they asked.
pub async fn seated(conn: &mut PgConnection, event: Uuid) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select count(*) filter (where tier_name is not null),
                count(*) filter (where tier_name is null)
           from event_tickets
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

/// A member asks again (after cancelling): a fresh place in line, with the tier they
/// hold now.
pub async fn request_again(
    conn: &mut PgConnection,
    id: Uuid,
    status: TicketStatus,
    tier_name: Option<&str>,
) -> Result<(), sqlx::Error> {
    set_ticket_status(conn, id, status, true).await?;
    sqlx::query("update event_tickets set tier_name = $2 where id = $1")
        .bind(id)
        .bind(tier_name)
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
