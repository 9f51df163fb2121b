//! Checks declared on commands (`check = "..."`), run by poise before the body, on
//! the server side: Discord's `default_member_permissions` only hides a command.

use crate::community;

use super::{CommandError, Context};

/// Moderators: Manage Server, or a moderator role from `/setup moderators`.
pub async fn moderator(ctx: Context<'_>) -> Result<bool, CommandError> {
    let guild = ctx
        .guild_id()
        .ok_or_else(|| CommandError::User("This command only works inside a server.".into()))?;
    let member = match ctx {
        poise::Context::Application(a) => a.interaction.member.as_deref(),
        poise::Context::Prefix(_) => None,
    };
    let Some(member) = member else {
        return Err(CommandError::User(
            "I couldn't confirm your roles; please try again.".into(),
        ));
    };
    let (_, settings) = community::settings(&ctx.data().pool, guild).await?;
    let permissions = member.permissions.unwrap_or_default();
    if settings.is_moderator(&member.roles, permissions) {
        return Ok(true);
    }
    Err(CommandError::User(format!(
        "Only moderators can use `/{}`. An admin can add your role with `/setup moderators`.",
        ctx.command().qualified_name
    )))
}

/// Event organisers: Manage Events (or Manage Server), or the organiser role from
/// `/event organizers`.
pub async fn organizer(ctx: Context<'_>) -> Result<bool, CommandError> {
    let guild = ctx
        .guild_id()
        .ok_or_else(|| CommandError::User("This command only works inside a server.".into()))?;
    let member = match ctx {
        poise::Context::Application(a) => a.interaction.member.as_deref(),
        poise::Context::Prefix(_) => None,
    };
    let Some(member) = member else {
        return Err(CommandError::User(
            "I couldn't confirm your roles; please try again.".into(),
        ));
    };
    let permissions = member.permissions.unwrap_or_default();
    if crate::events::is_organizer(&ctx.data().pool, guild, &member.roles, permissions).await? {
        return Ok(true);
    }
    Err(CommandError::User(format!(
        "Only event organisers can use `/{}`: you need Manage Events, or the organiser role an admin sets with `/event organizers`.",
        ctx.command().qualified_name
    )))
}
