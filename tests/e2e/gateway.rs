//! Gateway lifecycle: provisioning exactly once, removal vs outage, member roster.

use guildops::community::{self, GuildSnapshot, Provisioned};
use serenity::all::{GuildId, UserId};

use crate::support::World;

async fn status(world: &World) -> String {
    sqlx::query_scalar("select status from communities where discord_guild_id = $1")
        .bind(world.guild.id as i64)
        .fetch_one(&world.pool)
        .await
        .expect("community row")
}

#[tokio::test]
async fn guild_create_provisions_one_community_across_reconnect_resume_and_restart() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    assert_eq!(world.community_count().await, 1);

    world.discord.send_reconnect();
    world
        .wait_for(|| async { world.discord.gateway_stats().resumes >= 1 })
        .await;
    world.discord.invalidate_session(false);
    world
        .wait_for(|| async { world.discord.gateway_stats().identifies >= 2 })
        .await;
    assert!(
        world
            .discord
            .wait_until_connected(crate::support::WAIT)
            .await
    );

    daemon.stop().await.expect("clean stop");
    let daemon = world.start_daemon().await;
    world
        .wait_for(|| async { world.discord.gateway_stats().identifies >= 3 })
        .await;
    // Give the re-sent GUILD_CREATEs time to be handled before counting.
    world.wait_for_commands().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        world.community_count().await,
        1,
        "a replayed GUILD_CREATE made a second community"
    );
    assert_eq!(status(&world).await, "active");
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn removal_deactivates_but_an_outage_does_not() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;

    world.discord.guild_outage(world.guild.id);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        status(&world).await,
        "active",
        "an unavailable guild is an outage, not a removal"
    );

    world.discord.remove_bot(world.guild.id);
    world
        .wait_for(|| async { status(&world).await == "inactive" })
        .await;
    let settings_kept: i64 = sqlx::query_scalar("select count(*) from community_settings")
        .fetch_one(&world.pool)
        .await
        .expect("count");
    assert_eq!(settings_kept, 1, "data is kept when the bot is removed");
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_reinvited_guild_reactivates_its_community() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.discord.remove_bot(world.guild.id);
    world
        .wait_for(|| async { status(&world).await == "inactive" })
        .await;
    daemon.stop().await.expect("clean stop");

    let snapshot = GuildSnapshot {
        guild_id: GuildId::new(world.guild.id),
        name: "Rust Meetup Berlin".into(),
        owner_id: UserId::new(world.guild.owner_id),
        members: Vec::new(),
    };
    let (community, outcome) = community::provision(&world.pool, &snapshot)
        .await
        .expect("provision");
    assert_eq!(outcome, Provisioned::Reactivated);
    assert!(community.active);
    let (_, again) = community::provision(&world.pool, &snapshot)
        .await
        .expect("provision");
    assert_eq!(again, Provisioned::AlreadyActive);
    assert_eq!(world.community_count().await, 1);
}

#[tokio::test]
async fn member_join_and_leave_are_recorded() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    let alice = world.discord.add_user("alice");
    world.discord.add_member(world.guild.id, alice, &[]);

    let guild = GuildId::new(world.guild.id);
    let user = UserId::new(alice);
    world
        .wait_for(|| async {
            community::is_present(&world.pool, guild, user)
                .await
                .unwrap_or(false)
        })
        .await;

    world.discord.remove_member(world.guild.id, alice);
    world
        .wait_for(|| async {
            !community::is_present(&world.pool, guild, user)
                .await
                .unwrap_or(true)
        })
        .await;
    let (joined, left): (
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as(
        "select joined_at, left_at from community_members where discord_user_id = $1",
    )
    .bind(alice as i64)
    .fetch_one(&world.pool)
    .await
    .expect("member row");
    assert!(
        joined.is_some() && left.is_some(),
        "both the join and the leave are kept"
    );
    daemon.stop().await.expect("clean stop");
}
