//! SQL of the `stripe_webhook` purpose: finding the community behind a Stripe object,
//! and the stored events (record, outcome, prune, the member's latest).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::unsf;

/// The community's guild, or `None` when no such community exists.
pub async fn community_guild(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<serenity::all::GuildId>, sqlx::Error> {
    let guild: Option<i64> =
        sqlx::query_scalar("select discord_guild_id from communities where id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(guild.map(|g| serenity::all::GuildId::new(unsf(g))))
}

/// The community (and its guild) that recorded subscription `id`.
pub async fn community_of_subscription(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<(Uuid, serenity::all::GuildId)>, sqlx::Error> {
    let row: Option<(Uuid, i64)> = sqlx::query_as(
        "select s.community_id, c.discord_guild_id
           from subscriptions s join communities c on c.id = s.community_id
          where s.stripe_subscription_id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(c, g)| (c, serenity::all::GuildId::new(unsf(g)))))
}

/// The community of the payment an invoice, charge or payment intent belongs to.
pub async fn community_of_payment(
    conn: &mut PgConnection,
    invoice: Option<&str>,
    charge: Option<&str>,
    intent: Option<&str>,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "select community_id from payments
          where stripe_invoice_id = $1 or stripe_charge_id = $2 or stripe_payment_intent_id = $3
          limit 1",
    )
    .bind(invoice)
    .bind(charge)
    .bind(intent)
    .fetch_optional(conn)
    .await
}

pub async fn communities_of_customer(
    conn: &mut PgConnection,
    customer: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "select distinct community_id from subscriptions where stripe_customer_id = $1",
    )
    .bind(customer)
    .fetch_all(conn)
    .await
}

pub struct EventRow<'a> {
    pub id: &'a str,
    pub community_id: Option<Uuid>,
    pub kind: &'a str,
    pub api_version: Option<&'a str>,
    pub created: DateTime<Utc>,
    pub outcome: &'a str,
    /// The event's JSON text, as received.
    pub payload: &'a str,
}

/// False when the event id was already recorded: a duplicate delivery.
pub async fn record_event(conn: &mut PgConnection, e: &EventRow<'_>) -> Result<bool, sqlx::Error> {
    let id: Option<String> = sqlx::query_scalar(
        "insert into stripe_events
            (id, community_id, event_type, api_version, event_created_at, outcome, payload)
         values ($1, $2, $3, $4, $5, $6, $7::jsonb)
         on conflict (id) do nothing
         returning id",
    )
    .bind(e.id)
    .bind(e.community_id)
    .bind(e.kind)
    .bind(e.api_version)
    .bind(e.created)
    .bind(e.outcome)
    .bind(e.payload)
    .fetch_optional(conn)
    .await?;
    Ok(id.is_some())
}

pub async fn set_event_outcome(
    conn: &mut PgConnection,
    id: &str,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("update stripe_events set outcome = $2 where id = $1")
        .bind(id)
        .bind(outcome)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn prune_events(conn: &mut PgConnection, days: i32) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from stripe_events where received_at < now() - make_interval(days => $1)",
    )
    .bind(days)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The member's latest events, newest first, for `/membership explain`.
pub async fn recent_events(
    conn: &mut PgConnection,
    community: Uuid,
    subscription_ids: &[String],
    limit: i64,
) -> Result<Vec<(String, DateTime<Utc>, String)>, sqlx::Error> {
    sqlx::query_as(
        "select event_type, event_created_at, outcome from stripe_events
          where community_id = $1 and payload -> 'data' -> 'object' ->> 'id' = any($2)
             or community_id = $1 and payload -> 'data' -> 'object' ->> 'subscription' = any($2)
          order by event_created_at desc limit $3",
    )
    .bind(community)
    .bind(subscription_ids)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Charge events (refunds, disputes) that arrived before the payment they concern was
/// recorded, so no community could be found for them: the raw payloads, oldest first,
/// of those naming one of the payment's ids.
pub async fn parked_charge_events(
    conn: &mut PgConnection,
    invoice: &str,
    charge: Option<&str>,
    intent: Option<&str>,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "select id, payload::text from stripe_events
          where outcome = 'unknown_community' and community_id is null
            and event_type in ('charge.refunded', 'charge.dispute.created', 'charge.dispute.closed')
            and (payload #>> '{data,object,invoice}' = $1
                 or payload #>> '{data,object,id}' = $2
                 or payload #>> '{data,object,charge}' = $2
                 or payload #>> '{data,object,payment_intent}' = $3)
          order by event_created_at, id",
    )
    .bind(invoice)
    .bind(charge)
    .bind(intent)
    .fetch_all(conn)
    .await
}

/// Gives parked events their community once it is known; they are applied in the
/// same transaction.
pub async fn adopt_events(
    conn: &mut PgConnection,
    ids: &[String],
    community: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update stripe_events set community_id = $2, outcome = 'applied_late'
          where id = any($1) and community_id is null",
    )
    .bind(ids)
    .bind(community)
    .execute(conn)
    .await?;
    Ok(())
}
