//! When a subscription became delinquent, learned in any order. Stripe delivers events
//! out of order, so "the grace period starts at the first failure" cannot be a flag set
//! on arrival. Instead each event is a signal at its own time: good standing (a paid
//! invoice, an active snapshot) or a failure (a failed invoice, a past_due snapshot).
//! The newest good-standing time and the failures after it fully describe the answer,
//! and folding signals in any order gives the same state.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Good(DateTime<Utc>),
    Failure(DateTime<Utc>),
}

/// The bookkeeping stored on the subscription row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    pub good_at: Option<DateTime<Utc>>,
    /// Failures newer than `good_at`, sorted, without repeats.
    pub failures: Vec<DateTime<Utc>>,
}

impl Standing {
    pub fn apply(mut self, signal: Signal) -> Standing {
        match signal {
            Signal::Good(t) => {
                let good = self.good_at.map_or(t, |g| g.max(t));
                self.good_at = Some(good);
                self.failures.retain(|f| *f > good);
            }
            Signal::Failure(t) => {
                if self.good_at.is_none_or(|g| t > g) && !self.failures.contains(&t) {
                    self.failures.push(t);
                    self.failures.sort();
                }
            }
        }
        self
    }

    /// The start of the current delinquency, if any.
    pub fn delinquent_since(&self) -> Option<DateTime<Utc>> {
        self.failures.first().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    fn permutations(items: &[Signal]) -> Vec<Vec<Signal>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first);
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn every_order_of_the_same_signals_gives_the_same_standing() {
        use Signal::{Failure as F, Good as G};
        let histories: [&[Signal]; 4] = [
            &[G(t(0)), F(t(10)), F(t(20)), G(t(30))],
            &[G(t(0)), F(t(10)), F(t(20)), G(t(30)), F(t(40)), F(t(50))],
            &[F(t(10)), F(t(10)), F(t(5))],
            &[G(t(0)), G(t(100)), F(t(50))],
        ];
        let expected = [None, Some(t(40)), Some(t(5)), None];
        for (history, want) in histories.iter().zip(expected) {
            let mut seen = None;
            for order in permutations(history) {
                let s = order
                    .iter()
                    .fold(Standing::default(), |s, sig| s.apply(*sig));
                assert_eq!(s.delinquent_since(), want, "{order:?}");
                if let Some(prev) = &seen {
                    assert_eq!(prev, &s, "state depends on order: {order:?}");
                }
                seen = Some(s);
            }
        }
    }
}
