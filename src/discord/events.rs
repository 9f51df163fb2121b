//! Gateway events → domain calls. Each handler translates serenity's model into the
//! domain's types and calls one domain function; failures are logged once, here.

use serenity::all::{ConnectionStage, FullEvent, Guild, Interaction, Member, Message};

use crate::app::App;
use crate::automod;
use crate::community::{self, GuildSnapshot, MemberSnapshot};
use crate::membership;

pub async fn handle(ctx: &serenity::all::Context, app: &App, event: &FullEvent) {
    metrics::counter!("guildops_gateway_events_total", "type" => event.snake_case_name())
        .increment(1);
    let outcome = match event {
        FullEvent::Ready { data_about_bot } => {
            tracing::info!(guilds = data_about_bot.guilds.len(), "gateway ready");
            app.status.set_gateway_connected(true);
            Ok(())
        }
        FullEvent::Resume { .. } => {
            app.status.set_gateway_connected(true);
            Ok(())
        }
        FullEvent::ShardStageUpdate { event } => {
            app.status
                .set_gateway_connected(event.new == ConnectionStage::Connected);
            Ok(())
        }
        FullEvent::GuildCreate { guild, .. } => {
            let provisioned = community::provision(&app.pool, &guild_snapshot(guild)).await;
            if provisioned.is_ok() {
                load_automod(app, guild.id).await;
            }
            provisioned.map(|_| ())
        }
        FullEvent::Message { new_message } => {
            check_message(app, new_message).await;
            Ok(())
        }
        FullEvent::InteractionCreate {
            interaction: Interaction::Component(component),
        } => {
            crate::commands::components::handle(ctx, app, component).await;
            Ok(())
        }
        FullEvent::GuildAuditLogEntryCreate { entry, guild_id } => {
            observe_sanction(ctx, app, *guild_id, entry).await;
            Ok(())
        }
        FullEvent::InteractionCreate {
            interaction: Interaction::Modal(modal),
        } => {
            crate::commands::components::handle_modal(ctx, app, modal).await;
            Ok(())
        }
        FullEvent::GuildDelete { incomplete, .. } if incomplete.unavailable => {
            // An outage on Discord's side, not a removal: the guild comes back by itself.
            tracing::warn!(guild.id = %incomplete.id, "guild unavailable (Discord outage)");
            Ok(())
        }
        FullEvent::GuildDelete { incomplete, .. } => {
            app.automod.forget(incomplete.id);
            community::deactivate(&app.pool, incomplete.id)
                .await
                .map(|_| ())
        }
        FullEvent::GuildMemberAddition { new_member } => {
            let snapshot = member_snapshot(new_member);
            let joined = community::member_joined(&app.pool, new_member.guild_id, &snapshot).await;
            if joined.is_ok() && !snapshot.is_bot {
                restore_paid_roles(app, &snapshot, new_member.guild_id).await;
                reapply_sanctions(app, &snapshot, new_member.guild_id).await;
            }
            joined
        }
        FullEvent::GuildMemberUpdate { event, .. } => {
            community::member_roles_changed(&app.pool, event.guild_id, event.user.id, &event.roles)
                .await
        }
        FullEvent::GuildMemberRemoval { guild_id, user, .. } => {
            community::member_left(&app.pool, *guild_id, user.id).await
        }
        _ => Ok(()),
    };
    if let Err(error) = outcome {
        tracing::error!(event = event.snake_case_name(), error = %error, "gateway event handling failed");
    }
}

async fn load_automod(app: &App, guild: serenity::all::GuildId) {
    if let Err(error) = automod::load(&app.pool, &app.automod, guild).await {
        tracing::error!(guild.id = %guild, error = %error, "loading automod rules failed");
    }
}

/// Every member message goes past automod; bots, webhooks and DMs do not.
async fn check_message(app: &App, message: &Message) {
    let Some(guild_id) = message.guild_id else {
        return;
    };
    if message.author.bot || message.webhook_id.is_some() {
        return;
    }
    let roles = message
        .member
        .as_ref()
        .map(|m| m.roles.clone())
        .unwrap_or_default();
    let attachments: Vec<String> = message
        .attachments
        .iter()
        .map(|a| a.filename.clone())
        .collect();
    let now = chrono::Utc::now();
    let age =
        |since: chrono::DateTime<chrono::Utc>| u64::try_from((now - since).num_seconds()).ok();
    let mentions = message.mentions.len() + message.mention_roles.len();
    let posted = automod::Posted {
        guild_id,
        channel_id: message.channel_id,
        message_id: message.id,
        author: message.author.id,
        content: &message.content,
        roles: &roles,
        mentions: u32::try_from(mentions).unwrap_or(u32::MAX) + u32::from(message.mention_everyone),
        attachments: &attachments,
        account_age_secs: age(*message.author.id.created_at()),
        member_age_secs: message
            .member
            .as_ref()
            .and_then(|m| m.joined_at)
            .and_then(|t| age(*t)),
    };
    if let Err(error) = automod::on_message(&app.pool, &app.automod, &posted).await {
        tracing::error!(guild.id = %guild_id, user.id = %message.author.id, message.id = %message.id, error = %error, "automod verdict failed");
    }
}

/// A ban, unban, kick or timeout a moderator took in Discord's own interface becomes a
/// case attributed to them. The bot's own actions have their cases already.
async fn observe_sanction(
    ctx: &serenity::all::Context,
    app: &App,
    guild: serenity::all::GuildId,
    entry: &serenity::all::AuditLogEntry,
) {
    use crate::moderation::{Kind, Observed};
    use serenity::all::audit_log::{Action, Change, MemberAction};
    if entry.user_id == ctx.cache.current_user().id {
        return;
    }
    let Some(target) = entry.target_id.map(|t| serenity::all::UserId::new(t.get())) else {
        return;
    };
    let timeout_change = entry.changes.iter().flatten().find_map(|c| match c {
        Change::CommunicationDisabledUntil { new, .. } => Some(new.map(|t| *t)),
        _ => None,
    });
    let (kind, until) = match (entry.action, timeout_change) {
        (Action::Member(MemberAction::BanAdd), _) => (Kind::Ban, None),
        (Action::Member(MemberAction::BanRemove), _) => (Kind::Unban, None),
        (Action::Member(MemberAction::Kick), _) => (Kind::Kick, None),
        (Action::Member(MemberAction::Update), Some(Some(until))) => (Kind::Timeout, Some(until)),
        (Action::Member(MemberAction::Update), Some(None)) => (Kind::Untimeout, None),
        _ => return,
    };
    let observed = Observed {
        guild,
        kind,
        target,
        moderator: entry.user_id,
        reason: entry.reason.clone(),
        until,
        entry_id: entry.id.get(),
    };
    if let Err(error) = crate::moderation::record_observed(&app.pool, observed).await {
        tracing::error!(guild.id = %guild, user.id = %target, error = %error, "recording a sanction taken in Discord failed");
    }
}

/// A member who left while sanctioned gets the sanction back on rejoining.
async fn reapply_sanctions(app: &App, member: &MemberSnapshot, guild: serenity::all::GuildId) {
    if let Err(error) = crate::moderation::member_joined(&app.pool, guild, member.user_id).await {
        tracing::error!(guild.id = %guild, user.id = %member.user_id, error = %error, "re-applying sanctions failed");
    }
}

/// A (re)joining member gets their paid roles back; logged here, like every failure.
async fn restore_paid_roles(app: &App, member: &MemberSnapshot, guild: serenity::all::GuildId) {
    if let Err(error) =
        membership::member_joined(&app.pool, guild, member.user_id, member.joined_at).await
    {
        tracing::error!(guild.id = %guild, user.id = %member.user_id, error = %error, "restoring paid roles failed");
    }
}

fn guild_snapshot(guild: &Guild) -> GuildSnapshot {
    GuildSnapshot {
        guild_id: guild.id,
        name: guild.name.clone(),
        owner_id: guild.owner_id,
        members: guild.members.values().map(member_snapshot).collect(),
    }
}

fn member_snapshot(member: &Member) -> MemberSnapshot {
    MemberSnapshot {
        user_id: member.user.id,
        is_bot: member.user.bot,
        joined_at: member.joined_at.map(|t| *t),
        roles: member.roles.clone(),
    }
}
