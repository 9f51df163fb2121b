//! PostgreSQL restarts under a running daemon (its embedded cluster, stopped and
//! started again behind its back): the job workers, the listener and the pool recover
//! on their own, and every role job, queued before or after the outage, completes.

use std::path::{Path, PathBuf};

use guildops::Daemon;
use guildops::db::embedded::EmbeddedPostgres;
use guildops::outbox::{self, Job, NewJob};
use serenity::all::{GuildId, RoleId, UserId};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{WAIT, World, secrets};

/// Stops the test's cluster if the test fails before the daemon does (fast shutdown
/// by signal: pg_ctl refuses to run as root, a signal works for any owner).
struct ClusterGuard(PathBuf);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let pid_file = self.0.join("postgres").join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned))
        {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status();
        }
    }
}

async fn inspect(data_dir: &Path) -> (EmbeddedPostgres, PgPool) {
    // Adopts the running cluster, or starts it when it is down.
    let pg = EmbeddedPostgres::start(data_dir, None)
        .await
        .expect("embedded cluster");
    let pool = PgPool::connect_with(pg.connect_options("guildops"))
        .await
        .expect("connect to the embedded cluster");
    (pg, pool)
}

async fn enqueue(pool: &PgPool, community: Uuid, guild: u64, users: &[u64], roles: &[u64]) {
    let mut tx = pool.begin().await.expect("tx");
    for user in users {
        for role in roles {
            let job = Job::AddRole {
                guild_id: GuildId::new(guild),
                user_id: UserId::new(*user),
                role_id: RoleId::new(*role),
                reason: "restart test".into(),
            };
            let key = format!("restart:{user}:{role}");
            outbox::enqueue(&mut tx, NewJob::new(Some(community), key, job))
                .await
                .expect("enqueue");
        }
    }
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn workers_recover_when_postgresql_restarts_under_them() {
    if guildops::db::embedded::find_bin_dir(None).is_none() {
        panic!(
            "this test needs PostgreSQL's server binaries (initdb, pg_ctl); scripts/test installs them"
        );
    }
    let world = World::new().await;
    let g = world.guild.clone();
    let roles: Vec<u64> = (0..4)
        .map(|n| world.discord.add_role(g.id, &format!("r{n}"), 0, 10))
        .collect();
    let users: Vec<u64> = (0..50)
        .map(|n| world.discord.add_user(&format!("u{n}")))
        .collect();
    for user in &users {
        world.discord.add_member(g.id, *user, &[]);
    }
    let data_dir = world.data_dir.path().to_path_buf();
    let _guard = ClusterGuard(data_dir.clone());
    let mut config = world.config();
    config.database.url = None;
    config.jobs.workers = 4;
    config.jobs.lease_secs = 2;
    config.jobs.sweep_interval_ms = 200;
    config.jobs.discord_requests_per_sec = 200;
    let daemon = Daemon::start(config, secrets(&world.discord))
        .await
        .expect("daemon starts on its embedded cluster");
    assert!(world.discord.wait_until_connected(WAIT).await);

    let (pg, pool) = inspect(&data_dir).await;
    world
        .wait_for(|| async {
            sqlx::query_scalar::<_, i64>("select count(*) from communities")
                .fetch_one(&pool)
                .await
                .is_ok_and(|n| n == 1)
        })
        .await;
    let community: Uuid = sqlx::query_scalar("select id from communities")
        .fetch_one(&pool)
        .await
        .expect("community");
    let (first, second) = users.split_at(users.len() / 2);
    enqueue(&pool, community, g.id, first, &roles).await;
    pool.close().await;

    // Restart under the daemon: fast shutdown drops every connection it holds.
    pg.stop().await.expect("stop the cluster");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_pg, pool) = inspect(&data_dir).await;
    enqueue(&pool, community, g.id, second, &roles).await;

    let total = (users.len() * roles.len()) as i64;
    world
        .wait_for(|| async {
            sqlx::query_scalar::<_, i64>("select count(*) from jobs where status = 'done'")
                .fetch_one(&pool)
                .await
                .is_ok_and(|n| n == total)
        })
        .await;
    let unfinished: i64 = sqlx::query_scalar("select count(*) from jobs where status <> 'done'")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(unfinished, 0, "every job completes after the restart");
    let mut intended = roles.clone();
    intended.sort_unstable();
    for user in &users {
        let mut held = world.discord.member_roles(g.id, *user).expect("member");
        held.sort_unstable();
        assert_eq!(
            held, intended,
            "member {user} holds exactly the intended roles"
        );
    }
    pool.close().await;
    daemon.stop().await.expect("daemon stops");
}
