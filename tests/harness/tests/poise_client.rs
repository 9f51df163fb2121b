//! End to end with poise 0.7.1, the framework guildops uses: startup (owners lookup,
//! guild command registration), permission checks fed by the interaction's
//! `member.permissions` / `app_permissions`, option parsing from `resolved`, and the
//! defer → follow-up reply path.

use std::time::Duration;

use guildops_harness::{Command, FakeDiscord, ReplySource};
use serenity::all::{GatewayIntents, GuildId, HttpBuilder, Member};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Ctx<'a> = poise::Context<'a, (), Error>;

/// Needs KICK_MEMBERS from the user and MANAGE_ROLES from the bot.
#[poise::command(
    slash_command,
    required_permissions = "KICK_MEMBERS",
    required_bot_permissions = "MANAGE_ROLES"
)]
async fn ping(ctx: Ctx<'_>) -> Result<(), Error> {
    ctx.say("pong").await?;
    Ok(())
}

/// Echoes the member option, resolved by poise from `data.resolved`.
#[poise::command(slash_command)]
async fn whois(ctx: Ctx<'_>, #[description = "Who"] member: Member) -> Result<(), Error> {
    ctx.say(format!("{} joined", member.user.name)).await?;
    Ok(())
}

/// Defers ephemerally, then answers with a follow-up.
#[poise::command(slash_command)]
async fn slow(ctx: Ctx<'_>) -> Result<(), Error> {
    ctx.defer_ephemeral().await?;
    ctx.say("done").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poise_bot_runs_against_the_fake() {
    let discord = FakeDiscord::start().await;
    let g = discord.add_guild("Poise");
    let gid = g.id;

    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: vec![ping(), whois(), slow()],
            ..Default::default()
        })
        .setup(move |ctx, _ready, framework| {
            Box::pin(async move {
                poise::builtins::register_in_guild(
                    ctx,
                    &framework.options().commands,
                    GuildId::new(gid),
                )
                .await?;
                Ok(())
            })
        })
        .build();
    let http = HttpBuilder::new(discord.token())
        .proxy(discord.base_url())
        .ratelimiter_disabled(true)
        .build();
    let intents = GatewayIntents::GUILDS | GatewayIntents::GUILD_MEMBERS;
    let mut client = serenity::client::ClientBuilder::new_with_http(http, intents)
        .framework(framework)
        .await
        .expect("client builds");
    let shards = client.shard_manager.clone();
    let running = tokio::spawn(async move { client.start().await });

    assert!(discord.wait_until_connected(Duration::from_secs(20)).await);
    discord
        .wait_for_request(
            |r| r.method == "PUT" && r.path.ends_with(&format!("/guilds/{gid}/commands")),
            Duration::from_secs(20),
        )
        .await
        .expect("poise registered the commands");
    assert_eq!(discord.registered_commands(Some(gid)).len(), 3);
    assert!(
        discord
            .requests()
            .iter()
            .any(|r| r.path == "/api/v10/oauth2/applications/@me" && r.status == 200),
        "poise looked up the owners"
    );

    let admin = discord.add_user("admin");
    discord.add_member(gid, admin, &[g.admin_role]);
    let pleb = discord.add_user("pleb");
    discord.add_member(gid, pleb, &[]);
    let wait = Duration::from_secs(20);

    let r = discord
        .run_command(gid, g.general_channel, admin, Command::new("ping"))
        .reply(wait)
        .await
        .expect("reply");
    assert_eq!((r.kind, r.content.as_deref()), (4, Some("pong")));

    let r = discord
        .run_command(gid, g.general_channel, pleb, Command::new("ping"))
        .reply(wait)
        .await
        .expect("poise explains the missing permission");
    assert_ne!(r.content.as_deref(), Some("pong"));
    assert!(r.ephemeral, "{r:?}");

    let r = discord
        .run_command(
            gid,
            g.general_channel,
            admin,
            Command::new("whois").user("member", pleb),
        )
        .reply(wait)
        .await
        .expect("reply");
    assert_eq!(r.content.as_deref(), Some("pleb joined"));

    let r = discord
        .run_command(gid, g.general_channel, admin, Command::new("slow"))
        .reply(wait)
        .await
        .expect("reply");
    assert_eq!(r.kind, 5);
    assert!(r.ephemeral);
    assert_eq!(r.content.as_deref(), Some("done"));
    assert!(matches!(
        r.source,
        ReplySource::Followup | ReplySource::EditOriginal
    ));

    shards.shutdown_all().await;
    running.abort();
}
