//! guildops: a community-operations bot that Discord communities run themselves.
//!
//! Module map, in dependency order (no arrow points back up):
//! `cli` → `daemon` (wires everything) → `commands`, `discord`, `http` (adapters) →
//! `app` (shared state) → domains (`community`, `membership`) → `db`, `config`.

pub mod app;
pub mod audit;
pub mod automod;
pub mod cli;
#[path = "../commands/mod.rs"]
pub mod commands;
pub mod community;
pub mod config;
pub mod daemon;
pub mod db;
pub mod discord;
pub mod events;
pub mod http;
pub mod jobs;
pub mod membership;
pub mod moderation;
pub mod outbox;
pub mod telemetry;

pub use daemon::{Daemon, StartupError};
