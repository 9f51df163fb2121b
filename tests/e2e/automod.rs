//! Automod end to end: rules added by `/automod` commands apply to the next message
//! the fake gateway delivers; a banned phrase (written with evasion) is deleted and its
//! author timed out, with a recorded hit and a mod-log entry whose "false positive"
//! button records feedback; exempt roles are left alone; flood and duplicate rules
//! fire at their count; dry-run acts on nothing; `/automod test`, `log`, `export` and
//! `import` work, and bad input gets a clear error and changes nothing.

use guildops_harness::Command;
use serde_json::Value;

use crate::support::{WAIT, World, text};

// `/automod rule add trigger:` choice indexes, in the command's order.
const PHRASES: i64 = 0;
const REGEX: i64 = 1;
const FLOOD: i64 = 6;
const DUPLICATES: i64 = 7;

async fn run(world: &World, user: u64, command: Command) -> String {
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

fn add_rule(name: &str, trigger: i64, value: &str) -> Command {
    Command::new("automod")
        .sub("rule")
        .sub("add")
        .string("name", name)
        .integer("trigger", trigger)
        .string("value", value)
}

/// A daemon with the admin and mod-log channels set.
async fn started(world: &World) -> guildops::daemon::Daemon {
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let g = &world.guild;
    let said = run(
        world,
        g.owner_id,
        Command::new("setup")
            .sub("channels")
            .channel("admin", g.admin_channel)
            .channel("mod_log", g.mod_log_channel),
    )
    .await;
    assert!(said.starts_with("Saved"), "{said}");
    daemon
}

fn member(world: &World, name: &str, roles: &[u64]) -> u64 {
    let user = world.discord.add_user(name);
    world.discord.add_member(world.guild.id, user, roles);
    user
}

async fn hits_of(world: &World, message: u64) -> Vec<(String, bool)> {
    sqlx::query_as(
        "select rule_name, dry_run from automod_hits where discord_message_id = $1 order by id",
    )
    .bind(message as i64)
    .fetch_all(&world.pool)
    .await
    .expect("hits")
}

fn message_exists(world: &World, channel: u64, message: u64) -> bool {
    world
        .discord
        .message(message)
        .is_some_and(|m| m["channel_id"].as_str() == Some(&channel.to_string()))
}

fn mod_log_entries(world: &World) -> Vec<Value> {
    world
        .discord
        .channel_messages(world.guild.mod_log_channel)
        .into_iter()
        .filter(|m| {
            m["embeds"][0]["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Automod"))
        })
        .collect()
}

#[tokio::test]
async fn a_banned_phrase_is_deleted_its_author_timed_out_and_the_hit_logged() {
    let world = World::new().await;
    let daemon = started(&world).await;
    let g = world.guild.clone();
    let staff_role = world.discord.add_role(g.id, "Staff", 0, 5);
    let rule = add_rule("nitro", PHRASES, "free nitro")
        .string("actions", "delete, timeout 10m")
        .string("exempt_roles", &format!("<@&{staff_role}>"));
    let said = run(&world, g.owner_id, rule).await;
    assert!(
        said.contains("Added") && said.contains("timeout 10m"),
        "{said}"
    );

    let staff = member(&world, "stella", &[staff_role]);
    let spammer = member(&world, "sam", &[]);
    // Exempt: the same words from a Staff member are left alone.
    let exempt = world.discord.post_message(
        g.id,
        g.general_channel,
        staff,
        "free nitro for the raffle winners",
    );
    // Fullwidth letters and a zero-width space: the standard view still reads "free nitro".
    let banned = world.discord.post_message(
        g.id,
        g.general_channel,
        spammer,
        "ＦＲＥＥ ni\u{200b}tro here: claim it",
    );
    world
        .wait_for(|| async { !message_exists(&world, g.general_channel, banned) })
        .await;
    world
        .wait_for(|| async {
            world
                .discord
                .member(g.id, spammer)
                .is_some_and(|m| m["communication_disabled_until"].is_string())
        })
        .await;
    assert_eq!(
        hits_of(&world, banned).await,
        vec![("nitro".to_owned(), false)]
    );
    assert!(hits_of(&world, exempt).await.is_empty(), "exempt role");
    assert!(message_exists(&world, g.general_channel, exempt));
    let timeout = world
        .discord
        .requests_matching("PATCH", &format!("/members/{spammer}"))
        .pop()
        .expect("timeout request");
    assert_eq!(
        timeout.audit_log_reason().as_deref(),
        Some("automod: timeout 10m")
    );

    world
        .wait_for(|| async { !mod_log_entries(&world).is_empty() })
        .await;
    let entry = mod_log_entries(&world).remove(0);
    let description = entry["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains(&format!(
            "https://discord.com/channels/{}/{}/{banned}",
            g.id, g.general_channel
        )),
        "jump link: {description}"
    );
    assert!(description.contains("delete, timeout 10m"), "{description}");
    let button = entry["components"][0]["components"][0]["custom_id"]
        .as_str()
        .expect("a false-positive button")
        .to_owned();
    assert!(button.starts_with("automod:fp:"), "{button}");
    let entry_id: u64 = entry["id"]
        .as_str()
        .and_then(|i| i.parse().ok())
        .expect("id");

    // A member who is no moderator cannot press it; the owner can, once.
    let click = |user| {
        world
            .discord
            .click_button(g.id, g.mod_log_channel, user, entry_id, &button)
    };
    let refused = text(&click(spammer).reply(WAIT).await);
    assert!(refused.contains("Only moderators"), "{refused}");
    let thanked = text(&click(g.owner_id).reply(WAIT).await);
    assert!(
        thanked.contains("recorded as a false positive"),
        "{thanked}"
    );
    let again = text(&click(g.owner_id).reply(WAIT).await);
    assert!(again.contains("already marked"), "{again}");
    let feedback: Option<String> =
        sqlx::query_scalar("select feedback from automod_hits where discord_message_id = $1")
            .bind(banned as i64)
            .fetch_one(&world.pool)
            .await
            .expect("hit");
    assert_eq!(feedback.as_deref(), Some("false_positive"));
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where action in ('automod.hit', 'automod.false_positive', 'automod.rule_added')",
    )
    .fetch_one(&world.pool)
    .await
    .expect("audit");
    assert_eq!(audited, 3);

    let log = run(&world, g.owner_id, Command::new("automod").sub("log")).await;
    assert!(
        log.contains("`nitro`") && log.contains("false positive"),
        "{log}"
    );
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn flood_and_duplicate_rules_fire_at_their_count_and_a_new_rule_applies_next() {
    let world = World::new().await;
    let daemon = started(&world).await;
    let g = world.guild.clone();
    let chatty = member(&world, "chatty", &[]);
    let parrot = member(&world, "parrot", &[]);

    // Before the rule exists, a scam phrase passes.
    let before = world
        .discord
        .post_message(g.id, g.general_channel, parrot, "crypto giveaway!!");
    for (name, kind, value) in [
        ("flood", FLOOD, "5/60s"),
        ("dupes", DUPLICATES, "3/60s"),
        ("giveaway", PHRASES, "crypto giveaway"),
    ] {
        let said = run(
            &world,
            g.owner_id,
            add_rule(name, kind, value).string("actions", "log"),
        )
        .await;
        assert!(said.contains("Added"), "{said}");
    }
    assert!(hits_of(&world, before).await.is_empty());
    // The very next message is judged by the new rule.
    let after = world
        .discord
        .post_message(g.id, g.general_channel, parrot, "crypto giveaway!!");
    world
        .wait_for(|| async { !hits_of(&world, after).await.is_empty() })
        .await;

    let mut flood = Vec::new();
    for n in 1..=6 {
        flood.push(world.discord.post_message(
            g.id,
            g.general_channel,
            chatty,
            &format!("message number {n}"),
        ));
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    let mut dupes = Vec::new();
    for _ in 1..=3 {
        dupes.push(
            world
                .discord
                .post_message(g.id, g.admin_channel, parrot, "same words"),
        );
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    world
        .wait_for(|| async { !hits_of(&world, flood[5]).await.is_empty() })
        .await;
    world
        .wait_for(|| async { !hits_of(&world, dupes[2]).await.is_empty() })
        .await;
    for (n, id) in flood.iter().enumerate() {
        let expected = if n >= 4 {
            vec![("flood".to_owned(), false)]
        } else {
            vec![]
        };
        assert_eq!(
            hits_of(&world, *id).await,
            expected,
            "flood message {}",
            n + 1
        );
    }
    for (n, id) in dupes.iter().enumerate() {
        let expected = if n == 2 {
            vec![("dupes".to_owned(), false)]
        } else {
            vec![]
        };
        assert_eq!(hits_of(&world, *id).await, expected, "duplicate {}", n + 1);
    }
    // `log` deletes nothing.
    assert!(
        flood
            .iter()
            .all(|m| message_exists(&world, g.general_channel, *m))
    );
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn dry_run_records_what_it_would_do_and_does_nothing() {
    let world = World::new().await;
    let daemon = started(&world).await;
    let g = world.guild.clone();
    let rule = add_rule("trial", PHRASES, "buy followers")
        .string("actions", "delete, timeout 1h, warn, alert")
        .boolean("dry_run", true);
    let said = run(&world, g.owner_id, rule).await;
    assert!(said.contains("dry run"), "{said}");
    let user = member(&world, "dora", &[]);
    let message = world
        .discord
        .post_message(g.id, g.general_channel, user, "Buy followers cheap");
    world
        .wait_for(|| async { !mod_log_entries(&world).is_empty() })
        .await;
    assert_eq!(
        hits_of(&world, message).await,
        vec![("trial".to_owned(), true)]
    );
    let entry = mod_log_entries(&world).remove(0);
    assert!(
        entry["embeds"][0]["title"]
            .as_str()
            .unwrap_or_default()
            .contains("dry run"),
        "{entry}"
    );
    assert!(message_exists(&world, g.general_channel, message));
    assert!(
        world
            .discord
            .requests_matching("DELETE", "/messages/")
            .is_empty()
    );
    assert!(
        world
            .discord
            .requests_matching("PATCH", "/members/")
            .is_empty()
    );
    assert!(
        world
            .discord
            .requests_matching("POST", "/users/@me/channels")
            .is_empty()
    );
    let alerts = world.discord.channel_messages(g.admin_channel);
    assert!(
        !alerts
            .iter()
            .any(|m| m["content"].as_str().is_some_and(|c| c.contains("🚨"))),
        "no alert from a dry run"
    );
    daemon.stop().await.expect("stops");
}

#[tokio::test]
async fn moderators_test_edit_export_and_import_rules_and_bad_input_changes_nothing() {
    let world = World::new().await;
    let daemon = started(&world).await;
    let g = world.guild.clone();
    let owner = g.owner_id;
    let said = run(
        &world,
        owner,
        add_rule("scam", PHRASES, "free nitro, steam gift"),
    )
    .await;
    assert!(said.contains("Added"), "{said}");

    // Only moderators.
    let nobody = member(&world, "nobody", &[]);
    let refused = run(
        &world,
        nobody,
        Command::new("automod").sub("rule").sub("list"),
    )
    .await;
    assert!(refused.contains("Only moderators"), "{refused}");

    // Bad input: an invalid regex names its position; a bad count says what it wants;
    // a duplicate name is refused. None is saved.
    let bad = run(&world, owner, add_rule("broken", REGEX, "n(i|1")).await;
    assert!(bad.contains("position"), "{bad}");
    let bad = run(&world, owner, add_rule("fl", FLOOD, "many")).await;
    assert!(bad.contains("5/10s"), "{bad}");
    let bad = run(&world, owner, add_rule("SCAM", PHRASES, "x")).await;
    assert!(bad.contains("exists already"), "{bad}");
    let count: i64 = sqlx::query_scalar("select count(*) from automod_rules")
        .fetch_one(&world.pool)
        .await
        .expect("count");
    assert_eq!(count, 1);

    let tested = run(
        &world,
        owner,
        Command::new("automod")
            .sub("test")
            .string("text", "get ＦＲＥＥ ＮＩＴＲＯ now"),
    )
    .await;
    assert!(
        tested.contains("`scam`") && tested.contains("standard"),
        "{tested}"
    );
    assert!(tested.contains("free nitro"), "{tested}");
    let tested = run(
        &world,
        owner,
        Command::new("automod")
            .sub("test")
            .string("text", "a classic Scunthorpe day"),
    )
    .await;
    assert!(tested.contains("No rule fires"), "{tested}");

    let edited = run(
        &world,
        owner,
        Command::new("automod")
            .sub("rule")
            .sub("edit")
            .string("name", "scam")
            .string("actions", "delete, warn")
            .string("escalation", "3/1h timeout 1h"),
    )
    .await;
    assert!(
        edited.contains("delete, warn") && edited.contains("3 hits in 1h"),
        "{edited}"
    );
    let off = run(
        &world,
        owner,
        Command::new("automod")
            .sub("rule")
            .sub("disable")
            .string("name", "scam"),
    )
    .await;
    assert!(off.contains("is off"), "{off}");
    let missing = run(
        &world,
        owner,
        Command::new("automod")
            .sub("rule")
            .sub("remove")
            .string("name", "nope"),
    )
    .await;
    assert!(
        missing.contains("no automod rule called `nope`"),
        "{missing}"
    );

    // Export, then import the file (with a new rule added) back.
    world.discord.clear_requests();
    let exported = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            owner,
            Command::new("automod").sub("export"),
        )
        .reply(WAIT)
        .await;
    assert!(text(&exported).contains("automod import"));
    let upload = world
        .discord
        .requests()
        .into_iter()
        .find(|r| !r.files.is_empty())
        .expect("the export is a file");
    let file: Value = serde_json::from_slice(&upload.files[0].data).expect("JSON");
    assert_eq!(file["rules"][0]["name"], "scam");
    assert_eq!(file["rules"][0]["enabled"], false);
    let mut file = file;
    let mut extra = file["rules"][0].clone();
    extra["name"] = "links".into();
    extra["enabled"] = true.into();
    extra["trigger"] = serde_json::json!({"kind": "links", "domains": ["scam.example"]});
    file["rules"].as_array_mut().expect("array").push(extra);

    // A file with a broken rule changes nothing.
    let mut broken = file.clone();
    broken["rules"][1]["trigger"]["domains"] = serde_json::json!(["not a domain"]);
    let said = run(
        &world,
        owner,
        Command::new("automod").sub("import").attachment(
            "file",
            "rules.json",
            broken.to_string().as_bytes(),
        ),
    )
    .await;
    assert!(said.contains("rule 2 (`links`)"), "{said}");
    let count: i64 = sqlx::query_scalar("select count(*) from automod_rules")
        .fetch_one(&world.pool)
        .await
        .expect("count");
    assert_eq!(count, 1, "nothing imported from a bad file");

    let said = run(
        &world,
        owner,
        Command::new("automod").sub("import").attachment(
            "file",
            "rules.json",
            file.to_string().as_bytes(),
        ),
    )
    .await;
    assert!(said.contains("1 added, 0 changed, 1 unchanged"), "{said}");
    // The imported link rule is live for the next message.
    let user = member(&world, "linky", &[]);
    let message = world.discord.post_message(
        g.id,
        g.general_channel,
        user,
        "look https://login.scam.example/x",
    );
    world
        .wait_for(|| async { !message_exists(&world, g.general_channel, message) })
        .await;
    daemon.stop().await.expect("stops");
}
