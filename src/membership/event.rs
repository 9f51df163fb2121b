//! What a verified Stripe event says, read from its raw JSON. Typed parsing is strict
//! about the API version (events captured at older versions fail it), so guildops reads
//! the few ids and fields it needs itself, accepting every shape those fields have had:
//! `invoice.subscription` (before 2025) and `invoice.parent.subscription_details`,
//! `subscription.current_period_end` (before 2025) and on its items, and so on.

use chrono::{DateTime, Utc};
use serde_json::Value;
use serenity::all::UserId;
use uuid::Uuid;

use super::SubscriptionStatus;

/// Metadata keys guildops puts on every Checkout session and subscription it creates.
pub const META_COMMUNITY: &str = "guildops_community_id";
pub const META_USER: &str = "guildops_discord_user_id";

/// The envelope of any event.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: String,
    pub kind: String,
    pub created: DateTime<Utc>,
    pub api_version: Option<String>,
    pub object: Value,
    /// The body as Stripe sent it (stored as is: re-serialising the parsed tree cost
    /// more than the rest of the parsing).
    pub raw: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a Stripe event: missing {0}")]
    Missing(&'static str),
}

/// Who a Stripe object says it belongs to (from our metadata).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    pub community: Option<Uuid>,
    pub user: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub customer: Option<String>,
    pub owner: Owner,
    pub status: SubscriptionStatus,
    pub price_ids: Vec<String>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    pub subscription: Option<String>,
    pub customer: Option<String>,
    pub owner: Owner,
    pub amount: i64,
    pub currency: String,
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub id: String,
    pub invoice: Option<String>,
    pub payment_intent: Option<String>,
    pub customer: Option<String>,
    pub amount_refunded: i64,
    pub fully_refunded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    pub id: String,
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    /// `open`, `won` or `lost`.
    pub status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub id: String,
    pub subscription: Option<String>,
    pub customer: Option<String>,
    pub owner: Owner,
}

/// The part of an event guildops acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    CheckoutCompleted(Checkout),
    Subscription(Snapshot),
    InvoicePaid(Invoice),
    InvoiceFailed(Invoice),
    Refunded(Charge),
    Dispute(Dispute),
    CustomerDeleted {
        customer: String,
    },
    /// A type guildops does not handle, or a handled type without the ids it needs.
    Ignored(&'static str),
}

pub fn envelope(body: &[u8]) -> Result<Envelope, Malformed> {
    let mut parsed: Value = serde_json::from_slice(body)?;
    let id = str_at(&parsed, &["id"]).ok_or(Malformed::Missing("id"))?;
    let kind = str_at(&parsed, &["type"]).ok_or(Malformed::Missing("type"))?;
    let created = parsed["created"]
        .as_i64()
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .ok_or(Malformed::Missing("created"))?;
    let api_version = str_at(&parsed, &["api_version"]);
    // Moved out, not cloned: the object is most of the event.
    let object = parsed["data"]["object"].take();
    if !object.is_object() {
        return Err(Malformed::Missing("data.object"));
    }
    // `from_slice` accepted it, so it is UTF-8.
    let raw = String::from_utf8_lossy(body).into_owned();
    Ok(Envelope {
        id,
        kind,
        created,
        api_version,
        object,
        raw,
    })
}

/// The handled fact of an event.
pub fn fact(event: &Envelope) -> Fact {
    let o = &event.object;
    let parsed = match event.kind.as_str() {
        "checkout.session.completed" => checkout(o).map(Fact::CheckoutCompleted),
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted"
        | "customer.subscription.paused"
        | "customer.subscription.resumed" => snapshot(o).map(Fact::Subscription),
        "invoice.paid" => invoice(o).map(Fact::InvoicePaid),
        "invoice.payment_failed" => invoice(o).map(Fact::InvoiceFailed),
        "charge.refunded" => charge(o).map(Fact::Refunded),
        "charge.dispute.created" => dispute(o, "open").map(Fact::Dispute),
        "charge.dispute.closed" => {
            let status = if o["status"] == "lost" { "lost" } else { "won" };
            dispute(o, status).map(Fact::Dispute)
        }
        "customer.deleted" => str_at(o, &["id"]).map(|customer| Fact::CustomerDeleted { customer }),
        _ => return Fact::Ignored("not a type guildops handles"),
    };
    parsed.unwrap_or(Fact::Ignored("the object lacks the ids guildops needs"))
}

fn checkout(o: &Value) -> Option<Checkout> {
    let mut owner = owner(&o["metadata"]);
    // `client_reference_id` is "<community>:<discord user>", set when guildops made it.
    if let Some((c, u)) = o["client_reference_id"]
        .as_str()
        .and_then(|r| r.split_once(':'))
    {
        owner.community = owner.community.or(c.parse().ok());
        owner.user = owner.user.or(user_id(u));
    }
    Some(Checkout {
        id: str_at(o, &["id"])?,
        subscription: id_of(&o["subscription"]),
        customer: id_of(&o["customer"]),
        owner,
    })
}

fn snapshot(o: &Value) -> Option<Snapshot> {
    let items = o["items"]["data"].as_array().cloned().unwrap_or_default();
    let mut price_ids: Vec<String> = items
        .iter()
        .filter_map(|i| id_of(&i["price"]).or_else(|| id_of(&i["plan"])))
        .collect();
    if let Some(plan) = id_of(&o["plan"])
        && !price_ids.contains(&plan)
    {
        price_ids.push(plan);
    }
    let item_end = items
        .iter()
        .filter_map(|i| time(&i["current_period_end"]))
        .max();
    Some(Snapshot {
        id: str_at(o, &["id"])?,
        customer: id_of(&o["customer"]),
        owner: owner(&o["metadata"]),
        status: SubscriptionStatus::parse(o["status"].as_str()?)?,
        price_ids,
        current_period_end: time(&o["current_period_end"]).or(item_end),
        cancel_at_period_end: o["cancel_at_period_end"].as_bool().unwrap_or(false),
    })
}

fn invoice(o: &Value) -> Option<Invoice> {
    let details = &o["parent"]["subscription_details"];
    let line_sub = o["lines"]["data"].as_array().and_then(|lines| {
        lines.iter().find_map(|l| {
            id_of(&l["subscription"])
                .or_else(|| id_of(&l["parent"]["subscription_item_details"]["subscription"]))
        })
    });
    let mut owner = owner(&details["metadata"]);
    let old = self::owner(&o["subscription_details"]["metadata"]);
    owner.community = owner.community.or(old.community);
    owner.user = owner.user.or(old.user);
    let amount = o["amount_paid"]
        .as_i64()
        .filter(|a| *a > 0)
        .or(o["amount_due"].as_i64())
        .unwrap_or(0);
    Some(Invoice {
        id: str_at(o, &["id"])?,
        subscription: id_of(&o["subscription"])
            .or_else(|| id_of(&details["subscription"]))
            .or(line_sub),
        customer: id_of(&o["customer"]),
        owner,
        amount: amount.max(0),
        currency: str_at(o, &["currency"]).unwrap_or_else(|| "usd".into()),
        charge: id_of(&o["charge"]),
        payment_intent: id_of(&o["payment_intent"]),
    })
}

fn charge(o: &Value) -> Option<Charge> {
    Some(Charge {
        id: str_at(o, &["id"])?,
        invoice: id_of(&o["invoice"]),
        payment_intent: id_of(&o["payment_intent"]),
        customer: id_of(&o["customer"]),
        amount_refunded: o["amount_refunded"].as_i64().unwrap_or(0).max(0),
        fully_refunded: o["refunded"].as_bool().unwrap_or(false),
    })
}

fn dispute(o: &Value, status: &'static str) -> Option<Dispute> {
    Some(Dispute {
        id: str_at(o, &["id"])?,
        charge: id_of(&o["charge"]),
        payment_intent: id_of(&o["payment_intent"]),
        status,
    })
}

fn owner(metadata: &Value) -> Owner {
    Owner {
        community: metadata[META_COMMUNITY]
            .as_str()
            .and_then(|c| c.parse().ok()),
        user: metadata[META_USER].as_str().and_then(user_id),
    }
}

fn user_id(text: &str) -> Option<UserId> {
    text.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .map(UserId::new)
}

/// An id whether Stripe sent it as a string or as an expanded object.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(_) => str_at(v, &["id"]),
        _ => None,
    }
}

fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_i64().and_then(|t| DateTime::from_timestamp(t, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, object: Value) -> Envelope {
        let raw = json!({"id": "evt_1", "type": kind, "created": 1_700_000_000,
                         "api_version": "2020-03-02", "data": {"object": object}});
        envelope(raw.to_string().as_bytes()).expect("envelope")
    }

    #[test]
    fn envelopes_need_id_type_created_and_an_object() {
        assert!(matches!(envelope(b"{nope"), Err(Malformed::Json(_))));
        let no_object = json!({"id": "evt", "type": "x", "created": 1});
        assert!(matches!(
            envelope(no_object.to_string().as_bytes()),
            Err(Malformed::Missing("data.object"))
        ));
    }

    #[test]
    fn subscriptions_of_both_eras_are_read() {
        let community = Uuid::now_v7();
        let old = json!({"id": "sub_1", "status": "past_due", "customer": "cus_1",
            "current_period_end": 1_700_100_000, "cancel_at_period_end": true,
            "plan": {"id": "price_old"},
            "metadata": {META_COMMUNITY: community.to_string(), META_USER: "42"}});
        let Fact::Subscription(s) = fact(&event("customer.subscription.updated", old)) else {
            panic!("a snapshot");
        };
        assert_eq!(s.status, SubscriptionStatus::PastDue);
        assert_eq!(s.price_ids, vec!["price_old".to_owned()]);
        assert_eq!(s.owner.community, Some(community));
        assert_eq!(s.owner.user, Some(UserId::new(42)));
        assert!(s.cancel_at_period_end);
        let new = json!({"id": "sub_2", "status": "active", "customer": {"id": "cus_2"},
            "items": {"data": [{"price": {"id": "price_new"}, "current_period_end": 1_700_200_000}]}});
        let Fact::Subscription(s) = fact(&event("customer.subscription.created", new)) else {
            panic!("a snapshot");
        };
        assert_eq!(s.customer.as_deref(), Some("cus_2"));
        assert_eq!(
            s.current_period_end,
            DateTime::from_timestamp(1_700_200_000, 0)
        );
    }

    #[test]
    fn invoices_find_their_subscription_in_either_place() {
        let old =
            json!({"id": "in_1", "subscription": "sub_1", "amount_paid": 500, "currency": "eur"});
        let new = json!({"id": "in_2", "amount_due": 700, "currency": "usd",
            "parent": {"subscription_details": {"subscription": "sub_2", "metadata": {META_USER: "7"}}}});
        let Fact::InvoicePaid(a) = fact(&event("invoice.paid", old)) else {
            panic!("invoice")
        };
        let Fact::InvoiceFailed(b) = fact(&event("invoice.payment_failed", new)) else {
            panic!("invoice")
        };
        assert_eq!((a.subscription.as_deref(), a.amount), (Some("sub_1"), 500));
        assert_eq!((b.subscription.as_deref(), b.amount), (Some("sub_2"), 700));
        assert_eq!(b.owner.user, Some(UserId::new(7)));
    }

    #[test]
    fn checkout_reads_the_client_reference_and_unknown_types_are_ignored() {
        let community = Uuid::now_v7();
        let o = json!({"id": "cs_1", "subscription": "sub_9", "customer": "cus_9",
                       "client_reference_id": format!("{community}:99")});
        let Fact::CheckoutCompleted(c) = fact(&event("checkout.session.completed", o)) else {
            panic!("checkout")
        };
        assert_eq!(c.owner.community, Some(community));
        assert_eq!(c.owner.user, Some(UserId::new(99)));
        assert!(matches!(
            fact(&event("plan.created", json!({"id": "x"}))),
            Fact::Ignored(_)
        ));
        assert!(matches!(
            fact(&event(
                "customer.subscription.updated",
                json!({"id": "sub", "status": "weird"})
            )),
            Fact::Ignored(_)
        ));
    }
}
