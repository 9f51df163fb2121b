//! Typed configuration, layered: built-in defaults → `config.toml` → `GUILDOPS_*`
//! environment variables (`__` separates nesting: `GUILDOPS_HTTP__BIND`).
//!
//! Secrets never come from the file: they are read from their own environment
//! variables into [`Secrets`], whose `Debug` redacts them. Every section denies
//! unknown keys so a typo stops start-up with the key's name instead of being ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Environment variable holding the Discord bot token.
pub const DISCORD_TOKEN_VAR: &str = "GUILDOPS_DISCORD_TOKEN";
/// Environment variable holding the Stripe secret API key (optional: no key, no sales).
pub const STRIPE_SECRET_KEY_VAR: &str = "GUILDOPS_STRIPE_SECRET_KEY";
/// Environment variable holding the Stripe webhook endpoint's signing secret(s),
/// comma-separated while a rotation is under way.
pub const STRIPE_WEBHOOK_SECRET_VAR: &str = "GUILDOPS_STRIPE_WEBHOOK_SECRET";
/// Prefix of environment overrides for non-secret settings.
pub const ENV_PREFIX: &str = "GUILDOPS_";
/// Environment variables that are secrets, so they are never merged into [`Config`].
const SECRET_VARS: &[&str] = &[
    DISCORD_TOKEN_VAR,
    STRIPE_SECRET_KEY_VAR,
    STRIPE_WEBHOOK_SECRET_VAR,
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub database: DatabaseConfig,
    pub discord: DiscordConfig,
    pub http: HttpConfig,
    pub jobs: JobsConfig,
    pub log: LogConfig,
    pub stripe: StripeConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Where the daemon keeps its state (the embedded PostgreSQL cluster lives here).
    pub data_dir: PathBuf,
    /// How long shutdown waits for in-flight work before giving up.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// External PostgreSQL URL. Empty means: run the embedded cluster in `data_dir`.
    pub url: Option<String>,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    /// Directory holding `initdb`/`pg_ctl` for the embedded cluster; searched for when empty.
    pub postgres_bin_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct DiscordConfig {
    /// A Discord-compatible REST base (a rate-limit proxy, or the tests' fake Discord).
    /// Setting it turns serenity's own rate limiter off (serenity ignores a proxy
    /// while its limiter is on), so our own code must honour rate limits.
    pub api_base: Option<String>,
    /// Register commands in this guild only (instant updates while developing).
    pub dev_guild_id: Option<u64>,
    /// The application id; derived from the token when absent.
    pub application_id: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub bind: SocketAddr,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
}

/// The outbox workers (`crate::jobs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Concurrent workers in this process (every process may run some).
    pub workers: usize,
    /// Seconds a claimed job stays leased; renewed while it runs, reclaimed after.
    pub lease_secs: u64,
    /// How often expired leases are reclaimed and due scheduled jobs looked for.
    pub sweep_interval_ms: u64,
    /// Attempts on temporary errors before a job is declared dead.
    pub max_attempts: i32,
    /// Finished jobs are deleted after this many days.
    pub done_retention_days: u32,
    /// Failed and dead jobs are deleted after this many days unless retried.
    pub failed_retention_days: u32,
    /// Cap on Discord REST requests per second from this process (Discord allows 50).
    pub discord_requests_per_sec: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            lease_secs: 30,
            sweep_interval_ms: 5000,
            max_attempts: 10,
            done_retention_days: 7,
            failed_retention_days: 30,
            discord_requests_per_sec: 50,
        }
    }
}

/// Paid tiers through Stripe (`crate::membership`). The keys are secrets and come from
/// the environment only; without a secret key the tier commands say payments are off.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StripeConfig {
    /// A Stripe-compatible API base instead of https://api.stripe.com (the tests' fake).
    pub api_base: Option<String>,
    /// Where Checkout sends a member after paying.
    pub success_url: String,
    /// Where Checkout sends a member who gave up.
    pub cancel_url: String,
    /// Where the billing portal's "return" link goes.
    pub portal_return_url: String,
    /// Seconds between drift repairs (intended vs actual Discord roles) per community.
    pub reconcile_interval_secs: u64,
    /// Days raw webhook events are kept for debugging.
    pub event_retention_days: u32,
}

impl Default for StripeConfig {
    fn default() -> Self {
        Self {
            api_base: None,
            success_url: "https://discord.com/channels/@me".into(),
            cancel_url: "https://discord.com/channels/@me".into(),
            portal_return_url: "https://discord.com/channels/@me".into(),
            reconcile_interval_secs: 3600,
            event_retention_days: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter directives, e.g. `info,guildops=debug`.
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            shutdown_grace_secs: 20,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            connect_timeout_secs: 10,
            postgres_bin_dir: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 64 * 1024,
            request_timeout_secs: 10,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Pretty,
        }
    }
}

/// Secrets, read only from the environment.
#[derive(Clone)]
pub struct Secrets {
    pub discord_token: SecretString,
    /// Stripe's secret API key; `None` means payments are not configured.
    pub stripe_secret_key: Option<SecretString>,
    /// The webhook endpoint's signing secret(s), comma-separated during a rotation.
    pub stripe_webhook_secret: Option<SecretString>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("Secrets")
            .field("discord_token", &"[redacted]")
            .field("stripe_secret_key", &shown(&self.stripe_secret_key))
            .field("stripe_webhook_secret", &shown(&self.stripe_webhook_secret))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0}")]
    Invalid(String),
    #[error("cannot read configuration file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "missing secret {0}: set it in the environment (secrets are never read from config.toml)"
    )]
    MissingSecret(&'static str),
}

impl Config {
    /// Loads defaults, then `file` (if it exists, or fails if it was named explicitly),
    /// then the `GUILDOPS_*` pairs in `env`. The environment is passed in, never read
    /// here, so tests stay independent of the process environment.
    pub fn load(
        file: Option<&Path>,
        file_required: bool,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if path.exists() {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
                        path: path.into(),
                        source,
                    })?;
                figment = figment.merge(Toml::string(&text));
            } else if file_required {
                let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
                return Err(ConfigError::Unreadable {
                    path: path.into(),
                    source,
                });
            }
        }
        figment = figment.merge(Serialized::defaults(env_overrides(env)));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(one_line(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML document on top of the defaults (used by tests and `check-config`).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let figment =
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(one_line(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(base) = &self.discord.api_base
            && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "discord.api_base must start with http:// or https://, got {base:?}"
            )));
        }
        if let Some(url) = &self.database.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "database.url must be a postgres:// URL (leave it unset for the embedded database)"
                    .into(),
            ));
        }
        if let Some(base) = &self.stripe.api_base
            && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "stripe.api_base must start with http:// or https://, got {base:?}"
            )));
        }
        if self.stripe.reconcile_interval_secs < 60 {
            return Err(ConfigError::Invalid(
                "stripe.reconcile_interval_secs must be at least 60".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "database.max_connections must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML with every secret redacted.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = shown.database.url.as_deref().map(redact_url_password);
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

impl Secrets {
    pub fn from_env(env: &[(String, String)]) -> Result<Secrets, ConfigError> {
        let token = lookup(env, DISCORD_TOKEN_VAR)
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::MissingSecret(DISCORD_TOKEN_VAR))?;
        let optional = |name| {
            lookup(env, name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(SecretString::from)
        };
        Ok(Secrets {
            discord_token: SecretString::from(token.trim().to_owned()),
            stripe_secret_key: optional(STRIPE_SECRET_KEY_VAR),
            stripe_webhook_secret: optional(STRIPE_WEBHOOK_SECRET_VAR),
        })
    }

    pub fn discord_token(&self) -> &str {
        self.discord_token.expose_secret()
    }
}

fn lookup(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// Turns `GUILDOPS_HTTP__BIND=…` into `{http: {bind: …}}`, skipping secrets.
fn env_overrides(env: &[(String, String)]) -> Dict {
    let mut dict = Dict::new();
    for (key, raw) in env {
        let Some(rest) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if SECRET_VARS.contains(&key.as_str()) || rest.is_empty() {
            continue;
        }
        let path = rest.to_ascii_lowercase().replace("__", ".");
        let value: Value = raw.parse().unwrap_or_else(|never| match never {});
        if let Some(nested) = figment::util::nest(&path, value).into_dict() {
            dict = merge_dicts(dict, nested);
        }
    }
    dict
}

fn merge_dicts(mut into: Dict, from: Dict) -> Dict {
    for (k, v) in from {
        let merged = match (into.remove(&k), v) {
            (Some(Value::Dict(_, a)), Value::Dict(tag, b)) => Value::Dict(tag, merge_dicts(a, b)),
            (_, v) => v,
        };
        into.insert(k, merged);
    }
    into
}

/// figment errors can span lines (one per nested error); start-up prints one line.
fn one_line(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.into();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}"),
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_overrides_nested_keys_with_typed_values() {
        let config = Config::load(
            None,
            false,
            &env(&[
                ("GUILDOPS_HTTP__BIND", "127.0.0.1:9999"),
                ("GUILDOPS_DATABASE__MAX_CONNECTIONS", "3"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.http.bind.port(), 9999);
        assert_eq!(config.database.max_connections, 3);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[discord]\napi_bse = \"http://x\"\n").expect_err("typo");
        assert!(err.to_string().contains("api_bse"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = Config::from_toml("[database]\nmax_connections = \"many\"\n").expect_err("type");
        assert!(err.to_string().contains("max_connections"), "{err}");
    }

    #[test]
    fn token_in_file_is_refused() {
        let err = Config::from_toml("[discord]\ntoken = \"abc\"\n").expect_err("secret in file");
        assert!(err.to_string().contains("token"), "{err}");
    }

    #[test]
    fn secret_env_var_is_not_a_config_key_and_missing_secret_is_named() {
        let pairs = env(&[(DISCORD_TOKEN_VAR, "sekrit")]);
        assert!(Config::load(None, false, &pairs).is_ok());
        let err = Secrets::from_env(&[]).expect_err("missing");
        assert!(err.to_string().contains(DISCORD_TOKEN_VAR));
        let secrets = Secrets::from_env(&pairs).expect("present");
        assert!(!format!("{secrets:?}").contains("sekrit"));
        assert!(secrets.stripe_secret_key.is_none(), "stripe is optional");
    }

    #[test]
    fn stripe_secrets_come_from_the_environment_and_are_redacted() {
        let pairs = env(&[
            (DISCORD_TOKEN_VAR, "t"),
            (STRIPE_SECRET_KEY_VAR, "sk_test_hush"),
            (STRIPE_WEBHOOK_SECRET_VAR, "whsec_hush"),
        ]);
        assert!(Config::load(None, false, &pairs).is_ok(), "not config keys");
        let secrets = Secrets::from_env(&pairs).expect("present");
        assert!(secrets.stripe_secret_key.is_some() && secrets.stripe_webhook_secret.is_some());
        assert!(!format!("{secrets:?}").contains("hush"));
        let err = Config::from_toml("[stripe]\nsecret_key = \"sk\"\n").expect_err("secret in file");
        assert!(err.to_string().contains("secret_key"), "{err}");
    }

    #[test]
    fn shipped_config_file_parses_and_matches_the_defaults() {
        let shipped =
            Config::from_toml(include_str!("../config.toml")).expect("config.toml is valid");
        assert_eq!(
            shipped,
            Config::default(),
            "config.toml documents the defaults"
        );
    }

    #[test]
    fn redaction_hides_database_password() {
        let config = Config::from_toml("[database]\nurl = \"postgres://app:hunter2@db:5432/x\"\n")
            .expect("valid");
        let shown = config.redacted_toml();
        assert!(
            !shown.contains("hunter2") && shown.contains("[redacted]"),
            "{shown}"
        );
    }
}
