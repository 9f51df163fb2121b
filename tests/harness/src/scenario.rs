//! The scenario API: users acting in Discord (slash commands, button clicks, modal
//! submits, plain messages) and the bot's answers to those interactions.
//!
//! An interaction is dispatched as INTERACTION_CREATE with everything serenity 0.12.5 and
//! poise 0.7.1 need (computed `member.permissions` and `app_permissions`, `locale`,
//! `entitlements`, `attachment_size_limit`, resolved option data). The bot answers over
//! REST (callback, follow-ups, `@original` edits); those land here and become [`Reply`]s
//! that a test reads through its [`InteractionHandle`].

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::payloads::{self, MessageSpec};
use crate::rest::Answer;
use crate::world::now_timestamp;
use crate::{FakeDiscord, State};

/// Callback types (Discord "Interaction Callback Type").
pub mod callback_type {
    pub const PONG: u8 = 1;
    pub const CHANNEL_MESSAGE_WITH_SOURCE: u8 = 4;
    pub const DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: u8 = 5;
    pub const DEFERRED_UPDATE_MESSAGE: u8 = 6;
    pub const UPDATE_MESSAGE: u8 = 7;
    pub const APPLICATION_COMMAND_AUTOCOMPLETE_RESULT: u8 = 8;
    pub const MODAL: u8 = 9;
}

const EPHEMERAL: u64 = 1 << 6;
const LOADING: u64 = 1 << 7;

/// A slash command invocation, built like the user typed it.
///
/// `Command::new("mod").sub("timeout").user("member", id).integer("minutes", 10)`
/// produces `/mod timeout member:<id> minutes:10`; calling `sub` twice makes the first a
/// subcommand group.
#[derive(Clone, Debug)]
pub struct Command {
    name: String,
    subs: Vec<String>,
    options: Vec<Opt>,
}

#[derive(Clone, Debug)]
struct Opt {
    name: String,
    kind: u8,
    value: Value,
    target: Option<Target>,
    /// An attachment option's file (name, bytes), uploaded when the command runs.
    file: Option<(String, Vec<u8>)>,
}

#[derive(Clone, Copy, Debug)]
enum Target {
    User(u64),
    Channel(u64),
    Role(u64),
}

impl Command {
    pub fn new(name: &str) -> Self {
        Command {
            name: name.to_string(),
            subs: Vec::new(),
            options: Vec::new(),
        }
    }

    /// Descend into a subcommand (first call of two: the subcommand group).
    // The name is part of the agreed test API; it is not arithmetic.
    #[allow(clippy::should_implement_trait)]
    pub fn sub(mut self, name: &str) -> Self {
        assert!(
            self.subs.len() < 2,
            "Discord nests at most group + subcommand"
        );
        self.subs.push(name.to_string());
        self
    }

    fn opt(mut self, name: &str, kind: u8, value: Value, target: Option<Target>) -> Self {
        self.options.push(Opt {
            name: name.to_string(),
            kind,
            value,
            target,
            file: None,
        });
        self
    }

    /// An attachment option (type 11): the file is uploaded to the fake's CDN when the
    /// command runs, and `resolved.attachments` describes it, as Discord does.
    pub fn attachment(mut self, name: &str, filename: &str, data: &[u8]) -> Self {
        self.options.push(Opt {
            name: name.to_string(),
            kind: 11,
            value: Value::Null,
            target: None,
            file: Some((filename.to_string(), data.to_vec())),
        });
        self
    }

    /// Gives each attachment option an id and stores its file.
    fn upload(&mut self, st: &mut State) {
        for o in self.options.iter_mut() {
            if let Some((filename, data)) = &o.file {
                let id = st.world.next_id();
                st.uploads.insert(id, (filename.clone(), data.clone()));
                o.value = json!(id.to_string());
            }
        }
    }

    pub fn string(self, name: &str, v: &str) -> Self {
        self.opt(name, 3, json!(v), None)
    }
    pub fn integer(self, name: &str, v: i64) -> Self {
        self.opt(name, 4, json!(v), None)
    }
    pub fn boolean(self, name: &str, v: bool) -> Self {
        self.opt(name, 5, json!(v), None)
    }
    pub fn user(self, name: &str, id: u64) -> Self {
        self.opt(name, 6, json!(id.to_string()), Some(Target::User(id)))
    }
    pub fn channel(self, name: &str, id: u64) -> Self {
        self.opt(name, 7, json!(id.to_string()), Some(Target::Channel(id)))
    }
    pub fn role(self, name: &str, id: u64) -> Self {
        self.opt(name, 8, json!(id.to_string()), Some(Target::Role(id)))
    }
    pub fn number(self, name: &str, v: f64) -> Self {
        self.opt(name, 10, json!(v), None)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `data.options` (nested under type 2 / type 1 options) and `data.resolved`.
    fn build(&self, st: &State, guild: u64, cdn: &str) -> (Value, Value) {
        let w = &st.world;
        let mut resolved = json!({});
        let mut leaf = Vec::new();
        for o in &self.options {
            leaf.push(json!({"name": o.name, "type": o.kind, "value": o.value}));
            match o.target {
                Some(Target::User(id)) => {
                    resolved["users"][id.to_string()] = payloads::user_by_id(w, id);
                    if let Some(m) = w.guilds.get(&guild).and_then(|g| g.members.get(&id)) {
                        let mut pm = payloads::member(w, m);
                        if let Some(o) = pm.as_object_mut() {
                            o.remove("user");
                        }
                        pm["permissions"] =
                            json!(w.member_permissions(guild, id).unwrap_or(0).to_string());
                        resolved["members"][id.to_string()] = pm;
                    }
                }
                Some(Target::Channel(id)) => {
                    if let Some(c) = w.channels.get(&id) {
                        let p = w.member_permissions(guild, w.bot_user_id).unwrap_or(0);
                        resolved["channels"][id.to_string()] = payloads::partial_channel(w, c, p);
                    }
                }
                Some(Target::Role(id)) => {
                    if let Some(r) = w.guilds.get(&guild).and_then(|g| g.roles.get(&id)) {
                        resolved["roles"][id.to_string()] = payloads::role(r);
                    }
                }
                None => {
                    if let Some((filename, data)) = &o.file {
                        let id = o.value.as_str().unwrap_or_default();
                        let url = format!("{cdn}/attachments/{id}/{filename}");
                        resolved["attachments"][id] = json!({
                            "id": id,
                            "filename": filename,
                            "size": data.len(),
                            "url": url,
                            "proxy_url": url,
                            "content_type": "application/octet-stream",
                        });
                    }
                }
            }
        }
        let options = match self.subs.as_slice() {
            [] => Value::Array(leaf),
            [sub] => json!([{"name": sub, "type": 1, "options": leaf}]),
            [group, sub] => json!([{
                "name": group,
                "type": 2,
                "options": [{"name": sub, "type": 1, "options": leaf}],
            }]),
            _ => unreachable!("at most two levels"),
        };
        (options, resolved)
    }
}

/// Where a [`Reply`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplySource {
    /// The interaction callback itself (types 4, 7, 9).
    Callback,
    /// `POST /webhooks/{app}/{token}`.
    Followup,
    /// `PATCH /webhooks/{app}/{token}/messages/@original`.
    EditOriginal,
    /// `PATCH /webhooks/{app}/{token}/messages/{id}` of a follow-up.
    EditFollowup,
}

/// Something the user would see in answer to an interaction.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The callback type that acknowledged the interaction: 4 message, 5 deferred (the
    /// reply is then a follow-up or `@original` edit, see `source`), 6 deferred update,
    /// 7 component message update, 9 modal.
    pub kind: u8,
    /// Message content; `None` when empty or absent (embed-only replies, modals).
    pub content: Option<String>,
    pub embeds: Vec<Value>,
    /// Message components, or the modal's components for `kind == 9`.
    pub components: Vec<Value>,
    pub ephemeral: bool,
    /// The resulting message object, or the callback body for modals.
    pub raw: Value,
    pub source: ReplySource,
    /// Id of the message shown (for clicking its buttons); `None` for modals.
    pub message_id: Option<u64>,
}

impl Reply {
    fn from_message(kind: u8, source: ReplySource, msg: &Value) -> Reply {
        let arr = |k: &str| msg[k].as_array().cloned().unwrap_or_default();
        Reply {
            kind,
            content: msg["content"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            embeds: arr("embeds"),
            components: arr("components"),
            ephemeral: msg["flags"].as_u64().unwrap_or(0) & EPHEMERAL != 0,
            raw: msg.clone(),
            source,
            message_id: msg["id"].as_str().and_then(|s| s.parse().ok()),
        }
    }
}

/// Bookkeeping for one dispatched interaction.
#[derive(Clone, Debug)]
pub(crate) struct InteractionRec {
    pub id: u64,
    pub token: String,
    pub kind: u8,
    pub channel: u64,
    /// Callback type once acknowledged.
    pub acked: Option<u8>,
    pub defer_ephemeral: bool,
    pub original: Option<u64>,
    /// The message a component interaction was attached to.
    pub source_message: Option<u64>,
    pub followups: Vec<u64>,
    pub callbacks: Vec<Value>,
    pub replies: Vec<Reply>,
}

/// A dispatched interaction; read the bot's answer from it.
#[derive(Clone)]
pub struct InteractionHandle {
    fake: FakeDiscord,
    id: u64,
}

impl std::fmt::Debug for InteractionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InteractionHandle")
            .field("id", &self.id)
            .finish()
    }
}

impl InteractionHandle {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The interaction token (also the follow-up webhook token).
    pub fn token(&self) -> String {
        self.fake
            .lock()
            .interactions
            .get(&self.id)
            .map(|r| r.token.clone())
            .unwrap_or_default()
    }

    /// The first visible response: a type 4/7/9 callback, or after a deferral (5/6) the
    /// first follow-up or `@original` edit. `None` if nothing came within `timeout`.
    pub async fn reply(&self, timeout: Duration) -> Option<Reply> {
        self.nth_reply(0, timeout).await
    }

    /// The `n`-th (0-based) visible response, e.g. a follow-up after the first reply.
    pub async fn nth_reply(&self, n: usize, timeout: Duration) -> Option<Reply> {
        let id = self.id;
        self.fake
            .wait_for(timeout, |st| {
                st.interactions
                    .get(&id)
                    .and_then(|r| r.replies.get(n).cloned())
            })
            .await
    }

    /// All visible responses so far.
    pub fn replies(&self) -> Vec<Reply> {
        self.fake
            .lock()
            .interactions
            .get(&self.id)
            .map(|r| r.replies.clone())
            .unwrap_or_default()
    }

    /// The callback type once the bot acknowledged the interaction.
    pub async fn acknowledged(&self, timeout: Duration) -> Option<u8> {
        let id = self.id;
        self.fake
            .wait_for(timeout, |st| st.interactions.get(&id).and_then(|r| r.acked))
            .await
    }

    /// Raw callback bodies the bot sent (normally one).
    pub fn callbacks(&self) -> Vec<Value> {
        self.fake
            .lock()
            .interactions
            .get(&self.id)
            .map(|r| r.callbacks.clone())
            .unwrap_or_default()
    }
}

impl FakeDiscord {
    /// `user` runs a slash command in `channel` (call after `wait_until_connected`: an
    /// interaction emitted with no session is buffered only for sessions that exist).
    /// `data.id` is the id the bot's bulk
    /// overwrite got for that name (guild commands first, then global); an unregistered
    /// name gets a fresh id, which is what a stale client would send.
    pub fn run_command(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        cmd: Command,
    ) -> InteractionHandle {
        let mut cmd = cmd;
        let id = self.mutate(|st| {
            cmd.upload(st);
            let registered = st
                .guild_commands
                .get(&guild)
                .and_then(|l| find_command(l, &cmd.name))
                .map(|c| (c, true))
                .or_else(|| find_command(&st.global_commands, &cmd.name).map(|c| (c, false)));
            let (cmd_id, is_guild) = match registered {
                Some((c, g)) => (c, g),
                None => (st.world.next_id().to_string(), false),
            };
            let (options, resolved) = cmd.build(st, guild, &self.base_url());
            let mut data = json!({
                "id": cmd_id,
                "name": cmd.name,
                "type": 1,
                "options": options,
                "resolved": resolved,
            });
            if is_guild {
                data["guild_id"] = json!(guild.to_string());
            }
            dispatch(self, st, 2, guild, channel, user, data, None)
        });
        InteractionHandle {
            fake: self.clone(),
            id,
        }
    }

    /// `user` runs a slash command in their DM with the bot (no guild, no member: the
    /// interaction carries `user` and `context: 1`, as Discord sends it).
    pub fn run_dm_command(&self, user: u64, cmd: Command) -> InteractionHandle {
        let mut cmd = cmd;
        let id = self.mutate(|st| {
            cmd.upload(st);
            let cmd_id = find_command(&st.global_commands, &cmd.name)
                .unwrap_or_else(|| st.world.next_id().to_string());
            let (options, resolved) = cmd.build(st, 0, &self.base_url());
            let data = json!({
                "id": cmd_id, "name": cmd.name, "type": 1,
                "options": options, "resolved": resolved,
            });
            let dm = crate::rest::create_dm(st, &json!({"recipient_id": user.to_string()}));
            let channel: u64 = dm
                .body
                .as_ref()
                .and_then(|b| b["id"].as_str())
                .and_then(|s| s.parse().ok())
                .expect("a DM channel");
            dispatch_dm(self, st, user, channel, data)
        });
        InteractionHandle {
            fake: self.clone(),
            id,
        }
    }

    /// `user` runs the message context-menu command `name` on `message_id` (type 3).
    pub fn run_message_command(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        name: &str,
        message_id: u64,
    ) -> InteractionHandle {
        let id = self.mutate(|st| {
            let registered = st
                .guild_commands
                .get(&guild)
                .and_then(|l| find_typed_command(l, name, 3))
                .or_else(|| find_typed_command(&st.global_commands, name, 3))
                .unwrap_or_else(|| st.world.next_id().to_string());
            let message = st
                .world
                .messages
                .get(&message_id)
                .cloned()
                .unwrap_or_else(|| panic!("run_message_command: no message {message_id}"));
            let data = json!({
                "id": registered,
                "name": name,
                "type": 3,
                "target_id": message_id.to_string(),
                "resolved": {"messages": {message_id.to_string(): message}},
            });
            dispatch(self, st, 2, guild, channel, user, data, None)
        });
        InteractionHandle {
            fake: self.clone(),
            id,
        }
    }

    /// `user` runs the user context-menu command `name` on `target` (type 2).
    pub fn run_user_command(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        name: &str,
        target: u64,
    ) -> InteractionHandle {
        let id = self.mutate(|st| {
            let registered = st
                .guild_commands
                .get(&guild)
                .and_then(|l| find_typed_command(l, name, 2))
                .or_else(|| find_typed_command(&st.global_commands, name, 2))
                .unwrap_or_else(|| st.world.next_id().to_string());
            // The same resolved data a slash command's user option carries.
            let (_, resolved) =
                Command::new(name)
                    .user("target", target)
                    .build(st, guild, &self.base_url());
            let data = json!({
                "id": registered,
                "name": name,
                "type": 2,
                "target_id": target.to_string(),
                "resolved": resolved,
            });
            dispatch(self, st, 2, guild, channel, user, data, None)
        });
        InteractionHandle {
            fake: self.clone(),
            id,
        }
    }

    /// `user` clicks the button `custom_id` on message `message_id` (type 3, component 2).
    pub fn click_button(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        message_id: u64,
        custom_id: &str,
    ) -> InteractionHandle {
        let data = json!({"custom_id": custom_id, "component_type": 2});
        self.component(guild, channel, user, message_id, data)
    }

    /// `user` picks `values` in the string select `custom_id` (type 3, component 3).
    pub fn select_menu(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        message_id: u64,
        custom_id: &str,
        values: &[&str],
    ) -> InteractionHandle {
        let data = json!({"custom_id": custom_id, "component_type": 3, "values": values});
        self.component(guild, channel, user, message_id, data)
    }

    fn component(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        message_id: u64,
        data: Value,
    ) -> InteractionHandle {
        let id = self.mutate(|st| {
            let message = match st.world.messages.get(&message_id) {
                Some(m) => m.clone(),
                // A message the fake never saw (posted before the test began): a minimal
                // bot message is enough for serenity.
                None => payloads::message(
                    &st.world,
                    &MessageSpec {
                        id: message_id,
                        channel_id: channel,
                        author: st.world.bot_user_id,
                        body: &json!({}),
                        kind: 0,
                        webhook_id: None,
                        application_id: None,
                    },
                ),
            };
            dispatch(self, st, 3, guild, channel, user, data, Some(message))
        });
        InteractionHandle {
            fake: self.clone(),
            id,
        }
    }

    /// `user` submits modal `custom_id` with text inputs `(custom_id, value)`.
    pub fn submit_modal(
        &self,
        guild: u64,
        channel: u64,
        user: u64,
        custom_id: &str,
        fields: &[(&str, &str)],
    ) -> InteractionHandle {
        let rows: Vec<Value> = fields
            .iter()
            .map(|(k, v)| json!({"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}))
            .collect();
        let data = json!({"custom_id": custom_id, "components": rows});
        let id = self.mutate(|st| dispatch(self, st, 5, guild, channel, user, data, None));
        InteractionHandle {
            fake: self.clone(),
            id,
        }
    }

    /// `user` posts `content` in `channel` (MESSAGE_CREATE). Returns the message id.
    pub fn post_message(&self, guild: u64, channel: u64, user: u64, content: &str) -> u64 {
        self.mutate(|st| {
            assert_eq!(
                st.world.channel_guild(channel),
                Some(guild),
                "post_message: channel {channel} is not in guild {guild}"
            );
            let msg = crate::rest::post_message(
                st,
                channel,
                user,
                &json!({"content": content}),
                0,
                Vec::new(),
            );
            msg["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_default()
        })
    }
}

fn find_command(list: &[Value], name: &str) -> Option<String> {
    find_typed_command(list, name, 1)
}

/// A registered command's id by name and type (1 slash, 2 user menu, 3 message menu).
fn find_typed_command(list: &[Value], name: &str, kind: u64) -> Option<String> {
    list.iter()
        .find(|c| c["name"] == name && c["type"].as_u64().unwrap_or(1) == kind)
        .and_then(|c| c["id"].as_str())
        .map(str::to_string)
}

/// INTERACTION_CREATE for a slash command in the bot's DM with `user`.
fn dispatch_dm(fake: &FakeDiscord, st: &mut State, user: u64, channel: u64, data: Value) -> u64 {
    let id = st.world.next_id();
    let token = format!("fake-interaction-token-{id}");
    let payload = json!({
        "id": id.to_string(),
        "application_id": fake.application_id().to_string(),
        "type": 2,
        "data": data,
        "channel": {"id": channel.to_string(), "type": 1},
        "channel_id": channel.to_string(),
        "user": payloads::user_by_id(&st.world, user),
        "token": token,
        "version": 1,
        "app_permissions": "0",
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": "0"},
        "context": 1,
        "attachment_size_limit": 10_485_760,
    });
    st.interactions.insert(
        id,
        InteractionRec {
            id,
            token,
            kind: 2,
            channel,
            acked: None,
            defer_ephemeral: false,
            original: None,
            source_message: None,
            followups: Vec::new(),
            callbacks: Vec::new(),
            replies: Vec::new(),
        },
    );
    st.gateway.emit("INTERACTION_CREATE", payload);
    id
}

/// Build and emit INTERACTION_CREATE; returns the interaction id.
#[allow(clippy::too_many_arguments)]
fn dispatch(
    fake: &FakeDiscord,
    st: &mut State,
    kind: u8,
    guild: u64,
    channel: u64,
    user: u64,
    data: Value,
    message: Option<Value>,
) -> u64 {
    let id = st.world.next_id();
    let w = &st.world;
    let g = w
        .guilds
        .get(&guild)
        .unwrap_or_else(|| panic!("interaction in unknown guild {guild}"));
    let m = g
        .members
        .get(&user)
        .unwrap_or_else(|| panic!("user {user} is not a member of guild {guild}"));
    let ch = w
        .channels
        .get(&channel)
        .unwrap_or_else(|| panic!("interaction in unknown channel {channel}"));
    let perms = w.member_permissions(guild, user).unwrap_or(0);
    let app_perms = w.member_permissions(guild, w.bot_user_id).unwrap_or(0);
    let mut member = payloads::member(w, m);
    member["permissions"] = json!(perms.to_string());
    let token = format!("fake-interaction-token-{id}");
    let mut payload = json!({
        "id": id.to_string(),
        "application_id": fake.application_id().to_string(),
        "type": kind,
        "data": data,
        "guild": {"id": guild.to_string(), "locale": "en-US", "features": []},
        "guild_id": guild.to_string(),
        "channel": payloads::partial_channel(w, ch, perms),
        "channel_id": channel.to_string(),
        "member": member,
        "token": token,
        "version": 1,
        "app_permissions": app_perms.to_string(),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": guild.to_string()},
        "context": 0,
        "attachment_size_limit": 10_485_760,
    });
    let source_message = message
        .as_ref()
        .and_then(|m| m["id"].as_str())
        .and_then(|s| s.parse().ok());
    if let Some(msg) = message {
        payload["message"] = msg;
    }
    st.interactions.insert(
        id,
        InteractionRec {
            id,
            token,
            kind,
            channel,
            acked: None,
            defer_ephemeral: false,
            original: None,
            source_message,
            followups: Vec::new(),
            callbacks: Vec::new(),
            replies: Vec::new(),
        },
    );
    if !st.gateway.stats().connected {
        // Discord would not deliver this either; say so, since the symptom in a test is
        // only a `reply()` timeout much later.
        eprintln!(
            "guildops-harness: INTERACTION_CREATE {id} emitted with no gateway session \
             connected; call wait_until_connected first"
        );
    }
    st.gateway.emit("INTERACTION_CREATE", payload);
    id
}

/// A message the bot sends as an interaction response (original or follow-up).
fn response_message(
    fake: &FakeDiscord,
    st: &mut State,
    rec: &InteractionRec,
    body: &Value,
) -> Value {
    let mid = st.world.next_id();
    // Interaction responses to slash commands are type 20 (CHAT_INPUT_COMMAND).
    let kind = if rec.kind == 2 { 20 } else { 0 };
    let msg = payloads::message(
        &st.world,
        &MessageSpec {
            id: mid,
            channel_id: rec.channel,
            author: st.world.bot_user_id,
            body,
            kind,
            webhook_id: Some(fake.application_id()),
            application_id: Some(fake.application_id()),
        },
    );
    st.world.messages.insert(mid, msg.clone());
    let flags = msg["flags"].as_u64().unwrap_or(0);
    // Discord sends MESSAGE_CREATE for visible responses, never for ephemeral ones.
    if flags & (EPHEMERAL | LOADING) == 0 {
        let payload = payloads::gateway_message(&st.world, &msg);
        st.gateway.emit("MESSAGE_CREATE", payload);
    }
    msg
}

/// MESSAGE_UPDATE for an edited message the channel can see (not ephemeral).
fn emit_update(st: &mut State, msg: &Value) {
    if flags_of(msg) & EPHEMERAL == 0 {
        let payload = payloads::gateway_message(&st.world, msg);
        st.gateway.emit("MESSAGE_UPDATE", payload);
    }
}

/// Apply a message edit body (content, embeds, components, flags) to a message.
pub(crate) fn apply_edit(msg: &mut Value, body: &Value) {
    if let Some(c) = body.get("content") {
        msg["content"] = json!(c.as_str().unwrap_or(""));
    }
    if let Some(e) = body.get("embeds") {
        let embeds: Vec<Value> = e
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut e| {
                if e.get("type").is_none() {
                    e["type"] = json!("rich");
                }
                e
            })
            .collect();
        msg["embeds"] = Value::Array(embeds);
    }
    if let Some(c) = body.get("components") {
        msg["components"] = payloads::numbered_components(Some(c));
    }
    // An edit ends a deferred "thinking..." state.
    let flags = msg["flags"].as_u64().unwrap_or(0) & !LOADING;
    msg["flags"] = json!(flags);
    msg["edited_timestamp"] = json!(now_timestamp());
}

fn flags_of(v: &Value) -> u64 {
    v["flags"].as_u64().unwrap_or(0)
}

/// `POST /interactions/{id}/{token}/callback`.
pub(crate) fn callback(
    fake: &FakeDiscord,
    st: &mut State,
    id: u64,
    token: &str,
    body: &Value,
    with_response: bool,
) -> Answer {
    let Some(rec) = st
        .interactions
        .get(&id)
        .filter(|r| r.token == token)
        .cloned()
    else {
        return Answer::error(404, 10062);
    };
    if rec.acked.is_some() {
        return Answer::error(400, 40060);
    }
    let Some(kind) = body["type"].as_u64().map(|k| k as u8) else {
        return Answer::error(400, 50035);
    };
    let data = body.get("data").cloned().unwrap_or_else(|| json!({}));
    let mut next = rec.clone();
    let mut message: Option<Value> = None;
    match kind {
        callback_type::PONG
        | callback_type::DEFERRED_UPDATE_MESSAGE
        | callback_type::APPLICATION_COMMAND_AUTOCOMPLETE_RESULT => {}
        callback_type::CHANNEL_MESSAGE_WITH_SOURCE => {
            let msg = response_message(fake, st, &rec, &data);
            next.original = msg["id"].as_str().and_then(|s| s.parse().ok());
            next.replies
                .push(Reply::from_message(kind, ReplySource::Callback, &msg));
            message = Some(msg);
        }
        callback_type::DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE => {
            next.defer_ephemeral = flags_of(&data) & EPHEMERAL != 0;
            let loading = json!({"content": "", "flags": LOADING | (flags_of(&data) & EPHEMERAL)});
            let msg = response_message(fake, st, &rec, &loading);
            next.original = msg["id"].as_str().and_then(|s| s.parse().ok());
            message = Some(msg);
        }
        callback_type::UPDATE_MESSAGE => {
            let Some(mid) = rec.source_message else {
                return Answer::error(400, 50035);
            };
            let mut msg = st.world.messages.get(&mid).cloned().unwrap_or_default();
            apply_edit(&mut msg, &data);
            st.world.messages.insert(mid, msg.clone());
            emit_update(st, &msg);
            next.replies
                .push(Reply::from_message(kind, ReplySource::Callback, &msg));
            message = Some(msg);
        }
        callback_type::MODAL => {
            next.replies.push(Reply {
                kind,
                content: None,
                embeds: Vec::new(),
                components: data["components"].as_array().cloned().unwrap_or_default(),
                ephemeral: false,
                raw: body.clone(),
                source: ReplySource::Callback,
                message_id: None,
            });
        }
        _ => return Answer::error(400, 50035),
    }
    next.acked = Some(kind);
    next.callbacks.push(body.clone());
    st.interactions.insert(id, next);
    if !with_response {
        return Answer::no_content();
    }
    let mut interaction = json!({
        "id": id.to_string(),
        "type": rec.kind,
        "activity_instance_id": null,
        "channel_id": rec.channel.to_string(),
    });
    let mut out = Map::new();
    if let Some(msg) = &message {
        interaction["response_message_id"] = msg["id"].clone();
        interaction["response_message_loading"] = json!(flags_of(msg) & LOADING != 0);
        interaction["response_message_ephemeral"] = json!(flags_of(msg) & EPHEMERAL != 0);
        // Discord documents `resource.message` only for types 4 and 7; a deferral only
        // reports the loading message in `interaction`.
        if matches!(
            kind,
            callback_type::CHANNEL_MESSAGE_WITH_SOURCE | callback_type::UPDATE_MESSAGE
        ) {
            out.insert("resource".into(), json!({"type": kind, "message": msg}));
        }
    }
    out.insert("interaction".into(), interaction);
    Answer::ok(Value::Object(out))
}

fn by_token(st: &State, token: &str) -> Option<InteractionRec> {
    st.interactions.values().find(|r| r.token == token).cloned()
}

/// `POST /webhooks/{app}/{token}`: a follow-up message.
pub(crate) fn followup(fake: &FakeDiscord, st: &mut State, token: &str, body: &Value) -> Answer {
    // Before the interaction is acknowledged its webhook does not exist yet.
    let Some(rec) = by_token(st, token).filter(|r| r.acked.is_some()) else {
        return Answer::error(404, 10015);
    };
    let mut body = body.clone();
    // The first follow-up after an ephemeral deferral is ephemeral too, as on Discord.
    let inherit = rec.acked == Some(callback_type::DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE)
        && rec.defer_ephemeral
        && rec.replies.is_empty();
    if inherit {
        body["flags"] = json!(flags_of(&body) | EPHEMERAL);
    }
    let msg = response_message(fake, st, &rec, &body);
    if let Some(r) = st.interactions.get_mut(&rec.id) {
        r.followups
            .extend(msg["id"].as_str().and_then(|s| s.parse::<u64>().ok()));
        r.replies.push(Reply::from_message(
            rec.acked.unwrap_or_default(),
            ReplySource::Followup,
            &msg,
        ));
    }
    Answer::ok(msg)
}

/// `GET|PATCH|DELETE /webhooks/{app}/{token}/messages/{@original|id}`.
pub(crate) fn webhook_message(
    st: &mut State,
    method: &str,
    token: &str,
    which: &str,
    body: &Value,
) -> Answer {
    let Some(rec) = by_token(st, token) else {
        return Answer::error(404, 10015);
    };
    let (mid, source) = if which == "@original" {
        // After a component interaction's deferred update (6) or update (7), the
        // "original response" is the message the component is on.
        let original = rec.original.or(match rec.acked {
            Some(callback_type::DEFERRED_UPDATE_MESSAGE | callback_type::UPDATE_MESSAGE) => {
                rec.source_message
            }
            _ => None,
        });
        (original, ReplySource::EditOriginal)
    } else {
        let mid = which.parse().ok().filter(|m| rec.followups.contains(m));
        (mid, ReplySource::EditFollowup)
    };
    let Some(mid) = mid.filter(|m| st.world.messages.contains_key(m)) else {
        return Answer::error(404, 10008);
    };
    match method {
        "GET" => Answer::ok(st.world.messages[&mid].clone()),
        "PATCH" => {
            let mut msg = st.world.messages[&mid].clone();
            apply_edit(&mut msg, body);
            st.world.messages.insert(mid, msg.clone());
            emit_update(st, &msg);
            if let Some(r) = st.interactions.get_mut(&rec.id) {
                r.replies.push(Reply::from_message(
                    rec.acked.unwrap_or_default(),
                    source,
                    &msg,
                ));
            }
            Answer::ok(msg)
        }
        "DELETE" => {
            st.world.messages.remove(&mid);
            Answer::no_content()
        }
        _ => Answer::not_found(),
    }
}

/// `GET /attachments/{id}/{name}`: a file attached to a slash command, as the CDN
/// serves it.
pub(crate) async fn serve_upload(
    axum::extract::State(fake): axum::extract::State<FakeDiscord>,
    axum::extract::Path((id, name)): axum::extract::Path<(u64, String)>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let file = fake.lock().uploads.get(&id).cloned();
    match file {
        Some((filename, data)) if filename == name => data.into_response(),
        _ => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
