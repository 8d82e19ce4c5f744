//! A private PostgreSQL cluster run from the machine's own PostgreSQL binaries.
//!
//! Layout of the data directory:
//! - `triage.lock`: held with `flock` by the one Triage process that owns the cluster. The kernel
//!   drops the lock when that process dies, so a crash never leaves a stale lock behind.
//! - `pg/`: the cluster (created by `initdb` into `pg.init/` and renamed, so a half-finished
//!   `initdb` never looks like a cluster).
//! - `run/`: the Unix socket directory. No TCP port is opened, so nothing can clash.
//! - `postgres.log`: the server's own log, quoted in errors when it fails to start.
//!
//! The server process is started directly (not via `pg_ctl`) from a supervisor thread that stays
//! alive as long as the server; the server gets SIGINT (fast shutdown) when that thread dies, so a
//! killed Triage does not leave an orphaned PostgreSQL behind for long.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User};
use sqlx::postgres::PgConnectOptions;

/// The port number only names the socket file (`.s.PGSQL.<port>`); nothing listens on TCP.
const SOCKET_PORT: u16 = 5432;
/// The superuser `initdb` creates; Triage connects as it over the private socket.
pub const SUPERUSER: &str = "triage";
/// The database Triage's own tables live in.
pub const DATABASE: &str = "triage";
/// Linux limits a Unix socket path to 107 bytes.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found{searched}: install PostgreSQL \
         (Debian/Ubuntu: apt-get install -y postgresql) or set DATABASE_URL to use an existing server"
    )]
    BinariesNotFound { searched: String },
    #[error(
        "data directory {dir} is in use by another triage process{pid}: stop it first or choose another --data-dir"
    )]
    InUse { dir: PathBuf, pid: String },
    #[error(
        "the cluster in {dir} was made by PostgreSQL {cluster}, but the binaries in {bin_dir} are PostgreSQL {binaries}: \
         point --pg-bin-dir at PostgreSQL {cluster}'s binaries"
    )]
    VersionMismatch { dir: PathBuf, cluster: String, binaries: String, bin_dir: PathBuf },
    #[error("{0}")]
    Setup(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("PostgreSQL failed to start: {0}")]
    StartFailed(String),
}

/// Connection options for a database of the cluster in `data_dir`, over its private socket: for
/// the running instance itself, and for command-line tools attaching to a cluster that another
/// Triage process runs (a second cluster must never be started on a directory in use).
pub fn attach_options(data_dir: &Path, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .socket(data_dir.join("run"))
        .port(SOCKET_PORT)
        .username(SUPERUSER)
        .database(database)
        .application_name("triage")
}

impl EmbeddedPgError {
    /// Errors the user fixes by changing the environment or configuration (exit code 2).
    pub fn is_config_error(&self) -> bool {
        matches!(
            self,
            Self::BinariesNotFound { .. } | Self::InUse { .. } | Self::VersionMismatch { .. } | Self::Setup(_)
        )
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedPgError {
    let what = what.into();
    move |source| EmbeddedPgError::Io { what, source }
}

/// Where the PostgreSQL server binaries live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    pub bin_dir: PathBuf,
}

impl PgBinaries {
    /// Finds the binaries: the explicit directory if given (and nothing else), otherwise
    /// `pg_config --bindir`, then PATH, then `/usr/lib/postgresql/<newest>/bin`.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, EmbeddedPgError> {
        if let Some(dir) = explicit {
            return if has_server_binaries(dir) {
                Ok(Self { bin_dir: dir.to_path_buf() })
            } else {
                Err(EmbeddedPgError::BinariesNotFound { searched: format!(" in {}", dir.display()) })
            };
        }
        let pg_config = Command::new("pg_config")
            .arg("--bindir")
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        let path_var = std::env::var_os("PATH");
        discover(pg_config, path_var.as_deref(), Path::new("/usr/lib/postgresql"))
            .map(|bin_dir| Self { bin_dir })
            .ok_or_else(|| EmbeddedPgError::BinariesNotFound {
                searched: " (looked at pg_config --bindir, PATH and /usr/lib/postgresql/*/bin)".into(),
            })
    }

    fn exe(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// The major version of these binaries, e.g. "15".
    pub fn major_version(&self) -> Result<String, EmbeddedPgError> {
        let out = Command::new(self.exe("postgres"))
            .arg("--version")
            .output()
            .map_err(io_err(format!("running {} --version", self.exe("postgres").display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        parse_major_version(&text)
            .ok_or_else(|| EmbeddedPgError::Setup(format!("cannot read the PostgreSQL version from '{}'", text.trim())))
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("postgres").is_file()
}

/// The search behind [`PgBinaries::locate`], with its inputs passed in so it can be tested.
pub fn discover(pg_config_bindir: Option<PathBuf>, path_var: Option<&OsStr>, versions_root: &Path) -> Option<PathBuf> {
    if let Some(dir) = pg_config_bindir.filter(|d| has_server_binaries(d)) {
        return Some(dir);
    }
    if let Some(path_var) = path_var {
        for dir in std::env::split_paths(path_var) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                // Symlinks such as /usr/local/bin/initdb point into the real installation, where
                // `postgres` of the same version lives.
                let real_dir = fs::canonicalize(&initdb)
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or(dir.clone());
                if has_server_binaries(&real_dir) {
                    return Some(real_dir);
                }
                if has_server_binaries(&dir) {
                    return Some(dir);
                }
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(versions_root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_server_binaries(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" → "15"; "9.6.2" → "9.6".
pub fn parse_major_version(text: &str) -> Option<String> {
    let version = text.split_whitespace().find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let mut parts = version.split('.');
    let major = parts.next()?;
    let major_num: u32 = major.parse().ok()?;
    if major_num >= 10 { Some(major.to_string()) } else { Some(format!("{major}.{}", parts.next()?)) }
}

/// Settings for [`EmbeddedPg::start`].
#[derive(Debug, Clone)]
pub struct EmbeddedPgConfig {
    pub data_dir: PathBuf,
    pub bin_dir: Option<PathBuf>,
    /// Off only for throwaway test clusters: trades crash safety for speed.
    pub durable: bool,
    pub start_timeout: Duration,
    /// Made as a streaming standby of the cluster in this data directory (`pg_basebackup` over
    /// its socket) instead of by `initdb`: a real read replica for tests of `--database-read-url`.
    pub standby_of: Option<PathBuf>,
}

impl EmbeddedPgConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            bin_dir: None,
            durable: true,
            start_timeout: Duration::from_secs(60),
            standby_of: None,
        }
    }
}

#[derive(Default)]
struct ExitState {
    status: Mutex<Option<ExitStatus>>,
    changed: Condvar,
}

/// A running private cluster. Call [`EmbeddedPg::stop`] for a clean shutdown; dropping it also
/// stops the server.
pub struct EmbeddedPg {
    data_dir: PathBuf,
    pid: Pid,
    exit: Arc<ExitState>,
    stop_tx: Option<mpsc::Sender<Signal>>,
    _lock: Flock<File>,
}

impl std::fmt::Debug for EmbeddedPg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedPg").field("data_dir", &self.data_dir).field("pid", &self.pid).finish()
    }
}

impl EmbeddedPg {
    /// Takes the data directory's lock, creates the cluster on first use, starts PostgreSQL and
    /// waits until it accepts connections. Blocking: call it from a blocking context.
    pub fn start(config: &EmbeddedPgConfig) -> Result<Self, EmbeddedPgError> {
        let data_dir = absolute(&config.data_dir)?;
        let run_as = postgres_user()?;
        create_dir(&data_dir, if run_as.is_some() { 0o711 } else { 0o700 })?;
        if let Some(user) = &run_as {
            check_reachable(&data_dir, user)?;
        }
        let lock = lock_data_dir(&data_dir)?;

        let bins = PgBinaries::locate(config.bin_dir.as_deref())?;
        let cluster_dir = data_dir.join("pg");
        let socket_dir = data_dir.join("run");
        let socket_len = socket_dir.join(format!(".s.PGSQL.{SOCKET_PORT}")).as_os_str().len();
        if socket_len > MAX_SOCKET_PATH {
            return Err(EmbeddedPgError::Setup(format!(
                "data directory path {} is too long for a Unix socket ({socket_len} > {MAX_SOCKET_PATH} bytes): choose a shorter --data-dir",
                data_dir.display()
            )));
        }

        if !cluster_dir.join("PG_VERSION").is_file() {
            match &config.standby_of {
                Some(primary) => init_standby(&bins, &data_dir, &cluster_dir, run_as.as_ref(), primary)?,
                None => init_cluster(&bins, &data_dir, &cluster_dir, run_as.as_ref(), config.durable)?,
            }
        }
        let cluster_version = fs::read_to_string(cluster_dir.join("PG_VERSION"))
            .map_err(io_err("reading PG_VERSION"))?
            .trim()
            .to_string();
        let binaries_version = bins.major_version()?;
        if cluster_version != binaries_version {
            return Err(EmbeddedPgError::VersionMismatch {
                dir: cluster_dir,
                cluster: cluster_version,
                binaries: binaries_version,
                bin_dir: bins.bin_dir,
            });
        }

        create_dir(&socket_dir, 0o700)?;
        if let Some(user) = &run_as {
            chown(&socket_dir, user)?;
        }
        clear_stale_postmaster(&cluster_dir)?;

        let log_path = data_dir.join("postgres.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(format!("opening {}", log_path.display())))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);

        let mut cmd = Command::new(bins.exe("postgres"));
        cmd.arg("-D")
            .arg(&cluster_dir)
            .arg("-k")
            .arg(&socket_dir)
            .arg("-p")
            .arg(SOCKET_PORT.to_string())
            .args(["-c", "listen_addresses="])
            .args(["-c", "unix_socket_permissions=0700"])
            .args(["-c", "max_connections=200"]);
        if !config.durable {
            cmd.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io_err("duplicating the log handle"))?)
            .stderr(log)
            // Own process group: a Ctrl-C in the terminal reaches Triage only, which then stops
            // PostgreSQL after in-flight requests have finished.
            .process_group(0);
        if let Some(user) = &run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        // SAFETY: prctl is async-signal-safe; runs in the child after fork, before exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)?;
                Ok(())
            });
        }

        let (pid, exit, stop_tx) = spawn_supervised(cmd)?;
        let pg = Self { data_dir: data_dir.clone(), pid, exit, stop_tx: Some(stop_tx), _lock: lock };

        let deadline = Instant::now() + config.start_timeout;
        loop {
            if let Some(status) = pg.exit_status() {
                return Err(EmbeddedPgError::StartFailed(format!(
                    "postgres exited with {status}; {}",
                    log_tail(&log_path, log_start)
                )));
            }
            if postmaster_ready(&cluster_dir) {
                break;
            }
            if Instant::now() > deadline {
                return Err(EmbeddedPgError::StartFailed(format!(
                    "not ready after {:?}; {}",
                    config.start_timeout,
                    log_tail(&log_path, log_start)
                )));
            }
            thread::sleep(Duration::from_millis(25));
        }
        tracing::info!(data_dir = %data_dir.display(), pid = pid.as_raw(), "embedded PostgreSQL ready");
        Ok(pg)
    }

    /// Connection options for a database in this cluster, over its private socket.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        attach_options(&self.data_dir, database)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }

    /// The server's exit status, if it has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit.status.lock().ok().and_then(|s| *s)
    }

    /// Stops the server: fast shutdown (clean checkpoint, sessions ended), escalating to immediate
    /// shutdown after `timeout`. Blocking.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), EmbeddedPgError> {
        let Some(tx) = self.stop_tx.take() else { return Ok(()) };
        let _ = tx.send(Signal::SIGINT);
        if self.wait_exit(timeout).is_some() {
            tracing::info!("embedded PostgreSQL stopped");
            return Ok(());
        }
        tracing::warn!("embedded PostgreSQL did not stop within {timeout:?}; forcing immediate shutdown");
        let _ = tx.send(Signal::SIGQUIT);
        match self.wait_exit(Duration::from_secs(10)) {
            Some(_) => Ok(()),
            None => Err(EmbeddedPgError::Setup("PostgreSQL did not stop".into())),
        }
    }

    fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let guard = self.exit.status.lock().ok()?;
        let (guard, _) = self.exit.changed.wait_timeout_while(guard, timeout, |s| s.is_none()).ok()?;
        *guard
    }
}

impl Drop for EmbeddedPg {
    fn drop(&mut self) {
        if self.stop_tx.is_some() {
            let _ = self.stop(Duration::from_secs(30));
        }
    }
}

/// Starts `cmd` on a thread that lives exactly as long as the child: it is the only one that
/// reaps the child, so signals sent through it can never reach a recycled pid, and the child's
/// parent-death signal fires if the whole process dies.
fn spawn_supervised(mut cmd: Command) -> Result<(Pid, Arc<ExitState>, mpsc::Sender<Signal>), EmbeddedPgError> {
    let exit = Arc::new(ExitState::default());
    let (stop_tx, stop_rx) = mpsc::channel::<Signal>();
    let (started_tx, started_rx) = mpsc::channel();
    let exit_for_thread = exit.clone();
    thread::Builder::new()
        .name("postgres-supervisor".into())
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let pid = Pid::from_raw(child.id() as i32);
            let _ = started_tx.send(Ok(pid));
            let status = loop {
                match stop_rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(sig) => {
                        let _ = kill(pid, sig);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    // The owner is gone without stopping us: shut the server down cleanly.
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        let _ = kill(pid, Signal::SIGINT);
                        break child.wait();
                    }
                }
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) => {}
                    Err(e) => break Err(e),
                }
            };
            if let Ok(status) = status
                && let Ok(mut slot) = exit_for_thread.status.lock()
            {
                *slot = Some(status);
                exit_for_thread.changed.notify_all();
            }
        })
        .map_err(io_err("starting the supervisor thread"))?;
    let pid = started_rx
        .recv()
        .map_err(|_| EmbeddedPgError::StartFailed("supervisor thread ended early".into()))?
        .map_err(io_err("starting postgres"))?;
    Ok((pid, exit, stop_tx))
}

fn absolute(dir: &Path) -> Result<PathBuf, EmbeddedPgError> {
    std::path::absolute(dir).map_err(io_err(format!("resolving {}", dir.display())))
}

/// PostgreSQL refuses to run as root; as root we run it as the `postgres` system user.
fn postgres_user() -> Result<Option<User>, EmbeddedPgError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some(user)),
        _ => Err(EmbeddedPgError::Setup(
            "running as root, and PostgreSQL refuses to run as root: create a 'postgres' user \
             (apt-get install -y postgresql does) or run triage as an ordinary user"
                .into(),
        )),
    }
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), EmbeddedPgError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(io_err(format!("creating {}", dir.display())))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("setting permissions of {}", dir.display())))
}

fn chown(path: &Path, user: &User) -> Result<(), EmbeddedPgError> {
    nix::unistd::chown(path, Some(user.uid), Some(user.gid))
        .map_err(|e| EmbeddedPgError::Setup(format!("cannot hand {} to user {}: {e}", path.display(), user.name)))
}

/// The server user must be able to traverse every ancestor of the data directory.
fn check_reachable(dir: &Path, user: &User) -> Result<(), EmbeddedPgError> {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(ancestor) else { continue };
        let mode = meta.permissions().mode();
        use std::os::unix::fs::MetadataExt;
        let ok = mode & 0o001 != 0
            || (meta.uid() == user.uid.as_raw() && mode & 0o100 != 0)
            || (meta.gid() == user.gid.as_raw() && mode & 0o010 != 0);
        if !ok {
            return Err(EmbeddedPgError::Setup(format!(
                "PostgreSQL runs as user '{}' and cannot reach {} (no search permission on {}): choose a --data-dir elsewhere, e.g. /var/lib/triage",
                user.name,
                dir.display(),
                ancestor.display()
            )));
        }
    }
    Ok(())
}

fn lock_data_dir(data_dir: &Path) -> Result<Flock<File>, EmbeddedPgError> {
    let path = data_dir.join("triage.lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(EmbeddedPgError::InUse {
                dir: data_dir.to_path_buf(),
                pid: if pid.is_empty() { String::new() } else { format!(" (pid {pid})") },
            });
        }
    };
    // Record our pid for the message a second instance prints.
    let write = |f: &mut File| -> std::io::Result<()> {
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        writeln!(f, "{}", std::process::id())?;
        f.sync_all()
    };
    write(&mut lock).map_err(io_err("writing the lock file"))?;
    Ok(lock)
}

/// `pg.init/`, empty and owned by the server's user: a cluster is made there and renamed, so a
/// half-made one never looks like a cluster.
fn fresh_init_dir(data_dir: &Path, run_as: Option<&User>) -> Result<PathBuf, EmbeddedPgError> {
    let tmp = data_dir.join("pg.init");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(format!("removing the unfinished {}", tmp.display())))?;
    }
    create_dir(&tmp, 0o700)?;
    if let Some(user) = run_as {
        chown(&tmp, user)?;
    }
    Ok(tmp)
}

/// Runs a set-up program; its failure quotes the last line it printed.
fn run_setup(cmd: &mut Command, what: &str) -> Result<(), EmbeddedPgError> {
    let out = cmd.output().map_err(io_err(format!("running {what}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(EmbeddedPgError::StartFailed(format!("{what} failed ({}): {last}", out.status)));
    }
    Ok(())
}

fn init_cluster(
    bins: &PgBinaries,
    data_dir: &Path,
    cluster_dir: &Path,
    run_as: Option<&User>,
    durable: bool,
) -> Result<(), EmbeddedPgError> {
    let tmp = fresh_init_dir(data_dir, run_as)?;
    tracing::info!(dir = %cluster_dir.display(), "creating the embedded PostgreSQL cluster (first run)");
    let mut cmd = Command::new(bins.exe("initdb"));
    cmd.arg("-D")
        .arg(&tmp)
        .args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"])
        // initdb wants to be run from a directory the server user can read.
        .current_dir(&tmp)
        .stdin(Stdio::null());
    if !durable {
        cmd.arg("--no-sync");
    }
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    run_setup(&mut cmd, "initdb")?;
    fs::rename(&tmp, cluster_dir).map_err(io_err(format!("moving the new cluster to {}", cluster_dir.display())))
}

/// Copies the running cluster of `primary` (a data directory) with `pg_basebackup`, set up to
/// follow it (`-R`: `standby.signal` and the connection back to the primary's socket).
fn init_standby(
    bins: &PgBinaries,
    data_dir: &Path,
    cluster_dir: &Path,
    run_as: Option<&User>,
    primary: &Path,
) -> Result<(), EmbeddedPgError> {
    let tmp = fresh_init_dir(data_dir, run_as)?;
    let mut cmd = Command::new(bins.exe("pg_basebackup"));
    cmd.arg("-h")
        .arg(absolute(primary)?.join("run"))
        .args(["-p", &SOCKET_PORT.to_string(), "-U", SUPERUSER, "-R", "-X", "stream", "-c", "fast", "-D"])
        .arg(&tmp)
        .current_dir(&tmp)
        .stdin(Stdio::null());
    if let Some(user) = run_as {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    run_setup(&mut cmd, "pg_basebackup")?;
    fs::rename(&tmp, cluster_dir).map_err(io_err(format!("moving the standby to {}", cluster_dir.display())))
}

/// A `postmaster.pid` left by a crash: either its server is gone (remove the file) or still
/// running as an orphan of a Triage that died (we hold the lock, so nobody else owns it): stop it.
fn clear_stale_postmaster(cluster_dir: &Path) -> Result<(), EmbeddedPgError> {
    let pid_file = cluster_dir.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&pid_file) else { return Ok(()) };
    let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()).filter(|p| *p > 0) else {
        tracing::warn!("removing an unreadable postmaster.pid");
        return fs::remove_file(&pid_file).map_err(io_err("removing postmaster.pid"));
    };
    let pid = Pid::from_raw(pid);
    if !is_postgres_process(pid) {
        tracing::warn!(pid = pid.as_raw(), "removing a stale postmaster.pid left by a crash");
        return fs::remove_file(&pid_file).map_err(io_err("removing postmaster.pid"));
    }
    tracing::warn!(pid = pid.as_raw(), "an orphaned PostgreSQL from an earlier run is still up; stopping it");
    for (signal, wait) in [(Signal::SIGINT, Duration::from_secs(30)), (Signal::SIGQUIT, Duration::from_secs(10))] {
        let _ = kill(pid, signal);
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if !is_postgres_process(pid) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
    Err(EmbeddedPgError::StartFailed(format!("an earlier PostgreSQL (pid {pid}) on this data directory does not stop")))
}

fn is_postgres_process(pid: Pid) -> bool {
    // Reading /proc avoids mistaking a recycled pid for the old server.
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim_end().starts_with("postgres"))
        && fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false)
}

/// PostgreSQL writes "ready" as the 8th line of postmaster.pid once it accepts connections.
fn postmaster_ready(cluster_dir: &Path) -> bool {
    fs::read_to_string(cluster_dir.join("postmaster.pid"))
        .map(|text| text.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
        .unwrap_or(false)
}

fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(from));
        let _ = f.take(64 * 1024).read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() { format!("see {}", path.display()) } else { format!("log: {tail}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_version_is_read_from_postgres_output() {
        assert_eq!(parse_major_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)").as_deref(), Some("15"));
        assert_eq!(parse_major_version("postgres (PostgreSQL) 9.6.24").as_deref(), Some("9.6"));
        assert_eq!(parse_major_version("garbage"), None);
    }

    fn fake_bin(dir: &Path) {
        fs::create_dir_all(dir).expect("mkdir");
        for exe in ["initdb", "postgres"] {
            fs::write(dir.join(exe), "").expect("write");
        }
    }

    #[test]
    fn discovery_prefers_pg_config_then_path_then_newest_version() {
        let root = tempfile::tempdir().expect("tempdir");
        let versions = root.path().join("versions");
        fake_bin(&versions.join("13/bin"));
        fake_bin(&versions.join("16/bin"));
        let on_path = root.path().join("onpath");
        fake_bin(&on_path);
        let pg_config = root.path().join("pgconfig");
        fake_bin(&pg_config);

        assert_eq!(discover(Some(pg_config.clone()), Some(on_path.as_os_str()), &versions), Some(pg_config));
        assert_eq!(discover(None, Some(on_path.as_os_str()), &versions), Some(on_path));
        assert_eq!(discover(None, None, &versions), Some(versions.join("16/bin")));
        assert_eq!(discover(None, None, &root.path().join("nothing")), None);
    }

    #[test]
    fn explicit_directory_without_binaries_is_a_clear_error() {
        let empty = tempfile::tempdir().expect("tempdir");
        let err = PgBinaries::locate(Some(empty.path())).expect_err("no binaries");
        let msg = err.to_string();
        assert!(msg.contains("apt-get install -y postgresql") && msg.contains("DATABASE_URL"), "{msg}");
        assert!(err.is_config_error());
    }
}
