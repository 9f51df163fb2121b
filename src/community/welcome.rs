//! Pure rules for what a member joining or leaving sets off: the welcome or farewell
//! message and the auto-roles from `/setup`, as outbox jobs. Idempotency keys include
//! the membership's join time, so a replayed gateway event adds nothing while a
//! genuine re-join is greeted again.

use chrono::{DateTime, Utc};
use serenity::all::{Mentionable, UserId};

use super::{Community, MemberSnapshot, Settings};
use crate::outbox::{Job, NewJob};

/// Fills `{user}` (a mention) and `{server}` (the community's name).
pub fn fill(template: &str, user: UserId, server: &str) -> String {
    template
        .replace("{user}", &user.mention().to_string())
        .replace("{server}", server)
}

fn stint(joined_at: Option<DateTime<Utc>>) -> String {
    joined_at.map_or("unknown".into(), |t| t.timestamp_millis().to_string())
}

/// The welcome message and one role grant per auto-role; nothing for bots.
pub fn join_jobs(
    community: &Community,
    settings: &Settings,
    member: &MemberSnapshot,
) -> Vec<NewJob> {
    if member.is_bot {
        return Vec::new();
    }
    let (c, user) = (community.id, member.user_id);
    let stint = stint(member.joined_at);
    let mut jobs = Vec::new();
    if let (Some(channel_id), Some(text)) = (settings.welcome_channel, &settings.welcome_message) {
        let job = Job::SendMessage {
            channel_id,
            content: fill(text, user, &community.name),
        };
        jobs.push(NewJob::new(
            Some(c),
            format!("welcome:{c}:{user}:{stint}"),
            job,
        ));
    }
    for role_id in &settings.auto_roles {
        let job = Job::AddRole {
            guild_id: community.guild_id,
            user_id: user,
            role_id: *role_id,
            reason: "auto-role on join".into(),
        };
        jobs.push(NewJob::new(
            Some(c),
            format!("autorole:{c}:{user}:{role_id}:{stint}"),
            job,
        ));
    }
    jobs
}

/// The farewell message for the membership that began at `joined_at`.
pub fn leave_jobs(
    community: &Community,
    settings: &Settings,
    user: UserId,
    joined_at: Option<DateTime<Utc>>,
) -> Vec<NewJob> {
    let (Some(channel_id), Some(text)) = (settings.welcome_channel, &settings.farewell_message)
    else {
        return Vec::new();
    };
    let c = community.id;
    let job = Job::SendMessage {
        channel_id,
        content: fill(text, user, &community.name),
    };
    vec![NewJob::new(
        Some(c),
        format!("farewell:{c}:{user}:{}", stint(joined_at)),
        job,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::{ChannelId, GuildId, RoleId};

    fn community() -> Community {
        Community {
            id: uuid::Uuid::nil(),
            slug: "x".into(),
            name: "Rust Berlin".into(),
            guild_id: GuildId::new(1),
            owner_id: UserId::new(2),
            active: true,
            created_at: Utc::now(),
        }
    }

    fn member(bot: bool) -> MemberSnapshot {
        MemberSnapshot {
            user_id: UserId::new(7),
            is_bot: bot,
            joined_at: DateTime::from_timestamp(1_700_000_000, 0),
            roles: vec![],
        }
    }

    #[test]
    fn a_join_greets_and_grants_each_auto_role_with_stable_keys() {
        let settings = Settings {
            welcome_channel: Some(ChannelId::new(9)),
            welcome_message: Some("Hi {user}, welcome to {server}!".into()),
            auto_roles: vec![RoleId::new(4), RoleId::new(5)],
            ..Settings::default()
        };
        let jobs = join_jobs(&community(), &settings, &member(false));
        assert_eq!(jobs.len(), 3);
        assert!(
            matches!(&jobs[0].job, Job::SendMessage { content, .. } if content == "Hi <@7>, welcome to Rust Berlin!")
        );
        let again = join_jobs(&community(), &settings, &member(false));
        let keys = |j: &[NewJob]| {
            j.iter()
                .map(|j| j.idempotency_key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(&jobs),
            keys(&again),
            "a replayed join makes the same keys"
        );
        assert!(join_jobs(&community(), &settings, &member(true)).is_empty());
    }

    #[test]
    fn farewell_needs_a_channel_and_a_text() {
        let mut settings = Settings {
            farewell_message: Some("Bye {user}".into()),
            ..Settings::default()
        };
        assert!(leave_jobs(&community(), &settings, UserId::new(7), None).is_empty());
        settings.welcome_channel = Some(ChannelId::new(9));
        assert_eq!(
            leave_jobs(&community(), &settings, UserId::new(7), None).len(),
            1
        );
    }
}
