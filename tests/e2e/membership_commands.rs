//! The paid-tier commands through the fake Discord: `/tier create` with its role
//! checks, `/tiers`, `/subscribe` (an ephemeral Checkout link bound to the caller),
//! `/membership show|explain`, `/revenue`, drift repair with `/tier resync` after a
//! moderator removed a paid role by hand, and polite refusals when Stripe is off.

use guildops_harness::Command;
use guildops_harness::stripe::{self as fake, FakeStripe};

use crate::support::{WAIT, World, deliver, stripe_secrets, text};

async fn run(world: &World, user: u64, command: Command) -> String {
    let reply = world
        .discord
        .run_command(world.guild.id, world.guild.general_channel, user, command)
        .reply(WAIT)
        .await;
    assert!(
        reply.as_ref().is_some_and(|r| r.ephemeral),
        "replies are ephemeral"
    );
    text(&reply)
}

fn create(role: u64) -> Command {
    Command::new("tier")
        .sub("create")
        .string("name", "Gold")
        .string("price", "4.99")
        .string("currency", "eur")
        .integer("interval", 0)
        .role("role", role)
}

#[tokio::test]
async fn tier_commands_sell_explain_and_repair_drift() {
    let world = World::new().await;
    let stripe = FakeStripe::start().await;
    let mut config = world.config();
    config.stripe.api_base = Some(stripe.base_url());
    let daemon = world
        .start_daemon_with_secrets(config, stripe_secrets(&world.discord))
        .await;
    world.wait_for_commands().await;
    let (g, owner) = (&world.guild, world.guild.owner_id);

    let too_high = world.discord.add_role(g.id, "Whale", 0, 60);
    let said = run(&world, owner, create(too_high)).await;
    assert!(said.contains("drag my role above it"), "{said}");
    let said = run(&world, owner, create(g.everyone_role)).await;
    assert!(said.contains("@everyone"), "{said}");
    let said = run(&world, owner, create(g.bot_role)).await;
    assert!(said.contains("managed"), "{said}");
    assert!(
        stripe.requests().is_empty(),
        "refused before calling Stripe"
    );

    let gold = world.discord.add_role(g.id, "Gold", 0, 10);
    let said = run(&world, owner, create(gold)).await;
    assert!(
        said.contains("Created **Gold**") && said.contains("4.99 EUR / month"),
        "{said}"
    );

    let member = world.discord.add_user("gina");
    world.discord.add_member(g.id, member, &[]);
    let listed = run(&world, member, Command::new("tiers")).await;
    assert!(listed.contains("Gold"), "{listed}");
    let refused = run(&world, member, create(gold)).await;
    assert!(refused.contains("Manage Server"), "{refused}");

    let said = run(
        &world,
        member,
        Command::new("subscribe").string("tier", "Gold"),
    )
    .await;
    let session = stripe.last_session().expect("a checkout session");
    let url = session["url"].as_str().expect("url");
    assert!(said.contains(url), "{said}");
    assert!(
        session["client_reference_id"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!(":{member}"))),
        "bound to the caller"
    );
    let done = stripe.complete_checkout(session["id"].as_str().expect("id"));
    let event = fake::event("evt_cmd_1", "checkout.session.completed", fake::now(), done);
    let client = reqwest::Client::new();
    assert_eq!(deliver(&client, daemon.http_addr, &event).await.0, 200);
    let has_gold = |w: &World| {
        w.discord
            .member_roles(g.id, member)
            .is_some_and(|r| r.contains(&gold))
    };
    world.wait_for(|| async { has_gold(&world) }).await;

    let recorded_roles = || async {
        sqlx::query_scalar::<_, Vec<i64>>(
            "select roles from community_members where discord_user_id = $1",
        )
        .bind(member as i64)
        .fetch_one(&world.pool)
        .await
        .unwrap_or_default()
    };
    // The grant's own GUILD_MEMBER_UPDATE must be recorded first, or it could land
    // after the removal below and make the roles look in step again.
    world
        .wait_for(|| async { recorded_roles().await.contains(&(gold as i64)) })
        .await;

    // A moderator takes the role away by hand; drift repair puts it back.
    world.discord.set_member_roles(g.id, member, &[]);
    world
        .wait_for(|| async { recorded_roles().await.is_empty() })
        .await;
    let fixed = run(&world, owner, Command::new("tier").sub("resync")).await;
    assert!(fixed.contains("Fixed 1 member(s)"), "{fixed}");
    world.wait_for(|| async { has_gold(&world) }).await;

    let mine = run(&world, member, Command::new("membership").sub("show")).await;
    assert!(
        mine.contains("Gold") && mine.contains("https://billing.stripe.test"),
        "{mine}"
    );
    let why = run(
        &world,
        owner,
        Command::new("membership")
            .sub("explain")
            .user("member", member),
    )
    .await;
    assert!(
        why.contains("guildops intends") && why.contains(&format!("<@&{gold}>")),
        "{why}"
    );
    let money = run(&world, owner, Command::new("revenue")).await;
    assert!(
        money.contains("1 active") && money.contains("MRR: 4.99 EUR"),
        "{money}"
    );
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn without_stripe_the_tier_commands_say_payments_are_off() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let gold = world.discord.add_role(world.guild.id, "Gold", 0, 10);
    let owner = world.guild.owner_id;
    for command in [create(gold), Command::new("subscribe")] {
        let said = run(&world, owner, command).await;
        assert!(said.contains("payments are not configured"), "{said}");
    }
    let (status, _) = crate::support::post_webhook(
        &reqwest::Client::new(),
        daemon.http_addr,
        "{}",
        Some("t=1,v1=00"),
    )
    .await;
    assert_eq!(status, 404, "no webhook endpoint without Stripe");
    daemon.stop().await.expect("stops");
}
