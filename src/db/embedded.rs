//! The embedded default database: a private PostgreSQL cluster under the daemon's
//! data directory, created with the system's `initdb` on first run, started with
//! `pg_ctl`, listening on a Unix socket inside that directory only (no TCP), and
//! stopped when the daemon stops.
//!
//! PostgreSQL refuses to run as root, so a root daemon (CI, some servers) runs the
//! cluster as the unprivileged `postgres` system user and hands it the directory.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::postgres::PgConnectOptions;

/// The superuser the cluster is initialised with; also the role the daemon uses.
const SUPERUSER: &str = "guildops";
/// Fixed: the socket directory is private, so no other cluster can collide on it.
const PORT: u16 = 5432;
/// Unix socket paths are limited to 107 bytes on Linux (`sun_path`).
const MAX_SOCKET_PATH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no database configured and no PostgreSQL server binaries (initdb, pg_ctl) found; \
         install them (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; \
         macOS: brew install postgresql) or set database.url / GUILDOPS_DATABASE__URL"
    )]
    NoBinaries,
    #[error(
        "running as root needs the unprivileged 'postgres' system user for the embedded database \
         (PostgreSQL refuses to run as root); create it or set database.url"
    )]
    NoUnprivilegedUser,
    #[error("embedded database directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("embedded database: socket path {0} is too long; use a shorter daemon.data_dir")]
    SocketPathTooLong(PathBuf),
    #[error("embedded database: `{command}` failed: {detail}")]
    Command { command: String, detail: String },
}

/// A running embedded cluster. Call [`EmbeddedPostgres::stop`] on shutdown.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    cluster_dir: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<(u32, u32)>,
}

impl EmbeddedPostgres {
    /// Creates the cluster on first use and starts it (or adopts one left running by
    /// a daemon that was killed).
    pub async fn start(data_dir: &Path, bin_hint: Option<&Path>) -> Result<Self, EmbeddedError> {
        let data_dir = data_dir.to_path_buf();
        let bin_hint = bin_hint.map(Path::to_path_buf);
        tokio::task::spawn_blocking(move || Self::start_blocking(&data_dir, bin_hint.as_deref()))
            .await
            .map_err(|e| EmbeddedError::Command {
                command: "start".into(),
                detail: e.to_string(),
            })?
    }

    fn start_blocking(data_dir: &Path, bin_hint: Option<&Path>) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir(bin_hint).ok_or(EmbeddedError::NoBinaries)?;
        let run_as = unprivileged_user()?;
        let root = absolute(data_dir)?;
        let cluster_dir = root.join("postgres");
        let socket_dir = root.join("run");
        if socket_dir.join(".s.PGSQL.5432").as_os_str().len() > MAX_SOCKET_PATH {
            return Err(EmbeddedError::SocketPathTooLong(socket_dir));
        }
        let pg = Self {
            bin_dir,
            cluster_dir,
            socket_dir,
            run_as,
        };
        pg.prepare_dirs(&root)?;
        if !pg.cluster_dir.join("PG_VERSION").exists() {
            pg.initdb()?;
        }
        if !pg.is_running() {
            pg.pg_ctl_start()?;
        }
        Ok(pg)
    }

    /// How sqlx reaches the cluster: its private socket, as the cluster superuser.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// Fast shutdown: disconnects clients, flushes, stops. Waits for it.
    pub async fn stop(self) -> Result<(), EmbeddedError> {
        tokio::task::spawn_blocking(move || {
            let dir = self.cluster_dir.display().to_string();
            self.run_checked(self.pg_ctl(&["stop", "-D", &dir, "-m", "fast", "-w", "-t", "60"]))
                .map(|_| ())
        })
        .await
        .map_err(|e| EmbeddedError::Command {
            command: "stop".into(),
            detail: e.to_string(),
        })?
    }

    fn prepare_dirs(&self, root: &Path) -> Result<(), EmbeddedError> {
        for dir in [root, &self.cluster_dir, &self.socket_dir] {
            std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
        }
        if self.run_as.is_some() {
            // The unprivileged user must be able to pass through our data directory
            // (traverse only, no listing) to reach the two directories it owns.
            let mode = std::fs::metadata(root)
                .map_err(|source| io(root, source))?
                .permissions()
                .mode();
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode | 0o711))
                .map_err(|source| io(root, source))?;
        }
        for dir in [&self.cluster_dir, &self.socket_dir] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|source| io(dir, source))?;
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                    .map_err(|source| io(dir, source))?;
            }
        }
        Ok(())
    }

    fn initdb(&self) -> Result<(), EmbeddedError> {
        let dir = self.cluster_dir.display().to_string();
        let mut cmd = self.command("initdb");
        cmd.args([
            "-D",
            &dir,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        ]);
        self.run_checked(cmd).map(|_| ())
    }

    fn is_running(&self) -> bool {
        let dir = self.cluster_dir.display().to_string();
        self.pg_ctl(&["status", "-D", &dir])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
        let dir = self.cluster_dir.display().to_string();
        let log = self.cluster_dir.join("server.log").display().to_string();
        // No TCP at all: the socket in a 0700 directory is the only way in.
        let opts = format!(
            "-c listen_addresses='' -k {} -p {PORT}",
            self.socket_dir.display()
        );
        let mut cmd = self.pg_ctl(&[
            "start", "-D", &dir, "-l", &log, "-w", "-t", "60", "-o", &opts,
        ]);
        // Its own process group: a Ctrl-C meant for the daemon must not kill the
        // database under it; the daemon stops it in order instead.
        cmd.process_group(0);
        self.run_checked(cmd).map(|_| ())
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut cmd = self.command("pg_ctl");
        cmd.args(args);
        cmd
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        // A cwd the unprivileged user can enter (root's home is usually 0700).
        cmd.current_dir(&self.cluster_dir).env("LC_ALL", "C.UTF-8");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn run_checked(&self, mut cmd: Command) -> Result<Output, EmbeddedError> {
        let command = format!("{cmd:?}");
        let output = cmd.output().map_err(|e| EmbeddedError::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
        if output.status.success() {
            return Ok(output);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_owned();
        Err(EmbeddedError::Command {
            command,
            detail: format!("{} ({detail})", output.status),
        })
    }
}

fn io(path: &Path, source: std::io::Error) -> EmbeddedError {
    EmbeddedError::Io {
        path: path.into(),
        source,
    }
}

fn absolute(path: &Path) -> Result<PathBuf, EmbeddedError> {
    std::path::absolute(path).map_err(|source| io(path, source))
}

/// `Some((uid, gid))` of the `postgres` user when we are root; `None` otherwise.
fn unprivileged_user() -> Result<Option<(u32, u32)>, EmbeddedError> {
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some((user.uid.as_raw(), user.gid.as_raw()))),
        _ => Err(EmbeddedError::NoUnprivilegedUser),
    }
}

/// The first directory holding both `initdb` and `pg_ctl`: the hint, then PATH, then
/// the usual package locations (newest version first).
pub fn find_bin_dir(hint: Option<&Path>) -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = hint {
        return has_both(dir).then(|| dir.to_path_buf());
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut candidates = path_dirs;
    for pattern_root in [
        "/usr/lib/postgresql",
        "/usr/local/opt",
        "/opt/homebrew/opt",
        "/usr",
    ] {
        candidates.extend(versioned_bin_dirs(Path::new(pattern_root)));
    }
    candidates.extend(["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"].map(PathBuf::from));
    candidates.into_iter().find(|d| has_both(d))
}

/// `/usr/lib/postgresql/16/bin`, `/usr/local/opt/postgresql@16/bin`, `/usr/pgsql-16/bin`, …
fn versioned_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name
                .trim_start_matches("postgresql@")
                .trim_start_matches("postgresql")
                .trim_start_matches("pgsql-");
            let looks_postgres = name.starts_with("postgres")
                || name.starts_with("pgsql")
                || root.ends_with("postgresql");
            let version: u32 = if version.is_empty() {
                0
            } else {
                version.parse().ok()?
            };
            looks_postgres.then(|| (version, e.path().join("bin")))
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.into_iter().map(|(_, d)| d).collect()
}
