//! What the community's admins are told when a job fails for good: one sentence naming
//! the cause and the fix. Only failures an admin can fix are worth an alert (a member
//! who left or closed their DMs is not).

use serenity::all::Mentionable;

use crate::discord::effects::FailureKind;
use crate::outbox::Job;

/// The alert text, or `None` when nobody can act on this failure.
pub fn alert_text(job: &Job, kind: FailureKind) -> Option<String> {
    let cause = match (job, kind) {
        (_, FailureKind::UnknownMember | FailureKind::DmsClosed | FailureKind::UnknownMessage) => {
            return None;
        }
        (Job::AdminAlert { .. } | Job::Scheduled { .. }, _) => return None,
        (
            Job::AddRole { role_id, .. } | Job::RemoveRole { role_id, .. },
            FailureKind::MissingPermissions | FailureKind::MissingAccess,
        ) => format!(
            "I can't manage role {}: my role is below it, or I lack Manage Roles. Move my role above it.",
            role_id.mention()
        ),
        (
            Job::AddRole { role_id, .. } | Job::RemoveRole { role_id, .. },
            FailureKind::UnknownRole,
        ) => {
            format!(
                "Role {} no longer exists; update /setup (or `/tier edit` if a paid tier gives it).",
                role_id.mention()
            )
        }
        (
            Job::SendMessage { channel_id, .. } | Job::ModLog { channel_id, .. },
            FailureKind::UnknownChannel,
        ) => format!(
            "Channel {} no longer exists; update /setup.",
            channel_id.mention()
        ),
        (Job::SendMessage { channel_id, .. } | Job::ModLog { channel_id, .. }, _) => format!(
            "I can't post in {}: I need View Channel and Send Messages there.",
            channel_id.mention()
        ),
        (Job::DeleteMessage { channel_id, .. }, _) => format!(
            "I can't delete messages in {}: I need Manage Messages there.",
            channel_id.mention()
        ),
        (Job::KickMember { .. }, FailureKind::MissingPermissions) => {
            "I can't kick members: I need Kick Members, and my role must be above theirs."
                .to_owned()
        }
        (Job::BanMember { .. } | Job::UnbanMember { .. }, FailureKind::MissingPermissions) => {
            "I can't ban or unban: I need Ban Members, and my role must be above theirs.".to_owned()
        }
        (Job::TimeoutMember { .. } | Job::ClearTimeout { .. }, FailureKind::MissingPermissions) => {
            "I can't time members out: I need Moderate Members, and my role must be above theirs."
                .to_owned()
        }
        (_, kind) => format!("A {} job failed ({}).", job.kind(), kind.as_str()),
    };
    Some(format!(
        "⚠️ {cause} `/ops failures` lists what failed; `/ops retry` runs it again once fixed."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::{GuildId, RoleId, UserId};

    #[test]
    fn a_role_above_the_bot_names_the_role_and_the_fix() {
        let job = Job::AddRole {
            guild_id: GuildId::new(1),
            user_id: UserId::new(2),
            role_id: RoleId::new(3),
            reason: "auto-role".into(),
        };
        let text = alert_text(&job, FailureKind::MissingPermissions).expect("alert");
        assert!(
            text.contains("I can't manage role <@&3>: my role is below it"),
            "{text}"
        );
        assert_eq!(alert_text(&job, FailureKind::UnknownMember), None);
    }
}
