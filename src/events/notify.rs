//! What members see: the event's post with RSVP buttons, ticket DMs (text and the QR
//! code as a PNG), reminders and cancellation notices. Every message is an outbox job
//! with an idempotency key; reminders and the cancellation fan-out are scheduled jobs
//! whose handlers decide from the database as it is when they run.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use serenity::all::{ChannelId, MessageId, UserId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::db::{self, Event, EventStatus, Ticket};
use super::ticket::{self, TOKEN_PREFIX};
use super::{CANCEL_BUTTON, CANCELLED_JOB, Error, POSTED_JOB, REMIND_JOB, qr, short_id};
use crate::db::tenant;
use crate::outbox::{self, Attachment, Button, FollowUp, Job, NewJob};

/// Why a ticket is being sent.
#[derive(Debug, Clone, Copy)]
pub enum TicketNews {
    Confirmed,
    Promoted,
    Reissued,
}

/// The event as members read it (Discord renders `<t:…>` in the reader's time zone).
pub fn details(event: &Event) -> String {
    let mut text = format!(
        "**{}** (`{}`)\nStarts <t:{}:F>, ends <t:{}:t> ({})",
        event.title,
        short_id(event.id),
        event.starts_at.timestamp(),
        event.ends_at.timestamp(),
        event.timezone,
    );
    if !event.venue.is_empty() {
        text.push_str(&format!("\nWhere: {}", event.venue));
    }
    match (&event.tier, event.reserved_seats) {
        (Some((tier, _)), None) => text.push_str(&format!("\nFor members of the {tier} tier")),
        (Some(_), Some(_)) => {
            if let Some(held) = super::seats::held_text(event) {
                text.push_str(&format!("\n{held}"));
            }
        }
        (None, _) => {}
    }
    if !event.description.is_empty() {
        text.push_str(&format!("\n\n{}", event.description));
    }
    text
}

/// The event's post in its channel, with the RSVP and cancel buttons. Once posted,
/// `events.posted` learns the message's id, so later changes can edit it.
pub async fn post(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Event,
    channel: ChannelId,
) -> Result<(), sqlx::Error> {
    let (title, description, buttons) = post_content(event);
    let job = Job::ModLog {
        channel_id: channel,
        title,
        description,
        buttons,
        on_posted: Some(FollowUp {
            name: POSTED_JOB.into(),
            data: json!({"event": event.id}),
        }),
    };
    let key = format!("event:{}:post", event.id);
    outbox::enqueue(conn, NewJob::new(Some(community), key, job)).await?;
    Ok(())
}

/// The post as the event is now: a cancelled event keeps its post, marked cancelled
/// and without buttons.
fn post_content(event: &Event) -> (String, String, Vec<Button>) {
    if event.status == EventStatus::Cancelled {
        return (
            format!("{} (cancelled)", event.title),
            format!("**This event is cancelled.**\n\n{}", details(event)),
            Vec::new(),
        );
    }
    let code = short_id(event.id);
    let buttons = vec![
        Button {
            custom_id: format!("{}{code}", super::RSVP_BUTTON),
            label: "RSVP".into(),
        },
        Button {
            custom_id: format!("{CANCEL_BUTTON}{code}"),
            label: "Cancel my RSVP".into(),
        },
    ];
    let description = format!("{}\n\nSeats: {}", details(event), event.capacity);
    (event.title.clone(), description, buttons)
}

/// After an edit or a cancellation: the post is edited to match (a job of its own per
/// change). Before its id is known there is nothing to edit yet; `events.posted` then
/// edits it if the event changed meanwhile.
pub async fn refresh_post(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Event,
) -> Result<(), sqlx::Error> {
    let (Some(channel_id), Some(message_id)) = (event.channel_id, event.message_id) else {
        return Ok(());
    };
    let (title, description, buttons) = post_content(event);
    let job = Job::EditMessage {
        channel_id,
        message_id,
        title,
        description,
        buttons,
    };
    let key = format!("event:{}:post-edit:{}", event.id, Uuid::now_v7());
    outbox::enqueue(conn, NewJob::new(Some(community), key, job)).await?;
    Ok(())
}

/// `events.posted`: records the post's message id; if the event was edited or
/// cancelled before the id was known, edits the post now. The update waits for an
/// edit holding the event's row, so either the edit sees the id or this sees the edit.
pub async fn posted(pool: &PgPool, community: Uuid, data: &serde_json::Value) -> Result<(), Error> {
    let message = data["message_id"]
        .as_str()
        .and_then(|m| m.parse::<u64>().ok())
        .filter(|m| *m != 0);
    let (Some(id), Some(message)) = (event_id(data), message) else {
        return Ok(());
    };
    let mut tx = tenant::begin(pool, community).await?;
    let changed = db::record_post(&mut tx, id, MessageId::new(message)).await?;
    if changed == Some(true)
        && let Some(event) = db::event(&mut tx, id).await?
    {
        refresh_post(&mut tx, community, &event).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Issues the ticket a fresh token (only its digest is stored) and DMs the member the
/// token and its QR code. The token lives in the job until Discord has it: the job
/// runtime drops the attachment from the job when it is done.
pub async fn send_ticket(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Event,
    ticket: &Ticket,
    news: TicketNews,
) -> Result<(), Error> {
    let token = ticket::new_secret(TOKEN_PREFIX)?;
    let hash = ticket::digest(&token);
    db::set_token(conn, ticket.id, &hash).await?;
    let png = qr::png(&token)?;
    let opening = match news {
        TicketNews::Confirmed => "You're in! Here is your ticket.",
        TicketNews::Promoted => {
            "A seat freed up and it's yours: you're off the waitlist. Here is your ticket."
        }
        TicketNews::Reissued => "Here is your new ticket (the previous one no longer works).",
    };
    let content = format!(
        "{opening}\n\n{}\n\nShow the QR code at the door, or give this code: `{token}`\nCan't come? `/event cancel-rsvp event:{}` frees your seat for someone else.",
        details(event),
        short_id(event.id),
    );
    let job = Job::SendDmFile {
        user_id: ticket.user,
        content,
        attachment: Attachment {
            filename: format!("ticket-{}.png", short_id(event.id)),
            content_type: "image/png".into(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(png),
        },
    };
    // The digest prefix makes each issue its own job (a re-issue is a new DM).
    let key = format!(
        "event:{}:ticket:{}:{}",
        event.id,
        ticket.id,
        hex::encode(&hash[..8])
    );
    outbox::enqueue(conn, NewJob::new(Some(community), key, job)).await?;
    Ok(())
}

pub async fn revoked(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Event,
    ticket: &Ticket,
) -> Result<(), sqlx::Error> {
    let content = format!(
        "Your ticket for **{}** (`{}`) was revoked by the organisers; it no longer admits you.",
        event.title,
        short_id(event.id)
    );
    let key = format!("event:{}:revoked:{}", event.id, ticket.id);
    let job = Job::SendDm {
        user_id: ticket.user,
        content,
        on_failure: None,
    };
    outbox::enqueue(conn, NewJob::new(Some(community), key, job)).await?;
    Ok(())
}

/// One scheduled reminder per configured lead time still in the future. The start
/// time is part of the data and the key: after an edit moves the start, the old
/// reminders see a different start and do nothing, and new ones are scheduled.
pub async fn schedule_reminders(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Event,
) -> Result<(), sqlx::Error> {
    let (_, hours) = db::settings(conn).await?;
    let now = Utc::now();
    for h in hours {
        let at = event.starts_at - Duration::hours(i64::from(h));
        if at <= now {
            continue;
        }
        let data = json!({"event": event.id, "hours": h, "starts_at": event.starts_at});
        let key = format!(
            "event:{}:remind:{h}:{}",
            event.id,
            event.starts_at.timestamp()
        );
        let job = Job::Scheduled {
            name: REMIND_JOB.into(),
            data,
        };
        outbox::enqueue(conn, NewJob::new(Some(community), key, job).at(at)).await?;
    }
    Ok(())
}

pub async fn schedule_cancelled(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Event,
) -> Result<(), sqlx::Error> {
    let job = Job::Scheduled {
        name: CANCELLED_JOB.into(),
        data: json!({"event": event.id}),
    };
    let key = format!("event:{}:cancelled", event.id);
    outbox::enqueue(conn, NewJob::new(Some(community), key, job)).await?;
    Ok(())
}

fn event_id(data: &serde_json::Value) -> Option<Uuid> {
    data["event"].as_str().and_then(|s| Uuid::parse_str(s).ok())
}

/// `events.remind`: DMs every seated member, unless the event was cancelled or moved
/// since this reminder was scheduled. Idempotent by the per-member key.
pub async fn remind(pool: &PgPool, community: Uuid, data: &serde_json::Value) -> Result<(), Error> {
    let Some(id) = event_id(data) else {
        return Ok(());
    };
    let hours = data["hours"].as_i64().unwrap_or(0);
    let planned: Option<DateTime<Utc>> = serde_json::from_value(data["starts_at"].clone()).ok();
    let mut tx = tenant::begin(pool, community).await?;
    let Some(event) = db::event(&mut tx, id).await? else {
        return Ok(());
    };
    if event.status == EventStatus::Cancelled || planned != Some(event.starts_at) {
        return Ok(());
    }
    let when = if hours == 1 {
        "in 1 hour".to_owned()
    } else {
        format!("in {hours} hours")
    };
    for t in db::tickets(&mut tx, id, &["confirmed"]).await? {
        let content = format!(
            "Reminder: **{}** starts {when}, <t:{}:R>.\n{}\n`/event ticket event:{}` re-sends your ticket.",
            event.title,
            event.starts_at.timestamp(),
            if event.venue.is_empty() {
                String::new()
            } else {
                format!("Where: {}", event.venue)
            },
            short_id(event.id),
        );
        dm(
            &mut tx,
            community,
            format!(
                "event:{id}:remind:{hours}:{}:{}",
                event.starts_at.timestamp(),
                t.user
            ),
            t.user,
            content,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `events.cancelled`: tells every seated and waitlisted member.
pub async fn notify_cancelled(
    pool: &PgPool,
    community: Uuid,
    data: &serde_json::Value,
) -> Result<(), Error> {
    let Some(id) = event_id(data) else {
        return Ok(());
    };
    let mut tx = tenant::begin(pool, community).await?;
    let Some(event) = db::event(&mut tx, id).await? else {
        return Ok(());
    };
    for t in db::tickets(&mut tx, id, &["confirmed", "waitlisted"]).await? {
        let content = format!(
            "**{}** (<t:{}:F>) is cancelled. Sorry! Your ticket will not be needed.",
            event.title,
            event.starts_at.timestamp()
        );
        dm(
            &mut tx,
            community,
            format!("event:{id}:cancelled:{}", t.user),
            t.user,
            content,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn dm(
    conn: &mut PgConnection,
    community: Uuid,
    key: String,
    user_id: UserId,
    content: String,
) -> Result<(), sqlx::Error> {
    let job = Job::SendDm {
        user_id,
        content,
        on_failure: None,
    };
    outbox::enqueue(conn, NewJob::new(Some(community), key, job)).await?;
    Ok(())
}
