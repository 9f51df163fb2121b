//! The Discord side of the daemon: the REST handle (pointed at Discord or at a
//! compatible base), the gateway intents, token verification, and gateway event
//! handlers that turn Discord's events into calls on the domains.

pub mod effects;
pub mod events;
pub mod permissions;
pub mod ratelimit;

use serenity::all::{GatewayIntents, Http, HttpBuilder};

use crate::config::DiscordConfig;

/// The gateway events the features need. GUILD_MEMBERS and MESSAGE_CONTENT are
/// privileged: enable both on the application's Bot page.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MEMBERS
        | GatewayIntents::GUILD_MODERATION
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Discord rejected the bot token (401 Unauthorized): check GUILDOPS_DISCORD_TOKEN")]
    TokenRejected,
    #[error("cannot reach Discord at {base}: {reason}")]
    Unreachable { base: String, reason: String },
}

/// The REST handle. With `api_base` set, serenity's built-in rate limiter must be off
/// (it ignores the proxy while on), so rate limits become our job (see `jobs`).
pub fn http_client(config: &DiscordConfig, token: &str) -> Http {
    let mut builder = HttpBuilder::new(token);
    if let Some(base) = &config.api_base {
        builder = builder
            .proxy(base.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    if let Some(id) = config
        .application_id
        .or_else(|| permissions::application_id_from_token(token))
    {
        builder = builder.application_id(id.into());
    }
    builder.build()
}

/// Asks Discord who we are, so a bad token is one clear error at start-up (serenity
/// would otherwise only warn and fall back to the public gateway).
pub async fn verify_token(
    http: &Http,
    base: &str,
) -> Result<serenity::all::CurrentUser, StartError> {
    match http.get_current_user().await {
        Ok(user) => Ok(user),
        Err(serenity::Error::Http(serenity::all::HttpError::UnsuccessfulRequest(resp)))
            if resp.status_code.as_u16() == 401 =>
        {
            Err(StartError::TokenRejected)
        }
        Err(e) => Err(StartError::Unreachable {
            base: base.to_owned(),
            reason: e.to_string(),
        }),
    }
}
