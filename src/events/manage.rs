//! Organising: settings, creating, editing, cancelling, listing and showing events,
//! and the door's staff keys. Each change commits with its audit entry and its effects
//! (the post, reminders, cancellation notices, promotions) as outbox jobs.

use chrono::{DateTime, Utc};
use serde_json::json;
use serenity::all::{ChannelId, GuildId, RoleId, UserId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::db::{self, Event, EventFields, EventStatus};
use super::{Error, find, find_for_update, notify, rsvp, seats, short_id, ticket, when};
use crate::audit::{self, Actor, NewEntry};
use crate::community;

/// Sets the organiser role and the reminder lead times (hours before the start).
pub async fn configure(
    pool: &PgPool,
    guild: GuildId,
    organizer_role: Option<RoleId>,
    reminder_hours: Option<Vec<i32>>,
    actor: UserId,
) -> Result<(Option<RoleId>, Vec<i32>), Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let (old_role, old_hours) = db::settings(&mut tx).await?;
    let role = organizer_role.or(old_role);
    let hours = reminder_hours.unwrap_or_else(|| old_hours.clone());
    if hours.len() > 5 || hours.iter().any(|h| !(1..=24 * 30).contains(h)) {
        return Err(Error::BadTime(
            "reminders: up to five lead times, each 1 to 720 hours".into(),
        ));
    }
    db::save_settings(&mut tx, community.id, role, &hours).await?;
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(actor),
        "event.settings",
        "events".into(),
    );
    entry.before = Some(
        json!({"organizer_role": old_role.map(|r| r.to_string()), "reminder_hours": old_hours}),
    );
    entry.after =
        Some(json!({"organizer_role": role.map(|r| r.to_string()), "reminder_hours": hours}));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok((role, hours))
}

/// Sets (or, with `None`, clears) the role admitted attendees get at the door.
pub async fn set_attended_role(
    pool: &PgPool,
    guild: GuildId,
    role: Option<RoleId>,
    actor: UserId,
) -> Result<(), Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    db::set_attended_role(&mut tx, community.id, role).await?;
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(actor),
        "event.settings",
        "events".into(),
    );
    entry.after = Some(json!({"attended_role": role.map(|r| r.to_string())}));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// What `/event create` asks for.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub guild: GuildId,
    pub fields: EventFields,
    /// The tier restriction, by name.
    pub tier: Option<String>,
    /// Where the post with the RSVP buttons goes.
    pub channel: ChannelId,
    pub organizer: UserId,
    pub correlation_id: Option<String>,
}

fn check_fields(f: &EventFields) -> Result<(), Error> {
    let len = |s: &str| s.chars().count();
    if f.title.trim().is_empty()
        || len(&f.title) > 100
        || len(&f.description) > 1500
        || len(&f.venue) > 300
    {
        return Err(Error::BadText);
    }
    if f.ends_at <= f.starts_at {
        return Err(Error::EndsBeforeStart);
    }
    if !(1..=100_000).contains(&f.capacity) {
        return Err(Error::BadCapacity);
    }
    check_reserved(f)
}

/// Held seats need a tier and fit in the capacity; a release time needs held seats.
fn check_reserved(f: &EventFields) -> Result<(), Error> {
    match f.reserved_seats {
        Some(_) if f.tier_id.is_none() => Err(Error::ReservedNeedsTier),
        Some(n) if n < 0 || n > f.capacity => Err(Error::ReservedOverCapacity(f.capacity)),
        None if f.reserved_until.is_some() => Err(Error::ReleaseNeedsReserved),
        _ => Ok(()),
    }
}

/// Records the event, posts it with RSVP buttons and schedules its reminders.
#[tracing::instrument(skip_all, fields(guild.id = %new.guild))]
pub async fn create(pool: &PgPool, new: NewEvent) -> Result<Event, Error> {
    let mut fields = new.fields;
    fields.title = fields.title.trim().to_owned();
    if fields.ends_at <= Utc::now() {
        return Err(Error::Ended);
    }
    let (community, mut tx) = community::begin(pool, new.guild).await?;
    if let Some(name) = &new.tier {
        fields.tier_id = Some(
            db::tier_by_name(&mut tx, name)
                .await?
                .ok_or_else(|| Error::NoSuchTier(name.clone()))?,
        );
    }
    check_fields(&fields)?;
    let id = db::insert_event(&mut tx, community.id, &fields, new.organizer).await?;
    db::set_post(&mut tx, id, new.channel).await?;
    let event = db::event(&mut tx, id)
        .await?
        .ok_or_else(|| Error::NoSuchEvent(short_id(id)))?;
    notify::post(&mut tx, community.id, &event, new.channel).await?;
    notify::schedule_reminders(&mut tx, community.id, &event).await?;
    seats::schedule_release(&mut tx, community.id, &event).await?;
    audit_event(
        &mut tx,
        community.id,
        new.organizer,
        "event.created",
        None,
        &event,
        new.correlation_id,
    )
    .await?;
    tx.commit().await?;
    Ok(event)
}

/// Changes to an event; `None` keeps a field. Times are as the organiser typed them,
/// read in the new time zone if one is given, else in the event's own.
#[derive(Debug, Clone, Default)]
pub struct EventChange {
    pub title: Option<String>,
    pub description: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub timezone: Option<String>,
    pub capacity: Option<i32>,
    pub venue: Option<String>,
    /// Seats held for the tier's members (0: none any more).
    pub reserved_seats: Option<i32>,
    /// When the held seats still free open to everyone.
    pub reserved_until: Option<String>,
}

impl EventChange {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.start.is_none()
            && self.end.is_none()
            && self.timezone.is_none()
            && self.capacity.is_none()
            && self.venue.is_none()
            && self.reserved_seats.is_none()
            && self.reserved_until.is_none()
    }
}

/// The times a change names, in UTC, and the zone to store.
struct ChangedTimes {
    timezone: String,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    reserved_until: Option<DateTime<Utc>>,
}

fn changed_times(change: &EventChange, before: &Event) -> Result<ChangedTimes, Error> {
    let timezone = match &change.timezone {
        Some(tz) => when::zone(tz).map_err(Error::BadTime)?.name(),
        None => before.timezone.clone(),
    };
    let read = |text: &Option<String>| {
        text.as_deref()
            .map(|t| when::parse(t, &timezone))
            .transpose()
            .map_err(Error::BadTime)
    };
    Ok(ChangedTimes {
        starts_at: read(&change.start)?,
        ends_at: read(&change.end)?,
        reserved_until: read(&change.reserved_until)?,
        timezone,
    })
}

/// Edits an event. More seats (or fewer held ones) promote waitlisted members; a new
/// start time schedules new reminders and a new release time a new release (the old
/// jobs see the changed time and do nothing).
#[tracing::instrument(skip_all, fields(guild.id = %guild))]
pub async fn edit(
    pool: &PgPool,
    guild: GuildId,
    code: &str,
    change: EventChange,
    actor: UserId,
) -> Result<Event, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let before = find_for_update(&mut tx, code).await?;
    if before.status == EventStatus::Cancelled {
        return Err(Error::Cancelled);
    }
    let times = changed_times(&change, &before)?;
    let starts_at = times.starts_at.unwrap_or(before.starts_at);
    let fields = EventFields {
        title: change
            .title
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|| before.title.clone()),
        description: change
            .description
            .unwrap_or_else(|| before.description.clone()),
        starts_at,
        // A new start alone keeps the event's length.
        ends_at: times
            .ends_at
            .unwrap_or_else(|| before.ends_at + (starts_at - before.starts_at)),
        timezone: times.timezone,
        capacity: change.capacity.unwrap_or(before.capacity),
        venue: change.venue.unwrap_or_else(|| before.venue.clone()),
        tier_id: before.tier_id,
        reserved_seats: change.reserved_seats.or(before.reserved_seats),
        reserved_until: times.reserved_until.or(before.reserved_until),
    };
    check_fields(&fields)?;
    let taken = db::seats_taken(&mut tx, before.id).await?;
    if i64::from(fields.capacity) < taken {
        return Err(Error::CapacityBelowSeats(taken));
    }
    db::update_event(&mut tx, before.id, &fields).await?;
    let event = db::event(&mut tx, before.id)
        .await?
        .ok_or_else(|| Error::NoSuchEvent(code.into()))?;
    if event.starts_at != before.starts_at {
        notify::schedule_reminders(&mut tx, community.id, &event).await?;
    }
    if event.reserved_until != before.reserved_until {
        seats::schedule_release(&mut tx, community.id, &event).await?;
    }
    rsvp::fill_seats(&mut tx, community.id, &event).await?;
    notify::refresh_post(&mut tx, community.id, &event).await?;
    audit_event(
        &mut tx,
        community.id,
        actor,
        "event.edited",
        Some(&before),
        &event,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(event)
}

/// Cancels an event; every ticket holder and waitlisted member is told (a scheduled
/// job fans the DMs out), and the door admits nobody for it any more.
#[tracing::instrument(skip_all, fields(guild.id = %guild))]
pub async fn cancel(
    pool: &PgPool,
    guild: GuildId,
    code: &str,
    actor: UserId,
) -> Result<Event, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let before = find_for_update(&mut tx, code).await?;
    if before.status == EventStatus::Cancelled {
        return Err(Error::Cancelled);
    }
    db::set_status(&mut tx, before.id, EventStatus::Cancelled).await?;
    let mut event = before.clone();
    event.status = EventStatus::Cancelled;
    notify::schedule_cancelled(&mut tx, community.id, &event).await?;
    notify::refresh_post(&mut tx, community.id, &event).await?;
    audit_event(
        &mut tx,
        community.id,
        actor,
        "event.cancelled",
        Some(&before),
        &event,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(event)
}

/// Events that have not ended yet, soonest first.
pub async fn list(pool: &PgPool, guild: GuildId) -> Result<Vec<Event>, Error> {
    let (_, mut tx) = community::begin(pool, guild).await?;
    let events = db::upcoming(&mut tx, false, 25).await?;
    tx.commit().await?;
    Ok(events)
}

/// An event with its numbers.
#[derive(Debug, Clone)]
pub struct Overview {
    pub event: Event,
    pub confirmed: i64,
    pub waitlisted: i64,
    pub checked_in: i64,
    pub cancelled: i64,
    pub revoked: i64,
    /// Admissions per quarter hour from the first one.
    pub arrivals: Vec<(DateTime<Utc>, usize)>,
}

impl Overview {
    /// Seated members who have not come (only meaningful once the event started).
    pub fn no_shows(&self) -> i64 {
        self.confirmed
    }
}

pub async fn show(pool: &PgPool, guild: GuildId, code: &str) -> Result<Overview, Error> {
    let (_, mut tx) = community::begin(pool, guild).await?;
    let event = find(&mut tx, code).await?;
    let counts = db::counts(&mut tx, event.id).await?;
    let arrivals = db::arrivals(&mut tx, event.id).await?;
    tx.commit().await?;
    let n = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    Ok(Overview {
        confirmed: n("confirmed"),
        waitlisted: n("waitlisted"),
        checked_in: n("checked_in"),
        cancelled: n("cancelled"),
        revoked: n("revoked"),
        arrivals: bucket_arrivals(&arrivals, 15),
        event,
    })
}

/// Counts of admissions per `minutes`-long slot, from the first admission's slot.
fn bucket_arrivals(times: &[DateTime<Utc>], minutes: i64) -> Vec<(DateTime<Utc>, usize)> {
    let slot = minutes * 60;
    let mut out: Vec<(DateTime<Utc>, usize)> = Vec::new();
    for t in times {
        let start = t.timestamp() - t.timestamp().rem_euclid(slot);
        let start = DateTime::from_timestamp(start, 0).unwrap_or(*t);
        match out.last_mut() {
            Some((s, n)) if *s == start => *n += 1,
            _ => out.push((start, 1)),
        }
    }
    out
}

/// A new staff key for the event's door (shown once; only its digest is kept), or,
/// with `revoke`, revokes every key of the event. Returns the key, or the number revoked.
pub async fn staff_key(
    pool: &PgPool,
    guild: GuildId,
    code: &str,
    revoke: bool,
    actor: UserId,
) -> Result<Result<String, u64>, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let event = find(&mut tx, code).await?;
    let target = format!("event:{}", event.id);
    let outcome = if revoke {
        let n = db::revoke_staff_keys(&mut tx, event.id).await?;
        let mut entry = NewEntry::new(
            community.id,
            Actor::User(actor),
            "event.staff_keys_revoked",
            target,
        );
        entry.after = Some(json!({"revoked": n}));
        audit::record(&mut tx, entry).await?;
        Err(n)
    } else {
        if event.status == EventStatus::Cancelled {
            return Err(Error::Cancelled);
        }
        let key = ticket::new_secret(ticket::STAFF_KEY_PREFIX)?;
        db::insert_staff_key(
            &mut tx,
            community.id,
            event.id,
            &ticket::digest(&key),
            actor,
        )
        .await?;
        audit::record(
            &mut tx,
            NewEntry::new(
                community.id,
                Actor::User(actor),
                "event.staff_key_created",
                target,
            ),
        )
        .await?;
        Ok(key)
    };
    tx.commit().await?;
    Ok(outcome)
}

async fn audit_event(
    conn: &mut PgConnection,
    community: Uuid,
    actor: UserId,
    action: &'static str,
    before: Option<&Event>,
    after: &Event,
    correlation_id: Option<String>,
) -> Result<(), sqlx::Error> {
    let mut entry = NewEntry::new(
        community,
        Actor::User(actor),
        action,
        format!("event:{}", after.id),
    );
    entry.before = before.map(event_json);
    entry.after = Some(event_json(after));
    entry.correlation_id = correlation_id;
    audit::record(conn, entry).await?;
    Ok(())
}

fn event_json(e: &Event) -> serde_json::Value {
    json!({
        "title": e.title,
        "starts_at": e.starts_at,
        "ends_at": e.ends_at,
        "timezone": e.timezone,
        "capacity": e.capacity,
        "venue": e.venue,
        "tier": e.tier.as_ref().map(|(name, _)| name),
        "reserved_seats": e.reserved_seats,
        "reserved_until": e.reserved_until,
        "status": e.status.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_fall_into_quarter_hours() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("time")
                .with_timezone(&Utc)
        };
        let times = [
            t("2026-12-01T18:01:00Z"),
            t("2026-12-01T18:14:59Z"),
            t("2026-12-01T18:15:00Z"),
            t("2026-12-01T19:00:00Z"),
        ];
        let slots = bucket_arrivals(&times, 15);
        assert_eq!(
            slots,
            vec![
                (t("2026-12-01T18:00:00Z"), 2),
                (t("2026-12-01T18:15:00Z"), 1),
                (t("2026-12-01T19:00:00Z"), 1)
            ]
        );
    }
}
