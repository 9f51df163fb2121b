//! Moderation: cases with per-community numbers, and the sanctions they carry out.
//! A case commits with its audit entry and its effects as outbox jobs: the member's DM
//! (sent before a kick or ban removes them), the Discord action, the mod-log post and,
//! for a temporary sanction, the scheduled job that lifts it. Expiry and timeout
//! renewal are scheduled jobs, so they survive restarts; a member who rejoins while
//! sanctioned gets the sanction back.

pub mod appeals;
pub mod case;
pub mod db;
mod effects;
pub mod hierarchy;
pub mod reports;
pub mod warnings;

use chrono::{Duration, Utc};
use serde_json::json;
use serenity::all::{GuildId, UserId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::audit::{self, Actor, NewEntry};
use crate::community;
use crate::db::tenant;
pub use case::{Kind, Status};
pub use db::{Case, Edit, Filter};
pub use hierarchy::{Facts, Refusal};

/// Scheduled job names (registered in `daemon::scheduled_handlers`).
pub const EXPIRE_JOB: &str = "moderation.expire";
pub const RENEW_TIMEOUT_JOB: &str = "moderation.renew_timeout";
pub const DM_UNDELIVERABLE_JOB: &str = "moderation.dm_undeliverable";

/// The longest reason a case keeps.
pub const MAX_REASON_CHARS: usize = 1000;
/// The longest temporary sanction (ten years; longer is permanent in all but name).
pub const MAX_DURATION_SECS: i64 = 10 * 365 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Community(#[from] community::Error),
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("a reason is required (at most {MAX_REASON_CHARS} characters)")]
    BadReason,
    #[error("a timeout needs a duration, e.g. `10m`, `2h` or `40d`")]
    NeedsDuration,
    #[error("that duration is out of range: from 1 second to 10 years")]
    BadDuration,
    #[error("a {0} has no duration; only timeouts, bans and quarantines do")]
    NoDuration(Kind),
    #[error("no quarantine role is set: an admin can pick one with `/setup quarantine`")]
    NoQuarantineRole,
    #[error("no mute role is set: an admin can pick one with `/setup mute`")]
    NoMuteRole,
    #[error("there is no case #{0} in this server")]
    NoSuchCase(i32),
    #[error("case #{number} is {status}: only an active sanction's duration can change")]
    NotActive { number: i32, status: Status },
    #[error("nothing to change: give a new reason, duration or appealable")]
    NothingToChange,
    #[error("{0}")]
    Report(String),
    #[error("{0}")]
    Appeal(String),
    #[error("{0}")]
    Policy(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Database(_) => false,
            Error::Community(e) => e.is_user_error(),
            _ => true,
        }
    }
}

/// What a moderator asked for.
#[derive(Debug, Clone)]
pub struct Sanction {
    pub guild: GuildId,
    pub kind: Kind,
    pub target: UserId,
    pub moderator: UserId,
    pub reason: String,
    pub evidence: Vec<String>,
    pub duration_secs: Option<i64>,
    /// Bans: how much of the member's recent history Discord deletes.
    pub delete_message_secs: u32,
    /// Gathered from Discord by the caller; `None` for reversals and notes (nobody is
    /// acted on against their rank).
    pub facts: Option<Facts>,
    pub correlation_id: Option<String>,
}

fn check_request(s: &Sanction) -> Result<(), Error> {
    let reason = s.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::BadReason);
    }
    match (s.kind, s.duration_secs) {
        (Kind::Timeout, None) => return Err(Error::NeedsDuration),
        (kind, Some(_)) if !kind.lasts() => return Err(Error::NoDuration(kind)),
        (_, Some(d)) if d <= 0 || d > MAX_DURATION_SECS => return Err(Error::BadDuration),
        _ => {}
    }
    if let Some(facts) = s.facts {
        hierarchy::check(facts)?;
    }
    Ok(())
}

/// Records the case and enqueues everything it does, in one transaction.
#[tracing::instrument(skip_all, fields(guild.id = %s.guild, user.id = %s.target, case.kind = %s.kind))]
pub async fn sanction(pool: &PgPool, s: Sanction) -> Result<Case, Error> {
    check_request(&s)?;
    let (community, mut tx) = community::begin(pool, s.guild).await?;
    let case = record_sanction(&mut tx, &community, s, "command").await?;
    tx.commit().await?;
    Ok(case)
}

/// [`sanction`] inside the caller's transaction (a report resolved into a case, an
/// approved appeal): checked, recorded, its effects enqueued.
pub(crate) async fn record_sanction(
    tx: &mut PgConnection,
    community: &community::Community,
    s: Sanction,
    source: &str,
) -> Result<Case, Error> {
    check_request(&s)?;
    let settings = community::settings_in(tx, community.id).await?;
    if matches!(s.kind, Kind::Quarantine | Kind::Unquarantine) && settings.quarantine_role.is_none()
    {
        return Err(Error::NoQuarantineRole);
    }
    if matches!(s.kind, Kind::Mute | Kind::Unmute) && settings.mute_role.is_none() {
        return Err(Error::NoMuteRole);
    }
    let revoked = revoke_superseded(tx, community.id, s.target, s.kind).await?;
    let now = Utc::now();
    let expires_at = s.duration_secs.map(|d| now + Duration::seconds(d));
    let new = db::NewCase {
        kind: s.kind,
        target: s.target,
        moderator: s.moderator,
        reason: s.reason.trim(),
        evidence: &s.evidence,
        duration_secs: s.duration_secs,
        expires_at,
        dm: if s.kind.tells_member() {
            "queued"
        } else {
            "none"
        },
        source,
        reverses: revoked,
        discord_entry: None,
    };
    let case = db::insert(tx, community.id, &new).await?;
    let plan = effects::Plan {
        community,
        settings: &settings,
        case: &case,
        delete_message_secs: s.delete_message_secs,
        now,
    };
    effects::enqueue_created(tx, &plan).await?;
    audit_case(
        tx,
        community.id,
        Actor::User(s.moderator),
        "case.created",
        &case,
        s.correlation_id,
    )
    .await?;
    if case.kind == Kind::Warn
        && let Some((active, threshold)) = warnings::reached(tx, community, &case).await?
    {
        let next = warnings::escalation(&case, community.guild_id, active, threshold);
        // One level deep: an escalation is never a warning, so this ends here.
        Box::pin(record_sanction(tx, community, next, "escalation")).await?;
    }
    Ok(case)
}

/// A reversal revokes the active sanction it lifts, and a new lasting sanction the one
/// of its kind it replaces; returns the first case revoked (the new case's `reverses`).
async fn revoke_superseded(
    tx: &mut PgConnection,
    community: Uuid,
    target: UserId,
    kind: Kind,
) -> Result<Option<Uuid>, Error> {
    let Some(superseded) = kind.reverses().or(kind.lasts().then_some(kind)) else {
        return Ok(None);
    };
    let mut revoked = None;
    for old in db::active(tx, community, target, Some(superseded)).await? {
        let next = old
            .status
            .transition(case::Event::Revoke)
            .map_err(|e| sqlx::Error::Protocol(format!("case #{}: {e}", old.number)))?;
        db::set_status(tx, community, old.id, next).await?;
        revoked.get_or_insert(old.id);
    }
    Ok(revoked)
}

/// A sanction a moderator took by hand in Discord's own interface, as Discord's audit
/// log reports it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub guild: GuildId,
    pub kind: Kind,
    pub target: UserId,
    pub moderator: UserId,
    pub reason: Option<String>,
    /// A timeout's end.
    pub until: Option<chrono::DateTime<Utc>>,
    pub entry_id: u64,
}

/// Records a hand-made sanction as a case attributed to the moderator Discord names:
/// nothing is done to Discord (it is done already) but the mod-log entry, the audit
/// entry and, for a timeout, its expiry. A replayed entry records nothing.
#[tracing::instrument(skip_all, fields(guild.id = %o.guild, user.id = %o.target, case.kind = %o.kind))]
pub async fn record_observed(pool: &PgPool, o: Observed) -> Result<Option<Case>, Error> {
    let (community, mut tx) = community::begin(pool, o.guild).await?;
    if db::has_entry(&mut tx, community.id, o.entry_id).await? {
        return Ok(None);
    }
    let revoked = revoke_superseded(&mut tx, community.id, o.target, o.kind).await?;
    let now = Utc::now();
    let until = o.until.filter(|u| *u > now && o.kind == Kind::Timeout);
    let reason = o
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(MAX_REASON_CHARS).collect::<String>())
        .unwrap_or_else(|| "(no reason given in Discord)".to_owned());
    let new = db::NewCase {
        kind: o.kind,
        target: o.target,
        moderator: o.moderator,
        reason: &reason,
        evidence: &[],
        duration_secs: until.map(|u| (u - now).num_seconds().max(1)),
        expires_at: until,
        dm: "none",
        source: "discord",
        reverses: revoked,
        discord_entry: Some(o.entry_id),
    };
    let case = db::insert(&mut tx, community.id, &new).await?;
    let settings = community::settings_in(&mut tx, community.id).await?;
    effects::enqueue_observed(&mut tx, community.id, &settings, &case).await?;
    let correlation = Some(format!("discord-audit-log:{}", o.entry_id));
    audit_case(
        &mut tx,
        community.id,
        Actor::User(o.moderator),
        "case.created",
        &case,
        correlation,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(case))
}

async fn audit_case(
    conn: &mut PgConnection,
    community_id: Uuid,
    actor: Actor,
    action: &'static str,
    case: &Case,
    correlation_id: Option<String>,
) -> Result<(), sqlx::Error> {
    let mut entry = NewEntry::new(community_id, actor, action, format!("user:{}", case.target));
    entry.after = Some(json!({
        "case": case.number,
        "kind": case.kind.as_str(),
        "status": case.status.as_str(),
        "moderator": case.moderator.to_string(),
        "duration_secs": case.duration_secs,
        "expires_at": case.expires_at,
    }));
    // A reason is free text about a member: erasable, outside the hashed payload.
    entry.reason = Some(case.reason.clone());
    entry.correlation_id = correlation_id;
    audit::record(conn, entry).await?;
    Ok(())
}

/// `moderation.expire`: lifts a temporary sanction whose time has come. Idempotent:
/// a case no longer active is left alone; one whose expiry moved later is re-scheduled.
pub async fn expire(
    pool: &PgPool,
    community_id: Uuid,
    data: &serde_json::Value,
) -> Result<(), Error> {
    let Some(id) = case_id(data) else {
        return Ok(());
    };
    let mut tx = tenant::begin(pool, community_id).await?;
    let Some(case) = db::by_id_for_update(&mut tx, community_id, id).await? else {
        return Ok(());
    };
    let Some(expires_at) = case.expires_at.filter(|_| case.status == Status::Active) else {
        return Ok(());
    };
    let now = Utc::now();
    if expires_at > now + Duration::seconds(1) {
        effects::schedule_expiry(&mut tx, community_id, &case, expires_at).await?;
        tx.commit().await?;
        return Ok(());
    }
    let next = case
        .status
        .transition(case::Event::Expire)
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    db::set_status(&mut tx, community_id, case.id, next).await?;
    let settings = community::settings_in(&mut tx, community_id).await?;
    let guild = community::guild_of(&mut tx, community_id).await?;
    let expired = Case {
        status: next,
        ..case
    };
    effects::enqueue_expired(&mut tx, community_id, guild, &settings, &expired).await?;
    audit_case(
        &mut tx,
        community_id,
        Actor::System("moderation"),
        "case.expired",
        &expired,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `moderation.dm_undeliverable`: the case's DM could not be delivered; say so on
/// the case.
pub async fn dm_undeliverable(
    pool: &PgPool,
    community_id: Uuid,
    data: &serde_json::Value,
) -> Result<(), Error> {
    let Some(id) = case_id(data) else {
        return Ok(());
    };
    let mut tx = tenant::begin(pool, community_id).await?;
    db::set_dm(&mut tx, community_id, id, "undeliverable").await?;
    tx.commit().await?;
    Ok(())
}

/// `moderation.renew_timeout`: Discord caps a timeout at 28 days; a longer one is set
/// again, up to its case's expiry, until it ends.
pub async fn renew_timeout(
    pool: &PgPool,
    community_id: Uuid,
    data: &serde_json::Value,
) -> Result<(), Error> {
    let Some(id) = case_id(data) else {
        return Ok(());
    };
    let mut tx = tenant::begin(pool, community_id).await?;
    let Some(case) = db::by_id_for_update(&mut tx, community_id, id).await? else {
        return Ok(());
    };
    if case.status != Status::Active || case.kind != Kind::Timeout {
        return Ok(());
    }
    let guild = community::guild_of(&mut tx, community_id).await?;
    effects::apply_timeout(&mut tx, community_id, guild, &case, Utc::now(), "renewed").await?;
    tx.commit().await?;
    Ok(())
}

/// A member joined: active quarantines and timeouts are applied again (leaving and
/// rejoining must not shed a sanction).
pub async fn member_joined(pool: &PgPool, guild: GuildId, user: UserId) -> Result<usize, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let active = db::active(&mut tx, community.id, user, None).await?;
    let settings = community::settings_in(&mut tx, community.id).await?;
    let now = Utc::now();
    let mut reapplied = 0;
    for case in &active {
        if effects::reapply(&mut tx, community.id, guild, &settings, case, now).await? {
            reapplied += 1;
        }
    }
    tx.commit().await?;
    Ok(reapplied)
}

fn case_id(data: &serde_json::Value) -> Option<Uuid> {
    data["case_id"].as_str().and_then(|s| s.parse().ok())
}

/// Cases matching `filter` (hidden ones only when asked), newest first.
pub async fn search(pool: &PgPool, guild: GuildId, filter: &Filter) -> Result<Vec<Case>, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let cases = db::search(&mut tx, community.id, filter).await?;
    tx.commit().await?;
    Ok(cases)
}

/// One case and its edit history.
pub async fn show(pool: &PgPool, guild: GuildId, number: i32) -> Result<(Case, Vec<Edit>), Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let case = db::by_number(&mut tx, community.id, number)
        .await?
        .ok_or(Error::NoSuchCase(number))?;
    let edits = db::edits(&mut tx, community.id, case.id).await?;
    tx.commit().await?;
    Ok((case, edits))
}

/// `/case edit`: a new reason and/or duration, each kept in the history. A new
/// duration counts from when the case was made and re-schedules its expiry.
pub async fn edit(
    pool: &PgPool,
    guild: GuildId,
    editor: UserId,
    number: i32,
    reason: Option<String>,
    duration_secs: Option<i64>,
    appealable: Option<bool>,
) -> Result<Case, Error> {
    if reason.is_none() && duration_secs.is_none() && appealable.is_none() {
        return Err(Error::NothingToChange);
    }
    let (community, mut tx) = community::begin(pool, guild).await?;
    let mut case = db::by_number(&mut tx, community.id, number)
        .await?
        .ok_or(Error::NoSuchCase(number))?;
    if let Some(reason) = reason {
        let reason = reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(Error::BadReason);
        }
        db::record_edit(
            &mut tx,
            community.id,
            case.id,
            editor,
            "reason",
            Some(&case.reason),
            Some(&reason),
        )
        .await?;
        db::set_reason(&mut tx, community.id, case.id, &reason).await?;
        case.reason = reason;
    }
    if let Some(secs) = duration_secs {
        if case.status != Status::Active {
            return Err(Error::NotActive {
                number,
                status: case.status,
            });
        }
        if secs <= 0 || secs > MAX_DURATION_SECS {
            return Err(Error::BadDuration);
        }
        let expires_at = case.created_at + Duration::seconds(secs);
        let before = case.duration_secs.map(|d| d.to_string());
        db::record_edit(
            &mut tx,
            community.id,
            case.id,
            editor,
            "duration",
            before.as_deref(),
            Some(&secs.to_string()),
        )
        .await?;
        db::set_duration(&mut tx, community.id, case.id, secs, expires_at).await?;
        case.duration_secs = Some(secs);
        case.expires_at = Some(expires_at);
        effects::schedule_expiry(&mut tx, community.id, &case, expires_at).await?;
        if case.kind == Kind::Timeout {
            effects::apply_timeout(&mut tx, community.id, guild, &case, Utc::now(), "edited")
                .await?;
        }
    }
    if let Some(appealable) = appealable.filter(|a| *a != case.appealable) {
        let (before, after) = (case.appealable.to_string(), appealable.to_string());
        db::record_edit(
            &mut tx,
            community.id,
            case.id,
            editor,
            "appealable",
            Some(&before),
            Some(&after),
        )
        .await?;
        db::set_appealable(&mut tx, community.id, case.id, appealable).await?;
        case.appealable = appealable;
    }
    audit_case(
        &mut tx,
        community.id,
        Actor::User(editor),
        "case.edited",
        &case,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(case)
}

/// `/case hide`: hidden cases stay on record but leave `/history` and lists.
pub async fn set_hidden(
    pool: &PgPool,
    guild: GuildId,
    editor: UserId,
    number: i32,
    hidden: bool,
) -> Result<Case, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let mut case = db::by_number(&mut tx, community.id, number)
        .await?
        .ok_or(Error::NoSuchCase(number))?;
    if case.hidden != hidden {
        let (before, after) = (case.hidden.to_string(), hidden.to_string());
        db::record_edit(
            &mut tx,
            community.id,
            case.id,
            editor,
            "hidden",
            Some(&before),
            Some(&after),
        )
        .await?;
        db::set_hidden(&mut tx, community.id, case.id, hidden).await?;
        case.hidden = hidden;
        audit_case(
            &mut tx,
            community.id,
            Actor::User(editor),
            "case.edited",
            &case,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(case)
}

/// Cases as a JSON document (for `/case export`).
pub fn export_json(cases: &[Case]) -> String {
    let list: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            json!({
                "number": c.number,
                "kind": c.kind.as_str(),
                "status": c.status.as_str(),
                "target": c.target.to_string(),
                "moderator": c.moderator.to_string(),
                "reason": c.reason,
                "evidence": c.evidence,
                "duration_secs": c.duration_secs,
                "expires_at": c.expires_at,
                "hidden": c.hidden,
                "dm": c.dm,
                "source": c.source,
                "created_at": c.created_at,
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "cases": list })).unwrap_or_default()
}
