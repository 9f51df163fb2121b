//! SQL for reports, their reporters and reporter mutes, in the caller's
//! community-scoped transaction.

use chrono::{DateTime, Utc};
use serenity::all::{ChannelId, MessageId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::status::{Category, Status};

fn sf(id: u64) -> i64 {
    id as i64
}

#[derive(Debug, Clone)]
pub struct Report {
    pub id: Uuid,
    pub number: i32,
    pub target: UserId,
    pub channel: Option<ChannelId>,
    pub message: Option<MessageId>,
    pub category: Category,
    pub status: Status,
    pub claimed_by: Option<UserId>,
    pub outcome: Option<String>,
    pub case_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

macro_rules! columns {
    () => {
        "id, number, target_discord_id, channel_discord_id, message_discord_id, category, \
         status, claimed_by, outcome, case_id, created_at"
    };
}

fn report_from_row(row: &PgRow) -> Result<Report, sqlx::Error> {
    let opt = |name: &str| -> Result<Option<u64>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(name)?.map(|v| v as u64))
    };
    let category: String = row.try_get("category")?;
    let status: String = row.try_get("status")?;
    let bad = |v: &str| sqlx::Error::Decode(format!("unknown report value {v:?}").into());
    Ok(Report {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        target: UserId::new(row.try_get::<i64, _>("target_discord_id")? as u64),
        channel: opt("channel_discord_id")?.map(ChannelId::new),
        message: opt("message_discord_id")?.map(MessageId::new),
        category: Category::parse(&category).ok_or_else(|| bad(&category))?,
        status: Status::parse(&status).ok_or_else(|| bad(&status))?,
        claimed_by: opt("claimed_by")?.map(UserId::new),
        outcome: row.try_get("outcome")?,
        case_id: row.try_get("case_id")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn by_message_for_update(
    conn: &mut PgConnection,
    community: Uuid,
    message: MessageId,
) -> Result<Option<Report>, sqlx::Error> {
    let sql = concat!(
        "select ",
        columns!(),
        " from reports where community_id = $1 and message_discord_id = $2 for update"
    );
    let row = sqlx::query(sql)
        .bind(community)
        .bind(sf(message.get()))
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(report_from_row).transpose()
}

pub async fn by_id_for_update(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
) -> Result<Option<Report>, sqlx::Error> {
    let sql = concat!(
        "select ",
        columns!(),
        " from reports where community_id = $1 and id = $2 for update"
    );
    let row = sqlx::query(sql)
        .bind(community)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(report_from_row).transpose()
}

/// A new report (number from the community's counter).
pub async fn insert(
    conn: &mut PgConnection,
    community: Uuid,
    target: UserId,
    channel: Option<ChannelId>,
    message: Option<MessageId>,
    category: Category,
) -> Result<Report, sqlx::Error> {
    let number: i32 = sqlx::query_scalar(
        "insert into report_numbers (community_id, last_number) values ($1, 1)
         on conflict (community_id) do update set last_number = report_numbers.last_number + 1
         returning last_number",
    )
    .bind(community)
    .fetch_one(&mut *conn)
    .await?;
    let sql = concat!(
        "insert into reports (id, community_id, number, target_discord_id, channel_discord_id,
                              message_discord_id, category)
         values ($1, $2, $3, $4, $5, $6, $7) returning ",
        columns!()
    );
    let row = sqlx::query(sql)
        .bind(Uuid::now_v7())
        .bind(community)
        .bind(number)
        .bind(sf(target.get()))
        .bind(channel.map(|c| sf(c.get())))
        .bind(message.map(|m| sf(m.get())))
        .bind(category.as_str())
        .fetch_one(conn)
        .await?;
    report_from_row(&row)
}

/// False when this reporter already reported it.
pub async fn add_reporter(
    conn: &mut PgConnection,
    community: Uuid,
    report: Uuid,
    reporter: UserId,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into report_reporters (report_id, community_id, reporter_discord_id, reason)
         values ($1, $2, $3, $4) on conflict do nothing",
    )
    .bind(report)
    .bind(community)
    .bind(sf(reporter.get()))
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn reporter_count(conn: &mut PgConnection, report: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from report_reporters where report_id = $1")
        .bind(report)
        .fetch_one(conn)
        .await
}

/// How many reports `reporter` filed since `since`.
pub async fn filed_since(
    conn: &mut PgConnection,
    community: Uuid,
    reporter: UserId,
    since: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from report_reporters
          where community_id = $1 and reporter_discord_id = $2 and created_at >= $3",
    )
    .bind(community)
    .bind(sf(reporter.get()))
    .bind(since)
    .fetch_one(conn)
    .await
}

pub async fn muted_until(
    conn: &mut PgConnection,
    community: Uuid,
    reporter: UserId,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "select until from reporter_mutes
          where community_id = $1 and reporter_discord_id = $2 and until > now()",
    )
    .bind(community)
    .bind(sf(reporter.get()))
    .fetch_optional(conn)
    .await
}

pub async fn mute(
    conn: &mut PgConnection,
    community: Uuid,
    reporter: UserId,
    by: UserId,
    until: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into reporter_mutes (community_id, reporter_discord_id, muted_by, until)
         values ($1, $2, $3, $4)
         on conflict (community_id, reporter_discord_id)
         do update set muted_by = excluded.muted_by, until = excluded.until",
    )
    .bind(community)
    .bind(sf(reporter.get()))
    .bind(sf(by.get()))
    .bind(until)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the report to `status`; the database's trigger refuses an illegal move too.
pub async fn set_status(
    conn: &mut PgConnection,
    community: Uuid,
    id: Uuid,
    status: Status,
    by: UserId,
    outcome: Option<&str>,
    case_id: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    let claimed = status == Status::Investigating;
    sqlx::query(
        "update reports
            set status = $3,
                claimed_by = case when $4 then $5 else claimed_by end,
                decided_by = case when $4 then decided_by else $5 end,
                outcome = coalesce($6, outcome),
                case_id = coalesce($7, case_id),
                updated_at = now()
          where community_id = $1 and id = $2",
    )
    .bind(community)
    .bind(id)
    .bind(status.as_str())
    .bind(claimed)
    .bind(sf(by.get()))
    .bind(outcome)
    .bind(case_id)
    .execute(conn)
    .await?;
    Ok(())
}
