//! `/audit`: the community's tamper-evident audit log for its admins. Manage Server
//! only (like `/setup`); every reply is ephemeral because entries show who did what.

use std::fmt::Write as _;

use crate::audit::{self, Entry};
use crate::community;

use super::{CommandError, Context};

/// How many entries `/audit recent` shows at most (a reply holds 2,000 characters).
const RECENT_MAX: i64 = 15;

/// Inspect this server's audit log (Manage Server only)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_GUILD",
    required_permissions = "MANAGE_GUILD",
    subcommands("verify", "recent"),
    subcommand_required
)]
pub async fn audit(_: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

/// Check that no audit entry was altered or removed
#[poise::command(slash_command, guild_only)]
async fn verify(ctx: Context<'_>) -> Result<(), CommandError> {
    let community = community_of(ctx).await?;
    let report = audit::verify(&ctx.data().pool, community.id).await?;
    let text = match report {
        audit::Report::Intact {
            entries, pending, ..
        } if pending > 0 => format!(
            "✅ {entries} entries, chain intact. {pending} newer entries are being sealed; run it again in a moment to include them."
        ),
        audit::Report::Intact { entries, .. } => format!("✅ {entries} entries, chain intact."),
        audit::Report::Broken { seq, why, .. } => {
            format!("⚠️ The audit chain is broken at entry #{seq}: {why}.")
        }
    };
    say(ctx, text).await
}

/// Show the latest audit entries
#[poise::command(slash_command, guild_only)]
async fn recent(
    ctx: Context<'_>,
    #[description = "How many entries (1-15, default 10)"]
    #[min = 1]
    #[max = 15]
    count: Option<i64>,
) -> Result<(), CommandError> {
    let community = community_of(ctx).await?;
    let limit = count.unwrap_or(10).clamp(1, RECENT_MAX);
    let entries = audit::recent(&ctx.data().pool, community.id, limit).await?;
    say(ctx, render(&entries)).await
}

async fn community_of(ctx: Context<'_>) -> Result<community::Community, CommandError> {
    let guild_id = ctx
        .guild_id()
        .ok_or_else(|| CommandError::User("This command only works inside a server.".into()))?;
    Ok(community::find_by_guild(&ctx.data().pool, guild_id).await?)
}

async fn say(ctx: Context<'_>, text: String) -> Result<(), CommandError> {
    ctx.send(poise::CreateReply::default().content(text).ephemeral(true))
        .await?;
    Ok(())
}

fn render(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "No audit entries yet.".into();
    }
    let mut out = String::from("**Latest audit entries**\n");
    for e in entries {
        let who = match e.actor.strip_prefix("user:") {
            Some(id) => format!("<@{id}>"),
            None => e.actor.clone(),
        };
        let seq = e
            .seq
            .map_or_else(|| "(sealing)".to_string(), |n| format!("#{n}"));
        let line = format!(
            "{seq} <t:{}:R> {who} `{}` on `{}`\n",
            e.occurred_at.timestamp(),
            e.action,
            e.target
        );
        // Stay inside Discord's 2,000-character message limit.
        if out.len() + line.len() > 1900 {
            out.push('…');
            break;
        }
        let _ = write!(out, "{line}");
    }
    out
}
