//! Contract tests: every payload the fake produces is fed to serenity 0.12.5's own
//! models, so a field serenity requires but the fake forgets fails here (serenity would
//! otherwise drop the event with only a log line). REST behaviour (auth, errors,
//! hierarchy, faults, request log) is exercised over real HTTP on loopback.

use std::time::Duration;

use serde_json::{Value, json};
use serenity::all::{
    CommandDataOptionValue, CurrentApplicationInfo, CurrentUser, Event, GatewayEvent, GuildChannel,
    Interaction, Member, Message, PartialGuild, Role,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::gateway::{Outgoing, ServerInfo, hello, on_frame};
use crate::{Command, FakeDiscord, FakeGuild};

/// A gateway "socket" without the socket: frames the fake would write, read straight
/// from the connection queue.
struct Wire {
    fake: FakeDiscord,
    conn: u64,
    rx: mpsc::UnboundedReceiver<Outgoing>,
}

impl Wire {
    fn open(fake: &FakeDiscord) -> Wire {
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = fake.mutate(|st| st.gateway.open(tx));
        Wire {
            fake: fake.clone(),
            conn,
            rx,
        }
    }

    fn send(&self, frame: Value) {
        let info = ServerInfo::of(&self.fake);
        self.fake.mutate(|st| on_frame(st, &info, self.conn, frame));
    }

    fn identify(&self) {
        let token = format!("Bot {}", self.fake.token());
        self.send(json!({"op": 2, "d": {"token": token, "intents": 513,
            "properties": {"os": "linux", "browser": "serenity", "device": "serenity"}}}));
    }

    /// Everything queued so far, as JSON frames.
    fn drain(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(o) = self.rx.try_recv() {
            match o {
                Outgoing::Frame(t) => out.push(serde_json::from_str(&t).expect("json frame")),
                Outgoing::Close(code, _) => out.push(json!({"close": code})),
                Outgoing::Drop => out.push(json!({"drop": true})),
            }
        }
        out
    }

    /// The single dispatch of type `t` among the queued frames, parsed by serenity.
    fn expect(&mut self, t: &str) -> Event {
        let frames = self.drain();
        let frame = frames
            .iter()
            .find(|f| f["t"] == t)
            .unwrap_or_else(|| panic!("no {t} in {frames:#?}"))
            .clone();
        parse_dispatch(frame)
    }
}

fn parse_dispatch(frame: Value) -> Event {
    let t = frame["t"].as_str().unwrap_or_default().to_string();
    match serde_json::from_value::<GatewayEvent>(frame.clone()) {
        Ok(GatewayEvent::Dispatch(_, event)) => {
            assert!(
                event.name().is_some(),
                "serenity did not recognise {t}: {frame:#}"
            );
            event
        }
        Ok(other) => panic!("{t} parsed as {other:?}"),
        Err(e) => panic!("serenity rejects {t}: {e}\n{frame:#}"),
    }
}

async fn connected_fake() -> (FakeDiscord, FakeGuild, Wire) {
    let fake = FakeDiscord::start().await;
    let guild = fake.add_guild("Contract");
    let mut wire = Wire::open(&fake);
    wire.identify();
    let _ = wire.drain();
    (fake, guild, wire)
}

#[tokio::test]
async fn hello_ready_and_guild_create_parse() {
    let fake = FakeDiscord::start().await;
    let guild = fake.add_guild("Contract");
    assert!(matches!(
        serde_json::from_value::<GatewayEvent>(hello(&fake)),
        Ok(GatewayEvent::Hello(41_250))
    ));
    let mut wire = Wire::open(&fake);
    wire.identify();
    let frames = wire.drain();
    assert_eq!(frames.len(), 2, "READY then one GUILD_CREATE: {frames:#?}");
    assert_eq!(frames[0]["s"], 1);
    assert_eq!(frames[1]["s"], 2);

    let Event::Ready(ready) = parse_dispatch(frames[0].clone()) else {
        panic!("not READY")
    };
    assert_eq!(ready.ready.user.id.get(), fake.bot_user_id());
    assert_eq!(ready.ready.application.id.get(), fake.application_id());
    assert_eq!(ready.ready.guilds.len(), 1);
    assert!(ready.ready.guilds[0].unavailable);

    let Event::GuildCreate(gc) = parse_dispatch(frames[1].clone()) else {
        panic!("not GUILD_CREATE")
    };
    let g = gc.guild;
    assert_eq!(g.id.get(), guild.id);
    assert_eq!(g.owner_id.get(), guild.owner_id);
    assert_eq!(g.channels.len(), 3);
    assert_eq!(g.roles.len(), 3);
    assert_eq!(g.member_count, 2);
    let bot = &g.members[&fake.bot_user_id().into()];
    assert_eq!(bot.roles[0].get(), guild.bot_role);
    assert!(bot.user.bot);
    assert!(g.roles[&guild.bot_role.into()].managed);
    // serenity's cache-side permission check must see the bot as able to moderate.
    let perms = g.member_permissions(bot);
    assert!(perms.manage_roles() && perms.kick_members() && perms.manage_messages());
}

#[tokio::test]
async fn bad_token_identify_is_closed_with_4004() {
    let fake = FakeDiscord::start().await;
    let mut wire = Wire::open(&fake);
    wire.send(json!({"op": 2, "d": {"token": "Bot nope", "intents": 0, "properties": {}}}));
    assert_eq!(wire.drain(), vec![json!({"close": 4004})]);
    assert_eq!(fake.gateway_stats().identifies, 0);
}

#[tokio::test]
async fn world_events_parse() {
    let (fake, guild, mut wire) = connected_fake().await;

    let alice = fake.add_user("alice");
    fake.add_member(guild.id, alice, &[guild.admin_role]);
    let Event::GuildMemberAdd(add) = wire.expect("GUILD_MEMBER_ADD") else {
        panic!()
    };
    assert_eq!(add.member.user.id.get(), alice);
    assert_eq!(add.member.guild_id.get(), guild.id);

    let role = fake.add_role(guild.id, "Helpers", crate::perm::MANAGE_MESSAGES, 5);
    let Event::GuildRoleCreate(rc) = wire.expect("GUILD_ROLE_CREATE") else {
        panic!()
    };
    assert_eq!(rc.role.id.get(), role);
    assert_eq!(rc.role.position, 5);

    let chan = fake.add_text_channel(guild.id, "support");
    let Event::ChannelCreate(cc) = wire.expect("CHANNEL_CREATE") else {
        panic!()
    };
    assert_eq!(cc.channel.id.get(), chan);
    assert_eq!(cc.channel.guild_id.get(), guild.id);

    let msg = fake.post_message(guild.id, chan, alice, "hello <@1>");
    let Event::MessageCreate(mc) = wire.expect("MESSAGE_CREATE") else {
        panic!()
    };
    assert_eq!(mc.message.id.get(), msg);
    assert_eq!(mc.message.author.id.get(), alice);
    assert_eq!(mc.message.guild_id.map(|g| g.get()), Some(guild.id));
    assert!(mc.message.member.is_some());

    fake.remove_member(guild.id, alice);
    let Event::GuildMemberRemove(rm) = wire.expect("GUILD_MEMBER_REMOVE") else {
        panic!()
    };
    assert_eq!(rm.user.id.get(), alice);

    fake.guild_outage(guild.id);
    let Event::GuildDelete(del) = wire.expect("GUILD_DELETE") else {
        panic!()
    };
    assert!(del.guild.unavailable);

    fake.guild_restore(guild.id);
    let Event::GuildCreate(_) = wire.expect("GUILD_CREATE") else {
        panic!()
    };

    fake.remove_bot(guild.id);
    let Event::GuildDelete(del) = wire.expect("GUILD_DELETE") else {
        panic!()
    };
    assert!(!del.guild.unavailable);

    let g2 = fake.add_guild("Second");
    let Event::GuildCreate(gc) = wire.expect("GUILD_CREATE") else {
        panic!()
    };
    assert_eq!(gc.guild.id.get(), g2.id);
}

#[tokio::test]
async fn interactions_parse_with_permissions_and_resolved_data() {
    let (fake, guild, mut wire) = connected_fake().await;
    let mod_ = fake.add_user("moderator");
    let target = fake.add_user("target");
    fake.add_member(guild.id, mod_, &[guild.admin_role]);
    fake.add_member(guild.id, target, &[]);
    let _ = wire.drain();

    let cmd = Command::new("mod")
        .sub("actions")
        .sub("timeout")
        .user("member", target)
        .integer("minutes", 10)
        .string("reason", "spam")
        .boolean("silent", true)
        .channel("log", guild.mod_log_channel)
        .role("role", guild.admin_role);
    let handle = fake.run_command(guild.id, guild.general_channel, mod_, cmd);
    let Event::InteractionCreate(ic) = wire.expect("INTERACTION_CREATE") else {
        panic!()
    };
    let Interaction::Command(ci) = ic.interaction else {
        panic!("not a command")
    };
    assert_eq!(ci.id.get(), handle.id());
    assert_eq!(ci.data.name, "mod");
    let member = ci.member.expect("member");
    assert_eq!(member.user.id.get(), mod_);
    assert!(member.permissions.expect("permissions").administrator());
    let app = ci.app_permissions.expect("app_permissions");
    assert!(app.manage_roles() && !app.administrator());
    assert_eq!(ci.locale, "en-US");
    let CommandDataOptionValue::SubCommandGroup(group) = &ci.data.options[0].value else {
        panic!("group")
    };
    let CommandDataOptionValue::SubCommand(leaf) = &group[0].value else {
        panic!("sub")
    };
    assert_eq!(leaf.len(), 6);
    assert_eq!(leaf[0].value, CommandDataOptionValue::User(target.into()));
    assert_eq!(leaf[1].value, CommandDataOptionValue::Integer(10));
    assert!(ci.data.resolved.users.contains_key(&target.into()));
    assert!(ci.data.resolved.members.contains_key(&target.into()));
    assert!(
        ci.data
            .resolved
            .roles
            .contains_key(&guild.admin_role.into())
    );
    assert!(
        ci.data
            .resolved
            .channels
            .contains_key(&guild.mod_log_channel.into())
    );

    let msg = fake.post_message(guild.id, guild.general_channel, mod_, "panel");
    let _ = wire.drain();
    fake.click_button(guild.id, guild.general_channel, mod_, msg, "approve:1");
    let Event::InteractionCreate(ic) = wire.expect("INTERACTION_CREATE") else {
        panic!()
    };
    let Interaction::Component(ci) = ic.interaction else {
        panic!("not a component")
    };
    assert_eq!(ci.data.custom_id, "approve:1");
    assert_eq!(ci.message.id.get(), msg);

    fake.select_menu(guild.id, guild.general_channel, mod_, msg, "pick", &["a"]);
    let Event::InteractionCreate(ic) = wire.expect("INTERACTION_CREATE") else {
        panic!()
    };
    assert!(matches!(ic.interaction, Interaction::Component(_)));

    fake.submit_modal(
        guild.id,
        guild.general_channel,
        target,
        "appeal",
        &[("why", "sorry"), ("contact", "dm")],
    );
    let Event::InteractionCreate(ic) = wire.expect("INTERACTION_CREATE") else {
        panic!()
    };
    let Interaction::Modal(mi) = ic.interaction else {
        panic!("not a modal")
    };
    assert_eq!(mi.data.custom_id, "appeal");
    assert_eq!(mi.data.components.len(), 2);
    let perms = mi.member.expect("member").permissions.expect("perms");
    assert!(perms.send_messages() && !perms.kick_members());
}

#[tokio::test]
async fn resume_replays_missed_events_then_resumed() {
    let (fake, guild, mut wire) = connected_fake().await;
    let session = fake.lock().gateway.session_ids()[0].clone();
    fake.drop_connections();
    let _ = wire.drain();
    let alice = fake.add_user("alice");
    fake.add_member(guild.id, alice, &[]); // s = 3, buffered
    let mut wire2 = Wire::open(&fake);
    wire2.send(json!({"op": 6, "d": {"token": format!("Bot {}", fake.token()), "session_id": session, "seq": 2}}));
    let frames = wire2.drain();
    assert_eq!(frames[0]["t"], "GUILD_MEMBER_ADD");
    assert_eq!(frames[0]["s"], 3);
    assert_eq!(frames[1]["t"], "RESUMED");
    let Event::Resumed(_) = parse_dispatch(frames[1].clone()) else {
        panic!()
    };
    assert_eq!(fake.gateway_stats().resumes, 1);

    // Unknown session: op 9 (not resumable).
    let mut wire3 = Wire::open(&fake);
    wire3.send(json!({"op": 6, "d": {"token": format!("Bot {}", fake.token()), "session_id": "nope", "seq": 1}}));
    let frames = wire3.drain();
    assert_eq!(frames[0]["op"], 9);
    assert!(matches!(
        serde_json::from_value::<GatewayEvent>(frames[0].clone()),
        Ok(GatewayEvent::InvalidateSession(false))
    ));

    // Heartbeat → ACK.
    wire2.send(json!({"op": 1, "d": 4}));
    assert!(matches!(
        serde_json::from_value::<GatewayEvent>(wire2.drain()[0].clone()),
        Ok(GatewayEvent::HeartbeatAck)
    ));
}

// ----- REST over loopback HTTP -------------------------------------------------------------

/// Minimal HTTP/1.1 client (one request per connection) so the harness tests need no
/// HTTP client dependency.
async fn http(
    fake: &FakeDiscord,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Vec<(String, String)>, Option<Value>) {
    let addr = fake.base_url().trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bot {t}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("http response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body_text = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let json = serde_json::from_str(&body_text).ok();
    (status, headers, json)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

#[tokio::test]
async fn rest_objects_parse_as_serenity_models() {
    let fake = FakeDiscord::start().await;
    let g = fake.add_guild("Rest");
    let t = Some(fake.token().to_string());
    let t = t.as_deref();
    let get = |p: String| {
        let fake = fake.clone();
        async move {
            let (s, _, b) = http(&fake, "GET", &p, t, &[], None).await;
            assert_eq!(s, 200, "GET {p}: {b:?}");
            b.expect("json body")
        }
    };
    let me: CurrentUser =
        serde_json::from_value(get("/api/v10/users/@me".into()).await).expect("user");
    assert_eq!(me.id.get(), fake.bot_user_id());
    let _: CurrentApplicationInfo =
        serde_json::from_value(get("/api/v10/oauth2/applications/@me".into()).await).expect("app");
    let gw = get("/api/v10/gateway".into()).await;
    assert_eq!(gw["url"], fake.gateway_url());
    let _: PartialGuild =
        serde_json::from_value(get(format!("/api/v10/guilds/{}", g.id)).await).expect("guild");
    let roles: Vec<Role> =
        serde_json::from_value(get(format!("/api/v10/guilds/{}/roles", g.id)).await)
            .expect("roles");
    assert_eq!(roles.len(), 3);
    let chans: Vec<GuildChannel> =
        serde_json::from_value(get(format!("/api/v10/guilds/{}/channels", g.id)).await)
            .expect("channels");
    assert_eq!(chans.len(), 3);
    let m: Member = serde_json::from_value(
        get(format!("/api/v10/guilds/{}/members/{}", g.id, g.owner_id)).await,
    )
    .expect("member");
    assert_eq!(m.user.id.get(), g.owner_id);
    let list = get(format!("/api/v10/guilds/{}/members?&limit=1000", g.id)).await;
    assert_eq!(list.as_array().map(Vec::len), Some(2));

    let (s, _, body) = http(
        &fake,
        "POST",
        &format!("/api/v10/channels/{}/messages", g.mod_log_channel),
        t,
        &[],
        Some(json!({"content": "logged", "embeds": [{"title": "Case 1"}]})),
    )
    .await;
    assert_eq!(s, 200);
    let msg: Message = serde_json::from_value(body.expect("message")).expect("message model");
    assert_eq!(msg.content, "logged");
    assert_eq!(fake.channel_messages(g.mod_log_channel).len(), 1);

    let (s, _, body) = http(
        &fake,
        "POST",
        "/api/v10/users/@me/channels",
        t,
        &[],
        Some(json!({"recipient_id": g.owner_id.to_string()})),
    )
    .await;
    assert_eq!(s, 200);
    let dm: serenity::all::PrivateChannel =
        serde_json::from_value(body.expect("dm")).expect("dm model");
    assert_eq!(dm.recipient.id.get(), g.owner_id);

    let (s, _, body) = http(
        &fake,
        "POST",
        &format!(
            "/api/v10/channels/{}/messages/{}/threads",
            g.mod_log_channel, msg.id
        ),
        t,
        &[],
        Some(json!({"name": "case-1"})),
    )
    .await;
    assert_eq!(s, 201);
    let th: GuildChannel = serde_json::from_value(body.expect("thread")).expect("thread model");
    assert_eq!(th.id.get(), msg.id.get());
}

#[tokio::test]
async fn rest_auth_errors_and_unknown_routes() {
    let fake = FakeDiscord::start().await;
    let g = fake.add_guild("Errors");
    let (s, _, b) = http(&fake, "GET", "/api/v10/users/@me", Some("wrong"), &[], None).await;
    assert_eq!(
        (s, b),
        (
            401,
            Some(json!({"message": "401: Unauthorized", "code": 0}))
        )
    );
    let (s, _, b) = http(&fake, "GET", "/api/v10/nope", Some(fake.token()), &[], None).await;
    assert_eq!(
        (s, b),
        (404, Some(json!({"message": "404: Not Found", "code": 0})))
    );
    let (s, _, b) = http(
        &fake,
        "GET",
        &format!("/api/v10/guilds/{}/members/42", g.id),
        Some(fake.token()),
        &[],
        None,
    )
    .await;
    assert_eq!((s, b.map(|b| b["code"].clone())), (404, Some(json!(10007))));
    let (s, _, b) = http(
        &fake,
        "GET",
        "/api/v10/channels/42",
        Some(fake.token()),
        &[],
        None,
    )
    .await;
    assert_eq!((s, b.map(|b| b["code"].clone())), (404, Some(json!(10003))));
    assert_eq!(fake.requests().len(), 4);
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.header("authorization").is_none())
    );
}

#[tokio::test]
async fn role_changes_enforce_hierarchy_and_emit_member_update() {
    let (fake, g, mut wire) = connected_fake().await;
    let alice = fake.add_user("alice");
    fake.add_member(g.id, alice, &[]);
    let low = fake.add_role(g.id, "Verified", 0, 3);
    let high = fake.add_role(g.id, "Staff", 0, 60);
    let _ = wire.drain();
    let path = |r: u64| format!("/api/v10/guilds/{}/members/{alice}/roles/{r}", g.id);
    let tok = Some(fake.token());
    let reason = [("X-Audit-Log-Reason", "verified%20by%20bot")];

    let (s, _, _) = http(&fake, "PUT", &path(low), tok, &reason, None).await;
    assert_eq!(s, 204);
    assert_eq!(fake.member_roles(g.id, alice), Some(vec![low]));
    let Event::GuildMemberUpdate(up) = wire.expect("GUILD_MEMBER_UPDATE") else {
        panic!()
    };
    assert_eq!(up.roles, vec![serenity::all::RoleId::new(low)]);
    let rec = fake
        .wait_for_request(|r| r.method == "PUT", Duration::from_secs(1))
        .await
        .expect("recorded");
    assert_eq!(rec.audit_log_reason().as_deref(), Some("verified by bot"));
    assert_eq!(rec.status, 204);

    let (s, _, b) = http(&fake, "PUT", &path(high), tok, &[], None).await;
    assert_eq!((s, b.map(|b| b["code"].clone())), (403, Some(json!(50013))));
    let (s, _, b) = http(&fake, "PUT", &path(g.bot_role), tok, &[], None).await;
    assert_eq!((s, b.map(|b| b["code"].clone())), (403, Some(json!(50013))));
    let (s, _, b) = http(&fake, "PUT", &path(42), tok, &[], None).await;
    assert_eq!((s, b.map(|b| b["code"].clone())), (404, Some(json!(10011))));
    let (s, _, _) = http(&fake, "DELETE", &path(low), tok, &[], None).await;
    assert_eq!(s, 204);
    assert_eq!(fake.member_roles(g.id, alice), Some(vec![]));

    // Timeout, kick and ban respect the hierarchy too.
    let (s, _, b) = http(
        &fake,
        "PATCH",
        &format!("/api/v10/guilds/{}/members/{alice}", g.id),
        tok,
        &[],
        Some(json!({"communication_disabled_until": "2030-01-01T00:00:00.000Z"})),
    )
    .await;
    assert_eq!(s, 200);
    let m: Member = serde_json::from_value(b.expect("member")).expect("member model");
    assert!(m.communication_disabled_until.is_some());
    let (s, _, _) = http(
        &fake,
        "DELETE",
        &format!("/api/v10/guilds/{}/members/{}", g.id, g.owner_id),
        tok,
        &[],
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _, _) = http(
        &fake,
        "PUT",
        &format!("/api/v10/guilds/{}/bans/{alice}", g.id),
        tok,
        &[("X-Audit-Log-Reason", "spam")],
        Some(json!({"delete_message_seconds": 0})),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(fake.member_roles(g.id, alice), None);
    assert_eq!(fake.ban(g.id, alice), Some(Some("spam".into())));
    let frames = wire.drain();
    assert!(frames.iter().any(|f| f["t"] == "GUILD_MEMBER_REMOVE"));
    for f in frames.into_iter().filter(|f| f["op"] == 0) {
        parse_dispatch(f);
    }
}

#[tokio::test]
async fn faults_and_rate_limits_are_discord_shaped() {
    let fake = FakeDiscord::start().await;
    let tok = Some(fake.token());
    fake.rate_limit("GET", "/users/@me", 1.5, true, 1);
    let (s, h, b) = http(&fake, "GET", "/api/v10/users/@me", tok, &[], None).await;
    assert_eq!(s, 429);
    let b = b.expect("body");
    assert_eq!(b["retry_after"], 1.5);
    assert_eq!(b["global"], true);
    let hv = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(hv("x-ratelimit-global").as_deref(), Some("true"));
    assert_eq!(hv("x-ratelimit-scope").as_deref(), Some("global"));
    assert_eq!(hv("x-ratelimit-remaining").as_deref(), Some("0"));
    assert!(hv("retry-after").is_some() && hv("x-ratelimit-reset-after").is_some());
    let (s, _, _) = http(&fake, "GET", "/api/v10/users/@me", tok, &[], None).await;
    assert_eq!(s, 200, "the fault fires once");

    fake.fail_requests("*", "/users/@me", 503, 0, 2);
    for _ in 0..2 {
        let (s, _, _) = http(&fake, "GET", "/api/v10/users/@me", tok, &[], None).await;
        assert_eq!(s, 503);
    }
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200, 503, 503]);
}

#[tokio::test]
async fn interaction_replies_cover_callbacks_followups_and_edits() {
    let (fake, g, _wire) = connected_fake().await;
    let tok = Some(fake.token());
    let app = fake.application_id();
    let (s, _, b) = http(
        &fake,
        "PUT",
        &format!("/api/v10/applications/{app}/guilds/{}/commands", g.id),
        tok,
        &[],
        Some(json!([{"name": "ping", "description": "Ping", "type": 1}])),
    )
    .await;
    assert_eq!(s, 200);
    let cmds: Vec<serenity::all::Command> =
        serde_json::from_value(b.expect("cmds")).expect("command model");
    let ping_id = cmds[0].id.get();
    assert_eq!(fake.registered_commands(Some(g.id)).len(), 1);

    // Type 4 straight away.
    let h = fake.run_command(g.id, g.general_channel, g.owner_id, Command::new("ping"));
    let token = h.token();
    let (s, _, _) = http(
        &fake,
        "POST",
        &format!("/api/v10/interactions/{}/{token}/callback", h.id()),
        tok,
        &[],
        Some(json!({"type": 4, "data": {"content": "pong", "flags": 64}})),
    )
    .await;
    assert_eq!(s, 204);
    let r = h.reply(Duration::from_secs(1)).await.expect("reply");
    assert_eq!(
        (r.kind, r.content.as_deref(), r.ephemeral),
        (4, Some("pong"), true)
    );
    let (s, _, b) = http(
        &fake,
        "POST",
        &format!("/api/v10/interactions/{}/{token}/callback", h.id()),
        tok,
        &[],
        Some(json!({"type": 4, "data": {"content": "again"}})),
    )
    .await;
    assert_eq!((s, b.map(|b| b["code"].clone())), (400, Some(json!(40060))));

    // Deferred, then edit of @original.
    let h = fake.run_command(g.id, g.general_channel, g.owner_id, Command::new("ping"));
    let fake2 = fake.clone();
    let id = h.id();
    let token = h.token();
    let waiter = tokio::spawn({
        let h = h.clone();
        async move { h.reply(Duration::from_secs(5)).await }
    });
    let (s, _, b) = http(
        &fake2,
        "POST",
        &format!("/api/v10/interactions/{id}/{token}/callback?with_response=true"),
        tok,
        &[],
        Some(json!({"type": 5})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        b.expect("callback response")["interaction"]["response_message_loading"],
        true
    );
    let (s, _, b) = http(
        &fake2,
        "PATCH",
        &format!("/api/v10/webhooks/{app}/{token}/messages/@original"),
        tok,
        &[],
        Some(json!({"content": "done", "embeds": [{"title": "t"}]})),
    )
    .await;
    assert_eq!(s, 200);
    let _: Message = serde_json::from_value(b.expect("msg")).expect("message model");
    let r = waiter.await.expect("join").expect("reply");
    assert_eq!(
        (r.kind, r.source, r.content.as_deref()),
        (5, crate::ReplySource::EditOriginal, Some("done"))
    );
    assert_eq!(r.embeds.len(), 1);

    // Follow-up after a reply.
    let (s, _, b) = http(
        &fake,
        "POST",
        &format!("/api/v10/webhooks/{app}/{token}?wait=true"),
        tok,
        &[],
        Some(json!({"content": "more"})),
    )
    .await;
    assert_eq!(s, 200);
    let _: Message = serde_json::from_value(b.expect("msg")).expect("followup model");
    let r2 = h
        .nth_reply(1, Duration::from_secs(1))
        .await
        .expect("followup");
    assert_eq!(r2.source, crate::ReplySource::Followup);

    // The command's data.id is the registered id.
    let frames: Vec<Value> = fake.dispatched("INTERACTION_CREATE");
    assert!(
        frames
            .iter()
            .all(|f| f["d"]["data"]["id"].as_str() == Some(ping_id.to_string().as_str()))
    );

    // Modal then component update.
    let h = fake.run_command(g.id, g.general_channel, g.owner_id, Command::new("ping"));
    let token = h.token();
    http(&fake, "POST", &format!("/api/v10/interactions/{}/{token}/callback", h.id()), tok, &[],
        Some(json!({"type": 9, "data": {"custom_id": "m", "title": "T", "components": [{"type": 1, "components": [{"type": 4, "custom_id": "x", "label": "X", "style": 1}]}]}}))).await;
    let r = h.reply(Duration::from_secs(1)).await.expect("modal");
    assert_eq!((r.kind, r.components.len()), (9, 1));

    let panel = fake.post_message(g.id, g.general_channel, g.owner_id, "panel");
    let h = fake.click_button(g.id, g.general_channel, g.owner_id, panel, "b");
    let token = h.token();
    http(
        &fake,
        "POST",
        &format!("/api/v10/interactions/{}/{token}/callback", h.id()),
        tok,
        &[],
        Some(json!({"type": 7, "data": {"content": "updated", "components": []}})),
    )
    .await;
    let r = h.reply(Duration::from_secs(1)).await.expect("update");
    assert_eq!(
        (r.kind, r.content.as_deref(), r.message_id),
        (7, Some("updated"), Some(panel))
    );
}

#[tokio::test]
async fn rest_side_effects_emit_parseable_dispatches() {
    let (fake, g, mut wire) = connected_fake().await;
    let tok = Some(fake.token());
    let alice = fake.add_user("alice");
    fake.add_member(g.id, alice, &[]);
    let ch = g.general_channel;
    let (_, _, m) = http(&fake, "POST", &format!("/api/v10/channels/{ch}/messages"), tok, &[],
        Some(json!({"content": "hi", "components": [{"type": 1, "components": [{"type": 2, "style": 1, "label": "Go", "custom_id": "go"}]}]}))).await;
    let mid = m.expect("message")["id"].as_str().expect("id").to_string();
    http(
        &fake,
        "PATCH",
        &format!("/api/v10/channels/{ch}/messages/{mid}"),
        tok,
        &[],
        Some(json!({"content": "edited"})),
    )
    .await;
    http(
        &fake,
        "POST",
        &format!("/api/v10/channels/{ch}/messages/{mid}/threads"),
        tok,
        &[],
        Some(json!({"name": "t"})),
    )
    .await;
    let user_msg = fake.post_message(g.id, ch, alice, "spam");
    let (s, _, _) = http(
        &fake,
        "DELETE",
        &format!("/api/v10/channels/{ch}/messages/{user_msg}"),
        tok,
        &[],
        None,
    )
    .await;
    assert_eq!(s, 204);
    http(
        &fake,
        "PUT",
        &format!("/api/v10/guilds/{}/bans/{alice}", g.id),
        tok,
        &[],
        None,
    )
    .await;
    http(
        &fake,
        "DELETE",
        &format!("/api/v10/guilds/{}/bans/{alice}", g.id),
        tok,
        &[],
        None,
    )
    .await;
    http(
        &fake,
        "PATCH",
        &format!("/api/v10/guilds/{}/members/{}", g.id, g.owner_id),
        tok,
        &[],
        Some(json!({"nick": "boss"})),
    )
    .await;

    let frames: Vec<Value> = wire.drain().into_iter().filter(|f| f["op"] == 0).collect();
    let kinds: Vec<&str> = frames.iter().filter_map(|f| f["t"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "GUILD_MEMBER_ADD",
            "MESSAGE_CREATE",
            "MESSAGE_UPDATE",
            "THREAD_CREATE",
            "MESSAGE_CREATE",
            "MESSAGE_DELETE",
            "GUILD_MEMBER_REMOVE",
            "GUILD_BAN_ADD",
            "GUILD_BAN_REMOVE"
        ],
        "the owner's nick change is refused (hierarchy), so no member update"
    );
    for f in frames {
        parse_dispatch(f);
    }
    let Event::MessageCreate(mc) = parse_dispatch(fake.dispatched("MESSAGE_CREATE")[0].clone())
    else {
        panic!()
    };
    assert_eq!(mc.message.components.len(), 1);
    assert_eq!(
        fake.channel_messages(ch).len(),
        1,
        "the user's message is not the bot's"
    );

    // DMs: created once, and blocked users answer 50007.
    let (_, _, dm) = http(
        &fake,
        "POST",
        "/api/v10/users/@me/channels",
        tok,
        &[],
        Some(json!({"recipient_id": alice.to_string()})),
    )
    .await;
    let dm = dm.expect("dm")["id"].as_str().expect("id").to_string();
    fake.block_dms(alice);
    let (s, _, b) = http(
        &fake,
        "POST",
        &format!("/api/v10/channels/{dm}/messages"),
        tok,
        &[],
        Some(json!({"content": "you were banned"})),
    )
    .await;
    assert_eq!((s, b.map(|b| b["code"].clone())), (403, Some(json!(50007))));

    // Gateway discovery answers without auth and ignores blanket faults.
    fake.fail_requests("*", "", 500, 0, 10);
    let (s, _, b) = http(&fake, "GET", "/api/v10/gateway", None, &[], None).await;
    assert_eq!(
        (s, b.map(|b| b["url"].clone())),
        (200, Some(json!(fake.gateway_url())))
    );
}

#[tokio::test]
async fn component_deferred_update_then_edit_original_edits_the_panel() {
    let (fake, g, mut wire) = connected_fake().await;
    let tok = Some(fake.token());
    let app = fake.application_id();
    let (_, _, m) = http(
        &fake,
        "POST",
        &format!("/api/v10/channels/{}/messages", g.admin_channel),
        tok,
        &[],
        Some(
            json!({"content": "Approve?", "components": [{"type": 1, "components": [
            {"type": 2, "style": 3, "label": "Yes", "custom_id": "yes"}]}]}),
        ),
    )
    .await;
    let panel: u64 = m.expect("panel")["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let h = fake.click_button(g.id, g.admin_channel, g.owner_id, panel, "yes");
    let token = h.token();
    let cb = format!("/api/v10/interactions/{}/{token}/callback", h.id());
    let (s, _, _) = http(&fake, "POST", &cb, tok, &[], Some(json!({"type": 6}))).await;
    assert_eq!(s, 204);
    assert_eq!(h.acknowledged(Duration::from_secs(1)).await, Some(6));
    let edit = format!("/api/v10/webhooks/{app}/{token}/messages/@original");
    let (s, _, _) = http(
        &fake,
        "PATCH",
        &edit,
        tok,
        &[],
        Some(json!({"content": "Approved", "components": []})),
    )
    .await;
    assert_eq!(s, 200);
    let r = h.reply(Duration::from_secs(1)).await.expect("edit");
    assert_eq!(
        (r.kind, r.source, r.message_id, r.content.as_deref()),
        (
            6,
            crate::ReplySource::EditOriginal,
            Some(panel),
            Some("Approved")
        )
    );
    assert_eq!(
        fake.channel_messages(g.admin_channel)[0]["content"],
        "Approved"
    );
    let Event::MessageUpdate(up) = wire.expect("MESSAGE_UPDATE") else {
        panic!()
    };
    assert_eq!(up.id.get(), panel);
}

#[tokio::test]
async fn outage_guilds_stay_unavailable_for_new_sessions() {
    let fake = FakeDiscord::start().await;
    let g = fake.add_guild("Down");
    fake.guild_outage(g.id);
    let mut wire = Wire::open(&fake);
    wire.identify();
    let kinds: Vec<Value> = wire.drain().iter().map(|f| f["t"].clone()).collect();
    assert_eq!(kinds, vec![json!("READY")]);
    fake.guild_restore(g.id);
    let Event::GuildCreate(gc) = wire.expect("GUILD_CREATE") else {
        panic!()
    };
    assert_eq!(gc.guild.id.get(), g.id);
}

#[tokio::test]
async fn message_history_bulk_delete_users_and_role_create() {
    let (fake, g, mut wire) = connected_fake().await;
    let tok = Some(fake.token());
    let ch = g.general_channel;
    let ids: Vec<u64> = (0..3)
        .map(|i| fake.post_message(g.id, ch, g.owner_id, &format!("m{i}")))
        .collect();
    let (s, _, b) = http(
        &fake,
        "GET",
        &format!("/api/v10/channels/{ch}/messages?&limit=2"),
        tok,
        &[],
        None,
    )
    .await;
    assert_eq!(s, 200);
    let list: Vec<Message> = serde_json::from_value(b.expect("list")).expect("messages");
    assert_eq!(
        list.iter().map(|m| m.id.get()).collect::<Vec<_>>(),
        vec![ids[2], ids[1]],
        "newest first"
    );
    let body = json!({"messages": [ids[0].to_string(), ids[1].to_string()]});
    let (s, _, _) = http(
        &fake,
        "POST",
        &format!("/api/v10/channels/{ch}/messages/bulk-delete"),
        tok,
        &[],
        Some(body),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, b) = http(
        &fake,
        "GET",
        &format!("/api/v10/users/{}", g.owner_id),
        tok,
        &[],
        None,
    )
    .await;
    assert_eq!(s, 200);
    let _: serenity::all::User = serde_json::from_value(b.expect("user")).expect("user model");
    let (s, _, b) = http(
        &fake,
        "POST",
        &format!("/api/v10/guilds/{}/roles", g.id),
        tok,
        &[],
        Some(json!({"name": "Muted", "permissions": "0"})),
    )
    .await;
    assert_eq!(s, 200);
    let role: Role = serde_json::from_value(b.expect("role")).expect("role model");
    assert_eq!(role.name, "Muted");
    let frames: Vec<Value> = wire.drain().into_iter().filter(|f| f["op"] == 0).collect();
    let kinds: Vec<&str> = frames.iter().filter_map(|f| f["t"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "MESSAGE_CREATE",
            "MESSAGE_CREATE",
            "MESSAGE_CREATE",
            "MESSAGE_DELETE_BULK",
            "GUILD_ROLE_CREATE"
        ]
    );
    for f in frames {
        parse_dispatch(f);
    }
}

#[tokio::test]
async fn role_and_member_updates_from_humans() {
    let (fake, g, mut wire) = connected_fake().await;
    let alice = fake.add_user("alice");
    fake.add_member(g.id, alice, &[]);
    let staff = fake.add_role(g.id, "Staff", crate::perm::KICK_MEMBERS, 10);
    let _ = wire.drain();
    fake.set_member_roles(g.id, alice, &[staff]);
    let Event::GuildMemberUpdate(up) = wire.expect("GUILD_MEMBER_UPDATE") else {
        panic!()
    };
    assert_eq!(up.roles.len(), 1);
    let perms = fake.member_permissions(g.id, alice).expect("member");
    assert!(perms & crate::perm::KICK_MEMBERS != 0 && perms & crate::perm::VIEW_CHANNEL != 0);

    // Taking MANAGE_ROLES away from the bot makes role changes fail with 50013.
    fake.set_role_permissions(
        g.id,
        g.bot_role,
        crate::perm::SEND_MESSAGES | crate::perm::VIEW_CHANNEL,
    );
    let Event::GuildRoleUpdate(ru) = wire.expect("GUILD_ROLE_UPDATE") else {
        panic!()
    };
    assert!(!ru.role.permissions.manage_roles());
    let path = format!("/api/v10/guilds/{}/members/{alice}/roles/{staff}", g.id);
    let (s, _, _) = http(&fake, "DELETE", &path, Some(fake.token()), &[], None).await;
    assert_eq!(s, 403);

    fake.set_role_permissions(g.id, g.bot_role, crate::perm::BOT_ROLE);
    fake.set_role_position(g.id, staff, 70);
    let (s, _, _) = http(&fake, "DELETE", &path, Some(fake.token()), &[], None).await;
    assert_eq!(s, 403, "Staff now outranks the bot");
    fake.set_role_position(g.id, staff, 10);
    let (s, _, _) = http(&fake, "DELETE", &path, Some(fake.token()), &[], None).await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn serenity_http_uploads_are_recorded_with_their_files() {
    use serenity::all::{ChannelId, CreateAttachment, CreateMessage, HttpBuilder};
    let fake = FakeDiscord::start().await;
    let g = fake.add_guild("Uploads");
    let http = HttpBuilder::new(fake.token())
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let msg = ChannelId::new(g.mod_log_channel)
        .send_message(
            &http,
            CreateMessage::new()
                .content("transcript")
                .add_file(CreateAttachment::bytes(
                    b"line 1\nline 2\n".to_vec(),
                    "log.txt",
                )),
        )
        .await
        .expect("serenity accepts the fake's message");
    assert_eq!(msg.content, "transcript");
    assert_eq!(msg.attachments.len(), 1);
    assert_eq!(msg.attachments[0].filename, "log.txt");
    assert_eq!(msg.attachments[0].size, 14);
    let req = fake
        .requests_matching("POST", "/messages")
        .pop()
        .expect("recorded");
    assert_eq!(
        req.body.as_ref().map(|b| b["content"].clone()),
        Some(json!("transcript"))
    );
    assert_eq!(req.files.len(), 1);
    assert_eq!(req.files[0].data, b"line 1\nline 2\n");
    assert_eq!(
        fake.channel_messages(g.mod_log_channel)[0]["attachments"][0]["filename"],
        "log.txt"
    );

    fake.clear_requests();
    assert!(fake.requests().is_empty());
}
