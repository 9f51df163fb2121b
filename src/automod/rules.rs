//! A rule as owners write it: what triggers it, what it does, where it applies. This
//! is the stored form (jsonb), the import/export form (JSON or TOML) and what
//! `/automod rule add` builds from its options; [`RuleSpec::validate`] is the one
//! check all three pass before anything is saved.

use serde::{Deserialize, Serialize};
use serenity::all::{ChannelId, RoleId};

use super::normalize::Normalization;

/// The documented ceilings per community (`docs/automod.md`).
pub const MAX_RULES: usize = 200;
pub const MAX_PHRASES: usize = 10_000;
pub const MAX_REGEXES: usize = 500;
pub const MAX_DOMAINS: usize = 20_000;
pub const MAX_PATTERN_LEN: usize = 512;
pub const MAX_NAME_LEN: usize = 64;
/// Discord's own ceiling for a timeout.
pub const MAX_TIMEOUT_SECS: u64 = 28 * 24 * 3600;
/// The longest window a counting rule may look back (its state is kept in memory).
pub const MAX_WINDOW_SECS: u32 = 24 * 3600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Records what would have happened and does nothing.
    #[serde(default)]
    pub dry_run: bool,
    pub trigger: Trigger,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
}

fn yes() -> bool {
    true
}

impl RuleSpec {
    /// An enabled rule that deletes what it catches, everywhere, with no escalation.
    pub fn new(name: impl Into<String>, trigger: Trigger) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            enabled: true,
            dry_run: false,
            trigger,
            actions: vec![Action::Delete],
            scope: Scope::default(),
            escalation: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    Phrases {
        phrases: Vec<String>,
        #[serde(default)]
        mode: PhraseMode,
        #[serde(default)]
        normalize: Normalization,
    },
    Regex {
        patterns: Vec<String>,
        #[serde(default = "standard")]
        normalize: Normalization,
    },
    Links {
        domains: Vec<String>,
        #[serde(default)]
        mode: LinkMode,
    },
    /// Invites to other servers; codes of the community's own invites are allowed.
    Invites {
        #[serde(default)]
        allowed_codes: Vec<String>,
    },
    /// More than `max` mentions in one message, or within `within_secs` when set.
    MentionSpam {
        max: u32,
        #[serde(default)]
        within_secs: Option<u32>,
    },
    /// `messages` or more from one member in one channel within `within_secs`.
    Flood { messages: u32, within_secs: u32 },
    /// The same text from one member `count` times within `within_secs`.
    Duplicates { count: u32, within_secs: u32 },
    /// A message of at least `min_letters` letters, `min_percent` or more in capitals.
    Caps { min_percent: u8, min_letters: u32 },
    Attachments {
        #[serde(default)]
        max: Option<u32>,
        #[serde(default)]
        blocked_extensions: Vec<String>,
    },
    /// An account younger than this posts (once per member while the daemon runs, when
    /// `first_message_only`).
    NewAccount {
        younger_than_secs: u64,
        #[serde(default = "yes")]
        first_message_only: bool,
    },
    /// A member who joined less than this ago posts.
    NewMember {
        joined_within_secs: u64,
        #[serde(default = "yes")]
        first_message_only: bool,
    },
}

fn standard() -> Normalization {
    Normalization::Standard
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Phrases { .. } => "phrases",
            Trigger::Regex { .. } => "regex",
            Trigger::Links { .. } => "links",
            Trigger::Invites { .. } => "invites",
            Trigger::MentionSpam { .. } => "mention_spam",
            Trigger::Flood { .. } => "flood",
            Trigger::Duplicates { .. } => "duplicates",
            Trigger::Caps { .. } => "caps",
            Trigger::Attachments { .. } => "attachments",
            Trigger::NewAccount { .. } => "new_account",
            Trigger::NewMember { .. } => "new_member",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhraseMode {
    /// The phrase must stand as whole words ("ass" does not hit "classic").
    #[default]
    WholeWord,
    Substring,
    /// `*` stands for any letters: "scam*" hits "scammer", "*coin" hits "bitcoin".
    Wildcard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMode {
    /// The listed domains (and their subdomains) are banned.
    #[default]
    Block,
    /// Only the listed domains (and their subdomains) are allowed.
    Allow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Delete,
    /// A DM to the author (the rule's name and the optional text).
    Warn {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Timeout {
        secs: u64,
    },
    /// The community's quarantine role (`/setup quarantine`).
    Quarantine,
    /// A message in the admin channel.
    Alert,
    /// Nothing beyond the hit record and the mod-log entry every hit gets.
    Log,
}

impl Action {
    pub fn describe(&self) -> String {
        match self {
            Action::Delete => "delete".into(),
            Action::Warn { .. } => "warn".into(),
            Action::Timeout { secs } => format!("timeout {}", format_duration(*secs)),
            Action::Quarantine => "quarantine".into(),
            Action::Alert => "alert".into(),
            Action::Log => "log".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Only these channels (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exempt_channels: Vec<ChannelId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exempt_roles: Vec<RoleId>,
}

/// "`hits` hits by one member within `within_secs` → `actions`", once per window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub hits: u32,
    pub within_secs: u32,
    pub actions: Vec<Action>,
}

/// What is wrong with a rule, said so the owner can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid<T>(text: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(text.into()))
}

impl RuleSpec {
    /// Everything but the regexes' syntax (checked when compiled, with its position).
    pub fn validate(&self) -> Result<(), Invalid> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return invalid(format!("a rule name needs 1 to {MAX_NAME_LEN} characters"));
        }
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return invalid(format!(
                "rule name `{name}`: use letters, digits, - and _ only"
            ));
        }
        self.validate_trigger()?;
        validate_actions(&self.actions)?;
        if let Some(e) = &self.escalation {
            if e.hits < 2 || e.within_secs == 0 || e.within_secs > MAX_WINDOW_SECS {
                return invalid(
                    "escalation needs at least 2 hits within a window of up to 24h, e.g. `3/1h timeout 1h`",
                );
            }
            if e.actions.is_empty() {
                return invalid("escalation needs at least one action");
            }
            validate_actions(&e.actions)?;
        }
        Ok(())
    }

    fn validate_trigger(&self) -> Result<(), Invalid> {
        let window = |secs: u32| {
            if secs == 0 || secs > MAX_WINDOW_SECS {
                invalid("a window must be between 1 second and 24 hours")
            } else {
                Ok(())
            }
        };
        match &self.trigger {
            Trigger::Phrases { phrases, .. } => list(phrases, "phrase", MAX_PHRASES),
            Trigger::Regex { patterns, .. } => list(patterns, "pattern", MAX_REGEXES),
            Trigger::Links { domains, .. } => {
                list(domains, "domain", MAX_DOMAINS)?;
                for d in domains {
                    if super::links::normalize_domain(d).is_none() {
                        return invalid(format!("`{d}` is not a domain name (e.g. example.com)"));
                    }
                }
                Ok(())
            }
            Trigger::Invites { .. } => Ok(()),
            Trigger::MentionSpam { max, within_secs } => {
                if *max == 0 {
                    return invalid("the mention limit must be at least 1");
                }
                within_secs.map_or(Ok(()), window)
            }
            Trigger::Flood {
                messages,
                within_secs,
            }
            | Trigger::Duplicates {
                count: messages,
                within_secs,
            } => {
                if *messages < 2 {
                    return invalid("the count must be at least 2");
                }
                window(*within_secs)
            }
            Trigger::Caps {
                min_percent,
                min_letters,
            } => {
                if *min_percent == 0 || *min_percent > 100 || *min_letters == 0 {
                    return invalid("caps needs a percentage from 1 to 100 and at least 1 letter");
                }
                Ok(())
            }
            Trigger::Attachments {
                max,
                blocked_extensions,
            } => {
                if max.is_none() && blocked_extensions.is_empty() {
                    return invalid("attachments needs a maximum count or blocked extensions");
                }
                Ok(())
            }
            Trigger::NewAccount {
                younger_than_secs: secs,
                ..
            }
            | Trigger::NewMember {
                joined_within_secs: secs,
                ..
            } => {
                if *secs == 0 {
                    return invalid("the age must be more than 0");
                }
                Ok(())
            }
        }
    }
}

fn list(items: &[String], what: &str, max: usize) -> Result<(), Invalid> {
    if items.iter().all(|i| i.trim().is_empty()) {
        return invalid(format!("give at least one {what}"));
    }
    if items.len() > max {
        return invalid(format!(
            "{} {what}s is more than the limit of {max}",
            items.len()
        ));
    }
    if let Some(long) = items.iter().find(|i| i.len() > MAX_PATTERN_LEN) {
        return invalid(format!(
            "a {what} is longer than {MAX_PATTERN_LEN} bytes: `{}…`",
            long.chars().take(20).collect::<String>()
        ));
    }
    Ok(())
}

fn validate_actions(actions: &[Action]) -> Result<(), Invalid> {
    for a in actions {
        if let Action::Timeout { secs } = a
            && (*secs == 0 || *secs > MAX_TIMEOUT_SECS)
        {
            return invalid("a timeout must be between 1 second and 28 days");
        }
    }
    Ok(())
}

/// The per-community ceilings, over all rules together.
pub fn check_community_limits(specs: &[RuleSpec]) -> Result<(), Invalid> {
    if specs.len() > MAX_RULES {
        return invalid(format!(
            "{} rules is more than the limit of {MAX_RULES} per server",
            specs.len()
        ));
    }
    let (mut phrases, mut regexes, mut domains) = (0, 0, 0);
    for spec in specs {
        match &spec.trigger {
            Trigger::Phrases { phrases: p, .. } => phrases += p.len(),
            Trigger::Regex { patterns, .. } => regexes += patterns.len(),
            Trigger::Links { domains: d, .. } => domains += d.len(),
            _ => {}
        }
    }
    for (count, max, what) in [
        (phrases, MAX_PHRASES, "phrases"),
        (regexes, MAX_REGEXES, "regexes"),
        (domains, MAX_DOMAINS, "domains"),
    ] {
        if count > max {
            return invalid(format!(
                "all rules together would hold {count} {what}, more than the limit of {max} per server"
            ));
        }
    }
    let mut names: Vec<String> = specs.iter().map(|s| s.name.to_lowercase()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return invalid(format!("two rules are called `{}`", w[0]));
    }
    Ok(())
}

/// The normalisation a text trigger matches in (links always use the standard view).
pub fn view_of(trigger: &Trigger) -> Option<Normalization> {
    match trigger {
        Trigger::Phrases { normalize, .. } | Trigger::Regex { normalize, .. } => Some(*normalize),
        Trigger::Links { .. } | Trigger::Invites { .. } => Some(Normalization::Standard),
        _ => None,
    }
}

/// "30s", "10m", "2h", "7d", "1w" (or a plain number of seconds).
pub fn parse_duration(text: &str) -> Result<u64, Invalid> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().or_else(|_| {
        invalid(format!(
            "`{text}` is not a duration (e.g. 30s, 10m, 2h, 7d)"
        ))
    })?;
    let factor = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return invalid(format!(
                "`{text}` is not a duration (e.g. 30s, 10m, 2h, 7d)"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| Invalid(format!("`{text}` is too long")))
}

pub fn format_duration(secs: u64) -> String {
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// "delete, timeout 10m, alert" → actions.
pub fn parse_actions(text: &str) -> Result<Vec<Action>, Invalid> {
    let mut out = Vec::new();
    for part in text
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (word, rest) = part.split_once(' ').unwrap_or((part, ""));
        let action = match word.to_ascii_lowercase().as_str() {
            "delete" => Action::Delete,
            "warn" => Action::Warn {
                message: Some(rest.trim().to_owned()).filter(|m| !m.is_empty()),
            },
            "timeout" => Action::Timeout {
                secs: parse_duration(if rest.is_empty() { "10m" } else { rest })?,
            },
            "quarantine" => Action::Quarantine,
            "alert" => Action::Alert,
            "log" => Action::Log,
            other => {
                return invalid(format!(
                    "`{other}` is not an action: use delete, warn [text], timeout <duration>, quarantine, alert or log"
                ));
            }
        };
        out.push(action);
    }
    if out.is_empty() {
        return invalid("give at least one action, e.g. `delete, timeout 10m`");
    }
    Ok(out)
}

/// "3/1h timeout 1h, alert" → escalation.
pub fn parse_escalation(text: &str) -> Result<Escalation, Invalid> {
    let text = text.trim();
    let (head, actions) = text.split_once(' ').unwrap_or((text, ""));
    let (hits, window) = head
        .split_once('/')
        .ok_or_else(|| Invalid(format!("`{text}`: write it as `3/1h timeout 1h`")))?;
    let hits = hits
        .parse()
        .map_err(|_| Invalid(format!("`{hits}` is not a number of hits")))?;
    let within = parse_duration(window)?;
    Ok(Escalation {
        hits,
        within_secs: u32::try_from(within).unwrap_or(u32::MAX),
        actions: parse_actions(actions)?,
    })
}

/// "N/T" (count within a window), e.g. "5/10s".
pub fn parse_rate(text: &str) -> Result<(u32, u32), Invalid> {
    let (n, t) = text.trim().split_once('/').ok_or_else(|| {
        Invalid(format!(
            "`{text}`: write a count and a window, e.g. `5/10s`"
        ))
    })?;
    let n = n
        .trim()
        .parse()
        .map_err(|_| Invalid(format!("`{n}` is not a count")))?;
    let t = u32::try_from(parse_duration(t)?).unwrap_or(u32::MAX);
    Ok((n, t))
}

/// Channel and role mentions (or bare ids) from free text: "<#1> <#2>", "<@&3>".
pub fn parse_ids(text: &str) -> Result<Vec<u64>, Invalid> {
    text.split([' ', ','])
        .map(|t| t.trim_matches(|c| matches!(c, '<' | '>' | '#' | '@' | '&')))
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| Invalid(format!("`{t}` is not a channel or role")))
        })
        .collect()
}

/// Phrases, patterns or domains from one option: one per line or comma-separated.
pub fn parse_list(text: &str) -> Vec<String> {
    text.split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("45"), Ok(45));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
        assert_eq!(format_duration(600), "10m");
        assert_eq!(format_duration(90), "90s");
    }

    #[test]
    fn actions_parse_and_reject_unknown_words() {
        assert_eq!(
            parse_actions("delete, timeout 10m, alert"),
            Ok(vec![
                Action::Delete,
                Action::Timeout { secs: 600 },
                Action::Alert
            ])
        );
        let err = parse_actions("delete, explode").expect_err("unknown action");
        assert!(err.0.contains("`explode` is not an action"), "{err}");
        assert!(parse_actions("  ").is_err());
    }

    #[test]
    fn escalation_and_rates() {
        let e = parse_escalation("3/1h timeout 1h").expect("parses");
        assert_eq!(e.hits, 3);
        assert_eq!(e.within_secs, 3600);
        assert_eq!(e.actions, vec![Action::Timeout { secs: 3600 }]);
        assert_eq!(parse_rate("5/10s"), Ok((5, 10)));
        assert!(parse_rate("5").is_err());
    }

    #[test]
    fn ids_from_mentions() {
        assert_eq!(parse_ids("<#12> <@&34>, 56"), Ok(vec![12, 34, 56]));
        assert!(parse_ids("#general").is_err());
    }

    #[test]
    fn validation_names_the_problem() {
        let mut rule = RuleSpec {
            name: "scam links".into(),
            enabled: true,
            dry_run: false,
            trigger: Trigger::Phrases {
                phrases: vec!["free nitro".into()],
                mode: PhraseMode::WholeWord,
                normalize: Normalization::Strict,
            },
            actions: vec![Action::Delete],
            scope: Scope::default(),
            escalation: None,
        };
        assert!(
            rule.validate()
                .expect_err("bad name")
                .0
                .contains("letters, digits")
        );
        rule.name = "scam".into();
        assert_eq!(rule.validate(), Ok(()));
        rule.actions = vec![Action::Timeout { secs: 30 * 86_400 }];
        assert!(rule.validate().expect_err("too long").0.contains("28 days"));
    }

    #[test]
    fn the_stored_form_round_trips_through_json_and_toml() {
        let rule = RuleSpec {
            name: "flood".into(),
            enabled: true,
            dry_run: true,
            trigger: Trigger::Flood {
                messages: 5,
                within_secs: 10,
            },
            actions: vec![Action::Delete, Action::Timeout { secs: 600 }],
            scope: Scope {
                exempt_roles: vec![RoleId::new(9)],
                ..Scope::default()
            },
            escalation: Some(Escalation {
                hits: 3,
                within_secs: 3600,
                actions: vec![Action::Quarantine],
            }),
        };
        let json = serde_json::to_string(&rule).expect("json");
        assert_eq!(
            serde_json::from_str::<RuleSpec>(&json).ok(),
            Some(rule.clone())
        );
        let toml = toml::to_string(&rule).expect("toml");
        assert_eq!(toml::from_str::<RuleSpec>(&toml).ok(), Some(rule));
    }
}
