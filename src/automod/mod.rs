//! Automod: per-community rules evaluated on every message, in memory, against a
//! compiled rule set; only verdicts reach the database and the outbox. This module is
//! the domain's front door: loading a guild's rules into the [`Registry`], judging a
//! posted message, and the moderators' rule management, test, log, export/import and
//! false-positive feedback. Every rule change commits with its audit entry, then
//! every daemon reloads the guild's rules (NOTIFY on [`CHANNEL`]).

pub mod db;
pub mod engine;
#[cfg(test)]
mod evasion_tests;
mod exchange;
pub mod links;
pub mod normalize;
pub mod options;
pub mod registry;
pub mod rules;
pub mod verdict;
pub mod windows;
mod words;

use serde_json::json;
use serenity::all::{ChannelId, GuildId, MessageId, RoleId, UserId};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{self, Actor, NewEntry};
use crate::community;
pub use db::{HitRecord, StoredRule};
use engine::{CompileError, Message, RuleSet};
pub use exchange::{Format, ImportReport};
pub use registry::Registry;
use rules::{Invalid, RuleSpec};
pub use verdict::{FALSE_POSITIVE, Verdict};

/// The largest rules file `/automod import` reads.
pub fn exchange_limit() -> usize {
    exchange::MAX_FILE_BYTES
}

/// The channel a rule change is announced on (payload: the guild id).
pub const CHANNEL: &str = "guildops_automod";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Community(#[from] community::Error),
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("{0}")]
    Compile(#[from] CompileError),
    #[error("there is no automod rule called `{0}` here; `/automod rule list` shows them")]
    NoSuchRule(String),
    #[error("a rule called `{0}` exists already: pick another name or `/automod rule edit` it")]
    DuplicateName(String),
    #[error("there is no automod hit #{0} in this server")]
    NoSuchHit(i64),
    #[error("{0}")]
    Import(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Database(_) => false,
            Error::Community(e) => e.is_user_error(),
            _ => true,
        }
    }
}

/// A message as Discord delivered it, in the domain's terms.
#[derive(Debug, Clone)]
pub struct Posted<'a> {
    pub guild_id: GuildId,
    pub channel_id: ChannelId,
    pub message_id: MessageId,
    pub author: UserId,
    pub content: &'a str,
    pub roles: &'a [RoleId],
    pub mentions: u32,
    pub attachments: &'a [String],
    pub account_age_secs: Option<u64>,
    pub member_age_secs: Option<u64>,
}

/// Compiles stored rules. A rule that no longer compiles (stored by an older version
/// with other limits) is left out and logged, so one bad rule cannot switch off the rest.
fn compile_stored(stored: Vec<StoredRule>) -> RuleSet {
    let mut specs: Vec<(Uuid, RuleSpec)> = stored.into_iter().map(|r| (r.id, r.spec)).collect();
    loop {
        match RuleSet::compile(specs.clone()) {
            Ok(set) => return set,
            Err(e) => {
                tracing::error!(rule = %e.rule, error = %e.message, "stored automod rule does not compile; skipped");
                let before = specs.len();
                specs.retain(|(_, s)| s.name != e.rule);
                if specs.len() == before {
                    return RuleSet::default();
                }
            }
        }
    }
}

/// (Re)loads a guild's rules into the registry; returns how many are enabled.
#[tracing::instrument(skip_all, fields(guild.id = %guild))]
pub async fn load(pool: &PgPool, registry: &Registry, guild: GuildId) -> Result<usize, Error> {
    let (community, mut tx) = match community::begin(pool, guild).await {
        Ok(found) => found,
        // A guild with no community yet has no rules; remembering that keeps its
        // messages off the database until provisioning loads it for real.
        Err(community::Error::NotProvisioned) => {
            registry.install(guild, Uuid::nil(), RuleSet::default());
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    let stored = db::rules(&mut tx, community.id).await?;
    tx.commit().await?;
    let set = compile_stored(stored);
    let enabled = set.rules.len();
    registry.install(guild, community.id, set);
    Ok(enabled)
}

/// Judges a posted message. No database round trip unless a rule fires (or the guild's
/// rules were never loaded, once).
pub async fn on_message(
    pool: &PgPool,
    registry: &Registry,
    posted: &Posted<'_>,
) -> Result<Option<Verdict>, Error> {
    let rules = match registry.get(posted.guild_id) {
        Some(rules) => rules,
        None => {
            load(pool, registry, posted.guild_id).await?;
            match registry.get(posted.guild_id) {
                Some(rules) => rules,
                None => return Ok(None),
            }
        }
    };
    if rules.rules.is_empty() {
        return Ok(None);
    }
    let message = Message {
        content: posted.content,
        author: posted.author.get(),
        channel: posted.channel_id,
        roles: posted.roles,
        mentions: posted.mentions,
        attachments: posted.attachments,
        account_age_secs: posted.account_age_secs,
        member_age_secs: posted.member_age_secs,
        at_ms: registry.now_ms(),
    };
    let hits = rules.rules.evaluate(&message, &rules.windows);
    if hits.is_empty() {
        return Ok(None);
    }
    let incident = verdict::Incident {
        guild_id: posted.guild_id,
        channel_id: posted.channel_id,
        message_id: posted.message_id,
        author: posted.author,
    };
    Ok(Some(verdict::act(pool, &rules, &incident, &hits).await?))
}

/// Who changed rules, and in which request.
#[derive(Debug, Clone)]
pub struct Change {
    pub guild: GuildId,
    pub actor: UserId,
    pub correlation_id: Option<String>,
}

/// The rules after a change, checked together: the community limits and one compile
/// (so a bad regex is reported with its position before anything is saved).
fn check_set(specs: &[RuleSpec]) -> Result<(), Error> {
    rules::check_community_limits(specs)?;
    let numbered = specs.iter().cloned().map(|s| (Uuid::nil(), s)).collect();
    RuleSet::compile(numbered)?;
    Ok(())
}

async fn audit_change(
    conn: &mut sqlx::PgConnection,
    community_id: Uuid,
    change: &Change,
    action: &'static str,
    before: Option<&RuleSpec>,
    after: Option<&RuleSpec>,
) -> Result<(), sqlx::Error> {
    let name = after.or(before).map(|s| s.name.clone()).unwrap_or_default();
    let mut entry = NewEntry::new(
        community_id,
        Actor::User(change.actor),
        action,
        format!("automod_rule:{name}"),
    );
    entry.before = before.map(|s| json!(s));
    entry.after = after.map(|s| json!(s));
    entry.correlation_id = change.correlation_id.clone();
    audit::record(conn, entry).await?;
    Ok(())
}

/// After a committed change: this daemon reloads now (the next message sees it);
/// the others on NOTIFY.
async fn reload(pool: &PgPool, registry: &Registry, guild: GuildId) -> Result<(), Error> {
    load(pool, registry, guild).await.map(drop)
}

pub async fn add_rule(
    pool: &PgPool,
    registry: &Registry,
    change: &Change,
    spec: RuleSpec,
) -> Result<RuleSpec, Error> {
    spec.validate()?;
    let (community, mut tx) = community::begin(pool, change.guild).await?;
    let mut all: Vec<RuleSpec> = db::rules(&mut tx, community.id)
        .await?
        .into_iter()
        .map(|r| r.spec)
        .collect();
    if all.iter().any(|s| s.name.eq_ignore_ascii_case(&spec.name)) {
        return Err(Error::DuplicateName(spec.name));
    }
    all.push(spec.clone());
    check_set(&all)?;
    if !db::insert_rule(
        &mut tx,
        community.id,
        Uuid::now_v7(),
        &spec,
        change.actor.get(),
    )
    .await?
    {
        return Err(Error::DuplicateName(spec.name));
    }
    audit_change(
        &mut tx,
        community.id,
        change,
        "automod.rule_added",
        None,
        Some(&spec),
    )
    .await?;
    db::notify_changed(&mut tx, change.guild.get()).await?;
    tx.commit().await?;
    reload(pool, registry, change.guild).await?;
    Ok(spec)
}

/// Changes the rule `name` with `edit` (pure), checked with the rest of the set.
pub async fn update_rule(
    pool: &PgPool,
    registry: &Registry,
    change: &Change,
    name: &str,
    edit: impl FnOnce(&RuleSpec) -> Result<RuleSpec, Invalid>,
) -> Result<RuleSpec, Error> {
    let (community, mut tx) = community::begin(pool, change.guild).await?;
    let current = db::rule_for_update(&mut tx, community.id, name)
        .await?
        .ok_or_else(|| Error::NoSuchRule(name.to_owned()))?;
    let next = edit(&current.spec)?;
    next.validate()?;
    let all: Vec<RuleSpec> = db::rules(&mut tx, community.id)
        .await?
        .into_iter()
        .map(|r| {
            if r.id == current.id {
                next.clone()
            } else {
                r.spec
            }
        })
        .collect();
    check_set(&all)?;
    db::update_rule(&mut tx, community.id, current.id, &next, change.actor.get()).await?;
    audit_change(
        &mut tx,
        community.id,
        change,
        "automod.rule_changed",
        Some(&current.spec),
        Some(&next),
    )
    .await?;
    db::notify_changed(&mut tx, change.guild.get()).await?;
    tx.commit().await?;
    reload(pool, registry, change.guild).await?;
    Ok(next)
}

pub async fn remove_rule(
    pool: &PgPool,
    registry: &Registry,
    change: &Change,
    name: &str,
) -> Result<RuleSpec, Error> {
    let (community, mut tx) = community::begin(pool, change.guild).await?;
    let current = db::rule_for_update(&mut tx, community.id, name)
        .await?
        .ok_or_else(|| Error::NoSuchRule(name.to_owned()))?;
    db::delete_rule(&mut tx, community.id, current.id).await?;
    audit_change(
        &mut tx,
        community.id,
        change,
        "automod.rule_removed",
        Some(&current.spec),
        None,
    )
    .await?;
    db::notify_changed(&mut tx, change.guild.get()).await?;
    tx.commit().await?;
    reload(pool, registry, change.guild).await?;
    Ok(current.spec)
}

pub async fn list_rules(pool: &PgPool, guild: GuildId) -> Result<Vec<StoredRule>, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let rules = db::rules(&mut tx, community.id).await?;
    tx.commit().await?;
    Ok(rules)
}

pub async fn rule(pool: &PgPool, guild: GuildId, name: &str) -> Result<StoredRule, Error> {
    list_rules(pool, guild)
        .await?
        .into_iter()
        .find(|r| r.spec.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| Error::NoSuchRule(name.to_owned()))
}

/// One rule that would fire in `/automod test`.
#[derive(Debug, Clone)]
pub struct TestHit {
    pub rule: String,
    pub evidence: String,
    pub view: Option<normalize::Normalization>,
    pub actions: String,
    pub dry_run: bool,
    pub enabled: bool,
}

/// What `/automod test` shows: the text in each normalised view, and what fires.
#[derive(Debug, Clone)]
pub struct TestReport {
    pub views: Vec<(normalize::Normalization, String)>,
    pub hits: Vec<TestHit>,
}

/// Which rules (enabled or not) would fire on `text`, scope and counting windows
/// aside: a test judges the words, not who says them where.
pub async fn test_text(pool: &PgPool, guild: GuildId, text: &str) -> Result<TestReport, Error> {
    let stored = list_rules(pool, guild).await?;
    let enabled: std::collections::HashMap<Uuid, bool> =
        stored.iter().map(|r| (r.id, r.spec.enabled)).collect();
    let unscoped = stored
        .into_iter()
        .map(|mut r| {
            r.spec.scope = Default::default();
            r.spec.enabled = true;
            r
        })
        .collect();
    let set = compile_stored(unscoped);
    let message = Message {
        content: text,
        author: 0,
        channel: ChannelId::new(1),
        roles: &[],
        mentions: 0,
        attachments: &[],
        account_age_secs: None,
        member_age_secs: None,
        at_ms: 0,
    };
    let hits = set
        .evaluate(&message, &windows::Windows::default())
        .into_iter()
        .map(|h| {
            let r = &set.rules[h.rule];
            TestHit {
                rule: r.spec.name.clone(),
                evidence: set.evidence(&h),
                view: rules::view_of(&r.spec.trigger),
                actions: r
                    .spec
                    .actions
                    .iter()
                    .map(|a| a.describe())
                    .collect::<Vec<_>>()
                    .join(", "),
                dry_run: r.spec.dry_run,
                enabled: enabled.get(&r.id).copied().unwrap_or(true),
            }
        })
        .collect();
    let views = normalize::Normalization::ALL
        .into_iter()
        .map(|level| (level, normalize::view(level, text).text))
        .collect();
    Ok(TestReport { views, hits })
}

/// The latest hits (only `user`'s when given), newest first.
pub async fn recent_hits(
    pool: &PgPool,
    guild: GuildId,
    user: Option<UserId>,
    limit: i64,
) -> Result<Vec<HitRecord>, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let hits = db::hits(&mut tx, community.id, user.map(UserId::get), limit).await?;
    tx.commit().await?;
    Ok(hits)
}

/// How a false-positive click ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    Recorded { rule: String },
    AlreadyRecorded { by: UserId },
}

/// A moderator says hit `hit_id` was wrong: recorded (once) and audited; it no longer
/// counts towards escalation.
pub async fn mark_false_positive(
    pool: &PgPool,
    guild: GuildId,
    hit_id: i64,
    moderator: UserId,
) -> Result<Feedback, Error> {
    let (community, mut tx) = community::begin(pool, guild).await?;
    let (hit, by) = db::hit_for_update(&mut tx, community.id, hit_id)
        .await?
        .ok_or(Error::NoSuchHit(hit_id))?;
    if let Some(by) = by {
        return Ok(Feedback::AlreadyRecorded {
            by: UserId::new(by),
        });
    }
    db::mark_false_positive(&mut tx, community.id, hit_id, moderator.get()).await?;
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(moderator),
        "automod.false_positive",
        format!("automod_hit:{hit_id}"),
    );
    entry.after = Some(json!({"hit": hit_id, "rule": hit.rule_name, "feedback": "false_positive"}));
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(Feedback::Recorded {
        rule: hit.rule_name,
    })
}

/// Every rule, as a file an owner can keep, edit and import.
pub async fn export(pool: &PgPool, guild: GuildId, format: Format) -> Result<String, Error> {
    let specs: Vec<RuleSpec> = list_rules(pool, guild)
        .await?
        .into_iter()
        .map(|r| r.spec)
        .collect();
    exchange::render(&specs, format)
}

/// Imports a rules file: parsed, validated and compiled as a whole before anything
/// changes; then, in one transaction, rules are added or replaced by name (and, with
/// `replace_all`, the rules the file does not name are removed).
pub async fn import(
    pool: &PgPool,
    registry: &Registry,
    change: &Change,
    text: &str,
    format: Format,
    replace_all: bool,
) -> Result<ImportReport, Error> {
    let incoming = exchange::parse(text, format)?;
    let (community, mut tx) = community::begin(pool, change.guild).await?;
    let current = db::rules(&mut tx, community.id).await?;
    let plan = exchange::plan(&current, &incoming, replace_all);
    check_set(&plan.result)?;
    for spec in &plan.added {
        db::insert_rule(
            &mut tx,
            community.id,
            Uuid::now_v7(),
            spec,
            change.actor.get(),
        )
        .await?;
    }
    for (id, spec) in &plan.updated {
        db::update_rule(&mut tx, community.id, *id, spec, change.actor.get()).await?;
    }
    for id in &plan.removed {
        db::delete_rule(&mut tx, community.id, *id).await?;
    }
    let report = plan.report();
    let mut entry = NewEntry::new(
        community.id,
        Actor::User(change.actor),
        "automod.imported",
        "automod_rules".into(),
    );
    entry.before = Some(json!(current.iter().map(|r| &r.spec).collect::<Vec<_>>()));
    entry.after = Some(json!(plan.result));
    entry.correlation_id = change.correlation_id.clone();
    audit::record(&mut tx, entry).await?;
    db::notify_changed(&mut tx, change.guild.get()).await?;
    tx.commit().await?;
    reload(pool, registry, change.guild).await?;
    Ok(report)
}

/// Reloads a guild's rules whenever any daemon changes them. Runs until `stop`; a lost
/// connection is re-established and every loaded guild reloaded (a NOTIFY may have been
/// missed meanwhile).
pub async fn follow_changes(
    pool: PgPool,
    registry: std::sync::Arc<Registry>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "automod: cannot listen for rule changes; retrying");
                if sleep_or_stop(&stop).await {
                    return;
                }
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "automod: LISTEN failed; retrying");
            if sleep_or_stop(&stop).await {
                return;
            }
            continue;
        }
        for guild in registry.guilds() {
            if let Err(e) = load(&pool, &registry, guild).await {
                tracing::warn!(guild.id = %guild, error = %e, "automod: reloading rules failed");
            }
        }
        loop {
            let notification = tokio::select! {
                n = listener.try_recv() => n,
                () = stop.cancelled() => return,
            };
            match notification {
                Ok(Some(n)) => {
                    let Some(guild) = n.payload().parse::<u64>().ok().filter(|g| *g != 0) else {
                        continue;
                    };
                    if let Err(e) = load(&pool, &registry, GuildId::new(guild)).await {
                        tracing::warn!(guild.id = guild, error = %e, "automod: reloading rules failed");
                    }
                }
                // The connection dropped: reconnect and reload everything.
                Ok(None) | Err(_) => break,
            }
        }
    }
}

async fn sleep_or_stop(stop: &tokio_util::sync::CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(std::time::Duration::from_secs(2)) => false,
        () = stop.cancelled() => true,
    }
}
