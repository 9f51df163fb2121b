//! `/event`: organisers (Manage Events, or the organiser role; checked on the server
//! side) create, edit, cancel and inspect events, revoke tickets and make door staff
//! keys; members RSVP, cancel and get their ticket re-sent. Every reply is ephemeral;
//! the event itself is posted in its channel with RSVP buttons (see `components`).

use std::fmt::Write as _;

use serenity::all::{ChannelId, CreateAttachment, Mentionable, Role, User};

use crate::events::{self, EventChange, EventFields, NewEvent, Rsvp, RsvpOutcome, short_id, when};

use super::{CommandError, Context, guild, reply, reply_with_file};

impl From<events::Error> for CommandError {
    fn from(e: events::Error) -> Self {
        if e.is_user_error() {
            CommandError::User(e.to_string())
        } else {
            CommandError::Internal(e.into())
        }
    }
}

/// Events with RSVPs, a waitlist, QR tickets and door check-in
#[poise::command(
    slash_command,
    guild_only,
    subcommands(
        "create",
        "edit",
        "cancel",
        "list",
        "show",
        "rsvp",
        "cancel_rsvp",
        "ticket",
        "revoke",
        "staff_key",
        "stats",
        "organizers",
        "attended_role"
    ),
    subcommand_required
)]
pub async fn event(_: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

fn user_error(text: String) -> CommandError {
    CommandError::User(text)
}

/// Create an event and post it with RSVP buttons (organisers)
#[poise::command(slash_command, guild_only, check = "super::checks::organizer")]
#[expect(clippy::too_many_arguments, reason = "one slash option per parameter")]
async fn create(
    ctx: Context<'_>,
    #[description = "What it is called"]
    #[max_length = 100]
    title: String,
    #[description = "Start, e.g. 2026-12-24 18:30 (in the time zone)"] start: String,
    #[description = "End, e.g. 2026-12-24 21:00"] end: String,
    #[description = "How many seats"]
    #[min = 1]
    #[max = 100000]
    capacity: i32,
    #[description = "An IANA zone like Europe/Berlin, UTC, or an offset like +01:00 (default UTC)"]
    timezone: Option<String>,
    #[description = "Where: an address or an online link"]
    #[max_length = 300]
    venue: Option<String>,
    #[description = "More about it"]
    #[max_length = 1500]
    description: Option<String>,
    #[description = "A tier: alone, only its members may RSVP; with reserved_seats, they get held seats"]
    tier: Option<String>,
    #[description = "Seats held for the tier's members; everyone else may book the rest"]
    #[min = 0]
    #[max = 100000]
    reserved_seats: Option<i32>,
    #[description = "When held seats still free open to everyone, e.g. 2026-12-20 12:00 (default: never)"]
    reserved_until: Option<String>,
    #[description = "Where to post it (default: here)"] channel: Option<ChannelId>,
) -> Result<(), CommandError> {
    // Stored by its canonical name (or offset); an unknown zone is the organiser's mistake.
    let timezone = when::zone(timezone.as_deref().unwrap_or("UTC"))
        .map_err(user_error)?
        .name();
    let reserved_until = reserved_until
        .map(|t| when::parse(&t, &timezone))
        .transpose()
        .map_err(user_error)?;
    let fields = EventFields {
        title,
        description: description.unwrap_or_default(),
        starts_at: when::parse(&start, &timezone).map_err(user_error)?,
        ends_at: when::parse(&end, &timezone).map_err(user_error)?,
        timezone,
        capacity,
        venue: venue.unwrap_or_default(),
        tier_id: None,
        reserved_seats,
        reserved_until,
    };
    let new = NewEvent {
        guild: guild(ctx)?,
        fields,
        tier,
        channel: channel.unwrap_or(ctx.channel_id()),
        organizer: ctx.author().id,
        correlation_id: Some(ctx.id().to_string()),
    };
    let event = events::create(&ctx.data().pool, new).await?;
    reply(
        ctx,
        format!(
            "Created **{}** (code `{}`), {} seats. It is being posted with RSVP buttons; reminders go out before it starts. Door staff need a key: `/event staff-key event:{}`.",
            event.title,
            short_id(event.id),
            event.capacity,
            short_id(event.id)
        ),
    )
    .await
}

/// Change an event; more seats promote waitlisted members (organisers)
#[poise::command(slash_command, guild_only, check = "super::checks::organizer")]
#[expect(clippy::too_many_arguments, reason = "one slash option per parameter")]
async fn edit(
    ctx: Context<'_>,
    #[description = "The event's code (see /event list)"] event: String,
    #[description = "New title"]
    #[max_length = 100]
    title: Option<String>,
    #[description = "New start, e.g. 2026-12-24 18:30"] start: Option<String>,
    #[description = "New end"] end: Option<String>,
    #[description = "New seat count"]
    #[min = 1]
    #[max = 100000]
    capacity: Option<i32>,
    #[description = "New time zone (e.g. Europe/Berlin); new times are read in it, else in the event's"]
    timezone: Option<String>,
    #[description = "New venue or link"]
    #[max_length = 300]
    venue: Option<String>,
    #[description = "New description"]
    #[max_length = 1500]
    description: Option<String>,
    #[description = "Seats held for the tier's members (0 opens them all now)"]
    #[min = 0]
    #[max = 100000]
    reserved_seats: Option<i32>,
    #[description = "When held seats still free open to everyone"] reserved_until: Option<String>,
) -> Result<(), CommandError> {
    let change = EventChange {
        title,
        description,
        start,
        end,
        timezone,
        capacity,
        venue,
        reserved_seats,
        reserved_until,
    };
    if change.is_empty() {
        return Err(events::Error::NothingToChange.into());
    }
    let e = events::edit(
        &ctx.data().pool,
        guild(ctx)?,
        &event,
        change,
        ctx.author().id,
    )
    .await?;
    reply(
        ctx,
        format!(
            "Saved **{}** (`{}`): starts <t:{}:F>, {} seats.",
            e.title,
            short_id(e.id),
            e.starts_at.timestamp(),
            e.capacity
        ),
    )
    .await
}

/// Cancel an event; everyone with a ticket or on the waitlist is told (organisers)
#[poise::command(slash_command, guild_only, check = "super::checks::organizer")]
async fn cancel(
    ctx: Context<'_>,
    #[description = "The event's code"] event: String,
) -> Result<(), CommandError> {
    let e = events::cancel(&ctx.data().pool, guild(ctx)?, &event, ctx.author().id).await?;
    reply(
        ctx,
        format!(
            "Cancelled **{}**; everyone holding a ticket or waiting is being told by DM.",
            e.title
        ),
    )
    .await
}

/// Upcoming events
#[poise::command(slash_command, guild_only)]
async fn list(ctx: Context<'_>) -> Result<(), CommandError> {
    let all = events::list(&ctx.data().pool, guild(ctx)?).await?;
    if all.is_empty() {
        return reply(ctx, "No upcoming events.".into()).await;
    }
    let mut text = String::from("Upcoming events:\n");
    for e in all {
        let _ = writeln!(
            text,
            "`{}` **{}** <t:{}:F>, {} seats",
            short_id(e.id),
            e.title,
            e.starts_at.timestamp(),
            e.capacity
        );
    }
    reply(ctx, text).await
}

/// An event's details and numbers
#[poise::command(slash_command, guild_only)]
async fn show(
    ctx: Context<'_>,
    #[description = "The event's code"] event: String,
) -> Result<(), CommandError> {
    let o = events::show(&ctx.data().pool, guild(ctx)?, &event).await?;
    let status = if o.event.status == events::EventStatus::Cancelled {
        "\n**Cancelled.**"
    } else {
        ""
    };
    let seated = o.confirmed + o.checked_in;
    reply(
        ctx,
        format!(
            "{}{status}\n\nSeats taken: {seated} of {} · waitlist: {}",
            events::notify_details(&o.event),
            o.event.capacity,
            o.waitlisted
        ),
    )
    .await
}

/// RSVP for an event (you get your ticket by DM, or a waitlist place)
#[poise::command(slash_command, guild_only)]
async fn rsvp(
    ctx: Context<'_>,
    #[description = "The event's code"] event: String,
) -> Result<(), CommandError> {
    let roles = match ctx {
        poise::Context::Application(a) => a
            .interaction
            .member
            .as_ref()
            .map(|m| m.roles.clone())
            .unwrap_or_default(),
        poise::Context::Prefix(_) => Vec::new(),
    };
    let request = Rsvp {
        guild: guild(ctx)?,
        code: event,
        user: ctx.author().id,
        display_name: display_name(ctx),
        roles,
        correlation_id: Some(ctx.id().to_string()),
    };
    let outcome = events::rsvp(&ctx.data().pool, request).await?;
    reply(ctx, rsvp_text(&outcome)).await
}

/// The reply to an RSVP, for the command and the button alike.
pub(crate) fn rsvp_text(outcome: &RsvpOutcome) -> String {
    match outcome {
        RsvpOutcome::Confirmed(e) => format!(
            "You're in for **{}**! Your ticket with its QR code is on its way by DM.",
            e.title
        ),
        RsvpOutcome::Waitlisted {
            event,
            position,
            held: None,
        } => format!(
            "**{}** is full; you're number {position} on the waitlist. If a seat frees up, it's yours and I'll DM you the ticket.",
            event.title
        ),
        RsvpOutcome::Waitlisted {
            event,
            position,
            held: Some(held),
        } => format!(
            "The open seats of **{}** are taken ({held}); you're number {position} on the waitlist. When a seat opens to you, it's yours and I'll DM you the ticket.",
            event.title
        ),
        RsvpOutcome::AlreadyConfirmed(e) => format!(
            "You already have a ticket for **{}**. `/event ticket` re-sends it.",
            e.title
        ),
        RsvpOutcome::AlreadyWaitlisted { event, position } => {
            format!(
                "You're already on the waitlist for **{}** (number {position}).",
                event.title
            )
        }
        RsvpOutcome::AlreadyCheckedIn(e) => {
            format!("You're already checked in at **{}**.", e.title)
        }
    }
}

fn display_name(ctx: Context<'_>) -> String {
    let nick = match ctx {
        poise::Context::Application(a) => {
            a.interaction.member.as_ref().and_then(|m| m.nick.clone())
        }
        poise::Context::Prefix(_) => None,
    };
    let author = ctx.author();
    nick.or_else(|| author.global_name.clone())
        .unwrap_or_else(|| author.name.clone())
}

/// Give up your seat or waitlist place
#[poise::command(slash_command, guild_only, rename = "cancel-rsvp")]
async fn cancel_rsvp(
    ctx: Context<'_>,
    #[description = "The event's code"] event: String,
) -> Result<(), CommandError> {
    let e = events::cancel_rsvp(&ctx.data().pool, guild(ctx)?, &event, ctx.author().id).await?;
    reply(
        ctx,
        format!("Done: you no longer have a place at **{}**.", e.title),
    )
    .await
}

/// Send me my ticket again (a new code; the old one stops working)
#[poise::command(slash_command, guild_only)]
async fn ticket(
    ctx: Context<'_>,
    #[description = "The event's code"] event: String,
) -> Result<(), CommandError> {
    let e = events::resend_ticket(&ctx.data().pool, guild(ctx)?, &event, ctx.author().id).await?;
    reply(
        ctx,
        format!(
            "A new ticket for **{}** is on its way by DM; the previous one no longer works.",
            e.title
        ),
    )
    .await
}

/// Revoke a member's ticket or waitlist place (organisers)
#[poise::command(slash_command, guild_only, check = "super::checks::organizer")]
async fn revoke(
    ctx: Context<'_>,
    #[description = "The event's code"] event: String,
    #[description = "Whose ticket"] member: User,
) -> Result<(), CommandError> {
    let e = events::revoke(
        &ctx.data().pool,
        guild(ctx)?,
        &event,
        member.id,
        ctx.author().id,
    )
    .await?;
    reply(
        ctx,
        format!(
            "Revoked {}'s ticket for **{}**; they are told, and the seat goes to the next in line.",
            member.mention(),
            e.title
        ),
    )
    .await
}

/// A key for door staff (shown once), or revoke every key of the event (organisers)
#[poise::command(
    slash_command,
    guild_only,
    check = "super::checks::organizer",
    rename = "staff-key"
)]
async fn staff_key(
    ctx: Context<'_>,
    #[description = "The event's code"] event: String,
    #[description = "Revoke every key of this event instead"] revoke: Option<bool>,
) -> Result<(), CommandError> {
    let made = events::staff_key(
        &ctx.data().pool,
        guild(ctx)?,
        &event,
        revoke.unwrap_or(false),
        ctx.author().id,
    )
    .await?;
    let text = match made {
        Ok(key) => format!(
            "Door staff key (shown only now; I keep just a fingerprint):\n`{key}`\nOpen `/checkin` on the bot's web address, enter the key once, then scan tickets. `/event staff-key revoke:True` disables every key of this event."
        ),
        Err(n) => format!("Revoked {n} staff key(s); scans with them are refused."),
    };
    reply(ctx, text).await
}

/// RSVPs, waitlist, check-ins, no-shows and arrivals over time (organisers)
#[poise::command(slash_command, guild_only, check = "super::checks::organizer")]
async fn stats(
    ctx: Context<'_>,
    #[description = "The event's code"] event: String,
) -> Result<(), CommandError> {
    let o = events::show(&ctx.data().pool, guild(ctx)?, &event).await?;
    let mut text = format!(
        "**{}**\nRSVPs (seated): {} · waitlist: {} · checked in: {} · not (yet) arrived: {} · cancelled: {} · revoked: {}",
        o.event.title,
        o.confirmed + o.checked_in,
        o.waitlisted,
        o.checked_in,
        o.no_shows(),
        o.cancelled,
        o.revoked
    );
    if o.arrivals.is_empty() {
        return reply(ctx, text).await;
    }
    text.push_str("\nArrivals per quarter hour (UTC):\n```\n");
    for (at, n) in &o.arrivals {
        let _ = writeln!(text, "{} {n}", at.format("%H:%M"));
    }
    text.push_str("```");
    let chart = events::chart::arrivals_png(&o.arrivals)
        .map_err(|e| CommandError::Internal(anyhow::anyhow!("drawing the arrivals chart: {e}")))?;
    reply_with_file(ctx, text, CreateAttachment::bytes(chart, "arrivals.png")).await
}

/// The role attendees get when they are admitted at the door (organisers)
#[poise::command(
    slash_command,
    guild_only,
    rename = "attended-role",
    check = "super::checks::organizer"
)]
async fn attended_role(
    ctx: Context<'_>,
    #[description = "The role (must be below mine); leave empty to stop giving one"] role: Option<
        Role,
    >,
) -> Result<(), CommandError> {
    let role = role.map(|r| r.id);
    events::set_attended_role(&ctx.data().pool, guild(ctx)?, role, ctx.author().id).await?;
    let text = match role {
        Some(r) => format!("Admitted attendees now get {}.", r.mention()),
        None => "Admitted attendees get no role.".to_owned(),
    };
    reply(ctx, text).await
}

/// Who organises events besides Manage Events, and when reminders go out (organisers)
#[poise::command(slash_command, guild_only, check = "super::checks::organizer")]
async fn organizers(
    ctx: Context<'_>,
    #[description = "The organiser role"] role: Option<Role>,
    #[description = "Reminder lead times in hours, e.g. 24,1"] reminders: Option<String>,
) -> Result<(), CommandError> {
    let hours = reminders
        .map(|r| {
            r.split(',')
                .map(|h| h.trim().parse::<i32>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    user_error("Reminders are hours separated by commas, e.g. `24,1`.".into())
                })
        })
        .transpose()?;
    let (role, hours) = events::configure(
        &ctx.data().pool,
        guild(ctx)?,
        role.map(|r| r.id),
        hours,
        ctx.author().id,
    )
    .await?;
    let role = role.map_or_else(
        || "none (Manage Events only)".to_owned(),
        |r| r.mention().to_string(),
    );
    let hours: Vec<String> = hours.iter().map(|h| format!("{h} h")).collect();
    reply(
        ctx,
        format!(
            "Saved. Organiser role: {role}. Reminders: {} before the start.",
            hours.join(", ")
        ),
    )
    .await
}
