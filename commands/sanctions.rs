//! The sanction commands: `/warn /timeout /kick /ban /softban /unban /untimeout
//! /quarantine /unquarantine /note`. Moderators only (Manage Server or a `/setup`
//! moderator role, checked on the server side); each records a case through
//! `moderation::sanction`, which refuses the owner, the bot, oneself and anyone not
//! below both the moderator and the bot. Replies are ephemeral; the mod-log gets the
//! record.

use serenity::all::{Member, Mentionable, RoleId, User, UserId};

use crate::automod::rules::{format_duration, parse_duration};
use crate::moderation::{self, Facts, Kind, Sanction};

use super::{CommandError, Context, guild, reply};

impl From<moderation::Error> for CommandError {
    fn from(e: moderation::Error) -> Self {
        if e.is_user_error() {
            CommandError::User(e.to_string())
        } else {
            CommandError::Internal(e.into())
        }
    }
}

/// Warn a member (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn warn(
    ctx: Context<'_>,
    #[description = "Who"] member: Member,
    #[description = "Why (they are told)"]
    #[max_length = 1000]
    reason: String,
    #[description = "Links to evidence, separated by spaces"] evidence: Option<String>,
) -> Result<(), CommandError> {
    let target = Target::member(&member);
    act(ctx, Kind::Warn, target, reason, None, evidence, 0).await
}

/// Time a member out, e.g. for 10m, 2h or 40d (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn timeout(
    ctx: Context<'_>,
    #[description = "Who"] member: Member,
    #[description = "How long, e.g. 10m, 2h, 7d (beyond 28 days I renew it)"] duration: String,
    #[description = "Why (they are told)"]
    #[max_length = 1000]
    reason: String,
    #[description = "Links to evidence"] evidence: Option<String>,
) -> Result<(), CommandError> {
    let target = Target::member(&member);
    act(
        ctx,
        Kind::Timeout,
        target,
        reason,
        Some(duration),
        evidence,
        0,
    )
    .await
}

/// Kick a member (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "KICK_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn kick(
    ctx: Context<'_>,
    #[description = "Who"] member: Member,
    #[description = "Why (they are told)"]
    #[max_length = 1000]
    reason: String,
    #[description = "Links to evidence"] evidence: Option<String>,
) -> Result<(), CommandError> {
    let target = Target::member(&member);
    act(ctx, Kind::Kick, target, reason, None, evidence, 0).await
}

/// Ban someone, for a while or for good (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "BAN_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn ban(
    ctx: Context<'_>,
    #[description = "Who (a member or any user)"] user: User,
    #[description = "Why (they are told)"]
    #[max_length = 1000]
    reason: String,
    #[description = "How long, e.g. 45d (permanent when empty)"] duration: Option<String>,
    #[description = "Delete their messages of the last N days (0-7)"]
    #[min = 0]
    #[max = 7]
    delete_days: Option<u32>,
    #[description = "Links to evidence"] evidence: Option<String>,
) -> Result<(), CommandError> {
    let target = Target::user(&user);
    let delete = delete_days.unwrap_or(0) * 86_400;
    act(ctx, Kind::Ban, target, reason, duration, evidence, delete).await
}

/// Ban and unban at once, deleting a day of messages (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "BAN_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn softban(
    ctx: Context<'_>,
    #[description = "Who"] member: Member,
    #[description = "Why (they are told)"]
    #[max_length = 1000]
    reason: String,
    #[description = "Links to evidence"] evidence: Option<String>,
) -> Result<(), CommandError> {
    let target = Target::member(&member);
    act(ctx, Kind::Softban, target, reason, None, evidence, 86_400).await
}

/// Lift a ban (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "BAN_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn unban(
    ctx: Context<'_>,
    #[description = "Who"] user: User,
    #[description = "Why"]
    #[max_length = 1000]
    reason: String,
) -> Result<(), CommandError> {
    act(
        ctx,
        Kind::Unban,
        Target::reversal(&user),
        reason,
        None,
        None,
        0,
    )
    .await
}

/// End a member's timeout (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn untimeout(
    ctx: Context<'_>,
    #[description = "Who"] member: Member,
    #[description = "Why"]
    #[max_length = 1000]
    reason: String,
) -> Result<(), CommandError> {
    let target = Target::reversal(&member.user);
    act(ctx, Kind::Untimeout, target, reason, None, None, 0).await
}

/// Give a member the quarantine role, for a while or until lifted (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn quarantine(
    ctx: Context<'_>,
    #[description = "Who"] member: Member,
    #[description = "Why (they are told)"]
    #[max_length = 1000]
    reason: String,
    #[description = "How long, e.g. 3d (until lifted when empty)"] duration: Option<String>,
    #[description = "Links to evidence"] evidence: Option<String>,
) -> Result<(), CommandError> {
    let target = Target::member(&member);
    act(ctx, Kind::Quarantine, target, reason, duration, evidence, 0).await
}

/// Lift a member's quarantine (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn unquarantine(
    ctx: Context<'_>,
    #[description = "Who"] member: Member,
    #[description = "Why"]
    #[max_length = 1000]
    reason: String,
) -> Result<(), CommandError> {
    let target = Target::reversal(&member.user);
    act(ctx, Kind::Unquarantine, target, reason, None, None, 0).await
}

/// Give a member the mute role, for a while or until lifted (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn mute(
    ctx: Context<'_>,
    #[description = "Who"] member: Member,
    #[description = "Why (they are told)"]
    #[max_length = 1000]
    reason: String,
    #[description = "How long, e.g. 3d (until lifted when empty)"] duration: Option<String>,
) -> Result<(), CommandError> {
    let target = Target::member(&member);
    act(ctx, Kind::Mute, target, reason, duration, None, 0).await
}

/// Take a member's mute role away (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn unmute(
    ctx: Context<'_>,
    #[description = "Who"] member: Member,
    #[description = "Why"]
    #[max_length = 1000]
    reason: String,
) -> Result<(), CommandError> {
    let target = Target::reversal(&member.user);
    act(ctx, Kind::Unmute, target, reason, None, None, 0).await
}

/// Add a note to a member's record; they are not told (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn note(
    ctx: Context<'_>,
    #[description = "About whom"] user: User,
    #[description = "The note"]
    #[max_length = 1000]
    text: String,
) -> Result<(), CommandError> {
    act(
        ctx,
        Kind::Note,
        Target::reversal(&user),
        text,
        None,
        None,
        0,
    )
    .await
}

#[derive(Debug, poise::Modal)]
#[name = "Moderate member"]
struct ModerateModal {
    #[name = "Action: warn, timeout, kick, ban, mute, note…"]
    #[max_length = 12]
    action: String,
    #[name = "Duration (timeout, ban, quarantine), e.g. 1h or 7d"]
    #[max_length = 10]
    duration: Option<String>,
    #[name = "Reason (they are told, except for a note)"]
    #[paragraph]
    #[max_length = 1000]
    reason: String,
}

/// The "Moderate member" context menu: pick the action in a form
#[poise::command(
    context_menu_command = "Moderate member",
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn moderate_member(ctx: Context<'_>, user: User) -> Result<(), CommandError> {
    let poise::Context::Application(app) = ctx else {
        return Ok(());
    };
    let Some(form) = poise::execute_modal::<_, _, ModerateModal>(
        app,
        None,
        Some(std::time::Duration::from_secs(600)),
    )
    .await?
    else {
        return Ok(());
    };
    let kind = match form.action.trim().to_lowercase().as_str() {
        "warn" => Kind::Warn,
        "timeout" => Kind::Timeout,
        "kick" => Kind::Kick,
        "ban" => Kind::Ban,
        "quarantine" => Kind::Quarantine,
        "mute" => Kind::Mute,
        "note" => Kind::Note,
        other => {
            return Err(CommandError::User(format!(
                "`{other}` is not an action here: use warn, timeout, kick, ban, quarantine, mute or note."
            )));
        }
    };
    let target = if kind == Kind::Note {
        Target::reversal(&user)
    } else {
        Target::user(&user)
    };
    act(ctx, kind, target, form.reason, form.duration, None, 0).await
}

/// Who a sanction is for, and whether their rank must be checked.
struct Target {
    id: UserId,
    /// Their roles when they are a member (resolved by Discord with the command).
    roles: Option<Vec<RoleId>>,
    checked: bool,
}

impl Target {
    fn member(m: &Member) -> Target {
        Target {
            id: m.user.id,
            roles: Some(m.roles.clone()),
            checked: true,
        }
    }

    /// A user who may or may not be a member; their rank is checked if they are.
    fn user(u: &User) -> Target {
        Target {
            id: u.id,
            roles: None,
            checked: true,
        }
    }

    /// Lifting a sanction or writing a note acts against nobody's rank.
    fn reversal(u: &User) -> Target {
        Target {
            id: u.id,
            roles: None,
            checked: false,
        }
    }
}

/// The ranks involved, from Discord's cache (and the command's resolved data).
fn facts(ctx: Context<'_>, target: &Target) -> Result<Facts, CommandError> {
    let guild = guild(ctx)?;
    rank_facts(
        ctx.serenity_context().cache.as_ref(),
        guild,
        ctx.author().id,
        author_roles(ctx).as_deref(),
        target.id,
        target.roles.as_deref(),
    )
}

/// The ranks of a moderator and a target in `guild`, from Discord's cache; the roles
/// an interaction carries are preferred to the cache's.
pub(super) fn rank_facts(
    cache: &serenity::all::Cache,
    guild: serenity::all::GuildId,
    moderator: UserId,
    moderator_roles: Option<&[RoleId]>,
    target: UserId,
    target_roles: Option<&[RoleId]>,
) -> Result<Facts, CommandError> {
    let me = cache.current_user().id;
    let guild = cache.guild(guild).ok_or_else(|| {
        CommandError::User("I can't see this server's roles yet; try again in a moment.".into())
    })?;
    let top = |roles: &[RoleId]| {
        roles
            .iter()
            .filter_map(|r| guild.roles.get(r))
            .map(|r| i64::from(r.position))
            .max()
            .unwrap_or(0)
    };
    let cached = |user: UserId| guild.members.get(&user).map(|m| top(&m.roles));
    Ok(Facts {
        target_is_owner: target == guild.owner_id,
        target_is_bot_itself: target == me,
        target_is_moderator_itself: target == moderator,
        target_top: target_roles.map(top).or_else(|| cached(target)),
        moderator_top: moderator_roles
            .map(top)
            .or_else(|| cached(moderator))
            .unwrap_or(0),
        moderator_is_owner: moderator == guild.owner_id,
        bot_top: cached(me).unwrap_or(0),
    })
}

/// The moderator's roles as the interaction carries them.
fn author_roles(ctx: Context<'_>) -> Option<Vec<RoleId>> {
    match ctx {
        poise::Context::Application(a) => a.interaction.member.as_ref().map(|m| m.roles.clone()),
        poise::Context::Prefix(_) => None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn act(
    ctx: Context<'_>,
    kind: Kind,
    target: Target,
    reason: String,
    duration: Option<String>,
    evidence: Option<String>,
    delete_message_secs: u32,
) -> Result<(), CommandError> {
    let duration_secs = duration
        .filter(|d| !d.trim().is_empty())
        .map(|d| parse_duration(&d).map_err(|e| CommandError::User(e.0)))
        .transpose()?
        .map(|d| i64::try_from(d).unwrap_or(i64::MAX));
    let facts = if target.checked {
        Some(facts(ctx, &target)?)
    } else {
        None
    };
    let evidence = evidence
        .map(|e| e.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let sanction = Sanction {
        guild: guild(ctx)?,
        kind,
        target: target.id,
        moderator: ctx.author().id,
        reason,
        evidence,
        duration_secs,
        delete_message_secs,
        facts,
        correlation_id: Some(format!("interaction:{}", ctx.id())),
    };
    let case = moderation::sanction(&ctx.data().pool, sanction).await?;
    let duration = case
        .duration_secs
        .map(|d| format!(" for {}", format_duration(u64::try_from(d).unwrap_or(0))))
        .unwrap_or_default();
    let told = if kind.tells_member() {
        " They are told by DM."
    } else {
        ""
    };
    reply(
        ctx,
        format!(
            "Case #{}: {} {}{duration}.{told}",
            case.number,
            case.target.mention(),
            kind.verb()
        ),
    )
    .await
}
