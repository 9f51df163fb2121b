//! Appeals: a sanctioned member asks to lift a case with `/appeal`, in the server or in
//! a DM (a banned member can still reach the bot). One open appeal per case; after a
//! denial the member waits [`COOLDOWN_DAYS`]; a case can be made not appealable, and
//! "Deny and close" closes it for good. Moderators decide with the buttons on the
//! appeal's post in the admin channel: approving lifts the sanction with a reversal
//! case. The member is told the outcome by DM.

pub mod db;

use chrono::{Duration, Utc};
use serde_json::json;
use serenity::all::{GuildId, Mentionable, UserId};
use sqlx::PgPool;
use uuid::Uuid;

use super::{Case, Error, Kind, Sanction, Status};
use crate::audit::{self, Actor, NewEntry};
use crate::community::{self, Community};
use crate::db::tenant::{self, CrossCommunity};
use crate::outbox::{self, Button, Job, NewJob};

pub const COOLDOWN_DAYS: i64 = 7;

/// Button `custom_id` prefixes; the appeal id follows.
pub const APPROVE: &str = "appeal:approve:";
pub const DENY: &str = "appeal:deny:";
pub const CLOSE: &str = "appeal:close:";

#[derive(Debug, Clone)]
pub struct NewAppeal {
    /// The server it was filed in; `None` from a DM.
    pub guild: Option<GuildId>,
    /// From a DM, the server's name when the member is the target of that case number
    /// in several servers.
    pub server: Option<String>,
    pub appellant: UserId,
    pub case_number: i32,
    pub reason: String,
}

/// Which community a DM appeal means.
async fn community_for(pool: &PgPool, a: &NewAppeal) -> Result<GuildId, Error> {
    if let Some(guild) = a.guild {
        return Ok(guild);
    }
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::Appeals).await?;
    let found = db::communities_with_case(&mut tx, a.appellant, a.case_number).await?;
    tx.commit().await?;
    let named: Vec<_> = match &a.server {
        Some(name) => found
            .iter()
            .filter(|(_, _, n)| n.eq_ignore_ascii_case(name.trim()))
            .collect(),
        None => found.iter().collect(),
    };
    match named.as_slice() {
        [(_, guild, _)] => Ok(*guild),
        [] => Err(Error::NoSuchCase(a.case_number)),
        several => Err(Error::Appeal(format!(
            "You have a case #{} in several servers ({}); say which with `server:`.",
            a.case_number,
            several
                .iter()
                .map(|(_, _, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Files the appeal; returns the case number and the server's name.
pub async fn file(pool: &PgPool, a: NewAppeal) -> Result<(i32, String), Error> {
    let reason = a.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > super::MAX_REASON_CHARS {
        return Err(Error::BadReason);
    }
    let guild = community_for(pool, &a).await?;
    let (community, mut tx) = community::begin(pool, guild).await?;
    let case = super::db::by_number(&mut tx, community.id, a.case_number)
        .await?
        .filter(|c| c.target == a.appellant)
        .ok_or(Error::NoSuchCase(a.case_number))?;
    if matches!(case.kind, Kind::Note) || case.kind.reverses().is_some() {
        return Err(Error::Appeal(format!(
            "Case #{} is not a sanction.",
            case.number
        )));
    }
    if !db::appealable(&mut tx, case.id).await? {
        return Err(Error::Appeal(format!(
            "Case #{} can't be appealed.",
            case.number
        )));
    }
    if db::has_open(&mut tx, case.id).await? {
        return Err(Error::Appeal(format!(
            "Your appeal of case #{} is already with the moderators.",
            case.number
        )));
    }
    if let Some(denied) = db::last_denied(&mut tx, case.id).await? {
        let again = denied + Duration::days(COOLDOWN_DAYS);
        if again > Utc::now() {
            return Err(Error::Appeal(format!(
                "Your last appeal of case #{} was denied; you can appeal again <t:{}:R>.",
                case.number,
                again.timestamp()
            )));
        }
    }
    let id = db::insert(&mut tx, community.id, case.id, a.appellant, &reason).await?;
    let settings = community::settings_in(&mut tx, community.id).await?;
    if let Some(channel_id) = settings.admin_channel.or(settings.mod_log_channel) {
        let buttons = [
            (APPROVE, "Approve"),
            (DENY, "Deny"),
            (CLOSE, "Deny and close"),
        ]
        .into_iter()
        .map(|(prefix, label)| Button {
            custom_id: format!("{prefix}{id}"),
            label: label.into(),
        })
        .collect();
        let job = Job::ModLog {
            channel_id,
            title: format!("Appeal of case #{}: {}", case.number, case.kind),
            description: format!(
                "**Member:** {}\n**Case reason:** {}\n**Appeal:** {reason}",
                a.appellant.mention(),
                case.reason
            ),
            buttons,
            on_posted: None,
        };
        let key = format!("appeal:{id}:posted");
        outbox::enqueue(&mut tx, NewJob::new(Some(community.id), key, job)).await?;
    }
    audit_appeal(
        &mut tx,
        community.id,
        Actor::User(a.appellant),
        "appeal.filed",
        &case,
        id,
    )
    .await?;
    tx.commit().await?;
    Ok((case.number, community.name))
}

async fn audit_appeal(
    conn: &mut sqlx::PgConnection,
    community_id: Uuid,
    actor: Actor,
    action: &'static str,
    case: &Case,
    appeal: Uuid,
) -> Result<(), sqlx::Error> {
    let mut entry = NewEntry::new(community_id, actor, action, format!("case:{}", case.number));
    entry.after = Some(json!({ "appeal": appeal.to_string(), "case": case.number }));
    audit::record(conn, entry).await?;
    Ok(())
}

/// A moderator's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
    DenyAndClose,
}

/// Decides an open appeal. Approving an active sanction records its reversal case
/// (which lifts it); approving one with nothing left to lift records a note.
pub async fn decide(
    pool: &PgPool,
    guild: GuildId,
    id: Uuid,
    moderator: UserId,
    decision: Decision,
) -> Result<(i32, Option<Case>), Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let appeal = db::for_update(&mut tx, community.id, id)
        .await?
        .ok_or(Error::Appeal("That appeal no longer exists.".into()))?;
    if appeal.status != "open" {
        return Err(Error::Appeal(format!(
            "That appeal was already {}.",
            appeal.status
        )));
    }
    let case = super::db::by_id_for_update(&mut tx, community.id, appeal.case_id)
        .await?
        .ok_or(Error::Appeal("The appealed case no longer exists.".into()))?;
    let (status, action, reversal) = match decision {
        Decision::Approve
            if matches!(case.kind, Kind::Ban | Kind::Softban)
                && case.moderator == moderator
                && super::warnings::policy_in(&mut tx, community.id)
                    .await?
                    .ban_appeal_needs_other_moderator =>
        {
            return Err(Error::Appeal(format!(
                "You issued the ban of case #{}: another moderator must approve its appeal.",
                case.number
            )));
        }
        Decision::Approve => {
            let reversal = reverse(&mut tx, &community, &case, &appeal, moderator).await?;
            ("approved", "appeal.approved", Some(reversal))
        }
        Decision::Deny => ("denied", "appeal.denied", None),
        Decision::DenyAndClose => {
            db::close_appeals(&mut tx, community.id, case.id).await?;
            ("closed", "appeal.closed", None)
        }
    };
    db::decide(&mut tx, community.id, id, status, moderator).await?;
    let content = match decision {
        Decision::Approve => format!(
            "Your appeal of case #{} in **{}** was approved; the sanction is lifted.",
            case.number, community.name
        ),
        Decision::Deny => format!(
            "Your appeal of case #{} in **{}** was denied. You can appeal again in {COOLDOWN_DAYS} days.",
            case.number, community.name
        ),
        Decision::DenyAndClose => format!(
            "Your appeal of case #{} in **{}** was denied, and the case takes no further appeals.",
            case.number, community.name
        ),
    };
    let dm = Job::SendDm {
        user_id: appeal.appellant,
        content,
        on_failure: None,
    };
    outbox::enqueue(
        &mut tx,
        NewJob::new(Some(community.id), format!("appeal:{id}:outcome"), dm),
    )
    .await?;
    audit_appeal(
        &mut tx,
        community.id,
        Actor::User(moderator),
        action,
        &case,
        id,
    )
    .await?;
    tx.commit().await?;
    Ok((case.number, reversal))
}

async fn reverse(
    tx: &mut sqlx::PgConnection,
    community: &Community,
    case: &Case,
    appeal: &db::Appeal,
    moderator: UserId,
) -> Result<Case, Error> {
    let lifts = match case.kind {
        Kind::Ban if case.status == Status::Active => Some(Kind::Unban),
        Kind::Timeout if case.status == Status::Active => Some(Kind::Untimeout),
        Kind::Quarantine if case.status == Status::Active => Some(Kind::Unquarantine),
        Kind::Mute if case.status == Status::Active => Some(Kind::Unmute),
        _ => None,
    };
    let reason: String = format!(
        "appeal of case #{} approved: {}",
        case.number, appeal.reason
    )
    .chars()
    .take(super::MAX_REASON_CHARS)
    .collect();
    let s = Sanction {
        guild: community.guild_id,
        kind: lifts.unwrap_or(Kind::Note),
        target: case.target,
        moderator,
        reason,
        evidence: Vec::new(),
        duration_secs: None,
        delete_message_secs: 0,
        facts: None,
        correlation_id: Some(format!("appeal:{}", appeal.id)),
    };
    super::record_sanction(tx, community, s, "appeal").await
}
