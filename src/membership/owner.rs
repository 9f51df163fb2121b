//! The use cases behind the commands: owners' tier management, grants, policy, drift
//! repair and revenue; members' checkout, membership and explanation. Stripe calls are
//! made before a transaction opens; every state change is audited in its transaction.

use chrono::{DateTime, Utc};
use serenity::all::{GuildId, RoleId, UserId};
use sqlx::PgPool;
use uuid::Uuid;

use super::stripe::Stripe;
use super::sync::{self, Baseline, Cause, Change};
use super::{Error, Interval, RECONCILE_JOB, Tier, db, entitlement, on_unique};
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

fn stripe_of(stripe: Option<&Stripe>) -> Result<&Stripe, Error> {
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

fn find<'t>(tiers: &'t [Tier], name: &str) -> Result<&'t Tier, Error> {
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

/// `/tier grant` (or, with `revoke`, `/tier revoke`).
#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub member: UserId,
    pub tier: String,
    pub until: Option<DateTime<Utc>>,
    pub revoke: bool,
}

/// `/tier grant` and `/tier revoke`: complimentary access, applied at once.
#[tracing::instrument(skip_all, fields(guild.id = %guild, user.id = %actor, member.id = %request.member))]
pub async fn grant(
    pool: &PgPool,
    guild: GuildId,
    actor: UserId,
    request: GrantRequest,
    correlation: String,
) -> Result<Change, Error> {
    let GrantRequest {
        member,
        tier,
        until,
        revoke,
    } = request;
    let tier_name = tier.as_str();
    if until.is_some_and(|u| u <= Utc::now()) {
        return Err(Error::Invalid(
            "the end of a grant must be in the future".into(),
        ));
    }
    let (community, mut tx) = community::begin(pool, guild).await?;
    let tiers = db::tiers(&mut tx, community.id).await?;
    let tier = find(&tiers, tier_name)?;
    let action = if revoke {
        let n = db::revoke_grants(&mut tx, community.id, tier.id, member, actor).await?;
        if n == 0 {
            return Err(Error::Invalid(format!(
                "that member has no complimentary “{}” to revoke (paid subscriptions are managed in Stripe)",
                tier.name
            )));
        }
        "tier.grant_revoked"
    } else {
        db::insert_grant(&mut tx, community.id, tier.id, member, actor, until).await?;
        "tier.granted"
    };
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(actor),
        action,
        format!("member:{member}"),
    );
    entry.after = Some(serde_json::json!({"tier": tier.name, "until": until}));
    entry.correlation_id = Some(correlation.clone());
    audit::record(&mut tx, entry).await?;
    let cause = Cause {
        key: correlation,
        actor: Actor::User(actor),
        reason: if revoke {
            "complimentary access revoked"
        } else {
            "complimentary access"
        },
    };
    let change = sync::member(&mut tx, community.id, guild, member, &cause, Baseline::Held).await?;
    tx.commit().await?;
    Ok(change)
}

/// `/tier policy`: the community's grace period and refund/dispute rules.
pub async fn set_policy(
    pool: &PgPool,
    guild: GuildId,
    actor: UserId,
    grace_secs: Option<i64>,
    refund_revokes: Option<bool>,
    dispute_revokes: Option<bool>,
) -> Result<entitlement::Policy, Error> {
    if grace_secs.is_some_and(|g| !(0..=30 * 86_400).contains(&g)) {
        return Err(Error::Invalid(
            "the grace period can be 0 to 30 days".into(),
        ));
    }
    let (community, mut tx) = community::begin(pool, guild).await?;
    let before = db::policy(&mut tx, community.id).await?;
    let mut after = before.clone();
    if let Some(g) = grace_secs {
        after.grace = chrono::Duration::seconds(g);
    }
    after.refund_revokes = refund_revokes.unwrap_or(after.refund_revokes);
    after.dispute_revokes = dispute_revokes.unwrap_or(after.dispute_revokes);
    db::save_policy(&mut tx, community.id, &after).await?;
    let json = |p: &entitlement::Policy| {
        serde_json::json!({"grace_secs": p.grace.num_seconds(), "refund_revokes": p.refund_revokes,
                           "dispute_revokes": p.dispute_revokes})
    };
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(actor),
        "membership.policy_updated",
        format!("community:{}", community.id),
    );
    entry.before = Some(json(&before));
    entry.after = Some(json(&after));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(after)
}

/// Drift repair for one member or everyone with a paid interest: compares intended
/// roles with the roles Discord last reported and fixes the difference.
#[tracing::instrument(skip_all, fields(guild.id = %guild))]
pub async fn resync(
    pool: &PgPool,
    guild: GuildId,
    actor: Actor,
    member: Option<UserId>,
    correlation: String,
) -> Result<Vec<(UserId, Change)>, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let members = match member {
        Some(m) => vec![m],
        None => db::members_with_paid_interest(&mut tx, community.id).await?,
    };
    let cause = Cause {
        key: correlation,
        actor,
        reason: "drift repair",
    };
    let mut changes = Vec::new();
    for user in members {
        let change = sync::member(
            &mut tx,
            community.id,
            guild,
            user,
            &cause,
            Baseline::Discord,
        )
        .await?;
        if !change.is_empty() {
            changes.push((user, change));
        }
    }
    tx.commit().await?;
    Ok(changes)
}

/// A member (re)joined: Discord gave them no roles back, so grant what they are owed.
#[tracing::instrument(skip_all, fields(guild.id = %guild, user.id = %user))]
pub async fn member_joined(
    pool: &PgPool,
    guild: GuildId,
    user: UserId,
    joined_at: Option<DateTime<Utc>>,
) -> Result<Change, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let stint = joined_at.map_or_else(|| Utc::now().timestamp_millis(), |t| t.timestamp_millis());
    let cause = Cause {
        key: format!("join:{stint}"),
        actor: Actor::System("gateway"),
        reason: "paid roles restored on rejoin",
    };
    let change = sync::member(
        &mut tx,
        community.id,
        guild,
        user,
        &cause,
        Baseline::Nothing,
    )
    .await?;
    tx.commit().await?;
    Ok(change)
}

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
