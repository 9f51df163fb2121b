//! When a temporarily failed job runs again: exponential backoff with jitter, so a
//! Discord outage is met by a spreading trickle of retries instead of a synchronized
//! storm when it ends.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

const BASE: Duration = Duration::from_secs(2);
const CAP: Duration = Duration::from_secs(600);

/// The delay before attempt `attempts + 1`: the exponential step capped at 10 minutes,
/// then "equal jitter" (a random point in its upper half) so it never collapses to 0.
pub fn backoff(attempts: i32, jitter: f64) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
    let step = BASE.saturating_mul(1u32 << exponent).min(CAP);
    step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A uniform-enough number in [0, 1) without a dependency: std's per-process random
/// hasher keys over a counter-ish input.
pub fn jitter(seed: i64) -> f64 {
    let hash = RandomState::new().hash_one(seed);
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps_and_jitter_stays_in_the_upper_half() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(4, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(40, 1.0), CAP);
        assert!(backoff(3, 0.3) >= Duration::from_secs(4));
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let values: Vec<f64> = (0..50).map(jitter).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(values.windows(2).any(|w| w[0] != w[1]));
    }
}
