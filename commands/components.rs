//! Buttons on messages the bot posted (component interactions), routed by the prefix
//! of their `custom_id`. Poise only dispatches slash commands, so these arrive here
//! from the gateway handler. Same two tiers of error as commands: the person is told
//! what they can fix; anything else is logged once and they get an apology with an id.

use serenity::all::{
    ComponentInteraction, Context, CreateInteractionResponse, CreateInteractionResponseMessage,
    Mentionable,
};

use crate::app::App;
use crate::automod::{self, Feedback};
use crate::community;
use crate::events;

use super::CommandError;
use super::error::report_internal;

pub async fn handle(ctx: &Context, app: &App, component: &ComponentInteraction) {
    let custom_id = component.data.custom_id.as_str();
    let outcome = if let Some(hit) = custom_id.strip_prefix(automod::FALSE_POSITIVE) {
        false_positive(app, component, hit).await
    } else if let Some(code) = custom_id.strip_prefix(events::RSVP_BUTTON) {
        event_rsvp(app, component, code).await
    } else if let Some(code) = custom_id.strip_prefix(events::CANCEL_BUTTON) {
        event_cancel(app, component, code).await
    } else {
        // Another feature's button (or one from an older version): not ours to answer.
        return;
    };
    let text = match outcome {
        Ok(text) | Err(CommandError::User(text)) => text,
        Err(CommandError::Internal(e)) => report_internal(
            custom_id,
            component.guild_id.map(|g| g.get()),
            component.user.id.get(),
            &e,
        ),
    };
    let reply = CreateInteractionResponseMessage::new()
        .content(text)
        .ephemeral(true);
    if let Err(e) = component
        .create_response(&ctx.http, CreateInteractionResponse::Message(reply))
        .await
    {
        tracing::warn!(error = %e, custom_id, "could not answer a button");
    }
}

async fn false_positive(
    app: &App,
    component: &ComponentInteraction,
    hit: &str,
) -> Result<String, CommandError> {
    let hit: i64 = hit
        .parse()
        .map_err(|_| CommandError::User("That button is not one I know.".into()))?;
    let (guild, member) = match (component.guild_id, component.member.as_ref()) {
        (Some(g), Some(m)) => (g, m),
        _ => {
            return Err(CommandError::User(
                "This button only works inside a server.".into(),
            ));
        }
    };
    let (_, settings) = community::settings(&app.pool, guild).await?;
    if !settings.is_moderator(&member.roles, member.permissions.unwrap_or_default()) {
        return Err(CommandError::User(
            "Only moderators can mark automod hits as false positives.".into(),
        ));
    }
    let feedback = automod::mark_false_positive(&app.pool, guild, hit, component.user.id).await?;
    Ok(match feedback {
        Feedback::Recorded { rule } => format!(
            "Thanks: hit #{hit} of rule `{rule}` is recorded as a false positive (it no longer counts towards escalation). `/automod test` shows what the rule matches; `/automod rule edit` tunes it."
        ),
        Feedback::AlreadyRecorded { by } => {
            format!(
                "Hit #{hit} was already marked as a false positive by {}.",
                by.mention()
            )
        }
    })
}

/// The RSVP button under an event's post: the same as `/event rsvp`.
async fn event_rsvp(
    app: &App,
    component: &ComponentInteraction,
    code: &str,
) -> Result<String, CommandError> {
    let (guild, member) = match (component.guild_id, component.member.as_ref()) {
        (Some(g), Some(m)) => (g, m),
        _ => {
            return Err(CommandError::User(
                "This button only works inside a server.".into(),
            ));
        }
    };
    let user = &component.user;
    let display_name = member
        .nick
        .clone()
        .or_else(|| user.global_name.clone())
        .unwrap_or_else(|| user.name.clone());
    let request = events::Rsvp {
        guild,
        code: code.to_owned(),
        user: user.id,
        display_name,
        roles: member.roles.clone(),
        correlation_id: Some(component.id.to_string()),
    };
    let outcome = events::rsvp(&app.pool, request).await?;
    Ok(super::event::rsvp_text(&outcome))
}

/// The cancel button under an event's post: the same as `/event cancel-rsvp`.
async fn event_cancel(
    app: &App,
    component: &ComponentInteraction,
    code: &str,
) -> Result<String, CommandError> {
    let guild = component
        .guild_id
        .ok_or_else(|| CommandError::User("This button only works inside a server.".into()))?;
    let event = events::cancel_rsvp(&app.pool, guild, code, component.user.id).await?;
    Ok(format!(
        "Done: you no longer have a place at **{}**.",
        event.title
    ))
}
