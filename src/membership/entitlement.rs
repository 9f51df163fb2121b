//! The one rule of paid tiers: which roles a member should hold, given their
//! subscriptions, their complimentary grants, the community's policy and the time.
//! Pure, so every case is a row in the table below; the domain compares its answer
//! with the roles guildops holds and turns the difference into outbox jobs.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serenity::all::RoleId;
use uuid::Uuid;

use super::SubscriptionStatus;

/// A tier as the rule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierRef {
    pub id: Uuid,
    pub role_id: RoleId,
    pub price_id: String,
}

/// What guildops knows about one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub price_ids: Vec<String>,
    pub status: SubscriptionStatus,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// The oldest sign of delinquency since the last sign of good standing; the grace
    /// period runs from here. `None`: in good standing.
    pub delinquent_since: Option<DateTime<Utc>>,
    /// A payment of this subscription was refunded in full.
    pub refunded: bool,
    /// A payment of this subscription is under dispute, or the dispute was lost.
    pub disputed: bool,
}

/// A complimentary grant (`/tier grant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantState {
    pub tier_id: Uuid,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The community's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub grace: Duration,
    pub refund_revokes: bool,
    pub dispute_revokes: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            grace: Duration::days(3),
            refund_revokes: true,
            dispute_revokes: true,
        }
    }
}

/// Whether one subscription grants access now, and why (shown by `/membership explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Grants access; `until` is when the answer changes by itself (the grace period or
    /// the paid period ends), so a job re-evaluates then.
    Grants {
        until: Option<DateTime<Utc>>,
        why: &'static str,
    },
    Denied {
        why: &'static str,
    },
}

impl Verdict {
    pub fn grants(&self) -> bool {
        matches!(self, Verdict::Grants { .. })
    }

    pub fn why(&self) -> &'static str {
        match self {
            Verdict::Grants { why, .. } | Verdict::Denied { why } => why,
        }
    }
}

/// The rule for one subscription. (An archived tier sells no more; its subscriptions
/// are set to end at their period's end in Stripe, which this rule then sees.)
pub fn verdict(sub: &SubscriptionState, policy: &Policy, now: DateTime<Utc>) -> Verdict {
    use SubscriptionStatus as S;
    if sub.refunded && policy.refund_revokes {
        return Verdict::Denied {
            why: "a payment was refunded",
        };
    }
    if sub.disputed && policy.dispute_revokes {
        return Verdict::Denied {
            why: "a payment is disputed",
        };
    }
    match sub.status {
        S::Active | S::Trialing => until_period_end(sub, now),
        S::PastDue => match sub.delinquent_since.map(|since| since + policy.grace) {
            Some(end) if now >= end => Verdict::Denied {
                why: "payment failed and the grace period is over",
            },
            Some(end) => Verdict::Grants {
                until: Some(end),
                why: "payment failed; within the grace period",
            },
            None => until_period_end(sub, now),
        },
        S::Incomplete => Verdict::Denied {
            why: "the first payment has not gone through yet",
        },
        S::IncompleteExpired => Verdict::Denied {
            why: "the first payment never went through",
        },
        S::Unpaid => Verdict::Denied {
            why: "unpaid after all retries",
        },
        S::Canceled => Verdict::Denied {
            why: "the subscription ended",
        },
        S::Paused => Verdict::Denied {
            why: "the subscription is paused",
        },
    }
}

/// Access that lasts while paid: to the period's end when it will not renew.
fn until_period_end(sub: &SubscriptionState, now: DateTime<Utc>) -> Verdict {
    if !sub.cancel_at_period_end {
        return Verdict::Grants {
            until: None,
            why: "paid and renewing",
        };
    }
    match sub.current_period_end {
        Some(end) if now >= end => Verdict::Denied {
            why: "the paid period ended and it does not renew",
        },
        end => Verdict::Grants {
            until: end,
            why: "paid until the period ends; it does not renew",
        },
    }
}

/// The tiers a subscription is for (its prices), in tier order.
pub fn tiers_of<'t>(tiers: &'t [TierRef], sub: &SubscriptionState) -> Vec<&'t TierRef> {
    tiers
        .iter()
        .filter(|t| sub.price_ids.contains(&t.price_id))
        .collect()
}

/// The answer: the union of the roles of every tier that a granting subscription or an
/// unexpired grant gives, and the earliest time it may change by itself.
pub fn entitled_roles(
    tiers: &[TierRef],
    subs: &[SubscriptionState],
    grants: &[GrantState],
    policy: &Policy,
    now: DateTime<Utc>,
) -> (BTreeSet<RoleId>, Option<DateTime<Utc>>) {
    let mut roles = BTreeSet::new();
    let mut next: Option<DateTime<Utc>> = None;
    let mut soonest = |t: Option<DateTime<Utc>>| {
        if let Some(t) = t {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    };
    for sub in subs {
        for tier in tiers_of(tiers, sub) {
            if let Verdict::Grants { until, .. } = verdict(sub, policy, now) {
                roles.insert(tier.role_id);
                soonest(until);
            }
        }
    }
    for grant in grants {
        let live = grant.expires_at.is_none_or(|end| now < end);
        if let (true, Some(tier)) = (live, tiers.iter().find(|t| t.id == grant.tier_id)) {
            roles.insert(tier.role_id);
            soonest(grant.expires_at);
        }
    }
    (roles, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscriptionStatus as S;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("valid time")
    }

    const DAY: i64 = 86_400;

    fn tier(n: u128, role: u64) -> TierRef {
        TierRef {
            id: Uuid::from_u128(n),
            role_id: RoleId::new(role),
            price_id: format!("price_{n}"),
        }
    }

    fn sub(price: u128, status: SubscriptionStatus) -> SubscriptionState {
        SubscriptionState {
            price_ids: vec![format!("price_{price}")],
            status,
            current_period_end: Some(at(30 * DAY)),
            cancel_at_period_end: false,
            delinquent_since: None,
            refunded: false,
            disputed: false,
        }
    }

    fn roles(ids: &[u64]) -> BTreeSet<RoleId> {
        ids.iter().map(|r| RoleId::new(*r)).collect()
    }

    /// (case, subscription, policy, now, roles, next change)
    type Case<'a> = (
        &'a str,
        SubscriptionState,
        &'a Policy,
        i64,
        &'a [u64],
        Option<i64>,
    );

    #[test]
    fn each_case_of_one_subscription() {
        let tiers = [tier(1, 10), tier(2, 20)];
        let policy = Policy::default();
        let lenient = Policy {
            refund_revokes: false,
            dispute_revokes: false,
            ..Policy::default()
        };
        let past_due = |since| SubscriptionState {
            delinquent_since: Some(since),
            ..sub(1, S::PastDue)
        };
        let ending = SubscriptionState {
            cancel_at_period_end: true,
            ..sub(1, S::Active)
        };
        let refunded = SubscriptionState {
            refunded: true,
            ..sub(1, S::Active)
        };
        let disputed = SubscriptionState {
            disputed: true,
            ..sub(1, S::Active)
        };
        // (case, subscription, policy, now, roles, next change)
        let cases: Vec<Case<'_>> = vec![
            ("active", sub(1, S::Active), &policy, 0, &[10], None),
            ("trialing", sub(1, S::Trialing), &policy, 0, &[10], None),
            (
                "past_due within grace",
                past_due(at(0)),
                &policy,
                2 * DAY,
                &[10],
                Some(3 * DAY),
            ),
            (
                "past_due after grace",
                past_due(at(0)),
                &policy,
                3 * DAY,
                &[],
                None,
            ),
            (
                "past_due with no failure seen",
                sub(1, S::PastDue),
                &policy,
                0,
                &[10],
                None,
            ),
            ("unpaid", sub(1, S::Unpaid), &policy, 0, &[], None),
            ("canceled", sub(1, S::Canceled), &policy, 0, &[], None),
            ("incomplete", sub(1, S::Incomplete), &policy, 0, &[], None),
            (
                "incomplete_expired",
                sub(1, S::IncompleteExpired),
                &policy,
                0,
                &[],
                None,
            ),
            ("paused", sub(1, S::Paused), &policy, 0, &[], None),
            (
                "cancel at period end, before it",
                ending.clone(),
                &policy,
                DAY,
                &[10],
                Some(30 * DAY),
            ),
            (
                "cancel at period end, after it",
                ending,
                &policy,
                30 * DAY,
                &[],
                None,
            ),
            ("refund revokes", refunded.clone(), &policy, 0, &[], None),
            ("refund kept by policy", refunded, &lenient, 0, &[10], None),
            ("dispute revokes", disputed.clone(), &policy, 0, &[], None),
            ("dispute kept by policy", disputed, &lenient, 0, &[10], None),
            (
                "renewing, past the recorded period end",
                sub(2, S::Active),
                &policy,
                31 * DAY,
                &[20],
                None,
            ),
            ("price of no tier", sub(9, S::Active), &policy, 0, &[], None),
        ];
        for (case, s, policy, now, want, next) in cases {
            let got = entitled_roles(&tiers, &[s], &[], policy, at(now));
            assert_eq!(got, (roles(want), next.map(at)), "{case}");
        }
    }

    #[test]
    fn several_tiers_give_the_union_and_grants_count_until_they_expire() {
        let tiers = [tier(1, 10), tier(2, 20), tier(3, 30)];
        let policy = Policy::default();
        let subs = [sub(1, S::Active), sub(2, S::Trialing), sub(3, S::Canceled)];
        let (got, _) = entitled_roles(&tiers, &subs, &[], &policy, at(0));
        assert_eq!(got, roles(&[10, 20]));

        let grants = [
            GrantState {
                tier_id: Uuid::from_u128(3),
                expires_at: Some(at(DAY)),
            },
            GrantState {
                tier_id: Uuid::from_u128(2),
                expires_at: None,
            },
        ];
        let before = entitled_roles(&tiers, &[], &grants, &policy, at(0));
        assert_eq!(before, (roles(&[20, 30]), Some(at(DAY))));
        let after = entitled_roles(&tiers, &[], &grants, &policy, at(DAY));
        assert_eq!(after, (roles(&[20]), None));
        let none = entitled_roles(&tiers, &[], &[], &policy, at(0));
        assert_eq!(none, (BTreeSet::new(), None));
    }

    #[test]
    fn one_subscription_with_two_prices_gives_both_roles() {
        let tiers = [tier(1, 10), tier(2, 20)];
        let both = SubscriptionState {
            price_ids: vec!["price_1".into(), "price_2".into()],
            ..sub(1, S::Active)
        };
        let (got, _) = entitled_roles(&tiers, &[both], &[], &Policy::default(), at(0));
        assert_eq!(got, roles(&[10, 20]));
    }
}
