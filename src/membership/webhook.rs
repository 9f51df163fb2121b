//! Applying one verified Stripe event, in one transaction: find its community (through
//! the narrow `stripe_webhook` purpose), record the event id (a duplicate delivery stops
//! here and changes nothing), then scope to the community and apply the fact. A
//! subscription snapshot older than the newest one applied (the high-water mark) never
//! overwrites it; its standing signal still counts (see `standing.rs`), so any order of
//! delivery ends in the same state.

use serenity::all::{GuildId, UserId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::event::{self, Envelope, Fact, Invoice, Snapshot};
use super::standing::{Signal, Standing};
use super::sync::{self, Baseline, Cause};
use super::{STRIPE_ACTOR, SubscriptionStatus, db};
use crate::db::tenant::{self, CrossCommunity};

/// What became of a delivery (also stored as the event's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    Applied,
    /// Older than what is already applied; only its standing signal counted.
    Stale,
    Duplicate,
    UnknownCommunity,
    /// Authentic, but nothing guildops acts on (or an unknown member).
    Ignored,
}

impl Ingested {
    pub fn as_str(self) -> &'static str {
        match self {
            Ingested::Applied => "applied",
            Ingested::Stale => "stale",
            Ingested::Duplicate => "duplicate",
            Ingested::UnknownCommunity => "unknown_community",
            Ingested::Ignored => "ignored",
        }
    }
}

/// Applies `event`. `fetched` is the subscription as the API returned it when Checkout
/// completed (the adapter fetched it before the transaction).
#[tracing::instrument(skip_all, fields(stripe.event_id = %event.id, stripe.event_type = %event.kind))]
pub async fn ingest(
    pool: &PgPool,
    event: &Envelope,
    fact: &Fact,
    fetched: Option<&Snapshot>,
) -> Result<Ingested, sqlx::Error> {
    let mut tx = tenant::begin_cross_community(pool, CrossCommunity::StripeWebhook).await?;
    let communities: Vec<(Uuid, GuildId)> = match fact {
        Fact::Ignored(_) => Vec::new(),
        _ => locate(&mut tx, fact).await?,
    };
    let first = if matches!(fact, Fact::Ignored(_)) {
        Ingested::Ignored
    } else if communities.is_empty() {
        Ingested::UnknownCommunity
    } else {
        Ingested::Applied
    };
    let row = db::EventRow {
        id: &event.id,
        community_id: communities.first().map(|(c, _)| *c),
        kind: &event.kind,
        api_version: event.api_version.as_deref(),
        created: event.created,
        outcome: first.as_str(),
        payload: &event.raw,
    };
    if !db::record_event(&mut tx, &row).await? {
        tx.rollback().await?;
        return Ok(Ingested::Duplicate);
    }
    let parked = match (fact, communities.first()) {
        (Fact::InvoicePaid(i) | Fact::InvoiceFailed(i), Some((community, _))) => {
            adopt_parked(&mut tx, i, *community).await?
        }
        _ => Vec::new(),
    };
    let mut outcome = first;
    for (n, (community, guild)) in communities.iter().enumerate() {
        tenant::scope(&mut tx, *community).await?;
        let at = Target {
            community: *community,
            guild: *guild,
        };
        let applied = apply(&mut tx, at, event, fact, fetched).await?;
        if n == 0 {
            for (late, late_fact) in &parked {
                apply(&mut tx, at, late, late_fact, None).await?;
            }
            outcome = applied;
            if applied != Ingested::Applied {
                db::set_event_outcome(&mut tx, &event.id, applied.as_str()).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(outcome)
}

/// The refunds and disputes that arrived before this invoice's payment was recorded
/// (kept as `unknown_community`): adopted into `community`, to be applied right after
/// the invoice, oldest first, so early delivery loses nothing.
async fn adopt_parked(
    conn: &mut PgConnection,
    invoice: &Invoice,
    community: Uuid,
) -> Result<Vec<(Envelope, Fact)>, sqlx::Error> {
    let rows = db::parked_charge_events(
        conn,
        &invoice.id,
        invoice.charge.as_deref(),
        invoice.payment_intent.as_deref(),
    )
    .await?;
    let mut parked = Vec::new();
    for (id, payload) in rows {
        // They were verified and parsed once already; one that no longer parses
        // (impossible short of tampering) stays parked.
        let Ok(envelope) = event::envelope(payload.as_bytes()) else {
            tracing::warn!(stripe.event_id = %id, "a parked Stripe event no longer parses");
            continue;
        };
        let fact = event::fact(&envelope);
        if matches!(fact, Fact::Refunded(_) | Fact::Dispute(_)) {
            parked.push((envelope, fact));
        }
    }
    if !parked.is_empty() {
        let ids: Vec<String> = parked.iter().map(|(e, _)| e.id.clone()).collect();
        db::adopt_events(conn, &ids, community).await?;
        tracing::info!(
            events = ids.len(),
            "applying refunds or disputes that arrived before their invoice"
        );
    }
    Ok(parked)
}

/// The community (and its guild) an event is applied to.
#[derive(Debug, Clone, Copy)]
struct Target {
    community: Uuid,
    guild: GuildId,
}

/// The communities an event concerns, with their guilds: from the Stripe ids guildops
/// has recorded, else from our metadata (only while it names a community that exists).
async fn locate(conn: &mut PgConnection, fact: &Fact) -> Result<Vec<(Uuid, GuildId)>, sqlx::Error> {
    let (claimed, found) = match fact {
        Fact::CheckoutCompleted(c) => (c.owner.community, None),
        Fact::Subscription(s) => match db::community_of_subscription(conn, &s.id).await? {
            Some(known) => return Ok(vec![known]),
            None => (s.owner.community, None),
        },
        Fact::InvoicePaid(i) | Fact::InvoiceFailed(i) => {
            if let Some(sub) = &i.subscription
                && let Some(known) = db::community_of_subscription(conn, sub).await?
            {
                return Ok(vec![known]);
            }
            let by_payment = db::community_of_payment(conn, Some(&i.id), None, None).await?;
            (i.owner.community, by_payment)
        }
        Fact::Refunded(c) => {
            let found = db::community_of_payment(
                conn,
                c.invoice.as_deref(),
                Some(&c.id),
                c.payment_intent.as_deref(),
            )
            .await?;
            (None, found)
        }
        Fact::Dispute(d) => {
            let found = db::community_of_payment(
                conn,
                None,
                d.charge.as_deref(),
                d.payment_intent.as_deref(),
            )
            .await?;
            (None, found)
        }
        Fact::CustomerDeleted { customer } => {
            let mut out = Vec::new();
            for c in db::communities_of_customer(conn, customer).await? {
                if let Some(g) = db::community_guild(conn, c).await? {
                    out.push((c, g));
                }
            }
            return Ok(out);
        }
        Fact::Ignored(_) => (None, None),
    };
    let Some(candidate) = found.or(claimed) else {
        return Ok(Vec::new());
    };
    let guild = db::community_guild(conn, candidate).await?;
    Ok(guild.map(|g| (candidate, g)).into_iter().collect())
}

async fn apply(
    conn: &mut PgConnection,
    at: Target,
    event: &Envelope,
    fact: &Fact,
    fetched: Option<&Snapshot>,
) -> Result<Ingested, sqlx::Error> {
    let community = at.community;
    let touched: Option<(String, Option<UserId>)> = match fact {
        Fact::CheckoutCompleted(c) => match (&c.subscription, c.owner.user) {
            (Some(sub), Some(user)) => {
                let snapshot = fetched.filter(|s| s.id == *sub);
                let (outcome, owner) =
                    subscription(conn, community, event, sub, Some(user), snapshot, None).await?;
                if outcome == Ingested::Ignored {
                    return Ok(outcome);
                }
                Some((sub.clone(), owner))
            }
            _ => None,
        },
        Fact::Subscription(s) => {
            let signal = match s.status {
                SubscriptionStatus::PastDue => Some(Signal::Failure(event.created)),
                SubscriptionStatus::Active | SubscriptionStatus::Trialing => {
                    Some(Signal::Good(event.created))
                }
                _ => None,
            };
            let (outcome, owner) =
                subscription(conn, community, event, &s.id, s.owner.user, Some(s), signal).await?;
            if outcome != Ingested::Applied {
                sync_subscription_owner(conn, at, &s.id, owner, event).await?;
                return Ok(outcome);
            }
            Some((s.id.clone(), owner))
        }
        Fact::InvoicePaid(i) | Fact::InvoiceFailed(i) => {
            let paid = matches!(fact, Fact::InvoicePaid(_));
            invoice(conn, community, event, i, paid).await?
        }
        Fact::Refunded(c) => {
            let keys = (
                c.invoice.as_deref(),
                Some(c.id.as_str()),
                c.payment_intent.as_deref(),
            );
            db::record_refund(conn, community, keys, c.amount_refunded, c.fully_refunded)
                .await?
                .map(|s| (s, None))
        }
        Fact::Dispute(d) => {
            let keys = (d.charge.as_deref(), d.payment_intent.as_deref());
            db::record_dispute(conn, community, keys, &d.id, d.status)
                .await?
                .map(|s| (s, None))
        }
        Fact::CustomerDeleted { customer } => {
            for sub in db::subscription_ids_of_customer(conn, community, customer).await? {
                cancel(conn, community, event, &sub).await?;
                sync_subscription_owner(conn, at, &sub, None, event).await?;
            }
            return Ok(Ingested::Applied);
        }
        Fact::Ignored(_) => None,
    };
    let Some((sub, owner)) = touched else {
        return Ok(Ingested::Ignored);
    };
    sync_subscription_owner(conn, at, &sub, owner, event).await?;
    Ok(Ingested::Applied)
}

/// Applies a snapshot under the high-water mark, and the standing signal in any case.
/// Returns the outcome and the subscription's member (when guildops knows the row).
async fn subscription(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Envelope,
    id: &str,
    user: Option<UserId>,
    snapshot: Option<&Snapshot>,
    signal: Option<Signal>,
) -> Result<(Ingested, Option<UserId>), sqlx::Error> {
    let Some(mut row) = db::lock_subscription(conn, community, id, user).await? else {
        return Ok((Ingested::Ignored, None));
    };
    let mut standing = Standing {
        good_at: row.good_standing_at,
        failures: row.failure_times.clone(),
    };
    if let Some(signal) = signal {
        standing = standing.apply(signal);
    }
    (row.good_standing_at, row.failure_times) = (standing.good_at, standing.failures);
    let fresh = row.last_event_at.is_none_or(|hwm| event.created >= hwm);
    if let (true, Some(s)) = (fresh, snapshot) {
        row.status = s.status;
        row.price_ids = s.price_ids.clone();
        row.current_period_end = s.current_period_end;
        row.cancel_at_period_end = s.cancel_at_period_end;
        row.customer = s.customer.clone().or(row.customer);
        row.last_event_at = Some(event.created);
        row.last_event_id = Some(event.id.clone());
    }
    db::save_subscription(conn, &row).await?;
    let outcome = if fresh || snapshot.is_none() {
        Ingested::Applied
    } else {
        Ingested::Stale
    };
    Ok((outcome, Some(row.user)))
}

async fn invoice(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Envelope,
    i: &super::event::Invoice,
    paid: bool,
) -> Result<Option<(String, Option<UserId>)>, sqlx::Error> {
    let signal = if paid {
        Signal::Good(event.created)
    } else {
        Signal::Failure(event.created)
    };
    let mut owner = i.owner.user;
    if let Some(sub) = &i.subscription {
        let (_, known) = subscription(
            conn,
            community,
            event,
            sub,
            i.owner.user,
            None,
            Some(signal),
        )
        .await?;
        owner = known.or(owner);
    }
    let row = db::PaymentRow {
        invoice: &i.id,
        subscription: i.subscription.as_deref(),
        user: i.owner.user,
        amount: i.amount,
        currency: &i.currency,
        paid,
        charge: i.charge.as_deref(),
        intent: i.payment_intent.as_deref(),
        at: event.created,
    };
    db::record_payment(conn, community, &row).await?;
    Ok(i.subscription.clone().map(|s| (s, owner)))
}

/// `customer.deleted`: Stripe cancels the customer's subscriptions.
async fn cancel(
    conn: &mut PgConnection,
    community: Uuid,
    event: &Envelope,
    id: &str,
) -> Result<(), sqlx::Error> {
    let Some(mut row) = db::lock_subscription(conn, community, id, None).await? else {
        return Ok(());
    };
    if row.last_event_at.is_none_or(|hwm| event.created >= hwm) {
        row.status = SubscriptionStatus::Canceled;
        row.last_event_at = Some(event.created);
        row.last_event_id = Some(event.id.clone());
        db::save_subscription(conn, &row).await?;
    }
    Ok(())
}

/// Re-syncs the member who owns subscription `id` (`owner` when the caller knows it).
async fn sync_subscription_owner(
    conn: &mut PgConnection,
    at: Target,
    id: &str,
    owner: Option<UserId>,
    event: &Envelope,
) -> Result<(), sqlx::Error> {
    let user = match owner {
        Some(u) => u,
        None => match db::lock_subscription(conn, at.community, id, None).await? {
            Some(row) => row.user,
            None => return Ok(()),
        },
    };
    let cause = Cause {
        key: event.id.clone(),
        actor: STRIPE_ACTOR,
        reason: "Stripe reported a change",
    };
    sync::member(conn, at.community, at.guild, user, &cause, Baseline::Held).await?;
    Ok(())
}
