//! Text normalisation against evasion. A message is matched in up to three *views*,
//! each a rewriting of its text; a rule picks the view its patterns are matched in, and
//! its patterns go through the same rewriting when the rule set is compiled, so both
//! sides always agree.
//!
//! - [`Normalization::None`]: lower case only.
//! - [`Normalization::Standard`]: compatibility decomposition (fullwidth and
//!   mathematical letters become plain ones), combining marks and zero-width characters
//!   dropped, confusable look-alikes (Cyrillic, Greek, …) replaced by their UTS #39
//!   prototype, lower case.
//! - [`Normalization::Strict`]: Standard, then leetspeak folded (in tokens that hold a
//!   letter), separators between letters dropped ("f.r.e.e", "f r e e"), and runs of one
//!   letter squeezed to one. The run lengths are kept beside the squeezed text so that a
//!   match can demand the pattern's own doubled letters: "ass" must not match "as", and
//!   "god" must not match "good", yet "goooood" still matches "god" (see [`runs_allow`]).
//!
//! ASCII takes a fast path; other characters are mapped once per thread and cached.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// How much a rule's text is rewritten before matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    None,
    Standard,
    #[default]
    Strict,
}

impl Normalization {
    pub const ALL: [Normalization; 3] = [
        Normalization::None,
        Normalization::Standard,
        Normalization::Strict,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Normalization::None => "none",
            Normalization::Standard => "standard",
            Normalization::Strict => "strict",
        }
    }

    pub fn parse(text: &str) -> Option<Normalization> {
        Self::ALL.into_iter().find(|n| n.as_str() == text)
    }
}

/// One view of a text: the rewritten text and, for the strict view, the length of
/// the run each of its characters stood for (one byte per byte of `text`).
#[derive(Debug, Default, Clone)]
pub struct View {
    pub text: String,
    pub runs: Vec<u8>,
}

impl View {
    pub fn clear(&mut self) {
        self.text.clear();
        self.runs.clear();
    }
}

/// Writes the strict view from an already computed standard view.
pub fn strict_into(standard: &str, out: &mut View) {
    out.clear();
    strict_from_standard(standard, out);
}

/// Writes the view `level` of `input` into `out` (cleared first). `scratch` is a buffer
/// the strict view uses for its intermediate text.
pub fn view_into(level: Normalization, input: &str, scratch: &mut String, out: &mut View) {
    out.clear();
    match level {
        Normalization::None => lowercase_into(input, &mut out.text),
        Normalization::Standard => standard_into(input, &mut out.text),
        Normalization::Strict => {
            scratch.clear();
            standard_into(input, scratch);
            strict_from_standard(scratch, out);
        }
    }
}

/// Convenience for one-off use (patterns at compile time, `/automod test`).
pub fn view(level: Normalization, input: &str) -> View {
    let mut out = View::default();
    view_into(level, input, &mut String::new(), &mut out);
    out
}

fn lowercase_into(input: &str, out: &mut String) {
    if input.is_ascii() {
        out.extend(input.bytes().map(|b| b.to_ascii_lowercase() as char));
    } else {
        out.extend(input.chars().flat_map(char::to_lowercase));
    }
}

fn standard_into(input: &str, out: &mut String) {
    for c in input.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            MAPPED.with(|cache| {
                let mut cache = cache.borrow_mut();
                if cache.len() > CACHE_LIMIT {
                    // Adversarial input could otherwise grow the cache without bound.
                    cache.clear();
                }
                out.push_str(cache.entry(c).or_insert_with(|| map_char(c)));
            });
        }
    }
}

const CACHE_LIMIT: usize = 1 << 16;

thread_local! {
    static MAPPED: RefCell<HashMap<char, Box<str>>> = RefCell::new(HashMap::new());
}

/// One non-ASCII character through the standard rewriting.
fn map_char(c: char) -> Box<str> {
    let mut out = String::new();
    decompose_compatible(c, |d| {
        if is_combining_mark(d) {
            return;
        }
        if d.is_ascii() {
            out.push(d.to_ascii_lowercase());
        } else {
            out.push_str(&prototype(d));
        }
    });
    out.into_boxed_str()
}

/// The UTS #39 prototype of a look-alike, lower-cased. The prototype of a capital is
/// taken first (Greek capital Nu looks like "N", its small form like "v"); a capital
/// whose prototype is "l" is an I, since capital I is "i" here. When that leaves a
/// non-ASCII letter, the small form's prototype may still be ASCII.
fn prototype(d: char) -> String {
    let direct = skeleton_lower(d, d.is_uppercase());
    if direct.is_ascii() {
        return direct;
    }
    let lowered: String = d.to_lowercase().map(|l| skeleton_lower(l, false)).collect();
    if lowered.is_ascii() { lowered } else { direct }
}

fn skeleton_lower(c: char, capital: bool) -> String {
    let mut buf = [0u8; 4];
    // The skeleton also drops default-ignorable characters (zero-width joiners…).
    unicode_security::skeleton(c.encode_utf8(&mut buf))
        .filter(|p| !is_combining_mark(*p))
        .flat_map(|p| if capital && p == 'l' { 'i' } else { p }.to_lowercase())
        .collect()
}

/// Leetspeak digits and symbols, folded only inside tokens that also hold a letter
/// (so "2024" and "$5" stay numbers).
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        '8' => 'b',
        '9' => 'g',
        '|' => 'l',
        _ => return None,
    })
}

pub fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

fn strict_from_standard(standard: &str, out: &mut View) {
    let mut pending_single: Vec<char> = Vec::new();
    let mut token = String::new();
    // One buffer for every token's characters, not one allocation per token.
    let mut chars: Vec<char> = Vec::new();
    let mut first = true;
    for raw in standard.split_whitespace() {
        strict_token(raw, &mut chars, &mut token);
        if token.chars().count() == 1 && token.chars().all(is_word) {
            // Letters spelled out one by one ("f r e e") are joined below.
            pending_single.extend(token.chars());
            continue;
        }
        flush_singles(&mut pending_single, out, &mut first);
        if !token.is_empty() {
            push_word(&token, out, &mut first);
        }
    }
    flush_singles(&mut pending_single, out, &mut first);
}

/// Three or more single letters in a row form one word; fewer stay words of their own.
fn flush_singles(singles: &mut Vec<char>, out: &mut View, first: &mut bool) {
    if singles.len() >= 3 {
        let word: String = singles.iter().collect();
        push_word(&word, out, first);
    } else {
        for c in singles.iter() {
            push_word(c.encode_utf8(&mut [0u8; 4]), out, first);
        }
    }
    singles.clear();
}

/// Leetspeak and in-word separators: "fr.3.3" → "free".
fn strict_token(raw: &str, chars: &mut Vec<char>, token: &mut String) {
    token.clear();
    chars.clear();
    chars.extend(raw.chars());
    if chars.iter().any(|c| c.is_alphabetic()) {
        fold_leet(chars);
    }
    let first_word = chars.iter().position(|&c| is_word(c));
    let last_word = chars.iter().rposition(|&c| is_word(c));
    for (i, &c) in chars.iter().enumerate() {
        let inside = first_word.is_some_and(|f| f < i) && last_word.is_some_and(|l| i < l);
        // Between letters a symbol is a separator; leading and trailing punctuation is
        // a word boundary and stays.
        if is_word(c) || !inside {
            token.push(c);
        }
    }
}

/// Digits fold anywhere in a word. A run of symbols folds when it touches a letter or
/// digit ("a$$", "h@ck"), except that "!" folds only before one, so "scam!!" keeps its
/// exclamation marks.
fn fold_leet(chars: &mut [char]) {
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            chars[i] = leet(chars[i]).unwrap_or(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_ascii_digit() && leet(chars[i]).is_some() {
            i += 1;
        }
        if i == start {
            i += 1;
            continue;
        }
        let before = start > 0 && is_word(chars[start - 1]);
        let after = i < chars.len() && is_word(chars[i]);
        for c in &mut chars[start..i] {
            if after || (before && *c != '!') {
                *c = leet(*c).unwrap_or(*c);
            }
        }
    }
}

/// Appends a word (space-separated), squeezing letter runs and recording their lengths.
fn push_word(word: &str, out: &mut View, first: &mut bool) {
    if !*first {
        out.text.push(' ');
        out.runs.push(1);
    }
    *first = false;
    let mut last: Option<char> = None;
    for c in word.chars() {
        if last == Some(c) && c.is_alphabetic() {
            if let Some(run) = out.runs.last_mut() {
                *run = run.saturating_add(1);
            }
            // A multi-byte char records its run on its last byte; fix up the others.
            let len = c.len_utf8();
            let n = out.runs.len();
            if len > 1 {
                let run = out.runs[n - 1];
                out.runs[n - len..n].fill(run);
            }
            continue;
        }
        last = Some(c);
        out.text.push(c);
        out.runs.extend(std::iter::repeat_n(1, c.len_utf8()));
    }
}

/// Whether the text's letter runs fit the pattern's: the same length, or a stretch of
/// three or more (deliberate elongation). A doubled letter is ordinary spelling, so it
/// must be in the pattern to match.
pub fn runs_allow(pattern_runs: &[u8], text_runs: &[u8], open_start: bool, open_end: bool) -> bool {
    let last = pattern_runs.len().saturating_sub(1);
    pattern_runs.len() == text_runs.len()
        && pattern_runs
            .iter()
            .zip(text_runs)
            .enumerate()
            .all(|(i, (&p, &t))| {
                // At an open end the text's run may go on past the match ("scam" in "scammer").
                let open = (i == 0 && open_start) || (i == last && open_end);
                t == p || t >= p.max(3) || (open && t >= p)
            })
}

/// Whether `text[start..end]` stands as whole words (no word character touches it).
pub fn is_whole_word(text: &str, start: usize, end: usize) -> bool {
    boundary_before(text, start) && boundary_after(text, end)
}

/// No word character ends just before byte `at`.
pub fn boundary_before(text: &str, at: usize) -> bool {
    text[..at].chars().next_back().is_none_or(|c| !is_word(c))
}

/// No word character starts at byte `at`.
pub fn boundary_after(text: &str, at: usize) -> bool {
    text[at..].chars().next().is_none_or(|c| !is_word(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(s: &str) -> String {
        view(Normalization::Strict, s).text
    }

    fn standard(s: &str) -> String {
        view(Normalization::Standard, s).text
    }

    #[test]
    fn standard_folds_unicode_tricks() {
        assert_eq!(standard("ＦＲＥＥ"), "free", "fullwidth");
        assert_eq!(standard("𝐟𝐫𝐞𝐞 𝓷𝓲𝓽𝓻𝓸"), "free nitro", "mathematical letters");
        assert_eq!(standard("frее"), "free", "Cyrillic е");
        assert_eq!(standard("ΝΙΤRΟ"), "nitro", "Greek capitals");
        assert_eq!(standard("f\u{200d}r\u{200b}ee"), "free", "zero-width");
        assert_eq!(standard("fr\u{0301}e\u{0308}e"), "free", "combining marks");
        assert_eq!(standard("Crème brûlée"), "creme brulee");
        assert_eq!(standard("日本語"), "日本語", "other scripts pass through");
    }

    #[test]
    fn strict_folds_leet_separators_and_runs() {
        assert_eq!(strict("fr33 n1tr0"), "fre nitro");
        assert_eq!(strict("f.r.e.e"), "fre");
        assert_eq!(strict("f r e e nitro"), "fre nitro");
        assert_eq!(strict("f-r-e-e"), "fre");
        assert_eq!(strict("freeeeee"), "fre");
        assert_eq!(strict("hello, world!"), "helo, world!");
        assert_eq!(strict("in 2024 $5"), "in 2024 $5", "numbers stay numbers");
        assert_eq!(strict("a b"), "a b", "two single letters stay apart");
    }

    #[test]
    fn runs_keep_doubled_letters_meaningful() {
        let ass = view(Normalization::Strict, "ass");
        let as_ = view(Normalization::Strict, "as");
        let asss = view(Normalization::Strict, "asssss");
        assert_eq!(ass.text, "as");
        assert!(
            !runs_allow(&ass.runs, &as_.runs, false, false),
            "'as' is not 'ass'"
        );
        assert!(
            runs_allow(&ass.runs, &asss.runs, false, false),
            "'asssss' is 'ass' stretched"
        );
        let god = view(Normalization::Strict, "god");
        let good = view(Normalization::Strict, "good");
        let gooood = view(Normalization::Strict, "gooood");
        assert!(
            !runs_allow(&god.runs, &good.runs, false, false),
            "'good' is a word"
        );
        assert!(
            runs_allow(&god.runs, &gooood.runs, false, false),
            "'gooood' is 'god' stretched"
        );
    }

    #[test]
    fn runs_track_multibyte_letters() {
        let v = view(Normalization::Strict, "日日日本");
        assert_eq!(v.text, "日本");
        assert_eq!(v.runs.len(), v.text.len());
        assert_eq!(&v.runs[..3], &[3, 3, 3]);
    }

    #[test]
    fn whole_words() {
        assert!(is_whole_word("a scam here", 2, 6));
        assert!(!is_whole_word("scunthorpe", 1, 5));
        assert!(is_whole_word("scam", 0, 4));
    }
}
