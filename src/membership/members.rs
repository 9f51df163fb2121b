//! What members and moderators ask: a Checkout link, their membership with a billing
//! portal link, an explanation of a member's paid roles, and the revenue summary.

use chrono::Utc;
use serenity::all::{GuildId, RoleId, UserId};
use sqlx::PgPool;

use super::stripe::Stripe;
use super::sync;
use super::tiers::{find, stripe_of};
use super::{Error, Interval, Tier, db, entitlement};
use crate::community;

/// `/subscribe`: a Checkout URL for the interaction's user (never typed-in ids).
#[tracing::instrument(skip_all, fields(guild.id = %guild, user.id = %user))]
pub async fn checkout(
    pool: &PgPool,
    stripe: Option<&Stripe>,
    guild: GuildId,
    user: UserId,
    tier_name: Option<&str>,
) -> Result<(Tier, String), Error> {
    let stripe = stripe_of(stripe)?;
    let (community, mut tx) = community::begin(pool, guild).await?;
    let tiers = db::tiers(&mut tx, community.id).await?;
    let customer = db::subscriptions_of(&mut tx, community.id, user)
        .await?
        .into_iter()
        .find_map(|(s, _, _)| s.customer);
    tx.commit().await?;
    let on_sale: Vec<&Tier> = tiers.iter().filter(|t| t.archived_at.is_none()).collect();
    let tier = match tier_name {
        Some(name) => {
            let t = find(&tiers, name)?;
            if t.archived_at.is_some() {
                return Err(Error::Archived(t.name.clone()));
            }
            t
        }
        None => *on_sale.first().ok_or(Error::NothingOnSale)?,
    };
    let url = stripe
        .checkout(community.id, user, &tier.price_id, customer.as_deref())
        .await?;
    Ok((tier.clone(), url))
}

/// What `/membership` shows.
#[derive(Debug, Clone)]
pub struct MembershipView {
    pub lines: Vec<String>,
    pub portal_url: Option<String>,
}

pub async fn membership(
    pool: &PgPool,
    stripe: Option<&Stripe>,
    guild: GuildId,
    user: UserId,
) -> Result<MembershipView, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let state = sync::load(&mut tx, community.id, user).await?;
    tx.commit().await?;
    let now = Utc::now();
    let mut lines = Vec::new();
    let mut customer = None;
    for (row, sub) in &state.subscriptions {
        customer = customer.or(row.customer.clone());
        for tier in state
            .tiers
            .iter()
            .filter(|t| sub.price_ids.contains(&t.price_id))
        {
            let verdict = entitlement::verdict(sub, &state.policy, now);
            let end = sub.current_period_end.map_or(String::new(), |e| {
                format!(", period ends <t:{}:D>", e.timestamp())
            });
            lines.push(format!(
                "**{}**: {}{} ({})",
                tier.name,
                sub.status,
                end,
                verdict.why()
            ));
        }
    }
    for grant in &state.grants {
        if let Some(tier) = state.tiers.iter().find(|t| t.id == grant.tier_id) {
            let until = grant.expires_at.map_or("no end date".to_owned(), |e| {
                format!("until <t:{}:D>", e.timestamp())
            });
            lines.push(format!("**{}**: complimentary, {until}", tier.name));
        }
    }
    let portal_url = match (stripe, customer) {
        (Some(stripe), Some(c)) => Some(stripe.portal(&c).await?),
        _ => None,
    };
    Ok(MembershipView { lines, portal_url })
}

/// `/membership explain`: Stripe's view, guildops' intent, Discord's roles, and why.
pub async fn explain(pool: &PgPool, guild: GuildId, user: UserId) -> Result<Vec<String>, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let state = sync::load(&mut tx, community.id, user).await?;
    let (held, on_discord) = (state.held.clone(), state.on_discord.clone());
    let ids: Vec<String> = state
        .subscriptions
        .iter()
        .map(|(r, _)| r.id.clone())
        .collect();
    let events = db::recent_events(&mut tx, community.id, &ids, 5).await?;
    tx.commit().await?;
    let now = Utc::now();
    let (intended, _) = state.entitled(now);
    let mention = |r: &RoleId| format!("<@&{r}>");
    let list = |roles: &mut dyn Iterator<Item = &RoleId>| {
        let v: Vec<String> = roles.map(mention).collect();
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(" ")
        }
    };
    let tier_roles: Vec<RoleId> = state.tiers.iter().map(|t| t.role_id).collect();
    let mut out = vec![format!(
        "**Stripe says** ({} subscription(s))",
        state.subscriptions.len()
    )];
    for (row, sub) in &state.subscriptions {
        for tier in state
            .tiers
            .iter()
            .filter(|t| sub.price_ids.contains(&t.price_id))
        {
            let v = entitlement::verdict(sub, &state.policy, now);
            out.push(format!(
                "• `{}` {}: {} → {}",
                row.id,
                tier.name,
                sub.status,
                v.why()
            ));
        }
    }
    out.push(format!("**Complimentary grants**: {}", state.grants.len()));
    out.push(format!(
        "**guildops intends**: {}",
        list(&mut intended.iter())
    ));
    out.push(format!("**guildops holds**: {}", list(&mut held.iter())));
    out.push(match &on_discord {
        Some(roles) => format!(
            "**Discord shows**: {}",
            list(&mut roles.iter().filter(|r| tier_roles.contains(r)))
        ),
        None => "**Discord shows**: not in the server".to_owned(),
    });
    for (kind, at, outcome) in events {
        out.push(format!("• <t:{}:R> `{kind}` ({outcome})", at.timestamp()));
    }
    Ok(out)
}

/// `/revenue`.
#[derive(Debug, Clone)]
pub struct Revenue {
    pub by_tier: Vec<(String, i64, String)>,
    /// Monthly recurring revenue per currency, in minor units.
    pub mrr: Vec<(String, i64)>,
    pub new_30d: i64,
    pub churned_30d: i64,
}

pub async fn revenue(pool: &PgPool, guild: GuildId) -> Result<Revenue, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let tiers = db::tiers(&mut tx, community.id).await?;
    let active = db::active_by_price(&mut tx, community.id).await?;
    let (new_30d, churned_30d) = db::new_and_churned(&mut tx, community.id).await?;
    tx.commit().await?;
    let mut by_tier = Vec::new();
    let mut mrr: std::collections::BTreeMap<String, i64> = Default::default();
    for tier in &tiers {
        let n = active
            .iter()
            .find(|(p, _)| *p == tier.price_id)
            .map_or(0, |(_, n)| *n);
        let monthly = match tier.interval {
            Interval::Month => tier.unit_amount,
            Interval::Year => tier.unit_amount / 12,
        };
        *mrr.entry(tier.currency.clone()).or_default() += monthly * n;
        by_tier.push((tier.name.clone(), n, tier.price_text()));
    }
    Ok(Revenue {
        by_tier,
        mrr: mrr.into_iter().collect(),
        new_30d,
        churned_30d,
    })
}
