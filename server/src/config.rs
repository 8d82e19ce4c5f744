//! Command-line and environment configuration: one `clap` struct, every option also an env var.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::monitor::check::policy::Cidr;

/// Options whose values may contain credentials: never echoed in error messages.
const SECRET_ARGS: [&str; 2] = ["--database-url", "--token"];

/// Triage: a live incident dashboard.
#[derive(Debug, Parser)]
#[command(name = "triage", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub serve: ServeArgs,
}

// Parsed once at start-up; boxing the serve options would only complicate every use of them.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the dashboard (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Run "shop", a small realistic service to probe, whose failure scenario can be switched.
    DemoTarget(DemoTargetArgs),
    /// Work with the stored probes.
    #[command(subcommand)]
    Probes(ProbesCommand),
    /// Import services and probes from Uptime Kuma, Gatus or Prometheus' blackbox exporter.
    Import(ImportArgs),
    /// Manage users (works whether or not a server runs on the same data).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens (works whether or not a server runs on the same data).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run probes from another place for a Triage server: the probes assigned to this agent's
    /// location, with the server's check engine, results delivered in batches (spooled on disk
    /// while the server is unreachable).
    Agent(AgentArgs),
    /// Record change events (deploys, config changes, …) on a running Triage, e.g. from CI.
    #[command(subcommand)]
    Change(ChangeCommand),
    /// Measure the probe pipeline on this machine (a private PostgreSQL, local targets).
    Bench(BenchArgs),
    /// Add synthetic services with a stretch of history (to try or measure the dashboard at scale).
    Seed(SeedArgs),
    /// A bare axum server answering `GET /` with "ok": the baseline of the SSR benchmark.
    #[command(hide = true)]
    TrivialHttp {
        #[arg(long = "addr", default_value = "127.0.0.1:3999", id = "trivial_addr")]
        addr: SocketAddr,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SeedArgs {
    /// Services to add (each with a push probe and a metrics probe).
    #[arg(long, default_value_t = 2_000)]
    pub services: usize,
    /// History of results to write, ending now.
    #[arg(long, default_value = "1h")]
    pub history: DurationArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchKind {
    /// Checks per second and scheduling lateness with many probes.
    Probes,
    /// Results per second into the schema, against binary COPY.
    Ingest,
    /// 30-day percentiles from rollups, against exact percentile_cont; the series API, 30 d against 1 h.
    Percentiles,
    /// The overview's data for 2,000 services with an hour of history.
    Overview,
    /// Bytes per stored result, as rows and compacted, and the disk a day of 100,000 probes takes.
    Storage,
    /// 100,000 probes over 20,000 services for half an hour, with a browser and wrk on the pages
    /// (not part of `all`: it runs `triage serve` and takes about 40 minutes).
    Fleet,
    /// Every benchmark above except `fleet`.
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct BenchArgs {
    /// Which benchmark.
    #[arg(value_enum, default_value_t = BenchKind::All)]
    pub which: BenchKind,
    /// Probes scheduled by the `probes` benchmark.
    #[arg(long = "probes", default_value_t = 10_000)]
    pub probes: usize,
    /// Their interval.
    #[arg(long = "interval", default_value = "2s")]
    pub interval: DurationArg,
    /// How long the `probes` benchmark measures (after one interval of warm-up).
    #[arg(long = "duration", default_value = "20s")]
    pub duration: DurationArg,
    /// Results written by the `ingest` benchmark.
    #[arg(long = "results", default_value_t = 500_000)]
    pub results: usize,
    /// The `probes` benchmark checks this loopback URL instead of its own target (a peer's
    /// benchmark against the same server: `end2end/bench/peers.sh`).
    #[arg(long = "target")]
    pub target: Option<url::Url>,
    /// Pins the `probes` benchmark's prober (its checks and its writer) to this CPU core.
    #[arg(long = "prober-core")]
    pub prober_core: Option<usize>,
    /// The `fleet` benchmark's probes (five to a service).
    #[arg(long = "fleet-probes", default_value_t = 100_000)]
    pub fleet_probes: usize,
    /// How long the `fleet` benchmark measures, after its warm-up.
    #[arg(long = "fleet-duration", default_value = "30m")]
    pub fleet_duration: DurationArg,
    /// The `fleet` benchmark's warm-up: every probe checked once (the longest interval).
    #[arg(long = "fleet-warmup", default_value = "5m")]
    pub fleet_warmup: DurationArg,
    /// The built front end the `fleet` benchmark's server serves (a release build).
    #[arg(long = "site-root", default_value = "target/site")]
    pub site_root: PathBuf,
    /// The `end2end` directory (with its node_modules) whose browser scripts the `fleet`
    /// benchmark runs; without it, the browser's figures are skipped and say so.
    #[arg(long = "browser-dir", default_value = "end2end")]
    pub browser_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AgentArgs {
    /// The Triage server's base URL (behind a load balancer, any replica will do).
    #[arg(long, env = "TRIAGE_SERVER")]
    pub server: url::Url,
    /// An API token of scope `agent` (prefer the environment variable: arguments show in `ps`).
    #[arg(long, env = "TRIAGE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// This agent's location, e.g. `eu-west`: it runs the probes whose `locations` name it.
    #[arg(long, env = "TRIAGE_LOCATION")]
    pub location: String,
    /// Where results wait while the server is unreachable, and the agent's id is kept; without
    /// it they wait in memory only, and a restart is a new agent.
    #[arg(long = "spool-dir", env = "TRIAGE_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Results kept waiting at most; beyond it the oldest are dropped (and counted to the server).
    #[arg(long = "spool-max", env = "TRIAGE_SPOOL_MAX", default_value_t = 200_000,
          value_parser = clap::value_parser!(u32).range(100..=50_000_000))]
    pub spool_max: u32,
    /// Address blocks this agent's probes may reach although the network policy denies them
    /// (as `serve --probe-allow`).
    #[arg(long = "probe-allow", env = "TRIAGE_PROBE_ALLOW", value_delimiter = ',')]
    pub probe_allow: Vec<Cidr>,
    /// The DNS server this agent's probes look names up with; by default the system's.
    #[arg(long = "probe-resolver", env = "TRIAGE_PROBE_RESOLVER")]
    pub probe_resolver: Option<SocketAddr>,
    /// Checks running at the same time at most.
    #[arg(long = "probe-concurrency", env = "TRIAGE_PROBE_CONCURRENCY", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub probe_concurrency: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ChangeCommand {
    /// Record one change (prints its id and headline).
    Add(ChangeAddArgs),
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ChangeAddArgs {
    /// The Triage server's base URL.
    #[arg(long, env = "TRIAGE_SERVER")]
    pub server: url::Url,
    /// A `push` or `admin` API token.
    #[arg(long, env = "TRIAGE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The service's name or id.
    #[arg(long)]
    pub service: String,
    #[arg(long, value_parser = parse_change_kind)]
    pub kind: app::model::ChangeKind,
    #[arg(long)]
    pub title: String,
    #[arg(long)]
    pub version: Option<String>,
    /// A link to the pipeline run, pull request or release notes.
    #[arg(long)]
    pub link: Option<String>,
    /// Who made the change.
    #[arg(long)]
    pub author: Option<String>,
    /// When (RFC 3339); default now.
    #[arg(long)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// When a change that takes time finished (RFC 3339).
    #[arg(long = "ends-at")]
    pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn parse_change_kind(s: &str) -> Result<app::model::ChangeKind, ConfigError> {
    app::model::ChangeKind::parse(s)
        .ok_or_else(|| ConfigError("expected deploy, config, feature_flag, migration or infra".into()))
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ProbesCommand {
    /// Write every service and probe in the declarative file's format (TOML).
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print what a probe file changes, then apply it (a running server picks the changes up on
    /// SIGHUP, or `POST /api/v1/probes/apply`, if it runs with this file as --config).
    Apply {
        file: PathBuf,
        /// Only print what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The tool an import reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportSource {
    /// An Uptime Kuma backup (JSON, "Export Backup").
    Kuma,
    /// A Gatus configuration file (YAML).
    Gatus,
    /// A Prometheus configuration scraping the blackbox exporter, then the exporter's modules file.
    Blackbox,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ImportArgs {
    pub source: ImportSource,
    /// The file(s): one for kuma and gatus; prometheus.yml then blackbox.yml for blackbox.
    #[arg(required = true, num_args = 1..=2)]
    pub files: Vec<PathBuf>,
    /// Print what would be created and what cannot be mapped; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Create every probe paused, to review before it runs.
    #[arg(long)]
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input (one line).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: app::model::Role,
        #[arg(long = "name", default_value = "")]
        display_name: String,
    },
    /// List users.
    List,
    /// Change a user's role.
    SetRole {
        email: String,
        #[arg(value_parser = parse_role)]
        role: app::model::Role,
    },
    /// Disable a user (their sessions end) or enable them again with `--enable`.
    Disable {
        email: String,
        #[arg(long)]
        enable: bool,
    },
    /// Set a user's password from standard input (their sessions end).
    Password { email: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (shown this once; only its hash is stored).
    Create {
        #[arg(long, value_parser = parse_scope)]
        scope: app::model::Scope,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until it expires (default: until revoked).
        #[arg(long = "expires-in-days")]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: uuid::Uuid },
}

fn parse_role(s: &str) -> Result<app::model::Role, ConfigError> {
    app::model::Role::parse(s).ok_or_else(|| ConfigError("expected viewer, responder, commander or admin".into()))
}

fn parse_scope(s: &str) -> Result<app::model::Scope, ConfigError> {
    app::model::Scope::parse(s).ok_or_else(|| ConfigError("expected push, read or admin".into()))
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DemoTargetArgs {
    /// Address of the demo service.
    #[arg(long = "addr", default_value = "127.0.0.1:4000", id = "demo_addr")]
    pub addr: SocketAddr,
    /// Address of its control API (stays up while the service port refuses connections in the
    /// `down` scenario). Default: the service port + 1.
    #[arg(long = "control-addr")]
    pub control_addr: Option<SocketAddr>,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL server to use instead of the embedded one (postgres://user:pass@host/db).
    #[arg(long = "database-url", env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,

    /// Where Triage keeps its embedded PostgreSQL cluster and state.
    /// Default: $XDG_DATA_HOME/triage (~/.local/share/triage), or /var/lib/triage when run as root.
    #[arg(long = "data-dir", env = "TRIAGE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Directory holding the PostgreSQL server binaries (initdb, postgres).
    /// Default: `pg_config --bindir`, then PATH, then /usr/lib/postgresql/*/bin.
    #[arg(long = "pg-bin-dir", env = "TRIAGE_PG_BIN_DIR", global = true)]
    pub pg_bin_dir: Option<PathBuf>,

    /// Maximum connections in the database pool.
    #[arg(long = "db-max-connections", env = "TRIAGE_DB_MAX_CONNECTIONS", default_value_t = 10, global = true,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: u32,

    /// Connections the pool keeps open when idle.
    #[arg(long = "db-min-connections", env = "TRIAGE_DB_MIN_CONNECTIONS", default_value_t = 2, global = true)]
    pub db_min_connections: u32,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter, e.g. `info` or `info,server=debug,sqlx=warn`.
    #[arg(long = "log-level", env = "TRIAGE_LOG", default_value = "info", global = true)]
    pub log_level: String,

    /// Log line format.
    #[arg(long = "log-format", env = "TRIAGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ServeArgs {
    /// Address the dashboard listens on.
    #[arg(long, env = "TRIAGE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Directory with the built site (WASM, JS, CSS and public assets), as written by cargo-leptos.
    #[arg(long = "site-root", env = "TRIAGE_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Longest time a request may take before it is answered with 408.
    #[arg(long = "request-timeout", env = "TRIAGE_REQUEST_TIMEOUT", default_value = "30s")]
    pub request_timeout: DurationArg,

    /// Longest time a client may take to send its request headers (guards against slow clients),
    /// and longest a connection may sit with no request running: HTTP/1 and h2c alike.
    #[arg(long = "header-read-timeout", env = "TRIAGE_HEADER_READ_TIMEOUT", default_value = "10s")]
    pub header_read_timeout: DurationArg,

    /// Connections open at once at most; past it new ones wait until one closes (logged).
    #[arg(long = "max-connections", env = "TRIAGE_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    pub max_connections: u32,

    /// Proxies whose `X-Forwarded-For` is believed (comma-separated addresses or blocks, e.g.
    /// `10.0.0.0/8,::1`). Sign-in throttling, sessions and the audit log then see the client
    /// behind them; from anyone else the header is ignored.
    #[arg(long = "trusted-proxies", env = "TRIAGE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<Cidr>,

    /// Largest accepted request body, e.g. `2MiB`, `512KiB`, `1000000`.
    #[arg(long = "body-limit", env = "TRIAGE_BODY_LIMIT", default_value = "2MiB")]
    pub body_limit: ByteSize,

    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long = "shutdown-timeout", env = "TRIAGE_SHUTDOWN_TIMEOUT", default_value = "30s")]
    pub shutdown_timeout: DurationArg,

    /// A PostgreSQL streaming replica for reads that tolerate a second of lag (charts, the
    /// overview, status pages); the primary serves them while it is down or behind.
    #[arg(long = "database-read-url", env = "DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<DatabaseUrl>,

    /// How far behind the primary the read replica may be and still serve reads.
    #[arg(long = "read-max-lag", env = "TRIAGE_READ_MAX_LAG", default_value = "1s")]
    pub read_max_lag: DurationArg,

    /// How long a /readyz result is reused, so many pollers do not load the database.
    #[arg(long = "readiness-cache", env = "TRIAGE_READINESS_CACHE", default_value = "1s")]
    pub readiness_cache: DurationArg,

    /// Time limit of the database check behind /readyz.
    #[arg(long = "readiness-timeout", env = "TRIAGE_READINESS_TIMEOUT", default_value = "1s")]
    pub readiness_timeout: DurationArg,

    /// Address blocks probes may reach although the network policy denies them (loopback, private
    /// ranges…), comma-separated, e.g. `10.0.0.0/8,192.168.1.20`. Cloud metadata addresses need an
    /// exact single-address entry.
    #[arg(long = "probe-allow", env = "TRIAGE_PROBE_ALLOW", value_delimiter = ',')]
    pub probe_allow: Vec<Cidr>,

    /// The DNS server probes look names up with (`127.0.0.53:53`, an internal resolver…), and
    /// DNS checks ask when they name none; by default the system's (`/etc/resolv.conf`).
    #[arg(long = "probe-resolver", env = "TRIAGE_PROBE_RESOLVER")]
    pub probe_resolver: Option<SocketAddr>,

    /// Checks running at the same time at most; more wait their turn.
    #[arg(long = "probe-concurrency", env = "TRIAGE_PROBE_CONCURRENCY", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub probe_concurrency: u32,

    /// Results held in memory while the database is unreachable; beyond this the oldest are dropped.
    #[arg(long = "result-buffer", env = "TRIAGE_RESULT_BUFFER", default_value_t = 100_000,
          value_parser = clap::value_parser!(u32).range(1000..=10_000_000))]
    pub result_buffer: u32,

    /// Memory the results held during an outage may take (`64MiB`); the oldest are dropped first
    /// (never a state change), at whichever of this and `--result-buffer` comes first.
    #[arg(long = "result-buffer-bytes", env = "TRIAGE_RESULT_BUFFER_BYTES", default_value = "64MiB")]
    pub result_buffer_bytes: ByteSize,

    /// How long raw results are kept (compacted after two hours; minute charts are computed from
    /// them, so they reach as far back; hour rollups 400 days, days and weeks forever).
    #[arg(long = "raw-retention", env = "TRIAGE_RAW_RETENTION", default_value = "35d")]
    pub raw_retention: DurationArg,

    /// Watch this instance itself (service `triage`: /healthz, /readyz, /metrics).
    #[arg(long = "self-watch", env = "TRIAGE_SELF_WATCH", default_value_t = true, action = clap::ArgAction::Set)]
    pub self_watch: bool,

    /// The address users reach Triage at (`https://triage.example.com`), when a proxy sits in
    /// front: browsers' Origin headers are checked against it, and `https` marks cookies Secure.
    /// Without it the request's own Host is the site.
    #[arg(long = "public-url", env = "TRIAGE_PUBLIC_URL")]
    pub public_url: Option<url::Url>,

    /// A session unused for this long ends (the user signs in again).
    #[arg(long = "session-idle", env = "TRIAGE_SESSION_IDLE", default_value = "12h")]
    pub session_idle: DurationArg,

    /// A session ends this long after sign-in, however active.
    #[arg(long = "session-lifetime", env = "TRIAGE_SESSION_LIFETIME", default_value = "7d")]
    pub session_lifetime: DurationArg,

    /// How long the audit log keeps its entries.
    #[arg(long = "audit-retention", env = "TRIAGE_AUDIT_RETENTION", default_value = "400d")]
    pub audit_retention: DurationArg,

    /// The audit log keeps at most this many entries (the oldest go first).
    #[arg(long = "audit-max-rows", env = "TRIAGE_AUDIT_MAX_ROWS", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u32).range(1000..))]
    pub audit_max_rows: u32,

    /// Open incidents automatically when a probe is confirmed down (each probe can also opt out
    /// with `incidents.auto_open = false`). Off: state changes still reach open incidents.
    #[arg(long = "auto-incidents", env = "TRIAGE_AUTO_INCIDENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_incidents: bool,

    /// One notification attempt's time limit (connect, send, answer).
    #[arg(long = "notify-timeout", env = "TRIAGE_NOTIFY_TIMEOUT", default_value = "10s")]
    pub notify_timeout: DurationArg,

    /// Attempts per notification before it is marked failed (retries back off from 10 s to 15 min).
    #[arg(long = "notify-attempts", env = "TRIAGE_NOTIFY_ATTEMPTS", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub notify_attempts: u32,

    /// A notification channel failing this long is announced on the other channels.
    #[arg(long = "notify-failing-after", env = "TRIAGE_NOTIFY_FAILING_AFTER", default_value = "10m")]
    pub notify_failing_after: DurationArg,

    /// Flap control: a probe's state changes reach a channel at most once per this window, plus
    /// one summary at its end.
    #[arg(long = "notify-flap-window", env = "TRIAGE_NOTIFY_FLAP_WINDOW", default_value = "10m")]
    pub notify_flap_window: DurationArg,

    /// A probe seeing a certificate that expires within this many days raises
    /// `certificate.expiring` (once per certificate).
    #[arg(long = "notify-cert-days", env = "TRIAGE_NOTIFY_CERT_DAYS", default_value_t = 14,
          value_parser = clap::value_parser!(u32).range(1..=365))]
    pub notify_cert_days: u32,

    /// How long notification events and their delivery log are kept.
    #[arg(long = "notify-log-retention", env = "TRIAGE_NOTIFY_LOG_RETENTION", default_value = "90d")]
    pub notify_log_retention: DurationArg,

    /// A link to a check's trace in your tracing UI, with `{trace_id}` where the trace id goes
    /// (e.g. `https://jaeger.internal/trace/{trace_id}`); shown beside every request id.
    #[arg(long = "trace-url", env = "TRIAGE_TRACE_URL")]
    pub trace_url: Option<String>,

    /// Declarative probe file (TOML) applied at start: its probes are created or updated by name and
    /// marked as managed by the file.
    #[arg(long = "config", env = "TRIAGE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// A problem with the configuration: printed as one line, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Cli {
    /// The serving options, whether given to `triage serve …` or to plain `triage …`.
    pub fn serve_args(&self) -> &ServeArgs {
        match &self.command {
            Some(Command::Serve(args)) => args,
            _ => &self.serve,
        }
    }

    /// Checks relations between options that clap cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if matches!(self.command, Some(Command::Serve(_)))
            && let Ok(defaults) = Cli::try_parse_from(["triage"])
            && self.serve != defaults.serve
        {
            return Err(ConfigError(
                "serving options go after `serve`, e.g. `triage serve --addr 0.0.0.0:3000`".into(),
            ));
        }
        if let Some(Command::Agent(agent)) = &self.command {
            if let Some(why) = app::model::location_problem(&agent.location) {
                return Err(ConfigError(format!("--location {why}")));
            }
            if agent.location == app::model::LOCAL {
                return Err(ConfigError(
                    "--location: \"local\" is the server's own location; name this agent's".into(),
                ));
            }
            if !matches!(agent.server.scheme(), "http" | "https") {
                return Err(ConfigError("--server must be an http:// or https:// URL".into()));
            }
            if agent.token.trim().is_empty() {
                return Err(ConfigError("--token (or TRIAGE_TOKEN) must not be empty".into()));
            }
        }
        let db = &self.database;
        if db.db_min_connections > db.db_max_connections {
            return Err(ConfigError(format!(
                "--db-min-connections ({}) must not exceed --db-max-connections ({})",
                db.db_min_connections, db.db_max_connections
            )));
        }
        for (name, value) in [
            ("--request-timeout", self.serve_args().request_timeout),
            ("--header-read-timeout", self.serve_args().header_read_timeout),
            ("--readiness-timeout", self.serve_args().readiness_timeout),
        ] {
            if value.0.is_zero() {
                return Err(ConfigError(format!("{name} must be greater than zero")));
            }
        }
        if self.serve_args().raw_retention.0 < Duration::from_secs(86_400) {
            return Err(ConfigError("--raw-retention must be at least 1d".into()));
        }
        if self.serve_args().audit_retention.0 < Duration::from_secs(86_400) {
            return Err(ConfigError("--audit-retention must be at least 1d".into()));
        }
        let serve = self.serve_args();
        if serve.session_idle.0 < Duration::from_secs(60) || serve.session_lifetime.0 < serve.session_idle.0 {
            return Err(ConfigError("--session-idle must be at least 1m and not exceed --session-lifetime".into()));
        }
        if let Some(u) = &serve.public_url
            && !matches!(u.scheme(), "http" | "https")
        {
            return Err(ConfigError("--public-url must start with http:// or https://".into()));
        }
        if let Some(t) = &serve.trace_url
            && (!t.contains("{trace_id}") || !(t.starts_with("http://") || t.starts_with("https://")))
        {
            return Err(ConfigError("--trace-url must be an http(s) URL containing {trace_id}".into()));
        }
        if self.serve_args().body_limit.0 == 0 {
            return Err(ConfigError("--body-limit must be greater than zero".into()));
        }
        Ok(())
    }
}

/// A PostgreSQL URL whose password never reaches logs or error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The full URL, password included: only for handing to the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let s = &self.0;
        let Some(scheme_end) = s.find("://") else {
            return "***".into();
        };
        let rest = &s[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let user = userinfo.split(':').next().unwrap_or("");
                let masked = if userinfo.contains(':') { format!("{user}:***") } else { user.to_string() };
                format!("{}://{}{}", &s[..scheme_end], masked, &rest[at..])
            }
            None => s.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl FromStr for DatabaseUrl {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The message must not echo the input: it may carry a password.
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Self(s.to_string()))
        } else {
            Err(ConfigError("expected a URL starting with postgres:// or postgresql://".into()))
        }
    }
}

/// A duration written as `500ms`, `10s`, `5m`, `1h` (a bare number means seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

impl FromStr for DurationArg {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| ConfigError(format!("'{s}' is not a duration (try 500ms, 10s, 5m)")))?;
        let d = match unit.trim() {
            "ms" => Duration::from_millis(n),
            "" | "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            other => return Err(ConfigError(format!("unknown duration unit '{other}' (use ms, s, m, h or d)"))),
        };
        Ok(Self(d))
    }
}

/// A byte count written as `1000`, `512KiB`, `2MiB`, `1GiB` (also kB/MB/GB as powers of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: usize =
            num.parse().map_err(|_| ConfigError(format!("'{s}' is not a size (try 1048576, 512KiB, 2MiB)")))?;
        let mult: usize = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "kB" | "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => return Err(ConfigError(format!("unknown size unit '{other}' (use B, KiB, MiB, GiB)"))),
        };
        n.checked_mul(mult).map(Self).ok_or_else(|| ConfigError(format!("'{s}' is too large")))
    }
}

/// Parses the process arguments. Errors come back as one line (without clap's usage hint) so that
/// `main` can print it and exit with code 2; `--help` and `--version` print and exit 0 here.
pub fn parse_args<I, T>(args: I) -> Result<Cli, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => match err.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
            _ => {
                let rendered = err.render().to_string();
                let mut line = rendered
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: ")
                    .to_string();
                // clap quotes the rejected value; for options that carry secrets, hide it.
                let arg = err.get(ContextKind::InvalidArg).map(|a| a.to_string()).unwrap_or_default();
                if SECRET_ARGS.iter().any(|s| arg.contains(s))
                    && let Some(ContextValue::String(value)) = err.get(ContextKind::InvalidValue)
                    && !value.is_empty()
                {
                    line = line.replace(value.as_str(), "***");
                }
                return Err(ConfigError(line));
            }
        },
    };
    cli.validate()?;
    Ok(cli)
}

/// The default data directory: per-user normally; a system path as root, because the embedded
/// PostgreSQL then runs as the `postgres` user, which cannot reach into /root.
pub fn default_data_dir() -> Result<PathBuf, ConfigError> {
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from("/var/lib/triage"));
    }
    dirs::data_dir()
        .map(|d| d.join("triage"))
        .ok_or_else(|| ConfigError("cannot determine a data directory: set --data-dir or TRIAGE_DATA_DIR".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, ConfigError> {
        let mut v = vec!["triage"];
        v.extend_from_slice(args);
        parse_args(v)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = parse(&[]).expect("defaults parse");
        assert_eq!(cli.serve.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(cli.serve.request_timeout.0, Duration::from_secs(30));
        assert_eq!(cli.serve.body_limit.0, 2 << 20);
        assert_eq!(cli.log.log_format, LogFormat::Text);
        assert!(cli.command.is_none());
    }

    #[test]
    fn serve_subcommand_accepts_options_after_it() {
        let cli = parse(&["--data-dir", "/tmp/x", "serve", "--addr", "0.0.0.0:8080"]).expect("parses");
        assert!(matches!(cli.command, Some(Command::Serve(_))));
        assert_eq!(cli.serve_args().addr.port(), 8080);
        assert_eq!(cli.database.data_dir.as_deref(), Some(std::path::Path::new("/tmp/x")), "global options work");
        let plain = parse(&["--addr", "0.0.0.0:8081"]).expect("parses");
        assert_eq!(plain.serve_args().addr.port(), 8081, "plain `triage` serves too");
        let misplaced = parse(&["--addr", "0.0.0.0:8082", "serve"]).expect_err("would be ignored");
        assert!(misplaced.0.contains("after `serve`"), "{misplaced}");
    }

    #[test]
    fn demo_target_has_its_own_address() {
        let demo = parse(&["demo-target", "--addr", "127.0.0.1:4100"]).expect("parses");
        assert!(matches!(
            demo.command,
            Some(Command::DemoTarget(DemoTargetArgs { addr, control_addr: None })) if addr.port() == 4100
        ));
    }

    #[test]
    fn bad_address_is_one_line_naming_the_option() {
        let err = parse(&["--addr", "nonsense"]).expect_err("must fail");
        assert!(!err.0.contains('\n'), "one line: {err}");
        assert!(err.0.contains("--addr"), "names the option: {err}");
    }

    #[test]
    fn durations_and_sizes_parse_with_units() {
        assert_eq!("500ms".parse::<DurationArg>(), Ok(DurationArg(Duration::from_millis(500))));
        assert_eq!("2m".parse::<DurationArg>(), Ok(DurationArg(Duration::from_secs(120))));
        assert_eq!("7".parse::<DurationArg>(), Ok(DurationArg(Duration::from_secs(7))));
        assert!("7 fortnights".parse::<DurationArg>().is_err());
        assert_eq!("512KiB".parse::<ByteSize>(), Ok(ByteSize(512 * 1024)));
        assert_eq!("3MB".parse::<ByteSize>(), Ok(ByteSize(3_000_000)));
        assert!("lots".parse::<ByteSize>().is_err());
    }

    #[test]
    fn min_connections_above_max_is_rejected() {
        let err = parse(&["--db-min-connections", "20", "--db-max-connections", "5"]).expect_err("must fail");
        assert!(err.0.contains("--db-min-connections"));
    }

    #[test]
    fn database_url_password_is_redacted_everywhere() {
        let url: DatabaseUrl = "postgres://app:s3cret@db.example:5432/triage?sslmode=require".parse().expect("valid");
        assert_eq!(url.redacted(), "postgres://app:***@db.example:5432/triage?sslmode=require");
        assert!(!format!("{url:?}").contains("s3cret"));
        let err = parse(&["--database-url", "mysql://root:hunter2@x/y"]).expect_err("wrong scheme");
        assert!(!err.0.contains("hunter2"), "error must not echo the secret: {err}");
    }
}
