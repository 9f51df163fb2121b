//! Paid tiers: Stripe subscriptions kept equal to Discord roles. Owns tiers, the
//! community's membership policy, what guildops learned from Stripe (subscriptions,
//! payments, raw events), complimentary grants, and which paid roles it holds on each
//! member. [`entitlement`] decides which roles a member should hold; [`sync`] turns the
//! difference with the held roles into outbox jobs in the same transaction; [`webhook`]
//! applies verified Stripe events idempotently and in any order.

mod access;
pub mod db;
pub mod entitlement;
pub mod event;
mod members;
pub mod standing;
pub mod stripe;
pub mod sync;
mod tiers;
pub mod timers;
pub mod webhook;

use chrono::{DateTime, Utc};
use serenity::all::RoleId;
use uuid::Uuid;

pub use access::*;
pub use members::*;
pub use tiers::*;

/// The audit actor for changes that follow Stripe's webhooks.
pub const STRIPE_ACTOR: crate::audit::Actor = crate::audit::Actor::System("stripe-webhook");
/// The audit actor for scheduled re-evaluations (grace end, period end, drift repair).
pub const SCHEDULER_ACTOR: crate::audit::Actor = crate::audit::Actor::System("scheduler");

/// Scheduled job names (registered in `daemon::scheduled_handlers`).
pub const RECHECK_JOB: &str = "membership.recheck";
pub const RECONCILE_JOB: &str = "membership.reconcile";
pub const EVENTS_CLEANUP_JOB: &str = "membership.stripe_events_cleanup";

/// A Stripe subscription's status. Stored as text with a CHECK listing exactly these
/// (see `migrations/20261201001000_*`); [`SubscriptionStatus::parse`] is the only way in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 8] = [
        SubscriptionStatus::Incomplete,
        SubscriptionStatus::IncompleteExpired,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Canceled,
        SubscriptionStatus::Unpaid,
        SubscriptionStatus::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::IncompleteExpired => "incomplete_expired",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Unpaid => "unpaid",
            SubscriptionStatus::Paused => "paused",
        }
    }

    /// Stripe's spelling (and the column's) to the status; `None` for anything else.
    pub fn parse(text: &str) -> Option<SubscriptionStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }

    pub fn parse(text: &str) -> Option<Interval> {
        [Interval::Month, Interval::Year]
            .into_iter()
            .find(|i| i.as_str() == text)
    }
}

/// A paid tier: a Stripe price that gives a Discord role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub role_id: RoleId,
    pub product_id: Option<String>,
    pub price_id: String,
    pub unit_amount: i64,
    pub currency: String,
    pub interval: Interval,
    pub archived_at: Option<DateTime<Utc>>,
    /// When access lapses: also kick the member (if they keep no paid role).
    pub lapse_kicks: bool,
}

impl Tier {
    pub fn as_ref(&self) -> entitlement::TierRef {
        entitlement::TierRef {
            id: self.id,
            role_id: self.role_id,
            price_id: self.price_id.clone(),
        }
    }

    /// "4.99 EUR / month".
    pub fn price_text(&self) -> String {
        format!(
            "{}.{:02} {} / {}",
            self.unit_amount / 100,
            self.unit_amount % 100,
            self.currency.to_uppercase(),
            self.interval.as_str()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("payments are not configured for this bot yet; ask its operator to set up Stripe")]
    NotConfigured,
    #[error("there is no tier called “{0}” here; `/tiers` lists them")]
    UnknownTier(String),
    #[error("a tier called “{0}” already exists (or that price is already linked)")]
    TierExists(String),
    #[error("“{0}” is archived and not on sale any more")]
    Archived(String),
    #[error("nothing is on sale here yet")]
    NothingOnSale,
    #[error("{0}")]
    BadRole(String),
    #[error("{0}")]
    Invalid(String),
    #[error("you have no subscription with a billing account yet; `/subscribe` starts one")]
    NoCustomer,
    #[error("Stripe refused: {0}")]
    StripeRefused(String),
    #[error(transparent)]
    Stripe(stripe::ApiError),
    #[error(transparent)]
    Community(#[from] crate::community::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<stripe::ApiError> for Error {
    fn from(e: stripe::ApiError) -> Self {
        match e {
            stripe::ApiError::Refused(m) => Error::StripeRefused(m),
            other => Error::Stripe(other),
        }
    }
}

impl Error {
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Database(_) | Error::Stripe(_) => false,
            Error::Community(e) => e.is_user_error(),
            _ => true,
        }
    }
}

/// Unique violations (a tier name or price used twice) become [`Error::TierExists`].
pub(crate) fn on_unique(e: sqlx::Error, name: &str) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::TierExists(name.to_owned()),
        _ => Error::Database(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parse_round_trips_and_matches_the_check_constraint() {
        let migration =
            include_str!("../../migrations/20261201001000_create_tiers_and_subscriptions.sql");
        for s in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(s.as_str()), Some(s));
            assert!(
                migration.contains(&format!("'{}'", s.as_str())),
                "the CHECK lists {s}"
            );
        }
        assert_eq!(SubscriptionStatus::parse("lapsed"), None);
    }

    #[test]
    fn prices_render_in_major_units() {
        let tier = Tier {
            id: Uuid::nil(),
            name: "Gold".into(),
            description: None,
            role_id: RoleId::new(1),
            product_id: None,
            price_id: "price_1".into(),
            unit_amount: 499,
            currency: "eur".into(),
            interval: Interval::Month,
            archived_at: None,
            lapse_kicks: false,
        };
        assert_eq!(tier.price_text(), "4.99 EUR / month");
    }
}
