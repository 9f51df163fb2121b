//! Automod: per-community rules evaluated on every message, in memory, against a
//! compiled rule set; only verdicts reach the database and the outbox.

pub mod engine;
#[cfg(test)]
mod evasion_tests;
pub mod links;
pub mod normalize;
pub mod rules;
pub mod windows;
