//! The database: one connection pool to PostgreSQL (an external server from
//! `database.url`, or the embedded default cluster), and the embedded migrations.

pub mod embedded;
pub mod tenant;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::config::Config;
use embedded::{EmbeddedError, EmbeddedPostgres};

/// Every migration under `migrations/`, compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const EMBEDDED_DATABASE: &str = "guildops";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database.url: {0}")]
    BadUrl(String),
    #[error("cannot connect to the database at {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The pool plus, when embedded, the cluster it must stop on shutdown.
pub struct Database {
    /// Runs as the tenant role: see [`tenant`].
    pub pool: PgPool,
    /// As configured, without the tenant role: for migrations only.
    owner_options: PgConnectOptions,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects (starting the embedded cluster first when no URL is configured).
    pub async fn open(config: &Config) -> Result<Database, DbError> {
        let db = &config.database;
        let (options, embedded) = match &db.url {
            Some(url) => (
                url.parse::<PgConnectOptions>()
                    .map_err(|e| DbError::BadUrl(e.to_string()))?,
                None,
            ),
            None => {
                let pg = EmbeddedPostgres::start(
                    &config.daemon.data_dir,
                    db.postgres_bin_dir.as_deref(),
                )
                .await?;
                ensure_database(&pg, db.connect_timeout_secs).await?;
                (pg.connect_options(EMBEDDED_DATABASE), Some(pg))
            }
        };
        let target = describe(&options);
        // One direct connection first: it fails fast with the real reason (refused,
        // unknown host, bad password) where a pool would only say "timed out".
        if let Err(e) = probe(&options, db.connect_timeout_secs).await {
            if let Some(pg) = embedded {
                let _ = pg.stop().await;
            }
            return Err(DbError::Unreachable { target, reason: e });
        }
        let options = options.log_statements(tracing::log::LevelFilter::Trace);
        let pool = app_pool(
            options.clone(),
            db.max_connections,
            Duration::from_secs(db.connect_timeout_secs),
        );
        Ok(Database {
            pool,
            owner_options: options,
            embedded,
        })
    }

    /// Applies pending migrations over a connection of its own, as the configured
    /// user: the pool's tenant role may not create or alter anything.
    pub async fn migrate(&self) -> Result<(), DbError> {
        migrate(&self.owner_options).await
    }

    /// Closes the pool, then stops the embedded cluster if we run one.
    pub async fn close(self) -> Result<(), DbError> {
        self.pool.close().await;
        if let Some(pg) = self.embedded {
            pg.stop().await?;
        }
        Ok(())
    }
}

/// Applies pending migrations as the user `options` names (who will own the tables).
pub async fn migrate(options: &PgConnectOptions) -> Result<(), DbError> {
    let mut conn = options.connect().await.map_err(|e| DbError::Unreachable {
        target: describe(options),
        reason: short_reason(&e),
    })?;
    MIGRATOR.run(&mut conn).await?;
    let _ = conn.close().await;
    Ok(())
}

/// Whether the database answers a trivial query now.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query_scalar::<_, i32>("select 1")
        .fetch_one(pool)
        .await
        .is_ok()
}

/// The embedded cluster starts with only the `postgres` database; ours is made once.
async fn ensure_database(pg: &EmbeddedPostgres, timeout_secs: u64) -> Result<(), DbError> {
    let options = pg.connect_options("postgres");
    let target = describe(&options);
    let unreachable = |e: sqlx::Error| DbError::Unreachable {
        target: target.clone(),
        reason: short_reason(&e),
    };
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(timeout_secs))
        .connect_with(options)
        .await
        .map_err(unreachable)?;
    let exists: bool =
        sqlx::query_scalar("select exists(select 1 from pg_database where datname = $1)")
            .bind(EMBEDDED_DATABASE)
            .fetch_one(&pool)
            .await
            .map_err(unreachable)?;
    if !exists {
        sqlx::query("create database guildops")
            .execute(&pool)
            .await
            .map_err(unreachable)?;
    }
    pool.close().await;
    Ok(())
}

/// The daemon's pool: connections as the tenant role, opened when first needed.
pub fn app_pool(
    options: PgConnectOptions,
    max_connections: u32,
    acquire_timeout: Duration,
) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
        .connect_lazy_with(tenant::app_role(options))
}

/// A connection idle for this long is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The pool's liveness check, only for connections that sat idle: a ping on every
/// acquire was one round trip more on every request (a third of a door refusal's),
/// while a connection in steady use has just proved itself. One that broke in between
/// fails its statement, and the caller's error path handles it as any other failure.
async fn ping_if_idle(
    conn: &mut sqlx::PgConnection,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for >= PING_AFTER_IDLE {
        conn.ping().await?;
    }
    Ok(true)
}

async fn probe(options: &PgConnectOptions, timeout_secs: u64) -> Result<(), String> {
    let attempt = tokio::time::timeout(Duration::from_secs(timeout_secs), options.connect()).await;
    match attempt {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(short_reason(&e)),
        Err(_) => Err(format!("no answer within {timeout_secs}s")),
    }
}

/// Where we connect, without credentials.
fn describe(options: &PgConnectOptions) -> String {
    let db = options.get_database().unwrap_or("(default)");
    match options.get_socket() {
        Some(dir) => format!("unix socket {} database {db}", dir.display()),
        None => format!(
            "{}:{} database {db}",
            options.get_host(),
            options.get_port()
        ),
    }
}

fn short_reason(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::PoolTimedOut => "timed out".into(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}
