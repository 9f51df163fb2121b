//! Moderation end to end: sanctions by slash command become numbered cases with a DM,
//! the Discord action and a mod-log entry; the server refuses non-moderators and
//! sanctions against the owner, the bot or anyone not below the moderator and the bot;
//! a 45-day ban lifts on time across a restart and a 40-day timeout is renewed past
//! Discord's 28 days and ends on time (the clock is moved by shifting the stored times
//! back, which is what time passing does to them); a rejoin re-applies a quarantine;
//! `/case search` and `/case export` return exactly the matching cases.

use chrono::{DateTime, Utc};
use guildops_harness::Command;
use serde_json::Value;

use crate::support::{WAIT, World, text};

pub(crate) async fn run(world: &World, user: u64, command: Command) -> String {
    let reply = world
        .discord
        .run_command(world.guild.id, world.guild.admin_channel, user, command)
        .reply(WAIT)
        .await;
    assert!(
        reply.as_ref().is_some_and(|r| r.ephemeral),
        "replies are ephemeral"
    );
    text(&reply)
}

/// A daemon, the mod-log channel, and a moderator holding the "Mods" role (position 5).
pub(crate) async fn started(world: &World) -> (guildops::daemon::Daemon, u64, u64) {
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let g = &world.guild;
    let mods = world.discord.add_role(g.id, "Mods", 0, 5);
    for command in [
        Command::new("setup")
            .sub("channels")
            .channel("admin", g.admin_channel)
            .channel("mod_log", g.mod_log_channel),
        Command::new("setup")
            .sub("moderators")
            .integer("action", 0)
            .role("role", mods),
    ] {
        let said = run(world, g.owner_id, command).await;
        assert!(said.starts_with("Saved"), "{said}");
    }
    let moderator = member(world, "mona", &[mods]);
    (daemon, moderator, mods)
}

pub(crate) fn member(world: &World, name: &str, roles: &[u64]) -> u64 {
    let user = world.discord.add_user(name);
    world.discord.add_member(world.guild.id, user, roles);
    user
}

pub(crate) async fn case_status(world: &World, number: i32) -> String {
    sqlx::query_scalar("select status from cases where number = $1")
        .bind(number)
        .fetch_one(&world.pool)
        .await
        .expect("case")
}

/// Moves the clock forward for one case: its expiry is now `expires_at`, and its due
/// scheduled jobs run now.
async fn time_travel(world: &World, number: i32, expires_at: DateTime<Utc>, job: &str) {
    sqlx::query("update cases set expires_at = $2 where number = $1")
        .bind(number)
        .bind(expires_at)
        .execute(&world.pool)
        .await
        .expect("move expiry");
    let moved = sqlx::query(
        "update jobs set run_at = now() where status = 'pending' and payload->>'name' = $1",
    )
    .bind(job)
    .execute(&world.pool)
    .await
    .expect("move jobs");
    assert!(moved.rows_affected() > 0, "a pending {job} job");
}

pub(crate) fn timeout_until(world: &World, user: u64) -> Option<DateTime<Utc>> {
    let member = world.discord.member(world.guild.id, user)?;
    member["communication_disabled_until"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn mod_log_titles(world: &World) -> Vec<String> {
    world
        .discord
        .channel_messages(world.guild.mod_log_channel)
        .iter()
        .filter_map(|m| m["embeds"][0]["title"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn only_moderators_sanction_and_never_the_owner_the_bot_or_a_higher_member() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let member_a = member(&world, "alex", &[]);
    let senior_role = world.discord.add_role(g.id, "Senior", 0, 8);
    let senior = member(&world, "sid", &[senior_role]);

    let refused = run(
        &world,
        member_a,
        Command::new("warn")
            .user("member", senior)
            .string("reason", "no"),
    )
    .await;
    assert!(refused.contains("Only moderators"), "{refused}");
    let said = run(
        &world,
        moderator,
        Command::new("kick")
            .user("member", senior)
            .string("reason", "x"),
    )
    .await;
    assert!(said.contains("not below yours"), "{said}");
    let said = run(
        &world,
        moderator,
        Command::new("ban")
            .user("user", g.owner_id)
            .string("reason", "x"),
    )
    .await;
    assert!(said.contains("server owner"), "{said}");
    let bot = world.discord.bot_user_id();
    let said = run(
        &world,
        moderator,
        Command::new("timeout")
            .user("member", bot)
            .string("duration", "1h")
            .string("reason", "x"),
    )
    .await;
    assert!(said.contains("myself"), "{said}");
    // The owner outranks everyone but the bot must still be above the target.
    let above_bot = world.discord.add_role(g.id, "Whale", 0, 60);
    let whale = member(&world, "wally", &[above_bot]);
    let said = run(
        &world,
        g.owner_id,
        Command::new("kick")
            .user("member", whale)
            .string("reason", "x"),
    )
    .await;
    assert!(said.contains("drag my role above theirs"), "{said}");
    let said = run(
        &world,
        moderator,
        Command::new("timeout")
            .user("member", member_a)
            .string("duration", "soon")
            .string("reason", "x"),
    )
    .await;
    assert!(said.contains("not a duration"), "{said}");

    let cases: i64 = sqlx::query_scalar("select count(*) from cases")
        .fetch_one(&world.pool)
        .await
        .expect("count");
    assert_eq!(cases, 0, "nothing refused was recorded");
    assert!(world.discord.member(g.id, senior).is_some());
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn sanctions_become_numbered_cases_with_a_dm_the_action_and_a_mod_log_entry() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let (ann, ben, cat) = (
        member(&world, "ann", &[]),
        member(&world, "ben", &[]),
        member(&world, "cat", &[]),
    );

    let said = run(
        &world,
        moderator,
        Command::new("warn")
            .user("member", ann)
            .string("reason", "spoilers in #general")
            .string("evidence", "https://discord.com/channels/1/2/3"),
    )
    .await;
    assert!(
        said.starts_with("Case #1:") && said.contains("warned"),
        "{said}"
    );
    let said = run(
        &world,
        moderator,
        Command::new("timeout")
            .user("member", ann)
            .string("duration", "10m")
            .string("reason", "kept going"),
    )
    .await;
    assert!(said.starts_with("Case #2:"), "{said}");
    world
        .wait_for(|| async { timeout_until(&world, ann).is_some() })
        .await;
    let until = timeout_until(&world, ann).expect("timed out");
    let left = (until - Utc::now()).num_seconds();
    assert!((590..=600).contains(&left), "about 10 minutes, not {left}s");

    let said = run(
        &world,
        moderator,
        Command::new("kick")
            .user("member", ben)
            .string("reason", "raid"),
    )
    .await;
    assert!(said.starts_with("Case #3:"), "{said}");
    let said = run(
        &world,
        moderator,
        Command::new("ban")
            .user("user", cat)
            .string("reason", "scam links")
            .integer("delete_days", 1),
    )
    .await;
    assert!(said.starts_with("Case #4:"), "{said}");
    world
        .wait_for(|| async { world.discord.member(g.id, ben).is_none() })
        .await;
    world
        .wait_for(|| async { world.discord.ban(g.id, cat).is_some() })
        .await;
    let reason = world.discord.ban(g.id, cat).flatten().unwrap_or_default();
    assert!(
        reason.contains("case #4") && reason.contains("scam links"),
        "{reason}"
    );

    // Each sanctioned member was told, before the kick or ban removed them.
    let dms = world
        .discord
        .requests_matching("POST", "/users/@me/channels");
    assert_eq!(dms.len(), 4, "one DM per sanction");
    let kicked_at = world
        .discord
        .requests_matching("DELETE", &format!("/members/{ben}"))
        .pop()
        .expect("kick request");
    assert!(
        kicked_at
            .audit_log_reason()
            .is_some_and(|r| r.contains("case #3"))
    );
    world
        .wait_for(|| async { mod_log_titles(&world).len() >= 4 })
        .await;
    let titles = mod_log_titles(&world);
    for t in [
        "Case #1: warn",
        "Case #2: timeout",
        "Case #3: kick",
        "Case #4: ban",
    ] {
        assert!(titles.iter().any(|x| x == t), "{t} in {titles:?}");
    }

    let shown = run(
        &world,
        moderator,
        Command::new("case").sub("show").integer("number", 1),
    )
    .await;
    assert!(
        shown.contains("spoilers") && shown.contains("Evidence"),
        "{shown}"
    );
    let edited = run(
        &world,
        moderator,
        Command::new("case")
            .sub("edit")
            .integer("number", 1)
            .string("reason", "spoilers for the finale"),
    )
    .await;
    assert!(edited.starts_with("Saved"), "{edited}");
    let shown = run(
        &world,
        moderator,
        Command::new("case").sub("show").integer("number", 1),
    )
    .await;
    assert!(
        shown.contains("changed reason: spoilers in #general → spoilers for the finale"),
        "{shown}"
    );
    let history = run(
        &world,
        moderator,
        Command::new("history").user("member", ann),
    )
    .await;
    assert!(
        history.contains("#1") && history.contains("#2") && !history.contains("#3"),
        "{history}"
    );
    let hidden = run(
        &world,
        moderator,
        Command::new("case").sub("hide").integer("number", 1),
    )
    .await;
    assert!(hidden.contains("hidden"), "{hidden}");
    let history = run(
        &world,
        moderator,
        Command::new("history").user("member", ann),
    )
    .await;
    assert!(
        !history.contains("#1 ") && history.contains("#2"),
        "{history}"
    );

    let untimed = run(
        &world,
        moderator,
        Command::new("untimeout")
            .user("member", ann)
            .string("reason", "calmed down"),
    )
    .await;
    assert!(untimed.starts_with("Case #5:"), "{untimed}");
    world
        .wait_for(|| async { timeout_until(&world, ann).is_none() })
        .await;
    assert_eq!(case_status(&world, 2).await, "revoked");
    let audited: i64 =
        sqlx::query_scalar("select count(*) from audit_log where action = 'case.created'")
            .fetch_one(&world.pool)
            .await
            .expect("audit");
    assert_eq!(audited, 5);
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn a_45_day_ban_lifts_on_time_across_a_restart() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let dan = member(&world, "dan", &[]);
    let said = run(
        &world,
        moderator,
        Command::new("ban")
            .user("user", dan)
            .string("reason", "harassment")
            .string("duration", "45d"),
    )
    .await;
    assert!(said.contains("for 45d"), "{said}");
    world
        .wait_for(|| async { world.discord.ban(g.id, dan).is_some() })
        .await;
    let due: DateTime<Utc> =
        sqlx::query_scalar("select run_at from jobs where payload->>'name' = 'moderation.expire'")
            .fetch_one(&world.pool)
            .await
            .expect("expiry job");
    let days = (due - Utc::now()).num_hours() as f64 / 24.0;
    assert!(
        (44.9..=45.0).contains(&days),
        "the lift is due in 45 days, not {days}"
    );
    daemon.stop().await.expect("stops");

    // 45 days pass while the daemon is down.
    time_travel(
        &world,
        1,
        Utc::now() - chrono::Duration::seconds(1),
        "moderation.expire",
    )
    .await;
    assert!(
        world.discord.ban(g.id, dan).is_some(),
        "still banned while down"
    );
    let daemon = world.start_daemon().await;
    world
        .wait_for(|| async { world.discord.ban(g.id, dan).is_none() })
        .await;
    assert_eq!(case_status(&world, 1).await, "expired");
    world
        .wait_for(|| async {
            mod_log_titles(&world)
                .iter()
                .any(|t| t == "Case #1: ban ended")
        })
        .await;
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn a_40_day_timeout_is_renewed_past_28_days_and_ends_on_time() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let eve = member(&world, "eve", &[]);
    let said = run(
        &world,
        moderator,
        Command::new("timeout")
            .user("member", eve)
            .string("duration", "40d")
            .string("reason", "repeated slurs"),
    )
    .await;
    assert!(said.contains("for 40d"), "{said}");
    world
        .wait_for(|| async { timeout_until(&world, eve).is_some() })
        .await;
    let first = timeout_until(&world, eve).expect("timed out");
    let days = (first - Utc::now()).num_minutes() as f64 / 1440.0;
    assert!(
        (27.9..28.0).contains(&days),
        "Discord's maximum first, not {days} days"
    );

    // 30 days later: 10 days remain. The renewal sets the timeout to the case's end.
    let end = Utc::now() + chrono::Duration::days(10);
    time_travel(&world, 1, end, "moderation.renew_timeout").await;
    world
        .wait_for(|| async { timeout_until(&world, eve).is_some_and(|u| u < first) })
        .await;
    let renewed = timeout_until(&world, eve).expect("still timed out");
    assert_eq!(
        renewed.timestamp(),
        end.timestamp(),
        "ends exactly at the case's expiry"
    );

    // And at the end, it is lifted and the case expires.
    time_travel(
        &world,
        1,
        Utc::now() - chrono::Duration::seconds(1),
        "moderation.expire",
    )
    .await;
    world
        .wait_for(|| async { timeout_until(&world, eve).is_none() })
        .await;
    world
        .wait_for(|| async { case_status(&world, 1).await == "expired" })
        .await;
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn a_rejoin_reapplies_a_quarantine() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let fay = member(&world, "fay", &[]);
    let said = run(
        &world,
        moderator,
        Command::new("quarantine")
            .user("member", fay)
            .string("reason", "compromised account"),
    )
    .await;
    assert!(said.contains("quarantine role"), "no role yet: {said}");
    let jail = world.discord.add_role(g.id, "Quarantine", 0, 2);
    let said = run(
        &world,
        g.owner_id,
        Command::new("setup").sub("quarantine").role("role", jail),
    )
    .await;
    assert!(
        said.contains(&format!("Quarantine role: <@&{jail}>")),
        "{said}"
    );
    let said = run(
        &world,
        moderator,
        Command::new("quarantine")
            .user("member", fay)
            .string("reason", "compromised account"),
    )
    .await;
    assert!(said.starts_with("Case #1:"), "{said}");
    let has_jail = || {
        world
            .discord
            .member_roles(g.id, fay)
            .is_some_and(|r| r.contains(&jail))
    };
    world.wait_for(|| async { has_jail() }).await;

    world.discord.remove_member(g.id, fay);
    world.discord.add_member(g.id, fay, &[]);
    world.wait_for(|| async { has_jail() }).await;

    let said = run(
        &world,
        moderator,
        Command::new("unquarantine")
            .user("member", fay)
            .string("reason", "account recovered"),
    )
    .await;
    assert!(said.starts_with("Case #2:"), "{said}");
    world.wait_for(|| async { !has_jail() }).await;
    world.discord.remove_member(g.id, fay);
    world.discord.add_member(g.id, fay, &[]);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!has_jail(), "a lifted quarantine is not re-applied");
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn search_and_export_return_exactly_the_matching_cases() {
    let world = World::new().await;
    let (daemon, moderator, mods) = started(&world).await;
    let g = world.guild.clone();
    let other_mod = member(&world, "otto", &[mods]);
    let (gus, hal) = (member(&world, "gus", &[]), member(&world, "hal", &[]));
    let cases = [
        (moderator, "warn", gus),
        (other_mod, "warn", gus),
        (moderator, "warn", hal),
        (moderator, "note", gus),
        (other_mod, "kick", hal),
    ];
    for (n, (by, kind, whom)) in cases.iter().enumerate() {
        let command = match *kind {
            "note" => Command::new("note")
                .user("user", *whom)
                .string("text", "watch"),
            k => Command::new(k)
                .user("member", *whom)
                .string("reason", "because"),
        };
        let said = run(&world, *by, command).await;
        assert!(said.starts_with(&format!("Case #{}:", n + 1)), "{said}");
    }
    // Warnings of gus: cases 1 and 2; by the first moderator: 1 only.
    let found = run(
        &world,
        moderator,
        Command::new("case")
            .sub("search")
            .user("member", gus)
            .integer("type", 1),
    )
    .await;
    let numbers = |text: &str| -> Vec<u32> {
        text.lines()
            .filter_map(|l| l.strip_prefix('#')?.split(' ').next()?.parse().ok())
            .collect()
    };
    assert_eq!(numbers(&found), vec![2, 1], "{found}");
    let found = run(
        &world,
        moderator,
        Command::new("case")
            .sub("search")
            .user("member", gus)
            .user("moderator", moderator)
            .integer("type", 1),
    )
    .await;
    assert_eq!(numbers(&found), vec![1], "{found}");
    let none = run(
        &world,
        moderator,
        Command::new("case")
            .sub("search")
            .string("since", "2099-01-01"),
    )
    .await;
    assert!(none.contains("No case matches"), "{none}");
    let bad = run(
        &world,
        moderator,
        Command::new("case")
            .sub("search")
            .string("since", "last week"),
    )
    .await;
    assert!(bad.contains("not a date"), "{bad}");

    world.discord.clear_requests();
    let exported = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            moderator,
            Command::new("case")
                .sub("export")
                .user("moderator", other_mod),
        )
        .reply(WAIT)
        .await;
    assert!(text(&exported).contains("2 case(s)"), "{}", text(&exported));
    let upload = world
        .discord
        .requests()
        .into_iter()
        .find(|r| !r.files.is_empty())
        .expect("the export is a file");
    let file: Value = serde_json::from_slice(&upload.files[0].data).expect("JSON");
    let exported: Vec<i64> = file["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["number"].as_i64())
        .collect();
    assert_eq!(exported, vec![5, 2]);
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn a_ban_made_by_hand_in_discord_becomes_a_case_attributed_to_its_moderator() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let ivan = member(&world, "ivan", &[]);
    world
        .discord
        .ban_by_hand(g.id, moderator, ivan, Some("posted gore"));
    world
        .wait_for(|| async {
            sqlx::query_scalar::<_, i64>("select count(*) from cases")
                .fetch_one(&world.pool)
                .await
                .unwrap_or(0)
                == 1
        })
        .await;
    let (kind, by, reason, source): (String, i64, String, String) = sqlx::query_as(
        "select kind, moderator_discord_id, reason, source from cases where number = 1",
    )
    .fetch_one(&world.pool)
    .await
    .expect("case");
    assert_eq!(
        (kind.as_str(), by as u64, reason.as_str(), source.as_str()),
        ("ban", moderator, "posted gore", "discord")
    );
    assert_eq!(case_status(&world, 1).await, "active");
    world
        .wait_for(|| async { mod_log_titles(&world).iter().any(|t| t == "Case #1: ban") })
        .await;
    // It is not banned twice, and no DM is sent for a ban Discord already made.
    assert!(world.discord.requests_matching("PUT", "/bans/").is_empty());
    assert!(
        world
            .discord
            .requests_matching("POST", "/users/@me/channels")
            .is_empty()
    );
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn the_moderate_member_context_menu_opens_a_form_that_records_the_case() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let jo = member(&world, "jo", &[]);
    let handle =
        world
            .discord
            .run_user_command(g.id, g.admin_channel, moderator, "Moderate member", jo);
    let modal = handle.reply(WAIT).await.expect("a form");
    assert_eq!(modal.kind, 9, "{:?}", modal.raw);
    let custom_id = modal.raw["data"]["custom_id"]
        .as_str()
        .unwrap_or_else(|| panic!("form id in {}", modal.raw))
        .to_owned();
    let fields = [
        ("action", "timeout"),
        ("duration", "2h"),
        ("reason", "flooding"),
    ];
    let _ = world
        .discord
        .submit_modal(g.id, g.admin_channel, moderator, &custom_id, &fields)
        .acknowledged(WAIT)
        .await;
    let said = text(&handle.nth_reply(1, WAIT).await);
    assert!(
        said.starts_with("Case #1:") && said.contains("for 2h"),
        "{said}"
    );
    world
        .wait_for(|| async { timeout_until(&world, jo).is_some() })
        .await;
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn active_warnings_reaching_a_threshold_escalate_and_old_ones_expire() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let said = run(
        &world,
        g.owner_id,
        Command::new("setup")
            .sub("warnings")
            .integer("at", 2)
            .integer("action", 0)
            .string("duration", "1d"),
    )
    .await;
    assert!(
        said.contains("2 active warnings → timeout for 1d"),
        "{said}"
    );
    let kim = member(&world, "kim", &[]);
    let warn = |reason: &str| {
        Command::new("warn")
            .user("member", kim)
            .string("reason", reason)
    };
    assert!(
        run(&world, moderator, warn("one"))
            .await
            .starts_with("Case #1:")
    );
    // The first warning is 31 days old: it no longer counts.
    sqlx::query("update cases set created_at = now() - interval '31 days' where number = 1")
        .execute(&world.pool)
        .await
        .expect("age");
    assert!(
        run(&world, moderator, warn("two"))
            .await
            .starts_with("Case #2:")
    );
    assert!(
        run(&world, moderator, warn("three"))
            .await
            .starts_with("Case #3:")
    );
    // Cases 2 and 3 are active: the threshold records case 4, a one-day timeout.
    let (kind, source, duration): (String, String, Option<i64>) =
        sqlx::query_as("select kind, source, duration_secs from cases where number = 4")
            .fetch_one(&world.pool)
            .await
            .expect("escalation case");
    assert_eq!(
        (kind.as_str(), source.as_str(), duration),
        ("timeout", "escalation", Some(86_400))
    );
    world
        .wait_for(|| async { timeout_until(&world, kim).is_some() })
        .await;
    let cases: i64 = sqlx::query_scalar("select count(*) from cases")
        .fetch_one(&world.pool)
        .await
        .expect("count");
    assert_eq!(cases, 4, "case 2 alone reached nothing");
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn a_mute_is_a_role_kept_across_rejoins_and_an_undeliverable_dm_is_noted() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let lee = member(&world, "lee", &[]);
    world.discord.block_dms(lee);
    let said = run(
        &world,
        moderator,
        Command::new("mute")
            .user("member", lee)
            .string("reason", "spam"),
    )
    .await;
    assert!(said.contains("no mute role"), "{said}");
    let muted_role = world.discord.add_role(g.id, "Muted", 0, 2);
    let said = run(
        &world,
        g.owner_id,
        Command::new("setup").sub("mute").role("role", muted_role),
    )
    .await;
    assert!(
        said.contains(&format!("Mute role: <@&{muted_role}>")),
        "{said}"
    );
    let said = run(
        &world,
        moderator,
        Command::new("mute")
            .user("member", lee)
            .string("reason", "spam")
            .string("duration", "3d"),
    )
    .await;
    assert!(
        said.starts_with("Case #1:") && said.contains("muted for 3d"),
        "{said}"
    );
    let muted = || {
        world
            .discord
            .member_roles(g.id, lee)
            .is_some_and(|r| r.contains(&muted_role))
    };
    world.wait_for(|| async { muted() }).await;
    // Lee's DMs are closed: the case says the DM was not delivered.
    world
        .wait_for(|| async {
            sqlx::query_scalar::<_, String>("select dm from cases where number = 1")
                .fetch_one(&world.pool)
                .await
                .is_ok_and(|dm| dm == "undeliverable")
        })
        .await;
    let shown = run(
        &world,
        moderator,
        Command::new("case").sub("show").integer("number", 1),
    )
    .await;
    assert!(shown.contains("**DM:** undeliverable"), "{shown}");

    world.discord.remove_member(g.id, lee);
    world.discord.add_member(g.id, lee, &[]);
    world.wait_for(|| async { muted() }).await;

    // Not appealable: the edit is kept, and an appeal is refused.
    let edited = run(
        &world,
        moderator,
        Command::new("case")
            .sub("edit")
            .integer("number", 1)
            .boolean("appealable", false),
    )
    .await;
    assert!(edited.contains("not appealable"), "{edited}");
    let appeal = run(
        &world,
        lee,
        Command::new("appeal")
            .integer("case", 1)
            .string("reason", "sorry"),
    )
    .await;
    assert!(appeal.contains("can't be appealed"), "{appeal}");
    let said = run(
        &world,
        moderator,
        Command::new("unmute")
            .user("member", lee)
            .string("reason", "served"),
    )
    .await;
    assert!(said.starts_with("Case #2:"), "{said}");
    world.wait_for(|| async { !muted() }).await;
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn softban_clears_and_lets_back_unban_lifts_and_case_list_shows_the_latest() {
    let world = World::new().await;
    let (daemon, moderator, _) = started(&world).await;
    let g = world.guild.clone();
    let (pat, quinn) = (member(&world, "pat", &[]), member(&world, "quinn", &[]));
    let said = run(
        &world,
        moderator,
        Command::new("softban")
            .user("member", pat)
            .string("reason", "spam bot"),
    )
    .await;
    assert!(
        said.starts_with("Case #1:") && said.contains("softbanned"),
        "{said}"
    );
    world
        .wait_for(|| async { world.discord.member(g.id, pat).is_none() })
        .await;
    let ban = world
        .discord
        .requests_matching("PUT", &format!("/bans/{pat}"))
        .pop()
        .expect("the ban");
    assert_eq!(
        ban.body
            .as_ref()
            .map(|b| b["delete_message_seconds"].clone()),
        Some(serde_json::json!(86_400)),
        "a day of messages deleted"
    );
    // …and is let back: the unban follows.
    world
        .wait_for(|| async {
            !world
                .discord
                .requests_matching("DELETE", &format!("/bans/{pat}"))
                .is_empty()
        })
        .await;
    assert!(world.discord.ban(g.id, pat).is_none());

    let said = run(
        &world,
        moderator,
        Command::new("ban")
            .user("user", quinn)
            .string("reason", "threats"),
    )
    .await;
    assert!(said.starts_with("Case #2:"), "{said}");
    world
        .wait_for(|| async { world.discord.ban(g.id, quinn).is_some() })
        .await;
    let said = run(
        &world,
        moderator,
        Command::new("unban")
            .user("user", quinn)
            .string("reason", "apologised"),
    )
    .await;
    assert!(said.starts_with("Case #3:"), "{said}");
    world
        .wait_for(|| async { world.discord.ban(g.id, quinn).is_none() })
        .await;
    assert_eq!(case_status(&world, 2).await, "revoked");
    let listed = run(&world, moderator, Command::new("case").sub("list")).await;
    let first: Vec<&str> = listed
        .lines()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(first, vec!["#3", "#2", "#1"], "{listed}");
    daemon.stop().await.expect("stops");
}
