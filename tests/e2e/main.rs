//! End-to-end tests: the real daemon against real PostgreSQL and the fake Discord,
//! over loopback. One test binary with a module per area (faster to build than many).

mod support;

mod audit;
mod automod;
mod commands;
mod events;
mod events_page;
mod fidelity;
mod gateway;
mod jobs;
mod jobs_crash;
mod membership;
mod membership_commands;
mod membership_webhooks;
mod moderation;
mod pg_restart;
mod process;
mod reports;
mod scheduled;
mod side_server;
mod tenancy;
