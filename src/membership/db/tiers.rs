//! SQL for tiers and the community's membership policy.

use serenity::all::RoleId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{sf, unsf};
use crate::membership::entitlement::Policy;
use crate::membership::{Interval, Tier};

macro_rules! tier_columns {
    () => {
        "id, name, description, discord_role_id, stripe_product_id, stripe_price_id, \
         unit_amount, currency, billing_interval, archived_at, lapse_action"
    };
}

fn tier_from_row(row: &PgRow) -> Result<Tier, sqlx::Error> {
    let interval: String = row.try_get("billing_interval")?;
    Ok(Tier {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        role_id: RoleId::new(unsf(row.try_get("discord_role_id")?)),
        product_id: row.try_get("stripe_product_id")?,
        price_id: row.try_get("stripe_price_id")?,
        unit_amount: row.try_get("unit_amount")?,
        currency: row.try_get("currency")?,
        interval: Interval::parse(&interval).unwrap_or(Interval::Month),
        archived_at: row.try_get("archived_at")?,
        lapse_kicks: row.try_get::<String, _>("lapse_action")? == "remove_role_and_kick",
    })
}

pub async fn insert_tier(
    conn: &mut PgConnection,
    community: Uuid,
    t: &Tier,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into tiers (id, community_id, name, description, discord_role_id,
                            stripe_product_id, stripe_price_id, unit_amount, currency,
                            billing_interval)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(t.id)
    .bind(community)
    .bind(&t.name)
    .bind(&t.description)
    .bind(sf(t.role_id.get()))
    .bind(&t.product_id)
    .bind(&t.price_id)
    .bind(t.unit_amount)
    .bind(&t.currency)
    .bind(t.interval.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn tiers(conn: &mut PgConnection, community: Uuid) -> Result<Vec<Tier>, sqlx::Error> {
    let sql = concat!(
        "select ",
        tier_columns!(),
        " from tiers where community_id = $1 order by unit_amount, name"
    );
    let rows = sqlx::query(sql).bind(community).fetch_all(conn).await?;
    rows.iter().map(tier_from_row).collect()
}

/// Saves a tier's editable fields (name, description, role, archived).
pub async fn update_tier(
    conn: &mut PgConnection,
    community: Uuid,
    t: &Tier,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update tiers set name = $3, description = $4, discord_role_id = $5,
                archived_at = $6, lapse_action = $7, updated_at = now()
          where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(t.id)
    .bind(&t.name)
    .bind(&t.description)
    .bind(sf(t.role_id.get()))
    .bind(t.archived_at)
    .bind(if t.lapse_kicks {
        "remove_role_and_kick"
    } else {
        "remove_role"
    })
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn policy(conn: &mut PgConnection, community: Uuid) -> Result<Policy, sqlx::Error> {
    let row: Option<(i32, bool, bool)> = sqlx::query_as(
        "select grace_secs, refund_revokes, dispute_revokes from membership_policies
          where community_id = $1",
    )
    .bind(community)
    .fetch_optional(conn)
    .await?;
    Ok(
        row.map_or_else(Policy::default, |(grace, refund, dispute)| Policy {
            grace: chrono::Duration::seconds(grace.into()),
            refund_revokes: refund,
            dispute_revokes: dispute,
        }),
    )
}

pub async fn save_policy(
    conn: &mut PgConnection,
    community: Uuid,
    p: &Policy,
) -> Result<(), sqlx::Error> {
    let grace = i32::try_from(p.grace.num_seconds()).unwrap_or(i32::MAX);
    sqlx::query(
        "insert into membership_policies (community_id, grace_secs, refund_revokes, dispute_revokes)
         values ($1, $2, $3, $4)
         on conflict (community_id) do update
            set grace_secs = $2, refund_revokes = $3, dispute_revokes = $4, updated_at = now()",
    )
    .bind(community)
    .bind(grace)
    .bind(p.refund_revokes)
    .bind(p.dispute_revokes)
    .execute(conn)
    .await?;
    Ok(())
}
