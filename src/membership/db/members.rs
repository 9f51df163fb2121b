//! SQL for grants, the member's state, and the paid roles guildops holds on them.

use chrono::{DateTime, Utc};
use serenity::all::{RoleId, UserId};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{sf, unsf};
use crate::membership::entitlement::Policy;

pub async fn insert_grant(
    conn: &mut PgConnection,
    community: Uuid,
    tier: Uuid,
    user: UserId,
    by: UserId,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into grants (id, community_id, tier_id, discord_user_id, granted_by, expires_at)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(community)
    .bind(tier)
    .bind(sf(user.get()))
    .bind(sf(by.get()))
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn revoke_grants(
    conn: &mut PgConnection,
    community: Uuid,
    tier: Uuid,
    user: UserId,
    by: UserId,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update grants set revoked_at = now(), revoked_by = $4
          where community_id = $1 and tier_id = $2 and discord_user_id = $3 and revoked_at is null",
    )
    .bind(community)
    .bind(tier)
    .bind(sf(user.get()))
    .bind(sf(by.get()))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Serialises syncs of one member until the transaction ends, so two events about
/// different subscriptions of the same member never both enqueue the same role change.
pub async fn lock_member(
    conn: &mut PgConnection,
    community: Uuid,
    user: UserId,
) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1::text || ':' || $2::text, 0))")
        .bind(community)
        .bind(sf(user.get()))
        .execute(conn)
        .await?;
    Ok(())
}

/// Everything about one member besides their subscriptions, in one round trip: the
/// community's policy, their live grants, the paid roles guildops holds on them, and
/// their roles on Discord (`None` when they are not in the guild).
pub struct MemberRow {
    pub policy: Policy,
    pub grants: Vec<(Uuid, Option<DateTime<Utc>>)>,
    pub held: Vec<RoleId>,
    pub on_discord: Option<Vec<RoleId>>,
}

pub async fn member_state(
    conn: &mut PgConnection,
    community: Uuid,
    user: UserId,
) -> Result<MemberRow, sqlx::Error> {
    let row = sqlx::query(
        "select p.grace_secs, p.refund_revokes, p.dispute_revokes,
                array(select tier_id from grants g where g.community_id = $1
                        and g.discord_user_id = $2 and g.revoked_at is null order by g.id) as grant_tiers,
                array(select expires_at from grants g where g.community_id = $1
                        and g.discord_user_id = $2 and g.revoked_at is null order by g.id) as grant_ends,
                array(select discord_role_id from paid_roles r where r.community_id = $1
                        and r.discord_user_id = $2 order by 1) as held,
                (select roles from community_members m where m.community_id = $1
                        and m.discord_user_id = $2 and m.left_at is null) as on_discord
           from (select 1) as one
           left join membership_policies p on p.community_id = $1",
    )
    .bind(community)
    .bind(sf(user.get()))
    .fetch_one(conn)
    .await?;
    let defaults = Policy::default();
    let grace: Option<i32> = row.try_get("grace_secs")?;
    let policy = Policy {
        grace: grace.map_or(defaults.grace, |g| chrono::Duration::seconds(g.into())),
        refund_revokes: row
            .try_get::<Option<bool>, _>("refund_revokes")?
            .unwrap_or(defaults.refund_revokes),
        dispute_revokes: row
            .try_get::<Option<bool>, _>("dispute_revokes")?
            .unwrap_or(defaults.dispute_revokes),
    };
    let tiers: Vec<Uuid> = row.try_get("grant_tiers")?;
    let ends: Vec<Option<DateTime<Utc>>> = row.try_get("grant_ends")?;
    let roles = |ids: Vec<i64>| ids.into_iter().map(|id| RoleId::new(unsf(id))).collect();
    Ok(MemberRow {
        policy,
        grants: tiers.into_iter().zip(ends).collect(),
        held: roles(row.try_get("held")?),
        on_discord: row.try_get::<Option<Vec<i64>>, _>("on_discord")?.map(roles),
    })
}

/// Replaces the held set with `roles`.
pub async fn set_held_roles(
    conn: &mut PgConnection,
    community: Uuid,
    user: UserId,
    roles: &[RoleId],
) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = roles.iter().map(|r| sf(r.get())).collect();
    sqlx::query(
        "delete from paid_roles
          where community_id = $1 and discord_user_id = $2 and not (discord_role_id = any($3))",
    )
    .bind(community)
    .bind(sf(user.get()))
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into paid_roles (community_id, discord_user_id, discord_role_id)
         select $1, $2, unnest($3::bigint[]) on conflict do nothing",
    )
    .bind(community)
    .bind(sf(user.get()))
    .bind(&ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Members whose paid roles may need attention: anyone with a subscription, a grant,
/// a held paid role, or a tier's role on Discord.
pub async fn members_with_paid_interest(
    conn: &mut PgConnection,
    community: Uuid,
) -> Result<Vec<UserId>, sqlx::Error> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "select discord_user_id from subscriptions where community_id = $1
         union select discord_user_id from grants where community_id = $1 and revoked_at is null
         union select discord_user_id from paid_roles where community_id = $1
         union select m.discord_user_id from community_members m
                where m.community_id = $1 and m.left_at is null
                  and m.roles && array(select discord_role_id from tiers where community_id = $1)
         order by 1",
    )
    .bind(community)
    .fetch_all(conn)
    .await?;
    Ok(ids.into_iter().map(|id| UserId::new(unsf(id))).collect())
}
