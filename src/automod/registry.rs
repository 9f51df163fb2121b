//! Each guild's compiled rules, in memory, for the message path. A guild's entry is
//! replaced whole when its rules change (an `Arc` swapped under a short write lock), so
//! a message is judged by either the old rule set or the new one, never a mix, and the
//! next message after a change sees the new one. The counting windows survive the swap.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serenity::all::GuildId;
use uuid::Uuid;

use super::engine::RuleSet;
use super::windows::Windows;

/// One guild's rules as the message path sees them.
pub struct GuildRules {
    pub community_id: Uuid,
    pub rules: RuleSet,
    pub windows: Arc<Windows>,
}

pub struct Registry {
    guilds: RwLock<HashMap<GuildId, Arc<GuildRules>>>,
    /// The counting rules' clock.
    epoch: Instant,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            guilds: RwLock::default(),
            epoch: Instant::now(),
        }
    }
}

impl Registry {
    pub fn get(&self, guild: GuildId) -> Option<Arc<GuildRules>> {
        let guilds = self.guilds.read().unwrap_or_else(|p| p.into_inner());
        guilds.get(&guild).cloned()
    }

    /// Installs a freshly compiled rule set, keeping the guild's counting windows.
    pub fn install(&self, guild: GuildId, community_id: Uuid, rules: RuleSet) {
        let mut guilds = self.guilds.write().unwrap_or_else(|p| p.into_inner());
        let windows = guilds
            .get(&guild)
            .filter(|g| g.community_id == community_id)
            .map(|g| g.windows.clone())
            .unwrap_or_default();
        guilds.insert(
            guild,
            Arc::new(GuildRules {
                community_id,
                rules,
                windows,
            }),
        );
    }

    /// Every guild with rules loaded.
    pub fn guilds(&self) -> Vec<GuildId> {
        let guilds = self.guilds.read().unwrap_or_else(|p| p.into_inner());
        guilds.keys().copied().collect()
    }

    /// The bot left the guild: nothing to judge there any more.
    pub fn forget(&self, guild: GuildId) {
        let mut guilds = self.guilds.write().unwrap_or_else(|p| p.into_inner());
        guilds.remove(&guild);
    }

    /// Milliseconds since the registry was made (monotonic).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automod::rules::{RuleSpec, Trigger};

    fn compiled(phrase: &str) -> RuleSet {
        let spec = RuleSpec::new(
            "r",
            Trigger::Phrases {
                phrases: vec![phrase.into()],
                mode: Default::default(),
                normalize: Default::default(),
            },
        );
        RuleSet::compile(vec![(Uuid::nil(), spec)]).expect("compiles")
    }

    #[test]
    fn a_new_rule_set_replaces_the_old_and_keeps_the_windows() {
        let registry = Registry::default();
        let guild = GuildId::new(1);
        let community = Uuid::now_v7();
        registry.install(guild, community, compiled("old"));
        let before = registry.get(guild).expect("installed");
        registry.install(guild, community, compiled("new"));
        let after = registry.get(guild).expect("installed");
        assert!(Arc::ptr_eq(&before.windows, &after.windows));
        assert!(!Arc::ptr_eq(&before, &after));
        registry.forget(guild);
        assert!(registry.get(guild).is_none());
    }
}
