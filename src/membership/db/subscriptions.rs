//! SQL for subscriptions: the locked read, the save, and the lists renewals and
//! customer deletion need.

use chrono::{DateTime, Utc};
use serenity::all::UserId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{sf, unsf};
use crate::membership::SubscriptionStatus;

/// A subscription row: Stripe's state plus the ordering and standing bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRow {
    pub id: String,
    pub user: UserId,
    pub customer: Option<String>,
    pub price_ids: Vec<String>,
    pub status: SubscriptionStatus,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub last_event_at: Option<DateTime<Utc>>,
    pub last_event_id: Option<String>,
    pub good_standing_at: Option<DateTime<Utc>>,
    pub failure_times: Vec<DateTime<Utc>>,
}

macro_rules! sub_columns {
    () => {
        "stripe_subscription_id, discord_user_id, stripe_customer_id, price_ids, status, \
         current_period_end, cancel_at_period_end, last_event_at, last_event_id, \
         good_standing_at, failure_times"
    };
}

/// A member's subscription with its payments' flags: (row, fully refunded, disputed).
pub type SubWithFlags = (SubRow, bool, bool);

fn sub_from_row(row: &PgRow) -> Result<SubRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(SubRow {
        id: row.try_get("stripe_subscription_id")?,
        user: UserId::new(unsf(row.try_get("discord_user_id")?)),
        customer: row.try_get("stripe_customer_id")?,
        price_ids: row.try_get("price_ids")?,
        // The CHECK constraint admits exactly the statuses `parse` knows.
        status: SubscriptionStatus::parse(&status).unwrap_or(SubscriptionStatus::Incomplete),
        current_period_end: row.try_get("current_period_end")?,
        cancel_at_period_end: row.try_get("cancel_at_period_end")?,
        last_event_at: row.try_get("last_event_at")?,
        last_event_id: row.try_get("last_event_id")?,
        good_standing_at: row.try_get("good_standing_at")?,
        failure_times: row.try_get("failure_times")?,
    })
}

/// Locks the subscription's row (creating an `incomplete` placeholder for `user` when
/// it is new), so concurrent deliveries about one subscription apply one at a time.
/// `None` when the row does not exist and no user is known to create it for.
pub async fn lock_subscription(
    conn: &mut PgConnection,
    community: Uuid,
    id: &str,
    user: Option<UserId>,
) -> Result<Option<SubRow>, sqlx::Error> {
    let sql = concat!(
        "select ",
        sub_columns!(),
        " from subscriptions where stripe_subscription_id = $1 for update"
    );
    if let Some(row) = sqlx::query(sql).bind(id).fetch_optional(&mut *conn).await? {
        return sub_from_row(&row).map(Some);
    }
    let Some(user) = user else {
        return Ok(None);
    };
    // A concurrent first delivery may insert it meanwhile: then this is a no-op and the
    // select below waits for that transaction's lock.
    sqlx::query(
        "insert into subscriptions (stripe_subscription_id, community_id, discord_user_id, status)
         values ($1, $2, $3, 'incomplete')
         on conflict (stripe_subscription_id) do nothing",
    )
    .bind(id)
    .bind(community)
    .bind(sf(user.get()))
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(sub_from_row).transpose()
}

pub async fn save_subscription(conn: &mut PgConnection, s: &SubRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update subscriptions
            set stripe_customer_id = $2, price_ids = $3, status = $4, current_period_end = $5,
                cancel_at_period_end = $6, last_event_at = $7, last_event_id = $8,
                good_standing_at = $9, failure_times = $10, updated_at = now()
          where stripe_subscription_id = $1",
    )
    .bind(&s.id)
    .bind(&s.customer)
    .bind(&s.price_ids)
    .bind(s.status.as_str())
    .bind(s.current_period_end)
    .bind(s.cancel_at_period_end)
    .bind(s.last_event_at)
    .bind(&s.last_event_id)
    .bind(s.good_standing_at)
    .bind(&s.failure_times)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn subscriptions_of(
    conn: &mut PgConnection,
    community: Uuid,
    user: UserId,
) -> Result<Vec<SubWithFlags>, sqlx::Error> {
    let sql = concat!(
        "select ",
        sub_columns!(),
        ", coalesce((select bool_or(p.fully_refunded) from payments p
                      where p.community_id = s.community_id
                        and p.stripe_subscription_id = s.stripe_subscription_id), false) as refunded,
           coalesce((select bool_or(p.dispute_status in ('open', 'lost')) from payments p
                      where p.community_id = s.community_id
                        and p.stripe_subscription_id = s.stripe_subscription_id), false) as disputed
           from subscriptions s where community_id = $1 and discord_user_id = $2
          order by stripe_subscription_id"
    );
    let rows = sqlx::query(sql)
        .bind(community)
        .bind(sf(user.get()))
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                sub_from_row(r)?,
                r.try_get("refunded")?,
                r.try_get("disputed")?,
            ))
        })
        .collect()
}

pub async fn subscription_ids_of_customer(
    conn: &mut PgConnection,
    community: Uuid,
    customer: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select stripe_subscription_id from subscriptions
          where community_id = $1 and stripe_customer_id = $2",
    )
    .bind(community)
    .bind(customer)
    .fetch_all(conn)
    .await
}

/// Subscriptions of a price that will renew (to end them when the tier is archived).
pub async fn renewing_subscriptions(
    conn: &mut PgConnection,
    community: Uuid,
    price: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select stripe_subscription_id from subscriptions
          where community_id = $1 and $2 = any(price_ids) and not cancel_at_period_end
            and status in ('active', 'trialing', 'past_due')",
    )
    .bind(community)
    .bind(price)
    .fetch_all(conn)
    .await
}
