//! Buttons on messages the bot posted (component interactions), routed by the prefix
//! of their `custom_id`. Poise only dispatches slash commands, so these arrive here
//! from the gateway handler. Same two tiers of error as commands: the person is told
//! what they can fix; anything else is logged once and they get an apology with an id.

use serenity::all::{
    ComponentInteraction, ComponentInteractionDataKind, Context, CreateActionRow, CreateInputText,
    CreateInteractionResponse, CreateInteractionResponseMessage, CreateModal, CreateSelectMenu,
    CreateSelectMenuKind, CreateSelectMenuOption, GuildId, InputTextStyle, Member, Mentionable,
    ModalInteraction, UserId,
};
use uuid::Uuid;

use crate::app::App;
use crate::automod::{self, Feedback};
use crate::community;
use crate::events;
use crate::moderation::appeals::{self, Decision};
use crate::moderation::reports::{self, Resolution};
use crate::moderation::{Kind, Sanction};

use super::CommandError;
use super::error::report_internal;

/// The resolve menu's `custom_id` prefix and the dismiss modal's.
const RESOLVE_ACTION: &str = "report:action:";
const DISMISS_NOTE: &str = "report:note:";

/// What a component asks for: a message to show, or a modal to open.
enum Answer {
    Text(String),
    Menu(String, CreateSelectMenu),
    Modal(CreateModal),
}

pub async fn handle(ctx: &Context, app: &App, component: &ComponentInteraction) {
    let custom_id = component.data.custom_id.as_str();
    let outcome = if let Some(hit) = custom_id.strip_prefix(automod::FALSE_POSITIVE) {
        false_positive(app, component, hit).await.map(Answer::Text)
    } else if custom_id.starts_with("report:") || custom_id.starts_with("appeal:") {
        moderation_button(ctx, app, component).await
    } else if let Some(code) = custom_id.strip_prefix(events::RSVP_BUTTON) {
        event_rsvp(app, component, code).await.map(Answer::Text)
    } else if let Some(code) = custom_id.strip_prefix(events::CANCEL_BUTTON) {
        event_cancel(app, component, code).await.map(Answer::Text)
    } else {
        // Another feature's button (or one from an older version): not ours to answer.
        return;
    };
    let response = match outcome {
        Ok(Answer::Modal(modal)) => CreateInteractionResponse::Modal(modal),
        Ok(Answer::Menu(text, menu)) => CreateInteractionResponse::Message(
            CreateInteractionResponseMessage::new()
                .content(text)
                .components(vec![CreateActionRow::SelectMenu(menu)])
                .ephemeral(true),
        ),
        other => {
            let text = match other {
                Ok(Answer::Text(text)) | Err(CommandError::User(text)) => text,
                Err(CommandError::Internal(e)) => report_internal(
                    custom_id,
                    component.guild_id.map(|g| g.get()),
                    component.user.id.get(),
                    &e,
                ),
                Ok(_) => unreachable!("menus and modals are answered above"),
            };
            CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new()
                    .content(text)
                    .ephemeral(true),
            )
        }
    };
    if let Err(e) = component.create_response(&ctx.http, response).await {
        tracing::warn!(error = %e, custom_id, "could not answer a button");
    }
}

/// A submitted modal (the dismissal note).
pub async fn handle_modal(ctx: &Context, app: &App, modal: &ModalInteraction) {
    let custom_id = modal.data.custom_id.as_str();
    let Some(report) = custom_id.strip_prefix(DISMISS_NOTE) else {
        // poise's own modals (e.g. "Report message") are collected by poise.
        return;
    };
    let note = modal
        .data
        .components
        .iter()
        .flat_map(|row| row.components.iter())
        .find_map(|c| match c {
            serenity::all::ActionRowComponent::InputText(t) => t.value.clone(),
            _ => None,
        })
        .unwrap_or_default();
    let outcome = async {
        let (guild, member) = moderator_of(app, modal.guild_id, modal.member.as_ref()).await?;
        let id = parse_id(report)?;
        let report = reports::dismiss(&app.pool, guild, id, member, note).await?;
        Ok::<_, CommandError>(format!("Report #{} dismissed.", report.number))
    }
    .await;
    let text = match outcome {
        Ok(text) | Err(CommandError::User(text)) => text,
        Err(CommandError::Internal(e)) => report_internal(
            custom_id,
            modal.guild_id.map(|g| g.get()),
            modal.user.id.get(),
            &e,
        ),
    };
    let reply = CreateInteractionResponseMessage::new()
        .content(text)
        .ephemeral(true);
    if let Err(e) = modal
        .create_response(&ctx.http, CreateInteractionResponse::Message(reply))
        .await
    {
        tracing::warn!(error = %e, custom_id, "could not answer a modal");
    }
}

/// The clicker, if they are a moderator of the server the button is in.
async fn moderator_of(
    app: &App,
    guild: Option<GuildId>,
    member: Option<&Member>,
) -> Result<(GuildId, UserId), CommandError> {
    let (guild, member) = match (guild, member) {
        (Some(g), Some(m)) => (g, m),
        _ => {
            return Err(CommandError::User(
                "This only works inside a server.".into(),
            ));
        }
    };
    let (_, settings) = community::settings(&app.pool, guild).await?;
    if !settings.is_moderator(&member.roles, member.permissions.unwrap_or_default()) {
        return Err(CommandError::User("Only moderators can do that.".into()));
    }
    Ok((guild, member.user.id))
}

fn parse_id(text: &str) -> Result<Uuid, CommandError> {
    text.parse()
        .map_err(|_| CommandError::User("That button is not one I know.".into()))
}

async fn moderation_button(
    ctx: &Context,
    app: &App,
    component: &ComponentInteraction,
) -> Result<Answer, CommandError> {
    let (guild, moderator) =
        moderator_of(app, component.guild_id, component.member.as_ref()).await?;
    let custom_id = component.data.custom_id.as_str();
    let prefixed = |p: &str| custom_id.strip_prefix(p).map(parse_id).transpose();
    if let Some(id) = prefixed(reports::CLAIM)? {
        let report = reports::claim(&app.pool, guild, id, moderator).await?;
        return Ok(Answer::Text(format!(
            "You claimed report #{}.",
            report.number
        )));
    }
    if let Some(id) = prefixed(reports::RESOLVE)? {
        let report = reports::get(&app.pool, guild, id).await?;
        let options = RESOLUTIONS
            .iter()
            .map(|(value, label)| CreateSelectMenuOption::new(*label, *value))
            .collect();
        let menu = CreateSelectMenu::new(
            format!("{RESOLVE_ACTION}{id}"),
            CreateSelectMenuKind::String { options },
        )
        .placeholder("What to do");
        let text = format!("Resolve report #{}: pick an action.", report.number);
        return Ok(Answer::Menu(text, menu));
    }
    if let Some(id) = prefixed(RESOLVE_ACTION)? {
        let choice = match &component.data.kind {
            ComponentInteractionDataKind::StringSelect { values } => values.first().cloned(),
            _ => None,
        }
        .unwrap_or_default();
        return resolve(ctx, app, component, guild, moderator, id, &choice).await;
    }
    if let Some(id) = prefixed(reports::DISMISS)? {
        let input = CreateInputText::new(InputTextStyle::Paragraph, "Why is it dismissed?", "note")
            .max_length(1000);
        let modal = CreateModal::new(format!("{DISMISS_NOTE}{id}"), "Dismiss report")
            .components(vec![CreateActionRow::InputText(input)]);
        return Ok(Answer::Modal(modal));
    }
    let decisions = [
        (appeals::APPROVE, Decision::Approve),
        (appeals::DENY, Decision::Deny),
        (appeals::CLOSE, Decision::DenyAndClose),
    ];
    for (prefix, decision) in decisions {
        if let Some(id) = prefixed(prefix)? {
            let (number, reversal) =
                appeals::decide(&app.pool, guild, id, moderator, decision).await?;
            let text = match (decision, reversal) {
                (Decision::Approve, Some(case)) => format!(
                    "Appeal of case #{number} approved: case #{} ({}) records it.",
                    case.number, case.kind
                ),
                (Decision::DenyAndClose, _) => {
                    format!("Appeal of case #{number} denied; the case takes no more appeals.")
                }
                _ => format!("Appeal of case #{number} denied."),
            };
            return Ok(Answer::Text(text));
        }
    }
    Err(CommandError::User("That button is not one I know.".into()))
}

/// The resolve menu's choices: value, label.
const RESOLUTIONS: [(&str, &str); 6] = [
    ("none", "No action"),
    ("warn", "Warn"),
    ("timeout:3600", "Timeout 1 hour"),
    ("timeout:86400", "Timeout 1 day"),
    ("kick", "Kick"),
    ("ban", "Ban"),
];

async fn resolve(
    ctx: &Context,
    app: &App,
    component: &ComponentInteraction,
    guild: GuildId,
    moderator: UserId,
    id: Uuid,
    choice: &str,
) -> Result<Answer, CommandError> {
    let report = reports::get(&app.pool, guild, id).await?;
    let (kind, duration_secs) = match choice {
        "none" => (None, None),
        "warn" => (Some(Kind::Warn), None),
        "kick" => (Some(Kind::Kick), None),
        "ban" => (Some(Kind::Ban), None),
        other => match other.strip_prefix("timeout:").and_then(|s| s.parse().ok()) {
            Some(secs) => (Some(Kind::Timeout), Some(secs)),
            None => return Err(CommandError::User("Pick one of the actions.".into())),
        },
    };
    let resolution = match kind {
        None => Resolution::NoAction,
        Some(kind) => {
            let moderator_roles = component.member.as_ref().map(|m| m.roles.clone());
            let facts = super::sanctions::rank_facts(
                ctx.cache.as_ref(),
                guild,
                moderator,
                moderator_roles.as_deref(),
                report.target,
                None,
            )?;
            Resolution::Sanction(Box::new(Sanction {
                guild,
                kind,
                target: report.target,
                moderator,
                reason: format!("report #{}: {}", report.number, report.category.as_str()),
                evidence: Vec::new(),
                duration_secs,
                delete_message_secs: 0,
                facts: Some(facts),
                correlation_id: Some(format!("interaction:{}", component.id)),
            }))
        }
    };
    let (report, case) = reports::resolve(&app.pool, guild, id, moderator, resolution).await?;
    Ok(Answer::Text(match case {
        Some(case) => format!(
            "Report #{} resolved: case #{} ({}) for {}.",
            report.number,
            case.number,
            case.kind,
            case.target.mention()
        ),
        None => format!("Report #{} resolved without action.", report.number),
    }))
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
