//! kill -9 of a daemon process with 1,000 role jobs queued or in flight: after a
//! restart every job completes, the fake's member roles equal the intended ones, and
//! duplicated requests are limited to the jobs that were in flight at the kill.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use guildops::outbox::{self, Job, NewJob};
use serenity::all::{GuildId, RoleId, UserId};

use crate::support::World;

const BIN: &str = env!("CARGO_BIN_EXE_guildops");
const WORKERS: usize = 4;

/// A daemon process that a failing test must not leave running.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(world: &World) -> Daemon {
    let child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("GUILDOPS_DISCORD_TOKEN", world.discord.token())
        .env("GUILDOPS_DISCORD__API_BASE", world.discord.base_url())
        .env("GUILDOPS_DATABASE__URL", &world.database_url)
        .env("GUILDOPS_HTTP__BIND", "127.0.0.1:0")
        .env("GUILDOPS_DAEMON__DATA_DIR", world.data_dir.path())
        .env("GUILDOPS_JOBS__WORKERS", WORKERS.to_string())
        .env("GUILDOPS_JOBS__LEASE_SECS", "2")
        .env("GUILDOPS_JOBS__SWEEP_INTERVAL_MS", "200")
        .env("GUILDOPS_JOBS__DISCORD_REQUESTS_PER_SEC", "200")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn guildops");
    Daemon(child)
}

fn role_puts(world: &World) -> usize {
    world
        .discord
        .requests_matching("PUT", "/roles/")
        .iter()
        .filter(|r| r.status < 300)
        .count()
}

/// The process migrates first, so the table may not exist yet.
async fn provisioned(world: &World) -> bool {
    sqlx::query_scalar::<_, i64>("select count(*) from communities")
        .fetch_one(&world.pool)
        .await
        .is_ok_and(|n| n == 1)
}

#[tokio::test]
async fn kill_9_with_a_thousand_role_jobs_loses_nothing() {
    let world = World::new().await;
    let g = world.guild.clone();
    let roles: Vec<u64> = (0..10)
        .map(|n| world.discord.add_role(g.id, &format!("r{n}"), 0, 10))
        .collect();
    let users: Vec<u64> = (0..100)
        .map(|n| world.discord.add_user(&format!("k{n}")))
        .collect();
    for user in &users {
        world.discord.add_member(g.id, *user, &[]);
    }
    let daemon = spawn(&world);
    world.wait_for(|| async { provisioned(&world).await }).await;

    let mut tx = world.pool.begin().await.expect("tx");
    for user in &users {
        for role in &roles {
            let job = Job::AddRole {
                guild_id: GuildId::new(g.id),
                user_id: UserId::new(*user),
                role_id: RoleId::new(*role),
                reason: "crash test".into(),
            };
            outbox::enqueue(
                &mut tx,
                NewJob::new(None, format!("crash:{user}:{role}"), job),
            )
            .await
            .expect("enqueue");
        }
    }
    tx.commit().await.expect("commit");

    world.wait_for(|| async { role_puts(&world) >= 250 }).await;
    drop(daemon); // SIGKILL: no shutdown, leases left behind.
    let at_kill = role_puts(&world);
    assert!(
        at_kill < 1000,
        "the kill came before the queue drained ({at_kill})"
    );

    let _daemon = spawn(&world);
    world
        .wait_for(|| async {
            let done: i64 = sqlx::query_scalar("select count(*) from jobs where status = 'done'")
                .fetch_one(&world.pool)
                .await
                .expect("count");
            done == 1000
        })
        .await;
    for user in &users {
        let held = world.discord.member_roles(g.id, *user).expect("member");
        assert!(
            roles.iter().all(|r| held.contains(r)),
            "user {user} holds {held:?}"
        );
    }
    let duplicates = role_puts(&world) - 1000;
    println!(
        "kill -9: {at_kill} role requests before the kill, {duplicates} duplicated after restart"
    );
    assert!(
        duplicates <= WORKERS,
        "only in-flight jobs may repeat: {duplicates}"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}
