//! The fake Discord's world model: users, guilds, roles, channels, members, bans and
//! messages, plus Discord's permission and role-hierarchy rules.
//!
//! Everything here is plain data behind the single state mutex in `lib.rs`; nothing in
//! this module talks to the network. REST handlers and the scenario API mutate the world
//! and then emit gateway events describing the change, so the two views never diverge.

use std::collections::BTreeMap;

use serde_json::Value;

/// Discord permission bits used by the harness (see Discord's "Permissions" docs).
pub mod perm {
    pub const CREATE_INSTANT_INVITE: u64 = 1 << 0;
    pub const KICK_MEMBERS: u64 = 1 << 1;
    pub const BAN_MEMBERS: u64 = 1 << 2;
    pub const ADMINISTRATOR: u64 = 1 << 3;
    pub const MANAGE_CHANNELS: u64 = 1 << 4;
    pub const MANAGE_GUILD: u64 = 1 << 5;
    pub const ADD_REACTIONS: u64 = 1 << 6;
    pub const VIEW_AUDIT_LOG: u64 = 1 << 7;
    pub const VIEW_CHANNEL: u64 = 1 << 10;
    pub const SEND_MESSAGES: u64 = 1 << 11;
    pub const MANAGE_MESSAGES: u64 = 1 << 13;
    pub const EMBED_LINKS: u64 = 1 << 14;
    pub const ATTACH_FILES: u64 = 1 << 15;
    pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
    pub const MENTION_EVERYONE: u64 = 1 << 17;
    pub const USE_EXTERNAL_EMOJIS: u64 = 1 << 18;
    pub const CHANGE_NICKNAME: u64 = 1 << 26;
    pub const MANAGE_NICKNAMES: u64 = 1 << 27;
    pub const MANAGE_ROLES: u64 = 1 << 28;
    pub const USE_APPLICATION_COMMANDS: u64 = 1 << 31;
    pub const CREATE_PUBLIC_THREADS: u64 = 1 << 35;
    pub const SEND_MESSAGES_IN_THREADS: u64 = 1 << 38;
    pub const MODERATE_MEMBERS: u64 = 1 << 40;
    /// Every bit Discord currently defines (up to USE_EXTERNAL_APPS, 1 << 50). Owners and
    /// administrators get all of them, as Discord computes it.
    pub const ALL: u64 = (1 << 51) - 1;

    /// What `@everyone` gets in a freshly built guild: roughly Discord's defaults.
    pub const EVERYONE_DEFAULT: u64 = CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | CREATE_PUBLIC_THREADS
        | SEND_MESSAGES_IN_THREADS;

    /// The managed "guildops" role the bot gets when it joins a guild.
    pub const BOT_ROLE: u64 = MANAGE_ROLES
        | KICK_MEMBERS
        | BAN_MEMBERS
        | MODERATE_MEMBERS
        | MANAGE_MESSAGES
        | SEND_MESSAGES
        | VIEW_CHANNEL
        | EMBED_LINKS
        | READ_MESSAGE_HISTORY
        | MANAGE_NICKNAMES
        | CREATE_PUBLIC_THREADS
        | SEND_MESSAGES_IN_THREADS;
}

/// Channel types (Discord "Channel Types").
pub mod channel_type {
    pub const GUILD_TEXT: u8 = 0;
    pub const DM: u8 = 1;
    pub const PUBLIC_THREAD: u8 = 11;
    pub const PRIVATE_THREAD: u8 = 12;
}

#[derive(Clone, Debug)]
pub(crate) struct UserRec {
    pub id: u64,
    pub username: String,
    pub bot: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct RoleRec {
    pub id: u64,
    pub name: String,
    pub permissions: u64,
    pub position: i64,
    pub managed: bool,
    /// Set on a bot's managed role (`tags.bot_id`).
    pub bot_id: Option<u64>,
}

#[derive(Clone, Debug)]
pub(crate) struct ChannelRec {
    pub id: u64,
    pub guild_id: Option<u64>,
    pub kind: u8,
    pub name: String,
    pub position: i64,
    pub parent_id: Option<u64>,
    /// DM channels: the other party.
    pub recipient: Option<u64>,
    /// Threads: who started it and when.
    pub owner_id: Option<u64>,
    pub created_at: String,
    pub last_message_id: Option<u64>,
    pub message_count: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct MemberRec {
    pub user: u64,
    pub roles: Vec<u64>,
    pub nick: Option<String>,
    pub joined_at: String,
    pub communication_disabled_until: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct GuildRec {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    pub roles: BTreeMap<u64, RoleRec>,
    /// Channel ids in creation order; the records live in `World::channels`.
    pub channels: Vec<u64>,
    pub members: BTreeMap<u64, MemberRec>,
    /// Banned user id → reason.
    pub bans: BTreeMap<u64, Option<String>>,
    pub joined_at: String,
    /// False once the bot was removed (`remove_bot`): REST then answers 404/403 and the
    /// guild is no longer part of READY.
    pub bot_present: bool,
    /// During `guild_outage`: a new session gets the guild as unavailable in READY but
    /// no GUILD_CREATE until `guild_restore`, as during a Discord outage.
    pub outage: bool,
}

#[derive(Debug)]
pub(crate) struct World {
    next_id: u64,
    pub bot_user_id: u64,
    pub users: BTreeMap<u64, UserRec>,
    pub guilds: BTreeMap<u64, GuildRec>,
    pub channels: BTreeMap<u64, ChannelRec>,
    /// Every message the fake knows, by id (full Discord message objects).
    pub messages: BTreeMap<u64, Value>,
    /// Channel id → message ids in posting order.
    pub channel_messages: BTreeMap<u64, Vec<u64>>,
}

/// Discord-style ISO-8601 timestamp for "now".
pub(crate) fn now_timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

impl World {
    pub fn new() -> Self {
        // Snowflake-like ids: large, increasing, and clearly not real Discord ids
        // (this one decodes to a 2022 timestamp). Starting high keeps them looking like
        // snowflakes to code that sanity-checks id sizes.
        let mut w = World {
            next_id: 1_000_000_000_000_000_000,
            bot_user_id: 0,
            users: BTreeMap::new(),
            guilds: BTreeMap::new(),
            channels: BTreeMap::new(),
            messages: BTreeMap::new(),
            channel_messages: BTreeMap::new(),
        };
        let bot = w.next_id();
        w.users.insert(
            bot,
            UserRec {
                id: bot,
                username: "guildops".into(),
                bot: true,
            },
        );
        w.bot_user_id = bot;
        w
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn add_user(&mut self, username: &str, bot: bool) -> u64 {
        let id = self.next_id();
        self.users.insert(
            id,
            UserRec {
                id,
                username: username.to_string(),
                bot,
            },
        );
        id
    }

    /// Which guild a channel (or thread) belongs to.
    pub fn channel_guild(&self, channel: u64) -> Option<u64> {
        self.channels.get(&channel).and_then(|c| c.guild_id)
    }

    /// A guild the bot can currently see (present and not kicked).
    pub fn visible_guild(&self, guild: u64) -> Option<&GuildRec> {
        self.guilds.get(&guild).filter(|g| g.bot_present)
    }

    /// Computed guild-level permissions of a member, as Discord does it: owner → all;
    /// otherwise @everyone | each role; ADMINISTRATOR → all. Channel overwrites are not
    /// modelled (the fake has none), so this is also the channel permission.
    pub fn member_permissions(&self, guild: u64, user: u64) -> Option<u64> {
        let g = self.guilds.get(&guild)?;
        let m = g.members.get(&user)?;
        if g.owner_id == user {
            return Some(perm::ALL);
        }
        let mut bits = g.roles.get(&guild).map_or(0, |r| r.permissions);
        for r in &m.roles {
            if let Some(role) = g.roles.get(r) {
                bits |= role.permissions;
            }
        }
        if bits & perm::ADMINISTRATOR != 0 {
            bits = perm::ALL;
        }
        Some(bits)
    }

    /// Position of the member's highest role (@everyone counts as 0).
    pub fn highest_position(&self, guild: u64, user: u64) -> i64 {
        let Some(g) = self.guilds.get(&guild) else {
            return 0;
        };
        let Some(m) = g.members.get(&user) else {
            return 0;
        };
        m.roles
            .iter()
            .filter_map(|r| g.roles.get(r))
            .map(|r| r.position)
            .max()
            .unwrap_or(0)
    }

    /// Discord's hierarchy rule for the bot acting on a role: the bot needs `needed` (or
    /// ADMINISTRATOR) and the role must sit strictly below the bot's highest role.
    pub fn bot_can_manage_role(&self, guild: u64, role: &RoleRec, needed: u64) -> bool {
        let bot = self.bot_user_id;
        let perms = self.member_permissions(guild, bot).unwrap_or(0);
        perms & needed == needed && role.position < self.highest_position(guild, bot)
    }

    /// Hierarchy rule for the bot acting on a member (kick, ban, timeout, nick): the bot
    /// needs `needed`, the target must not be the owner, and the target's highest role
    /// must sit strictly below the bot's highest role.
    pub fn bot_can_act_on_member(&self, guild: u64, user: u64, needed: u64) -> bool {
        let bot = self.bot_user_id;
        let Some(g) = self.guilds.get(&guild) else {
            return false;
        };
        let perms = self.member_permissions(guild, bot).unwrap_or(0);
        perms & needed == needed
            && g.owner_id != user
            && user != bot
            && self.highest_position(guild, user) < self.highest_position(guild, bot)
    }
}
