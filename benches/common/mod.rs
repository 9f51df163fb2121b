//! What the benchmarks share: a fresh migrated database reached the way the daemon
//! reaches it (as the tenant role), seeded through an owner connection, and dropped
//! at the end so runs leave nothing behind.

use std::time::Duration;

use serenity::all::GuildId;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

pub struct BenchDb {
    /// The migrating owner: bypasses nothing the benchmark measures, only seeds.
    pub owner: PgPool,
    /// As the daemon connects: tenant role, row-level security in force.
    pub app: PgPool,
    name: String,
}

fn admin_url() -> String {
    std::env::var("GUILDOPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn admin() -> PgConnection {
    let url = admin_url();
    PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("benchmarks need PostgreSQL at {url}: {e}"))
}

impl BenchDb {
    pub async fn create(max_connections: u32) -> BenchDb {
        let name = format!("guildops_bench_{}", Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut admin().await)
            .await
            .expect("create bench database");
        let url = admin_url();
        let (base, _) = url.rsplit_once('/').expect("database in url");
        let options: PgConnectOptions = format!("{base}/{name}").parse().expect("url");
        guildops::db::migrate(&options).await.expect("migrate");
        let owner = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options.clone())
            .await
            .expect("owner pool");
        // The daemon's own pool, with its liveness checks.
        let app = guildops::db::app_pool(options, max_connections, Duration::from_secs(10));
        BenchDb { owner, app, name }
    }

    /// A community with its settings row, as provisioning leaves it, and its guild.
    pub async fn community(&self) -> (Uuid, GuildId) {
        let id = Uuid::now_v7();
        let guild = GuildId::new(id.as_u128() as u64 >> 2);
        sqlx::query(
            "insert into communities (id, slug, name, discord_guild_id, owner_discord_id)
             values ($1, $2, 'Bench', $3, 1)",
        )
        .bind(id)
        .bind(format!("bench-{}", id.simple()))
        .bind(guild.get() as i64)
        .execute(&self.owner)
        .await
        .expect("community");
        sqlx::query("insert into community_settings (community_id) values ($1)")
            .bind(id)
            .execute(&self.owner)
            .await
            .expect("settings");
        (id, guild)
    }

    pub async fn drop(self) {
        self.app.close().await;
        self.owner.close().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "drop database if exists {} with (force)",
            self.name
        )))
        .execute(&mut admin().await)
        .await
        .expect("drop bench database");
    }
}
