//! SQL for `/revenue`.

use sqlx::PgConnection;
use uuid::Uuid;

/// Per tier: (tier id, active subscribers).
pub async fn active_by_price(
    conn: &mut PgConnection,
    community: Uuid,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "select p.price, count(*) from subscriptions s, unnest(s.price_ids) as p(price)
          where s.community_id = $1 and s.status in ('active', 'trialing', 'past_due')
          group by p.price",
    )
    .bind(community)
    .fetch_all(conn)
    .await
}

/// (new, churned) subscriptions in the last 30 days.
pub async fn new_and_churned(
    conn: &mut PgConnection,
    community: Uuid,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select count(*) filter (where created_at > now() - interval '30 days'
                                   and status not in ('incomplete', 'incomplete_expired')),
                count(*) filter (where status = 'canceled'
                                   and updated_at > now() - interval '30 days')
           from subscriptions where community_id = $1",
    )
    .bind(community)
    .fetch_one(conn)
    .await
}
