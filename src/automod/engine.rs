//! The compiled rule set of one community and its evaluation of a message. Per
//! normalisation view, whole-word phrases are one hash map looked up at word edges
//! (`words.rs`) and the other phrases share one Aho-Corasick automaton; all regexes of
//! a view are one `RegexSet`, all banned domains one suffix set; so a message costs a
//! pass per view in use, not a pass per rule. Evaluation is pure apart from the counting
//! rules' [`Windows`], and touches no database.

use std::cell::RefCell;
use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::{RegexSet, RegexSetBuilder};
use serenity::all::{ChannelId, RoleId};
use uuid::Uuid;

use super::links::{self, DomainSet};
use super::normalize::{self, Normalization, View};
use super::rules::{LinkMode, PhraseMode, RuleSpec, Trigger};
use super::windows::{self, Recent, Windows};
use super::words::WordPhrases;

/// Compiled size limit of one rule set's regexes (per view).
const REGEX_SET_SIZE_LIMIT: usize = 64 << 20;
const REGEX_DFA_CACHE: usize = 8 << 20;
/// Compiled size limit of one regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Phrase bytes of one view up to which its automaton is a DFA (see [`automaton_kind`]).
const PHRASE_DFA_BYTES: usize = 32 << 10;

/// A message as automod sees it.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub content: &'a str,
    pub author: u64,
    pub channel: ChannelId,
    pub roles: &'a [RoleId],
    pub mentions: u32,
    pub attachments: &'a [String],
    pub account_age_secs: Option<u64>,
    pub member_age_secs: Option<u64>,
    /// Milliseconds on any monotonic clock (the counting rules' time).
    pub at_ms: u64,
}

/// One rule that fired, and on what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: usize,
    pub evidence: Evidence,
}

/// What matched. Text hits point into the rule set, so judging a message formats
/// nothing; [`RuleSet::evidence`] writes it out only for a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// View, automaton pattern, target of that pattern.
    Phrase(usize, usize, usize),
    /// View, index in the view's regex set.
    Pattern(usize, usize),
    Text(String),
}

#[derive(Debug)]
pub struct CompiledRule {
    pub id: Uuid,
    pub spec: RuleSpec,
}

/// What a phrase pattern demands of its match.
#[derive(Debug, Clone)]
struct PhraseTarget {
    rule: usize,
    start_boundary: bool,
    end_boundary: bool,
    /// The pattern's letter runs (strict view only).
    runs: Option<Box<[u8]>>,
    phrase: Box<str>,
}

/// Each regex of a set: its rule and the pattern as the owner wrote it.
type RegexTargets = Vec<(usize, Box<str>)>;

/// All phrases of one view. Each pattern (a phrase's text in the view, shared by equal
/// phrases) is found by one of two means; its targets then judge each match.
#[derive(Debug)]
struct Phrases {
    /// Patterns found anywhere (substrings, wildcards, whole words that begin or end
    /// with a non-word character); automaton pattern `i` is pattern `anywhere[i]`.
    automaton: Option<(AhoCorasick, Vec<usize>)>,
    /// Patterns only whole-word targets want, found by lookup at word edges.
    words: WordPhrases,
    targets: Vec<Vec<PhraseTarget>>,
}

#[derive(Debug, Default)]
struct ViewMatchers {
    phrases: Option<Phrases>,
    regexes: Option<(RegexSet, RegexTargets)>,
}

#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<CompiledRule>,
    views: [ViewMatchers; 3],
    /// Banned domains of every block rule, with the rules that list each.
    blocked: HashMap<Box<str>, Vec<usize>>,
    blocked_set: DomainSet,
    allow_rules: Vec<(usize, DomainSet)>,
    has_links: bool,
    /// Rules judged on the message's metadata and history, and invite rules: only
    /// these are visited one by one, so text rules cost nothing per rule.
    metadata_rules: Vec<usize>,
    invite_rules: Vec<usize>,
    keep_ms: u64,
}

/// A rule that could not be compiled: which, and why (a regex error names its
/// position).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule `{rule}`: {message}")]
pub struct CompileError {
    pub rule: String,
    pub message: String,
}

#[derive(Default)]
struct Builder {
    phrases: [Vec<(String, PhraseTarget)>; 3],
    regexes: [Vec<(String, usize, Box<str>)>; 3],
}

impl RuleSet {
    /// Compiles the enabled rules. Fails on the first rule that cannot be compiled.
    pub fn compile(rules: Vec<(Uuid, RuleSpec)>) -> Result<RuleSet, CompileError> {
        let mut set = RuleSet::default();
        let mut b = Builder::default();
        for (id, spec) in rules.into_iter().filter(|(_, s)| s.enabled) {
            let index = set.rules.len();
            set.add(index, &spec, &mut b)
                .map_err(|message| CompileError {
                    rule: spec.name.clone(),
                    message,
                })?;
            set.keep_ms = set.keep_ms.max(window_ms(&spec));
            set.rules.push(CompiledRule { id, spec });
        }
        for level in Normalization::ALL {
            set.views[level.index()] = b.build_view(level, &set.rules)?;
        }
        Ok(set)
    }

    fn add(&mut self, index: usize, spec: &RuleSpec, b: &mut Builder) -> Result<(), String> {
        match &spec.trigger {
            Trigger::Phrases {
                phrases,
                mode,
                normalize,
            } => {
                for p in phrases.iter().filter(|p| !p.trim().is_empty()) {
                    b.add_phrase(index, p, *mode, *normalize)?;
                }
            }
            Trigger::Regex {
                patterns,
                normalize,
            } => {
                for (n, p) in patterns.iter().enumerate() {
                    check_regex(p).map_err(|e| format!("pattern {}: {e}", n + 1))?;
                    b.regexes[normalize.index()].push((
                        ascii_word_boundaries(p),
                        index,
                        p.as_str().into(),
                    ));
                }
            }
            Trigger::Links { domains, mode } => {
                self.has_links = true;
                match mode {
                    LinkMode::Block => {
                        for d in domains {
                            if let Some(d) = links::normalize_domain(d) {
                                self.blocked_set.insert(&d);
                                self.blocked
                                    .entry(d.into_boxed_str())
                                    .or_default()
                                    .push(index);
                            }
                        }
                    }
                    LinkMode::Allow => {
                        let mut allowed = DomainSet::default();
                        domains.iter().for_each(|d| allowed.insert(d));
                        self.allow_rules.push((index, allowed));
                    }
                }
            }
            Trigger::Invites { .. } => {
                self.has_links = true;
                self.invite_rules.push(index);
            }
            _ => self.metadata_rules.push(index),
        }
        Ok(())
    }

    /// Approximate heap held by the matchers (the benchmark measures the real figure).
    pub fn memory_bytes(&self) -> usize {
        let ac: usize = self
            .views
            .iter()
            .filter_map(|v| v.phrases.as_ref())
            .map(|p| {
                p.automaton.as_ref().map_or(0, |(ac, _)| ac.memory_usage()) + p.words.heap_bytes()
            })
            .sum();
        ac + self.blocked_set.heap_bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What a hit matched, in words.
    pub fn evidence(&self, hit: &Hit) -> String {
        match &hit.evidence {
            Evidence::Phrase(view, pattern, target) => self.views[*view]
                .phrases
                .as_ref()
                .and_then(|p| p.targets.get(*pattern)?.get(*target))
                .map(|t| format!("phrase \"{}\"", t.phrase))
                .unwrap_or_default(),
            Evidence::Pattern(view, index) => self.views[*view]
                .regexes
                .as_ref()
                .and_then(|(_, t)| t.get(*index))
                .map(|(_, p)| format!("pattern /{p}/"))
                .unwrap_or_default(),
            Evidence::Text(text) => text.clone(),
        }
    }

    /// The rules `message` sets off, in rule order, each once.
    pub fn evaluate(&self, message: &Message<'_>, windows: &Windows) -> Vec<Hit> {
        let mut hits = Vec::new();
        if self.rules.is_empty() {
            return hits;
        }
        SCRATCH.with(|scratch| {
            let scratch = &mut *scratch.borrow_mut();
            self.match_text(message, scratch, &mut hits);
        });
        self.match_metadata(message, windows, &mut hits);
        hits.retain(|h| in_scope(&self.rules[h.rule].spec, message));
        hits.sort_by_key(|h| h.rule);
        hits.dedup_by_key(|h| h.rule);
        hits
    }

    fn match_text(&self, message: &Message<'_>, scratch: &mut Scratch, hits: &mut Vec<Hit>) {
        let [none, standard, strict] = &mut scratch.views;
        let [m_none, m_standard, m_strict] = &self.views;
        if m_none.is_used() {
            normalize::view_into(
                Normalization::None,
                message.content,
                &mut scratch.buffer,
                none,
            );
            m_none.match_view(0, none, &mut scratch.spans, hits);
        }
        if m_standard.is_used() || m_strict.is_used() || self.has_links {
            // The strict view starts from the standard one: compute that once.
            normalize::view_into(
                Normalization::Standard,
                message.content,
                &mut scratch.buffer,
                standard,
            );
            m_standard.match_view(1, standard, &mut scratch.spans, hits);
        }
        if m_strict.is_used() {
            normalize::strict_into(&standard.text, strict);
            m_strict.match_view(2, strict, &mut scratch.spans, hits);
        }
        if self.has_links {
            self.match_links(&standard.text, hits);
        }
    }

    fn match_links(&self, text: &str, hits: &mut Vec<Hit>) {
        for link in links::find_links(text) {
            if let Some(domain) = self.blocked_set.matching(link.host) {
                for &rule in self.blocked.get(domain).into_iter().flatten() {
                    hits.push(Hit {
                        rule,
                        evidence: Evidence::Text(format!("link to {domain}")),
                    });
                }
            }
            for (rule, allowed) in &self.allow_rules {
                if allowed.matching(link.host).is_none() && links::invite_code(&link).is_none() {
                    hits.push(Hit {
                        rule: *rule,
                        evidence: Evidence::Text(format!("link to {} (not allowed)", link.host)),
                    });
                }
            }
            if let Some(code) = links::invite_code(&link) {
                for &rule in &self.invite_rules {
                    let r = &self.rules[rule];
                    if let Trigger::Invites { allowed_codes } = &r.spec.trigger
                        && !allowed_codes.iter().any(|c| c.eq_ignore_ascii_case(code))
                    {
                        hits.push(Hit {
                            rule,
                            evidence: Evidence::Text(format!("invite {code}")),
                        });
                    }
                }
            }
        }
    }

    fn match_metadata(&self, m: &Message<'_>, windows: &Windows, hits: &mut Vec<Hit>) {
        let mut recorded = false;
        for &rule in &self.metadata_rules {
            let r = &self.rules[rule];
            if !in_scope(&r.spec, m) {
                continue;
            }
            let evidence = match &r.spec.trigger {
                Trigger::MentionSpam { max, within_secs } => match within_secs {
                    None => (m.mentions > *max).then(|| format!("{} mentions", m.mentions)),
                    Some(secs) => {
                        let c = record_once(&mut recorded, windows, m, self.keep_ms, *secs);
                        (c.mentions > *max).then(|| format!("{} mentions in {secs}s", c.mentions))
                    }
                },
                Trigger::Flood {
                    messages,
                    within_secs,
                } => {
                    let c = record_once(&mut recorded, windows, m, self.keep_ms, *within_secs);
                    (c.in_channel >= *messages)
                        .then(|| format!("{} messages in {within_secs}s", c.in_channel))
                }
                Trigger::Duplicates { count, within_secs } => {
                    let c = record_once(&mut recorded, windows, m, self.keep_ms, *within_secs);
                    (c.same_content >= *count).then(|| {
                        format!(
                            "the same message {} times in {within_secs}s",
                            c.same_content
                        )
                    })
                }
                Trigger::Caps {
                    min_percent,
                    min_letters,
                } => caps(m.content, *min_percent, *min_letters),
                Trigger::Attachments {
                    max,
                    blocked_extensions,
                } => attachments(m.attachments, *max, blocked_extensions),
                Trigger::NewAccount {
                    younger_than_secs,
                    first_message_only,
                } => m
                    .account_age_secs
                    .filter(|age| age < younger_than_secs)
                    .filter(|_| !first_message_only || windows.first_message(r.id, m.author))
                    .map(|age| format!("account {} old", super::rules::format_duration(age))),
                Trigger::NewMember {
                    joined_within_secs,
                    first_message_only,
                } => m
                    .member_age_secs
                    .filter(|age| age < joined_within_secs)
                    .filter(|_| !first_message_only || windows.first_message(r.id, m.author))
                    .map(|age| format!("joined {} ago", super::rules::format_duration(age))),
                _ => None,
            };
            if let Some(evidence) = evidence {
                hits.push(Hit {
                    rule,
                    evidence: Evidence::Text(evidence),
                });
            }
        }
    }
}

/// Records the message in the windows once per evaluation; later rules with another
/// window recount without recording again.
fn record_once(
    recorded: &mut bool,
    windows: &Windows,
    m: &Message<'_>,
    keep_ms: u64,
    within_secs: u32,
) -> windows::Counts {
    let recent = Recent {
        at_ms: m.at_ms,
        channel: m.channel.get(),
        content_hash: windows::content_hash(m.content),
        mentions: m.mentions,
    };
    let window = u64::from(within_secs) * 1000;
    if !*recorded {
        *recorded = true;
        windows.record(m.author, recent, window, keep_ms)
    } else {
        windows.counts(m.author, &recent, window)
    }
}

fn caps(content: &str, min_percent: u8, min_letters: u32) -> Option<String> {
    let (mut letters, mut upper) = (0u32, 0u32);
    for c in content.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        upper += u32::from(c.is_uppercase());
    }
    let percent = upper * 100 / letters.max(1);
    (letters >= min_letters && percent >= u32::from(min_percent))
        .then(|| format!("{percent}% capitals"))
}

fn attachments(files: &[String], max: Option<u32>, blocked: &[String]) -> Option<String> {
    if let Some(max) = max
        && files.len() > max as usize
    {
        return Some(format!("{} attachments", files.len()));
    }
    files.iter().find_map(|f| {
        let ext = f.rsplit_once('.')?.1;
        blocked
            .iter()
            .any(|b| b.trim_start_matches('.').eq_ignore_ascii_case(ext))
            .then(|| format!("attachment {f}"))
    })
}

fn in_scope(spec: &RuleSpec, m: &Message<'_>) -> bool {
    let s = &spec.scope;
    (s.channels.is_empty() || s.channels.contains(&m.channel))
        && !s.exempt_channels.contains(&m.channel)
        && !m.roles.iter().any(|r| s.exempt_roles.contains(r))
}

fn window_ms(spec: &RuleSpec) -> u64 {
    let secs = match &spec.trigger {
        Trigger::Flood { within_secs, .. } | Trigger::Duplicates { within_secs, .. } => {
            *within_secs
        }
        Trigger::MentionSpam {
            within_secs: Some(s),
            ..
        } => *s,
        _ => 0,
    };
    u64::from(secs) * 1000
}

impl ViewMatchers {
    fn is_used(&self) -> bool {
        self.phrases.is_some() || self.regexes.is_some()
    }

    fn match_view(
        &self,
        level: usize,
        view: &View,
        spans: &mut Vec<(usize, usize)>,
        hits: &mut Vec<Hit>,
    ) {
        if let Some(phrases) = &self.phrases {
            let mut judge = |pattern: usize, start: usize, end: usize| {
                for (n, t) in phrases.targets[pattern].iter().enumerate() {
                    if t.accepts(view, start, end) {
                        hits.push(Hit {
                            rule: t.rule,
                            evidence: Evidence::Phrase(level, pattern, n),
                        });
                    }
                }
            };
            if let Some((ac, anywhere)) = &phrases.automaton {
                for m in ac.find_overlapping_iter(view.text.as_str()) {
                    judge(anywhere[m.pattern().as_usize()], m.start(), m.end());
                }
            }
            if !phrases.words.is_empty() {
                phrases.words.find(&view.text, spans, judge);
            }
        }
        if let Some((set, targets)) = &self.regexes
            && set.is_match(&view.text)
        {
            for i in set.matches(&view.text).iter() {
                hits.push(Hit {
                    rule: targets[i].0,
                    evidence: Evidence::Pattern(level, i),
                });
            }
        }
    }
}

/// Sorts the patterns between the word lookup (those only whole-word targets want,
/// beginning and ending with a word character) and the automaton (the rest).
fn phrase_matchers(
    patterns: Vec<String>,
    targets: Vec<Vec<PhraseTarget>>,
) -> Result<Phrases, CompileError> {
    let mut words = WordPhrases::default();
    let mut anywhere = Vec::new();
    for (id, text) in patterns.iter().enumerate() {
        let whole_words = targets[id]
            .iter()
            .all(|t| t.start_boundary && t.end_boundary);
        if whole_words && WordPhrases::accepts_text(text) {
            words.insert(text, id);
        } else {
            anywhere.push(id);
        }
    }
    let automaton = if anywhere.is_empty() {
        None
    } else {
        let texts: Vec<&String> = anywhere.iter().map(|&id| &patterns[id]).collect();
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(automaton_kind(&texts)))
            .build(&texts)
            .map_err(|e| CompileError {
                rule: "(phrases)".into(),
                message: e.to_string(),
            })?;
        Some((ac, anywhere))
    };
    Ok(Phrases {
        automaton,
        words,
        targets,
    })
}

/// A DFA walks a byte in one table lookup where a contiguous NFA may follow failure
/// links, which made a 5,000-phrase rule set 2.2x slower than a 50-rule one (the
/// crate's own choice turns to the NFA above 100 patterns). A DFA has at most one
/// state per phrase byte, each a row of (byte classes x 4) bytes, so up to
/// `PHRASE_DFA_BYTES` of phrases it stays within a few MiB; larger lists (the limit
/// is 10,000 phrases) take the compact NFA.
fn automaton_kind(patterns: &[&String]) -> AhoCorasickKind {
    if patterns.iter().map(|p| p.len()).sum::<usize>() <= PHRASE_DFA_BYTES {
        AhoCorasickKind::DFA
    } else {
        AhoCorasickKind::ContiguousNFA
    }
}

impl PhraseTarget {
    fn accepts(&self, view: &View, start: usize, end: usize) -> bool {
        let text = &view.text;
        let starts = !self.start_boundary || normalize::boundary_before(text, start);
        let ends = !self.end_boundary || normalize::boundary_after(text, end);
        let runs = match &self.runs {
            Some(runs) => normalize::runs_allow(
                runs,
                &view.runs[start..end],
                !self.start_boundary,
                !self.end_boundary,
            ),
            None => true,
        };
        starts && ends && runs
    }
}

impl Builder {
    fn add_phrase(
        &mut self,
        rule: usize,
        phrase: &str,
        mode: PhraseMode,
        level: Normalization,
    ) -> Result<(), String> {
        let (start_boundary, end_boundary, core) = match mode {
            PhraseMode::WholeWord => (true, true, phrase),
            PhraseMode::Substring => (false, false, phrase),
            PhraseMode::Wildcard => {
                let core = phrase.trim_matches('*');
                if core.contains('*') {
                    return self.add_inner_wildcard(rule, phrase, level);
                }
                (!phrase.starts_with('*'), !phrase.ends_with('*'), core)
            }
        };
        let view = normalize::view(level, core);
        if view.text.trim().is_empty() {
            return Err(format!("the phrase `{phrase}` is empty once normalised"));
        }
        let target = |view: &View| PhraseTarget {
            rule,
            start_boundary,
            end_boundary,
            runs: (level == Normalization::Strict).then(|| view.runs.clone().into_boxed_slice()),
            phrase: phrase.into(),
        };
        if level == Normalization::Strict && core.contains(char::is_whitespace) {
            // Spelled out letter by letter, "f r e e n i t r o" becomes one word.
            let joined: String = core.split_whitespace().collect();
            let joined = normalize::view(level, &joined);
            let t = target(&joined);
            self.phrases[level.index()].push((joined.text, t));
        }
        let t = target(&view);
        self.phrases[level.index()].push((view.text, t));
        Ok(())
    }

    /// "free*nitro": the pieces normalised, joined by "any letters", as a regex.
    fn add_inner_wildcard(
        &mut self,
        rule: usize,
        phrase: &str,
        level: Normalization,
    ) -> Result<(), String> {
        let pieces: Vec<String> = phrase
            .split('*')
            .map(|p| regex::escape(&normalize::view(level, p).text))
            .collect();
        let open = if phrase.starts_with('*') {
            ""
        } else {
            r"(?-u:\b)"
        };
        let close = if phrase.ends_with('*') {
            ""
        } else {
            r"(?-u:\b)"
        };
        let pattern = format!("{open}{}{close}", pieces.join(r"\w*"));
        self.regexes[level.index()].push((pattern, rule, phrase.into()));
        Ok(())
    }

    fn build_view(
        &mut self,
        level: Normalization,
        rules: &[CompiledRule],
    ) -> Result<ViewMatchers, CompileError> {
        let mut out = ViewMatchers::default();
        let phrases = std::mem::take(&mut self.phrases[level.index()]);
        if !phrases.is_empty() {
            // Equal patterns share one automaton entry.
            let mut ids: HashMap<String, usize> = HashMap::new();
            let mut patterns: Vec<String> = Vec::new();
            let mut targets: Vec<Vec<PhraseTarget>> = Vec::new();
            for (text, target) in phrases {
                let id = *ids.entry(text.clone()).or_insert_with(|| {
                    patterns.push(text);
                    targets.push(Vec::new());
                    patterns.len() - 1
                });
                targets[id].push(target);
            }
            out.phrases = Some(phrase_matchers(patterns, targets)?);
        }
        let regexes = std::mem::take(&mut self.regexes[level.index()]);
        if !regexes.is_empty() {
            let set = RegexSetBuilder::new(regexes.iter().map(|(p, _, _)| p))
                .case_insensitive(true)
                .size_limit(REGEX_SET_SIZE_LIMIT)
                .dfa_size_limit(REGEX_DFA_CACHE)
                .build()
                .map_err(|e| {
                    // Name the rule whose pattern is at fault, if one alone is.
                    let culprit = regexes
                        .iter()
                        .find(|(p, _, _)| compile_one(p).is_err())
                        .map(|(_, r, _)| rules[*r].spec.name.clone());
                    CompileError {
                        rule: culprit.unwrap_or_else(|| "(all regexes together)".into()),
                        message: e.to_string(),
                    }
                })?;
            let targets = regexes.into_iter().map(|(_, r, p)| (r, p)).collect();
            out.regexes = Some((set, targets));
        }
        Ok(out)
    }
}

#[derive(Default)]
struct Scratch {
    views: [View; 3],
    buffer: String,
    /// Word spans of the view being matched.
    spans: Vec<(usize, usize)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A regex's syntax, checked alone so the error can point at the position.
fn check_regex(pattern: &str) -> Result<(), String> {
    if let Err(e) = regex_syntax::ast::parse::Parser::new().parse(pattern) {
        let at = e.span().start;
        return Err(format!(
            "{} at position {} (`{}`)",
            e.kind(),
            at.column,
            pattern
                .get(at.offset..)
                .unwrap_or_default()
                .chars()
                .take(12)
                .collect::<String>()
        ));
    }
    compile_one(pattern).map(drop)
}

fn compile_one(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&ascii_word_boundaries(pattern))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!(
                    "the pattern compiles to more than {} KiB; simplify it",
                    limit / 1024
                )
            }
            other => other.to_string(),
        })
}

/// `\b` and `\B` mean ASCII word boundaries here: texts are normalised towards ASCII
/// first, and a Unicode boundary would turn the regex engines' fast path off on any
/// non-ASCII message.
fn ascii_word_boundaries(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push_str(r"(?-u:\b)"),
            Some('B') => out.push_str(r"(?-u:\B)"),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    out
}
