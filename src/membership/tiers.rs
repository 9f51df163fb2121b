//! Owners' tier management: the role check, creating or linking a Stripe price,
//! listing, editing and archiving tiers, and scheduling each community's drift repair.
//! Stripe calls are made before a transaction opens; every change is audited in its
//! transaction.

use chrono::{DateTime, Utc};
use serenity::all::{GuildId, RoleId, UserId};
use sqlx::PgPool;
use uuid::Uuid;

use super::stripe::Stripe;
use super::{Error, Interval, RECONCILE_JOB, Tier, db, on_unique};
use crate::audit::{self, Actor, NewEntry};
use crate::community;
use crate::outbox::{self, Job, NewJob};

/// What the adapter knows about a role from Discord's cache.
#[derive(Debug, Clone, Copy)]
pub struct RoleFacts {
    pub exists: bool,
    pub is_everyone: bool,
    pub managed: bool,
    pub position: u16,
    /// The position of the bot's highest role.
    pub bot_top: u16,
}

/// A tier role must be one guildops can give and take: say exactly how to fix it.
pub fn check_role(role: RoleFacts) -> Result<(), Error> {
    let why = if !role.exists {
        "That role doesn't exist (any more). Pick an existing role."
    } else if role.is_everyone {
        "@everyone can't be a paid role. Create a role for the tier and pick that."
    } else if role.managed {
        "That role is managed by an integration (a bot or a boost role), so nobody can assign it. Create a normal role for the tier."
    } else if role.position >= role.bot_top {
        "That role is above (or level with) my highest role, so Discord won't let me assign it. In Server Settings → Roles, drag my role above it, then try again."
    } else {
        return Ok(());
    };
    Err(Error::BadRole(why.into()))
}

/// `/tier create`: the options an owner gives.
#[derive(Debug, Clone)]
pub struct NewTier {
    pub name: String,
    pub description: Option<String>,
    pub role_id: RoleId,
    pub unit_amount: i64,
    pub currency: String,
    pub interval: Interval,
}

pub(super) fn stripe_of(stripe: Option<&Stripe>) -> Result<&Stripe, Error> {
    stripe.ok_or(Error::NotConfigured)
}

/// Creates the Stripe Product and Price, then the tier.
#[tracing::instrument(skip_all, fields(guild.id = %guild, user.id = %actor))]
pub async fn create_tier(
    pool: &PgPool,
    stripe: Option<&Stripe>,
    guild: GuildId,
    actor: UserId,
    new: NewTier,
    reconcile_every: chrono::Duration,
) -> Result<Tier, Error> {
    let stripe = stripe_of(stripe)?;
    if new.unit_amount <= 0 || new.currency.len() != 3 {
        return Err(Error::Invalid(
            "give a positive price and a three-letter currency such as eur or usd".into(),
        ));
    }
    let community = community::find_by_guild(pool, guild).await?;
    let currency = new.currency.to_ascii_lowercase();
    let created = stripe
        .create_price(
            community.id,
            &new.name,
            new.description.as_deref(),
            new.unit_amount,
            &currency,
            new.interval,
        )
        .await?;
    let tier = Tier {
        id: Uuid::now_v7(),
        name: new.name,
        description: new.description,
        role_id: new.role_id,
        product_id: Some(created.product_id),
        price_id: created.price_id,
        unit_amount: new.unit_amount,
        currency,
        interval: new.interval,
        archived_at: None,
        lapse_kicks: false,
    };
    save_new_tier(pool, guild, actor, &tier, reconcile_every).await?;
    Ok(tier)
}

/// `/tier link`: the options an owner gives.
#[derive(Debug, Clone)]
pub struct TierLink {
    pub name: String,
    pub price_id: String,
    pub role_id: RoleId,
}

/// `/tier link`: a tier for an existing Stripe Price.
#[tracing::instrument(skip_all, fields(guild.id = %guild, user.id = %actor))]
pub async fn link_tier(
    pool: &PgPool,
    stripe: Option<&Stripe>,
    guild: GuildId,
    actor: UserId,
    link: TierLink,
    reconcile_every: chrono::Duration,
) -> Result<Tier, Error> {
    let TierLink {
        name,
        price_id,
        role_id,
    } = link;
    let stripe = stripe_of(stripe)?;
    let price = stripe.price(&price_id).await?;
    let interval = price.interval.ok_or_else(|| {
        Error::Invalid("that price is not a monthly or yearly recurring price".into())
    })?;
    let tier = Tier {
        id: Uuid::now_v7(),
        name,
        description: None,
        role_id,
        product_id: Some(price.product_id),
        price_id,
        unit_amount: price.unit_amount,
        currency: price.currency,
        interval,
        archived_at: None,
        lapse_kicks: false,
    };
    save_new_tier(pool, guild, actor, &tier, reconcile_every).await?;
    Ok(tier)
}

/// Records a tier (audited) and makes sure the community's drift repair is scheduled.
pub async fn save_new_tier(
    pool: &PgPool,
    guild: GuildId,
    actor: UserId,
    tier: &Tier,
    reconcile_every: chrono::Duration,
) -> Result<(), Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    db::insert_tier(&mut tx, community.id, tier)
        .await
        .map_err(|e| on_unique(e, &tier.name))?;
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(actor),
        "tier.created",
        format!("tier:{}", tier.id),
    );
    entry.after = Some(tier_json(tier));
    audit::record(&mut tx, entry).await?;
    schedule_reconcile(&mut tx, community.id, Utc::now(), reconcile_every).await?;
    tx.commit().await?;
    Ok(())
}

fn tier_json(t: &Tier) -> serde_json::Value {
    serde_json::json!({
        "name": t.name, "role_id": t.role_id.to_string(), "price_id": t.price_id,
        "unit_amount": t.unit_amount, "currency": t.currency, "interval": t.interval.as_str(),
        "archived": t.archived_at.is_some(),
        "lapse_action": if t.lapse_kicks { "remove_role_and_kick" } else { "remove_role" },
    })
}

/// The next drift repair, one per interval bucket (so duplicates collapse).
pub async fn schedule_reconcile(
    conn: &mut sqlx::PgConnection,
    community: Uuid,
    now: DateTime<Utc>,
    every: chrono::Duration,
) -> Result<(), sqlx::Error> {
    let step = every.num_seconds().max(60);
    let at_secs = (now.timestamp() / step + 1) * step;
    let at = DateTime::from_timestamp(at_secs, 0).unwrap_or(now);
    let job = Job::Scheduled {
        name: RECONCILE_JOB.into(),
        data: serde_json::json!({}),
    };
    let key = format!("reconcile:{community}:{at_secs}");
    outbox::enqueue(conn, NewJob::new(Some(community), key, job).at(at)).await?;
    Ok(())
}

pub async fn tiers(pool: &PgPool, guild: GuildId) -> Result<Vec<Tier>, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let tiers = db::tiers(&mut tx, community.id).await?;
    tx.commit().await?;
    Ok(tiers)
}

pub(super) fn find<'t>(tiers: &'t [Tier], name: &str) -> Result<&'t Tier, Error> {
    tiers
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| Error::UnknownTier(name.to_owned()))
}

/// `/tier edit` and `/tier archive`: `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct TierChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub role_id: Option<RoleId>,
    pub archive: bool,
    /// Kick the member when their access lapses (`Some(false)`: only remove the role).
    pub lapse_kicks: Option<bool>,
}

#[tracing::instrument(skip_all, fields(guild.id = %guild, user.id = %actor))]
pub async fn edit_tier(
    pool: &PgPool,
    guild: GuildId,
    actor: UserId,
    name: &str,
    change: TierChange,
) -> Result<Tier, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let tiers = db::tiers(&mut tx, community.id).await?;
    let before = find(&tiers, name)?.clone();
    let mut after = before.clone();
    if let Some(n) = change.name {
        after.name = n;
    }
    if let Some(d) = change.description {
        after.description = Some(d).filter(|d| !d.trim().is_empty());
    }
    if let Some(r) = change.role_id {
        after.role_id = r;
    }
    if let Some(kicks) = change.lapse_kicks {
        after.lapse_kicks = kicks;
    }
    if change.archive && after.archived_at.is_none() {
        after.archived_at = Some(Utc::now());
    }
    db::update_tier(&mut tx, community.id, &after)
        .await
        .map_err(|e| on_unique(e, &after.name))?;
    let action = if change.archive {
        "tier.archived"
    } else {
        "tier.updated"
    };
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(actor),
        action,
        format!("tier:{}", after.id),
    );
    entry.before = Some(tier_json(&before));
    entry.after = Some(tier_json(&after));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(after)
}

/// `/tier archive`: no new sales, and each current subscription set to end when its
/// paid period ends (Stripe then reports `cancel_at_period_end`, and the role stays
/// until that moment). Returns the tier and how many subscriptions Stripe refused.
#[tracing::instrument(skip_all, fields(guild.id = %guild, user.id = %actor))]
pub async fn archive_tier(
    pool: &PgPool,
    stripe: Option<&Stripe>,
    guild: GuildId,
    actor: UserId,
    name: &str,
) -> Result<(Tier, usize, usize), Error> {
    let stripe = stripe_of(stripe)?;
    let change = TierChange {
        archive: true,
        ..TierChange::default()
    };
    let tier = edit_tier(pool, guild, actor, name, change).await?;
    let (community, mut tx) = community::begin(pool, guild).await?;
    let running = db::renewing_subscriptions(&mut tx, community.id, &tier.price_id).await?;
    tx.commit().await?;
    let mut refused = 0;
    for id in &running {
        if let Err(e) = stripe.end_at_period_end(id).await {
            tracing::warn!(error = %e, stripe.subscription = %id, "cannot end an archived tier's subscription");
            refused += 1;
        }
    }
    Ok((tier, running.len() - refused, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_checks_say_how_to_fix_each_problem() {
        let ok = RoleFacts {
            exists: true,
            is_everyone: false,
            managed: false,
            position: 3,
            bot_top: 10,
        };
        assert!(check_role(ok).is_ok());
        let cases = [
            (
                RoleFacts {
                    exists: false,
                    ..ok
                },
                "doesn't exist",
            ),
            (
                RoleFacts {
                    is_everyone: true,
                    ..ok
                },
                "@everyone",
            ),
            (
                RoleFacts {
                    managed: true,
                    ..ok
                },
                "managed",
            ),
            (RoleFacts { position: 10, ..ok }, "drag my role above it"),
        ];
        for (facts, says) in cases {
            let err = check_role(facts).expect_err("refused");
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
