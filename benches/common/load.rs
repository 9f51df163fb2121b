//! A closed-loop load generator for loopback HTTP benchmarks: C clients each send one
//! request after another until a deadline (or until the work runs out), and every
//! answer is timed and counted by a label the caller picks (e.g. the check-in result
//! or the HTTP status). Each client owns a state it gets back after every request, so
//! a client can keep its connection, or change it (a new source address), between
//! requests. Included with `#[path = "common/load.rs"] mod load;` by the benches that
//! generate HTTP load, so benches that do not are not compiled with it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What one request came to: a label to count, or `None` when there is no work left.
pub type Step<S> = (S, Option<String>);

/// Every request of a run: how many of each label, and each request's latency.
pub struct Report {
    pub clients: usize,
    pub elapsed: Duration,
    pub outcomes: BTreeMap<String, u64>,
    /// Sorted, shortest first.
    pub latencies: Vec<Duration>,
}

/// Runs `clients` clients (client `i` starts with `states[i]`) for at most `limit`.
/// `step(state, n)` sends request number `n` (numbers are shared by all clients, so
/// each request can take a distinct piece of work) and returns the state and a label.
pub async fn run<S, F, Fut>(states: Vec<S>, limit: Duration, step: F) -> Report
where
    S: Send + 'static,
    F: Fn(S, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Step<S>> + Send + 'static,
{
    let clients = states.len();
    let seq = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = tokio::task::JoinSet::new();
    for state in states {
        let (seq, step) = (seq.clone(), step.clone());
        tasks.spawn(async move {
            let mut state = state;
            let mut latencies = Vec::new();
            let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let (next, label) = step(state, n).await;
                state = next;
                let Some(label) = label else {
                    break;
                };
                latencies.push(sent.elapsed());
                *outcomes.entry(label).or_default() += 1;
            }
            (latencies, outcomes)
        });
    }
    let mut latencies = Vec::new();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (l, o) = done.expect("load client");
        latencies.extend(l);
        for (label, n) in o {
            *outcomes.entry(label).or_default() += n;
        }
    }
    // The last requests end after the deadline: the rate divides by the real span.
    let elapsed = started.elapsed();
    latencies.sort();
    Report {
        clients,
        elapsed,
        outcomes,
        latencies,
    }
}

impl Report {
    pub fn requests(&self) -> u64 {
        self.latencies.len() as u64
    }

    pub fn count(&self, label: &str) -> u64 {
        self.outcomes.get(label).copied().unwrap_or(0)
    }

    /// Requests labelled `label` per second of the run.
    pub fn rate(&self, label: &str) -> f64 {
        self.count(label) as f64 / self.elapsed.as_secs_f64()
    }

    /// All requests per second.
    pub fn total_rate(&self) -> f64 {
        self.requests() as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which a fraction `p` of requests finished (nearest rank).
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() as f64 * p).ceil() as usize).max(1);
        self.latencies[rank.min(self.latencies.len()) - 1]
    }

    /// `p50 … ms, p99 … ms, max … ms`.
    pub fn latency_line(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default())
        )
    }

    /// Every label with its count, e.g. `admitted 10412, http 429 0`.
    pub fn outcome_line(&self) -> String {
        self.outcomes
            .iter()
            .map(|(label, n)| format!("{label} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
