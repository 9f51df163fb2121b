//! `/tier`: owners manage paid tiers (Manage Server only, checked by poise against the
//! member's permissions): create or link a Stripe price, list, edit, archive, grant and
//! revoke complimentary access, set the grace/refund/dispute policy, and repair drift.
//! Every reply is ephemeral.

use std::fmt::Write as _;

use chrono::Utc;
use serenity::all::{Mentionable, RoleId, User};

use crate::audit::Actor;
use crate::membership::{
    self, GrantRequest, Interval, NewTier, RoleFacts, Tier, TierChange, TierLink,
};

use super::{CommandError, Context, guild, reply};

/// Paid tiers: create, link, list, edit, archive, grant, revoke (Manage Server only)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_GUILD",
    required_permissions = "MANAGE_GUILD",
    subcommands(
        "create", "link", "list", "edit", "archive", "grant", "revoke", "resync", "policy"
    ),
    subcommand_required
)]
pub async fn tier(_: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

#[derive(Debug, poise::ChoiceParameter)]
enum Every {
    #[name = "month"]
    Month,
    #[name = "year"]
    Year,
}

/// Create a tier: a Stripe product and price that gives a role
#[poise::command(slash_command, guild_only)]
async fn create(
    ctx: Context<'_>,
    #[description = "The tier's name, e.g. Gold"]
    #[max_length = 100]
    name: String,
    #[description = "Price per period, e.g. 4.99"] price: String,
    #[description = "Three-letter currency, e.g. eur"]
    #[min_length = 3]
    #[max_length = 3]
    currency: String,
    #[description = "Billed every month or year"] interval: Every,
    #[description = "The role members of this tier get (must be below my role)"] role: RoleId,
    #[description = "What the tier offers"]
    #[max_length = 500]
    description: Option<String>,
) -> Result<(), CommandError> {
    let guild = guild(ctx)?;
    membership::check_role(role_facts(ctx, role)?)?;
    let unit_amount = minor_units(&price)?;
    let new = NewTier {
        name,
        description,
        role_id: role,
        unit_amount,
        currency,
        interval: match interval {
            Every::Month => Interval::Month,
            Every::Year => Interval::Year,
        },
    };
    let app = ctx.data();
    let tier = membership::create_tier(
        &app.pool,
        app.stripe.as_deref(),
        guild,
        ctx.author().id,
        new,
        reconcile_every(ctx),
    )
    .await?;
    reply(ctx, format!("Created **{}**: {}", tier.name, line(&tier))).await
}

/// Link an existing Stripe price (price_…) to a role
#[poise::command(slash_command, guild_only)]
async fn link(
    ctx: Context<'_>,
    #[description = "The tier's name"]
    #[max_length = 100]
    name: String,
    #[description = "The Stripe price id, price_…"] price_id: String,
    #[description = "The role members of this tier get (must be below my role)"] role: RoleId,
) -> Result<(), CommandError> {
    let guild = guild(ctx)?;
    membership::check_role(role_facts(ctx, role)?)?;
    let app = ctx.data();
    let link = TierLink {
        name,
        price_id,
        role_id: role,
    };
    let tier = membership::link_tier(
        &app.pool,
        app.stripe.as_deref(),
        guild,
        ctx.author().id,
        link,
        reconcile_every(ctx),
    )
    .await?;
    reply(ctx, format!("Linked **{}**: {}", tier.name, line(&tier))).await
}

/// List every tier, archived ones too
#[poise::command(slash_command, guild_only)]
async fn list(ctx: Context<'_>) -> Result<(), CommandError> {
    let tiers = membership::tiers(&ctx.data().pool, guild(ctx)?).await?;
    if tiers.is_empty() {
        return reply(ctx, "No tiers yet. `/tier create` makes one.".into()).await;
    }
    let mut out = String::from("**Tiers**\n");
    for t in &tiers {
        let _ = writeln!(out, "• **{}**: {}", t.name, line(t));
    }
    reply(ctx, out).await
}

/// Rename a tier, change its description or its role
#[poise::command(slash_command, guild_only)]
async fn edit(
    ctx: Context<'_>,
    #[description = "The tier to change"] tier: String,
    #[description = "A new name"]
    #[max_length = 100]
    name: Option<String>,
    #[description = "A new description (blank clears it)"]
    #[max_length = 500]
    description: Option<String>,
    #[description = "A new role (must be below my role)"] role: Option<RoleId>,
    #[description = "When a member's access lapses: also kick them (if they keep no paid role)"]
    kick_on_lapse: Option<bool>,
) -> Result<(), CommandError> {
    if let Some(r) = role {
        membership::check_role(role_facts(ctx, r)?)?;
    }
    let change = TierChange {
        name,
        description,
        role_id: role,
        archive: false,
        lapse_kicks: kick_on_lapse,
    };
    let t = membership::edit_tier(
        &ctx.data().pool,
        guild(ctx)?,
        ctx.author().id,
        &tier,
        change,
    )
    .await?;
    reply(ctx, format!("Saved **{}**: {}", t.name, line(&t))).await
}

/// Stop selling a tier; current subscribers keep it until their paid period ends
#[poise::command(slash_command, guild_only)]
async fn archive(
    ctx: Context<'_>,
    #[description = "The tier to archive"] tier: String,
) -> Result<(), CommandError> {
    let app = ctx.data();
    let (t, ending, refused) = membership::archive_tier(
        &app.pool,
        app.stripe.as_deref(),
        guild(ctx)?,
        ctx.author().id,
        &tier,
    )
    .await?;
    let mut text = format!(
        "**{}** is archived: no new sales. {ending} subscription(s) will end with their paid period (members keep the role until then).",
        t.name
    );
    if refused > 0 {
        text.push_str(&format!(
            " Stripe refused to end {refused}; see the logs and the Stripe dashboard."
        ));
    }
    reply(ctx, text).await
}

/// Give a member a tier for free (optionally for some days)
#[poise::command(slash_command, guild_only)]
async fn grant(
    ctx: Context<'_>,
    #[description = "Who gets it"] member: User,
    #[description = "Which tier"] tier: String,
    #[description = "For how many days (forever if empty)"]
    #[min = 1]
    #[max = 3650]
    days: Option<u32>,
) -> Result<(), CommandError> {
    let until = days.map(|d| Utc::now() + chrono::Duration::days(d.into()));
    let request = GrantRequest {
        member: member.id,
        tier,
        until,
        revoke: false,
    };
    let change = membership::grant(
        &ctx.data().pool,
        guild(ctx)?,
        ctx.author().id,
        request,
        format!("interaction:{}", ctx.id()),
    )
    .await?;
    let when = until.map_or("with no end date".to_owned(), |u| {
        format!("until <t:{}:D>", u.timestamp())
    });
    let roles = if change.added.is_empty() {
        " (they already had its role)"
    } else {
        ""
    };
    reply(
        ctx,
        format!(
            "{} has complimentary access {when}{roles}.",
            member.mention()
        ),
    )
    .await
}

/// Take back a member's complimentary tier
#[poise::command(slash_command, guild_only)]
async fn revoke(
    ctx: Context<'_>,
    #[description = "Whose grant"] member: User,
    #[description = "Which tier"] tier: String,
) -> Result<(), CommandError> {
    let request = GrantRequest {
        member: member.id,
        tier,
        until: None,
        revoke: true,
    };
    membership::grant(
        &ctx.data().pool,
        guild(ctx)?,
        ctx.author().id,
        request,
        format!("interaction:{}", ctx.id()),
    )
    .await?;
    reply(
        ctx,
        format!(
            "Revoked; {} keeps only what they pay for.",
            member.mention()
        ),
    )
    .await
}

/// Compare paid roles with Discord and fix the difference (one member or everyone)
#[poise::command(slash_command, guild_only)]
async fn resync(
    ctx: Context<'_>,
    #[description = "Only this member"] member: Option<User>,
) -> Result<(), CommandError> {
    let changes = membership::resync(
        &ctx.data().pool,
        guild(ctx)?,
        Actor::User(ctx.author().id),
        member.map(|m| m.id),
        format!("interaction:{}", ctx.id()),
    )
    .await?;
    if changes.is_empty() {
        return reply(ctx, "Everything matches: no paid role to fix.".into()).await;
    }
    let mut out = format!("Fixed {} member(s):\n", changes.len());
    for (user, change) in changes.iter().take(20) {
        let roles = |r: &[RoleId]| {
            r.iter()
                .map(|r| r.mention().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            out,
            "• {}: +{} −{}",
            user.mention(),
            roles(&change.added),
            roles(&change.removed)
        );
    }
    reply(ctx, out).await
}

/// Grace period for failed payments, and whether refunds or disputes revoke
#[poise::command(slash_command, guild_only)]
async fn policy(
    ctx: Context<'_>,
    #[description = "Hours a member keeps access after a failed payment (default 72)"]
    #[max = 720]
    grace_hours: Option<u32>,
    #[description = "Does a full refund remove the role?"] refund_revokes: Option<bool>,
    #[description = "Does an opened dispute remove the role?"] dispute_revokes: Option<bool>,
) -> Result<(), CommandError> {
    let p = membership::set_policy(
        &ctx.data().pool,
        guild(ctx)?,
        ctx.author().id,
        grace_hours.map(|h| i64::from(h) * 3600),
        refund_revokes,
        dispute_revokes,
    )
    .await?;
    let yes = |b: bool| if b { "yes" } else { "no" };
    let text = format!(
        "Grace period: {} hours · refund revokes: {} · dispute revokes: {}",
        p.grace.num_hours(),
        yes(p.refund_revokes),
        yes(p.dispute_revokes)
    );
    reply(ctx, text).await
}

fn line(t: &Tier) -> String {
    let archived = if t.archived_at.is_some() {
        " · archived"
    } else {
        ""
    };
    format!(
        "{} · gives {} · `{}`{archived}",
        t.price_text(),
        t.role_id.mention(),
        t.price_id
    )
}

/// "4.99" → 499; at most two decimals, positive.
fn minor_units(text: &str) -> Result<i64, CommandError> {
    let bad = || {
        CommandError::User(format!(
            "I couldn't read “{text}” as a price; write it like 4.99"
        ))
    };
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if frac.len() > 2 || whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| bad())?
    };
    let amount = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)?;
    if amount <= 0 {
        return Err(bad());
    }
    Ok(amount)
}

fn reconcile_every(ctx: Context<'_>) -> chrono::Duration {
    let secs = ctx.data().config.stripe.reconcile_interval_secs;
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(3600))
}

/// What Discord's cache says about `role` and the bot's own highest role.
fn role_facts(ctx: Context<'_>, role: RoleId) -> Result<RoleFacts, CommandError> {
    let me = ctx.cache().current_user().id;
    let guild = ctx.guild().ok_or_else(|| {
        CommandError::User("I can't see this server's roles yet; try again in a moment.".into())
    })?;
    let found = guild.roles.get(&role);
    let bot_top = guild
        .members
        .get(&me)
        .map(|m| {
            m.roles
                .iter()
                .filter_map(|r| guild.roles.get(r))
                .map(|r| r.position)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    Ok(RoleFacts {
        exists: found.is_some(),
        is_everyone: role.get() == guild.id.get(),
        managed: found.is_some_and(|r| r.managed),
        position: found.map_or(0, |r| r.position),
        bot_top,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_to_minor_units() {
        assert_eq!(minor_units("4.99").ok(), Some(499));
        assert_eq!(minor_units("5").ok(), Some(500));
        assert_eq!(minor_units("0.5").ok(), Some(50));
        for bad in ["", "abc", "1.234", "0", "-3", "."] {
            assert!(minor_units(bad).is_err(), "{bad}");
        }
    }
}
