//! SQL for payments and their refunds and disputes.

use chrono::{DateTime, Utc};
use serenity::all::UserId;
use sqlx::PgConnection;
use uuid::Uuid;

use super::sf;

pub struct PaymentRow<'a> {
    pub invoice: &'a str,
    pub subscription: Option<&'a str>,
    pub user: Option<UserId>,
    pub amount: i64,
    pub currency: &'a str,
    pub paid: bool,
    pub charge: Option<&'a str>,
    pub intent: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Records an invoice outcome; `paid` is final (a late `payment_failed` never undoes it).
pub async fn record_payment(
    conn: &mut PgConnection,
    community: Uuid,
    p: &PaymentRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into payments (stripe_invoice_id, community_id, stripe_subscription_id,
                               discord_user_id, amount, currency, status, stripe_charge_id,
                               stripe_payment_intent_id, paid_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, case when $7 = 'paid' then $10 end)
         on conflict (stripe_invoice_id) do update
            set status = case when payments.status = 'paid' then 'paid' else excluded.status end,
                paid_at = coalesce(payments.paid_at, excluded.paid_at),
                amount = greatest(payments.amount, excluded.amount),
                stripe_subscription_id = coalesce(payments.stripe_subscription_id, excluded.stripe_subscription_id),
                discord_user_id = coalesce(payments.discord_user_id, excluded.discord_user_id),
                stripe_charge_id = coalesce(payments.stripe_charge_id, excluded.stripe_charge_id),
                stripe_payment_intent_id = coalesce(payments.stripe_payment_intent_id, excluded.stripe_payment_intent_id),
                updated_at = now()",
    )
    .bind(p.invoice)
    .bind(community)
    .bind(p.subscription)
    .bind(p.user.map(|u| sf(u.get())))
    .bind(p.amount)
    .bind(p.currency)
    .bind(if p.paid { "paid" } else { "failed" })
    .bind(p.charge)
    .bind(p.intent)
    .bind(p.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies a refund to the payment it belongs to; the subscription it was for.
pub async fn record_refund(
    conn: &mut PgConnection,
    community: Uuid,
    keys: (Option<&str>, Option<&str>, Option<&str>),
    amount_refunded: i64,
    full: bool,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "update payments
            set amount_refunded = greatest(amount_refunded, $5),
                fully_refunded = fully_refunded or $6, updated_at = now()
          where community_id = $1
            and (stripe_invoice_id = $2 or stripe_charge_id = $3 or stripe_payment_intent_id = $4)
          returning stripe_subscription_id",
    )
    .bind(community)
    .bind(keys.0)
    .bind(keys.1)
    .bind(keys.2)
    .bind(amount_refunded)
    .bind(full)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|r| r.0))
}

/// Records a dispute's state; a closed dispute is never reopened by a late `created`.
pub async fn record_dispute(
    conn: &mut PgConnection,
    community: Uuid,
    keys: (Option<&str>, Option<&str>),
    dispute: &str,
    status: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "update payments
            set stripe_dispute_id = $4,
                dispute_status = case when $5 = 'open' and dispute_status in ('won', 'lost')
                                      then dispute_status else $5 end,
                updated_at = now()
          where community_id = $1 and (stripe_charge_id = $2 or stripe_payment_intent_id = $3)
          returning stripe_subscription_id",
    )
    .bind(community)
    .bind(keys.0)
    .bind(keys.1)
    .bind(dispute)
    .bind(status)
    .fetch_optional(conn)
    .await?;
    Ok(row.and_then(|r| r.0))
}
