//! What happens when rules fire on a message: in one transaction, each hit is recorded
//! (once per message and rule), escalation is decided from the member's recent hits,
//! the actions become outbox jobs, every hit gets an audit entry and a mod-log entry
//! with a jump link and a "false positive" button. Dry-run rules record what they
//! would have done and do nothing else. The message path only gets here when a rule
//! fired.

use chrono::{Duration, Utc};
use serde_json::json;
use serenity::all::{ChannelId, GuildId, Mentionable, MessageId, RoleId, UserId};
use sqlx::PgPool;

use super::db::{self, NewHit};
use super::engine::Hit;
use super::registry::GuildRules;
use super::rules::{Action, RuleSpec, format_duration};
use crate::audit::{self, Actor, NewEntry};
use crate::community::{self, Settings};
use crate::db::tenant;
use crate::outbox::{self, Button, Job, NewJob};

/// The message that set rules off.
#[derive(Debug, Clone, Copy)]
pub struct Incident {
    pub guild_id: GuildId,
    pub channel_id: ChannelId,
    pub message_id: MessageId,
    pub author: UserId,
}

impl Incident {
    pub fn jump_link(&self) -> String {
        format!(
            "https://discord.com/channels/{}/{}/{}",
            self.guild_id, self.channel_id, self.message_id
        )
    }
}

/// The effects one message earns, merged over every live (not dry-run) hit: a message
/// is deleted once, the longest timeout wins, each warning is sent once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub delete: bool,
    pub timeout_secs: Option<u64>,
    pub warnings: Vec<String>,
    pub quarantine: bool,
    pub alerts: Vec<String>,
}

impl Plan {
    pub fn add(&mut self, rule: &str, actions: &[Action], evidence: &str) {
        for action in actions {
            match action {
                Action::Delete => self.delete = true,
                Action::Timeout { secs } => {
                    self.timeout_secs = Some(self.timeout_secs.unwrap_or(0).max(*secs));
                }
                Action::Warn { message } => {
                    let text = match message {
                        Some(m) => format!("rule `{rule}`: {m}"),
                        None => format!("rule `{rule}`"),
                    };
                    if !self.warnings.contains(&text) {
                        self.warnings.push(text);
                    }
                }
                Action::Quarantine => self.quarantine = true,
                Action::Alert => self.alerts.push(format!("`{rule}` ({evidence})")),
                Action::Log => {}
            }
        }
    }
}

/// What was decided for one message, for logs and tests.
#[derive(Debug, Default)]
pub struct Verdict {
    pub recorded: Vec<i64>,
    pub plan: Plan,
}

fn describe(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "log".into();
    }
    actions
        .iter()
        .map(Action::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The actions a rule takes on this hit: its own, plus its escalation's when the
/// member reached the threshold within the window and has not been escalated in it.
async fn actions_for(
    conn: &mut sqlx::PgConnection,
    rules: &GuildRules,
    spec: &RuleSpec,
    author: UserId,
) -> Result<(Vec<Action>, bool), sqlx::Error> {
    let mut actions = spec.actions.clone();
    let Some(escalation) = &spec.escalation else {
        return Ok((actions, false));
    };
    let since = Utc::now() - Duration::seconds(i64::from(escalation.within_secs));
    let (hits, escalated) =
        db::recent_hits(conn, rules.community_id, &spec.name, author.get(), since).await?;
    if hits >= i64::from(escalation.hits) && !escalated {
        actions.extend(escalation.actions.iter().cloned());
        return Ok((actions, true));
    }
    Ok((actions, false))
}

#[tracing::instrument(skip_all, fields(guild.id = %incident.guild_id, user.id = %incident.author, message.id = %incident.message_id))]
pub async fn act(
    pool: &PgPool,
    rules: &GuildRules,
    incident: &Incident,
    hits: &[Hit],
) -> Result<Verdict, sqlx::Error> {
    let community_id = rules.community_id;
    let mut tx = tenant::begin(pool, community_id).await?;
    let settings = community::settings_in(&mut tx, community_id).await?;
    let mut verdict = Verdict::default();
    for hit in hits {
        let compiled = &rules.rules.rules[hit.rule];
        let spec = &compiled.spec;
        let evidence = rules.rules.evidence(hit);
        let new = NewHit {
            rule_id: compiled.id,
            rule_name: &spec.name,
            user_id: incident.author.get(),
            channel_id: incident.channel_id.get(),
            message_id: incident.message_id.get(),
            evidence: &evidence,
            actions: json!(describe(&spec.actions)),
            dry_run: spec.dry_run,
            escalated: false,
        };
        let Some(hit_id) = db::insert_hit(&mut tx, community_id, &new).await? else {
            continue;
        };
        let (actions, escalated) = actions_for(&mut tx, rules, spec, incident.author).await?;
        let summary = describe(&actions);
        if escalated {
            db::mark_escalated(&mut tx, community_id, hit_id, &json!(summary)).await?;
        }
        if !spec.dry_run {
            verdict.plan.add(&spec.name, &actions, &evidence);
        }
        audit_hit(
            &mut tx,
            community_id,
            incident,
            spec,
            hit_id,
            &summary,
            escalated,
            &evidence,
        )
        .await?;
        if let Some(channel) = settings.mod_log_channel.or(settings.admin_channel) {
            let entry = mod_log_entry(
                incident, spec, &evidence, hit_id, &summary, escalated, &settings,
            );
            let key = format!("automod:{}:modlog:{hit_id}", incident.message_id);
            let job = Job::ModLog {
                channel_id: channel,
                title: entry.0,
                description: entry.1,
                buttons: vec![Button {
                    custom_id: format!("{FALSE_POSITIVE}{hit_id}"),
                    label: "False positive".into(),
                }],
                on_posted: None,
            };
            outbox::enqueue(&mut tx, NewJob::new(Some(community_id), key, job)).await?;
        }
        verdict.recorded.push(hit_id);
        metrics::counter!("guildops_automod_hits_total", "dry_run" => spec.dry_run.to_string())
            .increment(1);
    }
    enqueue_plan(&mut tx, community_id, incident, &verdict.plan, &settings).await?;
    tx.commit().await?;
    Ok(verdict)
}

/// The mod-log button's `custom_id` prefix; the hit id follows.
pub const FALSE_POSITIVE: &str = "automod:fp:";

#[allow(clippy::too_many_arguments)]
async fn audit_hit(
    conn: &mut sqlx::PgConnection,
    community_id: uuid::Uuid,
    incident: &Incident,
    spec: &RuleSpec,
    hit_id: i64,
    actions: &str,
    escalated: bool,
    evidence: &str,
) -> Result<(), sqlx::Error> {
    let mut entry = NewEntry::new(
        community_id,
        Actor::System("automod"),
        "automod.hit",
        format!("user:{}", incident.author),
    );
    entry.after = Some(json!({
        "hit": hit_id,
        "rule": spec.name,
        "actions": actions,
        "dry_run": spec.dry_run,
        "escalated": escalated,
        "channel": incident.channel_id.to_string(),
        "message": incident.message_id.to_string(),
    }));
    // What matched is the member's own words: erasable, so outside the hashed payload.
    entry.reason = Some(evidence.to_owned());
    entry.correlation_id = Some(format!("message:{}", incident.message_id));
    audit::record(conn, entry).await?;
    Ok(())
}

fn mod_log_entry(
    incident: &Incident,
    spec: &RuleSpec,
    evidence: &str,
    hit_id: i64,
    actions: &str,
    escalated: bool,
    settings: &Settings,
) -> (String, String) {
    let title = if spec.dry_run {
        format!("Automod (dry run): {}", spec.name)
    } else {
        format!("Automod: {}", spec.name)
    };
    let done = if spec.dry_run {
        format!("would have: {actions} (dry run, nothing done)")
    } else {
        actions.to_owned()
    };
    let mut description = format!(
        "**Member:** {}\n**Channel:** {}\n**Matched:** {}\n**Actions:** {done}{}\n[Jump to message]({})\nHit #{hit_id}",
        incident.author.mention(),
        incident.channel_id.mention(),
        evidence,
        if escalated { " (escalated)" } else { "" },
        incident.jump_link(),
    );
    if !spec.dry_run && settings.quarantine_role.is_none() && actions.contains("quarantine") {
        description
            .push_str("\n⚠️ No quarantine role is set, so none was given: `/setup quarantine`.");
    }
    (title, description)
}

async fn enqueue_plan(
    conn: &mut sqlx::PgConnection,
    community_id: uuid::Uuid,
    incident: &Incident,
    plan: &Plan,
    settings: &Settings,
) -> Result<(), sqlx::Error> {
    let m = incident.message_id;
    let mut jobs: Vec<(String, Job)> = Vec::new();
    let reason = |what: &str| format!("automod: {what}");
    if plan.delete {
        jobs.push((
            format!("automod:{m}:delete"),
            Job::DeleteMessage {
                channel_id: incident.channel_id,
                message_id: m,
                reason: reason("message deleted"),
            },
        ));
    }
    if let Some(secs) = plan.timeout_secs {
        jobs.push((
            format!("automod:{m}:timeout"),
            Job::TimeoutMember {
                guild_id: incident.guild_id,
                user_id: incident.author,
                until: Utc::now() + Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)),
                reason: reason(&format!("timeout {}", format_duration(secs))),
            },
        ));
    }
    if plan.quarantine
        && let Some(role) = settings.quarantine_role
    {
        jobs.push((
            format!("automod:{m}:quarantine"),
            quarantine(incident, role),
        ));
    }
    if !plan.warnings.is_empty() {
        let content = format!(
            "Your message was removed or flagged by this server's automod ({}). If you think this is a mistake, contact the moderators.",
            plan.warnings.join("; ")
        );
        jobs.push((
            format!("automod:{m}:warn"),
            Job::SendDm {
                user_id: incident.author,
                content,
                on_failure: None,
            },
        ));
    }
    if !plan.alerts.is_empty()
        && let Some(channel) = settings.admin_channel
    {
        let content = format!(
            "🚨 Automod: {} by {} in {}: {}",
            plan.alerts.join(", "),
            incident.author.mention(),
            incident.channel_id.mention(),
            incident.jump_link()
        );
        jobs.push((
            format!("automod:{m}:alert"),
            Job::SendMessage {
                channel_id: channel,
                content,
            },
        ));
    }
    for (key, job) in jobs {
        outbox::enqueue(conn, NewJob::new(Some(community_id), key, job)).await?;
    }
    Ok(())
}

fn quarantine(incident: &Incident, role: RoleId) -> Job {
    Job::AddRole {
        guild_id: incident.guild_id,
        user_id: incident.author,
        role_id: role,
        reason: "automod: quarantine".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_is_deleted_once_and_the_longest_timeout_wins() {
        let mut plan = Plan::default();
        plan.add(
            "a",
            &[
                Action::Delete,
                Action::Timeout { secs: 60 },
                Action::Warn { message: None },
            ],
            "phrase",
        );
        plan.add(
            "b",
            &[Action::Delete, Action::Timeout { secs: 600 }, Action::Alert],
            "link",
        );
        plan.add("a", &[Action::Warn { message: None }], "phrase");
        assert!(plan.delete);
        assert_eq!(plan.timeout_secs, Some(600));
        assert_eq!(plan.warnings, vec!["rule `a`".to_owned()]);
        assert_eq!(plan.alerts, vec!["`b` (link)".to_owned()]);
        assert!(!plan.quarantine);
    }

    #[test]
    fn log_only_plans_nothing() {
        let mut plan = Plan::default();
        plan.add("a", &[Action::Log], "x");
        assert_eq!(plan, Plan::default());
    }
}
