//! Keeping one member's paid roles equal to what they are entitled to, inside the
//! caller's transaction: read their subscriptions, grants and the policy, ask
//! [`entitlement`](super::entitlement), compare with the roles guildops holds on them
//! (or, for drift repair, with what Discord last reported), and enqueue one outbox job
//! per difference, an audit entry, and a re-check for when the answer changes by itself
//! (a grace period or a paid period ending).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serenity::all::{GuildId, RoleId, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

use super::db;
use super::entitlement::{self, GrantState, SubscriptionState};
use super::standing::Standing;
use crate::audit::{self, Actor, NewEntry};
use crate::outbox::{self, Job, NewJob};

/// Why a sync runs: `key` makes its jobs' idempotency keys (an event id, an interaction).
#[derive(Debug, Clone)]
pub struct Cause {
    pub key: String,
    pub actor: Actor,
    pub reason: &'static str,
}

/// What to compare the entitlement with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The paid roles guildops holds (the normal case).
    Held,
    /// The tier roles Discord last reported on the member (drift repair).
    Discord,
    /// Nothing: the member just (re)joined and Discord gave them no roles back.
    Nothing,
}

/// The roles a sync added and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<RoleId>,
    pub removed: Vec<RoleId>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// Everything the rule needs about one member, read in the caller's transaction.
pub struct MemberState {
    pub tiers: Vec<super::Tier>,
    pub subscriptions: Vec<(db::SubRow, SubscriptionState)>,
    pub grants: Vec<GrantState>,
    pub policy: entitlement::Policy,
    /// The paid roles guildops holds on the member.
    pub held: Vec<RoleId>,
    /// Their roles on Discord as last reported; `None` when not in the guild.
    pub on_discord: Option<Vec<RoleId>>,
}

/// Three statements: tiers, subscriptions (with payment flags), the rest.
pub async fn load(
    conn: &mut PgConnection,
    community: Uuid,
    user: UserId,
) -> Result<MemberState, sqlx::Error> {
    let tiers = db::tiers(conn, community).await?;
    let mut subscriptions = Vec::new();
    for (row, refunded, disputed) in db::subscriptions_of(conn, community, user).await? {
        let standing = Standing {
            good_at: row.good_standing_at,
            failures: row.failure_times.clone(),
        };
        let state = SubscriptionState {
            price_ids: row.price_ids.clone(),
            status: row.status,
            current_period_end: row.current_period_end,
            cancel_at_period_end: row.cancel_at_period_end,
            delinquent_since: standing.delinquent_since(),
            refunded,
            disputed,
        };
        subscriptions.push((row, state));
    }
    let member = db::member_state(conn, community, user).await?;
    let grants = member
        .grants
        .into_iter()
        .map(|(tier_id, expires_at)| GrantState {
            tier_id,
            expires_at,
        })
        .collect();
    Ok(MemberState {
        tiers,
        subscriptions,
        grants,
        policy: member.policy,
        held: member.held,
        on_discord: member.on_discord,
    })
}

impl MemberState {
    pub fn entitled(&self, now: DateTime<Utc>) -> (BTreeSet<RoleId>, Option<DateTime<Utc>>) {
        let tiers: Vec<_> = self.tiers.iter().map(super::Tier::as_ref).collect();
        let subs: Vec<_> = self.subscriptions.iter().map(|(_, s)| s.clone()).collect();
        entitlement::entitled_roles(&tiers, &subs, &self.grants, &self.policy, now)
    }
}

/// Brings `user`'s paid roles in `guild` to their entitlement at `now`.
pub async fn member(
    conn: &mut PgConnection,
    community: Uuid,
    guild: GuildId,
    user: UserId,
    cause: &Cause,
    baseline: Baseline,
) -> Result<Change, sqlx::Error> {
    db::lock_member(conn, community, user).await?;
    let now = Utc::now();
    let state = load(conn, community, user).await?;
    let (intended, next) = state.entitled(now);
    let held: BTreeSet<RoleId> = state.held.iter().copied().collect();
    let Some(on_discord) = state.on_discord.clone() else {
        // Not in the guild: Discord holds no roles for them; a rejoin grants afresh.
        if !held.is_empty() {
            db::set_held_roles(conn, community, user, &[]).await?;
        }
        return Ok(Change::default());
    };
    let tier_roles: BTreeSet<RoleId> = state.tiers.iter().map(|t| t.role_id).collect();
    let base: BTreeSet<RoleId> = match baseline {
        Baseline::Held => held.clone(),
        Baseline::Discord => on_discord
            .into_iter()
            .filter(|r| tier_roles.contains(r) || held.contains(r))
            .collect(),
        Baseline::Nothing => BTreeSet::new(),
    };
    let change = Change {
        added: intended.difference(&base).copied().collect(),
        removed: base.difference(&intended).copied().collect(),
    };
    for role in &change.added {
        enqueue_role(conn, community, guild, user, *role, true, cause).await?;
    }
    for role in &change.removed {
        enqueue_role(conn, community, guild, user, *role, false, cause).await?;
    }
    if lapse_kicks(&state, &change, &intended, baseline, cause) {
        enqueue_kick(conn, community, guild, user, cause).await?;
    }
    let intended_list: Vec<RoleId> = intended.iter().copied().collect();
    if intended != held {
        db::set_held_roles(conn, community, user, &intended_list).await?;
    }
    if let Some(at) = next {
        schedule_recheck(conn, community, user, at).await?;
    }
    if !change.is_empty() {
        audit::record(conn, entry(community, user, &held, &intended, cause)).await?;
    }
    Ok(change)
}

/// A lapse kicks only when the system took the role (not an owner's revoke, not drift
/// repair or a rejoin), one of the lost roles' tiers asks for it, and the member is left
/// with no paid role at all.
fn lapse_kicks(
    state: &MemberState,
    change: &Change,
    intended: &BTreeSet<RoleId>,
    baseline: Baseline,
    cause: &Cause,
) -> bool {
    baseline == Baseline::Held
        && matches!(cause.actor, Actor::System(_))
        && intended.is_empty()
        && change.removed.iter().any(|role| {
            state
                .tiers
                .iter()
                .any(|t| t.role_id == *role && t.lapse_kicks)
        })
}

/// The kick follows the role removal (a member removed first would fail it).
async fn enqueue_kick(
    conn: &mut PgConnection,
    community: Uuid,
    guild_id: GuildId,
    user_id: UserId,
    cause: &Cause,
) -> Result<(), sqlx::Error> {
    let job = Job::KickMember {
        guild_id,
        user_id,
        reason: format!("paid tier lapsed: {}", cause.reason),
    };
    let key = format!("paid-kick:{community}:{user_id}:{}", cause.key);
    let at = Utc::now() + chrono::Duration::seconds(2);
    outbox::enqueue(conn, NewJob::new(Some(community), key, job).at(at)).await?;
    Ok(())
}

async fn enqueue_role(
    conn: &mut PgConnection,
    community: Uuid,
    guild_id: GuildId,
    user_id: UserId,
    role_id: RoleId,
    add: bool,
    cause: &Cause,
) -> Result<(), sqlx::Error> {
    let reason = format!("paid tier: {}", cause.reason);
    let (op, job) = if add {
        let job = Job::AddRole {
            guild_id,
            user_id,
            role_id,
            reason,
        };
        ("add", job)
    } else {
        let job = Job::RemoveRole {
            guild_id,
            user_id,
            role_id,
            reason,
        };
        ("remove", job)
    };
    let key = format!(
        "paid-role:{community}:{user_id}:{role_id}:{op}:{}",
        cause.key
    );
    outbox::enqueue(conn, NewJob::new(Some(community), key, job)).await?;
    Ok(())
}

/// A re-evaluation when the entitlement changes by itself; one job per instant.
pub async fn schedule_recheck(
    conn: &mut PgConnection,
    community: Uuid,
    user: UserId,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let job = Job::Scheduled {
        name: super::RECHECK_JOB.into(),
        data: serde_json::json!({ "user_id": user.to_string() }),
    };
    let key = format!("recheck:{community}:{user}:{}", at.timestamp_millis());
    outbox::enqueue(conn, NewJob::new(Some(community), key, job).at(at)).await?;
    Ok(())
}

fn entry(
    community: Uuid,
    user: UserId,
    before: &BTreeSet<RoleId>,
    after: &BTreeSet<RoleId>,
    cause: &Cause,
) -> NewEntry {
    let ids = |s: &BTreeSet<RoleId>| s.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    let mut entry = NewEntry::new(
        community,
        cause.actor,
        "membership.roles_synced",
        format!("member:{user}"),
    );
    entry.before = Some(serde_json::json!({ "paid_roles": ids(before) }));
    entry.after = Some(serde_json::json!({ "paid_roles": ids(after), "why": cause.reason }));
    entry.correlation_id = Some(cause.key.clone());
    entry
}
