//! `/report` and the "Report message" context menu (any member; the receipt is
//! ephemeral and the reported member is never told who reported), and `/reports mute`
//! (moderators: pause a bad-faith reporter). Reports are worked from their post in the
//! admin channel (`commands/components.rs`).

use chrono::{Duration, Utc};
use serenity::all::{Message, User};

use crate::automod::rules::parse_duration;
use crate::moderation::reports::{self, Category, Filed, NewReport};

use super::{CommandError, Context, guild, reply};

#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
enum CategoryChoice {
    #[name = "scam"]
    Scam,
    #[name = "harassment"]
    Harassment,
    #[name = "coercion"]
    Coercion,
    #[name = "hate"]
    Hate,
    #[name = "doxxing"]
    Doxxing,
    #[name = "unsafe"]
    Unsafe,
    #[name = "spam"]
    Spam,
    #[name = "other"]
    Other,
}

impl From<CategoryChoice> for Category {
    fn from(c: CategoryChoice) -> Category {
        match c {
            CategoryChoice::Scam => Category::Scam,
            CategoryChoice::Harassment => Category::Harassment,
            CategoryChoice::Coercion => Category::Coercion,
            CategoryChoice::Hate => Category::Hate,
            CategoryChoice::Doxxing => Category::Doxxing,
            CategoryChoice::Unsafe => Category::Unsafe,
            CategoryChoice::Spam => Category::Spam,
            CategoryChoice::Other => Category::Other,
        }
    }
}

/// Report a member to the moderators (they won't learn it was you)
#[poise::command(slash_command, guild_only)]
pub async fn report(
    ctx: Context<'_>,
    #[description = "Who"] member: User,
    #[description = "What kind of problem"] category: CategoryChoice,
    #[description = "What happened"]
    #[max_length = 1000]
    reason: String,
) -> Result<(), CommandError> {
    let filed = reports::file(
        &ctx.data().pool,
        NewReport {
            guild: guild(ctx)?,
            reporter: ctx.author().id,
            target: member.id,
            channel: None,
            message: None,
            category: category.into(),
            reason,
        },
    )
    .await?;
    reply(ctx, receipt(filed)).await
}

#[derive(Debug, poise::Modal)]
#[name = "Report message"]
struct ReportModal {
    #[name = "What's wrong with it?"]
    #[paragraph]
    #[max_length = 1000]
    reason: String,
    #[name = "Category: scam, harassment, hate, spam, other…"]
    #[max_length = 20]
    category: Option<String>,
}

/// Report this message to the moderators
#[poise::command(context_menu_command = "Report message", guild_only)]
pub async fn report_message(ctx: Context<'_>, message: Message) -> Result<(), CommandError> {
    let poise::Context::Application(app) = ctx else {
        return Ok(());
    };
    let Some(form) = poise::execute_modal::<_, _, ReportModal>(
        app,
        None,
        Some(std::time::Duration::from_secs(600)),
    )
    .await?
    else {
        return Ok(());
    };
    let category = match form.category.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => Category::Other,
        Some(text) => Category::parse(&text.to_lowercase()).ok_or_else(|| {
            CommandError::User(format!(
                "`{text}` is not a category: use scam, harassment, coercion, hate, doxxing, unsafe, spam or other."
            ))
        })?,
    };
    let filed = reports::file(
        &ctx.data().pool,
        NewReport {
            guild: guild(ctx)?,
            reporter: ctx.author().id,
            target: message.author.id,
            channel: Some(message.channel_id),
            message: Some(message.id),
            category,
            reason: form.reason,
        },
    )
    .await?;
    reply(ctx, receipt(filed)).await
}

fn receipt(filed: Filed) -> String {
    match filed {
        Filed::New(n) => format!(
            "Thanks: report #{n} is with the moderators. The member won't learn who reported them."
        ),
        Filed::Merged(n) => format!(
            "Thanks: that message was already reported (report #{n}); your report was added to it."
        ),
        Filed::Already(n) => format!("You already reported that message (report #{n})."),
    }
}

/// Reports (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator",
    subcommands("mute"),
    subcommand_required
)]
pub async fn reports(_: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

/// Pause a member's reports (for reports made in bad faith)
#[poise::command(slash_command, guild_only)]
async fn mute(
    ctx: Context<'_>,
    #[description = "The reporter"] member: User,
    #[description = "For how long, e.g. 7d"] duration: String,
) -> Result<(), CommandError> {
    let secs = parse_duration(&duration).map_err(|e| CommandError::User(e.0))?;
    let until = Utc::now()
        + Duration::seconds(
            i64::try_from(secs)
                .unwrap_or(i64::MAX / 2)
                .min(3_650 * 86_400),
        );
    reports::mute_reporter(
        &ctx.data().pool,
        guild(ctx)?,
        member.id,
        ctx.author().id,
        until,
    )
    .await?;
    reply(
        ctx,
        format!(
            "Their reports are paused until <t:{}:f>.",
            until.timestamp()
        ),
    )
    .await
}
