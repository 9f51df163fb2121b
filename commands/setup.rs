//! `/setup`: the owner's configuration of the bot for their server. Manage Server
//! only, checked by poise against the member's permissions in the interaction (not
//! just Discord's default visibility); every reply is ephemeral.

use std::fmt::Write as _;

use serenity::all::{ChannelId, Mentionable, RoleId};

use crate::community::{self, Settings, SettingsChange};

use super::{CommandError, Context, guild};

/// Configure guildops for this server (Manage Server only)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_GUILD",
    required_permissions = "MANAGE_GUILD",
    subcommands(
        "channels",
        "moderators",
        "welcome",
        "autorole",
        "quarantine",
        "mute",
        "warnings",
        "show"
    ),
    subcommand_required
)]
pub async fn setup(_: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

/// Set the admin channel (moderator commands, alerts) and the mod-log channel
#[poise::command(slash_command, guild_only)]
async fn channels(
    ctx: Context<'_>,
    #[description = "Where moderators work and where I post alerts"]
    #[channel_types("Text")]
    admin: Option<ChannelId>,
    #[description = "Where I log every moderation action"]
    #[channel_types("Text")]
    mod_log: Option<ChannelId>,
) -> Result<(), CommandError> {
    let change = SettingsChange {
        admin_channel: admin,
        mod_log_channel: mod_log,
        ..Default::default()
    };
    apply(ctx, change).await
}

#[derive(Debug, poise::ChoiceParameter)]
enum RoleAction {
    #[name = "add"]
    Add,
    #[name = "remove"]
    Remove,
}

/// Add or remove a moderator role (members with it can use moderation commands)
#[poise::command(slash_command, guild_only)]
async fn moderators(
    ctx: Context<'_>,
    #[description = "Add or remove"] action: RoleAction,
    #[description = "The moderator role"] role: RoleId,
) -> Result<(), CommandError> {
    let change = match action {
        RoleAction::Add => SettingsChange {
            add_moderator_role: Some(role),
            ..Default::default()
        },
        RoleAction::Remove => SettingsChange {
            remove_moderator_role: Some(role),
            ..Default::default()
        },
    };
    apply(ctx, change).await
}

/// Add or remove a role every newcomer gets when they join
#[poise::command(slash_command, guild_only)]
async fn autorole(
    ctx: Context<'_>,
    #[description = "Add or remove"] action: RoleAction,
    #[description = "The role to give on join (must be below my role)"] role: RoleId,
) -> Result<(), CommandError> {
    let change = match action {
        RoleAction::Add => SettingsChange {
            add_auto_role: Some(role),
            ..Default::default()
        },
        RoleAction::Remove => SettingsChange {
            remove_auto_role: Some(role),
            ..Default::default()
        },
    };
    apply(ctx, change).await
}

/// Set the quarantine role (it should hide the server's channels; automod and moderators give it)
#[poise::command(slash_command, guild_only)]
async fn quarantine(
    ctx: Context<'_>,
    #[description = "The role that hides the server (must be below my role)"] role: RoleId,
) -> Result<(), CommandError> {
    let change = SettingsChange {
        quarantine_role: Some(role),
        ..Default::default()
    };
    apply(ctx, change).await
}

#[derive(Debug, poise::ChoiceParameter)]
enum ThresholdAction {
    #[name = "timeout"]
    Timeout,
    #[name = "kick"]
    Kick,
    #[name = "ban"]
    Ban,
    #[name = "quarantine"]
    Quarantine,
    #[name = "remove this threshold"]
    Remove,
}

/// Set the mute role (it should deny Send Messages; moderators' /mute gives it)
#[poise::command(slash_command, guild_only)]
async fn mute(
    ctx: Context<'_>,
    #[description = "The role that takes away speaking (must be below my role)"] role: RoleId,
) -> Result<(), CommandError> {
    let change = SettingsChange {
        mute_role: Some(role),
        ..Default::default()
    };
    apply(ctx, change).await
}

/// Warning points (expiry, thresholds) and the ban-appeal rule
#[poise::command(slash_command, guild_only)]
async fn warnings(
    ctx: Context<'_>,
    #[description = "Warnings count for this many days (default 30)"]
    #[min = 1]
    #[max = 365]
    expiry_days: Option<i32>,
    #[description = "At this many active warnings…"]
    #[min = 1]
    #[max = 100]
    at: Option<i32>,
    #[description = "…do this"] action: Option<ThresholdAction>,
    #[description = "For how long (timeout, ban, quarantine), e.g. 1d"] duration: Option<String>,
    #[description = "A ban's appeal needs a moderator other than the one who banned"]
    ban_appeals_other_moderator: Option<bool>,
) -> Result<(), CommandError> {
    use crate::moderation::Kind;
    use crate::moderation::warnings::{self, PolicyChange, Threshold, ThresholdChange};
    let duration = duration
        .map(|d| crate::automod::rules::parse_duration(&d).map_err(|e| CommandError::User(e.0)))
        .transpose()?
        .map(|d| i64::try_from(d).unwrap_or(i64::MAX));
    let threshold = match (at, action) {
        (None, None) => None,
        (Some(n), Some(ThresholdAction::Remove)) => Some(ThresholdChange::Remove { warnings: n }),
        (Some(n), Some(a)) => {
            let kind = match a {
                ThresholdAction::Timeout => Kind::Timeout,
                ThresholdAction::Kick => Kind::Kick,
                ThresholdAction::Ban => Kind::Ban,
                _ => Kind::Quarantine,
            };
            Some(ThresholdChange::Set(Threshold {
                warnings: n,
                kind,
                duration_secs: duration,
            }))
        }
        _ => {
            return Err(CommandError::User(
                "Give both `at` and `action` to set a threshold.".into(),
            ));
        }
    };
    let change = PolicyChange {
        expiry_days,
        threshold,
        ban_appeal_needs_other_moderator: ban_appeals_other_moderator,
    };
    let policy =
        warnings::change_policy(&ctx.data().pool, guild(ctx)?, ctx.author().id, change).await?;
    let mut text = format!("Saved. Warnings count for {} days.", policy.expiry_days);
    if policy.ban_appeal_needs_other_moderator {
        text.push_str(" A ban's appeal needs a moderator other than the one who banned.");
    }
    if policy.thresholds.is_empty() {
        text.push_str(" No thresholds.");
    }
    for t in &policy.thresholds {
        let duration = t
            .duration_secs
            .map(|d| {
                format!(
                    " for {}",
                    crate::automod::rules::format_duration(u64::try_from(d).unwrap_or(0))
                )
            })
            .unwrap_or_default();
        text.push_str(&format!(
            "\n• {} active warnings → {}{duration}",
            t.warnings, t.kind
        ));
    }
    ctx.send(poise::CreateReply::default().content(text).ephemeral(true))
        .await?;
    Ok(())
}

/// Set the welcome and farewell messages ({user} and {server} are filled in)
#[poise::command(slash_command, guild_only)]
async fn welcome(
    ctx: Context<'_>,
    #[description = "Where to greet newcomers"]
    #[channel_types("Text")]
    channel: Option<ChannelId>,
    #[description = "Welcome text, e.g. 'Welcome {user} to {server}!' (blank clears it)"]
    #[max_length = 2000]
    message: Option<String>,
    #[description = "Farewell text when someone leaves (blank clears it)"]
    #[max_length = 2000]
    farewell: Option<String>,
) -> Result<(), CommandError> {
    let change = SettingsChange {
        welcome_channel: channel,
        welcome_message: message,
        farewell_message: farewell,
        ..Default::default()
    };
    apply(ctx, change).await
}

/// Show this server's guildops configuration
#[poise::command(slash_command, guild_only)]
async fn show(ctx: Context<'_>) -> Result<(), CommandError> {
    let guild_id = guild(ctx)?;
    let (community, settings) = community::settings(&ctx.data().pool, guild_id).await?;
    let text = format!("**Setup for {}**\n{}", community.name, render(&settings));
    ctx.send(poise::CreateReply::default().content(text).ephemeral(true))
        .await?;
    Ok(())
}

async fn apply(ctx: Context<'_>, change: SettingsChange) -> Result<(), CommandError> {
    let guild_id = guild(ctx)?;
    let correlation_id = Some(format!("interaction:{}", ctx.id()));
    let settings = community::update_settings(
        &ctx.data().pool,
        guild_id,
        ctx.author().id,
        change,
        correlation_id,
    )
    .await?;
    let text = format!("Saved. Your setup is now:\n{}", render(&settings));
    ctx.send(poise::CreateReply::default().content(text).ephemeral(true))
        .await?;
    Ok(())
}

fn render(s: &Settings) -> String {
    let channel =
        |c: Option<ChannelId>| c.map_or("not set".to_owned(), |c| c.mention().to_string());
    let roles = |r: &[RoleId]| {
        if r.is_empty() {
            "none".to_owned()
        } else {
            r.iter()
                .map(|r| r.mention().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let text = |t: &Option<String>| {
        t.as_deref()
            .map_or("not set".to_owned(), |t| format!("“{t}”"))
    };
    let mut out = String::new();
    let _ = writeln!(out, "Admin channel: {}", channel(s.admin_channel));
    let _ = writeln!(out, "Mod-log channel: {}", channel(s.mod_log_channel));
    let _ = writeln!(out, "Moderator roles: {}", roles(&s.moderator_roles));
    let _ = writeln!(out, "Welcome channel: {}", channel(s.welcome_channel));
    let _ = writeln!(out, "Welcome message: {}", text(&s.welcome_message));
    let _ = writeln!(out, "Farewell message: {}", text(&s.farewell_message));
    let _ = writeln!(out, "Auto-roles: {}", roles(&s.auto_roles));
    let quarantine = s.quarantine_role.map(|r| r.mention().to_string());
    let _ = writeln!(
        out,
        "Quarantine role: {}",
        quarantine.as_deref().unwrap_or("not set")
    );
    let mute = s.mute_role.map(|r| r.mention().to_string());
    let _ = write!(out, "Mute role: {}", mute.as_deref().unwrap_or("not set"));
    out
}
