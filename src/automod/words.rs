//! Whole-word phrases found by lookup instead of by automaton. A whole-word phrase that
//! begins and ends with a word character can only match from a word's start to a
//! later word's end, so a message costs one hash lookup per word (and per extra word
//! of the longest phrases), whatever the number of phrases: the cost of an
//! Aho-Corasick walk grows with its table, which stops fitting in cache at thousands of
//! phrases, and it reports every phrase found inside longer words only to have the
//! boundary check refuse it.

use rustc_hash::FxHashMap;

use super::normalize;

/// Whole-word phrases of one view, by their text in that view.
#[derive(Debug, Default)]
pub struct WordPhrases {
    /// Phrases, and the first words of phrases of several words, so a word that starts
    /// no phrase costs one lookup.
    entries: FxHashMap<Box<str>, Entry>,
    /// The distinct word counts of the phrases, ascending.
    word_counts: Vec<usize>,
    longest: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    /// The pattern this text spells, if it is one.
    id: Option<usize>,
    /// Whether a phrase of several words starts with this word.
    starts_longer: bool,
}

impl WordPhrases {
    /// Whether `text` qualifies: it starts and ends with a word character.
    pub fn accepts_text(text: &str) -> bool {
        let word = |c: Option<char>| c.is_some_and(normalize::is_word);
        word(text.chars().next()) && word(text.chars().next_back())
    }

    /// Adds `text` (which [`Self::accepts_text`]) as pattern `id`.
    pub fn insert(&mut self, text: &str, id: usize) {
        let mut spans = Vec::new();
        word_spans_into(text, &mut spans);
        if !self.word_counts.contains(&spans.len()) {
            self.word_counts.push(spans.len());
            self.word_counts.sort_unstable();
        }
        self.longest = self.longest.max(text.len());
        self.entries.entry(text.into()).or_default().id = Some(id);
        if let [(_, first_end), _, ..] = spans[..] {
            self.entries
                .entry(text[..first_end].into())
                .or_default()
                .starts_longer = true;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Approximate heap size, for the rule set's memory figure.
    pub fn heap_bytes(&self) -> usize {
        self.entries
            .keys()
            .map(|k| k.len() + std::mem::size_of::<(Box<str>, Entry)>() + 1)
            .sum()
    }

    /// Calls `found(id, start, end)` for every phrase that `text[start..end]` spells,
    /// with `start` a word's start and `end` a word's end. `spans` is scratch space.
    pub fn find(
        &self,
        text: &str,
        spans: &mut Vec<(usize, usize)>,
        mut found: impl FnMut(usize, usize, usize),
    ) {
        word_spans_into(text, spans);
        for (i, &(start, first_end)) in spans.iter().enumerate() {
            let Some(first) = self.entries.get(&text[start..first_end]) else {
                continue;
            };
            if let Some(id) = first.id {
                found(id, start, first_end);
            }
            if !first.starts_longer {
                continue;
            }
            for &n in self.word_counts.iter().filter(|&&n| n > 1) {
                let Some(&(_, end)) = spans.get(i + n - 1) else {
                    break;
                };
                if end - start > self.longest {
                    break;
                }
                if let Some(id) = self.entries.get(&text[start..end]).and_then(|e| e.id) {
                    found(id, start, end);
                }
            }
        }
    }
}

/// The byte spans of `text`'s words (maximal runs of word characters).
fn word_spans_into(text: &str, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (normalize::is_word(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(phrases: &[&str], text: &str) -> Vec<(usize, usize, usize)> {
        let mut w = WordPhrases::default();
        for (id, p) in phrases.iter().enumerate() {
            assert!(WordPhrases::accepts_text(p));
            w.insert(p, id);
        }
        let mut out = Vec::new();
        w.find(text, &mut Vec::new(), |id, s, e| out.push((id, s, e)));
        out
    }

    #[test]
    fn finds_whole_words_and_multi_word_phrases_only_at_word_edges() {
        assert_eq!(
            found(
                &["free", "free money", "classic"],
                "get free money, not freedom"
            ),
            vec![(0, 4, 8), (1, 4, 14)]
        );
        assert!(found(&["ass"], "a classic class").is_empty());
        assert_eq!(
            found(&["scunthorpe"], "Scunthorpe scunthorpe"),
            vec![(0, 11, 21)]
        );
        // The separator must be the phrase's own, as an automaton would demand.
        assert!(found(&["free money"], "free  money").is_empty());
        assert_eq!(found(&["naïve"], "so naïve!"), vec![(0, 3, 9)]);
        // A first word that is no phrase itself still leads to its longer phrases.
        assert_eq!(
            found(&["free nitro now", "nitro"], "get free nitro now"),
            vec![(0, 4, 18), (1, 9, 14)]
        );
    }

    #[test]
    fn only_phrases_with_word_characters_at_both_ends_qualify() {
        assert!(WordPhrases::accepts_text("free nitro"));
        assert!(!WordPhrases::accepts_text("$free"));
        assert!(!WordPhrases::accepts_text("c++"));
        assert!(!WordPhrases::accepts_text(""));
    }
}
