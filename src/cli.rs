//! The command line: `run` (default), `migrate`, `check-config`, `invite-url`,
//! `audit verify|export`.
//! Every failure becomes one line on stderr and a non-zero exit status.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{Config, DISCORD_TOKEN_VAR, Secrets};
use crate::daemon::Daemon;
use crate::db::Database;
use crate::discord::permissions;

#[derive(Debug, Parser)]
#[command(
    name = "guildops",
    version,
    about = "A community-operations bot for Discord"
)]
pub struct Cli {
    /// Configuration file (overridden by GUILDOPS_* environment variables)
    #[arg(long, short, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the daemon (the default)
    Run,
    /// Apply database migrations and exit
    Migrate,
    /// Validate the configuration and print it with secrets redacted
    CheckConfig,
    /// Print the OAuth2 URL that invites the bot with exactly the permissions it needs
    InviteUrl,
    /// Verify or export the tamper-evident audit log
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every hash chain (or one community's); fails if any is broken
    Verify {
        /// Only this community (its id)
        #[arg(long, value_name = "ID")]
        community: Option<uuid::Uuid>,
    },
    /// Write audit entries to stdout as JSON lines, in chain order
    Export {
        /// Only this community (its id)
        #[arg(long, value_name = "ID")]
        community: Option<uuid::Uuid>,
    },
}

const DEFAULT_CONFIG: &str = "config.toml";

impl Cli {
    /// Runs the chosen command with the given process environment.
    pub async fn execute(self, env: Vec<(String, String)>) -> anyhow::Result<()> {
        let explicit = self.config.is_some();
        let path = self.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let config = Config::load(Some(&path), explicit, &env)?;
        crate::telemetry::init_logging(&config.log);
        match self.command.unwrap_or(CliCommand::Run) {
            CliCommand::Run => run(config, Secrets::from_env(&env)?).await,
            CliCommand::Migrate => migrate(&config).await,
            CliCommand::CheckConfig => check_config(&config, &env),
            CliCommand::InviteUrl => invite_url(&config, &env),
            CliCommand::Audit(command) => audit(&config, command).await,
        }
    }
}

async fn run(config: Config, secrets: Secrets) -> anyhow::Result<()> {
    let daemon = Daemon::start(config, secrets).await?;
    let stopper = daemon.stopper();
    let signals = tokio::spawn(async move {
        shutdown_signal().await;
        stopper.cancel();
    });
    let result = daemon.wait().await;
    signals.abort();
    result
}

/// SIGTERM (orchestrators) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let database = Database::open(config).await?;
    let result = database.migrate().await;
    database.close().await?;
    result?;
    println!(
        "database is up to date ({} migrations)",
        crate::db::MIGRATOR.iter().count()
    );
    Ok(())
}

fn check_config(config: &Config, env: &[(String, String)]) -> anyhow::Result<()> {
    println!("{}", config.redacted_toml());
    let secrets = Secrets::from_env(env);
    let state = if secrets.is_ok() {
        "set (redacted)"
    } else {
        "MISSING"
    };
    println!("# secrets (environment only)\n# {DISCORD_TOKEN_VAR}: {state}");
    secrets?;
    Ok(())
}

fn invite_url(config: &Config, env: &[(String, String)]) -> anyhow::Result<()> {
    let from_token = Secrets::from_env(env)
        .ok()
        .and_then(|s| permissions::application_id_from_token(s.discord_token()));
    let id = config
        .discord
        .application_id
        .or(from_token)
        .context("set discord.application_id, or GUILDOPS_DISCORD_TOKEN to derive it")?;
    println!("{}", permissions::invite_url(id));
    Ok(())
}

async fn audit(config: &Config, command: AuditCommand) -> anyhow::Result<()> {
    let database = Database::open(config).await?;
    let result = run_audit(&database.pool, command).await;
    database.close().await?;
    result
}

async fn run_audit(pool: &sqlx::PgPool, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { community } => {
            let reports = match community {
                Some(id) => vec![crate::audit::verify(pool, id).await?],
                None => crate::audit::verify_all(pool).await?,
            };
            for report in &reports {
                println!("{report}");
            }
            let broken = reports.iter().filter(|r| !r.is_intact()).count();
            anyhow::ensure!(broken == 0, "{broken} audit chain(s) broken");
        }
        AuditCommand::Export { community } => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            crate::audit::export(pool, community, &mut out).await?;
            std::io::Write::flush(&mut out)?;
        }
    }
    Ok(())
}
