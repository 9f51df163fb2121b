//! A rule from the options of `/automod rule add` (and the changes of `/automod rule
//! edit`): one text option per part, parsed here so the command only forwards what
//! was typed. Pure; the result still goes through [`RuleSpec::validate`].

use serenity::all::{ChannelId, RoleId};

use super::normalize::Normalization;
use super::rules::{
    self, Invalid, LinkMode, PhraseMode, RuleSpec, Trigger, parse_actions, parse_duration,
    parse_escalation, parse_ids, parse_list, parse_rate,
};

/// The trigger kinds as the command offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Phrases,
    Regex,
    BlockLinks,
    AllowLinks,
    Invites,
    Mentions,
    Flood,
    Duplicates,
    Caps,
    Attachments,
    NewAccount,
    NewMember,
}

impl Kind {
    /// What the `value` option holds for this kind (shown when it is wrong).
    pub fn value_help(self) -> &'static str {
        match self {
            Kind::Phrases => "phrases separated by commas, e.g. `free nitro, scam*`",
            Kind::Regex => "one regular expression (Rust syntax), e.g. `n[i1]tro\\s*gift`",
            Kind::BlockLinks => "banned domains separated by commas, e.g. `bad.example, scam.test`",
            Kind::AllowLinks => "the only allowed domains, e.g. `youtube.com, github.com`",
            Kind::Invites => "invite codes that stay allowed (may be empty), e.g. `ourserver`",
            Kind::Mentions => "a maximum per message, e.g. `5`, or within a window, e.g. `10/30s`",
            Kind::Flood => "messages within a window, e.g. `5/10s`",
            Kind::Duplicates => "repeats within a window, e.g. `3/60s`",
            Kind::Caps => "a percentage and a minimum length, e.g. `70% 10`",
            Kind::Attachments => "a maximum count and/or blocked extensions, e.g. `3 .exe .scr`",
            Kind::NewAccount => "an account age, e.g. `7d`",
            Kind::NewMember => "a membership age, e.g. `1h`",
        }
    }
}

/// What `/automod rule add` and `/automod rule edit` were given.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub value: Option<String>,
    pub mode: Option<PhraseMode>,
    pub normalize: Option<Normalization>,
    pub actions: Option<String>,
    pub channels: Option<String>,
    pub exempt_roles: Option<String>,
    pub exempt_channels: Option<String>,
    /// `none` removes it.
    pub escalation: Option<String>,
    pub dry_run: Option<bool>,
}

impl Options {
    pub fn is_empty(&self) -> bool {
        self.value.is_none()
            && self.mode.is_none()
            && self.normalize.is_none()
            && self.actions.is_none()
            && self.channels.is_none()
            && self.exempt_roles.is_none()
            && self.exempt_channels.is_none()
            && self.escalation.is_none()
            && self.dry_run.is_none()
    }
}

/// A new rule.
pub fn build(name: &str, kind: Kind, options: Options) -> Result<RuleSpec, Invalid> {
    let value = options.value.clone().unwrap_or_default();
    let trigger = trigger(kind, &value, options.mode, options.normalize)?;
    let mut spec = RuleSpec::new(name.trim(), trigger);
    apply_common(&mut spec, &options)?;
    spec.validate()?;
    Ok(spec)
}

/// An existing rule with some parts changed; the trigger keeps its kind.
pub fn edit(spec: &RuleSpec, options: Options) -> Result<RuleSpec, Invalid> {
    if options.is_empty() {
        return Err(Invalid(
            "nothing to change: give at least one option".into(),
        ));
    }
    let mut next = spec.clone();
    let kind = kind_of(&spec.trigger);
    if options.value.is_some() || options.mode.is_some() || options.normalize.is_some() {
        let (mode, normalize) = match &spec.trigger {
            Trigger::Phrases {
                mode, normalize, ..
            } => (Some(*mode), Some(*normalize)),
            Trigger::Regex { normalize, .. } => (None, Some(*normalize)),
            _ => (None, None),
        };
        let value = match &options.value {
            Some(v) => v.clone(),
            None => current_value(&spec.trigger),
        };
        next.trigger = trigger(
            kind,
            &value,
            options.mode.or(mode),
            options.normalize.or(normalize),
        )?;
    }
    apply_common(&mut next, &options)?;
    next.validate()?;
    Ok(next)
}

fn apply_common(spec: &mut RuleSpec, o: &Options) -> Result<(), Invalid> {
    if let Some(actions) = &o.actions {
        spec.actions = parse_actions(actions)?;
    }
    if let Some(text) = &o.channels {
        spec.scope.channels = parse_ids(text)?.into_iter().map(ChannelId::new).collect();
    }
    if let Some(text) = &o.exempt_channels {
        spec.scope.exempt_channels = parse_ids(text)?.into_iter().map(ChannelId::new).collect();
    }
    if let Some(text) = &o.exempt_roles {
        spec.scope.exempt_roles = parse_ids(text)?.into_iter().map(RoleId::new).collect();
    }
    if let Some(text) = &o.escalation {
        spec.escalation = if text.trim().eq_ignore_ascii_case("none") {
            None
        } else {
            Some(parse_escalation(text)?)
        };
    }
    if let Some(dry_run) = o.dry_run {
        spec.dry_run = dry_run;
    }
    Ok(())
}

fn help(kind: Kind, error: Invalid) -> Invalid {
    Invalid(format!("{error}; the value is {}", kind.value_help()))
}

fn trigger(
    kind: Kind,
    value: &str,
    mode: Option<PhraseMode>,
    normalize: Option<Normalization>,
) -> Result<Trigger, Invalid> {
    let needs_value = !matches!(kind, Kind::Invites);
    if needs_value && value.trim().is_empty() {
        return Err(Invalid(format!(
            "this rule needs a `value`: {}",
            kind.value_help()
        )));
    }
    let t = match kind {
        Kind::Phrases => Trigger::Phrases {
            phrases: parse_list(value),
            mode: mode.unwrap_or_default(),
            normalize: normalize.unwrap_or_default(),
        },
        Kind::Regex => Trigger::Regex {
            patterns: vec![value.trim().to_owned()],
            normalize: normalize.unwrap_or(Normalization::Standard),
        },
        Kind::BlockLinks | Kind::AllowLinks => Trigger::Links {
            domains: parse_list(value),
            mode: if kind == Kind::AllowLinks {
                LinkMode::Allow
            } else {
                LinkMode::Block
            },
        },
        Kind::Invites => Trigger::Invites {
            allowed_codes: parse_list(value),
        },
        Kind::Mentions => match value.contains('/') {
            true => {
                let (max, secs) = parse_rate(value).map_err(|e| help(kind, e))?;
                Trigger::MentionSpam {
                    max,
                    within_secs: Some(secs),
                }
            }
            false => Trigger::MentionSpam {
                max: number(value).map_err(|e| help(kind, e))?,
                within_secs: None,
            },
        },
        Kind::Flood | Kind::Duplicates => {
            let (n, secs) = parse_rate(value).map_err(|e| help(kind, e))?;
            if kind == Kind::Flood {
                Trigger::Flood {
                    messages: n,
                    within_secs: secs,
                }
            } else {
                Trigger::Duplicates {
                    count: n,
                    within_secs: secs,
                }
            }
        }
        Kind::Caps => caps(value).map_err(|e| help(kind, e))?,
        Kind::Attachments => attachments(value).map_err(|e| help(kind, e))?,
        Kind::NewAccount => Trigger::NewAccount {
            younger_than_secs: parse_duration(value).map_err(|e| help(kind, e))?,
            first_message_only: true,
        },
        Kind::NewMember => Trigger::NewMember {
            joined_within_secs: parse_duration(value).map_err(|e| help(kind, e))?,
            first_message_only: true,
        },
    };
    Ok(t)
}

fn number(text: &str) -> Result<u32, Invalid> {
    text.trim()
        .parse()
        .map_err(|_| Invalid(format!("`{}` is not a number", text.trim())))
}

fn caps(value: &str) -> Result<Trigger, Invalid> {
    let mut parts = value.split_whitespace();
    let percent = parts.next().unwrap_or_default().trim_end_matches('%');
    let min_percent = percent
        .parse()
        .map_err(|_| Invalid(format!("`{percent}` is not a percentage")))?;
    let min_letters = parts.next().map(number).transpose()?.unwrap_or(10);
    Ok(Trigger::Caps {
        min_percent,
        min_letters,
    })
}

fn attachments(value: &str) -> Result<Trigger, Invalid> {
    let mut max = None;
    let mut blocked_extensions = Vec::new();
    for part in value.split([' ', ',']).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(n) => max = Some(n),
            Err(_) => blocked_extensions.push(part.trim_start_matches('.').to_ascii_lowercase()),
        }
    }
    Ok(Trigger::Attachments {
        max,
        blocked_extensions,
    })
}

pub fn kind_of(trigger: &Trigger) -> Kind {
    match trigger {
        Trigger::Phrases { .. } => Kind::Phrases,
        Trigger::Regex { .. } => Kind::Regex,
        Trigger::Links {
            mode: LinkMode::Allow,
            ..
        } => Kind::AllowLinks,
        Trigger::Links { .. } => Kind::BlockLinks,
        Trigger::Invites { .. } => Kind::Invites,
        Trigger::MentionSpam { .. } => Kind::Mentions,
        Trigger::Flood { .. } => Kind::Flood,
        Trigger::Duplicates { .. } => Kind::Duplicates,
        Trigger::Caps { .. } => Kind::Caps,
        Trigger::Attachments { .. } => Kind::Attachments,
        Trigger::NewAccount { .. } => Kind::NewAccount,
        Trigger::NewMember { .. } => Kind::NewMember,
    }
}

/// The trigger written back as a `value` option (so `edit` can change only the mode).
fn current_value(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Phrases { phrases, .. } => phrases.join(", "),
        Trigger::Regex { patterns, .. } => patterns.first().cloned().unwrap_or_default(),
        Trigger::Links { domains, .. } => domains.join(", "),
        Trigger::Invites { allowed_codes } => allowed_codes.join(", "),
        Trigger::MentionSpam { max, within_secs } => match within_secs {
            Some(s) => format!("{max}/{s}s"),
            None => max.to_string(),
        },
        Trigger::Flood {
            messages: n,
            within_secs,
        }
        | Trigger::Duplicates {
            count: n,
            within_secs,
        } => format!("{n}/{within_secs}s"),
        Trigger::Caps {
            min_percent,
            min_letters,
        } => format!("{min_percent}% {min_letters}"),
        Trigger::Attachments {
            max,
            blocked_extensions,
        } => {
            let mut parts: Vec<String> = max.iter().map(u32::to_string).collect();
            parts.extend(blocked_extensions.iter().cloned());
            parts.join(" ")
        }
        Trigger::NewAccount {
            younger_than_secs: s,
            ..
        }
        | Trigger::NewMember {
            joined_within_secs: s,
            ..
        } => rules::format_duration(*s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automod::rules::Action;

    fn with_value(v: &str) -> Options {
        Options {
            value: Some(v.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_phrase_rule_from_options() {
        let o = Options {
            actions: Some("delete, timeout 10m".into()),
            exempt_roles: Some("<@&42>".into()),
            ..with_value("free nitro, scam*")
        };
        let spec = build("nitro", Kind::Phrases, o).expect("valid");
        assert_eq!(
            spec.actions,
            vec![Action::Delete, Action::Timeout { secs: 600 }]
        );
        assert_eq!(spec.scope.exempt_roles, vec![RoleId::new(42)]);
        let Trigger::Phrases { phrases, .. } = &spec.trigger else {
            panic!("phrases")
        };
        assert_eq!(phrases, &["free nitro", "scam*"]);
    }

    #[test]
    fn counting_rules_take_a_rate() {
        let spec = build("flood", Kind::Flood, with_value("5/10s")).expect("valid");
        assert_eq!(
            spec.trigger,
            Trigger::Flood {
                messages: 5,
                within_secs: 10
            }
        );
        let err = build("flood", Kind::Flood, with_value("lots")).expect_err("invalid");
        assert!(err.0.contains("e.g. `5/10s`"), "{err}");
        let spec = build("m", Kind::Mentions, with_value("6")).expect("valid");
        assert_eq!(
            spec.trigger,
            Trigger::MentionSpam {
                max: 6,
                within_secs: None
            }
        );
    }

    #[test]
    fn a_missing_value_says_what_is_expected() {
        let err = build("x", Kind::Caps, Options::default()).expect_err("no value");
        assert!(err.0.contains("70% 10"), "{err}");
        assert!(build("inv", Kind::Invites, Options::default()).is_ok());
    }

    #[test]
    fn editing_keeps_what_was_not_given() {
        let spec = build("n", Kind::Phrases, with_value("a, b")).expect("valid");
        let o = Options {
            mode: Some(PhraseMode::Substring),
            dry_run: Some(true),
            ..Default::default()
        };
        let next = edit(&spec, o).expect("valid");
        assert!(next.dry_run);
        assert_eq!(
            next.trigger,
            Trigger::Phrases {
                phrases: vec!["a".into(), "b".into()],
                mode: PhraseMode::Substring,
                normalize: Normalization::default(),
            }
        );
        assert!(edit(&spec, Options::default()).is_err());
        let cleared = edit(
            &build(
                "e",
                Kind::Phrases,
                Options {
                    escalation: Some("3/1h timeout 1h".into()),
                    ..with_value("x")
                },
            )
            .expect("valid"),
            Options {
                escalation: Some("none".into()),
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(cleared.escalation, None);
    }

    #[test]
    fn attachments_and_caps() {
        let spec = build("f", Kind::Attachments, with_value("3 .EXE .scr")).expect("valid");
        assert_eq!(
            spec.trigger,
            Trigger::Attachments {
                max: Some(3),
                blocked_extensions: vec!["exe".into(), "scr".into()]
            }
        );
        let spec = build("c", Kind::Caps, with_value("70%")).expect("valid");
        assert_eq!(
            spec.trigger,
            Trigger::Caps {
                min_percent: 70,
                min_letters: 10
            }
        );
    }
}
