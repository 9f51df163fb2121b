//! The daemon's wiring, the one place that knows every runtime: the database, the
//! Discord client with the poise framework and `commands::all()`, and the HTTP side
//! server. [`Daemon::start`] fails fast with one clear error; [`Daemon::stop`] shuts
//! everything down in order (gateway, HTTP, database).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serenity::all::{ClientBuilder, GuildId};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::commands::{self, CommandError};
use crate::config::{Config, Secrets};
use crate::db::{Database, DbError};
use crate::discord::effects::Executor;
use crate::discord::{self, StartError};
use crate::jobs;
use crate::membership::{self, stripe::Stripe};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Discord(#[from] StartError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the Discord client: {0}")]
    Client(#[from] serenity::Error),
    #[error(transparent)]
    Stripe(crate::membership::stripe::ApiError),
}

/// A running daemon.
pub struct Daemon {
    pub http_addr: SocketAddr,
    pub app: App,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    pub async fn start(config: Config, secrets: Secrets) -> Result<Daemon, StartupError> {
        crate::telemetry::metrics();
        let database = Database::open(&config).await?;
        match Self::start_on(database, config, secrets).await {
            Ok(daemon) => Ok(daemon),
            Err((e, database)) => {
                if let Err(close) = database.close().await {
                    tracing::warn!(error = %close, "while closing the database after a failed start");
                }
                Err(e)
            }
        }
    }

    async fn start_on(
        database: Database,
        config: Config,
        secrets: Secrets,
    ) -> Result<Daemon, (StartupError, Database)> {
        if let Err(e) = database.migrate().await {
            return Err((e.into(), database));
        }
        let http = discord::http_client(&config.discord, secrets.discord_token());
        let base = config
            .discord
            .api_base
            .clone()
            .unwrap_or_else(|| "https://discord.com".into());
        let me = match discord::verify_token(&http, &base).await {
            Ok(me) => me,
            Err(e) => return Err((e.into(), database)),
        };
        let addr = config.http.bind;
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(source) => return Err((StartupError::Listen { addr, source }, database)),
        };
        let http_addr = listener.local_addr().unwrap_or(addr);
        let stripe = match Stripe::from_secrets(
            &config.stripe,
            secrets.stripe_secret_key.as_ref(),
            secrets.stripe_webhook_secret.as_ref(),
        ) {
            Ok(s) => s,
            Err(e) => return Err((StartupError::Stripe(e), database)),
        };
        if stripe.is_none() {
            tracing::info!("no Stripe secret key: paid tiers are off");
        } else if secrets.stripe_webhook_secret.is_none() {
            tracing::warn!(
                "GUILDOPS_STRIPE_WEBHOOK_SECRET is not set: /webhooks/stripe answers 404, so Stripe's events will not reach guildops"
            );
        }
        if stripe.is_some()
            && let Err(e) = membership::timers::schedule_cleanup(&database.pool).await
        {
            tracing::warn!(error = %e, "cannot schedule the Stripe event clean-up");
        }
        let jobs = job_runtime(&database, &config, &base, secrets.discord_token());
        let app = App::new(database.pool.clone(), config).with_stripe(stripe);
        let client = ClientBuilder::new_with_http(http, discord::intents())
            .framework(framework(app.clone()))
            .await;
        let client = match client {
            Ok(c) => c,
            Err(e) => return Err((e.into(), database)),
        };
        tracing::info!(bot.id = %me.id, bot.name = %me.name, %http_addr, "guildops started");
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            client,
            listener,
            app.clone(),
            database,
            jobs,
            stop.clone(),
        ));
        Ok(Daemon {
            http_addr,
            app,
            stop,
            task,
        })
    }

    /// Asks everything to stop and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.wait().await
    }

    /// Runs until stopped or until a part fails.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await?
    }

    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }
}

async fn run(
    mut client: serenity::Client,
    listener: TcpListener,
    app: App,
    database: Database,
    workers: Arc<jobs::Runtime>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let grace = Duration::from_secs(app.config.daemon.shutdown_grace_secs);
    let http_task = tokio::spawn(crate::http::serve(listener, app.clone(), stop.clone()));
    let jobs_task = tokio::spawn(jobs::run(workers, stop.clone()));
    let automod_task = tokio::spawn(crate::automod::follow_changes(
        app.pool.clone(),
        app.automod.clone(),
        stop.clone(),
    ));
    let sealer_task = tokio::spawn(crate::audit::seal::run(app.pool.clone(), stop.clone()));
    let shards = client.shard_manager.clone();
    let outcome = tokio::select! {
        result = client.start() => match result {
            Ok(()) => Err(anyhow::anyhow!("the Discord gateway connection ended")),
            Err(e) => Err(anyhow::anyhow!("the Discord gateway failed: {e}")),
        },
        () = stop.cancelled() => Ok(()),
    };
    tracing::info!("shutting down");
    stop.cancel();
    shards.shutdown_all().await;
    app.status.set_gateway_connected(false);
    match tokio::time::timeout(grace, http_task).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server ended with an error"),
        Err(_) => tracing::warn!("HTTP server did not finish in-flight requests in time"),
        _ => {}
    }
    // Workers release the jobs they hold on cancel; they need the pool, so they stop first.
    if tokio::time::timeout(grace, jobs_task).await.is_err() {
        tracing::warn!("job workers did not stop in time; their leases will expire");
    }
    let _ = automod_task.await;
    let _ = sealer_task.await;
    database.close().await?;
    tracing::info!("stopped");
    outcome
}

/// The outbox workers, applying jobs to Discord at `base`.
fn job_runtime(
    database: &Database,
    config: &Config,
    base: &str,
    token: &str,
) -> Arc<jobs::Runtime> {
    let executor = Executor::new(base, token, config.jobs.discord_requests_per_sec);
    jobs::Runtime::new(
        &database.pool,
        Arc::new(executor),
        scheduled_handlers(config),
        config.jobs.clone(),
    )
}

/// Each domain's scheduled work, by the name its jobs are enqueued under. The one
/// place that knows both the job runtime and the domains.
pub fn scheduled_handlers(config: &Config) -> jobs::scheduled::Handlers {
    use jobs::scheduled::{Context, HandlerError};
    fn failed(e: membership::Error) -> HandlerError {
        if e.is_user_error() {
            HandlerError::Permanent(e.to_string())
        } else {
            HandlerError::Temporary(e.to_string())
        }
    }
    fn moderation_failed(e: crate::moderation::Error) -> HandlerError {
        if e.is_user_error() {
            HandlerError::Permanent(e.to_string())
        } else {
            HandlerError::Temporary(e.to_string())
        }
    }
    fn events_failed(e: crate::events::Error) -> HandlerError {
        if e.is_user_error() {
            HandlerError::Permanent(e.to_string())
        } else {
            HandlerError::Temporary(e.to_string())
        }
    }
    fn community(ctx: &Context) -> Result<uuid::Uuid, HandlerError> {
        ctx.community_id
            .ok_or_else(|| HandlerError::Permanent("a community job without a community".into()))
    }
    let every = chrono::Duration::seconds(
        i64::try_from(config.stripe.reconcile_interval_secs).unwrap_or(3600),
    );
    let retention = config.stripe.event_retention_days;
    let mut handlers = jobs::scheduled::Handlers::new();
    handlers
        .register(membership::RECHECK_JOB, |ctx: Context| async move {
            let c = community(&ctx)?;
            membership::timers::recheck(&ctx.pool, c, &ctx.data)
                .await
                .map_err(failed)
        })
        .register(membership::RECONCILE_JOB, move |ctx: Context| async move {
            let c = community(&ctx)?;
            membership::timers::reconcile(&ctx.pool, c, every)
                .await
                .map(drop)
                .map_err(failed)
        })
        .register(crate::moderation::EXPIRE_JOB, |ctx: Context| async move {
            let c = community(&ctx)?;
            crate::moderation::expire(&ctx.pool, c, &ctx.data)
                .await
                .map_err(moderation_failed)
        })
        .register(
            crate::moderation::DM_UNDELIVERABLE_JOB,
            |ctx: Context| async move {
                let c = community(&ctx)?;
                crate::moderation::dm_undeliverable(&ctx.pool, c, &ctx.data)
                    .await
                    .map_err(moderation_failed)
            },
        )
        .register(
            crate::moderation::RENEW_TIMEOUT_JOB,
            |ctx: Context| async move {
                let c = community(&ctx)?;
                crate::moderation::renew_timeout(&ctx.pool, c, &ctx.data)
                    .await
                    .map_err(moderation_failed)
            },
        )
        .register(crate::events::REMIND_JOB, |ctx: Context| async move {
            let c = community(&ctx)?;
            crate::events::remind(&ctx.pool, c, &ctx.data)
                .await
                .map_err(events_failed)
        })
        .register(crate::events::POSTED_JOB, |ctx: Context| async move {
            let c = community(&ctx)?;
            crate::events::posted(&ctx.pool, c, &ctx.data)
                .await
                .map_err(events_failed)
        })
        .register(crate::events::RELEASE_JOB, |ctx: Context| async move {
            let c = community(&ctx)?;
            crate::events::release(&ctx.pool, c, &ctx.data)
                .await
                .map_err(events_failed)
        })
        .register(crate::events::CANCELLED_JOB, |ctx: Context| async move {
            let c = community(&ctx)?;
            crate::events::notify_cancelled(&ctx.pool, c, &ctx.data)
                .await
                .map_err(events_failed)
        })
        .register(
            membership::EVENTS_CLEANUP_JOB,
            move |ctx: Context| async move {
                membership::timers::cleanup_events(&ctx.pool, retention)
                    .await
                    .map(drop)
                    .map_err(failed)
            },
        );
    handlers
}

fn framework(app: App) -> poise::Framework<App, CommandError> {
    let options = poise::FrameworkOptions {
        commands: commands::all(),
        on_error: |error| Box::pin(commands::error::on_error(error)),
        pre_command: |ctx| Box::pin(async move { ctx.set_invocation_data(Instant::now()).await }),
        post_command: |ctx| Box::pin(record_success(ctx)),
        event_handler: |ctx, event| {
            Box::pin(async move {
                discord::events::handle(ctx.serenity_context, ctx.user_data, event).await;
                Ok(())
            })
        },
        initialize_owners: false,
        ..Default::default()
    };
    poise::Framework::builder()
        .options(options)
        .setup(move |ctx, _ready, framework| {
            Box::pin(async move {
                register_commands(
                    ctx,
                    &framework.options().commands,
                    app.config.discord.dev_guild_id,
                )
                .await;
                Ok(app)
            })
        })
        .build()
}

/// Bulk overwrite: the registered set always equals `commands::all()`. A failure is
/// logged, not fatal: the previous registration keeps working.
async fn register_commands(
    ctx: &serenity::all::Context,
    commands: &[commands::Command],
    dev_guild: Option<u64>,
) {
    let result = match dev_guild {
        Some(guild) => poise::builtins::register_in_guild(ctx, commands, GuildId::new(guild)).await,
        None => poise::builtins::register_globally(ctx, commands).await,
    };
    match result {
        Ok(()) => tracing::info!(
            count = commands.len(),
            guild = dev_guild,
            "slash commands registered"
        ),
        Err(e) => tracing::error!(error = %e, "slash command registration failed"),
    }
}

async fn record_success(ctx: commands::Context<'_>) {
    let command = ctx.command().qualified_name.clone();
    if let Some(started) = ctx.invocation_data::<Instant>().await {
        metrics::histogram!("guildops_command_duration_seconds", "command" => command.clone())
            .record(started.elapsed().as_secs_f64());
    }
    metrics::counter!("guildops_commands_total", "command" => command, "outcome" => "ok")
        .increment(1);
}
