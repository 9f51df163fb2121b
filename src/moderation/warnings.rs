//! Warning points: a warning counts while it is younger than the community's expiry
//! (30 days by default); when a member's active warnings reach a threshold, the
//! threshold's sanction is recorded as an escalation case in the same transaction.

use chrono::{Duration, Utc};
use serenity::all::{GuildId, UserId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Case, Error, Kind, Sanction, db};
use crate::audit::{self, Actor, NewEntry};
use crate::community::{self, Community};

pub const DEFAULT_EXPIRY_DAYS: i32 = 30;

/// "At `warnings` active warnings, `kind` (for `duration_secs`)".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub warnings: i32,
    pub kind: Kind,
    pub duration_secs: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub expiry_days: i32,
    pub thresholds: Vec<Threshold>,
    /// A ban's appeal needs a moderator other than the one who banned.
    pub ban_appeal_needs_other_moderator: bool,
}

pub(super) async fn policy_in(
    conn: &mut PgConnection,
    community: Uuid,
) -> Result<Policy, sqlx::Error> {
    let row = db::warning_policy(&mut *conn, community).await?;
    let rows = db::warning_thresholds(conn, community).await?;
    let thresholds = rows
        .into_iter()
        .filter_map(|(warnings, kind, duration_secs)| {
            Some(Threshold {
                warnings,
                kind: Kind::parse(&kind)?,
                duration_secs,
            })
        })
        .collect();
    Ok(Policy {
        expiry_days: row.map_or(DEFAULT_EXPIRY_DAYS, |r| r.0),
        thresholds,
        ban_appeal_needs_other_moderator: row.is_some_and(|r| r.1),
    })
}

pub async fn policy(pool: &PgPool, guild: GuildId) -> Result<Policy, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let policy = policy_in(&mut tx, community.id).await?;
    tx.commit().await?;
    Ok(policy)
}

/// One threshold set or removed.
#[derive(Debug, Clone, Copy)]
pub enum ThresholdChange {
    Set(Threshold),
    Remove { warnings: i32 },
}

/// What `/setup warnings` changes: the expiry and/or one threshold.
#[derive(Debug, Clone)]
pub struct PolicyChange {
    pub expiry_days: Option<i32>,
    pub threshold: Option<ThresholdChange>,
    pub ban_appeal_needs_other_moderator: Option<bool>,
}

pub async fn change_policy(
    pool: &PgPool,
    guild: GuildId,
    actor: UserId,
    change: PolicyChange,
) -> Result<Policy, Error> {
    if let Some(days) = change.expiry_days
        && !(1..=365).contains(&days)
    {
        return Err(Error::Policy("warnings expire after 1 to 365 days".into()));
    }
    let (community, mut tx) = community::begin(pool, guild).await?;
    let before = policy_in(&mut tx, community.id).await?;
    if let Some(days) = change.expiry_days {
        db::set_warning_expiry(&mut tx, community.id, days).await?;
    }
    if let Some(other) = change.ban_appeal_needs_other_moderator {
        db::set_ban_appeal_rule(&mut tx, community.id, other).await?;
    }
    match change.threshold {
        Some(ThresholdChange::Set(Threshold {
            warnings,
            kind,
            duration_secs: duration,
        })) => {
            check_threshold(warnings, kind, duration)?;
            db::set_threshold(&mut tx, community.id, warnings, kind.as_str(), duration).await?;
        }
        Some(ThresholdChange::Remove { warnings }) => {
            db::remove_threshold(&mut tx, community.id, warnings).await?;
        }
        None => {}
    }
    let after = policy_in(&mut tx, community.id).await?;
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(actor),
        "warning_policy.updated",
        format!("community:{}", community.id),
    );
    entry.before = Some(json(&before));
    entry.after = Some(json(&after));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(after)
}

fn check_threshold(warnings: i32, kind: Kind, duration: Option<i64>) -> Result<(), Error> {
    if !(1..=100).contains(&warnings) {
        return Err(Error::Policy("a threshold is 1 to 100 warnings".into()));
    }
    match (kind, duration) {
        (Kind::Timeout, None) => Err(Error::NeedsDuration),
        (Kind::Kick, Some(_)) => Err(Error::NoDuration(Kind::Kick)),
        (Kind::Timeout | Kind::Kick | Kind::Ban | Kind::Quarantine, _) => Ok(()),
        (other, _) => Err(Error::Policy(format!(
            "a threshold can time out, kick, ban or quarantine, not {other}"
        ))),
    }
}

fn json(p: &Policy) -> serde_json::Value {
    serde_json::json!({
        "expiry_days": p.expiry_days,
        "ban_appeal_needs_other_moderator": p.ban_appeal_needs_other_moderator,
        "thresholds": p.thresholds.iter().map(|t| serde_json::json!({
            "warnings": t.warnings,
            "kind": t.kind.as_str(),
            "duration_secs": t.duration_secs,
        })).collect::<Vec<_>>(),
    })
}

/// After a warning: the member's active warnings, and the threshold they reached
/// exactly (so each threshold fires once per climb).
pub(super) async fn reached(
    conn: &mut PgConnection,
    community: &Community,
    warning: &Case,
) -> Result<Option<(i64, Threshold)>, sqlx::Error> {
    let policy = policy_in(&mut *conn, community.id).await?;
    if policy.thresholds.is_empty() {
        return Ok(None);
    }
    let since = Utc::now() - Duration::days(i64::from(policy.expiry_days));
    let active = db::active_warnings(conn, community.id, warning.target, since).await?;
    Ok(policy
        .thresholds
        .into_iter()
        .find(|t| i64::from(t.warnings) == active)
        .map(|t| (active, t)))
}

/// The escalation case a threshold records, for the same member and moderator.
pub(super) fn escalation(warning: &Case, guild: GuildId, active: i64, t: Threshold) -> Sanction {
    Sanction {
        guild,
        kind: t.kind,
        target: warning.target,
        moderator: warning.moderator,
        reason: format!(
            "{active} active warnings (the latest is case #{}): {}",
            warning.number, warning.reason
        )
        .chars()
        .take(super::MAX_REASON_CHARS)
        .collect(),
        evidence: Vec::new(),
        duration_secs: t.duration_secs,
        delete_message_secs: 0,
        facts: None,
        correlation_id: Some(format!("escalation:{}", warning.id)),
    }
}
