//! The little memory that counting rules need (flood, duplicates, mentions over time,
//! first message of a new account): each member's recent messages in one guild, kept
//! for the longest window any rule looks back and pruned as it goes. It lives beside a
//! guild's compiled rules and is carried over when they are rebuilt. A restart forgets
//! it, which only delays a flood verdict by one window.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use uuid::Uuid;

/// The most messages remembered per member (a flood rule may count up to this).
pub const MAX_REMEMBERED: usize = 64;
/// How often (in messages) members with nothing recent are dropped.
const PRUNE_EVERY: u64 = 4096;

#[derive(Debug, Clone, Copy)]
pub struct Recent {
    pub at_ms: u64,
    pub channel: u64,
    pub content_hash: u64,
    pub mentions: u32,
}

#[derive(Default)]
struct State {
    by_member: HashMap<u64, VecDeque<Recent>>,
    first_seen: HashSet<(Uuid, u64)>,
    messages: u64,
}

#[derive(Default)]
pub struct Windows {
    state: Mutex<State>,
}

/// What a member did recently, as seen when their new message arrived (it included).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub in_channel: u32,
    pub same_content: u32,
    pub mentions: u32,
}

impl Windows {
    /// Records the message and counts, within `window_ms`, the member's messages in the
    /// same channel, with the same content, and their mentions.
    pub fn record(&self, user: u64, message: Recent, window_ms: u64, keep_ms: u64) -> Counts {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.messages += 1;
        if state.messages.is_multiple_of(PRUNE_EVERY) {
            let cutoff = message.at_ms.saturating_sub(keep_ms);
            state
                .by_member
                .retain(|_, q| q.back().is_some_and(|r| r.at_ms >= cutoff));
        }
        let queue = state.by_member.entry(user).or_default();
        let cutoff = message.at_ms.saturating_sub(keep_ms);
        while queue.front().is_some_and(|r| r.at_ms < cutoff) || queue.len() >= MAX_REMEMBERED {
            queue.pop_front();
        }
        queue.push_back(message);
        count(queue, &message, window_ms)
    }

    /// Counts within a window again, without recording (rules with other windows).
    pub fn counts(&self, user: u64, message: &Recent, window_ms: u64) -> Counts {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .by_member
            .get(&user)
            .map(|q| count(q, message, window_ms))
            .unwrap_or_default()
    }

    /// True the first time `rule` sees `user` post.
    pub fn first_message(&self, rule: Uuid, user: u64) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.first_seen.insert((rule, user))
    }
}

fn count(queue: &VecDeque<Recent>, message: &Recent, window_ms: u64) -> Counts {
    let since = message.at_ms.saturating_sub(window_ms);
    let mut c = Counts::default();
    for r in queue.iter().rev().take_while(|r| r.at_ms >= since) {
        c.in_channel += u32::from(r.channel == message.channel);
        c.same_content += u32::from(r.content_hash == message.content_hash);
        c.mentions += r.mentions;
    }
    c
}

/// The hash duplicates are compared by: case and surrounding space do not matter.
pub fn content_hash(content: &str) -> u64 {
    let mut h = DefaultHasher::new();
    for c in content.trim().chars().flat_map(char::to_lowercase) {
        c.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(at_ms: u64, channel: u64, text: &str) -> Recent {
        Recent {
            at_ms,
            channel,
            content_hash: content_hash(text),
            mentions: 1,
        }
    }

    #[test]
    fn counts_stay_inside_the_window() {
        let w = Windows::default();
        for i in 0..4 {
            w.record(7, msg(i * 1000, 1, "hi"), 10_000, 60_000);
        }
        let c = w.record(7, msg(4000, 2, "HI "), 10_000, 60_000);
        assert_eq!(c.in_channel, 1, "a new channel starts its own count");
        assert_eq!(c.same_content, 5, "case and spaces do not matter");
        assert_eq!(c.mentions, 5);
        let later = w.record(7, msg(13_500, 1, "other"), 10_000, 60_000);
        assert_eq!(later.in_channel, 1, "older messages fell out of the window");
        assert_eq!(
            w.record(8, msg(13_600, 1, "hi"), 10_000, 60_000).in_channel,
            1
        );
    }

    #[test]
    fn first_message_is_once_per_rule_and_member() {
        let w = Windows::default();
        let rule = Uuid::new_v4();
        assert!(w.first_message(rule, 1));
        assert!(!w.first_message(rule, 1));
        assert!(w.first_message(Uuid::new_v4(), 1));
    }
}
