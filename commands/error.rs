//! The two tiers of command failure. A [`CommandError::User`] is something the
//! person can fix: they get a polite, specific, ephemeral reply. Anything else is
//! [`CommandError::Internal`]: logged once with its cause chain and an error id, while
//! the person sees a short apology with that id (never the error text).

use poise::FrameworkError;

use crate::app::App;
use crate::community;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    User(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<community::Error> for CommandError {
    fn from(e: community::Error) -> Self {
        if e.is_user_error() {
            CommandError::User(e.to_string())
        } else {
            CommandError::Internal(e.into())
        }
    }
}

impl From<crate::membership::Error> for CommandError {
    fn from(e: crate::membership::Error) -> Self {
        if e.is_user_error() {
            CommandError::User(e.to_string())
        } else {
            CommandError::Internal(e.into())
        }
    }
}

impl From<crate::automod::Error> for CommandError {
    fn from(e: crate::automod::Error) -> Self {
        if e.is_user_error() {
            CommandError::User(e.to_string())
        } else {
            CommandError::Internal(e.into())
        }
    }
}

impl From<crate::audit::Error> for CommandError {
    fn from(e: crate::audit::Error) -> Self {
        CommandError::Internal(e.into())
    }
}

impl From<serenity::Error> for CommandError {
    fn from(e: serenity::Error) -> Self {
        CommandError::Internal(e.into())
    }
}

/// poise's `on_error`: every failure of every command ends here exactly once.
pub async fn on_error(error: FrameworkError<'_, App, CommandError>) {
    let Some(ctx) = error.ctx() else {
        if let FrameworkError::Setup { error, .. } = error {
            tracing::error!(error = ?error, "framework setup failed");
        } else if let Err(e) = poise::builtins::on_error(error).await {
            tracing::error!(error = %e, "while handling a framework error");
        }
        return;
    };
    let command = ctx.command().qualified_name.clone();
    metrics::counter!("guildops_commands_total", "command" => command.clone(), "outcome" => outcome(&error))
        .increment(1);
    let text = match error {
        FrameworkError::Command {
            error: CommandError::User(text),
            ..
        } => text,
        FrameworkError::Command {
            error: CommandError::Internal(e),
            ..
        } => internal(ctx, &command, &e),
        FrameworkError::MissingUserPermissions {
            missing_permissions: Some(p),
            ..
        } => {
            format!(
                "You need the **{}** permission to use `/{command}`.",
                permission_names(p)
            )
        }
        FrameworkError::MissingUserPermissions {
            missing_permissions: None,
            ..
        } => {
            format!("I couldn't confirm your permissions for `/{command}`; please try again.")
        }
        FrameworkError::MissingBotPermissions {
            missing_permissions,
            ..
        } => format!(
            "I'm missing the **{}** permission here; ask an admin to grant it to my role.",
            permission_names(missing_permissions)
        ),
        FrameworkError::GuildOnly { .. } => "This command only works inside a server.".into(),
        FrameworkError::ArgumentParse { input, error, .. } => match input {
            Some(input) => format!("I couldn't understand `{input}`: {error}."),
            None => format!("I couldn't read that command's options: {error}."),
        },
        FrameworkError::CommandCheckFailed {
            error: Some(CommandError::User(text)),
            ..
        } => text,
        FrameworkError::CommandCheckFailed { .. } => "You can't use this command here.".into(),
        FrameworkError::CooldownHit {
            remaining_cooldown, ..
        } => {
            format!(
                "Slow down: try again in {} seconds.",
                remaining_cooldown.as_secs().max(1)
            )
        }
        other => {
            if let Err(e) = poise::builtins::on_error(other).await {
                tracing::error!(error = %e, "while handling a framework error");
            }
            return;
        }
    };
    let reply = poise::CreateReply::default().content(text).ephemeral(true);
    if let Err(e) = ctx.send(reply).await {
        tracing::warn!(error = %e, command = %command, "could not deliver the error reply");
    }
}

/// Permission names as Discord's UI shows them (serenity uses the API's older names).
fn permission_names(permissions: serenity::all::Permissions) -> String {
    permissions
        .iter()
        .map(|p| match p {
            p if p == serenity::all::Permissions::MANAGE_GUILD => "Manage Server".to_owned(),
            p if p == serenity::all::Permissions::MODERATE_MEMBERS => "Timeout Members".to_owned(),
            p => p.get_permission_names().join(", "),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn outcome(error: &FrameworkError<'_, App, CommandError>) -> &'static str {
    match error {
        FrameworkError::Command {
            error: CommandError::Internal(_),
            ..
        } => "internal_error",
        FrameworkError::Command { .. } => "user_error",
        FrameworkError::MissingUserPermissions { .. }
        | FrameworkError::CommandCheckFailed { .. } => "refused",
        _ => "rejected",
    }
}

/// Logs the failure once with its context and returns the apology the person sees.
fn internal(
    ctx: poise::Context<'_, App, CommandError>,
    command: &str,
    error: &anyhow::Error,
) -> String {
    report_internal(
        &format!("/{command}"),
        ctx.guild_id().map(|g| g.get()),
        ctx.author().id.get(),
        error,
    )
}

/// The one place an internal failure of an interaction (a command or a button) is
/// logged: with an error id, which the apology shows the person.
pub fn report_internal(
    interaction: &str,
    guild: Option<u64>,
    user: u64,
    error: &anyhow::Error,
) -> String {
    let error_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    tracing::error!(
        error.id = %error_id,
        interaction = %interaction,
        guild.id = guild,
        user.id = user,
        error = ?error,
        "interaction failed"
    );
    format!(
        "Sorry, something went wrong on my side. If it keeps happening, give the server's admins this error id: `{error_id}`."
    )
}
