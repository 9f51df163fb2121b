//! Automod engine figures, printed (not a timed test): compile time and memory of a
//! rule set, per-message latency percentiles and throughput on real SMS messages,
//! adversarial 4,000-byte messages, the non-ASCII slice against the ASCII one, 50 rules
//! against 5,000, and a baseline that loops over one regex per rule as common bots do.
//!
//! Run: `cargo bench --bench automod [-- --corpus FILE --rules FILE]`. The defaults come
//! from ../shared/fixtures/automod (or GUILDOPS_SHARED_DIR): the SMS Spam Collection as
//! the haystack, and a generated rule set of 5,000 phrases, 200 regexes and the first
//! 1,000 real scam domains. `--rules` takes a JSON array of rules in the export format.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use guildops::automod::engine::{Message, RuleSet};
use guildops::automod::normalize::Normalization;
use guildops::automod::rules::{LinkMode, PhraseMode, RuleSpec, Trigger};
use guildops::automod::windows::Windows;
use serenity::all::ChannelId;
use uuid::Uuid;

/// Rounds of 50 against 5,201 rules, for the median ratio.
const RATIO_ROUNDS: usize = 7;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let shared = std::env::var("GUILDOPS_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("../shared"));
    let fixtures = shared.join("fixtures/automod");
    let corpus_path = arg("--corpus").unwrap_or_else(|| fixtures.join("sms-spam-collection.tsv"));
    let corpus = read(&corpus_path)
        .lines()
        .skip_while(|l| l.starts_with("Label\t"))
        .map(|l| l.split_once('\t').map_or(l, |(_, text)| text).to_owned())
        .filter(|l| !l.is_empty())
        .collect::<Vec<String>>();
    let rules = match arg("--rules") {
        Some(path) => serde_json::from_str::<Vec<RuleSpec>>(&read(&path))
            .unwrap_or_else(|e| panic!("{}: not a JSON array of rules: {e}", path.display())),
        None => generated_rules(&corpus, &read(&fixtures.join("phishing-domains.txt"))),
    };
    println!(
        "corpus: {} messages from {}; rules: {} ({} phrases, {} regexes, {} domains)",
        corpus.len(),
        corpus_path.display(),
        rules.len(),
        count(&rules, |t| match t {
            Trigger::Phrases { phrases, .. } => phrases.len(),
            _ => 0,
        }),
        count(&rules, |t| match t {
            Trigger::Regex { patterns, .. } => patterns.len(),
            _ => 0,
        }),
        count(&rules, |t| match t {
            Trigger::Links { domains, .. } => domains.len(),
            _ => 0,
        }),
    );

    let (set, compiled) = compile(&rules);
    println!(
        "compile: {:.1} ms (goal <= 100 ms); memory {:.2} MiB (goal <= 16 MiB)",
        ms(compiled.0),
        compiled.1 as f64 / (1 << 20) as f64
    );

    let windows = Windows::default();
    let full = run(&set, &corpus, &windows, 3);
    full.print("all messages, full rule set");
    println!(
        "throughput: {:.0} messages/s on one core (goal >= 100,000)",
        full.per_sec
    );

    let (ascii, non_ascii): (Vec<String>, Vec<String>) = corpus
        .iter()
        .cloned()
        .chain(corpus.iter().take(2000).map(|m| disguise(m)))
        .partition(|m| m.is_ascii());
    let a = run(&set, &ascii, &windows, 3);
    let n = run(&set, &non_ascii, &windows, 3);
    a.print(&format!("ASCII slice ({} messages)", ascii.len()));
    n.print(&format!("non-ASCII slice ({} messages)", non_ascii.len()));
    println!(
        "non-ASCII p99 / ASCII p99: {:.2}x (goal <= 3x)",
        n.p99.as_secs_f64() / a.p99.as_secs_f64()
    );

    adversarial(&set, &windows);

    let small: Vec<RuleSpec> = small_rules(&rules);
    let (small_set, _) = compile(&small);
    // Interleaved rounds, each ratio taken within its round: this machine's speed
    // drifts over seconds, which a ratio of two separate measurements would absorb.
    let mut rounds: Vec<(f64, f64)> = (0..RATIO_ROUNDS)
        .map(|_| {
            let s = run(&small_set, &corpus, &windows, 1).per_sec;
            let f = run(&set, &corpus, &windows, 1).per_sec;
            (s, f)
        })
        .collect();
    rounds.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
    let (s, f) = rounds[rounds.len() / 2];
    println!(
        "{} rules: {s:.0} msg/s; {} rules: {f:.0} msg/s; ratio {:.2}x, the median of {RATIO_ROUNDS} interleaved rounds (range {:.2}-{:.2}x; goal within 2x)",
        small.len(),
        rules.len(),
        s / f,
        rounds[0].0 / rounds[0].1,
        rounds[rounds.len() - 1].0 / rounds[rounds.len() - 1].1,
    );

    for kind in ["phrases", "regex", "links"] {
        let only: Vec<RuleSpec> = rules
            .iter()
            .filter(|r| r.trigger.kind() == kind)
            .cloned()
            .collect();
        let (only_set, _) = compile(&only);
        let f = run(&only_set, &corpus, &windows, 3);
        println!(
            "{kind} rules alone ({}): {:.0} msg/s, p50 {:.2} us, p99 {:.2} us",
            only.len(),
            f.per_sec,
            us(f.p50),
            us(f.p99)
        );
    }

    baseline(&rules, &corpus, full.per_sec);
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the defaults need ../shared/fixtures/automod beside the checkout, or GUILDOPS_SHARED_DIR)",
            path.display()
        )
    })
}

fn count(rules: &[RuleSpec], f: impl Fn(&Trigger) -> usize) -> usize {
    rules.iter().map(|r| f(&r.trigger)).sum()
}

fn compile(rules: &[RuleSpec]) -> (RuleSet, (Duration, usize)) {
    let input: Vec<(Uuid, RuleSpec)> = rules.iter().map(|r| (Uuid::new_v4(), r.clone())).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    let set = RuleSet::compile(input).expect("the rule set compiles");
    let took = started.elapsed();
    let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    (set, (took, bytes))
}

fn message(content: &str) -> Message<'_> {
    Message {
        content,
        author: 42,
        channel: ChannelId::new(1),
        roles: &[],
        mentions: 0,
        attachments: &[],
        account_age_secs: Some(10_000_000),
        member_age_secs: Some(10_000_000),
        at_ms: 0,
    }
}

struct Figures {
    p50: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
    per_sec: f64,
    hits: usize,
}

impl Figures {
    fn print(&self, what: &str) {
        println!(
            "{what}: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.1} us (goals 5 / 50 / 250 us); {} hits",
            us(self.p50),
            us(self.p99),
            us(self.p999),
            us(self.max),
            self.hits
        );
    }
}

/// The best of `rounds` passes (the machine is shared; the best pass is the engine's).
fn run(set: &RuleSet, corpus: &[String], windows: &Windows, rounds: usize) -> Figures {
    let mut best: Option<Figures> = None;
    for _ in 0..rounds {
        let mut times = Vec::with_capacity(corpus.len());
        let mut hits = 0;
        let started = Instant::now();
        for text in corpus {
            let t = Instant::now();
            hits += set.evaluate(&message(text), windows).len();
            times.push(t.elapsed());
        }
        let total = started.elapsed();
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let f = Figures {
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: *times.last().unwrap_or(&Duration::ZERO),
            per_sec: corpus.len() as f64 / total.as_secs_f64(),
            hits,
        };
        if best.as_ref().is_none_or(|b| f.per_sec > b.per_sec) {
            best = Some(f);
        }
    }
    best.expect("at least one round")
}

fn adversarial(set: &RuleSet, windows: &Windows) {
    let cases: Vec<(&str, String)> = vec![
        ("one letter repeated", "a".repeat(4000)),
        ("spaced single letters", "f r e e ".repeat(500)),
        ("dotted letters", "f.r.e.e.".repeat(500)),
        (
            "host-like tokens",
            "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t ".repeat(100),
        ),
        ("Cyrillic look-alikes", "аеорсух".repeat(4000 / 14)),
        ("fullwidth", "ｆｒｅｅ".repeat(4000 / 12)),
        (
            "zero-width between letters",
            "f\u{200b}r\u{200b}e\u{200b}e\u{200b}".repeat(4000 / 16),
        ),
        (
            "combining marks",
            "e\u{0301}\u{0308}\u{0336}".repeat(4000 / 7),
        ),
        ("leet digits", "1337 fr33 ".repeat(400)),
        ("mathematical letters", "𝐟𝐫𝐞𝐞".repeat(4000 / 16)),
    ];
    let mut worst = Duration::ZERO;
    for (name, text) in &cases {
        let text: String = text
            .chars()
            .scan(0, |n, c| {
                *n += c.len_utf8();
                (*n <= 4000).then_some(c)
            })
            .collect();
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            let _ = set.evaluate(&message(&text), windows);
            best = best.min(t.elapsed());
        }
        worst = worst.max(best);
        println!(
            "adversarial {} bytes, {name}: {:.1} us",
            text.len(),
            us(best)
        );
    }
    println!("adversarial worst: {:.3} ms (goal <= 1 ms each)", ms(worst));
}

/// Common bots' way: one regex per rule, each tried on every message.
fn baseline(rules: &[RuleSpec], corpus: &[String], engine_per_sec: f64) {
    let started = Instant::now();
    let mut regexes = Vec::new();
    for r in rules {
        match &r.trigger {
            Trigger::Phrases { phrases, .. } => {
                let alternation: Vec<String> = phrases.iter().map(|p| regex::escape(p)).collect();
                regexes.push(format!(r"(?i)\b(?:{})\b", alternation.join("|")));
            }
            Trigger::Regex { patterns, .. } => {
                regexes.extend(patterns.iter().map(|p| format!("(?i){p}")));
            }
            Trigger::Links { domains, .. } => {
                let alternation: Vec<String> = domains.iter().map(|d| regex::escape(d)).collect();
                regexes.push(format!(r"(?i)(?:^|[./\s])(?:{})\b", alternation.join("|")));
            }
            _ => {}
        }
    }
    let compiled: Vec<regex::Regex> = regexes
        .iter()
        .filter_map(|r| regex::Regex::new(r).ok())
        .collect();
    let compile = started.elapsed();
    let sample = &corpus[..corpus.len().min(500)];
    let started = Instant::now();
    let mut hits = 0usize;
    for text in sample {
        hits += compiled.iter().filter(|r| r.is_match(text)).count();
    }
    let per_sec = sample.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "baseline (one regex per rule, {} regexes, no normalisation): compile {:.0} ms, {:.0} msg/s on {} messages, {hits} hits; engine / baseline throughput: {:.1}x",
        compiled.len(),
        ms(compile),
        per_sec,
        sample.len(),
        engine_per_sec / per_sec
    );
}

/// 5,000 phrases (word pairs and words from the corpus, so some hit), 200 regexes and
/// 1,000 real scam domains, one rule per phrase and per regex.
fn generated_rules(corpus: &[String], domains: &str) -> Vec<RuleSpec> {
    let mut words: Vec<String> = corpus
        .iter()
        .flat_map(|m| m.split_whitespace())
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| w.len() >= 4 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    words.sort();
    words.dedup();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut rules = Vec::new();
    for i in 0..5000 {
        let phrase = if i % 3 == 0 {
            format!("{} {}", words[next(words.len())], words[next(words.len())])
        } else {
            words[next(words.len())].clone()
        };
        rules.push(RuleSpec::new(
            format!("phrase-{i}"),
            Trigger::Phrases {
                phrases: vec![phrase],
                mode: if i % 7 == 0 {
                    PhraseMode::Substring
                } else {
                    PhraseMode::WholeWord
                },
                normalize: Normalization::ALL[i % 3],
            },
        ));
    }
    for i in 0..200 {
        let w = &words[next(words.len())];
        let pattern = match i % 4 {
            0 => format!(r"\b{w}\s+\d+"),
            1 => format!(r"{w}[a-z]{{2,6}}\b"),
            2 => format!(r"(?:call|text)\s+{w}"),
            _ => format!(r"\d{{3,}}\s*{w}"),
        };
        rules.push(RuleSpec::new(
            format!("regex-{i}"),
            Trigger::Regex {
                patterns: vec![pattern],
                normalize: Normalization::Standard,
            },
        ));
    }
    rules.push(RuleSpec::new(
        "scam-domains",
        Trigger::Links {
            domains: domains.lines().take(1000).map(str::to_owned).collect(),
            mode: LinkMode::Block,
        },
    ));
    rules
}

/// 50 rules of the same kinds: 45 phrases, 4 regexes and the domain rule.
fn small_rules(rules: &[RuleSpec]) -> Vec<RuleSpec> {
    let phrases = rules
        .iter()
        .filter(|r| r.trigger.kind() == "phrases")
        .take(45);
    let regexes = rules.iter().filter(|r| r.trigger.kind() == "regex").take(4);
    let links = rules.iter().filter(|r| r.trigger.kind() == "links").take(1);
    phrases.chain(regexes).chain(links).cloned().collect()
}

/// A spammer's disguise: some Latin letters swapped for Cyrillic and fullwidth ones.
fn disguise(text: &str) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| match (c, i % 3) {
            ('a', _) => 'а',
            ('e', _) => 'е',
            ('o', 0) => 'о',
            ('i', 1) => 'і',
            (c, 2) if c.is_ascii_lowercase() => {
                char::from_u32(c as u32 - 'a' as u32 + 0xFF41).unwrap_or(c)
            }
            (c, _) => c,
        })
        .collect()
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
