//! The slash-command layer: one file per command or command group. Commands parse
//! their options, call one domain function and render the reply; permissions are
//! declared on the command, never checked with `if`s in the body.

mod about;
mod appeal;
mod audit;
mod automod;
mod case;
mod checks;
pub mod components;
pub mod error;
pub(crate) mod event;
mod membership;
mod ops;
mod report;
mod revenue;
mod sanctions;
mod setup;
mod shop;
mod tier;

pub use error::CommandError;

/// poise's context with our shared state and error type.
pub type Context<'a> = poise::Context<'a, crate::app::App, CommandError>;
pub type Command = poise::Command<crate::app::App, CommandError>;

/// The server a command runs in (commands are `guild_only`, so this is there).
pub(crate) fn guild(ctx: Context<'_>) -> Result<serenity::all::GuildId, CommandError> {
    ctx.guild_id()
        .ok_or_else(|| CommandError::User("This command only works inside a server.".into()))
}

/// An ephemeral reply: everything the bot answers is for the caller's eyes only.
pub(crate) async fn reply(ctx: Context<'_>, text: String) -> Result<(), CommandError> {
    ctx.send(poise::CreateReply::default().content(text).ephemeral(true))
        .await?;
    Ok(())
}

/// [`reply`] with a file attached.
pub(crate) async fn reply_with_file(
    ctx: Context<'_>,
    text: String,
    file: serenity::all::CreateAttachment,
) -> Result<(), CommandError> {
    ctx.send(
        poise::CreateReply::default()
            .content(text)
            .attachment(file)
            .ephemeral(true),
    )
    .await?;
    Ok(())
}

/// Every command the bot registers.
pub fn all() -> Vec<Command> {
    vec![
        about::about(),
        setup::setup(),
        ops::ops(),
        audit::audit(),
        automod::automod(),
        tier::tier(),
        shop::tiers(),
        shop::subscribe(),
        membership::membership(),
        revenue::revenue(),
        sanctions::warn(),
        sanctions::timeout(),
        sanctions::kick(),
        sanctions::ban(),
        sanctions::softban(),
        sanctions::unban(),
        sanctions::untimeout(),
        sanctions::quarantine(),
        sanctions::unquarantine(),
        sanctions::mute(),
        sanctions::unmute(),
        sanctions::note(),
        sanctions::moderate_member(),
        case::case(),
        case::history(),
        report::report(),
        report::report_message(),
        report::reports(),
        appeal::appeal(),
        event::event(),
    ]
}
