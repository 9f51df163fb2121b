//! Reports: members report a member (`/report`) or a message (the "Report message"
//! context menu). Reports of one message merge into one report. Each new report is
//! posted to the admin channel with Claim, Resolve and Dismiss buttons; resolving can
//! record a case in the same transaction. The reported member is never told who
//! reported them. Reporters are rate limited, and moderators can mute one who reports
//! in bad faith.

pub mod db;
pub mod status;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use serenity::all::{ChannelId, GuildId, Mentionable, MessageId, UserId};
use sqlx::PgPool;

use super::{Case, Error, Sanction};
use crate::audit::{self, Actor, NewEntry};
use crate::community;
use crate::outbox::{self, Button, Job, NewJob};
pub use db::Report;
pub use status::{Category, Status};

/// How many reports one member may file in [`RATE_WINDOW_MINS`].
pub const RATE_LIMIT: i64 = 5;
pub const RATE_WINDOW_MINS: i64 = 10;

/// Button `custom_id` prefixes; the report id follows.
pub const CLAIM: &str = "report:claim:";
pub const RESOLVE: &str = "report:resolve:";
pub const DISMISS: &str = "report:dismiss:";

#[derive(Debug, Clone)]
pub struct NewReport {
    pub guild: GuildId,
    pub reporter: UserId,
    pub target: UserId,
    pub channel: Option<ChannelId>,
    pub message: Option<MessageId>,
    pub category: Category,
    pub reason: String,
}

/// What filing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filed {
    New(i32),
    /// Added to the existing report of the same message.
    Merged(i32),
    /// This reporter had already reported that message.
    Already(i32),
}

pub async fn file(pool: &PgPool, r: NewReport) -> Result<Filed, Error> {
    let reason = r.reason.trim();
    if reason.is_empty() || reason.chars().count() > super::MAX_REASON_CHARS {
        return Err(Error::BadReason);
    }
    if r.reporter == r.target {
        return Err(Error::Report("You can't report yourself.".into()));
    }
    let (community, mut tx) = community::begin(pool, r.guild).await?;
    if let Some(until) = db::muted_until(&mut tx, community.id, r.reporter).await? {
        return Err(Error::Report(format!(
            "The moderators paused your reports until <t:{}:f>.",
            until.timestamp()
        )));
    }
    let since = Utc::now() - Duration::minutes(RATE_WINDOW_MINS);
    if db::filed_since(&mut tx, community.id, r.reporter, since).await? >= RATE_LIMIT {
        return Err(Error::Report(format!(
            "You've filed {RATE_LIMIT} reports in the last {RATE_WINDOW_MINS} minutes; please wait a little. The moderators have them."
        )));
    }
    if let Some(message) = r.message
        && let Some(existing) = db::by_message_for_update(&mut tx, community.id, message).await?
    {
        let added =
            db::add_reporter(&mut tx, community.id, existing.id, r.reporter, reason).await?;
        if added {
            audit_report(
                &mut tx,
                community.id,
                r.reporter,
                "report.merged",
                &existing,
            )
            .await?;
        }
        tx.commit().await?;
        return Ok(if added {
            Filed::Merged(existing.number)
        } else {
            Filed::Already(existing.number)
        });
    }
    let report = db::insert(
        &mut tx,
        community.id,
        r.target,
        r.channel,
        r.message,
        r.category,
    )
    .await?;
    db::add_reporter(&mut tx, community.id, report.id, r.reporter, reason).await?;
    let settings = community::settings_in(&mut tx, community.id).await?;
    if let Some(channel_id) = settings.admin_channel.or(settings.mod_log_channel) {
        let job = Job::ModLog {
            channel_id,
            title: format!("Report #{}: {}", report.number, report.category.as_str()),
            description: describe(&r, reason),
            buttons: vec![
                button(CLAIM, &report, "Claim"),
                button(RESOLVE, &report, "Resolve"),
                button(DISMISS, &report, "Dismiss"),
            ],
            on_posted: None,
        };
        let key = format!("report:{}:posted", report.id);
        outbox::enqueue(&mut tx, NewJob::new(Some(community.id), key, job)).await?;
    }
    audit_report(&mut tx, community.id, r.reporter, "report.filed", &report).await?;
    tx.commit().await?;
    Ok(Filed::New(report.number))
}

fn button(prefix: &str, report: &Report, label: &str) -> Button {
    Button {
        custom_id: format!("{prefix}{}", report.id),
        label: label.into(),
    }
}

fn describe(r: &NewReport, reason: &str) -> String {
    let mut out = format!(
        "**Member:** {} (`{}`)\n**Reported by:** {}\n**Reason:** {reason}",
        r.target.mention(),
        r.target,
        r.reporter.mention()
    );
    if let (Some(channel), Some(message)) = (r.channel, r.message) {
        out.push_str(&format!(
            "\n[Jump to the message](https://discord.com/channels/{}/{channel}/{message})",
            r.guild
        ));
    }
    out
}

async fn audit_report(
    conn: &mut sqlx::PgConnection,
    community_id: uuid::Uuid,
    actor: UserId,
    action: &'static str,
    report: &Report,
) -> Result<(), sqlx::Error> {
    let mut entry = NewEntry::new(
        community_id,
        Actor::User(actor),
        action,
        format!("report:{}", report.number),
    );
    entry.after = Some(json!({
        "report": report.number,
        "target": report.target.to_string(),
        "category": report.category.as_str(),
    }));
    audit::record(conn, entry).await?;
    Ok(())
}

/// What the moderator decided when resolving.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// Resolved without a sanction.
    NoAction,
    /// Resolved with this sanction (its reason is filled in from the report).
    Sanction(Box<Sanction>),
}

async fn decide(
    pool: &PgPool,
    guild: GuildId,
    id: uuid::Uuid,
    moderator: UserId,
    (event, action): (status::Event, &'static str),
    outcome: Option<String>,
    resolution: Option<Resolution>,
) -> Result<(Report, Option<Case>), Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let report = db::by_id_for_update(&mut tx, community.id, id)
        .await?
        .ok_or(Error::Report("That report no longer exists.".into()))?;
    let next = report
        .status
        .transition(event)
        .map_err(|e| Error::Report(format!("Report #{}: {e}.", report.number)))?;
    let case = match resolution {
        Some(Resolution::Sanction(s)) => {
            Some(super::record_sanction(&mut tx, &community, *s, "command").await?)
        }
        _ => None,
    };
    let outcome = outcome.or_else(|| {
        case.as_ref()
            .map(|c| format!("case #{}: {}", c.number, c.kind))
    });
    db::set_status(
        &mut tx,
        community.id,
        report.id,
        next,
        moderator,
        outcome.as_deref(),
        case.as_ref().map(|c| c.id),
    )
    .await?;
    let decided = Report {
        status: next,
        outcome,
        ..report
    };
    audit_report(&mut tx, community.id, moderator, action, &decided).await?;
    tx.commit().await?;
    Ok((decided, case))
}

/// A moderator takes the report: open → investigating.
pub async fn claim(
    pool: &PgPool,
    guild: GuildId,
    id: uuid::Uuid,
    moderator: UserId,
) -> Result<Report, Error> {
    let (report, _) = decide(
        pool,
        guild,
        id,
        moderator,
        (status::Event::Claim, "report.claimed"),
        None,
        None,
    )
    .await?;
    Ok(report)
}

/// Resolves the report, recording the sanction's case in the same transaction.
pub async fn resolve(
    pool: &PgPool,
    guild: GuildId,
    id: uuid::Uuid,
    moderator: UserId,
    resolution: Resolution,
) -> Result<(Report, Option<Case>), Error> {
    let outcome =
        matches!(resolution, Resolution::NoAction).then(|| "resolved, no action".to_owned());
    decide(
        pool,
        guild,
        id,
        moderator,
        (status::Event::Resolve, "report.resolved"),
        outcome,
        Some(resolution),
    )
    .await
}

pub async fn dismiss(
    pool: &PgPool,
    guild: GuildId,
    id: uuid::Uuid,
    moderator: UserId,
    note: String,
) -> Result<Report, Error> {
    let note = note
        .trim()
        .chars()
        .take(super::MAX_REASON_CHARS)
        .collect::<String>();
    if note.is_empty() {
        return Err(Error::Report("A dismissal needs a note.".into()));
    }
    let (report, _) = decide(
        pool,
        guild,
        id,
        moderator,
        (status::Event::Dismiss, "report.dismissed"),
        Some(note),
        None,
    )
    .await?;
    Ok(report)
}

/// The report (any status), for the resolve menu.
pub async fn get(pool: &PgPool, guild: GuildId, id: uuid::Uuid) -> Result<Report, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let report = db::by_id_for_update(&mut tx, community.id, id)
        .await?
        .ok_or(Error::Report("That report no longer exists.".into()))?;
    tx.commit().await?;
    Ok(report)
}

/// A moderator pauses a bad-faith reporter's reports until `until`.
pub async fn mute_reporter(
    pool: &PgPool,
    guild: GuildId,
    reporter: UserId,
    moderator: UserId,
    until: DateTime<Utc>,
) -> Result<(), Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    db::mute(&mut tx, community.id, reporter, moderator, until).await?;
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(moderator),
        "report.reporter_muted",
        format!("user:{reporter}"),
    );
    entry.after = Some(json!({ "until": until }));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}
