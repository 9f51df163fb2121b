//! `/tiers` and `/subscribe`: what members can buy, and a Stripe Checkout link for
//! the member who asked (their Discord id comes from the interaction, never from text
//! they type). Replies are ephemeral.

use std::fmt::Write as _;

use crate::membership;

use super::{CommandError, Context, guild, reply};

/// See the paid tiers on sale in this server
#[poise::command(slash_command, guild_only)]
pub async fn tiers(ctx: Context<'_>) -> Result<(), CommandError> {
    let tiers = membership::tiers(&ctx.data().pool, guild(ctx)?).await?;
    let on_sale: Vec<_> = tiers.iter().filter(|t| t.archived_at.is_none()).collect();
    if on_sale.is_empty() {
        return reply(ctx, "Nothing is on sale here yet.".into()).await;
    }
    let mut out = String::from("**On sale** (`/subscribe tier:` to join)\n");
    for t in on_sale {
        let about = t
            .description
            .as_deref()
            .map_or(String::new(), |d| format!(": {d}"));
        let _ = writeln!(out, "• **{}**, {}{about}", t.name, t.price_text());
    }
    reply(ctx, out).await
}

/// Get a secure Stripe Checkout link to subscribe to a tier
#[poise::command(slash_command, guild_only)]
pub async fn subscribe(
    ctx: Context<'_>,
    #[description = "Which tier (the first on sale if empty)"] tier: Option<String>,
) -> Result<(), CommandError> {
    let app = ctx.data();
    let (t, url) = membership::checkout(
        &app.pool,
        app.stripe.as_deref(),
        guild(ctx)?,
        ctx.author().id,
        tier.as_deref(),
    )
    .await?;
    let text = format!(
        "Subscribe to **{}** ({}): {url}\nThe link is yours alone; your role arrives as soon as the payment goes through.",
        t.name,
        t.price_text()
    );
    reply(ctx, text).await
}
