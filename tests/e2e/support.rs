//! Shared test plumbing: a fresh PostgreSQL database per test, a fake Discord with one
//! guild, and a guildops daemon configured explicitly against both (never from the
//! process environment).

use std::path::PathBuf;
use std::time::Duration;

use guildops::Daemon;
use guildops::config::{Config, Secrets};
use guildops_harness::{FakeDiscord, FakeGuild, Reply};
use secrecy::SecretString;
use sqlx::{Connection, PgConnection, PgPool};

pub const WAIT: Duration = Duration::from_secs(20);

/// The server tests create their databases on. `.ci/run` makes sure one is reachable.
pub fn admin_url() -> String {
    std::env::var("GUILDOPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new, empty database; the URL to reach it.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("tests need PostgreSQL at {admin} (set GUILDOPS_TEST_DATABASE_URL, or run .ci/run, which starts one): {e}")
    });
    let name = format!("guildops_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = admin
        .rsplit_once('/')
        .expect("admin url has a database part");
    format!("{base}/{name}")
}

pub async fn pool(url: &str) -> PgPool {
    PgPool::connect(url)
        .await
        .expect("connect to test database")
}

pub fn config(database_url: &str, discord: &FakeDiscord, data_dir: PathBuf) -> Config {
    let mut config = Config::default();
    config.database.url = Some(database_url.to_owned());
    config.database.max_connections = 5;
    config.discord.api_base = Some(discord.base_url());
    config.http.bind = "127.0.0.1:0".parse().expect("addr");
    config.daemon.data_dir = data_dir;
    config.daemon.shutdown_grace_secs = 5;
    config
}

pub fn secrets(discord: &FakeDiscord) -> Secrets {
    Secrets {
        discord_token: SecretString::from(discord.token().to_owned()),
        stripe_secret_key: None,
        stripe_webhook_secret: None,
    }
}

/// Everything one end-to-end test needs.
pub struct World {
    pub discord: FakeDiscord,
    pub guild: FakeGuild,
    pub database_url: String,
    pub pool: PgPool,
    pub data_dir: tempfile::TempDir,
}

impl World {
    pub async fn new() -> World {
        let discord = FakeDiscord::start().await;
        let guild = discord.add_guild("Rust Meetup Berlin");
        let database_url = fresh_database().await;
        let pool = pool(&database_url).await;
        let data_dir = tempfile::tempdir().expect("tempdir");
        World {
            discord,
            guild,
            database_url,
            pool,
            data_dir,
        }
    }

    pub fn config(&self) -> Config {
        config(
            &self.database_url,
            &self.discord,
            self.data_dir.path().to_path_buf(),
        )
    }

    /// Starts a daemon and waits until it has connected and provisioned the guild.
    pub async fn start_daemon(&self) -> Daemon {
        self.start_daemon_with(self.config()).await
    }

    /// [`World::start_daemon`] with a configuration the test adjusted.
    pub async fn start_daemon_with(&self, config: Config) -> Daemon {
        self.start_daemon_with_secrets(config, secrets(&self.discord))
            .await
    }

    /// [`World::start_daemon_with`] with other secrets (Stripe's, say).
    pub async fn start_daemon_with_secrets(&self, config: Config, secrets: Secrets) -> Daemon {
        let daemon = Daemon::start(config, secrets).await.expect("daemon starts");
        assert!(
            self.discord.wait_until_connected(WAIT).await,
            "daemon never connected to the fake gateway"
        );
        self.wait_for(|| async { self.community_count().await == 1 })
            .await;
        daemon
    }

    pub async fn community_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from communities")
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    /// Polls a condition until it holds (the daemon acts asynchronously).
    pub async fn wait_for<F, Fut>(&self, condition: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !condition().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not reached within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the daemon has registered its commands (after READY).
    pub async fn wait_for_commands(&self) {
        let discord = self.discord.clone();
        self.wait_for(|| {
            let discord = discord.clone();
            async move { !discord.registered_commands(None).is_empty() }
        })
        .await;
    }
}

pub fn text(reply: &Option<Reply>) -> String {
    let reply = reply.as_ref().expect("the bot replied");
    let mut out = reply.content.clone().unwrap_or_default();
    for embed in &reply.embeds {
        out.push_str(&embed.to_string());
    }
    out
}

/// A pool that connects the way the daemon does: as the tenant role, under row-level
/// security. (The superuser [`pool`] bypasses it and is for inspecting state.)
pub async fn app_pool(url: &str) -> PgPool {
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("database url");
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(guildops::db::tenant::app_role(options))
        .await
        .expect("connect as the tenant role")
}

/// A fresh database with every migration applied (as its owner).
pub async fn migrated_database() -> String {
    let url = fresh_database().await;
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("database url");
    guildops::db::migrate(&options).await.expect("migrate");
    url
}

/// The daemon's secrets with Stripe configured (the fake's key and the test secret).
pub fn stripe_secrets(discord: &FakeDiscord) -> Secrets {
    Secrets {
        stripe_secret_key: Some(SecretString::from(
            guildops_harness::stripe::SECRET_KEY.to_owned(),
        )),
        stripe_webhook_secret: Some(SecretString::from(
            guildops_harness::stripe::WEBHOOK_SECRET.to_owned(),
        )),
        ..secrets(discord)
    }
}

/// POSTs a webhook body with the given `Stripe-Signature` (none when `None`).
pub async fn post_webhook(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    body: &str,
    signature: Option<&str>,
) -> (u16, String) {
    let mut request = client
        .post(format!("http://{addr}/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(sig) = signature {
        request = request.header("stripe-signature", sig);
    }
    let response = request.send().await.expect("webhook request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Signs `event` with the test secret now and POSTs it.
pub async fn deliver(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    event: &serde_json::Value,
) -> (u16, String) {
    let body = event.to_string();
    let sig = guildops_harness::stripe::sign(
        &body,
        guildops_harness::stripe::WEBHOOK_SECRET,
        guildops_harness::stripe::now(),
    );
    post_webhook(client, addr, &body, Some(&sig)).await
}
