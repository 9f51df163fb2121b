//! SQL for tiers, subscriptions, grants, payments, Stripe events and held paid roles,
//! one file per table group. Discord snowflakes become `bigint` here and nowhere else.

mod members;
mod payments;
mod revenue;
mod subscriptions;
mod tiers;
mod webhook;

pub use members::*;
pub use payments::*;
pub use revenue::*;
pub use subscriptions::*;
pub use tiers::*;
pub use webhook::*;

fn sf(id: u64) -> i64 {
    id as i64
}

fn unsf(id: i64) -> u64 {
    id as u64
}
