//! Shared state handed to every adapter: the pool, the configuration and the
//! daemon's live status. One value, cheap to clone; there is no
//! second source of shared state (no serenity TypeMap).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use sqlx::PgPool;

use crate::config::Config;
use crate::membership::stripe::Stripe;

#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub status: Arc<Status>,
    /// The Stripe account; `None` when no secret key is configured (payments off).
    pub stripe: Option<Arc<Stripe>>,
    /// Each guild's compiled automod rules.
    pub automod: Arc<crate::automod::Registry>,
    /// The door's invalid-scan limits and the salt of its address digests.
    pub checkin: Arc<crate::events::checkin::Limiter>,
    /// The door's refusals, recorded in batches.
    pub refusals: Arc<crate::events::checkin::RefusalLog>,
}

/// What `/readyz` and `/about` report.
#[derive(Debug)]
pub struct Status {
    pub started_at: Instant,
    gateway_connected: AtomicBool,
}

impl Status {
    pub fn new() -> Self {
        Self {
            started_at: Instant::now(),
            gateway_connected: AtomicBool::new(false),
        }
    }

    pub fn set_gateway_connected(&self, connected: bool) {
        self.gateway_connected.store(connected, Ordering::Relaxed);
    }

    pub fn gateway_connected(&self) -> bool {
        self.gateway_connected.load(Ordering::Relaxed)
    }
}

impl Default for Status {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    pub fn new(pool: PgPool, config: Config) -> Self {
        Self {
            refusals: Arc::new(crate::events::checkin::RefusalLog::new(pool.clone())),
            pool,
            config: Arc::new(config),
            status: Arc::new(Status::new()),
            stripe: None,
            automod: Arc::default(),
            checkin: Arc::default(),
        }
    }

    /// With the Stripe account the secrets configure.
    pub fn with_stripe(mut self, stripe: Option<Stripe>) -> Self {
        self.stripe = stripe.map(Arc::new);
        self
    }
}
