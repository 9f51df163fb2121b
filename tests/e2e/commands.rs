//! Slash commands through the fake Discord: registration, `/about`, `/setup`.

use guildops_harness::Command;

use crate::support::{WAIT, World, text};

#[tokio::test]
async fn daemon_registers_its_commands_and_answers_about() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;

    let registered = world.discord.registered_commands(None);
    let names: Vec<&str> = registered
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        names.contains(&"about") && names.contains(&"setup"),
        "registered: {names:?}"
    );
    let setup = registered
        .iter()
        .find(|c| c["name"] == "setup")
        .expect("setup registered");
    assert_eq!(
        setup["default_member_permissions"], "32",
        "/setup is hidden from non-managers by default"
    );
    // Slash commands need a description; context-menu commands (type 2 and 3) must have none.
    for command in registered
        .iter()
        .filter(|c| c["type"].as_u64().unwrap_or(1) == 1)
    {
        let description = command["description"].as_str().unwrap_or_default();
        assert!(
            !description.is_empty() && description.len() <= 100,
            "{command}"
        );
    }

    let member = world.discord.add_user("bob");
    world.discord.add_member(world.guild.id, member, &[]);
    let reply = world
        .discord
        .run_command(
            world.guild.id,
            world.guild.general_channel,
            member,
            Command::new("about"),
        )
        .reply(WAIT)
        .await;
    let shown = text(&reply);
    assert!(
        shown.contains("guildops") && shown.contains("Rust Meetup Berlin"),
        "{shown}"
    );
    assert!(
        shown.contains("/setup"),
        "an unconfigured server is told how to set up: {shown}"
    );
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn setup_is_refused_without_manage_server_and_persists_across_restart() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let g = &world.guild;

    let member = world.discord.add_user("mallory");
    world.discord.add_member(g.id, member, &[]);
    let refused = world
        .discord
        .run_command(
            g.id,
            g.general_channel,
            member,
            Command::new("setup")
                .sub("channels")
                .channel("admin", g.general_channel),
        )
        .reply(WAIT)
        .await;
    let refusal = refused.as_ref().expect("a refusal");
    assert!(refusal.ephemeral, "refusals are ephemeral");
    assert!(
        text(&refused).contains("Manage Server"),
        "{}",
        text(&refused)
    );

    let saved = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            g.owner_id,
            Command::new("setup")
                .sub("channels")
                .channel("admin", g.admin_channel)
                .channel("mod_log", g.mod_log_channel),
        )
        .reply(WAIT)
        .await;
    assert!(text(&saved).starts_with("Saved."), "{}", text(&saved));
    let mods = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            g.owner_id,
            Command::new("setup")
                .sub("moderators")
                .integer("action", 0)
                .role("role", g.admin_role),
        )
        .reply(WAIT)
        .await;
    assert!(
        text(&mods).contains(&format!("<@&{}>", g.admin_role)),
        "{}",
        text(&mods)
    );

    daemon.stop().await.expect("clean stop");
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let shown = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            g.owner_id,
            Command::new("setup").sub("show"),
        )
        .reply(WAIT)
        .await;
    let shown_text = text(&shown);
    assert!(
        shown_text.contains(&format!("Admin channel: <#{}>", g.admin_channel)),
        "{shown_text}"
    );
    assert!(
        shown_text.contains(&format!("Mod-log channel: <#{}>", g.mod_log_channel)),
        "{shown_text}"
    );
    assert!(
        shown_text.contains(&format!("<@&{}>", g.admin_role)),
        "{shown_text}"
    );
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn setup_with_no_options_is_a_polite_user_error() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let g = &world.guild;
    let reply = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            g.owner_id,
            Command::new("setup").sub("channels"),
        )
        .reply(WAIT)
        .await;
    assert!(reply.as_ref().is_some_and(|r| r.ephemeral));
    assert!(
        text(&reply).contains("nothing to change"),
        "{}",
        text(&reply)
    );
    daemon.stop().await.expect("clean stop");
}
