//! Events end to end: an event created by slash command is posted with RSVP buttons;
//! RSVPs fill the seats and then the waitlist; a freed seat promotes the next member,
//! who gets a ticket by DM; reminders go out when their time comes (the clock is moved
//! by making the scheduled jobs due); a cancellation tells everyone. The ticket's QR
//! PNG, as the fake Discord received it, is decoded by zbarimg (an independent
//! decoder) into a token that the door admits exactly once, also under 64 concurrent
//! scans; forged, revoked and other events' scans are refused; offline batches are
//! idempotent and the earliest scan wins; raw tokens are stored nowhere.

use std::time::Duration;

use chrono::{Duration as Days, Utc};
use guildops_harness::Command;
use serde_json::{Value, json};

use crate::support::{WAIT, World, text};

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

fn member(world: &World, name: &str) -> u64 {
    let user = world.discord.add_user(name);
    world.discord.add_member(world.guild.id, user, &[]);
    user
}

/// Creates an event (as the owner) starting `starts_in` from now; returns its code.
async fn create(world: &World, title: &str, capacity: i64, starts_in: Days) -> String {
    let start = Utc::now() + starts_in;
    let end = start + Days::hours(3);
    let fmt = "%Y-%m-%d %H:%M";
    let said = run(
        world,
        world.guild.owner_id,
        Command::new("event")
            .sub("create")
            .string("title", title)
            .string("start", &start.format(fmt).to_string())
            .string("end", &end.format(fmt).to_string())
            .integer("capacity", capacity)
            .string("venue", "c-base, Berlin"),
    )
    .await;
    assert!(said.starts_with("Created"), "{said}");
    said.split('`')
        .nth(1)
        .expect("the reply names the code")
        .to_owned()
}

/// Messages the bot sent `user` by DM: (content, files).
fn dms(world: &World, user: u64) -> Vec<(String, Vec<Vec<u8>>)> {
    let channels: Vec<String> = world
        .discord
        .requests_matching("POST", "/users/@me/channels")
        .into_iter()
        .filter(|r| {
            r.body
                .as_ref()
                .is_some_and(|b| b["recipient_id"].as_str() == Some(user.to_string().as_str()))
        })
        .filter_map(|r| {
            r.response
                .as_ref()
                .and_then(|v| v["id"].as_str().map(str::to_owned))
        })
        .collect();
    let Some(channel) = channels.first() else {
        return Vec::new();
    };
    world
        .discord
        .requests_matching("POST", &format!("/channels/{channel}/messages"))
        .into_iter()
        .filter(|r| r.status < 300)
        .map(|r| {
            let content = r
                .body
                .as_ref()
                .and_then(|b| b["content"].as_str())
                .unwrap_or_default()
                .to_owned();
            (content, r.files.into_iter().map(|f| f.data).collect())
        })
        .collect()
}

async fn wait_for_dm(world: &World, user: u64, containing: &str) -> (String, Vec<Vec<u8>>) {
    world
        .wait_for(|| async { dms(world, user).iter().any(|(c, _)| c.contains(containing)) })
        .await;
    dms(world, user)
        .into_iter()
        .rev()
        .find(|(c, _)| c.contains(containing))
        .expect("the DM")
}

async fn ticket_status(world: &World, user: u64) -> String {
    sqlx::query_scalar("select status from event_tickets where discord_user_id = $1")
        .bind(user as i64)
        .fetch_one(&world.pool)
        .await
        .expect("ticket")
}

/// The QR code decoded by zbarimg, which knows nothing of guildops.
fn decode_qr(png: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ticket.png");
    std::fs::write(&path, png).expect("write png");
    let out = std::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("zbarimg is needed to decode the ticket's QR code independently (Debian: apt-get install zbar-tools; scripts/test installs it): {e}")
        });
    assert!(
        out.status.success(),
        "zbarimg could not read the QR code: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

async fn staff_key(world: &World, code: &str) -> String {
    let said = run(
        world,
        world.guild.owner_id,
        Command::new("event").sub("staff-key").string("event", code),
    )
    .await;
    said.split('`').nth(1).expect("the key is shown").to_owned()
}

async fn scan(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    token: &str,
    key: &str,
) -> (u16, Value) {
    let body = json!({"token": token, "staff_key": key, "device_id": "door-1"});
    let r = http
        .post(format!("http://{addr}/checkin"))
        .json(&body)
        .send()
        .await
        .expect("scan");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A running daemon with an event an hour away, Ann's ticket for it (the token
/// decoded from its QR code) and a staff key for its door.
struct AtTheDoor {
    world: World,
    daemon: guildops::Daemon,
    ann: u64,
    token: String,
    key: String,
    http: reqwest::Client,
    addr: std::net::SocketAddr,
}

async fn at_the_door(title: &str) -> AtTheDoor {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let code = create(&world, title, 10, Days::hours(1)).await;
    let ann = member(&world, "ann");
    let token = ticket_of(&world, &code, ann).await;
    let key = staff_key(&world, &code).await;
    let addr = daemon.http_addr;
    AtTheDoor {
        world,
        daemon,
        ann,
        token,
        key,
        http: reqwest::Client::new(),
        addr,
    }
}

/// A member's RSVP, their ticket DM and the token in its QR code.
async fn ticket_of(world: &World, code: &str, user: u64) -> String {
    let said = run(
        world,
        user,
        Command::new("event").sub("rsvp").string("event", code),
    )
    .await;
    assert!(said.contains("You're in"), "{said}");
    let (content, files) = wait_for_dm(world, user, "Here is your ticket").await;
    assert_eq!(files.len(), 1, "the ticket DM carries the QR code");
    let token = decode_qr(&files[0]);
    assert!(
        content.contains(&token),
        "the DM also gives the code to type"
    );
    token
}

#[tokio::test]
async fn rsvps_fill_seats_then_the_waitlist_and_a_freed_seat_promotes_the_next() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let code = create(&world, "Rust Hack Night", 1, Days::days(3)).await;
    // The post with its buttons.
    world
        .wait_for(|| async {
            !world
                .discord
                .channel_messages(world.guild.general_channel)
                .is_empty()
        })
        .await;
    let post = world
        .discord
        .channel_messages(world.guild.general_channel)
        .remove(0);
    assert_eq!(post["embeds"][0]["title"], "Rust Hack Night");
    let rsvp_button = format!("event:rsvp:{code}");
    assert_eq!(
        post["components"][0]["components"][0]["custom_id"],
        rsvp_button.as_str()
    );
    let post_id: u64 = post["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("message id");

    let (ann, bob, cem) = (
        member(&world, "ann"),
        member(&world, "bob"),
        member(&world, "cem"),
    );
    let said = run(
        &world,
        ann,
        Command::new("event").sub("rsvp").string("event", &code),
    )
    .await;
    assert!(said.contains("You're in"), "{said}");
    wait_for_dm(&world, ann, "Here is your ticket").await;
    // Bob uses the button; the event is full.
    let clicked = world
        .discord
        .click_button(
            world.guild.id,
            world.guild.general_channel,
            bob,
            post_id,
            &rsvp_button,
        )
        .reply(WAIT)
        .await;
    assert!(
        text(&clicked).contains("number 1 on the waitlist"),
        "{}",
        text(&clicked)
    );
    let said = run(
        &world,
        cem,
        Command::new("event").sub("rsvp").string("event", &code),
    )
    .await;
    assert!(said.contains("number 2 on the waitlist"), "{said}");
    assert_eq!(ticket_status(&world, bob).await, "waitlisted");

    // Ann gives up her seat: Bob (first in line) is promoted and gets a ticket.
    let said = run(
        &world,
        ann,
        Command::new("event")
            .sub("cancel-rsvp")
            .string("event", &code),
    )
    .await;
    assert!(said.starts_with("Done"), "{said}");
    let (_, files) = wait_for_dm(&world, bob, "off the waitlist").await;
    assert_eq!(files.len(), 1, "the promoted member gets the QR code");
    assert_eq!(ticket_status(&world, bob).await, "confirmed");
    assert_eq!(ticket_status(&world, cem).await, "waitlisted");
    assert_eq!(ticket_status(&world, ann).await, "cancelled");

    // More seats promote Cem too; cancelling the event tells both.
    let said = edit(&world, &code, |c| c.integer("capacity", 2)).await;
    assert!(said.starts_with("Saved"), "{said}");
    wait_for_dm(&world, cem, "off the waitlist").await;
    let said = run(
        &world,
        world.guild.owner_id,
        Command::new("event").sub("cancel").string("event", &code),
    )
    .await;
    assert!(said.starts_with("Cancelled"), "{said}");
    wait_for_dm(&world, bob, "is cancelled").await;
    wait_for_dm(&world, cem, "is cancelled").await;
    assert!(
        !dms(&world, ann)
            .iter()
            .any(|(c, _)| c.contains("is cancelled")),
        "Ann had no place any more"
    );
    let said = run(
        &world,
        ann,
        Command::new("event").sub("rsvp").string("event", &code),
    )
    .await;
    assert!(said.contains("cancelled"), "{said}");

    // Members cannot organise; every change was audited.
    let said = run(
        &world,
        ann,
        Command::new("event").sub("cancel").string("event", &code),
    )
    .await;
    assert!(said.contains("Only event organisers"), "{said}");
    let actions: Vec<String> = sqlx::query_scalar("select action from audit_log where action like 'event.%' or action like 'ticket.%' order by id")
        .fetch_all(&world.pool)
        .await
        .expect("audit");
    for expected in [
        "event.created",
        "ticket.confirmed",
        "ticket.waitlisted",
        "ticket.cancelled",
        "ticket.promoted",
        "event.edited",
        "event.cancelled",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    daemon.stop().await.expect("stop");
}

#[tokio::test]
async fn reminders_go_out_when_due_and_not_after_the_start_moved() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let code = create(&world, "Reading group", 5, Days::days(3)).await;
    let ann = member(&world, "ann");
    run(
        &world,
        ann,
        Command::new("event").sub("rsvp").string("event", &code),
    )
    .await;
    let hours: Vec<String> = sqlx::query_scalar(
        "select payload->'data'->>'hours' from jobs where payload->>'name' = 'events.remind' order by run_at",
    )
    .fetch_all(&world.pool)
    .await
    .expect("reminders");
    assert_eq!(hours, ["24", "1"], "24 h and 1 h reminders are scheduled");
    assert!(
        dms(&world, ann)
            .iter()
            .all(|(c, _)| !c.contains("Reminder")),
        "not yet"
    );

    // The clock reaches 24 h before the start.
    sqlx::query("update jobs set run_at = now() where payload->>'name' = 'events.remind' and payload->'data'->>'hours' = '24'")
        .execute(&world.pool)
        .await
        .expect("move the clock");
    sqlx::query("notify guildops_jobs")
        .execute(&world.pool)
        .await
        .expect("wake");
    let (content, _) = wait_for_dm(&world, ann, "Reminder").await;
    assert!(content.contains("in 24 hours"), "{content}");

    // The start moves: the old 1 h reminder does nothing when it comes due.
    let later = (Utc::now() + Days::days(5))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let said = edit(&world, &code, |c| c.string("start", &later)).await;
    assert!(said.starts_with("Saved"), "{said}");
    let old = sqlx::query_scalar::<_, i64>(
        "update jobs set run_at = now() where payload->>'name' = 'events.remind' and status = 'pending'
           and payload->'data'->>'hours' = '1' and (payload->'data'->>'starts_at')::timestamptz < now() + interval '4 days'
         returning id",
    )
    .fetch_one(&world.pool)
    .await
    .expect("the stale reminder");
    sqlx::query("notify guildops_jobs")
        .execute(&world.pool)
        .await
        .expect("wake");
    world
        .wait_for(|| async {
            sqlx::query_scalar::<_, String>("select status from jobs where id = $1")
                .bind(old)
                .fetch_one(&world.pool)
                .await
                .is_ok_and(|s| s == "done")
        })
        .await;
    let reminders = dms(&world, ann)
        .iter()
        .filter(|(c, _)| c.contains("Reminder"))
        .count();
    assert_eq!(
        reminders, 1,
        "a reminder for the old start time is not sent"
    );
    daemon.stop().await.expect("stop");
}

#[tokio::test]
async fn a_decoded_qr_ticket_is_admitted_exactly_once_under_64_concurrent_scans() {
    let AtTheDoor {
        world,
        daemon,
        ann,
        token,
        key,
        http,
        addr,
        ..
    } = at_the_door("Launch party").await;

    let scans = (0..64).map(|_| {
        let (http, token, key) = (http.clone(), token.clone(), key.clone());
        async move { scan(&http, addr, &token, &key).await }
    });
    let results = futures::future::join_all(scans).await;
    let admitted = results
        .iter()
        .filter(|(s, r)| *s == 200 && r["result"] == "admitted")
        .count();
    let duplicate = results
        .iter()
        .filter(|(s, r)| *s == 200 && r["result"] == "duplicate")
        .count();
    assert_eq!((admitted, duplicate), (1, 63), "{results:?}");
    let winner = results
        .iter()
        .find(|(_, r)| r["result"] == "admitted")
        .expect("admitted");
    assert_eq!(winner.1["name"], "ann");
    assert!(
        results
            .iter()
            .all(|(_, r)| r["result"] != "duplicate" || r["first_scan_at"].is_string())
    );
    let recorded: i64 = sqlx::query_scalar("select count(*) from event_scans")
        .fetch_one(&world.pool)
        .await
        .expect("scans");
    assert_eq!(recorded, 64, "every scan is recorded");
    let ip_hashes: i64 =
        sqlx::query_scalar("select count(*) from event_scans where octet_length(ip_hash) = 32")
            .fetch_one(&world.pool)
            .await
            .expect("ip digests");
    assert_eq!(ip_hashes, 64, "the address is kept only as a digest");
    assert_eq!(ticket_status(&world, ann).await, "checked_in");

    // The raw token is nowhere in the database (the delivered DM job was emptied).
    world
        .wait_for(|| async {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from jobs where kind = 'send_dm_file' and status <> 'done'",
            )
            .fetch_one(&world.pool)
            .await
            .is_ok_and(|n| n == 0)
        })
        .await;
    let leaks: i64 = sqlx::query_scalar(
        "select (select count(*) from jobs where payload::text like '%' || $1 || '%')
              + (select count(*) from event_scans where device_id like '%' || $1 || '%')
              + (select count(*) from audit_log where coalesce(after::text, '') like '%' || $1 || '%')",
    )
    .bind(&token)
    .fetch_one(&world.pool)
    .await
    .expect("search");
    assert_eq!(leaks, 0, "the raw token is stored nowhere");
    let png_kept: i64 = sqlx::query_scalar("select count(*) from jobs where kind = 'send_dm_file' and payload->'attachment'->>'data_base64' <> ''")
        .fetch_one(&world.pool)
        .await
        .expect("jobs");
    assert_eq!(png_kept, 0, "delivered QR codes are not kept");
    daemon.stop().await.expect("stop");
}

#[tokio::test]
async fn a_refusal_that_cannot_be_recorded_is_not_answered_as_a_refusal() {
    let AtTheDoor {
        world,
        daemon,
        token,
        key,
        http,
        addr,
        ..
    } = at_the_door("Workshop").await;
    assert_eq!(
        scan(&http, addr, &token, &key).await.1["result"],
        "admitted"
    );

    // The scans table refuses new rows, as a full disk or a lost primary would.
    sqlx::raw_sql("alter table event_scans add constraint refuse_all check (false) not valid")
        .execute(&world.pool)
        .await
        .expect("constraint");
    let rescans = (0..8).map(|_| scan(&http, addr, &token, &key));
    for (status, body) in futures::future::join_all(rescans).await {
        assert_eq!(status, 503, "{body}");
        assert!(body["error_id"].is_string(), "{body}");
        assert!(
            body.get("result").is_none(),
            "no refusal without its record: {body}"
        );
    }
    sqlx::raw_sql("alter table event_scans drop constraint refuse_all")
        .execute(&world.pool)
        .await
        .expect("constraint");

    // The door retries and the log has recovered: the scan is refused and recorded.
    let (status, body) = scan(&http, addr, &token, &key).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("duplicate")));
    let results: Vec<String> = sqlx::query_scalar("select result from event_scans order by id")
        .fetch_all(&world.pool)
        .await
        .expect("scans");
    assert_eq!(results, ["admitted", "duplicate"]);
    daemon.stop().await.expect("stop");
}

#[tokio::test]
async fn forged_revoked_and_other_events_tickets_are_refused() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let code = create(&world, "Meetup", 10, Days::hours(2)).await;
    let other = create(&world, "Other meetup", 10, Days::hours(2)).await;
    let (ann, bob) = (member(&world, "ann"), member(&world, "bob"));
    let ann_token = ticket_of(&world, &code, ann).await;
    let bob_token = ticket_of(&world, &code, bob).await;
    let key = staff_key(&world, &code).await;
    let other_key = staff_key(&world, &other).await;
    let http = reqwest::Client::new();
    let addr = daemon.http_addr;

    let forged = format!("gt_{}", "0".repeat(64));
    assert_eq!(
        scan(&http, addr, &forged, &key).await.1["result"],
        "invalid"
    );
    assert_eq!(
        scan(&http, addr, &ann_token, &other_key).await.1["result"],
        "wrong_event"
    );
    let said = run(
        &world,
        world.guild.owner_id,
        Command::new("event")
            .sub("revoke")
            .string("event", &code)
            .user("member", bob),
    )
    .await;
    assert!(said.starts_with("Revoked"), "{said}");
    assert_eq!(
        scan(&http, addr, &bob_token, &key).await.1["result"],
        "revoked"
    );
    wait_for_dm(&world, bob, "was revoked").await;
    let (status, body) = scan(&http, addr, &ann_token, "gsk_not-a-key").await;
    assert_eq!(status, 401, "{body}");
    let malformed = http
        .post(format!("http://{addr}/checkin"))
        .header("content-type", "application/json")
        .body("{\"token\": ")
        .send()
        .await
        .expect("post");
    assert_eq!(malformed.status().as_u16(), 400);
    let huge = http
        .post(format!("http://{addr}/checkin"))
        .header("content-type", "application/json")
        .body(vec![b' '; 200_000])
        .send()
        .await
        .expect("post");
    assert_eq!(huge.status().as_u16(), 413, "oversized bodies are refused");
    let admitted: i64 =
        sqlx::query_scalar("select count(*) from event_scans where result = 'admitted'")
            .fetch_one(&world.pool)
            .await
            .expect("scans");
    assert_eq!(admitted, 0, "nothing was admitted");

    // A burst of invalid tokens from one key is cut off, and so is the address it came
    // from: a fresh key from the same address waits out the minute too.
    let mut limited = false;
    for n in 0..40 {
        let (status, _) = scan(&http, addr, &format!("gt_guess{n}"), &key).await;
        if status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "invalid-token bursts are rate limited");
    let fresh_key = staff_key(&world, &code).await;
    let (status, body) = scan(&http, addr, &ann_token, &fresh_key).await;
    assert_eq!(status, 429, "{body}");
    // The door page is served from the daemon itself.
    let page = http
        .get(format!("http://{addr}/checkin"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("/checkin") && !html.contains("<script src"),
        "the page embeds its script"
    );
    daemon.stop().await.expect("stop");
}

#[tokio::test]
async fn offline_batches_are_idempotent_and_the_earliest_scan_wins() {
    let AtTheDoor {
        world,
        daemon,
        token,
        key,
        http,
        addr,
        ..
    } = at_the_door("Conference").await;

    // Live admission now; an offline device saw Ann ten minutes ago.
    assert_eq!(
        scan(&http, addr, &token, &key).await.1["result"],
        "admitted"
    );
    let earlier = Utc::now() - Days::minutes(10);
    let scan_id = uuid::Uuid::new_v4();
    let batch = json!({"staff_key": key, "device_id": "door-2", "scans": [
        {"scan_id": scan_id, "token": token, "scanned_at": earlier},
    ]});
    let post = |body: Value| {
        let http = http.clone();
        async move {
            let r = http
                .post(format!("http://{addr}/checkin/batch"))
                .json(&body)
                .send()
                .await
                .expect("batch");
            assert_eq!(r.status().as_u16(), 200);
            r.json::<Value>().await.expect("json")
        }
    };
    let first = post(batch.clone()).await;
    assert_eq!(first["results"][0]["result"], "admitted", "{first}");
    let replay = post(batch).await;
    assert_eq!(replay["results"][0]["result"], "admitted");
    assert_eq!(replay["results"][0]["replayed"], true);
    let rows: Vec<(String, String)> =
        sqlx::query_as("select device_id, result from event_scans order by scanned_at")
            .fetch_all(&world.pool)
            .await
            .expect("scans");
    assert_eq!(
        rows,
        [
            ("door-2".to_owned(), "admitted".to_owned()),
            ("door-1".to_owned(), "duplicate".to_owned())
        ],
        "the replay recorded nothing and the earlier offline scan is the admission"
    );
    let at: chrono::DateTime<Utc> = sqlx::query_scalar("select checked_in_at from event_tickets")
        .fetch_one(&world.pool)
        .await
        .expect("ticket");
    assert!(
        (at - earlier).num_milliseconds().abs() < 5,
        "admitted at the offline scan's time"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    daemon.stop().await.expect("stop");
}

#[tokio::test]
async fn a_tier_event_seats_only_tier_members_and_old_tickets_expire() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let gold_role = gold_tier(&world).await;
    let start = Utc::now() + Days::hours(2);
    let fmt = "%Y-%m-%d %H:%M";
    let said = run(
        &world,
        world.guild.owner_id,
        Command::new("event")
            .sub("create")
            .string("title", "Gold dinner")
            .string("start", &start.format(fmt).to_string())
            .string("end", &(start + Days::hours(2)).format(fmt).to_string())
            .integer("capacity", 5)
            .string("tier", "gold"),
    )
    .await;
    assert!(said.starts_with("Created"), "{said}");
    let code = said.split('`').nth(1).expect("code").to_owned();
    let plain = member(&world, "plain");
    let said = run(
        &world,
        plain,
        Command::new("event").sub("rsvp").string("event", &code),
    )
    .await;
    assert!(said.contains("members of the **Gold** tier"), "{said}");
    let gold = world.discord.add_user("goldie");
    world.discord.add_member(world.guild.id, gold, &[gold_role]);
    let token = ticket_of(&world, &code, gold).await;
    let key = staff_key(&world, &code).await;
    let http = reqwest::Client::new();

    // Long after the end (plus the margin) the ticket has expired...
    sqlx::query("update events set starts_at = now() - interval '10 hours', ends_at = now() - interval '7 hours'")
        .execute(&world.pool)
        .await
        .expect("move the event into the past");
    assert_eq!(
        scan(&http, daemon.http_addr, &token, &key).await.1["result"],
        "expired"
    );
    // ...while it is on, it admits, naming the attendee's tier.
    sqlx::query("update events set starts_at = now() - interval '1 hour', ends_at = now() + interval '1 hour'")
        .execute(&world.pool)
        .await
        .expect("the event is on");
    let (_, admitted) = scan(&http, daemon.http_addr, &token, &key).await;
    assert_eq!(admitted["result"], "admitted", "{admitted}");
    assert_eq!(admitted["name"], "goldie");
    assert_eq!(admitted["tier"], "Gold");
    let results: Vec<String> = sqlx::query_scalar("select result from event_scans order by id")
        .fetch_all(&world.pool)
        .await
        .expect("scans");
    assert_eq!(results, ["expired", "admitted"]);
    daemon.stop().await.expect("stop");
}

#[tokio::test]
async fn an_admitted_attendee_gets_the_attended_role_and_a_refused_one_does_not() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let g = world.guild.clone();
    let attended = world.discord.add_role(g.id, "Attended", 0, 3);
    let said = run(
        &world,
        g.owner_id,
        Command::new("event")
            .sub("attended-role")
            .role("role", attended),
    )
    .await;
    assert!(said.contains(&format!("<@&{attended}>")), "{said}");
    let code = create(&world, "Meetup", 10, Days::hours(2)).await;
    let (cal, dee) = (member(&world, "cal"), member(&world, "dee"));
    let token = ticket_of(&world, &code, cal).await;
    let _ = ticket_of(&world, &code, dee).await;
    let key = staff_key(&world, &code).await;
    let http = reqwest::Client::new();
    let (_, body) = scan(&http, daemon.http_addr, &token, &key).await;
    assert_eq!(body["result"], "admitted", "{body}");
    let has_role = |user| {
        world
            .discord
            .member_roles(g.id, user)
            .is_some_and(|r| r.contains(&attended))
    };
    world.wait_for(|| async { has_role(cal) }).await;
    let (_, again) = scan(&http, daemon.http_addr, &token, &key).await;
    assert_eq!(again["result"], "duplicate");
    assert!(!has_role(dee), "dee was never admitted");
    let grants = world
        .discord
        .requests_matching("PUT", &format!("/roles/{attended}"));
    assert_eq!(grants.len(), 1, "one grant for one admission");

    // `/event stats` counts the arrival and draws it.
    let stats = run(
        &world,
        g.owner_id,
        Command::new("event").sub("stats").string("event", &code),
    )
    .await;
    assert!(stats.contains("checked in: 1"), "{stats}");
    let chart = world
        .discord
        .requests()
        .into_iter()
        .flat_map(|r| r.files)
        .find(|f| f.filename == "arrivals.png")
        .expect("the stats reply carries the chart");
    let decoder = png::Decoder::new(std::io::Cursor::new(&chart.data));
    let info = decoder.read_info().expect("a PNG").info().clone();
    assert!(info.width > 0 && info.height > 0);
    daemon.stop().await.expect("stops");
}

/// `/event edit` of `code` by the owner, with `change`'s options; the reply.
async fn edit(world: &World, code: &str, change: impl FnOnce(Command) -> Command) -> String {
    let command = Command::new("event").sub("edit").string("event", code);
    run(world, world.guild.owner_id, change(command)).await
}

/// A Gold tier whose role members hold; its role id.
async fn gold_tier(world: &World) -> u64 {
    let gold_role = world.discord.add_role(world.guild.id, "Gold", 0, 3);
    sqlx::query(
        "insert into tiers (id, community_id, name, discord_role_id, stripe_price_id, unit_amount,
                            currency, billing_interval)
         select gen_random_uuid(), id, 'Gold', $1, 'price_gold', 500, 'eur', 'month' from communities",
    )
    .bind(gold_role as i64)
    .execute(&world.pool)
    .await
    .expect("a tier");
    gold_role
}

/// `/event create` for a Gold event with held seats; the reply.
async fn create_held(world: &World, capacity: i64, held: i64, until: Option<&str>) -> String {
    let start = Utc::now() + Days::days(3);
    let fmt = "%Y-%m-%d %H:%M";
    let mut command = Command::new("event")
        .sub("create")
        .string("title", "Members' night")
        .string("start", &start.format(fmt).to_string())
        .string("end", &(start + Days::hours(2)).format(fmt).to_string())
        .integer("capacity", capacity)
        .string("tier", "Gold")
        .integer("reserved_seats", held);
    if let Some(until) = until {
        command = command.string("reserved_until", until);
    }
    run(world, world.guild.owner_id, command).await
}

fn code_in(said: &str) -> String {
    assert!(said.starts_with("Created"), "{said}");
    said.split('`').nth(1).expect("code").to_owned()
}

#[tokio::test]
async fn held_seats_go_to_tier_members_and_others_wait_until_they_open() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let gold_role = gold_tier(&world).await;
    // Held seats need a tier.
    let start = (Utc::now() + Days::days(3))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let end = (Utc::now() + Days::days(3) + Days::hours(2))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let said = run(
        &world,
        world.guild.owner_id,
        Command::new("event")
            .sub("create")
            .string("title", "No tier")
            .string("start", &start)
            .string("end", &end)
            .integer("capacity", 5)
            .integer("reserved_seats", 2),
    )
    .await;
    assert!(said.contains("give `tier` too"), "{said}");

    // Two seats, one held for Gold members.
    let code = code_in(&create_held(&world, 2, 1, None).await);
    let (ann, bob) = (member(&world, "ann"), member(&world, "bob"));
    let goldie = world.discord.add_user("goldie");
    world
        .discord
        .add_member(world.guild.id, goldie, &[gold_role]);
    let rsvp = |user| {
        let world = &world;
        let code = code.clone();
        async move {
            run(
                world,
                user,
                Command::new("event").sub("rsvp").string("event", &code),
            )
            .await
        }
    };
    assert!(rsvp(ann).await.contains("You're in"), "the open seat");
    let said = rsvp(bob).await;
    assert!(
        said.contains("1 seat is kept for members of the Gold tier")
            && said.contains("number 1 on the waitlist"),
        "{said}"
    );
    let said = rsvp(goldie).await;
    assert!(said.contains("You're in"), "the held seat: {said}");
    wait_for_dm(&world, goldie, "Here is your ticket").await;

    // A member gives the held seat back: it stays held, Bob keeps waiting.
    let said = run(
        &world,
        goldie,
        Command::new("event")
            .sub("cancel-rsvp")
            .string("event", &code),
    )
    .await;
    assert!(said.starts_with("Done"), "{said}");
    assert_eq!(ticket_status(&world, bob).await, "waitlisted");

    // The organiser opens the held seats: Bob, first in line, gets it.
    let said = edit(&world, &code, |c| c.integer("reserved_seats", 0)).await;
    assert!(said.starts_with("Saved"), "{said}");
    wait_for_dm(&world, bob, "off the waitlist").await;
    assert_eq!(ticket_status(&world, bob).await, "confirmed");
    daemon.stop().await.expect("stop");
}

#[tokio::test]
async fn a_presale_opens_to_everyone_at_its_time_and_the_waitlist_moves_up() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    gold_tier(&world).await;
    // Every seat held for members until tomorrow: a presale.
    let opens = (Utc::now() + Days::days(1))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let code = code_in(&create_held(&world, 3, 3, Some(&opens)).await);
    let ann = member(&world, "ann");
    let said = run(
        &world,
        ann,
        Command::new("event").sub("rsvp").string("event", &code),
    )
    .await;
    assert!(
        said.contains("Every seat is kept for members of the Gold tier until <t:")
            && said.contains("number 1 on the waitlist"),
        "{said}"
    );
    let release_at: chrono::DateTime<Utc> = sqlx::query_scalar(
        "select run_at from jobs where payload->>'name' = 'events.release' and status = 'pending'",
    )
    .fetch_one(&world.pool)
    .await
    .expect("the release is scheduled");
    assert!(release_at > Utc::now() + Days::hours(23), "{release_at}");

    // The clock reaches the opening time.
    sqlx::query("update events set reserved_until = date_trunc('second', now())")
        .execute(&world.pool)
        .await
        .expect("the presale ends");
    sqlx::query(
        "update jobs set run_at = now(),
                payload = jsonb_set(payload, '{data,at}', (select to_jsonb(reserved_until) from events))
          where payload->>'name' = 'events.release'",
    )
    .execute(&world.pool)
    .await
    .expect("the release is due");
    sqlx::query("notify guildops_jobs")
        .execute(&world.pool)
        .await
        .expect("wake");
    wait_for_dm(&world, ann, "off the waitlist").await;
    assert_eq!(ticket_status(&world, ann).await, "confirmed");
    // Now anyone books directly.
    let bob = member(&world, "bob");
    let said = run(
        &world,
        bob,
        Command::new("event").sub("rsvp").string("event", &code),
    )
    .await;
    assert!(said.contains("You're in"), "{said}");
    daemon.stop().await.expect("stop");
}

#[tokio::test]
async fn events_take_named_time_zones_and_refuse_unknown_ones() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let create = |zone: &'static str| {
        Command::new("event")
            .sub("create")
            .string("title", "Glühwein")
            .string("start", "2030-12-20 18:00")
            .string("end", "2030-12-20 21:00")
            .integer("capacity", 10)
            .string("timezone", zone)
    };
    let said = run(&world, world.guild.owner_id, create("Mars/Olympus_Mons")).await;
    assert!(said.contains("`Mars/Olympus_Mons` is unknown"), "{said}");
    let said = run(&world, world.guild.owner_id, create("Europe/Berlin")).await;
    assert!(said.starts_with("Created"), "{said}");
    let (zone, starts_at): (String, chrono::DateTime<Utc>) =
        sqlx::query_as("select timezone, starts_at from events")
            .fetch_one(&world.pool)
            .await
            .expect("the event");
    assert_eq!(zone, "Europe/Berlin");
    assert_eq!(
        starts_at.to_rfc3339(),
        "2030-12-20T17:00:00+00:00",
        "CET is UTC+1"
    );
    // An edit reads a new start in the event's own zone: summer time there is UTC+2.
    let code = said.split('`').nth(1).expect("code").to_owned();
    let said = edit(&world, &code, |c| c.string("start", "2030-07-01 18:00")).await;
    assert!(said.starts_with("Saved"), "{said}");
    let starts_at: chrono::DateTime<Utc> = sqlx::query_scalar("select starts_at from events")
        .fetch_one(&world.pool)
        .await
        .expect("the event");
    assert_eq!(starts_at.to_rfc3339(), "2030-07-01T16:00:00+00:00");
    daemon.stop().await.expect("stop");
}

#[tokio::test]
async fn the_post_is_edited_when_the_event_changes_and_when_it_is_cancelled() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let code = create(&world, "Board games", 8, Days::days(2)).await;
    // The post's id comes back through the outbox (`events.posted`).
    world
        .wait_for(|| async {
            sqlx::query_scalar::<_, Option<i64>>("select message_id from events")
                .fetch_one(&world.pool)
                .await
                .is_ok_and(|m| m.is_some())
        })
        .await;
    let post_id: i64 = sqlx::query_scalar("select message_id from events")
        .fetch_one(&world.pool)
        .await
        .expect("message id");
    let path = format!(
        "/channels/{}/messages/{post_id}",
        world.guild.general_channel
    );
    let edits = || {
        world
            .discord
            .requests_matching("PATCH", &path)
            .into_iter()
            .filter(|r| r.status < 300)
            .filter_map(|r| r.body)
            .collect::<Vec<Value>>()
    };
    assert!(edits().is_empty(), "nothing changed yet");

    let said = edit(&world, &code, |c| {
        c.string("title", "Board games XL").integer("capacity", 12)
    })
    .await;
    assert!(said.starts_with("Saved"), "{said}");
    world.wait_for(|| async { edits().len() == 1 }).await;
    let edited = &edits()[0];
    assert_eq!(edited["embeds"][0]["title"], "Board games XL");
    assert!(
        edited["embeds"][0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("Seats: 12")),
        "{edited}"
    );
    assert_eq!(
        edited["components"][0]["components"][0]["custom_id"],
        format!("event:rsvp:{code}").as_str()
    );

    let said = run(
        &world,
        world.guild.owner_id,
        Command::new("event").sub("cancel").string("event", &code),
    )
    .await;
    assert!(said.starts_with("Cancelled"), "{said}");
    world.wait_for(|| async { edits().len() == 2 }).await;
    let cancelled = &edits()[1];
    assert_eq!(
        cancelled["embeds"][0]["title"],
        "Board games XL (cancelled)"
    );
    assert_eq!(
        cancelled["components"],
        json!([]),
        "the buttons are removed"
    );
    daemon.stop().await.expect("stop");
}
