//! What a case does to Discord, as outbox jobs in the case's transaction: the member's
//! DM first (a kicked or banned member can no longer be reached), the action a few
//! seconds after it, the mod-log entry, and the scheduled jobs that lift a temporary
//! sanction or renew a timeout beyond Discord's 28 days.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use serenity::all::{GuildId, Mentionable};
use sqlx::PgConnection;
use uuid::Uuid;

use super::case::Kind;
use super::db::Case;
use super::{EXPIRE_JOB, RENEW_TIMEOUT_JOB};
use crate::automod::rules::format_duration;
use crate::community::{Community, Settings};
use crate::outbox::{self, FollowUp, Job, NewJob};

/// Discord's longest timeout, less a margin so a renewal is never late.
const TIMEOUT_STEP_SECS: i64 = 28 * 86_400 - 3600;
/// How long before a partial timeout ends it is set again.
const RENEW_BEFORE_SECS: i64 = 86_400;
/// A kick or ban waits this long after the DM that explains it.
const AFTER_DM_SECS: i64 = 2;
/// A softban's unban follows its ban after this long.
const SOFTBAN_UNBAN_SECS: i64 = 5;

pub struct Plan<'a> {
    pub community: &'a Community,
    pub settings: &'a Settings,
    pub case: &'a Case,
    pub delete_message_secs: u32,
    pub now: DateTime<Utc>,
}

fn key(case: &Case, what: &str) -> String {
    format!("case:{}:{what}", case.id)
}

async fn enqueue(
    conn: &mut PgConnection,
    community: Uuid,
    key: String,
    job: Job,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    outbox::enqueue(conn, NewJob::new(Some(community), key, job).at(at)).await?;
    Ok(())
}

fn audit_reason(case: &Case) -> String {
    let reason: String = case.reason.chars().take(400).collect();
    format!("case #{} by {}: {reason}", case.number, case.moderator)
}

fn dm_text(community: &Community, case: &Case) -> String {
    let duration = case
        .duration_secs
        .map(|d| format!(" for {}", format_duration(u64::try_from(d).unwrap_or(0))))
        .unwrap_or_default();
    format!(
        "You were {} in **{}**{duration}.\nReason: {}\nThis is case #{}. If you think it is wrong, you can appeal: send me `/appeal case:{}` with your reason (it works here in DMs too).",
        case.kind.verb(),
        community.name,
        case.reason,
        case.number,
        case.number
    )
}

pub async fn enqueue_created(conn: &mut PgConnection, p: &Plan<'_>) -> Result<(), sqlx::Error> {
    let (c, community) = (p.case, p.community.id);
    let guild = p.community.guild_id;
    let (guild_id, user_id, reason) = (guild, c.target, audit_reason(c));
    let mut act_at = p.now;
    if c.kind.tells_member() {
        let job = Job::SendDm {
            user_id,
            content: dm_text(p.community, c),
            on_failure: Some(FollowUp {
                name: super::DM_UNDELIVERABLE_JOB.into(),
                data: json!({"case_id": c.id.to_string()}),
            }),
        };
        enqueue(conn, community, key(c, "dm"), job, p.now).await?;
        act_at = p.now + Duration::seconds(AFTER_DM_SECS);
    }
    let action = match c.kind {
        Kind::Note | Kind::Warn => None,
        Kind::Timeout => {
            apply_timeout(conn, community, guild, c, p.now, "applied").await?;
            None
        }
        Kind::Kick => Some(Job::KickMember {
            guild_id,
            user_id,
            reason,
        }),
        Kind::Ban | Kind::Softban => Some(Job::BanMember {
            guild_id,
            user_id,
            delete_message_secs: if c.kind == Kind::Softban {
                p.delete_message_secs.max(86_400)
            } else {
                p.delete_message_secs
            },
            reason,
        }),
        Kind::Unban => Some(Job::UnbanMember {
            guild_id,
            user_id,
            reason,
        }),
        Kind::Untimeout => Some(Job::ClearTimeout {
            guild_id,
            user_id,
            reason,
        }),
        Kind::Quarantine | Kind::Unquarantine => p.settings.quarantine_role.map(|role_id| {
            if c.kind == Kind::Quarantine {
                Job::AddRole {
                    guild_id,
                    user_id,
                    role_id,
                    reason,
                }
            } else {
                Job::RemoveRole {
                    guild_id,
                    user_id,
                    role_id,
                    reason,
                }
            }
        }),
        Kind::Mute | Kind::Unmute => p.settings.mute_role.map(|role_id| {
            if c.kind == Kind::Mute {
                Job::AddRole {
                    guild_id,
                    user_id,
                    role_id,
                    reason,
                }
            } else {
                Job::RemoveRole {
                    guild_id,
                    user_id,
                    role_id,
                    reason,
                }
            }
        }),
    };
    if let Some(job) = action {
        enqueue(conn, community, key(c, "action"), job, act_at).await?;
    }
    if c.kind == Kind::Softban {
        let job = Job::UnbanMember {
            guild_id,
            user_id,
            reason: format!("case #{}: softban ends", c.number),
        };
        let at = act_at + Duration::seconds(SOFTBAN_UNBAN_SECS);
        enqueue(conn, community, key(c, "softban-unban"), job, at).await?;
    }
    if let Some(expires_at) = c.expires_at {
        schedule_expiry(conn, community, c, expires_at).await?;
    }
    mod_log(conn, community, p.settings, c, "created").await
}

/// A case Discord's interface made: only its record (and a timeout's expiry).
pub async fn enqueue_observed(
    conn: &mut PgConnection,
    community: Uuid,
    settings: &Settings,
    case: &Case,
) -> Result<(), sqlx::Error> {
    if let Some(expires_at) = case.expires_at {
        schedule_expiry(conn, community, case, expires_at).await?;
    }
    mod_log(conn, community, settings, case, "created").await
}

/// The job that lifts the sanction at `expires_at` (one per expiry time).
pub async fn schedule_expiry(
    conn: &mut PgConnection,
    community: Uuid,
    case: &Case,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let job = Job::Scheduled {
        name: EXPIRE_JOB.into(),
        data: json!({"case_id": case.id.to_string()}),
    };
    let k = key(case, &format!("expire:{}", expires_at.timestamp()));
    enqueue(conn, community, k, job, expires_at).await
}

/// Sets the timeout up to the case's expiry, or Discord's maximum; in the latter case
/// a renewal is scheduled a day before it runs out.
pub async fn apply_timeout(
    conn: &mut PgConnection,
    community: Uuid,
    guild: GuildId,
    case: &Case,
    now: DateTime<Utc>,
    why: &str,
) -> Result<(), sqlx::Error> {
    let Some(expires_at) = case.expires_at else {
        return Ok(());
    };
    if expires_at <= now {
        return Ok(());
    }
    let until = expires_at.min(now + Duration::seconds(TIMEOUT_STEP_SECS));
    let job = Job::TimeoutMember {
        guild_id: guild,
        user_id: case.target,
        until,
        reason: audit_reason(case),
    };
    let k = key(case, &format!("timeout:{why}:{}", until.timestamp()));
    enqueue(conn, community, k, job, now).await?;
    if until < expires_at {
        let renew = Job::Scheduled {
            name: RENEW_TIMEOUT_JOB.into(),
            data: json!({"case_id": case.id.to_string()}),
        };
        let at = until - Duration::seconds(RENEW_BEFORE_SECS);
        let k = key(case, &format!("renew:{}", at.timestamp()));
        enqueue(conn, community, k, renew, at).await?;
    }
    Ok(())
}

pub async fn enqueue_expired(
    conn: &mut PgConnection,
    community: Uuid,
    guild: GuildId,
    settings: &Settings,
    case: &Case,
) -> Result<(), sqlx::Error> {
    let reason = format!("case #{} expired", case.number);
    let (guild_id, user_id) = (guild, case.target);
    let lift = match case.kind {
        Kind::Ban => Some(Job::UnbanMember {
            guild_id,
            user_id,
            reason,
        }),
        Kind::Timeout => Some(Job::ClearTimeout {
            guild_id,
            user_id,
            reason,
        }),
        Kind::Quarantine | Kind::Mute => {
            role_of(settings, case.kind).map(|role_id| Job::RemoveRole {
                guild_id,
                user_id,
                role_id,
                reason,
            })
        }
        _ => None,
    };
    if let Some(job) = lift {
        enqueue(conn, community, key(case, "lift"), job, Utc::now()).await?;
    }
    mod_log(conn, community, settings, case, "expired").await
}

/// A rejoining member's active sanction, applied again; false when there is nothing
/// to apply (a ban, or a quarantine with no role set).
pub async fn reapply(
    conn: &mut PgConnection,
    community: Uuid,
    guild: GuildId,
    settings: &Settings,
    case: &Case,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    match case.kind {
        Kind::Timeout => {
            apply_timeout(
                conn,
                community,
                guild,
                case,
                now,
                &format!("rejoin-{}", now.timestamp()),
            )
            .await?;
            Ok(true)
        }
        Kind::Quarantine | Kind::Mute => {
            let Some(role_id) = role_of(settings, case.kind) else {
                return Ok(false);
            };
            let job = Job::AddRole {
                guild_id: guild,
                user_id: case.target,
                role_id,
                reason: format!("case #{}: {} still in force", case.number, case.kind),
            };
            let k = key(case, &format!("rejoin:{}", now.timestamp_millis()));
            enqueue(conn, community, k, job, now).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The role a role sanction gives.
fn role_of(settings: &Settings, kind: Kind) -> Option<serenity::all::RoleId> {
    match kind {
        Kind::Quarantine => settings.quarantine_role,
        Kind::Mute => settings.mute_role,
        _ => None,
    }
}

async fn mod_log(
    conn: &mut PgConnection,
    community: Uuid,
    settings: &Settings,
    case: &Case,
    event: &str,
) -> Result<(), sqlx::Error> {
    let Some(channel_id) = settings.mod_log_channel.or(settings.admin_channel) else {
        return Ok(());
    };
    let title = match event {
        "expired" => format!("Case #{}: {} ended", case.number, case.kind),
        _ => format!("Case #{}: {}", case.number, case.kind),
    };
    let mut description = format!(
        "**Member:** {} (`{}`)\n**Moderator:** {}\n**Reason:** {}",
        case.target.mention(),
        case.target,
        case.moderator.mention(),
        case.reason
    );
    if let Some(until) = case.expires_at {
        description.push_str(&format!("\n**Until:** <t:{}:f>", until.timestamp()));
    }
    let job = Job::ModLog {
        channel_id,
        title,
        description,
        buttons: Vec::new(),
        on_posted: None,
    };
    enqueue(
        conn,
        community,
        key(case, &format!("modlog:{event}")),
        job,
        Utc::now(),
    )
    .await
}
