//! `/revenue`: active subscribers by tier, monthly recurring revenue, and new and
//! churned subscriptions in the last 30 days (Manage Server only). Ephemeral.

use std::fmt::Write as _;

use crate::membership;

use super::{CommandError, Context, guild, reply};

/// Subscribers by tier, MRR, new and churned in 30 days (Manage Server only)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_GUILD",
    required_permissions = "MANAGE_GUILD"
)]
pub async fn revenue(ctx: Context<'_>) -> Result<(), CommandError> {
    let r = membership::revenue(&ctx.data().pool, guild(ctx)?).await?;
    let mut out = String::from("**Revenue**\n");
    for (name, n, price) in &r.by_tier {
        let _ = writeln!(out, "• **{name}** ({price}): {n} active");
    }
    for (currency, minor) in &r.mrr {
        let _ = writeln!(
            out,
            "MRR: {}.{:02} {}",
            minor / 100,
            minor % 100,
            currency.to_uppercase()
        );
    }
    let _ = write!(
        out,
        "Last 30 days: {} new, {} churned",
        r.new_30d, r.churned_30d
    );
    reply(ctx, out).await
}
