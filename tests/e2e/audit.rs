//! The audit log against real PostgreSQL: `/setup` changes and provisioning are
//! recorded in their transaction and sealed by the daemon's sealer, the append-only
//! trigger (which allows only a first seal), tampering that bypasses it is named by
//! verify at the exact entry, erasure keeps the chain intact, and concurrent appends
//! and sealers on one community keep a valid chain.

use guildops::audit::{self, Actor, Break, NewEntry, Report};
use guildops_harness::Command;
use serde_json::json;
use serenity::all::UserId;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{WAIT, World, fresh_database, pool, text};

/// A migrated fresh database with one community, inserted directly.
async fn community_db() -> (PgPool, Uuid) {
    let (pool, id, _) = community_db_url().await;
    (pool, id)
}

async fn community_db_url() -> (PgPool, Uuid, String) {
    let url = fresh_database().await;
    let pool = pool(&url).await;
    guildops::db::MIGRATOR.run(&pool).await.expect("migrate");
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into communities (id, slug, name, discord_guild_id, owner_discord_id)
         values ($1, 'test', 'Test', 1, 2)",
    )
    .bind(id)
    .execute(&pool)
    .await
    .expect("community");
    (pool, id, url)
}

fn entry(community_id: Uuid, n: i64) -> NewEntry {
    let mut e = NewEntry::new(
        community_id,
        Actor::User(UserId::new(42)),
        "test.changed",
        format!("thing:{n}"),
    );
    e.before = Some(json!({ "n": n - 1, "nested": { "b": [1, 2], "a": "x" } }));
    e.after = Some(json!({ "n": n }));
    e.correlation_id = Some(format!("test:{n}"));
    e
}

async fn append(pool: &PgPool, e: NewEntry) -> audit::Recorded {
    let mut tx = pool.begin().await.expect("begin");
    let recorded = audit::record(&mut tx, e).await.expect("record");
    tx.commit().await.expect("commit");
    recorded
}

/// Appends `n` entries and seals them, as the daemon's sealer would.
async fn append_n(pool: &PgPool, community_id: Uuid, n: i64) {
    for i in 1..=n {
        append(pool, entry(community_id, i)).await;
    }
    audit::seal(pool, community_id).await.expect("seal");
}

fn intact(community_id: Uuid, entries: i64, pending: i64) -> Report {
    Report::Intact {
        community_id,
        entries,
        pending,
    }
}

/// Runs SQL with the append-only triggers off, as a superuser attacker could.
async fn tamper(pool: &PgPool, sql: &'static str, seq: i64) {
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("alter table audit_log disable trigger user")
        .execute(&mut *tx)
        .await
        .expect("disable");
    sqlx::query(sql)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .expect("tamper");
    sqlx::query("alter table audit_log enable trigger user")
        .execute(&mut *tx)
        .await
        .expect("enable");
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn a_setup_change_through_discord_is_audited_with_before_and_after() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.wait_for_commands().await;
    let g = &world.guild;
    let saved = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            g.owner_id,
            Command::new("setup")
                .sub("channels")
                .channel("admin", g.admin_channel),
        )
        .reply(WAIT)
        .await;
    assert!(text(&saved).starts_with("Saved."), "{}", text(&saved));

    let (actor, before, after, correlation): (String, serde_json::Value, serde_json::Value, Option<String>) =
        sqlx::query_as("select actor, before, after, correlation_id from audit_log where action = 'settings.updated'")
            .fetch_one(&world.pool)
            .await
            .expect("one settings entry");
    assert_eq!(actor, format!("user:{}", g.owner_id));
    assert_eq!(before["admin_channel"], serde_json::Value::Null);
    assert_eq!(after["admin_channel"], g.admin_channel.to_string());
    assert!(correlation.is_some_and(|c| c.starts_with("interaction:")));
    let created: String =
        sqlx::query_scalar("select actor from audit_log where action = 'community.created'")
            .fetch_one(&world.pool)
            .await
            .expect("provisioning was audited");
    assert_eq!(created, "system:gateway");

    // The daemon's sealer chains both within its poll interval.
    world
        .wait_for(|| async {
            sqlx::query_scalar::<_, i64>("select count(*) from audit_log where seq is null")
                .fetch_one(&world.pool)
                .await
                .expect("count")
                == 0
        })
        .await;
    let verified = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            g.owner_id,
            Command::new("audit").sub("verify"),
        )
        .reply(WAIT)
        .await;
    assert!(verified.as_ref().is_some_and(|r| r.ephemeral));
    assert!(
        text(&verified).contains("2 entries, chain intact"),
        "{}",
        text(&verified)
    );
    let recent = world
        .discord
        .run_command(
            g.id,
            g.admin_channel,
            g.owner_id,
            Command::new("audit").sub("recent"),
        )
        .reply(WAIT)
        .await;
    assert!(
        text(&recent).contains("settings.updated"),
        "{}",
        text(&recent)
    );
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn removing_the_bot_is_audited_as_a_deactivation() {
    let world = World::new().await;
    let daemon = world.start_daemon().await;
    world.discord.remove_bot(world.guild.id);
    world
        .wait_for(|| async {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from audit_log where action = 'community.deactivated'",
            )
            .fetch_one(&world.pool)
            .await
            .expect("count")
                == 1
        })
        .await;
    daemon.stop().await.expect("clean stop");
}

#[tokio::test]
async fn updates_and_deletes_of_entries_are_refused_by_the_trigger() {
    let (pool, community) = community_db().await;
    append_n(&pool, community, 2).await;
    // One more, not sealed yet: its content is as untouchable as a sealed entry's.
    append(&pool, entry(community, 3)).await;
    for sql in [
        "update audit_log set action = 'forged'",
        "update audit_log set action = 'forged' where seq is null",
        // A seal that also rewrites the entry it seals.
        "update audit_log set seq = 3, hash = sha256('x'), action = 'forged' where seq is null",
        "update audit_log set seq = 3, hash = sha256('x'), before = '{}' where seq is null",
        "update audit_log set seq = seq + 10 where seq = 2",
        "update audit_log set hash = sha256('x') where seq = 1",
        "delete from audit_log where seq = 2",
        "delete from audit_log where seq is null",
        "truncate audit_log cascade",
    ] {
        let refused = sqlx::raw_sql(sql).execute(&pool).await;
        let message = refused.expect_err(sql).to_string();
        assert!(message.contains("append-only"), "{sql}: {message}");
    }
    // The daemon's role may write a first seal and nothing else.
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("set local role guildops_app")
        .execute(&mut *tx)
        .await
        .expect("role");
    guildops::db::tenant::scope(&mut tx, community)
        .await
        .expect("scope");
    let refused = sqlx::query("update audit_log set target = 'forged' where seq is null")
        .execute(&mut *tx)
        .await
        .expect_err("no privilege on the content");
    assert!(
        refused.to_string().contains("permission denied"),
        "{refused}"
    );
    drop(tx);
    assert_eq!(
        audit::verify(&pool, community).await.expect("verify"),
        intact(community, 2, 1)
    );
    assert_eq!(audit::seal(&pool, community).await.expect("seal"), 1);
    assert_eq!(
        audit::verify(&pool, community).await.expect("verify"),
        intact(community, 3, 0)
    );
}

#[tokio::test]
async fn tampering_that_bypasses_the_trigger_is_named_at_that_entry() {
    let (pool, community) = community_db().await;
    append_n(&pool, community, 5).await;
    tamper(
        &pool,
        "update audit_log set after = '{\"n\": 99}' where seq = $1",
        3,
    )
    .await;
    let report = audit::verify(&pool, community).await.expect("verify");
    assert_eq!(
        report,
        Report::Broken {
            community_id: community,
            seq: 3,
            why: Break::HashMismatch
        }
    );

    // The trigger lets anyone write a first seal; a forged one does not fit the chain.
    let (pool, community) = community_db().await;
    append_n(&pool, community, 2).await;
    append(&pool, entry(community, 3)).await;
    sqlx::query("update audit_log set seq = 3, hash = sha256('forged') where seq is null")
        .execute(&pool)
        .await
        .expect("a first seal passes the trigger");
    let report = audit::verify(&pool, community).await.expect("verify");
    assert_eq!(
        report,
        Report::Broken {
            community_id: community,
            seq: 3,
            why: Break::HashMismatch
        }
    );

    let (pool, community) = community_db().await;
    append_n(&pool, community, 5).await;
    tamper(&pool, "delete from audit_log where seq = $1", 2).await;
    let report = audit::verify(&pool, community).await.expect("verify");
    assert_eq!(
        report,
        Report::Broken {
            community_id: community,
            seq: 2,
            why: Break::Missing
        }
    );

    let (pool, community) = community_db().await;
    append_n(&pool, community, 5).await;
    tamper(&pool, "delete from audit_log where seq = $1", 5).await;
    let report = audit::verify(&pool, community).await.expect("verify");
    assert_eq!(
        report,
        Report::Broken {
            community_id: community,
            seq: 5,
            why: Break::Truncated { head_seq: 5 }
        }
    );
}

#[tokio::test]
async fn erasing_personal_data_keeps_the_chain_verifiable() {
    let (pool, community) = community_db().await;
    append_n(&pool, community, 2).await;
    let mut personal = entry(community, 3);
    personal.reason = Some("posted my home address".into());
    personal.names = vec!["Alice Example".into()];
    let recorded = append(&pool, personal).await;
    append_n(&pool, community, 1).await;

    // Rewriting personal data is refused; with the trigger bypassed it is detected.
    let rewrite = sqlx::query("update audit_personal_data set reason = 'other'")
        .execute(&pool)
        .await;
    assert!(
        rewrite.is_err(),
        "personal data can be erased, never rewritten"
    );
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("alter table audit_personal_data disable trigger user")
        .execute(&mut *tx)
        .await
        .expect("disable");
    sqlx::query("update audit_personal_data set reason = 'forged'")
        .execute(&mut *tx)
        .await
        .expect("forge");
    let report = {
        tx.commit().await.expect("commit");
        audit::verify(&pool, community).await.expect("verify")
    };
    assert_eq!(
        report,
        Report::Broken {
            community_id: community,
            seq: 3,
            why: Break::PersonalDataAltered
        }
    );

    let erased =
        audit::erase_personal_data(&pool, community, recorded.id, Actor::System("privacy"))
            .await
            .expect("erase");
    assert!(erased);
    let left: i64 = sqlx::query_scalar("select count(*) from audit_personal_data")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(left, 0);
    let report = audit::verify(&pool, community).await.expect("verify");
    assert_eq!(
        report,
        intact(community, 4, 1),
        "the erasure's own entry awaits its seal"
    );
    assert!(report.to_string().contains("1 newer awaiting"), "{report}");
    assert_eq!(audit::seal(&pool, community).await.expect("seal"), 1);
    let report = audit::verify(&pool, community).await.expect("verify");
    assert_eq!(
        report,
        intact(community, 5, 0),
        "4 entries plus the erasure's own"
    );
    let recent = audit::recent(&pool, community, 1).await.expect("recent");
    assert_eq!(recent[0].action, "audit.personal_data_erased");
}

#[tokio::test]
async fn concurrent_appends_and_sealers_on_one_community_keep_a_valid_chain() {
    let (pool, community) = community_db().await;
    // Two sealers race the writers (two daemons), each sealing whatever is committed.
    let writing = tokio_util::sync::CancellationToken::new();
    let sealers: Vec<_> = (0..2)
        .map(|_| {
            let (pool, writing) = (pool.clone(), writing.clone());
            tokio::spawn(async move {
                let mut sealed = 0;
                while !writing.is_cancelled() {
                    sealed += audit::seal(&pool, community).await.expect("seal");
                }
                sealed
            })
        })
        .collect();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    append(&pool, entry(community, t * 100 + i)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    writing.cancel();
    let mut sealed = 0;
    for sealer in sealers {
        sealed += sealer.await.expect("sealer");
    }
    sealed += audit::seal(&pool, community).await.expect("seal");
    assert_eq!(sealed, 160, "every entry sealed exactly once");
    let report = audit::verify(&pool, community).await.expect("verify");
    assert_eq!(report, intact(community, 160, 0));
    let mut out = Vec::new();
    let written = audit::export(&pool, Some(community), &mut out)
        .await
        .expect("export");
    assert_eq!(written, 160);
    let first: serde_json::Value =
        serde_json::from_slice(out.split(|b| *b == b'\n').next().expect("a line")).expect("json");
    assert_eq!(first["seq"], 1);
}

/// `guildops audit ...` as a process against `url`; (success, stdout).
async fn cli(url: &str, args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_guildops"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GUILDOPS_DATABASE__URL", url)
        .current_dir(dir.path())
        .arg("audit")
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run guildops"))
        .await
        .expect("join");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_verifies_and_exports_json_lines() {
    let (pool, community, url) = community_db_url().await;
    append_n(&pool, community, 3).await;
    let (ok, out) = cli(&url, &["verify"]).await;
    assert!(ok && out.contains("3 entries, chain intact"), "{out}");
    let id = community.to_string();
    let (ok, out) = cli(&url, &["export", "--community", &id]).await;
    assert!(ok);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["seq"], 3);
    tamper(
        &pool,
        "update audit_log set target = 'forged' where seq = $1",
        2,
    )
    .await;
    let (ok, out) = cli(&url, &["verify", "--community", &id]).await;
    assert!(!ok, "a broken chain fails the command");
    assert!(out.contains("chain broken at entry #2"), "{out}");
}
