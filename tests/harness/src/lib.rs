//! A fake Discord for end-to-end tests: one loopback axum server that speaks Discord's
//! REST API (under `/api/v10`) and the v10 gateway WebSocket (`/gateway`), so the real
//! serenity/poise client runs against it unchanged.
//!
//! This file owns the [`FakeDiscord`] handle, its shared state and the world-building and
//! gateway-control API. The pieces live in:
//! - `world.rs`: the data model and Discord's permission/hierarchy rules;
//! - `payloads.rs`: Discord-shaped JSON for every object the fake sends;
//! - `rest.rs`: the REST routes, request log, auth and error bodies;
//! - `gateway.rs`: WebSocket sessions (HELLO/IDENTIFY/RESUME/heartbeats, dispatch log);
//! - `scenario.rs`: interactions driven by a test ([`Command`], [`InteractionHandle`]);
//! - `faults.rs`: injected failures and 429s;
//! - `stripe.rs`: a fake Stripe API ([`FakeStripe`]) and signed webhook events;
//! - `tests.rs`: contract tests feeding every payload to serenity's models.
//!
//! `tests/serenity_client.rs` and `tests/poise_client.rs` run real serenity and poise
//! clients against the fake.
//!
//! Typical use:
//! ```no_run
//! # use std::time::Duration;
//! # use guildops_harness::{Command, FakeDiscord};
//! # async fn example() {
//! let discord = FakeDiscord::start().await;
//! let guild = discord.add_guild("Test");
//! // Point the bot at it (both calls are needed, see STACK-NOTES):
//! // HttpBuilder::new(discord.token()).proxy(discord.base_url()).ratelimiter_disabled(true)
//! assert!(discord.wait_until_connected(Duration::from_secs(10)).await);
//! let user = discord.add_user("alice");
//! discord.add_member(guild.id, user, &[]);
//! let reply = discord
//!     .run_command(guild.id, guild.general_channel, user, Command::new("ping"))
//!     .reply(Duration::from_secs(5))
//!     .await
//!     .expect("the bot answered");
//! assert_eq!(reply.content.as_deref(), Some("pong"));
//! # }
//! ```
//!
//! Everything is in one mutex-protected `State`: the fake is a test double, so
//! simplicity and deterministic ordering (every gateway dispatch is sequenced while the
//! lock is held) matter more than throughput.

#![recursion_limit = "256"]

mod faults;
mod gateway;
pub mod openapi;
mod payloads;
mod rest;
mod scenario;
pub mod stripe;
pub mod world;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

pub use faults::Fault;
pub use gateway::GatewayStats;
pub use scenario::{Command, InteractionHandle, Reply, ReplySource};
pub use stripe::FakeStripe;
pub use world::perm;

use world::{ChannelRec, GuildRec, MemberRec, RoleRec, World, channel_type, now_timestamp};

/// Token the fake accepts unless configured otherwise.
pub const DEFAULT_TOKEN: &str = "fake-bot-token";

/// Startup options. `Config::default()` is what [`FakeDiscord::start`] uses.
#[derive(Clone, Debug)]
pub struct Config {
    /// Bot token (without the `Bot ` prefix) that REST and IDENTIFY must present.
    pub token: String,
    /// `heartbeat_interval` sent in HELLO, in milliseconds. Discord sends ~41250.
    pub heartbeat_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: DEFAULT_TOKEN.to_string(),
            heartbeat_interval_ms: 41_250,
        }
    }
}

/// A guild built by [`FakeDiscord::add_guild`], with the ids tests usually need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeGuild {
    pub id: u64,
    /// A regular (non-bot) user who owns the guild and is a member of it.
    pub owner_id: u64,
    /// `@everyone`; its id equals the guild id, as on Discord.
    pub everyone_role: u64,
    /// "Admin": ADMINISTRATOR, position 1, held by nobody initially.
    pub admin_role: u64,
    /// "guildops": the bot's managed role, position 50, held by the bot.
    pub bot_role: u64,
    pub general_channel: u64,
    pub admin_channel: u64,
    pub mod_log_channel: u64,
}

/// One REST request as the fake saw it, with the answer it gave.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without query, e.g. `/api/v10/guilds/1/members/2`.
    pub path: String,
    /// Raw query string without `?` (serenity sends `&name=value`).
    pub query: Option<String>,
    /// Lower-cased header names, values as sent; `authorization` is left out.
    pub headers: Vec<(String, String)>,
    /// The JSON body (for multipart uploads: the `payload_json` part).
    pub body: Option<Value>,
    /// Files of a multipart upload (`files[n]` parts), in order.
    pub files: Vec<UploadedFile>,
    pub status: u16,
    pub response: Option<Value>,
}

/// A file uploaded with a request (e.g. a message attachment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedFile {
    /// Form field name, e.g. `files[0]`.
    pub field: String,
    pub filename: String,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl RecordedRequest {
    /// A header's value (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `X-Audit-Log-Reason`, percent-decoded (serenity percent-encodes it).
    pub fn audit_log_reason(&self) -> Option<String> {
        self.header("x-audit-log-reason").map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    }

    /// A query parameter's decoded value (tolerates serenity's leading `&`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        rest::query_pairs(self.query.as_deref())
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// The fake Discord. Cheap to clone; all clones share one server and one world.
#[derive(Clone)]
pub struct FakeDiscord {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FakeDiscord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDiscord")
            .field("base_url", &self.base_url())
            .field("application_id", &self.inner.application_id)
            .field("bot_user_id", &self.inner.bot_user_id)
            .finish()
    }
}

pub(crate) struct Inner {
    token: String,
    application_id: u64,
    bot_user_id: u64,
    addr: SocketAddr,
    heartbeat_interval_ms: u64,
    state: Mutex<State>,
    /// Bumped after every state change so waiters can re-check their condition without
    /// missing a change that happens between the check and the wait.
    changed: watch::Sender<u64>,
}

/// Everything mutable. Held briefly; never across an await.
pub(crate) struct State {
    pub world: World,
    pub gateway: gateway::GatewayState,
    pub requests: Vec<RecordedRequest>,
    pub faults: Vec<Fault>,
    pub global_commands: Vec<Value>,
    pub guild_commands: BTreeMap<u64, Vec<Value>>,
    pub interactions: BTreeMap<u64, scenario::InteractionRec>,
    /// DM channels the bot may not post in (Discord error 50007).
    pub dm_blocked: Vec<u64>,
    /// Files users attached to slash commands, served at `/attachments/{id}/{name}`
    /// (Discord's CDN) by id.
    pub uploads: BTreeMap<u64, (String, Vec<u8>)>,
}

impl FakeDiscord {
    /// Start with the default token `fake-bot-token`.
    pub async fn start() -> FakeDiscord {
        Self::start_with(Config::default()).await
    }

    /// Bind 127.0.0.1:0 and serve REST and the gateway until the runtime shuts down.
    pub async fn start_with(config: Config) -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Discord on loopback");
        let addr = listener.local_addr().expect("local addr");
        let mut world = World::new();
        let application_id = world.next_id();
        let bot_user_id = world.bot_user_id;
        let fake = FakeDiscord {
            inner: Arc::new(Inner {
                token: config.token,
                application_id,
                bot_user_id,
                addr,
                heartbeat_interval_ms: config.heartbeat_interval_ms,
                state: Mutex::new(State {
                    world,
                    gateway: gateway::GatewayState::default(),
                    requests: Vec::new(),
                    faults: Vec::new(),
                    global_commands: Vec::new(),
                    guild_commands: BTreeMap::new(),
                    interactions: BTreeMap::new(),
                    dm_blocked: Vec::new(),
                    uploads: BTreeMap::new(),
                }),
                changed: watch::channel(0).0,
            }),
        };
        let app = axum::Router::new()
            .route("/gateway", axum::routing::get(gateway::ws_handler))
            .route(
                "/attachments/{id}/{name}",
                axum::routing::get(scenario::serve_upload),
            )
            .fallback(rest::handle)
            .with_state(fake.clone());
        tokio::spawn(async move {
            // Serving ends with the runtime (each #[tokio::test] has its own).
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    /// `http://127.0.0.1:PORT`: give it to `HttpBuilder::proxy`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The gateway URL served by `GET /api/v10/gateway`.
    pub fn gateway_url(&self) -> String {
        format!("ws://{}/gateway", self.inner.addr)
    }

    pub fn token(&self) -> &str {
        &self.inner.token
    }

    pub fn application_id(&self) -> u64 {
        self.inner.application_id
    }

    pub fn bot_user_id(&self) -> u64 {
        self.inner.bot_user_id
    }

    pub(crate) fn heartbeat_interval_ms(&self) -> u64 {
        self.inner.heartbeat_interval_ms
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock (a test assertion inside a callback) must not
        // turn every later call into a second, confusing panic.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Run `f` on the state, then wake waiters.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.lock());
        self.inner.changed.send_modify(|v| *v += 1);
        r
    }

    /// Wait until `check` returns `Some`, re-checking after every state change.
    pub(crate) async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.inner.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(t) = check(&self.lock()) {
                return Some(t);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return check(&self.lock()),
            }
        }
    }

    // ----- world building -------------------------------------------------------------

    /// Create a guild the bot is in (see [`FakeGuild`] for what it contains) and send
    /// GUILD_CREATE to connected sessions, as when the bot is added to a guild.
    pub fn add_guild(&self, name: &str) -> FakeGuild {
        self.mutate(|st| {
            let w = &mut st.world;
            let owner_id = w.add_user(&format!("{name}-owner"), false);
            let id = w.next_id();
            let admin_role = w.next_id();
            let bot_role = w.next_id();
            let bot = w.bot_user_id;
            let now = now_timestamp();
            let mut roles = BTreeMap::new();
            for r in [
                RoleRec {
                    id,
                    name: "@everyone".into(),
                    permissions: perm::EVERYONE_DEFAULT,
                    position: 0,
                    managed: false,
                    bot_id: None,
                },
                RoleRec {
                    id: admin_role,
                    name: "Admin".into(),
                    permissions: perm::ADMINISTRATOR,
                    position: 1,
                    managed: false,
                    bot_id: None,
                },
                RoleRec {
                    id: bot_role,
                    name: "guildops".into(),
                    permissions: perm::BOT_ROLE,
                    position: 50,
                    managed: true,
                    bot_id: Some(bot),
                },
            ] {
                roles.insert(r.id, r);
            }
            let mut members = BTreeMap::new();
            for (user, roles) in [(owner_id, vec![]), (bot, vec![bot_role])] {
                members.insert(
                    user,
                    MemberRec {
                        user,
                        roles,
                        nick: None,
                        joined_at: now.clone(),
                        communication_disabled_until: None,
                    },
                );
            }
            let mut channels = Vec::new();
            for (pos, cname) in ["general", "admin", "mod-log"].into_iter().enumerate() {
                let cid = w.next_id();
                w.channels.insert(
                    cid,
                    ChannelRec {
                        id: cid,
                        guild_id: Some(id),
                        kind: channel_type::GUILD_TEXT,
                        name: cname.into(),
                        position: pos as i64,
                        parent_id: None,
                        recipient: None,
                        owner_id: None,
                        created_at: now.clone(),
                        last_message_id: None,
                        message_count: 0,
                    },
                );
                channels.push(cid);
            }
            let g = GuildRec {
                id,
                name: name.into(),
                owner_id,
                roles,
                channels: channels.clone(),
                members,
                bans: BTreeMap::new(),
                joined_at: now,
                bot_present: true,
                outage: false,
            };
            let payload = payloads::guild_create(w, &g);
            w.guilds.insert(id, g);
            st.gateway.emit("GUILD_CREATE", payload);
            FakeGuild {
                id,
                owner_id,
                everyone_role: id,
                admin_role,
                bot_role,
                general_channel: channels[0],
                admin_channel: channels[1],
                mod_log_channel: channels[2],
            }
        })
    }

    /// A Discord user who is not in any guild yet.
    pub fn add_user(&self, username: &str) -> u64 {
        self.mutate(|st| st.world.add_user(username, false))
    }

    /// Add (or replace) a guild member and send GUILD_MEMBER_ADD.
    pub fn add_member(&self, guild: u64, user: u64, roles: &[u64]) {
        self.mutate(|st| {
            let w = &mut st.world;
            assert!(
                w.users.contains_key(&user),
                "add_member: unknown user {user}"
            );
            let m = MemberRec {
                user,
                roles: roles.to_vec(),
                nick: None,
                joined_at: now_timestamp(),
                communication_disabled_until: None,
            };
            let payload = payloads::member_event(w, guild, &m);
            w.guilds
                .get_mut(&guild)
                .unwrap_or_else(|| panic!("add_member: unknown guild {guild}"))
                .members
                .insert(user, m);
            st.gateway.emit("GUILD_MEMBER_ADD", payload);
        })
    }

    /// Remove a member (they left) and send GUILD_MEMBER_REMOVE.
    pub fn remove_member(&self, guild: u64, user: u64) {
        self.mutate(|st| {
            let w = &mut st.world;
            if let Some(g) = w.guilds.get_mut(&guild) {
                g.members.remove(&user);
            }
            let payload =
                json!({"guild_id": guild.to_string(), "user": payloads::user_by_id(w, user)});
            st.gateway.emit("GUILD_MEMBER_REMOVE", payload);
        })
    }

    /// Create a role and send GUILD_ROLE_CREATE. Positions above 50 outrank the bot.
    pub fn add_role(&self, guild: u64, name: &str, permissions: u64, position: i64) -> u64 {
        self.mutate(|st| {
            let w = &mut st.world;
            let id = w.next_id();
            let r = RoleRec {
                id,
                name: name.into(),
                permissions,
                position,
                managed: false,
                bot_id: None,
            };
            let payload = json!({"guild_id": guild.to_string(), "role": payloads::role(&r)});
            w.guilds
                .get_mut(&guild)
                .unwrap_or_else(|| panic!("add_role: unknown guild {guild}"))
                .roles
                .insert(id, r);
            st.gateway.emit("GUILD_ROLE_CREATE", payload);
            id
        })
    }

    /// Delete a role (an admin did, in Discord): members lose it, GUILD_ROLE_DELETE is
    /// sent, and REST calls naming it fail with Unknown Role (10011).
    pub fn delete_role(&self, guild: u64, role: u64) {
        self.mutate(|st| {
            let g = st
                .world
                .guilds
                .get_mut(&guild)
                .unwrap_or_else(|| panic!("delete_role: unknown guild {guild}"));
            g.roles.remove(&role);
            for m in g.members.values_mut() {
                m.roles.retain(|r| *r != role);
            }
            let payload = json!({"guild_id": guild.to_string(), "role_id": role.to_string()});
            st.gateway.emit("GUILD_ROLE_DELETE", payload);
        })
    }

    /// Create a text channel and send CHANNEL_CREATE.
    pub fn add_text_channel(&self, guild: u64, name: &str) -> u64 {
        self.mutate(|st| {
            let w = &mut st.world;
            let id = w.next_id();
            let g = w
                .guilds
                .get_mut(&guild)
                .unwrap_or_else(|| panic!("add_text_channel: unknown guild {guild}"));
            g.channels.push(id);
            let c = ChannelRec {
                id,
                guild_id: Some(guild),
                kind: channel_type::GUILD_TEXT,
                name: name.into(),
                position: g.channels.len() as i64 - 1,
                parent_id: None,
                recipient: None,
                owner_id: None,
                created_at: now_timestamp(),
                last_message_id: None,
                message_count: 0,
            };
            let payload = payloads::channel(w, &c);
            w.channels.insert(id, c);
            st.gateway.emit("CHANNEL_CREATE", payload);
            id
        })
    }

    /// The bot was kicked from the guild: GUILD_DELETE without `unavailable`. REST calls
    /// for the guild then fail like Discord's (Unknown Guild).
    pub fn remove_bot(&self, guild: u64) {
        self.mutate(|st| {
            let bot = st.world.bot_user_id;
            if let Some(g) = st.world.guilds.get_mut(&guild) {
                g.bot_present = false;
                g.members.remove(&bot);
            }
            st.gateway
                .emit("GUILD_DELETE", json!({"id": guild.to_string()}));
        })
    }

    /// A Discord outage for the guild: GUILD_DELETE `{id, unavailable: true}`. The world
    /// is unchanged; [`FakeDiscord::guild_restore`] ends the outage.
    pub fn guild_outage(&self, guild: u64) {
        self.mutate(|st| {
            if let Some(g) = st.world.guilds.get_mut(&guild) {
                g.outage = true;
            }
            st.gateway.emit(
                "GUILD_DELETE",
                json!({"id": guild.to_string(), "unavailable": true}),
            );
        })
    }

    /// End an outage (or re-add a removed bot): a full GUILD_CREATE for the guild.
    pub fn guild_restore(&self, guild: u64) {
        self.mutate(|st| {
            let w = &mut st.world;
            let bot = w.bot_user_id;
            let Some(g) = w.guilds.get_mut(&guild) else {
                return;
            };
            g.outage = false;
            if !g.bot_present {
                g.bot_present = true;
                let bot_role = g
                    .roles
                    .values()
                    .find(|r| r.bot_id == Some(bot))
                    .map(|r| r.id);
                g.members.insert(
                    bot,
                    MemberRec {
                        user: bot,
                        roles: bot_role.into_iter().collect(),
                        nick: None,
                        joined_at: now_timestamp(),
                        communication_disabled_until: None,
                    },
                );
            }
            let payload = payloads::guild_create(w, &w.guilds[&guild]);
            st.gateway.emit("GUILD_CREATE", payload);
        })
    }

    /// Change a role's permissions (e.g. take MANAGE_ROLES from the bot's role) and send
    /// GUILD_ROLE_UPDATE.
    pub fn set_role_permissions(&self, guild: u64, role: u64, permissions: u64) {
        self.update_role(guild, role, |r| r.permissions = permissions);
    }

    /// Move a role in the hierarchy and send GUILD_ROLE_UPDATE.
    pub fn set_role_position(&self, guild: u64, role: u64, position: i64) {
        self.update_role(guild, role, |r| r.position = position);
    }

    fn update_role(&self, guild: u64, role: u64, change: impl FnOnce(&mut RoleRec)) {
        self.mutate(|st| {
            let r = st
                .world
                .guilds
                .get_mut(&guild)
                .and_then(|g| g.roles.get_mut(&role))
                .unwrap_or_else(|| panic!("unknown role {role} in guild {guild}"));
            change(r);
            let payload = json!({"guild_id": guild.to_string(), "role": payloads::role(r)});
            st.gateway.emit("GUILD_ROLE_UPDATE", payload);
        })
    }

    /// Replace a member's roles as a human moderator would, and send
    /// GUILD_MEMBER_UPDATE.
    pub fn set_member_roles(&self, guild: u64, user: u64, roles: &[u64]) {
        self.mutate(|st| {
            let m = st
                .world
                .guilds
                .get_mut(&guild)
                .and_then(|g| g.members.get_mut(&user))
                .unwrap_or_else(|| panic!("user {user} is not a member of guild {guild}"));
            m.roles = roles.to_vec();
            let m = m.clone();
            let payload = payloads::member_event(&st.world, guild, &m);
            st.gateway.emit("GUILD_MEMBER_UPDATE", payload);
        })
    }

    /// A member's computed guild permissions (what interactions carry), or `None` if
    /// they are not a member.
    pub fn member_permissions(&self, guild: u64, user: u64) -> Option<u64> {
        self.lock().world.member_permissions(guild, user)
    }

    /// A member's role ids, or `None` if they are not a member.
    pub fn member_roles(&self, guild: u64, user: u64) -> Option<Vec<u64>> {
        let st = self.lock();
        st.world
            .guilds
            .get(&guild)?
            .members
            .get(&user)
            .map(|m| m.roles.clone())
    }

    /// A member's JSON as `GET /guilds/{g}/members/{u}` would return it.
    pub fn member(&self, guild: u64, user: u64) -> Option<Value> {
        let st = self.lock();
        let m = st.world.guilds.get(&guild)?.members.get(&user)?;
        Some(payloads::member(&st.world, m))
    }

    /// A moderator bans `user` by hand in Discord's own interface: the ban, the member's
    /// removal, `GUILD_BAN_ADD`, and the `GUILD_AUDIT_LOG_ENTRY_CREATE` (action 22) that
    /// Discord sends bots with View Audit Log and the GUILD_MODERATION intent.
    pub fn ban_by_hand(&self, guild: u64, moderator: u64, user: u64, reason: Option<&str>) {
        self.mutate(|st| {
            let is_member = st.world.guilds[&guild].members.contains_key(&user);
            st.world
                .guilds
                .get_mut(&guild)
                .expect("guild")
                .bans
                .insert(user, reason.map(str::to_string));
            if is_member {
                rest::remove_member(st, guild, user);
            }
            let banned = payloads::user_by_id(&st.world, user);
            st.gateway.emit(
                "GUILD_BAN_ADD",
                json!({"guild_id": guild.to_string(), "user": banned}),
            );
            let entry = st.world.next_id();
            st.gateway.emit(
                "GUILD_AUDIT_LOG_ENTRY_CREATE",
                json!({
                    "guild_id": guild.to_string(),
                    "id": entry.to_string(),
                    "user_id": moderator.to_string(),
                    "target_id": user.to_string(),
                    "action_type": 22,
                    "reason": reason,
                    "changes": [],
                }),
            );
        });
    }

    /// Ban reason if the user is banned (`Some(None)`: banned without a reason).
    pub fn ban(&self, guild: u64, user: u64) -> Option<Option<String>> {
        self.lock()
            .world
            .guilds
            .get(&guild)?
            .bans
            .get(&user)
            .cloned()
    }

    /// Messages the bot posted in the channel with `POST /channels/{c}/messages`, oldest
    /// first (interaction responses are read through [`InteractionHandle`] instead).
    /// Deleted messages are gone.
    /// Any message that still exists (a member's too), by id.
    pub fn message(&self, id: u64) -> Option<Value> {
        self.lock().world.messages.get(&id).cloned()
    }

    pub fn channel_messages(&self, channel: u64) -> Vec<Value> {
        let st = self.lock();
        let bot = st.world.bot_user_id.to_string();
        st.world
            .channel_messages
            .get(&channel)
            .into_iter()
            .flatten()
            .filter_map(|id| st.world.messages.get(id))
            .filter(|m| m["author"]["id"].as_str() == Some(bot.as_str()))
            .cloned()
            .collect()
    }

    /// Make the bot's DMs to this user fail with 50007 (DMs closed / no mutual guild).
    pub fn block_dms(&self, user: u64) {
        self.mutate(|st| st.dm_blocked.push(user));
    }

    // ----- gateway control ------------------------------------------------------------

    /// Send op 7 RECONNECT to every connected session; serenity reconnects and RESUMEs.
    pub fn send_reconnect(&self) {
        self.mutate(|st| st.gateway.send_op_all(json!({"op": 7, "d": null})));
    }

    /// Send op 9 INVALID_SESSION. Unless `resumable`, the sessions are forgotten, so the
    /// client must IDENTIFY again.
    pub fn invalidate_session(&self, resumable: bool) {
        self.mutate(|st| st.gateway.invalidate(resumable));
    }

    /// Close every gateway socket without a close frame (a network drop). Sessions stay
    /// resumable and buffer events meanwhile.
    pub fn drop_connections(&self) {
        self.mutate(|st| st.gateway.drop_all());
    }

    pub fn gateway_stats(&self) -> GatewayStats {
        self.lock().gateway.stats()
    }

    /// True once READY was sent and at least one session is connected.
    pub async fn wait_until_connected(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |st| {
            let s = st.gateway.stats();
            (s.ready_sent > 0 && s.connected).then_some(())
        })
        .await
        .is_some()
    }

    /// Wait until a dispatch of type `event` (e.g. "RESUMED") has been written to a
    /// client socket at any point in this run; returns the whole frame.
    pub async fn wait_for_dispatch(&self, event: &str, timeout: Duration) -> Option<Value> {
        self.wait_for(timeout, |st| st.gateway.find_sent(event))
            .await
    }

    // ----- request log and faults -----------------------------------------------------

    /// Every REST request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Recorded requests with this method (case-insensitive) whose path contains
    /// `path_contains`, in arrival order.
    pub fn requests_matching(&self, method: &str, path_contains: &str) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.contains(path_contains))
            .cloned()
            .collect()
    }

    /// Forget the request log (e.g. after startup noise), keeping the world.
    pub fn clear_requests(&self) {
        self.mutate(|st| st.requests.clear());
    }

    /// The first recorded request (past or future) matching `pred`.
    pub async fn wait_for_request(
        &self,
        pred: impl Fn(&RecordedRequest) -> bool,
        timeout: Duration,
    ) -> Option<RecordedRequest> {
        self.wait_for(timeout, |st| st.requests.iter().find(|r| pred(r)).cloned())
            .await
    }

    /// Commands from the last bulk overwrite, global (`None`) or for one guild.
    pub fn registered_commands(&self, guild: Option<u64>) -> Vec<Value> {
        let st = self.lock();
        match guild {
            None => st.global_commands.clone(),
            Some(g) => st.guild_commands.get(&g).cloned().unwrap_or_default(),
        }
    }

    /// The next `times` requests whose method matches (case-insensitive, `*` for any)
    /// and whose path contains `path_contains` fail with `status` and a Discord error
    /// body carrying `code`.
    pub fn fail_requests(
        &self,
        method: &str,
        path_contains: &str,
        status: u16,
        code: u32,
        times: usize,
    ) {
        self.mutate(|st| {
            st.faults
                .push(Fault::fail(method, path_contains, status, code, times))
        });
    }

    /// The next `times` matching requests get a Discord-shaped 429.
    pub fn rate_limit(
        &self,
        method: &str,
        path_contains: &str,
        retry_after_secs: f64,
        global: bool,
        times: usize,
    ) {
        self.mutate(|st| {
            st.faults.push(Fault::rate_limit(
                method,
                path_contains,
                retry_after_secs,
                global,
                times,
            ))
        });
    }

    /// Drop all pending injected faults.
    pub fn clear_faults(&self) {
        self.mutate(|st| st.faults.clear());
    }
}
