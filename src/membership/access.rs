//! Access that is not bought: complimentary grants and revocations, the community's
//! grace/refund/dispute policy, drift repair on request, and restoring paid roles when
//! a member rejoins. Each change is audited and synced in one transaction.

use chrono::{DateTime, Utc};
use serenity::all::{GuildId, UserId};
use sqlx::PgPool;

use super::sync::{self, Baseline, Cause, Change};
use super::tiers::find;
use super::{Error, db, entitlement};
use crate::audit::{self, Actor, NewEntry};
use crate::community;

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
