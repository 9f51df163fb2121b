//! `/automod`: moderators manage the server's automod rules (Manage Server, or a
//! moderator role from `/setup`, checked on the server side), try text against them,
//! read recent hits, and export or import the rules as a file. Every reply is
//! ephemeral; a change applies to the next message.

use std::fmt::Write as _;

use serenity::all::{Attachment, CreateAttachment, Mentionable, User};

use crate::automod::normalize::Normalization;
use crate::automod::options::{self, Kind, Options};
use crate::automod::rules::{PhraseMode, RuleSpec};
use crate::automod::{self, Change, Format, StoredRule};

use super::{CommandError, Context, guild, reply, reply_with_file};

/// Automod rules, tests and hits (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_MESSAGES",
    check = "super::checks::moderator",
    subcommands("rule", "test", "log", "export", "import"),
    subcommand_required
)]
pub async fn automod(_: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

/// Add, list, show, edit, remove, enable or disable rules
#[poise::command(
    slash_command,
    guild_only,
    subcommands("add", "list", "show", "edit", "remove", "enable", "disable"),
    subcommand_required
)]
async fn rule(_: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
enum TriggerChoice {
    #[name = "phrases"]
    Phrases,
    #[name = "regex"]
    Regex,
    #[name = "banned links"]
    BlockLinks,
    #[name = "allowed links only"]
    AllowLinks,
    #[name = "invites to other servers"]
    Invites,
    #[name = "mention spam"]
    Mentions,
    #[name = "flood"]
    Flood,
    #[name = "duplicates"]
    Duplicates,
    #[name = "caps"]
    Caps,
    #[name = "attachments"]
    Attachments,
    #[name = "new account"]
    NewAccount,
    #[name = "new member"]
    NewMember,
}

impl From<TriggerChoice> for Kind {
    fn from(c: TriggerChoice) -> Kind {
        match c {
            TriggerChoice::Phrases => Kind::Phrases,
            TriggerChoice::Regex => Kind::Regex,
            TriggerChoice::BlockLinks => Kind::BlockLinks,
            TriggerChoice::AllowLinks => Kind::AllowLinks,
            TriggerChoice::Invites => Kind::Invites,
            TriggerChoice::Mentions => Kind::Mentions,
            TriggerChoice::Flood => Kind::Flood,
            TriggerChoice::Duplicates => Kind::Duplicates,
            TriggerChoice::Caps => Kind::Caps,
            TriggerChoice::Attachments => Kind::Attachments,
            TriggerChoice::NewAccount => Kind::NewAccount,
            TriggerChoice::NewMember => Kind::NewMember,
        }
    }
}

#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
enum MatchChoice {
    #[name = "whole words"]
    WholeWord,
    #[name = "anywhere (substring)"]
    Substring,
    #[name = "wildcards (*)"]
    Wildcard,
}

impl From<MatchChoice> for PhraseMode {
    fn from(c: MatchChoice) -> PhraseMode {
        match c {
            MatchChoice::WholeWord => PhraseMode::WholeWord,
            MatchChoice::Substring => PhraseMode::Substring,
            MatchChoice::Wildcard => PhraseMode::Wildcard,
        }
    }
}

#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
enum NormalizeChoice {
    #[name = "none (exact text)"]
    None,
    #[name = "standard (case, accents, look-alikes, zero-width)"]
    Standard,
    #[name = "strict (also leetspeak, separators, repeats)"]
    Strict,
}

impl From<NormalizeChoice> for Normalization {
    fn from(c: NormalizeChoice) -> Normalization {
        match c {
            NormalizeChoice::None => Normalization::None,
            NormalizeChoice::Standard => Normalization::Standard,
            NormalizeChoice::Strict => Normalization::Strict,
        }
    }
}

#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
enum FormatChoice {
    #[name = "JSON"]
    Json,
    #[name = "TOML"]
    Toml,
}

/// Add a rule
#[poise::command(slash_command, guild_only)]
#[allow(clippy::too_many_arguments)]
async fn add(
    ctx: Context<'_>,
    #[description = "A short name: letters, digits, - and _"]
    #[max_length = 64]
    name: String,
    #[description = "What sets it off"] trigger: TriggerChoice,
    #[description = "Phrases, a regex, domains, or a count like 5/10s (depends on the trigger)"]
    #[max_length = 6000]
    value: Option<String>,
    #[description = "What to do, e.g. `delete, timeout 10m, alert` (default: delete)"]
    actions: Option<String>,
    #[description = "How phrases match (default: whole words)"]
    #[rename = "match"]
    match_mode: Option<MatchChoice>,
    #[description = "Evasion normalisation for phrases and regexes (default: standard)"]
    normalize: Option<NormalizeChoice>,
    #[description = "Only in these channels, e.g. #general #memes"] channels: Option<String>,
    #[description = "Roles it never applies to, e.g. @Staff"] exempt_roles: Option<String>,
    #[description = "Channels it never applies to"] exempt_channels: Option<String>,
    #[description = "Hits within a window that escalate, e.g. `3/1h timeout 1h`"]
    escalation: Option<String>,
    #[description = "Record what would happen, do nothing"] dry_run: Option<bool>,
) -> Result<(), CommandError> {
    let options = Options {
        mode: match_mode.map(Into::into),
        normalize: normalize.map(Into::into),
        ..texts(
            value,
            actions,
            [channels, exempt_roles, exempt_channels],
            escalation,
            dry_run,
        )
    };
    let spec = options::build(&name, trigger.into(), options).map_err(user)?;
    let app = ctx.data();
    let spec = automod::add_rule(&app.pool, &app.automod, &change(ctx)?, spec).await?;
    reply(
        ctx,
        format!(
            "Added. It applies from the next message.\n{}",
            summary(&spec)
        ),
    )
    .await
}

/// Change parts of a rule (its trigger kind stays)
#[poise::command(slash_command, guild_only)]
#[allow(clippy::too_many_arguments)]
async fn edit(
    ctx: Context<'_>,
    #[description = "The rule's name"] name: String,
    #[description = "New phrases, regex, domains or count (replaces the old)"]
    #[max_length = 6000]
    value: Option<String>,
    #[description = "New actions, e.g. `delete, warn`"] actions: Option<String>,
    #[description = "How phrases match"]
    #[rename = "match"]
    match_mode: Option<MatchChoice>,
    #[description = "Evasion normalisation"] normalize: Option<NormalizeChoice>,
    #[description = "Only in these channels (replaces the old list)"] channels: Option<String>,
    #[description = "Exempt roles (replaces the old list)"] exempt_roles: Option<String>,
    #[description = "Exempt channels (replaces the old list)"] exempt_channels: Option<String>,
    #[description = "e.g. `3/1h timeout 1h`, or `none`"] escalation: Option<String>,
    #[description = "Record only, do nothing"] dry_run: Option<bool>,
) -> Result<(), CommandError> {
    let options = Options {
        mode: match_mode.map(Into::into),
        normalize: normalize.map(Into::into),
        ..texts(
            value,
            actions,
            [channels, exempt_roles, exempt_channels],
            escalation,
            dry_run,
        )
    };
    let app = ctx.data();
    let spec = automod::update_rule(&app.pool, &app.automod, &change(ctx)?, &name, |s| {
        options::edit(s, options)
    })
    .await?;
    reply(
        ctx,
        format!(
            "Saved. It applies from the next message.\n{}",
            summary(&spec)
        ),
    )
    .await
}

/// List the rules
#[poise::command(slash_command, guild_only)]
async fn list(ctx: Context<'_>) -> Result<(), CommandError> {
    let rules = automod::list_rules(&ctx.data().pool, guild(ctx)?).await?;
    if rules.is_empty() {
        return reply(
            ctx,
            "No automod rules yet. `/automod rule add` makes one.".into(),
        )
        .await;
    }
    let mut out = format!("**Automod rules** ({})\n", rules.len());
    for r in &rules {
        let line = format!("{}\n", summary(&r.spec));
        if out.len() + line.len() > 1900 {
            out.push_str("… (`/automod export` has them all)");
            break;
        }
        out.push_str(&line);
    }
    reply(ctx, out).await
}

/// Show one rule in full
#[poise::command(slash_command, guild_only)]
async fn show(
    ctx: Context<'_>,
    #[description = "The rule's name"] name: String,
) -> Result<(), CommandError> {
    let StoredRule {
        spec, updated_at, ..
    } = automod::rule(&ctx.data().pool, guild(ctx)?, &name).await?;
    let json = serde_json::to_string_pretty(&spec).unwrap_or_default();
    let body: String = json.chars().take(1700).collect();
    let more = if body.len() < json.len() {
        "\n… (`/automod export` has the whole rule)"
    } else {
        ""
    };
    let text = format!(
        "{}\nLast changed <t:{}:R>\n```json\n{body}\n```{more}",
        summary(&spec),
        updated_at.timestamp()
    );
    reply(ctx, text).await
}

/// Remove a rule
#[poise::command(slash_command, guild_only)]
async fn remove(
    ctx: Context<'_>,
    #[description = "The rule's name"] name: String,
) -> Result<(), CommandError> {
    let app = ctx.data();
    let spec = automod::remove_rule(&app.pool, &app.automod, &change(ctx)?, &name).await?;
    reply(ctx, format!("Removed rule `{}`.", spec.name)).await
}

/// Turn a rule on
#[poise::command(slash_command, guild_only)]
async fn enable(
    ctx: Context<'_>,
    #[description = "The rule's name"] name: String,
) -> Result<(), CommandError> {
    set_enabled(ctx, name, true).await
}

/// Turn a rule off (it is kept)
#[poise::command(slash_command, guild_only)]
async fn disable(
    ctx: Context<'_>,
    #[description = "The rule's name"] name: String,
) -> Result<(), CommandError> {
    set_enabled(ctx, name, false).await
}

async fn set_enabled(ctx: Context<'_>, name: String, enabled: bool) -> Result<(), CommandError> {
    let app = ctx.data();
    let spec = automod::update_rule(&app.pool, &app.automod, &change(ctx)?, &name, |s| {
        Ok(RuleSpec {
            enabled,
            ..s.clone()
        })
    })
    .await?;
    let state = if enabled { "on" } else { "off" };
    reply(ctx, format!("Rule `{}` is {state}.", spec.name)).await
}

/// Which rules would fire on a text, after which normalisation, and what they would do
#[poise::command(slash_command, guild_only)]
async fn test(
    ctx: Context<'_>,
    #[description = "The text to try"]
    #[max_length = 2000]
    text: String,
) -> Result<(), CommandError> {
    let report = automod::test_text(&ctx.data().pool, guild(ctx)?, &text).await?;
    let mut out = String::new();
    if report.hits.is_empty() {
        out.push_str("No rule fires on that text.\n");
    } else {
        let _ = writeln!(out, "**{} rule(s) would fire:**", report.hits.len());
        for h in &report.hits {
            let view = h
                .view
                .map(|v| format!(" in the {} view", v.as_str()))
                .unwrap_or_default();
            let mut notes = Vec::new();
            if h.dry_run {
                notes.push("dry run");
            }
            if !h.enabled {
                notes.push("disabled");
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            let _ = writeln!(
                out,
                "• `{}`: {}{view} → {}{notes}",
                h.rule, h.evidence, h.actions
            );
        }
    }
    out.push_str("**How I read it:**\n");
    for (level, view) in &report.views {
        let shown: String = view.chars().take(300).collect();
        let _ = writeln!(out, "{}: `{}`", level.as_str(), shown.replace('`', "'"));
    }
    out.push_str(
        "_Channels, exemptions and counting rules (flood, duplicates) are not applied in a test._",
    );
    reply(ctx, out.chars().take(1990).collect()).await
}

/// Recent automod hits
#[poise::command(slash_command, guild_only)]
async fn log(
    ctx: Context<'_>,
    #[description = "Only this member's hits"] member: Option<User>,
    #[description = "How many (default 10)"]
    #[min = 1]
    #[max = 25]
    count: Option<i64>,
) -> Result<(), CommandError> {
    let hits = automod::recent_hits(
        &ctx.data().pool,
        guild(ctx)?,
        member.as_ref().map(|m| m.id),
        count.unwrap_or(10),
    )
    .await?;
    if hits.is_empty() {
        return reply(ctx, "No automod hits recorded.".into()).await;
    }
    let g = guild(ctx)?;
    let mut out = String::from("**Recent automod hits**\n");
    for h in &hits {
        let mut notes = Vec::new();
        if h.dry_run {
            notes.push("dry run");
        }
        if h.escalated {
            notes.push("escalated");
        }
        if h.false_positive {
            notes.push("false positive");
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        let line = format!(
            "#{} <t:{}:R> `{}` {} in <#{}>: {} → {}{notes} [jump](https://discord.com/channels/{g}/{}/{})\n",
            h.id,
            h.created_at.timestamp(),
            h.rule_name,
            serenity::all::UserId::new(h.user_id).mention(),
            h.channel_id,
            h.evidence.as_deref().unwrap_or("(erased)"),
            h.actions.as_str().unwrap_or_default(),
            h.channel_id,
            h.message_id,
        );
        if out.len() + line.len() > 1950 {
            break;
        }
        out.push_str(&line);
    }
    reply(ctx, out).await
}

/// Download the rules as a file (to keep, edit or import elsewhere)
#[poise::command(slash_command, guild_only)]
async fn export(
    ctx: Context<'_>,
    #[description = "File format (default JSON)"] format: Option<FormatChoice>,
) -> Result<(), CommandError> {
    let format = match format {
        Some(FormatChoice::Toml) => Format::Toml,
        _ => Format::Json,
    };
    let text = automod::export(&ctx.data().pool, guild(ctx)?, format).await?;
    let file = CreateAttachment::bytes(
        text.into_bytes(),
        format!("automod-rules.{}", format.extension()),
    );
    reply_with_file(
        ctx,
        "Your automod rules. `/automod import` takes this file back.".into(),
        file,
    )
    .await
}

/// Import rules from a JSON or TOML file (checked whole before anything changes)
#[poise::command(slash_command, guild_only)]
async fn import(
    ctx: Context<'_>,
    #[description = "A .json or .toml rules file, as /automod export writes"] file: Attachment,
    #[description = "Also remove the rules the file does not name (default: keep them)"]
    replace_all: Option<bool>,
) -> Result<(), CommandError> {
    let format = Format::from_filename(&file.filename).ok_or_else(|| {
        CommandError::User(format!(
            "`{}` is neither a .json nor a .toml file.",
            file.filename
        ))
    })?;
    let text = download(ctx, &file).await?;
    let app = ctx.data();
    let report = automod::import(
        &app.pool,
        &app.automod,
        &change(ctx)?,
        &text,
        format,
        replace_all.unwrap_or(false),
    )
    .await?;
    reply(
        ctx,
        format!(
            "Imported: {} added, {} changed, {} unchanged, {} removed. They apply from the next message.",
            report.added, report.updated, report.unchanged, report.removed
        ),
    )
    .await
}

/// The attachment's text, fetched only from Discord's CDN (or the configured API base).
async fn download(ctx: Context<'_>, file: &Attachment) -> Result<String, CommandError> {
    if file.size as usize > automod::exchange_limit() {
        return Err(CommandError::User(format!(
            "That file is {} KiB; the limit is {} KiB.",
            file.size / 1024,
            automod::exchange_limit() / 1024
        )));
    }
    let api_base = ctx.data().config.discord.api_base.as_deref();
    if !from_discord(&file.url, api_base) {
        return Err(CommandError::User(
            "I only read files uploaded to Discord.".into(),
        ));
    }
    let bytes = file
        .download()
        .await
        .map_err(|e| CommandError::User(format!("I couldn't fetch that file ({e}); try again.")))?;
    String::from_utf8(bytes).map_err(|_| CommandError::User("That file is not UTF-8 text.".into()))
}

/// Whether `url` is on Discord's attachment hosts or the configured API base's host.
fn from_discord(url: &str, api_base: Option<&str>) -> bool {
    let host = |u: &str| {
        u.split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or_default().to_owned())
    };
    let Some(file_host) = host(url) else {
        return false;
    };
    ["cdn.discordapp.com", "media.discordapp.net"].contains(&file_host.as_str())
        || api_base.and_then(host).is_some_and(|h| h == file_host)
}

fn summary(spec: &RuleSpec) -> String {
    let mut flags = Vec::new();
    if !spec.enabled {
        flags.push("off".to_owned());
    }
    if spec.dry_run {
        flags.push("dry run".to_owned());
    }
    if let Some(e) = &spec.escalation {
        flags.push(format!(
            "{} hits in {} → {}",
            e.hits,
            automod::rules::format_duration(u64::from(e.within_secs)),
            e.actions
                .iter()
                .map(|a| a.describe())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", flags.join("; "))
    };
    let actions: Vec<String> = spec.actions.iter().map(|a| a.describe()).collect();
    format!(
        "• `{}`: {} → {}{flags}",
        spec.name,
        spec.trigger.kind().replace('_', " "),
        if actions.is_empty() {
            "log".to_owned()
        } else {
            actions.join(", ")
        }
    )
}

/// The text options `add` and `edit` share; the scope lists are channels, exempt
/// roles and exempt channels, in that order.
fn texts(
    value: Option<String>,
    actions: Option<String>,
    [channels, exempt_roles, exempt_channels]: [Option<String>; 3],
    escalation: Option<String>,
    dry_run: Option<bool>,
) -> Options {
    Options {
        value,
        actions,
        channels,
        exempt_roles,
        exempt_channels,
        escalation,
        dry_run,
        ..Options::default()
    }
}

fn user(e: automod::rules::Invalid) -> CommandError {
    CommandError::User(e.0)
}

fn change(ctx: Context<'_>) -> Result<Change, CommandError> {
    Ok(Change {
        guild: guild(ctx)?,
        actor: ctx.author().id,
        correlation_id: Some(format!("interaction:{}", ctx.id())),
    })
}

#[cfg(test)]
mod tests {
    use super::from_discord;

    #[test]
    fn files_are_read_from_discord_only() {
        assert!(from_discord(
            "https://cdn.discordapp.com/attachments/1/2/rules.json",
            None
        ));
        assert!(!from_discord("http://169.254.169.254/latest", None));
        assert!(from_discord(
            "http://127.0.0.1:4000/attachments/1/2/r.json",
            Some("http://127.0.0.1:4000")
        ));
        assert!(!from_discord(
            "http://127.0.0.1:5000/x",
            Some("http://127.0.0.1:4000")
        ));
    }
}
