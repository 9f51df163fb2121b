//! JSON builders for Discord objects (users, members, roles, channels, guilds, messages,
//! interactions, READY) as both REST and gateway send them.
//!
//! The shapes follow Discord's docs and the repository's OpenAPI fixture, and are the
//! superset of what serenity 0.12.5's models insist on (for example `colors` on roles,
//! `entitlements`/`attachment_size_limit`/`locale` on interactions). Unit tests in
//! `tests/payloads.rs` feed each of them to serenity's own types, so a missing field is
//! a test failure rather than a silently dropped event.

use serde_json::{Value, json};

use crate::world::{ChannelRec, GuildRec, MemberRec, RoleRec, UserRec, World, channel_type};

pub(crate) fn user(u: &UserRec) -> Value {
    json!({
        "id": u.id.to_string(),
        "username": u.username,
        // Pomelo usernames: the legacy discriminator is "0".
        "discriminator": "0",
        "global_name": if u.bot { Value::Null } else { Value::String(u.username.clone()) },
        "avatar": null,
        "banner": null,
        "accent_color": null,
        "avatar_decoration_data": null,
        "collectibles": null,
        "primary_guild": null,
        "bot": u.bot,
        "system": false,
        "public_flags": 0,
        "flags": 0,
    })
}

pub(crate) fn user_by_id(w: &World, id: u64) -> Value {
    match w.users.get(&id) {
        Some(u) => user(u),
        None => user(&UserRec {
            id,
            username: format!("user{id}"),
            bot: false,
        }),
    }
}

/// `GET /users/@me` adds the private fields.
pub(crate) fn current_user(w: &World) -> Value {
    let mut u = user_by_id(w, w.bot_user_id);
    u["mfa_enabled"] = json!(false);
    u["locale"] = json!("en-US");
    u["verified"] = json!(true);
    u["email"] = Value::Null;
    u["premium_type"] = json!(0);
    u
}

pub(crate) fn role(r: &RoleRec) -> Value {
    let mut tags = json!({});
    if let Some(bot) = r.bot_id {
        tags["bot_id"] = json!(bot.to_string());
    }
    json!({
        "id": r.id.to_string(),
        "name": r.name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": r.position,
        "permissions": r.permissions.to_string(),
        "managed": r.managed,
        "mentionable": false,
        "flags": 0,
        "tags": tags,
    })
}

/// A guild member as REST returns it (gateway events add `guild_id`, interactions add
/// `permissions`).
pub(crate) fn member(w: &World, m: &MemberRec) -> Value {
    json!({
        "user": user_by_id(w, m.user),
        "nick": m.nick,
        "avatar": null,
        "banner": null,
        "roles": m.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "joined_at": m.joined_at,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": m.communication_disabled_until,
        "avatar_decoration_data": null,
        "collectibles": null,
    })
}

pub(crate) fn channel(w: &World, c: &ChannelRec) -> Value {
    let mut v = json!({
        "id": c.id.to_string(),
        "type": c.kind,
        "flags": 0,
        "last_message_id": c.last_message_id.map(|m| m.to_string()),
        "last_pin_timestamp": null,
    });
    match c.kind {
        channel_type::DM => {
            v["recipients"] = json!([user_by_id(w, c.recipient.unwrap_or_default())]);
        }
        channel_type::PUBLIC_THREAD | channel_type::PRIVATE_THREAD => {
            v["guild_id"] = json!(c.guild_id.map(|g| g.to_string()));
            v["name"] = json!(c.name);
            v["parent_id"] = json!(c.parent_id.map(|p| p.to_string()));
            v["owner_id"] = json!(c.owner_id.unwrap_or(w.bot_user_id).to_string());
            v["rate_limit_per_user"] = json!(0);
            v["message_count"] = json!(c.message_count);
            v["member_count"] = json!(1);
            v["total_message_sent"] = json!(c.message_count);
            v["applied_tags"] = json!([]);
            v["thread_metadata"] = json!({
                "archived": false,
                "archive_timestamp": c.created_at,
                "auto_archive_duration": 1440,
                "locked": false,
                "create_timestamp": c.created_at,
                "invitable": true,
            });
        }
        _ => {
            v["guild_id"] = json!(c.guild_id.map(|g| g.to_string()));
            v["name"] = json!(c.name);
            v["position"] = json!(c.position);
            v["parent_id"] = json!(c.parent_id.map(|p| p.to_string()));
            v["topic"] = Value::Null;
            v["nsfw"] = json!(false);
            v["rate_limit_per_user"] = json!(0);
            v["permission_overwrites"] = json!([]);
            v["default_auto_archive_duration"] = json!(1440);
        }
    }
    v
}

/// `PartialChannel` as embedded in interactions.
pub(crate) fn partial_channel(w: &World, c: &ChannelRec, permissions: u64) -> Value {
    let mut v = channel(w, c);
    v["permissions"] = json!(permissions.to_string());
    v
}

/// The guild object of `GET /guilds/{id}` (no GUILD_CREATE extras).
pub(crate) fn guild(g: &GuildRec) -> Value {
    let general = g.channels.first().map(|c| c.to_string());
    json!({
        "id": g.id.to_string(),
        "name": g.name,
        "icon": null,
        "icon_hash": null,
        "description": null,
        "home_header": null,
        "splash": null,
        "discovery_splash": null,
        "banner": null,
        "features": [],
        "owner_id": g.owner_id.to_string(),
        "application_id": null,
        "region": "deprecated",
        "afk_channel_id": null,
        "afk_timeout": 300,
        "system_channel_id": general,
        "system_channel_flags": 0,
        "widget_enabled": false,
        "widget_channel_id": null,
        "verification_level": 0,
        "roles": g.roles.values().map(role).collect::<Vec<_>>(),
        "default_message_notifications": 1,
        "mfa_level": 0,
        "explicit_content_filter": 0,
        "max_presences": null,
        "max_members": 500000,
        "max_stage_video_channel_users": 50,
        "max_video_channel_users": 25,
        "vanity_url_code": null,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "rules_channel_id": null,
        "safety_alerts_channel_id": null,
        "public_updates_channel_id": null,
        "premium_progress_bar_enabled": false,
        "nsfw": false,
        "nsfw_level": 0,
        "emojis": [],
        "stickers": [],
        "incidents_data": null,
        "approximate_member_count": g.members.len(),
        "approximate_presence_count": 0,
    })
}

/// GUILD_CREATE: the guild plus the gateway-only extras (members including the bot's own
/// member, channels, threads, counts).
pub(crate) fn guild_create(w: &World, g: &GuildRec) -> Value {
    let mut v = guild(g);
    v["joined_at"] = json!(g.joined_at);
    v["large"] = json!(false);
    v["unavailable"] = json!(false);
    v["member_count"] = json!(g.members.len());
    v["voice_states"] = json!([]);
    v["members"] = json!(g.members.values().map(|m| member(w, m)).collect::<Vec<_>>());
    let (threads, channels): (Vec<&ChannelRec>, Vec<&ChannelRec>) = g
        .channels
        .iter()
        .filter_map(|c| w.channels.get(c))
        .partition(|c| {
            matches!(
                c.kind,
                channel_type::PUBLIC_THREAD | channel_type::PRIVATE_THREAD
            )
        });
    v["channels"] = json!(channels.iter().map(|c| channel(w, c)).collect::<Vec<_>>());
    v["threads"] = json!(threads.iter().map(|c| channel(w, c)).collect::<Vec<_>>());
    v["presences"] = json!([]);
    v["stage_instances"] = json!([]);
    v["guild_scheduled_events"] = json!([]);
    v["soundboard_sounds"] = json!([]);
    v
}

/// Options for building a message object.
pub(crate) struct MessageSpec<'a> {
    pub id: u64,
    pub channel_id: u64,
    pub author: u64,
    pub body: &'a Value,
    /// Message type: 0 DEFAULT, 20 CHAT_INPUT_COMMAND (interaction responses), 19 REPLY.
    pub kind: u8,
    pub webhook_id: Option<u64>,
    pub application_id: Option<u64>,
}

/// A full message object built from a create-message style request body (content,
/// embeds, components, flags, message_reference).
pub(crate) fn message(w: &World, s: &MessageSpec<'_>) -> Value {
    let body = s.body;
    let embeds: Vec<Value> = body
        .get("embeds")
        .and_then(Value::as_array)
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
    let content = body.get("content").and_then(Value::as_str).unwrap_or("");
    // Mentions in content are resolved like Discord does, so tests can assert pings.
    let mentions: Vec<Value> = parse_user_mentions(content)
        .into_iter()
        .filter(|id| w.users.contains_key(id))
        .map(|id| user_by_id(w, id))
        .collect();
    let mut v = json!({
        "id": s.id.to_string(),
        "channel_id": s.channel_id.to_string(),
        "author": user_by_id(w, s.author),
        "content": content,
        "timestamp": crate::world::now_timestamp(),
        "edited_timestamp": null,
        "tts": body.get("tts").and_then(Value::as_bool).unwrap_or(false),
        "mention_everyone": false,
        "mentions": mentions,
        "mention_roles": [],
        "mention_channels": [],
        "attachments": [],
        "embeds": embeds,
        "reactions": [],
        "pinned": false,
        "type": s.kind,
        "flags": body.get("flags").and_then(Value::as_u64).unwrap_or(0),
        "components": numbered_components(body.get("components")),
        "sticker_items": [],
    });
    if let Some(n) = body.get("nonce") {
        v["nonce"] = n.clone();
    }
    if let Some(r) = body.get("message_reference") {
        v["message_reference"] = r.clone();
    }
    if let Some(id) = s.webhook_id {
        v["webhook_id"] = json!(id.to_string());
    }
    if let Some(id) = s.application_id {
        v["application_id"] = json!(id.to_string());
    }
    v
}

/// Discord numbers every component of a message (`id`, 1-based, depth first) when the
/// sender did not; responses always carry them.
pub(crate) fn numbered_components(components: Option<&Value>) -> Value {
    fn walk(v: &mut Value, next: &mut u64) {
        match v {
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, next)),
            Value::Object(o) => {
                if o.contains_key("type") {
                    *next += 1;
                    o.entry("id").or_insert(json!(*next));
                }
                for key in ["components", "accessory", "content"] {
                    if let Some(child) = o.get_mut(key).filter(|c| c.is_array() || c.is_object()) {
                        walk(child, next);
                    }
                }
            }
            _ => {}
        }
    }
    let mut v = match components {
        Some(c @ Value::Array(_)) => c.clone(),
        _ => json!([]),
    };
    walk(&mut v, &mut 0);
    v
}

fn parse_user_mentions(content: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut rest = content;
    while let Some(i) = rest.find("<@") {
        rest = &rest[i + 2..];
        let digits = rest.strip_prefix('!').unwrap_or(rest);
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if digits[end..].starts_with('>')
            && let Ok(id) = digits[..end].parse()
        {
            out.push(id);
        }
    }
    out
}

/// Gateway-flavoured message: MESSAGE_CREATE carries `guild_id` and the author's
/// partial `member` (without `user`).
pub(crate) fn gateway_message(w: &World, msg: &Value) -> Value {
    let mut v = msg.clone();
    let channel = msg["channel_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let author: u64 = msg["author"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if let Some(g) = w.channel_guild(channel) {
        v["guild_id"] = json!(g.to_string());
        if let Some(m) = w.guilds.get(&g).and_then(|g| g.members.get(&author)) {
            let mut pm = member(w, m);
            if let Some(o) = pm.as_object_mut() {
                o.remove("user");
            }
            v["member"] = pm;
        }
    }
    v
}

/// Member payload for GUILD_MEMBER_ADD/UPDATE (inline `guild_id`).
pub(crate) fn member_event(w: &World, guild: u64, m: &MemberRec) -> Value {
    let mut v = member(w, m);
    v["guild_id"] = json!(guild.to_string());
    v
}

pub(crate) fn ready(w: &World, session_id: &str, ws_url: &str, app_id: u64) -> Value {
    let mut me = current_user(w);
    me["verified"] = json!(true);
    json!({
        "v": 10,
        "user": me,
        "guilds": w.guilds.values().filter(|g| g.bot_present)
            .map(|g| json!({"id": g.id.to_string(), "unavailable": true}))
            .collect::<Vec<_>>(),
        "session_id": session_id,
        "resume_gateway_url": ws_url,
        "shard": [0, 1],
        "application": {"id": app_id.to_string(), "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": [],
        "user_settings": {},
        "_trace": ["[\"fake-discord\"]"],
    })
}

/// `GET /applications/@me` and `/oauth2/applications/@me`.
pub(crate) fn application(w: &World, app_id: u64) -> Value {
    let bot = user_by_id(w, w.bot_user_id);
    let owner = json!({
        "id": "1",
        "username": "guildops-owner",
        "discriminator": "0",
        "global_name": "guildops owner",
        "avatar": null,
        "public_flags": 0,
        "flags": 0,
        "primary_guild": null,
    });
    json!({
        "id": app_id.to_string(),
        "name": "guildops",
        "icon": null,
        "description": "guildops test application",
        "type": null,
        "bot": bot,
        "bot_public": true,
        "bot_require_code_grant": false,
        "verify_key": "0000000000000000000000000000000000000000000000000000000000000000",
        "flags": 0,
        "flags_new": "0",
        "redirect_uris": [],
        "interactions_endpoint_url": null,
        "role_connections_verification_url": null,
        "owner": owner,
        "approximate_guild_count": w.guilds.values().filter(|g| g.bot_present).count(),
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,
        "team": null,
        "eligible_oauth2_scopes": [],
        "rpc_origins": [],
        "summary": "",
        "tags": [],
    })
}
