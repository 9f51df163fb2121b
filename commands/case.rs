//! `/case show|list|search|edit|hide|export` and `/history`: moderators read, search,
//! correct and export the case record. Edits are kept as history; hidden cases stay
//! on record but leave lists unless asked for. Replies are ephemeral.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serenity::all::{CreateAttachment, Mentionable, User};

use crate::automod::rules::{format_duration, parse_duration};
use crate::moderation::{self, Case, Filter, Kind};

use super::{CommandError, Context, guild, reply, reply_with_file};

/// How many cases one reply lists (Discord caps a message at 2,000 characters).
const SHOWN: i64 = 15;
/// The most cases one export holds.
const EXPORTED: i64 = 10_000;

/// Moderation cases: show, list, search, edit, hide, export (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator",
    subcommands("show", "list", "search", "edit", "hide", "export"),
    subcommand_required
)]
pub async fn case(_: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
enum KindChoice {
    #[name = "note"]
    Note,
    #[name = "warn"]
    Warn,
    #[name = "timeout"]
    Timeout,
    #[name = "kick"]
    Kick,
    #[name = "ban"]
    Ban,
    #[name = "softban"]
    Softban,
    #[name = "unban"]
    Unban,
    #[name = "untimeout"]
    Untimeout,
    #[name = "quarantine"]
    Quarantine,
    #[name = "unquarantine"]
    Unquarantine,
    #[name = "mute"]
    Mute,
    #[name = "unmute"]
    Unmute,
}

impl From<KindChoice> for Kind {
    fn from(c: KindChoice) -> Kind {
        match c {
            KindChoice::Note => Kind::Note,
            KindChoice::Warn => Kind::Warn,
            KindChoice::Timeout => Kind::Timeout,
            KindChoice::Kick => Kind::Kick,
            KindChoice::Ban => Kind::Ban,
            KindChoice::Softban => Kind::Softban,
            KindChoice::Unban => Kind::Unban,
            KindChoice::Untimeout => Kind::Untimeout,
            KindChoice::Quarantine => Kind::Quarantine,
            KindChoice::Unquarantine => Kind::Unquarantine,
            KindChoice::Mute => Kind::Mute,
            KindChoice::Unmute => Kind::Unmute,
        }
    }
}

/// One case in full, with its edit history
#[poise::command(slash_command, guild_only)]
async fn show(
    ctx: Context<'_>,
    #[description = "The case number"]
    #[min = 1]
    number: i32,
) -> Result<(), CommandError> {
    let (case, edits) = moderation::show(&ctx.data().pool, guild(ctx)?, number).await?;
    let mut out = format!(
        "**Case #{}: {}** ({})\n**Member:** {}\n**Moderator:** {}\n**Reason:** {}\n**When:** <t:{}:f>",
        case.number,
        case.kind,
        case.status,
        case.target.mention(),
        case.moderator.mention(),
        case.reason,
        case.created_at.timestamp()
    );
    if let (Some(d), Some(until)) = (case.duration_secs, case.expires_at) {
        let _ = write!(
            out,
            "\n**Duration:** {} (until <t:{}:f>)",
            format_duration(u64::try_from(d).unwrap_or(0)),
            until.timestamp()
        );
    }
    if !case.evidence.is_empty() {
        let _ = write!(out, "\n**Evidence:** {}", case.evidence.join(" "));
    }
    let _ = write!(out, "\n**DM:** {}", case.dm);
    if case.hidden {
        out.push_str("\n_Hidden from lists and history._");
    }
    for e in &edits {
        let _ = write!(
            out,
            "\n• <t:{}:R> {} changed {}: {} → {}",
            e.edited_at.timestamp(),
            e.editor.mention(),
            e.field,
            e.before.as_deref().unwrap_or("—"),
            e.after.as_deref().unwrap_or("—")
        );
    }
    reply(ctx, out.chars().take(1990).collect()).await
}

/// The latest cases, of one member when given
#[poise::command(slash_command, guild_only)]
async fn list(
    ctx: Context<'_>,
    #[description = "Only this member's cases"] member: Option<User>,
) -> Result<(), CommandError> {
    let filter = Filter {
        target: member.map(|m| m.id),
        limit: SHOWN,
        ..Filter::default()
    };
    let cases = moderation::search(&ctx.data().pool, guild(ctx)?, &filter).await?;
    reply(ctx, render(&cases, "No cases.")).await
}

/// Search cases by member, moderator, type and date range
#[poise::command(slash_command, guild_only)]
#[allow(clippy::too_many_arguments)]
async fn search(
    ctx: Context<'_>,
    #[description = "The member"] member: Option<User>,
    #[description = "The moderator"] moderator: Option<User>,
    #[description = "The type"]
    #[rename = "type"]
    kind: Option<KindChoice>,
    #[description = "From this day, e.g. 2026-11-01"] since: Option<String>,
    #[description = "Before this day, e.g. 2026-12-01"] until: Option<String>,
    #[description = "Include hidden cases"] hidden: Option<bool>,
) -> Result<(), CommandError> {
    let filter = filter(member, moderator, kind, since, until, hidden, SHOWN)?;
    let cases = moderation::search(&ctx.data().pool, guild(ctx)?, &filter).await?;
    reply(ctx, render(&cases, "No case matches.")).await
}

/// Change a case's reason or duration (the old values are kept)
#[poise::command(slash_command, guild_only)]
async fn edit(
    ctx: Context<'_>,
    #[description = "The case number"]
    #[min = 1]
    number: i32,
    #[description = "The new reason"]
    #[max_length = 1000]
    reason: Option<String>,
    #[description = "The new duration from when the case was made, e.g. 7d"] duration: Option<
        String,
    >,
    #[description = "Whether the member may appeal it"] appealable: Option<bool>,
) -> Result<(), CommandError> {
    let duration = duration
        .map(|d| parse_duration(&d).map_err(|e| CommandError::User(e.0)))
        .transpose()?
        .map(|d| i64::try_from(d).unwrap_or(i64::MAX));
    let case = moderation::edit(
        &ctx.data().pool,
        guild(ctx)?,
        ctx.author().id,
        number,
        reason,
        duration,
        appealable,
    )
    .await?;
    let appeals = if case.appealable {
        ""
    } else {
        " (not appealable)"
    };
    reply(ctx, format!("Saved{appeals}.\n{}", line(&case))).await
}

/// Hide a case from lists and history (or show it again)
#[poise::command(slash_command, guild_only)]
async fn hide(
    ctx: Context<'_>,
    #[description = "The case number"]
    #[min = 1]
    number: i32,
    #[description = "Hide it (default) or show it again"] hidden: Option<bool>,
) -> Result<(), CommandError> {
    let hidden = hidden.unwrap_or(true);
    let case = moderation::set_hidden(
        &ctx.data().pool,
        guild(ctx)?,
        ctx.author().id,
        number,
        hidden,
    )
    .await?;
    let state = if case.hidden { "hidden" } else { "visible" };
    reply(ctx, format!("Case #{} is {state}.", case.number)).await
}

/// Export matching cases as a JSON file
#[poise::command(slash_command, guild_only)]
async fn export(
    ctx: Context<'_>,
    #[description = "The member"] member: Option<User>,
    #[description = "The moderator"] moderator: Option<User>,
    #[description = "The type"]
    #[rename = "type"]
    kind: Option<KindChoice>,
    #[description = "From this day, e.g. 2026-11-01"] since: Option<String>,
    #[description = "Before this day"] until: Option<String>,
) -> Result<(), CommandError> {
    let filter = filter(member, moderator, kind, since, until, Some(true), EXPORTED)?;
    let cases = moderation::search(&ctx.data().pool, guild(ctx)?, &filter).await?;
    let file = CreateAttachment::bytes(moderation::export_json(&cases).into_bytes(), "cases.json");
    reply_with_file(ctx, format!("{} case(s).", cases.len()), file).await
}

/// A member's moderation history (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MODERATE_MEMBERS",
    check = "super::checks::moderator"
)]
pub async fn history(
    ctx: Context<'_>,
    #[description = "The member"] member: User,
) -> Result<(), CommandError> {
    let filter = Filter {
        target: Some(member.id),
        limit: SHOWN,
        ..Filter::default()
    };
    let cases = moderation::search(&ctx.data().pool, guild(ctx)?, &filter).await?;
    let empty = format!("{} has a clean record.", member.id.mention());
    reply(ctx, render(&cases, &empty)).await
}

fn filter(
    member: Option<User>,
    moderator: Option<User>,
    kind: Option<KindChoice>,
    since: Option<String>,
    until: Option<String>,
    hidden: Option<bool>,
    limit: i64,
) -> Result<Filter, CommandError> {
    Ok(Filter {
        target: member.map(|m| m.id),
        moderator: moderator.map(|m| m.id),
        kind: kind.map(Into::into),
        since: since.as_deref().map(day).transpose()?,
        until: until.as_deref().map(day).transpose()?,
        include_hidden: hidden.unwrap_or(false),
        limit,
    })
}

fn day(text: &str) -> Result<DateTime<Utc>, CommandError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| CommandError::User(format!("`{text}` is not a date like 2026-11-01.")))
}

fn line(c: &Case) -> String {
    let reason: String = c.reason.chars().take(80).collect();
    let duration = c
        .duration_secs
        .map(|d| format!(" {}", format_duration(u64::try_from(d).unwrap_or(0))))
        .unwrap_or_default();
    format!(
        "#{} <t:{}:d> **{}**{duration} {} by {} ({}): {reason}",
        c.number,
        c.created_at.timestamp(),
        c.kind,
        c.target.mention(),
        c.moderator.mention(),
        c.status
    )
}

fn render(cases: &[Case], empty: &str) -> String {
    if cases.is_empty() {
        return empty.to_owned();
    }
    let mut out = String::new();
    for c in cases {
        let l = line(c);
        if out.len() + l.len() > 1900 {
            out.push_str("… (`/case export` has them all)");
            break;
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}
