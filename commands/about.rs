//! `/about`: what this bot is, how long it has run, and what this server configured.

use std::fmt::Write as _;

use crate::community::{self, Settings};

use super::{CommandError, Context};

/// What guildops is, its version and uptime, and this server's set-up
#[poise::command(slash_command, guild_only)]
pub async fn about(ctx: Context<'_>) -> Result<(), CommandError> {
    let guild_id = ctx
        .guild_id()
        .ok_or_else(|| CommandError::User("This command only works inside a server.".into()))?;
    let (community, settings) = community::settings(&ctx.data().pool, guild_id).await?;
    let uptime = ctx.data().status.started_at.elapsed();
    let mut text = format!(
        "**guildops {}** · up {}\nCommunity: **{}** (`{}`)\n",
        env!("CARGO_PKG_VERSION"),
        human_duration(uptime.as_secs()),
        community.name,
        community.slug,
    );
    text.push_str(&configured_summary(&settings));
    ctx.send(poise::CreateReply::default().content(text))
        .await?;
    Ok(())
}

/// Names what is set up without revealing message texts.
fn configured_summary(s: &Settings) -> String {
    let mut out = String::from("Configured: ");
    let mut parts = Vec::new();
    if s.admin_channel.is_some() {
        parts.push("admin channel".to_owned());
    }
    if s.mod_log_channel.is_some() {
        parts.push("mod-log channel".to_owned());
    }
    if !s.moderator_roles.is_empty() {
        parts.push(format!("{} moderator role(s)", s.moderator_roles.len()));
    }
    if s.welcome_message.is_some() {
        parts.push("welcome message".to_owned());
    }
    if parts.is_empty() {
        out.push_str("nothing yet (a server manager can run `/setup`)");
    } else {
        let _ = write!(out, "{}", parts.join(", "));
    }
    out
}

pub(crate) fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(65), "1m 5s");
        assert_eq!(human_duration(3 * 3600 + 120), "3h 2m");
        assert_eq!(human_duration(2 * 86_400 + 3600), "2d 1h");
    }

    #[test]
    fn summary_says_what_is_missing() {
        assert!(configured_summary(&Settings::default()).contains("/setup"));
        let s = Settings {
            mod_log_channel: Some(serenity::all::ChannelId::new(1)),
            ..Default::default()
        };
        assert_eq!(configured_summary(&s), "Configured: mod-log channel");
    }
}
