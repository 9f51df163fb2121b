//! End to end: an unmodified serenity 0.12.5 `Client` runs against the fake Discord.
//!
//! It connects (GET /gateway, HELLO, IDENTIFY), receives READY and GUILD_CREATE,
//! registers a guild command, sees a member join, answers a slash command with
//! `create_response` (read back through `InteractionHandle::reply`), and survives an
//! op 7 RECONNECT and a dropped socket by RESUMEing the same session, and an invalid
//! session by IDENTIFYing again. If this passes, the harness speaks
//! enough Discord for the real client.

use std::time::Duration;

use guildops_harness::{Command, Config, FakeDiscord};
use serenity::all::{
    Context, CreateCommand, CreateInteractionResponse, CreateInteractionResponseMessage,
    EventHandler, GatewayIntents, GuildId, HttpBuilder, Interaction, Member, Ready, ResumedEvent,
};
use serenity::async_trait;
use tokio::sync::mpsc;

struct Handler {
    events: mpsc::UnboundedSender<String>,
    /// Guild to register commands in, if any.
    guild: Option<u64>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        // Registering in `ready` is what bots do; it goes through the fake's bulk
        // overwrite, which hands out the command id used by `run_command`.
        if let Some(guild) = self.guild {
            let cmds = vec![CreateCommand::new("ping").description("Ping the bot")];
            GuildId::new(guild)
                .set_commands(&ctx.http, cmds)
                .await
                .expect("register guild commands");
        }
        let _ = self.events.send(format!("ready:{}", ready.user.id));
    }

    async fn guild_create(&self, _ctx: Context, guild: serenity::all::Guild, _new: Option<bool>) {
        let _ = self.events.send(format!("guild_create:{}", guild.id));
    }

    async fn guild_member_addition(&self, _ctx: Context, member: Member) {
        let _ = self.events.send(format!("member_add:{}", member.user.id));
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        if let Interaction::Command(cmd) = interaction {
            let member = cmd.member.as_ref().expect("guild interaction has a member");
            let msg = CreateInteractionResponseMessage::new().content(format!(
                "pong {} (admin: {})",
                member.user.name,
                member.permissions.is_some_and(|p| p.administrator())
            ));
            cmd.create_response(&ctx.http, CreateInteractionResponse::Message(msg))
                .await
                .expect("create_response");
            let _ = self.events.send(format!("command:{}", cmd.data.id));
        }
    }

    async fn resume(&self, _ctx: Context, _: ResumedEvent) {
        let _ = self.events.send("resumed".into());
    }
}

/// Receive events until one starts with `prefix`.
async fn expect_event(rx: &mut mpsc::UnboundedReceiver<String>, prefix: &str) -> String {
    let wait = async {
        while let Some(e) = rx.recv().await {
            if e.starts_with(prefix) {
                return e;
            }
        }
        panic!("event channel closed before {prefix}")
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {prefix}"))
}

/// Receive events until every one of `wanted` was seen, in any order.
async fn expect_all(rx: &mut mpsc::UnboundedReceiver<String>, wanted: &[&str]) {
    let mut missing: Vec<&str> = wanted.to_vec();
    let wait = async {
        while let Some(e) = rx.recv().await {
            missing.retain(|w| *w != e);
            if missing.is_empty() {
                return;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .is_err()
    {
        panic!("timed out waiting for {wanted:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_client_runs_unchanged_against_the_fake() {
    let discord = FakeDiscord::start().await;
    let guild = discord.add_guild("E2E");

    let http = HttpBuilder::new(discord.token())
        .proxy(discord.base_url())
        .ratelimiter_disabled(true)
        .application_id(discord.application_id().into())
        .build();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let intents = GatewayIntents::GUILDS | GatewayIntents::GUILD_MEMBERS;
    let mut client = serenity::client::ClientBuilder::new_with_http(http, intents)
        .event_handler(Handler {
            events: tx,
            guild: Some(guild.id),
        })
        .await
        .expect("client builds");
    let shards = client.shard_manager.clone();
    let running = tokio::spawn(async move { client.start().await });

    assert!(discord.wait_until_connected(Duration::from_secs(20)).await);
    // `ready` registers commands before reporting, so GUILD_CREATE may be seen first.
    let ready = format!("ready:{}", discord.bot_user_id());
    let created = format!("guild_create:{}", guild.id);
    expect_all(&mut rx, &[&ready, &created]).await;
    let put = discord
        .wait_for_request(
            |r| r.method == "PUT" && r.path.ends_with("/commands") && r.status == 200,
            Duration::from_secs(20),
        )
        .await
        .expect("commands registered");
    assert_eq!(
        put.path,
        format!(
            "/api/v10/applications/{}/guilds/{}/commands",
            discord.application_id(),
            guild.id
        )
    );
    let ping_id = discord.registered_commands(Some(guild.id))[0]["id"]
        .as_str()
        .expect("id")
        .to_string();

    let alice = discord.add_user("alice");
    discord.add_member(guild.id, alice, &[guild.admin_role]);
    assert_eq!(
        expect_event(&mut rx, "member_add:").await,
        format!("member_add:{alice}")
    );

    let reply = discord
        .run_command(guild.id, guild.general_channel, alice, Command::new("ping"))
        .reply(Duration::from_secs(20))
        .await
        .expect("serenity answered the interaction");
    assert_eq!(reply.kind, 4);
    assert_eq!(reply.content.as_deref(), Some("pong alice (admin: true)"));
    assert!(!reply.ephemeral);
    assert_eq!(
        expect_event(&mut rx, "command:").await,
        format!("command:{ping_id}")
    );

    // op 7: serenity reconnects and resumes the same session.
    discord.send_reconnect();
    expect_event(&mut rx, "resumed").await;
    let stats = discord.gateway_stats();
    assert_eq!((stats.identifies, stats.resumes), (1, 1), "{stats:?}");
    assert!(stats.connected);

    // The resumed session still delivers events.
    let bob = discord.add_user("bob");
    discord.add_member(guild.id, bob, &[]);
    assert_eq!(
        expect_event(&mut rx, "member_add:").await,
        format!("member_add:{bob}")
    );

    // A network drop: serenity resumes again, and events emitted while it was away
    // are replayed.
    discord.drop_connections();
    let carol = discord.add_user("carol");
    discord.add_member(guild.id, carol, &[]);
    // serenity runs handlers concurrently, so the replayed event and RESUMED may reach
    // the handler in either order.
    let carol_added = format!("member_add:{carol}");
    expect_all(&mut rx, &["resumed", &carol_added]).await;
    assert_eq!(discord.gateway_stats().resumes, 2);

    // A non-resumable invalid session forces a fresh IDENTIFY and READY.
    discord.invalidate_session(false);
    expect_event(&mut rx, "ready:").await;
    assert!(discord.wait_until_connected(Duration::from_secs(20)).await);
    assert_eq!(discord.gateway_stats().identifies, 2);

    // Every REST call carried the token and went to the fake (nothing else is reachable).
    assert!(discord.requests().iter().all(|r| r.status < 400));

    shards.shutdown_all().await;
    running.abort();
}

/// With a short heartbeat interval serenity heartbeats repeatedly; every beat is ACKed,
/// so the shard never restarts (no second IDENTIFY, no RESUME).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_acknowledged() {
    let discord = FakeDiscord::start_with(Config {
        heartbeat_interval_ms: 200,
        ..Config::default()
    })
    .await;
    discord.add_guild("Beat");
    let http = HttpBuilder::new(discord.token())
        .proxy(discord.base_url())
        .ratelimiter_disabled(true)
        .build();
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut client = serenity::client::ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
        .event_handler(Handler {
            events: tx,
            guild: None,
        })
        .await
        .expect("client builds");
    let shards = client.shard_manager.clone();
    let running = tokio::spawn(async move { client.start().await });
    assert!(discord.wait_until_connected(Duration::from_secs(20)).await);
    // serenity checks its heartbeat timer from the shard loop, so beats come at the
    // interval or a little later; wait for a few rather than sleeping a fixed time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while discord.gateway_stats().heartbeats < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = discord.gateway_stats();
    assert!(stats.heartbeats >= 3, "{stats:?}");
    assert_eq!((stats.identifies, stats.resumes), (1, 0), "{stats:?}");
    shards.shutdown_all().await;
    running.abort();
}
