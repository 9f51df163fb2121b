//! SQL for tiers, subscriptions, grants, payments, Stripe events and held paid roles.
//! Discord snowflakes become `bigint` here and nowhere else.

use chrono::{DateTime, Utc};
use serenity::all::{RoleId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::entitlement::Policy;
use super::{Interval, SubscriptionStatus, Tier};

fn sf(id: u64) -> i64 {
    id as i64
}

fn unsf(id: i64) -> u64 {
    id as u64
}

// ----- finding the community (stripe_webhook purpose) ----------------------------------

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

/// The guild behind the (scoped) community.
pub async fn guild_of(
    conn: &mut PgConnection,
    community: Uuid,
) -> Result<serenity::all::GuildId, sqlx::Error> {
    let id: i64 = sqlx::query_scalar("select discord_guild_id from communities where id = $1")
        .bind(community)
        .fetch_one(conn)
        .await?;
    Ok(serenity::all::GuildId::new(unsf(id)))
}

// ----- events ---------------------------------------------------------------------------

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

// ----- tiers and policy ----------------------------------------------------------------

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

// ----- subscriptions ----------------------------------------------------------------------

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

// ----- payments ---------------------------------------------------------------------------

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

// ----- grants -----------------------------------------------------------------------------

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

// ----- members and held roles -------------------------------------------------------------

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

// ----- revenue ----------------------------------------------------------------------------

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
