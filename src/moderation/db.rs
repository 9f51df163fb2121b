//! SQL for cases and their edit history, in the caller's community-scoped transaction.

use chrono::{DateTime, Utc};
use serenity::all::UserId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::case::{Kind, Status};

/// Snowflakes are u64 but fit in i64 until the year 2084; PostgreSQL has no u64.
fn sf(id: u64) -> i64 {
    id as i64
}

#[derive(Debug, Clone)]
pub struct Case {
    pub id: Uuid,
    pub number: i32,
    pub kind: Kind,
    pub target: UserId,
    pub moderator: UserId,
    pub reason: String,
    pub evidence: Vec<String>,
    pub duration_secs: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub hidden: bool,
    pub appealable: bool,
    pub dm: String,
    pub source: String,
    pub created_at: DateTime<Utc>,
}

/// A case to record.
#[derive(Debug, Clone)]
pub struct NewCase<'a> {
    pub kind: Kind,
    pub target: UserId,
    pub moderator: UserId,
    pub reason: &'a str,
    pub evidence: &'a [String],
    pub duration_secs: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub dm: &'a str,
    pub source: &'a str,
    pub reverses: Option<Uuid>,
    /// The Discord audit-log entry of a case taken by hand in Discord's interface.
    pub discord_entry: Option<u64>,
}

/// Which cases `/case list|search` wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub target: Option<UserId>,
    pub moderator: Option<UserId>,
    pub kind: Option<Kind>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub include_hidden: bool,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct Edit {
    pub editor: UserId,
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub edited_at: DateTime<Utc>,
}

/// The columns every case query returns; a macro so `concat!` keeps the SQL static.
macro_rules! columns {
    () => {
        "id, number, kind, target_discord_id, moderator_discord_id, reason, evidence, \
         duration_secs, expires_at, status, hidden, appealable, dm, source, created_at"
    };
}

fn case_from_row(row: &PgRow) -> Result<Case, sqlx::Error> {
    let user = |name: &str| -> Result<UserId, sqlx::Error> {
        Ok(UserId::new(row.try_get::<i64, _>(name)? as u64))
    };
    let bad =
        |what: &str, v: String| sqlx::Error::Decode(format!("unknown case {what} {v:?}").into());
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    Ok(Case {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        kind: Kind::parse(&kind).ok_or_else(|| bad("kind", kind.clone()))?,
        target: user("target_discord_id")?,
        moderator: user("moderator_discord_id")?,
        reason: row.try_get("reason")?,
        evidence: row.try_get("evidence")?,
        duration_secs: row.try_get("duration_secs")?,
        expires_at: row.try_get("expires_at")?,
        status: Status::parse(&status).ok_or_else(|| bad("status", status.clone()))?,
        hidden: row.try_get("hidden")?,
        appealable: row.try_get("appealable")?,
        dm: row.try_get("dm")?,
        source: row.try_get("source")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The community's next case number (the counter row serialises concurrent cases).
async fn next_number(conn: &mut PgConnection, community: Uuid) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "insert into case_numbers (community_id, last_number) values ($1, 1)
         on conflict (community_id) do update set last_number = case_numbers.last_number + 1
         returning last_number",
    )
    .bind(community)
    .fetch_one(conn)
    .await
}

pub async fn insert(
    conn: &mut PgConnection,
    community: Uuid,
    new: &NewCase<'_>,
) -> Result<Case, sqlx::Error> {
    let number = next_number(&mut *conn, community).await?;
    let sql = concat!(
        "insert into cases (id, community_id, number, kind, target_discord_id, moderator_discord_id,
                            reason, evidence, duration_secs, expires_at, status, dm, source, reverses,
                            discord_entry_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         returning ",
        columns!(),
        ""
    );
    let row = sqlx::query(sql)
        .bind(Uuid::now_v7())
        .bind(community)
        .bind(number)
        .bind(new.kind.as_str())
        .bind(sf(new.target.get()))
        .bind(sf(new.moderator.get()))
        .bind(new.reason)
        .bind(new.evidence)
        .bind(new.duration_secs)
        .bind(new.expires_at)
        .bind(Status::initial(new.kind).as_str())
        .bind(new.dm)
        .bind(new.source)
        .bind(new.reverses)
        .bind(new.discord_entry.map(sf))
        .fetch_one(conn)
        .await?;
    case_from_row(&row)
}

/// Whether a case already records this Discord audit-log entry.
pub async fn has_entry(
    conn: &mut PgConnection,
    community: Uuid,
    entry: u64,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists(select 1 from cases where community_id = $1 and discord_entry_id = $2)",
    )
    .bind(community)
    .bind(sf(entry))
    .fetch_one(conn)
    .await
}

pub async fn by_number(
    conn: &mut PgConnection,
    community: Uuid,
    number: i32,
) -> Result<Option<Case>, sqlx::Error> {
    let sql = concat!(
        "select ",
        columns!(),
        " from cases where community_id = $1 and number = $2 for update"
    );
    let row = sqlx::query(sql)
        .bind(community)
        .bind(number)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(case_from_row).transpose()
}

pub async fn by_id_for_update(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
) -> Result<Option<Case>, sqlx::Error> {
    let sql = concat!(
        "select ",
        columns!(),
        " from cases where community_id = $1 and id = $2 for update"
    );
    let row = sqlx::query(sql)
        .bind(community)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(case_from_row).transpose()
}

/// The member's active lasting sanctions of `kind` (newest first).
pub async fn active(
    conn: &mut PgConnection,
    community: Uuid,
    target: UserId,
    kind: Option<Kind>,
) -> Result<Vec<Case>, sqlx::Error> {
    let sql = concat!(
        "select ",
        columns!(),
        " from cases
          where community_id = $1 and target_discord_id = $2 and status = 'active'
            and ($3::text is null or kind = $3)
          order by created_at desc for update"
    );
    let rows = sqlx::query(sql)
        .bind(community)
        .bind(sf(target.get()))
        .bind(kind.map(Kind::as_str))
        .fetch_all(conn)
        .await?;
    rows.iter().map(case_from_row).collect()
}

pub async fn search(
    conn: &mut PgConnection,
    community: Uuid,
    f: &Filter,
) -> Result<Vec<Case>, sqlx::Error> {
    let sql = concat!(
        "select ",
        columns!(),
        " from cases
          where community_id = $1
            and ($2::bigint is null or target_discord_id = $2)
            and ($3::bigint is null or moderator_discord_id = $3)
            and ($4::text is null or kind = $4)
            and ($5::timestamptz is null or created_at >= $5)
            and ($6::timestamptz is null or created_at < $6)
            and ($7 or not hidden)
          order by number desc
          limit $8"
    );
    let rows = sqlx::query(sql)
        .bind(community)
        .bind(f.target.map(|u| sf(u.get())))
        .bind(f.moderator.map(|u| sf(u.get())))
        .bind(f.kind.map(Kind::as_str))
        .bind(f.since)
        .bind(f.until)
        .bind(f.include_hidden)
        .bind(f.limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(case_from_row).collect()
}

pub async fn set_status(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
    status: Status,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update cases set status = $3, updated_at = now() where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(id)
    .bind(status.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_dm(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
    dm: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("update cases set dm = $3, updated_at = now() where community_id = $1 and id = $2")
        .bind(community)
        .bind(id)
        .bind(dm)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_appealable(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
    appealable: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update cases set appealable = $3, updated_at = now() where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(id)
    .bind(appealable)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_reason(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update cases set reason = $3, updated_at = now() where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_duration(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
    duration_secs: i64,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update cases set duration_secs = $3, expires_at = $4, updated_at = now()
          where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(id)
    .bind(duration_secs)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_hidden(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
    hidden: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update cases set hidden = $3, updated_at = now() where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(id)
    .bind(hidden)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_edit(
    conn: &mut PgConnection,
    community: Uuid,
    case: Uuid,
    editor: UserId,
    field: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into case_edits (community_id, case_id, editor_discord_id, field, before, after)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(community)
    .bind(case)
    .bind(sf(editor.get()))
    .bind(field)
    .bind(before)
    .bind(after)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn edits(
    conn: &mut PgConnection,
    community: Uuid,
    case: Uuid,
) -> Result<Vec<Edit>, sqlx::Error> {
    let rows = sqlx::query(
        "select editor_discord_id, field, before, after, edited_at from case_edits
          where community_id = $1 and case_id = $2 order by edited_at, id",
    )
    .bind(community)
    .bind(case)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Edit {
                editor: UserId::new(row.try_get::<i64, _>("editor_discord_id")? as u64),
                field: row.try_get("field")?,
                before: row.try_get("before")?,
                after: row.try_get("after")?,
                edited_at: row.try_get("edited_at")?,
            })
        })
        .collect()
}

// ----- warning policy -------------------------------------------------------------------

/// The expiry in days and the ban-appeal rule, when the community set them.
pub async fn warning_policy(
    conn: &mut PgConnection,
    community: Uuid,
) -> Result<Option<(i32, bool)>, sqlx::Error> {
    sqlx::query_as(
        "select expiry_days, ban_appeal_needs_other_moderator from warning_policies
          where community_id = $1",
    )
    .bind(community)
    .fetch_optional(conn)
    .await
}

/// (warnings, kind, duration) per threshold, lowest first.
pub async fn warning_thresholds(
    conn: &mut PgConnection,
    community: Uuid,
) -> Result<Vec<(i32, String, Option<i64>)>, sqlx::Error> {
    sqlx::query_as(
        "select warnings, kind, duration_secs from warning_thresholds
          where community_id = $1 order by warnings",
    )
    .bind(community)
    .fetch_all(conn)
    .await
}

pub async fn set_warning_expiry(
    conn: &mut PgConnection,
    community: Uuid,
    days: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into warning_policies (community_id, expiry_days) values ($1, $2)
         on conflict (community_id) do update set expiry_days = excluded.expiry_days",
    )
    .bind(community)
    .bind(days)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_ban_appeal_rule(
    conn: &mut PgConnection,
    community: Uuid,
    other: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into warning_policies (community_id, ban_appeal_needs_other_moderator)
         values ($1, $2)
         on conflict (community_id)
         do update set ban_appeal_needs_other_moderator = excluded.ban_appeal_needs_other_moderator",
    )
    .bind(community)
    .bind(other)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_threshold(
    conn: &mut PgConnection,
    community: Uuid,
    warnings: i32,
    kind: &str,
    duration_secs: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into warning_thresholds (community_id, warnings, kind, duration_secs)
         values ($1, $2, $3, $4)
         on conflict (community_id, warnings)
         do update set kind = excluded.kind, duration_secs = excluded.duration_secs",
    )
    .bind(community)
    .bind(warnings)
    .bind(kind)
    .bind(duration_secs)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn remove_threshold(
    conn: &mut PgConnection,
    community: Uuid,
    warnings: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from warning_thresholds where community_id = $1 and warnings = $2")
        .bind(community)
        .bind(warnings)
        .execute(conn)
        .await?;
    Ok(())
}

/// The member's warnings since `since` (the ones that still count).
pub async fn active_warnings(
    conn: &mut PgConnection,
    community: Uuid,
    target: UserId,
    since: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from cases
          where community_id = $1 and target_discord_id = $2 and kind = 'warn'
            and created_at >= $3",
    )
    .bind(community)
    .bind(sf(target.get()))
    .bind(since)
    .fetch_one(conn)
    .await
}
