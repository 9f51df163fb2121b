//! The outbox and its workers end to end: member joins become jobs that reach the fake
//! Discord; 429s are waited out; a role above the bot fails once with one admin alert;
//! jobs survive a restart and a crashed worker's lease.

use std::time::Duration;

use guildops::Daemon;
use guildops::config::Config;
use guildops::outbox::{self, Job, NewJob};
use guildops_harness::Command;
use serenity::all::ChannelId;
use uuid::Uuid;

use crate::support::{WAIT, World, text};

/// Short sweeps and leases so reclaim tests run in seconds.
fn fast(world: &World) -> Config {
    let mut config = world.config();
    config.jobs.sweep_interval_ms = 200;
    config.jobs.lease_secs = 3;
    config
}

async fn start(world: &World) -> Daemon {
    world.start_daemon_with(fast(world)).await
}

async fn community_id(world: &World) -> Uuid {
    sqlx::query_scalar("select id from communities")
        .fetch_one(&world.pool)
        .await
        .expect("one community")
}

/// What `/setup` would store; written directly, the commands have their own tests.
async fn configure(
    world: &World,
    welcome: Option<(u64, &str, &str)>,
    auto_roles: &[u64],
    admin: Option<u64>,
) {
    let roles: Vec<i64> = auto_roles.iter().map(|r| *r as i64).collect();
    sqlx::query(
        "update community_settings set welcome_channel_id = $1, welcome_message = $2,
                farewell_message = $3, auto_role_ids = $4, admin_channel_id = $5",
    )
    .bind(welcome.map(|w| w.0 as i64))
    .bind(welcome.map(|w| w.1))
    .bind(welcome.map(|w| w.2))
    .bind(roles)
    .bind(admin.map(|a| a as i64))
    .execute(&world.pool)
    .await
    .expect("configure");
}

async fn count(world: &World, status: &str) -> i64 {
    sqlx::query_scalar("select count(*) from jobs where status = $1")
        .bind(status)
        .fetch_one(&world.pool)
        .await
        .expect("count jobs")
}

fn has_role(world: &World, user: u64, role: u64) -> bool {
    world
        .discord
        .member_roles(world.guild.id, user)
        .is_some_and(|r| r.contains(&role))
}

fn posted(world: &World, channel: u64, needle: &str) -> usize {
    world
        .discord
        .channel_messages(channel)
        .iter()
        .filter(|m| m["content"].as_str().is_some_and(|c| c.contains(needle)))
        .count()
}

#[tokio::test]
async fn a_join_greets_and_grants_the_auto_role_and_a_leave_says_farewell() {
    let world = World::new().await;
    let daemon = start(&world).await;
    world.wait_for_commands().await;
    let g = world.guild.clone();
    let role = world.discord.add_role(g.id, "Member", 0, 10);
    configure(
        &world,
        Some((
            g.general_channel,
            "Welcome {user} to {server}!",
            "Bye {user}",
        )),
        &[],
        None,
    )
    .await;
    let saved = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            g.owner_id,
            Command::new("setup")
                .sub("autorole")
                .integer("action", 0)
                .role("role", role),
        )
        .reply(WAIT)
        .await;
    let saved = text(&saved);
    assert!(
        saved.contains(&format!("Auto-roles: <@&{role}>")),
        "{saved}"
    );

    let user = world.discord.add_user("alice");
    world.discord.add_member(g.id, user, &[]);
    let welcome = format!("Welcome <@{user}> to Rust Meetup Berlin!");
    world
        .wait_for(|| async {
            has_role(&world, user, role) && posted(&world, g.general_channel, &welcome) == 1
        })
        .await;
    world.discord.remove_member(g.id, user);
    let bye = format!("Bye <@{user}>");
    world
        .wait_for(|| async { posted(&world, g.general_channel, &bye) == 1 })
        .await;
    world
        .wait_for(|| async { count(&world, "done").await == 3 })
        .await;
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn rate_limits_are_waited_out_not_hammered() {
    let world = World::new().await;
    let daemon = start(&world).await;
    let g = world.guild.clone();
    let role = world.discord.add_role(g.id, "Member", 0, 10);
    configure(
        &world,
        Some((g.general_channel, "Hi {user}", "")),
        &[role],
        None,
    )
    .await;
    world.discord.clear_requests();
    // "For a while": every matching request is refused until the faults are cleared.
    world
        .discord
        .rate_limit("PUT", "/roles/", 0.5, false, 10_000);
    world
        .discord
        .rate_limit("POST", "/messages", 0.5, true, 10_000);

    let users: Vec<u64> = (0..10)
        .map(|n| world.discord.add_user(&format!("u{n}")))
        .collect();
    for user in &users {
        world.discord.add_member(g.id, *user, &[]);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    world.discord.clear_faults();
    world
        .wait_for(|| async {
            users.iter().all(|u| has_role(&world, *u, role))
                && posted(&world, g.general_channel, "Hi <@") == 10
        })
        .await;
    let limited = world
        .discord
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    println!("rate limits: {limited} 429s received for 20 jobs over 1.5 s of refusals");
    // 1.5 s of refusals at retry_after 0.5 s: a few rounds, not a request per millisecond.
    assert!(limited <= 24, "{limited} 429s received");
    assert!(limited >= 2, "the fault was exercised: {limited}");
    world
        .wait_for(|| async { count(&world, "done").await == 20 })
        .await;
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_role_above_the_bot_fails_once_with_one_admin_alert() {
    let world = World::new().await;
    let daemon = start(&world).await;
    world.wait_for_commands().await;
    let g = world.guild.clone();
    let gold = world.discord.add_role(g.id, "Gold", 0, 60);
    configure(&world, None, &[gold], Some(g.admin_channel)).await;

    let users: Vec<u64> = (0..3)
        .map(|n| world.discord.add_user(&format!("m{n}")))
        .collect();
    for user in &users {
        world.discord.add_member(g.id, *user, &[]);
    }
    world
        .wait_for(|| async { count(&world, "failed").await == 3 })
        .await;
    let alert = format!("I can't manage role <@&{gold}>: my role is below it");
    world
        .wait_for(|| async { posted(&world, g.admin_channel, &alert) == 1 })
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let path = format!("/roles/{gold}");
    assert_eq!(
        world.discord.requests_matching("PUT", &path).len(),
        3,
        "no retry storm"
    );
    assert_eq!(
        world.discord.channel_messages(g.admin_channel).len(),
        1,
        "one alert per kind per hour"
    );
    let attempts: Vec<i32> =
        sqlx::query_scalar("select attempts from jobs where kind = 'add_role'")
            .fetch_all(&world.pool)
            .await
            .expect("attempts");
    assert_eq!(attempts, vec![1, 1, 1]);

    let listed = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            g.owner_id,
            Command::new("ops").sub("failures"),
        )
        .reply(WAIT)
        .await;
    let listed = text(&listed);
    assert!(
        listed.contains("add_role") && listed.contains("Missing Permissions"),
        "{listed}"
    );

    // After the owner moves the role below the bot, a retry succeeds.
    world.discord.set_role_position(g.id, gold, 5);
    let id: i64 = sqlx::query_scalar("select min(id) from jobs where status = 'failed'")
        .fetch_one(&world.pool)
        .await
        .expect("a failed job");
    let retried = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            g.owner_id,
            Command::new("ops").sub("retry").integer("id", id),
        )
        .reply(WAIT)
        .await;
    assert!(
        text(&retried).contains("queued again"),
        "{}",
        text(&retried)
    );
    world
        .wait_for(|| async { users.iter().filter(|u| has_role(&world, **u, gold)).count() == 1 })
        .await;
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn jobs_survive_a_restart_and_a_crashed_workers_lease() {
    let world = World::new().await;
    let daemon = start(&world).await;
    let community = community_id(&world).await;
    let channel = world.guild.general_channel;
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(3000);
    let mut tx = world.pool.begin().await.expect("tx");
    for n in 0..5 {
        let job = Job::SendMessage {
            channel_id: ChannelId::new(channel),
            content: format!("later {n}"),
        };
        let new = NewJob::new(Some(community), format!("later-{n}"), job).at(due);
        outbox::enqueue(&mut tx, new.clone())
            .await
            .expect("enqueue");
        let again = outbox::enqueue(&mut tx, new).await.expect("enqueue twice");
        assert_eq!(again, outbox::Enqueued::Duplicate);
    }
    tx.commit().await.expect("commit");
    daemon.stop().await.expect("clean stop");

    // A job a crashed worker held: its lease has run out.
    sqlx::query(
        "insert into jobs (kind, payload, community_id, idempotency_key, status, attempts,
                           lease_expires_at, locked_by)
         values ('send_message', $1, $2, 'crashed', 'running', 1, now() - interval '1 second', 'gone')",
    )
    .bind(serde_json::json!({"kind": "send_message", "channel_id": channel.to_string(), "content": "reclaimed"}))
    .bind(community)
    .execute(&world.pool)
    .await
    .expect("insert a crashed job");
    let past_due = (due - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(past_due + Duration::from_millis(300)).await;
    assert_eq!(
        posted(&world, channel, "later"),
        0,
        "nothing ran while stopped"
    );

    let daemon = start(&world).await;
    world
        .wait_for(|| async {
            posted(&world, channel, "later") == 5 && posted(&world, channel, "reclaimed") == 1
        })
        .await;
    // A job is marked done just after its message is posted, so wait for the mark.
    world
        .wait_for(|| async { count(&world, "done").await == 6 })
        .await;
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn finished_jobs_are_pruned_after_retention_and_failed_ones_kept_longer() {
    let world = World::new().await;
    guildops::db::MIGRATOR
        .run(&world.pool)
        .await
        .expect("migrate");
    // (status, age in days, kept?) with the defaults: done 7 days, failed 30 days.
    let rows = [
        ("done", 8, false),
        ("done", 6, true),
        ("failed", 8, true),
        ("dead", 31, false),
        ("pending", 40, true),
    ];
    for (n, (status, days, _)) in rows.iter().enumerate() {
        sqlx::query(
            "insert into jobs (kind, payload, idempotency_key, status, finished_at, updated_at)
             values ('scheduled', '{}', $1, $2,
                     case when $2 <> 'pending' then now() - make_interval(days => $3) end,
                     now() - make_interval(days => $3))",
        )
        .bind(format!("prune-{n}"))
        .bind(status)
        .bind(days)
        .execute(&world.pool)
        .await
        .expect("insert");
    }
    let config = guildops::config::JobsConfig::default();
    let day = 86_400;
    let pruned = guildops::jobs::db::prune(
        &world.pool,
        i64::from(config.done_retention_days) * day,
        i64::from(config.failed_retention_days) * day,
    )
    .await
    .expect("prune");
    assert_eq!(pruned, 2);
    let kept: Vec<String> = sqlx::query_scalar("select idempotency_key from jobs order by id")
        .fetch_all(&world.pool)
        .await
        .expect("kept");
    let expected: Vec<String> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.2)
        .map(|(n, _)| format!("prune-{n}"))
        .collect();
    assert_eq!(kept, expected);
}

#[tokio::test]
async fn dms_and_mod_log_entries_are_delivered_and_closed_dms_fail_quietly() {
    let world = World::new().await;
    let daemon = start(&world).await;
    let g = world.guild.clone();
    configure(&world, None, &[], Some(g.admin_channel)).await;
    let community = community_id(&world).await;
    let open = world.discord.add_user("open");
    let closed = world.discord.add_user("closed");
    world.discord.add_member(g.id, open, &[]);
    world.discord.add_member(g.id, closed, &[]);
    world.discord.block_dms(closed);
    let jobs = [
        Job::SendDm {
            user_id: serenity::all::UserId::new(open),
            content: "psst".into(),
            on_failure: None,
        },
        Job::SendDm {
            user_id: serenity::all::UserId::new(closed),
            content: "psst".into(),
            on_failure: None,
        },
        Job::ModLog {
            channel_id: ChannelId::new(g.mod_log_channel),
            title: "Case 1".into(),
            description: "a warning".into(),
            buttons: Vec::new(),
            on_posted: None,
        },
    ];
    let mut tx = world.pool.begin().await.expect("tx");
    for (n, job) in jobs.into_iter().enumerate() {
        outbox::enqueue(
            &mut tx,
            NewJob::new(Some(community), format!("dm-{n}"), job),
        )
        .await
        .expect("enqueue");
    }
    tx.commit().await.expect("commit");

    world
        .wait_for(|| async {
            count(&world, "done").await == 2 && count(&world, "failed").await == 1
        })
        .await;
    let dms = world
        .discord
        .requests_matching("POST", "/messages")
        .into_iter()
        .filter(|r| r.status < 300 && r.body.as_ref().is_some_and(|b| b["content"] == "psst"))
        .count();
    assert_eq!(dms, 1, "the open DM was sent once");
    let log = world.discord.channel_messages(g.mod_log_channel);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["embeds"][0]["title"], "Case 1");
    let kind: String = sqlx::query_scalar("select failure_kind from jobs where status = 'failed'")
        .fetch_one(&world.pool)
        .await
        .expect("failed job");
    assert_eq!(kind, "dms_closed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        world.discord.channel_messages(g.admin_channel).is_empty(),
        "closed DMs are nothing an admin can fix: no alert"
    );
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_until_the_job_succeeds() {
    let world = World::new().await;
    let daemon = start(&world).await;
    let g = world.guild.clone();
    let role = world.discord.add_role(g.id, "Member", 0, 10);
    configure(&world, None, &[role], Some(g.admin_channel)).await;
    world.discord.fail_requests("PUT", "/roles/", 502, 0, 2);

    let user = world.discord.add_user("patient");
    world.discord.add_member(g.id, user, &[]);
    world
        .wait_for(|| async { has_role(&world, user, role) })
        .await;
    world
        .wait_for(|| async { count(&world, "done").await == 1 })
        .await;
    let attempts: i32 = sqlx::query_scalar("select attempts from jobs")
        .fetch_one(&world.pool)
        .await
        .expect("attempts");
    assert_eq!(attempts, 3, "two 502s, then success");
    assert!(
        world.discord.channel_messages(g.admin_channel).is_empty(),
        "temporary errors raise no alert"
    );
    daemon.stop().await.expect("clean stop");
}
