//! `/membership show` (anyone: my tiers, status, renewal and a billing-portal link) and
//! `/membership explain` (moderators, Manage Roles: what Stripe says, what guildops
//! intends and holds, what Discord shows, the latest events, and why). Ephemeral.

use serenity::all::User;

use crate::membership;

use super::{CommandError, Context, guild, reply};

/// Your paid membership here, or why a member has the roles they have
#[poise::command(
    slash_command,
    guild_only,
    subcommands("show", "explain"),
    subcommand_required
)]
pub async fn membership(_: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

/// Your tiers, their status and renewal, and a link to manage billing
#[poise::command(slash_command, guild_only)]
async fn show(ctx: Context<'_>) -> Result<(), CommandError> {
    let app = ctx.data();
    let view = membership::membership(
        &app.pool,
        app.stripe.as_deref(),
        guild(ctx)?,
        ctx.author().id,
    )
    .await?;
    if view.lines.is_empty() {
        return reply(
            ctx,
            "You have no paid tier here. `/tiers` shows what is on sale.".into(),
        )
        .await;
    }
    let mut text = view.lines.join("\n");
    if let Some(url) = view.portal_url {
        text.push_str(&format!("\nManage billing: {url}"));
    }
    reply(ctx, text).await
}

/// Explain a member's paid roles: Stripe, guildops and Discord side by side (moderators)
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_ROLES")]
async fn explain(
    ctx: Context<'_>,
    #[description = "The member"] member: User,
) -> Result<(), CommandError> {
    let lines = membership::explain(&ctx.data().pool, guild(ctx)?, member.id).await?;
    let text: String = lines.join("\n").chars().take(1900).collect();
    reply(ctx, text).await
}
