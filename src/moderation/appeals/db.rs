//! SQL for appeals, in the caller's community-scoped transaction, and the one
//! cross-community lookup a DM appeal needs.

use chrono::{DateTime, Utc};
use serenity::all::{GuildId, UserId};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

fn sf(id: u64) -> i64 {
    id as i64
}

#[derive(Debug, Clone)]
pub struct Appeal {
    pub id: Uuid,
    pub case_id: Uuid,
    pub appellant: UserId,
    pub reason: String,
    pub status: String,
}

/// The communities (and their names) where `user` is the target of case `number`.
/// Runs under the `appeals` purpose.
pub async fn communities_with_case(
    conn: &mut PgConnection,
    user: UserId,
    number: i32,
) -> Result<Vec<(Uuid, GuildId, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "select c.id, c.discord_guild_id, c.name from cases k
           join communities c on c.id = k.community_id
          where k.target_discord_id = $1 and k.number = $2 and c.status = 'active'
          order by c.name",
    )
    .bind(sf(user.get()))
    .bind(number)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                GuildId::new(r.try_get::<i64, _>("discord_guild_id")? as u64),
                r.try_get("name")?,
            ))
        })
        .collect()
}

/// Whether the case takes appeals (its own flag and a "closed" decision).
pub async fn appealable(conn: &mut PgConnection, case: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select appealable and not appeals_closed from cases where id = $1")
        .bind(case)
        .fetch_one(conn)
        .await
}

pub async fn has_open(conn: &mut PgConnection, case: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists(select 1 from appeals where case_id = $1 and status = 'open')",
    )
    .bind(case)
    .fetch_one(conn)
    .await
}

/// When the case's latest appeal was denied, if it was.
pub async fn last_denied(
    conn: &mut PgConnection,
    case: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "select max(decided_at) from appeals where case_id = $1 and status = 'denied'",
    )
    .bind(case)
    .fetch_one(conn)
    .await
}

pub async fn insert(
    conn: &mut PgConnection,
    community: Uuid,
    case: Uuid,
    appellant: UserId,
    reason: &str,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into appeals (id, community_id, case_id, appellant_discord_id, reason)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(community)
    .bind(case)
    .bind(sf(appellant.get()))
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(id)
}

pub async fn for_update(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
) -> Result<Option<Appeal>, sqlx::Error> {
    let row = sqlx::query(
        "select id, case_id, appellant_discord_id, reason, status from appeals
          where community_id = $1 and id = $2 for update",
    )
    .bind(community)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Appeal {
            id: r.try_get("id")?,
            case_id: r.try_get("case_id")?,
            appellant: UserId::new(r.try_get::<i64, _>("appellant_discord_id")? as u64),
            reason: r.try_get("reason")?,
            status: r.try_get("status")?,
        })
    })
    .transpose()
}

pub async fn decide(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
    status: &str,
    by: UserId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update appeals set status = $3, decided_by = $4, decided_at = now()
          where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(id)
    .bind(status)
    .bind(sf(by.get()))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn close_appeals(
    conn: &mut PgConnection,
    community: Uuid,
    case: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("update cases set appeals_closed = true where community_id = $1 and id = $2")
        .bind(community)
        .bind(case)
        .execute(conn)
        .await?;
    Ok(())
}
