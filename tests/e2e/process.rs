//! The real binary as a process: the embedded database default with SIGTERM, and
//! bad start-up input that must end in one clear line and a non-zero exit.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use guildops_harness::FakeDiscord;

use crate::support::WAIT;

const BIN: &str = env!("CARGO_BIN_EXE_guildops");

/// The binary with a clean environment: only what the test sets, so nothing from the
/// developer's shell (a GUILDOPS_* override) leaks in.
fn guildops(cwd: &Path, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .current_dir(cwd)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The one line the operator reads, and a check that nothing else claims to be an error.
fn error_line(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure exit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("guildops: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "exactly one error line, got:\n{stderr}");
    lines[0].to_owned()
}

async fn run_to_exit(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run guildops"))
        .await
        .expect("join")
}

#[tokio::test]
async fn missing_token_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_to_exit(guildops(dir.path(), &[])).await;
    let line = error_line(&out);
    assert!(line.contains("GUILDOPS_DISCORD_TOKEN"), "{line}");
}

#[tokio::test]
async fn unknown_config_key_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.toml"),
        "[discord]\napi_bsae = \"http://127.0.0.1:1\"\n",
    )
    .expect("write");
    let out = run_to_exit(guildops(
        dir.path(),
        &[("GUILDOPS_DISCORD_TOKEN", "t".into())],
    ))
    .await;
    let line = error_line(&out);
    assert!(line.contains("api_bsae"), "{line}");
}

#[tokio::test]
async fn unreachable_database_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("postgres://guildops@127.0.0.1:{}/guildops", free_port());
    let env = [
        ("GUILDOPS_DISCORD_TOKEN", "t".to_owned()),
        ("GUILDOPS_DATABASE__URL", url),
        ("GUILDOPS_DATABASE__CONNECT_TIMEOUT_SECS", "3".to_owned()),
    ];
    let out = run_to_exit(guildops(dir.path(), &env)).await;
    let line = error_line(&out);
    assert!(
        line.contains("cannot connect to the database at 127.0.0.1"),
        "{line}"
    );
}

#[tokio::test]
async fn token_rejected_by_discord_is_one_clear_line_without_the_token() {
    let discord = FakeDiscord::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = crate::support::fresh_database().await;
    let env = [
        ("GUILDOPS_DISCORD_TOKEN", "wrong-token-sekrit".to_owned()),
        ("GUILDOPS_DATABASE__URL", url),
        ("GUILDOPS_DISCORD__API_BASE", discord.base_url()),
        ("GUILDOPS_HTTP__BIND", "127.0.0.1:0".to_owned()),
    ];
    let out = run_to_exit(guildops(dir.path(), &env)).await;
    let line = error_line(&out);
    assert!(line.contains("rejected the bot token"), "{line}");
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !everything.contains("sekrit"),
        "the token leaked into the output"
    );
    assert!(
        !discord.gateway_stats().connected,
        "no gateway connection with a rejected token"
    );
}

/// A daemon process that a failing test must not leave running.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }
}

/// Everything PostgreSQL runs from this data directory, by command line.
fn postgres_processes(data_dir: &Path) -> Vec<String> {
    let needle = data_dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("postgres") && cmdline.contains(&needle) {
            found.push(cmdline);
        }
    }
    found
}

#[tokio::test]
async fn embedded_database_serves_the_guild_and_sigterm_exits_clean() {
    let discord = FakeDiscord::start().await;
    let guild = discord.add_guild("Embedded Default Club");
    let dir = tempfile::tempdir().expect("tempdir");
    // PostgreSQL runs as the unprivileged `postgres` user when tests run as root; it
    // must be able to pass through the temporary directory to reach its data.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let data_dir = dir.path().join("data");
    let port = free_port();
    let env = [
        ("GUILDOPS_DISCORD_TOKEN", discord.token().to_owned()),
        ("GUILDOPS_DISCORD__API_BASE", discord.base_url()),
        ("GUILDOPS_HTTP__BIND", format!("127.0.0.1:{port}")),
        ("GUILDOPS_DAEMON__DATA_DIR", data_dir.display().to_string()),
    ];
    let mut child = KillOnDrop(Some(
        guildops(dir.path(), &env)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    ));

    assert!(
        discord.wait_until_connected(Duration::from_secs(90)).await,
        "daemon never connected"
    );
    let client = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let deadline = tokio::time::Instant::now() + WAIT;
    while client
        .get(&ready)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // GUILD_CREATE and the first interaction are handled concurrently, so the first
    // answer may still be "not connected yet"; ask until the community is there.
    let mut shown = String::new();
    while !shown.contains("Embedded Default Club") {
        assert!(
            tokio::time::Instant::now() < deadline + WAIT,
            "never answered with the community: {shown}"
        );
        let about = guildops_harness::Command::new("about");
        let reply = discord
            .run_command(guild.id, guild.general_channel, guild.owner_id, about)
            .reply(WAIT)
            .await;
        shown = crate::support::text(&reply);
    }
    assert!(
        !postgres_processes(&data_dir).is_empty(),
        "the embedded cluster runs from the data dir"
    );

    let child = child.0.take().expect("still running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SIGTERM exits 0, got {}:\n{stderr}",
        output.status
    );
    assert!(
        postgres_processes(&data_dir).is_empty(),
        "PostgreSQL left behind: {:?}",
        postgres_processes(&data_dir)
    );
    assert!(
        !data_dir.join("postgres/postmaster.pid").exists(),
        "the cluster was not shut down cleanly"
    );
}
