//! REST: the `/api/v10` routes the bot uses, with Discord's auth, error bodies and side
//! effects (world changes plus the gateway events Discord would send for them).
//!
//! Routing is a single fallback handler matching on (method, path segments). That keeps
//! authentication, fault injection and the request log in one place, in the same order
//! for every request: auth → faults → route → record. Unknown routes get Discord's 404
//! (`{"message": "404: Not Found", "code": 0}`).
//!
//! Routes (all under `/api/v10`, all needing `Authorization: Bot <token>` except
//! `GET /gateway`, which Discord serves unauthenticated too):
//! - `GET /users/@me`, `GET /users/{id}`, `GET /oauth2/applications/@me`,
//!   `GET /applications/@me`, `GET /gateway`, `GET /gateway/bot`
//! - `GET|PUT /applications/{app}/commands`, `GET|PUT /applications/{app}/guilds/{g}/commands`
//! - `POST /interactions/{id}/{token}/callback[?with_response=true]`,
//!   `POST /webhooks/{app}/{token}`, `GET|PATCH|DELETE /webhooks/{app}/{token}/messages/{@original|id}`
//! - `GET /guilds/{g}`, `GET|POST /guilds/{g}/roles`, `GET /guilds/{g}/channels`,
//!   `GET /guilds/{g}/members[?limit&after]`, `GET|PATCH|DELETE /guilds/{g}/members/{u}`,
//!   `PUT|DELETE /guilds/{g}/members/{u}/roles/{r}`, `GET|PUT|DELETE /guilds/{g}/bans/{u}`
//! - `GET /channels/{c}`, `GET|POST /channels/{c}/messages`,
//!   `GET|PATCH|DELETE /channels/{c}/messages/{m}`, `POST /channels/{c}/messages/bulk-delete`,
//!   `POST /channels/{c}/threads`, `POST /channels/{c}/messages/{m}/threads`
//! - `POST /users/@me/channels` (DM), `DELETE /users/@me/guilds/{g}` (leave)
//!
//! Moderation routes apply Discord's rules: the bot needs the permission (or
//! ADMINISTRATOR), may only act on roles and members strictly below its highest role,
//! never on the owner, and never assigns managed roles; violations are 403 / 50013.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::{self, error_message};
use crate::payloads::{self, MessageSpec};
use crate::world::{ChannelRec, MemberRec, channel_type, now_timestamp, perm};
use crate::{FakeDiscord, RecordedRequest, State as FakeState, UploadedFile, scenario};

/// A route's answer: status and optional JSON body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Option<Value>,
}

impl Answer {
    pub fn json(status: u16, body: Value) -> Self {
        Answer {
            status,
            body: Some(body),
        }
    }
    pub fn ok(body: Value) -> Self {
        Self::json(200, body)
    }
    pub fn no_content() -> Self {
        Answer {
            status: 204,
            body: None,
        }
    }
    /// Discord's error body: `{"message": ..., "code": N}`.
    pub fn error(status: u16, code: u32) -> Self {
        Self::json(
            status,
            json!({"message": error_message(status, code), "code": code}),
        )
    }
    pub fn not_found() -> Self {
        Self::error(404, 0)
    }
}

/// Parse `a=1&b=2` (and serenity's `&a=1`), percent-decoding values.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// The JSON part of a request body (plain JSON, or the `payload_json` part of a
/// multipart upload) and any uploaded files.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> (Option<Value>, Vec<UploadedFile>) {
    if body.is_empty() {
        return (None, Vec::new());
    }
    if let Ok(v) = serde_json::from_slice(body) {
        return (Some(v), Vec::new());
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(boundary) = ct.strip_prefix("multipart/form-data").and_then(|rest| {
        rest.split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
    }) {
        return parse_multipart(boundary.trim_matches('"'), body);
    }
    (
        Some(Value::String(String::from_utf8_lossy(body).into_owned())),
        Vec::new(),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Just enough multipart/form-data for serenity's uploads: `payload_json` plus
/// `files[n]` parts.
fn parse_multipart(boundary: &str, body: &[u8]) -> (Option<Value>, Vec<UploadedFile>) {
    let delim = format!("--{boundary}").into_bytes();
    let mut json = None;
    let mut files = Vec::new();
    let mut rest = body;
    while let Some(i) = find(rest, &delim) {
        rest = &rest[i + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let part_end = find(rest, &delim).unwrap_or(rest.len());
        let part = &rest[..part_end];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(h) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..h]).into_owned();
        let data = &part[h + 4..];
        let data = data.strip_suffix(b"\r\n").unwrap_or(data);
        // Content-Disposition parameters: name="files[0]"; filename="log.txt"
        let param = |key: &str| {
            head.split([';', '\r', '\n'])
                .find_map(|p| p.trim().strip_prefix(&format!("{key}=")))
                .map(|v| v.trim_matches('"').to_string())
        };
        let content_type = head.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.trim().to_string())
        });
        let name = param("name").unwrap_or_default();
        if name == "payload_json" {
            json = serde_json::from_slice(data).ok();
        } else if let Some(filename) = param("filename") {
            files.push(UploadedFile {
                field: name,
                filename,
                content_type,
                data: data.to_vec(),
            });
        }
    }
    (json, files)
}

pub(crate) async fn handle(
    State(fake): State<FakeDiscord>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let (body, files) = parse_body(&headers, &body);
    let recorded_headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| *k != header::AUTHORIZATION)
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    // `GET /gateway` is unauthenticated on Discord too. Answering it regardless of the
    // token also keeps a misconfigured client on loopback: serenity falls back to the
    // real gateway host when this call fails.
    let public = method == Method::GET && path == "/api/v10/gateway";
    let auth_ok = public
        || headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bot {}", fake.token()));
    let audit_reason = headers
        .get("x-audit-log-reason")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        });

    // Route and record under one lock, so the log order is the processing order and a
    // waiter that sees the request also sees its effects.
    let (answer, extra_headers) = fake.mutate(|st| {
        let (answer, extra) = if !auth_ok {
            (Answer::error(401, 0), Vec::new())
        } else if let Some(f) = faults::take(&mut st.faults, method.as_str(), &path) {
            (Answer::json(f.status, f.body), f.headers)
        } else {
            let req = Req {
                method: method.as_str(),
                segs: path
                    .strip_prefix("/api/v10/")
                    .map(|p| p.split('/').filter(|s| !s.is_empty()).collect())
                    .unwrap_or_default(),
                query: query_pairs(query.as_deref()),
                body: body.as_ref().unwrap_or(&Value::Null),
                audit_reason: audit_reason.as_deref(),
                files: &files,
            };
            (route(&fake, st, &req), Vec::new())
        };
        st.requests.push(RecordedRequest {
            method: method.as_str().to_string(),
            path: path.clone(),
            query: query.clone(),
            headers: recorded_headers,
            body: body.clone(),
            files: files.clone(),
            status: answer.status,
            response: answer.body.clone(),
        });
        (answer, extra)
    });

    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match answer.body {
        Some(b) => (status, axum::Json(b)).into_response(),
        None => status.into_response(),
    };
    if extra_headers.is_empty() {
        // Every Discord answer carries bucket headers; a healthy bucket here.
        for (k, v) in [
            ("x-ratelimit-limit", "5"),
            ("x-ratelimit-remaining", "4"),
            ("x-ratelimit-reset-after", "1.000"),
            ("x-ratelimit-bucket", "fakebucket0000000000000000000000"),
        ] {
            resp.headers_mut().insert(k, HeaderValue::from_static(v));
        }
        let reset = format!(
            "{:.3}",
            chrono::Utc::now().timestamp_millis() as f64 / 1000.0 + 1.0
        );
        if let Ok(v) = HeaderValue::from_str(&reset) {
            resp.headers_mut().insert("x-ratelimit-reset", v);
        }
    }
    for (k, v) in extra_headers {
        resp.headers_mut().insert(k, v);
    }
    resp.headers_mut()
        .insert("via", HeaderValue::from_static("1.1 fake-discord"));
    resp
}

/// A parsed request, as the routes see it.
struct Req<'a> {
    method: &'a str,
    segs: Vec<&'a str>,
    query: Vec<(String, String)>,
    body: &'a Value,
    audit_reason: Option<&'a str>,
    files: &'a [UploadedFile],
}

impl Req<'_> {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn id(s: &str) -> Option<u64> {
    s.parse().ok()
}

fn route(fake: &FakeDiscord, st: &mut FakeState, r: &Req<'_>) -> Answer {
    let app = fake.application_id();
    let segs = r.segs.as_slice();
    match (r.method, segs) {
        ("GET", ["users", "@me"]) => Answer::ok(payloads::current_user(&st.world)),
        ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]) => {
            Answer::ok(payloads::application(&st.world, app))
        }
        ("GET", ["gateway"]) => Answer::ok(json!({"url": fake.gateway_url()})),
        ("GET", ["gateway", "bot"]) => Answer::ok(json!({
            "url": fake.gateway_url(),
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1},
        })),
        (m, ["applications", a, "commands"]) if id(a) == Some(app) => {
            commands(st, app, None, m, r.body)
        }
        (m, ["applications", a, "guilds", g, "commands"]) if id(a) == Some(app) => match id(g) {
            Some(g) => commands(st, app, Some(g), m, r.body),
            None => Answer::error(404, 10004),
        },
        ("POST", ["interactions", i, token, "callback"]) => {
            let with_response = r.q("with_response") == Some("true");
            scenario::callback(fake, st, id(i).unwrap_or(0), token, r.body, with_response)
        }
        ("POST", ["webhooks", a, token]) if id(a) == Some(app) => {
            scenario::followup(fake, st, token, r.body)
        }
        (m, ["webhooks", a, token, "messages", msg]) if id(a) == Some(app) => {
            scenario::webhook_message(st, m, token, msg, r.body)
        }
        (_, ["guilds", g, rest @ ..]) => match id(g) {
            Some(g) if st.world.visible_guild(g).is_some() => guild_route(st, g, r, rest),
            _ => Answer::error(404, 10004),
        },
        ("POST", ["users", "@me", "channels"]) => create_dm(st, r.body),
        ("DELETE", ["users", "@me", "guilds", g]) => match id(g) {
            Some(g) if st.world.visible_guild(g).is_some() => {
                let bot = st.world.bot_user_id;
                if let Some(guild) = st.world.guilds.get_mut(&g) {
                    guild.bot_present = false;
                    guild.members.remove(&bot);
                }
                st.gateway
                    .emit("GUILD_DELETE", json!({"id": g.to_string()}));
                Answer::no_content()
            }
            _ => Answer::error(404, 10004),
        },
        ("GET", ["users", u]) => match id(u).filter(|u| st.world.users.contains_key(u)) {
            Some(u) => Answer::ok(payloads::user_by_id(&st.world, u)),
            None => Answer::error(404, 10013),
        },
        (_, ["channels", c, rest @ ..]) => match id(c) {
            Some(c) => channel_route(st, c, r, rest),
            None => Answer::error(404, 10003),
        },
        _ => Answer::not_found(),
    }
}

// ----- application commands -------------------------------------------------------------

fn commands(
    st: &mut FakeState,
    app: u64,
    guild: Option<u64>,
    method: &str,
    body: &Value,
) -> Answer {
    let current = match guild {
        None => st.global_commands.clone(),
        Some(g) => st.guild_commands.get(&g).cloned().unwrap_or_default(),
    };
    match method {
        "GET" => Answer::ok(Value::Array(current)),
        "PUT" => {
            let Some(list) = body.as_array() else {
                return Answer::error(400, 50035);
            };
            let version = st.world.next_id();
            let mut out = Vec::new();
            for c in list {
                let name = c["name"].as_str().unwrap_or_default();
                let kind = c["type"].as_u64().unwrap_or(1);
                // A bulk overwrite keeps the id of a command with the same name and type,
                // as Discord does; new names get new ids.
                let existing = current
                    .iter()
                    .find(|e| e["name"] == name && e["type"].as_u64() == Some(kind))
                    .and_then(|e| e["id"].as_str())
                    .map(str::to_string);
                let cid = existing.unwrap_or_else(|| st.world.next_id().to_string());
                let mut cmd = json!({
                    "id": cid,
                    "application_id": app.to_string(),
                    "version": version.to_string(),
                    "default_member_permissions": c.get("default_member_permissions").cloned().unwrap_or(Value::Null),
                    "type": kind,
                    "name": name,
                    "name_localizations": c.get("name_localizations").cloned().unwrap_or(Value::Null),
                    "description": c["description"].as_str().unwrap_or_default(),
                    "description_localizations": c.get("description_localizations").cloned().unwrap_or(Value::Null),
                    "dm_permission": c.get("dm_permission").cloned().unwrap_or(json!(true)),
                    "contexts": c.get("contexts").cloned().unwrap_or(Value::Null),
                    "integration_types": c.get("integration_types").cloned().unwrap_or(json!([0])),
                    "nsfw": c.get("nsfw").cloned().unwrap_or(json!(false)),
                });
                if let Some(opts) = c.get("options").filter(|o| o.is_array()) {
                    cmd["options"] = without_nulls(opts);
                }
                if let Some(g) = guild {
                    cmd["guild_id"] = json!(g.to_string());
                }
                out.push(cmd);
            }
            match guild {
                None => st.global_commands = out.clone(),
                Some(g) => {
                    st.guild_commands.insert(g, out.clone());
                }
            }
            Answer::ok(Value::Array(out))
        }
        _ => Answer::not_found(),
    }
}

// ----- guilds -------------------------------------------------------------------------------

fn guild_route(st: &mut FakeState, g: u64, r: &Req<'_>, rest: &[&str]) -> Answer {
    match (r.method, rest) {
        ("GET", []) => {
            let guild = &st.world.guilds[&g];
            Answer::ok(payloads::guild(guild))
        }
        ("POST", ["roles"]) => {
            let bot = st.world.bot_user_id;
            if st.world.member_permissions(g, bot).unwrap_or(0) & perm::MANAGE_ROLES == 0 {
                return Answer::error(403, 50013);
            }
            let rid = st.world.next_id();
            let role = crate::world::RoleRec {
                id: rid,
                name: r.body["name"].as_str().unwrap_or("new role").to_string(),
                permissions: r.body["permissions"]
                    .as_str()
                    .and_then(id)
                    .unwrap_or(perm::EVERYONE_DEFAULT),
                // New roles are created just above @everyone, as on Discord.
                position: 1,
                managed: false,
                bot_id: None,
            };
            let json_role = payloads::role(&role);
            st.world
                .guilds
                .get_mut(&g)
                .expect("visible guild")
                .roles
                .insert(rid, role);
            st.gateway.emit(
                "GUILD_ROLE_CREATE",
                json!({"guild_id": g.to_string(), "role": json_role}),
            );
            Answer::ok(json_role)
        }
        ("GET", ["roles"]) => {
            let roles = st.world.guilds[&g]
                .roles
                .values()
                .map(payloads::role)
                .collect();
            Answer::ok(Value::Array(roles))
        }
        ("GET", ["channels"]) => {
            let w = &st.world;
            let list = w.guilds[&g]
                .channels
                .iter()
                .filter_map(|c| w.channels.get(c))
                .filter(|c| c.kind == channel_type::GUILD_TEXT)
                .map(|c| payloads::channel(w, c))
                .collect();
            Answer::ok(Value::Array(list))
        }
        ("GET", ["members"]) => {
            let limit = r
                .q("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(1)
                .clamp(1, 1000);
            let after = r.q("after").and_then(id).unwrap_or(0);
            let w = &st.world;
            let list = w.guilds[&g]
                .members
                .range(after + 1..)
                .take(limit)
                .map(|(_, m)| payloads::member(w, m))
                .collect();
            Answer::ok(Value::Array(list))
        }
        ("GET", ["members", u]) => match member_of(st, g, u) {
            Ok(m) => Answer::ok(payloads::member(&st.world, &m)),
            Err(a) => a,
        },
        ("PATCH", ["members", u]) => edit_member(st, g, u, r.body),
        ("DELETE", ["members", u]) => {
            let m = match member_of(st, g, u) {
                Ok(m) => m,
                Err(a) => return a,
            };
            if !st
                .world
                .bot_can_act_on_member(g, m.user, perm::KICK_MEMBERS)
            {
                return Answer::error(403, 50013);
            }
            remove_member(st, g, m.user);
            Answer::no_content()
        }
        (m @ ("PUT" | "DELETE"), ["members", u, "roles", role]) => {
            let member = match member_of(st, g, u) {
                Ok(m) => m,
                Err(a) => return a,
            };
            let Some(role) = id(role).and_then(|r| st.world.guilds[&g].roles.get(&r).cloned())
            else {
                return Answer::error(404, 10011);
            };
            if role.managed || !st.world.bot_can_manage_role(g, &role, perm::MANAGE_ROLES) {
                return Answer::error(403, 50013);
            }
            let guild = st.world.guilds.get_mut(&g).expect("visible guild");
            let rec = guild.members.get_mut(&member.user).expect("member checked");
            if m == "PUT" {
                if !rec.roles.contains(&role.id) {
                    rec.roles.push(role.id);
                }
            } else {
                rec.roles.retain(|x| *x != role.id);
            }
            member_updated(st, g, member.user);
            Answer::no_content()
        }
        ("GET", ["bans", u]) => {
            let Some(u) = id(u) else {
                return Answer::error(404, 10026);
            };
            match st.world.guilds[&g].bans.get(&u) {
                Some(reason) => Answer::ok(json!({
                    "user": payloads::user_by_id(&st.world, u),
                    "reason": reason,
                })),
                None => Answer::error(404, 10026),
            }
        }
        ("PUT", ["bans", u]) => {
            let Some(u) = id(u).filter(|u| st.world.users.contains_key(u)) else {
                return Answer::error(404, 10013);
            };
            let is_member = st.world.guilds[&g].members.contains_key(&u);
            let allowed = if is_member {
                st.world.bot_can_act_on_member(g, u, perm::BAN_MEMBERS)
            } else {
                let bot = st.world.bot_user_id;
                st.world.member_permissions(g, bot).unwrap_or(0) & perm::BAN_MEMBERS != 0
                    && st.world.guilds[&g].owner_id != u
            };
            if !allowed {
                return Answer::error(403, 50013);
            }
            st.world
                .guilds
                .get_mut(&g)
                .expect("visible guild")
                .bans
                .insert(u, r.audit_reason.map(str::to_string));
            let user = payloads::user_by_id(&st.world, u);
            if is_member {
                remove_member(st, g, u);
            }
            st.gateway.emit(
                "GUILD_BAN_ADD",
                json!({"guild_id": g.to_string(), "user": user}),
            );
            Answer::no_content()
        }
        ("DELETE", ["bans", u]) => {
            let Some(u) = id(u) else {
                return Answer::error(404, 10026);
            };
            let bot = st.world.bot_user_id;
            if st.world.member_permissions(g, bot).unwrap_or(0) & perm::BAN_MEMBERS == 0 {
                return Answer::error(403, 50013);
            }
            let guild = st.world.guilds.get_mut(&g).expect("visible guild");
            if guild.bans.remove(&u).is_none() {
                return Answer::error(404, 10026);
            }
            let user = payloads::user_by_id(&st.world, u);
            st.gateway.emit(
                "GUILD_BAN_REMOVE",
                json!({"guild_id": g.to_string(), "user": user}),
            );
            Answer::no_content()
        }
        _ => Answer::not_found(),
    }
}

fn member_of(st: &FakeState, g: u64, u: &str) -> Result<MemberRec, Answer> {
    id(u)
        .and_then(|u| st.world.guilds[&g].members.get(&u).cloned())
        .ok_or_else(|| Answer::error(404, 10007))
}

fn member_updated(st: &mut FakeState, g: u64, user: u64) {
    if let Some(m) = st.world.guilds[&g].members.get(&user) {
        let payload = payloads::member_event(&st.world, g, m);
        st.gateway.emit("GUILD_MEMBER_UPDATE", payload);
    }
}

pub(crate) fn remove_member(st: &mut FakeState, g: u64, user: u64) {
    if let Some(guild) = st.world.guilds.get_mut(&g) {
        guild.members.remove(&user);
    }
    let payload = json!({"guild_id": g.to_string(), "user": payloads::user_by_id(&st.world, user)});
    st.gateway.emit("GUILD_MEMBER_REMOVE", payload);
}

/// `PATCH /guilds/{g}/members/{u}`: nick, roles, communication_disabled_until, each
/// checked against the permission Discord requires for it.
fn edit_member(st: &mut FakeState, g: u64, u: &str, body: &Value) -> Answer {
    let member = match member_of(st, g, u) {
        Ok(m) => m,
        Err(a) => return a,
    };
    let Some(obj) = body.as_object() else {
        return Answer::error(400, 50035);
    };
    let w = &st.world;
    let mut next = member.clone();
    if let Some(nick) = obj.get("nick") {
        if !w.bot_can_act_on_member(g, member.user, perm::MANAGE_NICKNAMES) {
            return Answer::error(403, 50013);
        }
        next.nick = nick.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    }
    if let Some(roles) = obj.get("roles") {
        let Some(list) = roles.as_array() else {
            return Answer::error(400, 50035);
        };
        let mut wanted = Vec::new();
        for r in list {
            let rid = r.as_str().and_then(id).or_else(|| r.as_u64());
            match rid.and_then(|rid| w.guilds[&g].roles.get(&rid)) {
                // @everyone is implicit; Discord never lists it among a member's roles.
                Some(role) if role.id == g => {}
                Some(role) => wanted.push(role.clone()),
                None => return Answer::error(404, 10011),
            }
        }
        // Only the roles that actually change need to be below the bot.
        let guild = &w.guilds[&g];
        let changed = wanted
            .iter()
            .filter(|r| !member.roles.contains(&r.id))
            .cloned()
            .chain(
                member
                    .roles
                    .iter()
                    .filter(|id| !wanted.iter().any(|r| r.id == **id))
                    .filter_map(|id| guild.roles.get(id).cloned()),
            );
        for role in changed {
            if role.managed || !w.bot_can_manage_role(g, &role, perm::MANAGE_ROLES) {
                return Answer::error(403, 50013);
            }
        }
        next.roles = wanted.iter().map(|r| r.id).collect();
    }
    if let Some(until) = obj.get("communication_disabled_until") {
        let target_is_admin =
            w.member_permissions(g, member.user).unwrap_or(0) & perm::ADMINISTRATOR != 0;
        if target_is_admin || !w.bot_can_act_on_member(g, member.user, perm::MODERATE_MEMBERS) {
            return Answer::error(403, 50013);
        }
        next.communication_disabled_until = until.as_str().map(str::to_string);
    }
    let guild = st.world.guilds.get_mut(&g).expect("visible guild");
    guild.members.insert(member.user, next.clone());
    member_updated(st, g, member.user);
    Answer::ok(payloads::member(&st.world, &next))
}

// ----- channels and messages ------------------------------------------------------------

pub(crate) fn create_dm(st: &mut FakeState, body: &Value) -> Answer {
    let Some(user) = body["recipient_id"]
        .as_str()
        .and_then(id)
        .or_else(|| body["recipient_id"].as_u64())
        .filter(|u| st.world.users.contains_key(u))
    else {
        return Answer::error(400, 50035);
    };
    let w = &mut st.world;
    let existing = w
        .channels
        .values()
        .find(|c| c.kind == channel_type::DM && c.recipient == Some(user))
        .map(|c| c.id);
    let cid = match existing {
        Some(c) => c,
        None => {
            let cid = w.next_id();
            w.channels.insert(
                cid,
                ChannelRec {
                    id: cid,
                    guild_id: None,
                    kind: channel_type::DM,
                    name: String::new(),
                    position: 0,
                    parent_id: None,
                    recipient: Some(user),
                    owner_id: None,
                    created_at: now_timestamp(),
                    last_message_id: None,
                    message_count: 0,
                },
            );
            cid
        }
    };
    Answer::ok(payloads::channel(w, &w.channels[&cid]))
}

/// Can the bot see (and so address) this channel? Guild channels need the bot present.
fn visible_channel(st: &FakeState, c: u64) -> Option<ChannelRec> {
    let ch = st.world.channels.get(&c)?;
    match ch.guild_id {
        Some(g) => st.world.visible_guild(g).map(|_| ch.clone()),
        None => Some(ch.clone()),
    }
}

fn bot_channel_perms(st: &FakeState, ch: &ChannelRec) -> u64 {
    match ch.guild_id {
        Some(g) => st
            .world
            .member_permissions(g, st.world.bot_user_id)
            .unwrap_or(0),
        None => perm::ALL,
    }
}

fn channel_route(st: &mut FakeState, c: u64, r: &Req<'_>, rest: &[&str]) -> Answer {
    let Some(ch) = visible_channel(st, c) else {
        return Answer::error(404, 10003);
    };
    let perms = bot_channel_perms(st, &ch);
    if perms & perm::VIEW_CHANNEL == 0 {
        return Answer::error(403, 50001);
    }
    match (r.method, rest) {
        ("GET", []) => Answer::ok(payloads::channel(&st.world, &ch)),
        ("POST", ["messages"]) => {
            if let Some(user) = ch.recipient
                && st.dm_blocked.contains(&user)
            {
                return Answer::error(403, 50007);
            }
            if perms & perm::SEND_MESSAGES == 0 {
                return Answer::error(403, 50013);
            }
            let kind = if r.body.get("message_reference").is_some() {
                19
            } else {
                0
            };
            let attachments = r
                .files
                .iter()
                .map(|f| {
                    let aid = st.world.next_id();
                    // Never fetched: nothing may leave loopback.
                    let url = format!(
                        "https://cdn.discordapp.com/attachments/{c}/{aid}/{}",
                        f.filename
                    );
                    json!({
                        "id": aid.to_string(),
                        "filename": f.filename,
                        "size": f.data.len(),
                        "url": url,
                        "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
                        "content_type": f.content_type,
                    })
                })
                .collect();
            let msg = post_message(st, c, st.world.bot_user_id, r.body, kind, attachments);
            Answer::ok(msg)
        }
        ("GET", ["messages"]) => {
            if perms & perm::READ_MESSAGE_HISTORY == 0 {
                return Answer::ok(json!([]));
            }
            let limit = r
                .q("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(50)
                .clamp(1, 100);
            let before = r.q("before").and_then(id).unwrap_or(u64::MAX);
            let after = r.q("after").and_then(id).unwrap_or(0);
            // Newest first, as Discord returns them.
            let list = st
                .world
                .channel_messages
                .get(&c)
                .into_iter()
                .flatten()
                .rev()
                .filter(|m| **m < before && **m > after)
                .filter_map(|m| st.world.messages.get(m).cloned())
                .take(limit)
                .collect();
            Answer::ok(Value::Array(list))
        }
        ("POST", ["messages", "bulk-delete"]) => {
            if perms & perm::MANAGE_MESSAGES == 0 {
                return Answer::error(403, 50013);
            }
            let ids: Vec<u64> = r.body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().and_then(id))
                .collect();
            if !(2..=100).contains(&ids.len()) {
                return Answer::error(400, 50035);
            }
            for m in &ids {
                st.world.messages.remove(m);
            }
            if let Some(list) = st.world.channel_messages.get_mut(&c) {
                list.retain(|x| !ids.contains(x));
            }
            let mut payload = json!({
                "ids": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                "channel_id": c.to_string(),
            });
            if let Some(g) = ch.guild_id {
                payload["guild_id"] = json!(g.to_string());
            }
            st.gateway.emit("MESSAGE_DELETE_BULK", payload);
            Answer::no_content()
        }
        ("GET", ["messages", m]) => match id(m).and_then(|m| message_in(st, c, m)) {
            Some(msg) => Answer::ok(msg),
            None => Answer::error(404, 10008),
        },
        ("PATCH", ["messages", m]) => {
            let Some(mut msg) = id(m).and_then(|m| message_in(st, c, m)) else {
                return Answer::error(404, 10008);
            };
            if msg["author"]["id"].as_str() != Some(&st.world.bot_user_id.to_string()) {
                return Answer::error(403, 50005);
            }
            scenario::apply_edit(&mut msg, r.body);
            let mid = id(m).unwrap_or_default();
            st.world.messages.insert(mid, msg.clone());
            let payload = payloads::gateway_message(&st.world, &msg);
            st.gateway.emit("MESSAGE_UPDATE", payload);
            Answer::ok(msg)
        }
        ("DELETE", ["messages", m]) => {
            let Some(msg) = id(m).and_then(|m| message_in(st, c, m)) else {
                return Answer::error(404, 10008);
            };
            let own = msg["author"]["id"].as_str() == Some(&st.world.bot_user_id.to_string());
            if !own && perms & perm::MANAGE_MESSAGES == 0 {
                return Answer::error(403, 50013);
            }
            let mid = id(m).unwrap_or_default();
            st.world.messages.remove(&mid);
            if let Some(list) = st.world.channel_messages.get_mut(&c) {
                list.retain(|x| *x != mid);
            }
            let mut payload = json!({"id": mid.to_string(), "channel_id": c.to_string()});
            if let Some(g) = ch.guild_id {
                payload["guild_id"] = json!(g.to_string());
            }
            st.gateway.emit("MESSAGE_DELETE", payload);
            Answer::no_content()
        }
        ("POST", ["threads"]) => {
            let kind = r.body["type"]
                .as_u64()
                .unwrap_or(channel_type::PRIVATE_THREAD as u64) as u8;
            create_thread(st, &ch, None, kind, r.body)
        }
        ("POST", ["messages", m, "threads"]) => {
            let Some(mid) = id(m).filter(|m| message_in(st, c, *m).is_some()) else {
                return Answer::error(404, 10008);
            };
            create_thread(st, &ch, Some(mid), channel_type::PUBLIC_THREAD, r.body)
        }
        _ => Answer::not_found(),
    }
}

fn message_in(st: &FakeState, c: u64, m: u64) -> Option<Value> {
    st.world
        .messages
        .get(&m)
        .filter(|msg| msg["channel_id"].as_str() == Some(&c.to_string()))
        .cloned()
}

/// Store a message in a channel and send MESSAGE_CREATE. Used for the bot's posts and
/// for users' messages from the scenario API.
pub(crate) fn post_message(
    st: &mut FakeState,
    channel: u64,
    author: u64,
    body: &Value,
    kind: u8,
    attachments: Vec<Value>,
) -> Value {
    let mid = st.world.next_id();
    let mut msg = payloads::message(
        &st.world,
        &MessageSpec {
            id: mid,
            channel_id: channel,
            author,
            body,
            kind,
            webhook_id: None,
            application_id: None,
        },
    );
    msg["attachments"] = Value::Array(attachments);
    st.world.messages.insert(mid, msg.clone());
    st.world
        .channel_messages
        .entry(channel)
        .or_default()
        .push(mid);
    if let Some(ch) = st.world.channels.get_mut(&channel) {
        ch.last_message_id = Some(mid);
        ch.message_count += 1;
    }
    let payload = payloads::gateway_message(&st.world, &msg);
    st.gateway.emit("MESSAGE_CREATE", payload);
    msg
}

fn create_thread(
    st: &mut FakeState,
    parent: &ChannelRec,
    from_message: Option<u64>,
    kind: u8,
    body: &Value,
) -> Answer {
    let Some(g) = parent.guild_id else {
        return Answer::error(400, 50035);
    };
    let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) else {
        return Answer::error(400, 50035);
    };
    // Discord gives a thread started from a message the message's id.
    let tid = from_message.unwrap_or_else(|| st.world.next_id());
    if st.world.channels.contains_key(&tid) {
        return Answer::error(400, 160004);
    }
    let rec = ChannelRec {
        id: tid,
        guild_id: Some(g),
        kind,
        name: name.to_string(),
        position: 0,
        parent_id: Some(parent.id),
        recipient: None,
        owner_id: Some(st.world.bot_user_id),
        created_at: now_timestamp(),
        last_message_id: None,
        message_count: 0,
    };
    st.world.channels.insert(tid, rec.clone());
    if let Some(guild) = st.world.guilds.get_mut(&g) {
        guild.channels.push(tid);
    }
    let mut payload = payloads::channel(&st.world, &rec);
    payload["newly_created"] = json!(true);
    st.gateway.emit("THREAD_CREATE", payload);
    Answer::json(201, payloads::channel(&st.world, &rec))
}

/// Discord stores command options without the explicit nulls a client may send
/// (serenity sends `min_value: null`); the stored, returned form has no null fields.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}
