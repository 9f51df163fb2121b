//! SQL for automod's rules and hits. Every function runs in the caller's
//! community-scoped transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::rules::RuleSpec;

/// Snowflakes are u64 but fit in i64 until the year 2084; PostgreSQL has no u64.
fn sf(id: u64) -> i64 {
    id as i64
}

/// A stored rule.
#[derive(Debug, Clone)]
pub struct StoredRule {
    pub id: Uuid,
    pub spec: RuleSpec,
    pub updated_at: DateTime<Utc>,
}

/// A recorded hit, as `/automod log` shows it.
#[derive(Debug, Clone)]
pub struct HitRecord {
    pub id: i64,
    pub rule_name: String,
    pub user_id: u64,
    pub channel_id: u64,
    pub message_id: u64,
    pub evidence: Option<String>,
    pub actions: Value,
    pub dry_run: bool,
    pub escalated: bool,
    pub false_positive: bool,
    pub created_at: DateTime<Utc>,
}

/// What a new hit records.
#[derive(Debug, Clone)]
pub struct NewHit<'a> {
    pub rule_id: Uuid,
    pub rule_name: &'a str,
    pub user_id: u64,
    pub channel_id: u64,
    pub message_id: u64,
    pub evidence: &'a str,
    pub actions: Value,
    pub dry_run: bool,
    pub escalated: bool,
}

fn spec_of(value: Value) -> Result<RuleSpec, sqlx::Error> {
    serde_json::from_value(value).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn json_of(spec: &RuleSpec) -> Result<Value, sqlx::Error> {
    serde_json::to_value(spec).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

pub async fn rules(
    conn: &mut PgConnection,
    community: Uuid,
) -> Result<Vec<StoredRule>, sqlx::Error> {
    let rows = sqlx::query(
        "select id, spec, updated_at from automod_rules where community_id = $1 order by created_at, id",
    )
    .bind(community)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(StoredRule {
                id: row.try_get("id")?,
                spec: spec_of(row.try_get("spec")?)?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}

/// The rule called `name` (case-insensitive), locked for a change.
pub async fn rule_for_update(
    conn: &mut PgConnection,
    community: Uuid,
    name: &str,
) -> Result<Option<StoredRule>, sqlx::Error> {
    let row = sqlx::query(
        "select id, spec, updated_at from automod_rules
          where community_id = $1 and lower(name) = lower($2) for update",
    )
    .bind(community)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(StoredRule {
            id: row.try_get("id")?,
            spec: spec_of(row.try_get("spec")?)?,
            updated_at: row.try_get("updated_at")?,
        })
    })
    .transpose()
}

/// False when a rule of that name exists already.
pub async fn insert_rule(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
    spec: &RuleSpec,
    actor: u64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "insert into automod_rules (id, community_id, name, spec, created_by, updated_by)
         values ($1, $2, $3, $4, $5, $5)
         on conflict (community_id, lower(name)) do nothing",
    )
    .bind(id)
    .bind(community)
    .bind(&spec.name)
    .bind(json_of(spec)?)
    .bind(sf(actor))
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn update_rule(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
    spec: &RuleSpec,
    actor: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update automod_rules set name = $3, spec = $4, updated_by = $5, updated_at = now()
          where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(id)
    .bind(&spec.name)
    .bind(json_of(spec)?)
    .bind(sf(actor))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_rule(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from automod_rules where community_id = $1 and id = $2")
        .bind(community)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every rule of the community, for an import that replaces them.
pub async fn delete_all_rules(
    conn: &mut PgConnection,
    community: Uuid,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("delete from automod_rules where community_id = $1")
        .bind(community)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Records a hit; `None` when this message already hit this rule (a gateway replay).
pub async fn insert_hit(
    conn: &mut PgConnection,
    community: Uuid,
    hit: &NewHit<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into automod_hits (community_id, rule_id, rule_name, discord_user_id,
                                   discord_channel_id, discord_message_id, evidence, actions,
                                   dry_run, escalated)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (community_id, discord_message_id, rule_name) do nothing
         returning id",
    )
    .bind(community)
    .bind(hit.rule_id)
    .bind(hit.rule_name)
    .bind(sf(hit.user_id))
    .bind(sf(hit.channel_id))
    .bind(sf(hit.message_id))
    .bind(hit.evidence)
    .bind(&hit.actions)
    .bind(hit.dry_run)
    .bind(hit.escalated)
    .fetch_optional(conn)
    .await
}

/// A member's hits of one rule since `since`, and whether one of them escalated.
pub async fn recent_hits(
    conn: &mut PgConnection,
    community: Uuid,
    rule_name: &str,
    user_id: u64,
    since: DateTime<Utc>,
) -> Result<(i64, bool), sqlx::Error> {
    let row = sqlx::query(
        "select count(*) as hits, coalesce(bool_or(escalated), false) as escalated
           from automod_hits
          where community_id = $1 and rule_name = $2 and discord_user_id = $3
            and created_at >= $4 and feedback is null",
    )
    .bind(community)
    .bind(rule_name)
    .bind(sf(user_id))
    .bind(since)
    .fetch_one(conn)
    .await?;
    Ok((row.try_get("hits")?, row.try_get("escalated")?))
}

pub async fn mark_escalated(
    conn: &mut PgConnection,
    community: Uuid,
    id: i64,
    actions: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update automod_hits set escalated = true, actions = $3 where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(id)
    .bind(actions)
    .execute(conn)
    .await?;
    Ok(())
}

/// The latest hits, newest first; only `user`'s when given.
pub async fn hits(
    conn: &mut PgConnection,
    community: Uuid,
    user: Option<u64>,
    limit: i64,
) -> Result<Vec<HitRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "select id, rule_name, discord_user_id, discord_channel_id, discord_message_id, evidence,
                actions, dry_run, escalated, feedback is not null as false_positive, created_at
           from automod_hits
          where community_id = $1 and ($2::bigint is null or discord_user_id = $2)
          order by created_at desc, id desc
          limit $3",
    )
    .bind(community)
    .bind(user.map(sf))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(hit_from_row).collect()
}

pub async fn hit_for_update(
    conn: &mut PgConnection,
    community: Uuid,
    id: i64,
) -> Result<Option<(HitRecord, Option<u64>)>, sqlx::Error> {
    let row = sqlx::query(
        "select id, rule_name, discord_user_id, discord_channel_id, discord_message_id, evidence,
                actions, dry_run, escalated, feedback is not null as false_positive, created_at,
                feedback_by
           from automod_hits where community_id = $1 and id = $2 for update",
    )
    .bind(community)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        let by: Option<i64> = row.try_get("feedback_by")?;
        Ok((hit_from_row(&row)?, by.map(|b| b as u64)))
    })
    .transpose()
}

pub async fn mark_false_positive(
    conn: &mut PgConnection,
    community: Uuid,
    id: i64,
    by: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update automod_hits set feedback = 'false_positive', feedback_by = $3, feedback_at = now()
          where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(id)
    .bind(sf(by))
    .execute(conn)
    .await?;
    Ok(())
}

/// Tells every daemon (this one included) to reload the guild's rules.
pub async fn notify_changed(conn: &mut PgConnection, guild_id: u64) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_notify($1, $2)")
        .bind(super::CHANNEL)
        .bind(guild_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

fn hit_from_row(row: &sqlx::postgres::PgRow) -> Result<HitRecord, sqlx::Error> {
    let id = |name: &str| -> Result<u64, sqlx::Error> { Ok(row.try_get::<i64, _>(name)? as u64) };
    Ok(HitRecord {
        id: row.try_get("id")?,
        rule_name: row.try_get("rule_name")?,
        user_id: id("discord_user_id")?,
        channel_id: id("discord_channel_id")?,
        message_id: id("discord_message_id")?,
        evidence: row.try_get("evidence")?,
        actions: row.try_get("actions")?,
        dry_run: row.try_get("dry_run")?,
        escalated: row.try_get("escalated")?,
        false_positive: row.try_get("false_positive")?,
        created_at: row.try_get("created_at")?,
    })
}
