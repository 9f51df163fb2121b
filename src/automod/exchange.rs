//! The rules file of `/automod export` and `/automod import`: `{"rules": [...]}` in
//! JSON, or `[[rules]]` tables in TOML, each a [`RuleSpec`] as stored. An import is
//! parsed and validated whole, then planned against the current rules by name.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Error;
use super::db::StoredRule;
use super::rules::RuleSpec;

/// The largest rules file accepted (5,000 rules of long phrase lists fit).
pub const MAX_FILE_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
}

impl Format {
    /// From a file name's extension.
    pub fn from_filename(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Toml => "toml",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

pub fn render(specs: &[RuleSpec], format: Format) -> Result<String, Error> {
    let file = File {
        rules: specs.to_vec(),
    };
    match format {
        Format::Json => serde_json::to_string_pretty(&file)
            .map_err(|e| Error::Import(format!("cannot write JSON: {e}"))),
        Format::Toml => {
            toml::to_string(&file).map_err(|e| Error::Import(format!("cannot write TOML: {e}")))
        }
    }
}

/// Every rule of the file, each validated; the first problem is the error, naming the
/// rule (by position and name) and, for a syntax error, the line.
pub fn parse(text: &str, format: Format) -> Result<Vec<RuleSpec>, Error> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Error::Import(format!(
            "the file is {} KiB; the limit is {} KiB",
            text.len() / 1024,
            MAX_FILE_BYTES / 1024
        )));
    }
    let file: File = match format {
        Format::Json => serde_json::from_str(text).map_err(|e| {
            Error::Import(format!(
                "the file is not a valid rules file (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        })?,
        Format::Toml => toml::from_str(text)
            .map_err(|e| Error::Import(format!("the file is not a valid rules file: {e}")))?,
    };
    if file.rules.is_empty() {
        return Err(Error::Import("the file holds no rules".into()));
    }
    for (n, spec) in file.rules.iter().enumerate() {
        spec.validate()
            .map_err(|e| Error::Import(format!("rule {} (`{}`): {e}", n + 1, spec.name)))?;
    }
    Ok(file.rules)
}

/// What an import does.
#[derive(Debug, Default)]
pub struct Plan {
    pub added: Vec<RuleSpec>,
    pub updated: Vec<(Uuid, RuleSpec)>,
    pub removed: Vec<Uuid>,
    /// The community's rules afterwards.
    pub result: Vec<RuleSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
}

impl Plan {
    pub fn report(&self) -> ImportReport {
        ImportReport {
            added: self.added.len(),
            updated: self.updated.len(),
            unchanged: self.result.len() - self.added.len() - self.updated.len(),
            removed: self.removed.len(),
        }
    }
}

/// Matches incoming rules to current ones by name (case-insensitive).
pub fn plan(current: &[StoredRule], incoming: &[RuleSpec], replace_all: bool) -> Plan {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let mut plan = Plan::default();
    for spec in incoming {
        match current.iter().find(|c| same(&c.spec.name, &spec.name)) {
            Some(c) if c.spec == *spec => {}
            Some(c) => plan.updated.push((c.id, spec.clone())),
            None => plan.added.push(spec.clone()),
        }
    }
    for c in current {
        if !incoming.iter().any(|s| same(&s.name, &c.spec.name)) {
            if replace_all {
                plan.removed.push(c.id);
            } else {
                plan.result.push(c.spec.clone());
            }
        }
    }
    plan.result.extend(incoming.iter().cloned());
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automod::rules::{Action, Escalation, Trigger};
    use serenity::all::RoleId;

    fn rule(name: &str) -> RuleSpec {
        let mut spec = RuleSpec::new(
            name,
            Trigger::Phrases {
                phrases: vec!["free nitro".into()],
                mode: Default::default(),
                normalize: Default::default(),
            },
        );
        spec.actions.push(Action::Timeout { secs: 600 });
        spec.scope.exempt_roles.push(RoleId::new(7));
        spec.escalation = Some(Escalation {
            hits: 3,
            within_secs: 3600,
            actions: vec![Action::Quarantine],
        });
        spec
    }

    #[test]
    fn export_then_import_gives_the_same_rules_in_both_formats() {
        let specs = vec![rule("a"), rule("b")];
        for format in [Format::Json, Format::Toml] {
            let text = render(&specs, format).expect("renders");
            assert_eq!(parse(&text, format).expect("parses"), specs, "{text}");
        }
    }

    #[test]
    fn a_bad_file_names_the_rule_or_the_line() {
        let err = parse("{\"rules\": [", Format::Json).expect_err("truncated");
        assert!(err.to_string().contains("line 1"), "{err}");
        let mut bad = rule("ok");
        bad.name = "no spaces allowed".into();
        let text = render(&[rule("a"), bad], Format::Json).expect("renders");
        let err = parse(&text, Format::Json).expect_err("invalid name");
        assert!(
            err.to_string().starts_with("rule 2 (`no spaces allowed`)"),
            "{err}"
        );
        assert!(parse("{\"rules\": []}", Format::Json).is_err());
        assert!(parse("{\"rulez\": []}", Format::Json).is_err());
    }

    #[test]
    fn planning_matches_by_name() {
        let stored = |spec: RuleSpec| StoredRule {
            id: Uuid::now_v7(),
            spec,
            updated_at: chrono::Utc::now(),
        };
        let current = vec![
            stored(rule("keep")),
            stored(rule("Change")),
            stored(rule("gone")),
        ];
        let mut changed = rule("change");
        changed.dry_run = true;
        let incoming = vec![rule("keep"), changed, rule("new")];
        let merged = plan(&current, &incoming, false);
        assert_eq!(
            merged.report(),
            ImportReport {
                added: 1,
                updated: 1,
                unchanged: 2,
                removed: 0
            }
        );
        let replaced = plan(&current, &incoming, true);
        assert_eq!(replaced.report().removed, 1);
        assert_eq!(replaced.result.len(), 3);
    }
}
