//! Reports and appeals end to end: a message reported by two members is one report with
//! two reporters; the report is posted to the admin channel with Claim / Resolve /
//! Dismiss, follows open → investigating → resolved (an illegal move is refused, by the
//! bot and by the database); resolving with an action records the case; dismissing asks
//! for a note; reporters are rate limited and can be muted. An appeal from a DM reaches
//! the admin channel, and approving it unbans; a denial starts a cooldown; "deny and
//! close" ends appeals for the case.

use guildops_harness::Command;
use serde_json::Value;

use crate::moderation::{case_status, member, run, started};
use crate::support::{WAIT, World, text};

fn admin_posts(world: &World, title_starts: &str) -> Vec<Value> {
    world
        .discord
        .channel_messages(world.guild.admin_channel)
        .into_iter()
        .filter(|m| {
            m["embeds"][0]["title"]
                .as_str()
                .is_some_and(|t| t.starts_with(title_starts))
        })
        .collect()
}

fn button(post: &Value, label: &str) -> String {
    post["components"][0]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["label"] == label)
        .and_then(|b| b["custom_id"].as_str())
        .unwrap_or_else(|| panic!("no {label} button on {post}"))
        .to_owned()
}

fn id_of(post: &Value) -> u64 {
    post["id"]
        .as_str()
        .and_then(|i| i.parse().ok())
        .expect("id")
}

async fn report_status(world: &World, number: i32) -> String {
    sqlx::query_scalar("select status from reports where number = $1")
        .bind(number)
        .fetch_one(&world.pool)
        .await
        .expect("report")
}

/// Reports `message` through the context menu and its modal.
async fn report_message(world: &World, reporter: u64, message: u64, reason: &str) -> String {
    let g = &world.guild;
    let handle = world.discord.run_message_command(
        g.id,
        g.general_channel,
        reporter,
        "Report message",
        message,
    );
    let modal = handle.reply(WAIT).await.expect("a modal");
    assert_eq!(
        modal.kind, 9,
        "the context menu opens a modal: {:?}",
        modal.raw
    );
    let custom_id = modal.raw["data"]["custom_id"]
        .as_str()
        .or(modal.raw["custom_id"].as_str())
        .unwrap_or_else(|| panic!("modal id in {}", modal.raw))
        .to_owned();
    let submitted = world.discord.submit_modal(
        g.id,
        g.general_channel,
        reporter,
        &custom_id,
        &[("reason", reason), ("category", "scam")],
    );
    // poise answers the command's own interaction after the modal.
    let _ = submitted.acknowledged(WAIT).await;
    let reply = handle.nth_reply(1, WAIT).await;
    text(&reply)
}

#[tokio::test]
async fn reports_merge_follow_their_status_machine_and_resolve_into_a_case() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let scammer = member(&world, "scammer", &[]);
    let (r1, r2) = (member(&world, "rita", &[]), member(&world, "ravi", &[]));
    let message = world.discord.post_message(
        g.id,
        g.general_channel,
        scammer,
        "free nitro at scam.example",
    );

    let said = report_message(&world, r1, message, "a scam link").await;
    assert!(said.contains("report #1"), "{said}");
    let said = report_message(&world, r2, message, "phishing").await;
    assert!(
        said.contains("already reported") && said.contains("#1"),
        "{said}"
    );
    let said = report_message(&world, r2, message, "again").await;
    assert!(said.contains("You already reported"), "{said}");
    let reporters: i64 = sqlx::query_scalar("select count(*) from report_reporters")
        .fetch_one(&world.pool)
        .await
        .expect("count");
    assert_eq!(reporters, 2);
    let reports: i64 = sqlx::query_scalar("select count(*) from reports")
        .fetch_one(&world.pool)
        .await
        .expect("count");
    assert_eq!(reports, 1, "merged into one report");
    // The reported member hears nothing.
    assert!(
        world
            .discord
            .requests_matching("POST", "/users/@me/channels")
            .is_empty()
    );

    world
        .wait_for(|| async { !admin_posts(&world, "Report #1").is_empty() })
        .await;
    let post = admin_posts(&world, "Report #1").remove(0);
    let click = |user, custom_id: &str| {
        world
            .discord
            .click_button(g.id, g.admin_channel, user, id_of(&post), custom_id)
    };
    let refused = text(&click(r1, &button(&post, "Claim")).reply(WAIT).await);
    assert!(refused.contains("Only moderators"), "{refused}");
    let claimed = text(&click(moderator, &button(&post, "Claim")).reply(WAIT).await);
    assert!(claimed.contains("claimed report #1"), "{claimed}");
    assert_eq!(report_status(&world, 1).await, "investigating");
    let again = text(&click(moderator, &button(&post, "Claim")).reply(WAIT).await);
    assert!(again.contains("can't be claimed"), "{again}");

    let menu = click(moderator, &button(&post, "Resolve"))
        .reply(WAIT)
        .await
        .expect("menu");
    let select = menu.components[0]["components"][0]["custom_id"]
        .as_str()
        .expect("select")
        .to_owned();
    let menu_id = menu.message_id.expect("menu message");
    let resolved = world
        .discord
        .select_menu(g.id, g.admin_channel, moderator, menu_id, &select, &["ban"])
        .reply(WAIT)
        .await;
    let resolved = text(&resolved);
    assert!(resolved.contains("resolved: case #1 (ban)"), "{resolved}");
    assert_eq!(report_status(&world, 1).await, "resolved");
    world
        .wait_for(|| async { world.discord.ban(g.id, scammer).is_some() })
        .await;

    // The database refuses an illegal move too.
    let illegal = sqlx::query("update reports set status = 'open' where number = 1")
        .execute(&world.pool)
        .await;
    assert!(
        illegal.is_err_and(|e| e.to_string().contains("cannot become")),
        "the trigger refuses resolved → open"
    );
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn a_dismissal_takes_a_note_and_reporters_are_rate_limited_and_mutable() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let target = member(&world, "tom", &[]);
    let reporter = member(&world, "rory", &[]);
    let report = |n: usize| {
        Command::new("report")
            .user("member", target)
            .integer("category", 7)
            .string("reason", &format!("annoying {n}"))
    };
    let said = run(&world, reporter, report(1)).await;
    assert!(said.contains("report #1"), "{said}");
    world
        .wait_for(|| async { !admin_posts(&world, "Report #1").is_empty() })
        .await;
    let post = admin_posts(&world, "Report #1").remove(0);
    let modal = world
        .discord
        .click_button(
            g.id,
            g.admin_channel,
            moderator,
            id_of(&post),
            &button(&post, "Dismiss"),
        )
        .reply(WAIT)
        .await
        .expect("a modal");
    assert_eq!(modal.kind, 9);
    let custom_id = modal.raw["data"]["custom_id"]
        .as_str()
        .or(modal.raw["custom_id"].as_str())
        .expect("id")
        .to_owned();
    let dismissed = world
        .discord
        .submit_modal(
            g.id,
            g.admin_channel,
            moderator,
            &custom_id,
            &[("note", "not a rule break")],
        )
        .reply(WAIT)
        .await;
    assert!(
        text(&dismissed).contains("Report #1 dismissed"),
        "{}",
        text(&dismissed)
    );
    let outcome: Option<String> =
        sqlx::query_scalar("select outcome from reports where number = 1")
            .fetch_one(&world.pool)
            .await
            .expect("report");
    assert_eq!(outcome.as_deref(), Some("not a rule break"));

    for n in 2..=5 {
        let said = run(&world, reporter, report(n)).await;
        assert!(said.contains(&format!("report #{n}")), "{said}");
    }
    let limited = run(&world, reporter, report(6)).await;
    assert!(limited.contains("please wait"), "{limited}");

    let other = member(&world, "olga", &[]);
    let muted = run(
        &world,
        moderator,
        Command::new("reports")
            .sub("mute")
            .user("member", other)
            .string("duration", "7d"),
    )
    .await;
    assert!(muted.contains("paused until"), "{muted}");
    let said = run(
        &world,
        other,
        Command::new("report")
            .user("member", target)
            .integer("category", 7)
            .string("reason", "x"),
    )
    .await;
    assert!(said.contains("paused your reports"), "{said}");
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn an_appeal_from_a_dm_that_is_approved_unbans_and_denials_cool_down_or_close() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let banned = member(&world, "bea", &[]);
    let warned = member(&world, "will", &[]);
    let said = run(
        &world,
        moderator,
        Command::new("ban")
            .user("user", banned)
            .string("reason", "spam raid"),
    )
    .await;
    assert!(said.starts_with("Case #1:"), "{said}");
    let said = run(
        &world,
        moderator,
        Command::new("warn")
            .user("member", warned)
            .string("reason", "rude"),
    )
    .await;
    assert!(said.starts_with("Case #2:"), "{said}");
    world
        .wait_for(|| async { world.discord.ban(g.id, banned).is_some() })
        .await;

    // Banned, so from a DM; someone else's case number is not theirs to appeal.
    let appeal = |user, case: i64, reason: &str| {
        let command = Command::new("appeal")
            .integer("case", case)
            .string("reason", reason);
        world.discord.run_dm_command(user, command)
    };
    let not_theirs = text(&appeal(banned, 2, "please").reply(WAIT).await);
    assert!(not_theirs.contains("no case #2"), "{not_theirs}");
    let filed = text(&appeal(banned, 1, "it was my brother").reply(WAIT).await);
    assert!(filed.contains("with the moderators of"), "{filed}");
    let twice = text(&appeal(banned, 1, "please").reply(WAIT).await);
    assert!(twice.contains("already with the moderators"), "{twice}");

    world
        .wait_for(|| async { !admin_posts(&world, "Appeal of case #1").is_empty() })
        .await;
    let post = admin_posts(&world, "Appeal of case #1").remove(0);
    let approved = world
        .discord
        .click_button(
            g.id,
            g.admin_channel,
            moderator,
            id_of(&post),
            &button(&post, "Approve"),
        )
        .reply(WAIT)
        .await;
    let approved = text(&approved);
    assert!(approved.contains("approved: case #3 (unban)"), "{approved}");
    world
        .wait_for(|| async { world.discord.ban(g.id, banned).is_none() })
        .await;
    assert_eq!(case_status(&world, 1).await, "revoked");

    // A denial cools down; "deny and close" ends appeals.
    let filed = run(
        &world,
        warned,
        Command::new("appeal")
            .integer("case", 2)
            .string("reason", "I wasn't rude"),
    )
    .await;
    assert!(filed.contains("with the moderators"), "{filed}");
    world
        .wait_for(|| async { !admin_posts(&world, "Appeal of case #2").is_empty() })
        .await;
    let post = admin_posts(&world, "Appeal of case #2").remove(0);
    let denied = world
        .discord
        .click_button(
            g.id,
            g.admin_channel,
            moderator,
            id_of(&post),
            &button(&post, "Deny"),
        )
        .reply(WAIT)
        .await;
    assert!(text(&denied).contains("denied"), "{}", text(&denied));
    let cooling = run(
        &world,
        warned,
        Command::new("appeal")
            .integer("case", 2)
            .string("reason", "again"),
    )
    .await;
    assert!(cooling.contains("appeal again"), "{cooling}");
    sqlx::query("update appeals set decided_at = now() - interval '8 days'")
        .execute(&world.pool)
        .await
        .expect("cooldown passes");
    let filed = run(
        &world,
        warned,
        Command::new("appeal")
            .integer("case", 2)
            .string("reason", "a week later"),
    )
    .await;
    assert!(filed.contains("with the moderators"), "{filed}");
    world
        .wait_for(|| async { admin_posts(&world, "Appeal of case #2").len() == 2 })
        .await;
    let post = admin_posts(&world, "Appeal of case #2").remove(1);
    let closed = world
        .discord
        .click_button(
            g.id,
            g.admin_channel,
            moderator,
            id_of(&post),
            &button(&post, "Deny and close"),
        )
        .reply(WAIT)
        .await;
    assert!(
        text(&closed).contains("no more appeals"),
        "{}",
        text(&closed)
    );
    let ended = run(
        &world,
        warned,
        Command::new("appeal")
            .integer("case", 2)
            .string("reason", "last try"),
    )
    .await;
    assert!(ended.contains("can't be appealed"), "{ended}");
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn a_ban_appeal_can_require_a_moderator_other_than_the_one_who_banned() {
    let world = World::new().await;
    let (daemon, moderator, mods) = started(&world).await;
    let g = world.guild.clone();
    let said = run(
        &world,
        g.owner_id,
        Command::new("setup")
            .sub("warnings")
            .boolean("ban_appeals_other_moderator", true),
    )
    .await;
    assert!(said.contains("other than the one who banned"), "{said}");
    let second = member(&world, "sam2", &[mods]);
    let nia = member(&world, "nia", &[]);
    let said = run(
        &world,
        moderator,
        Command::new("ban")
            .user("user", nia)
            .string("reason", "raid"),
    )
    .await;
    assert!(said.starts_with("Case #1:"), "{said}");
    world
        .wait_for(|| async { world.discord.ban(g.id, nia).is_some() })
        .await;
    let command = Command::new("appeal")
        .integer("case", 1)
        .string("reason", "not me");
    let filed = text(&world.discord.run_dm_command(nia, command).reply(WAIT).await);
    assert!(filed.contains("with the moderators"), "{filed}");
    world
        .wait_for(|| async { !admin_posts(&world, "Appeal of case #1").is_empty() })
        .await;
    let post = admin_posts(&world, "Appeal of case #1").remove(0);
    let approve = |who| {
        world.discord.click_button(
            g.id,
            g.admin_channel,
            who,
            id_of(&post),
            &button(&post, "Approve"),
        )
    };
    let refused = text(&approve(moderator).reply(WAIT).await);
    assert!(
        refused.contains("another moderator must approve"),
        "{refused}"
    );
    assert!(world.discord.ban(g.id, nia).is_some(), "still banned");
    let approved = text(&approve(second).reply(WAIT).await);
    assert!(approved.contains("approved"), "{approved}");
    world
        .wait_for(|| async { world.discord.ban(g.id, nia).is_none() })
        .await;
    daemon.stop().await.expect("stops");
}
