//! Discord rate limits, honoured by us: serenity's own limiter is off whenever
//! `discord.api_base` is set (it ignores the proxy otherwise). Per-route buckets and the
//! global limit are blocked until the `retry_after` of a 429 (or the reset of an
//! exhausted bucket), and a token bucket keeps every request of this process under the
//! global cap (Discord's is 50 requests/s).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub struct RateLimits {
    state: Mutex<State>,
}

struct State {
    buckets: HashMap<String, Instant>,
    global_until: Instant,
    tokens: f64,
    per_sec: f64,
    refilled_at: Instant,
}

impl RateLimits {
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        let now = Instant::now();
        Self {
            state: Mutex::new(State {
                buckets: HashMap::new(),
                global_until: now,
                tokens: per_sec,
                per_sec,
                refilled_at: now,
            }),
        }
    }

    /// Waits until a request to `bucket` may be sent, and takes a global token for it.
    pub async fn acquire(&self, bucket: &str) {
        loop {
            let wait = self.try_take(bucket);
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Zero when the request may go now (a token was taken), else how long to wait.
    fn try_take(&self, bucket: &str) -> Duration {
        let now = Instant::now();
        let mut st = self.lock();
        let blocked = st
            .buckets
            .get(bucket)
            .copied()
            .unwrap_or(now)
            .max(st.global_until);
        if blocked > now {
            return blocked - now;
        }
        st.refill(now);
        if st.tokens >= 1.0 {
            st.tokens -= 1.0;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - st.tokens) / st.per_sec)
        }
    }

    /// No request to `bucket` (or to anything, when `global`) before `after` elapses.
    pub fn block(&self, bucket: &str, global: bool, after: Duration) {
        let until = Instant::now() + after;
        let mut st = self.lock();
        if global {
            st.global_until = st.global_until.max(until);
        } else {
            let entry = st.buckets.entry(bucket.to_owned()).or_insert(until);
            *entry = (*entry).max(until);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the numbers inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn refill(&mut self, now: Instant) {
        let elapsed = (now - self.refilled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.per_sec);
        self.refilled_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn global_cap_paces_requests() {
        let limits = RateLimits::new(100);
        let start = Instant::now();
        for _ in 0..130 {
            limits.acquire("b").await;
        }
        // 100 in the first burst, then 30 more at 100/s.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(280), "{took:?}");
        assert!(took <= Duration::from_millis(600), "{took:?}");
    }

    #[tokio::test]
    async fn a_blocked_bucket_waits_but_others_do_not() {
        let limits = RateLimits::new(50);
        limits.block("slow", false, Duration::from_millis(200));
        let start = Instant::now();
        limits.acquire("fast").await;
        assert!(start.elapsed() < Duration::from_millis(50));
        limits.acquire("slow").await;
        assert!(start.elapsed() >= Duration::from_millis(200));
        limits.block("x", true, Duration::from_millis(200));
        let again = Instant::now();
        limits.acquire("fast").await;
        assert!(again.elapsed() >= Duration::from_millis(200));
    }
}
