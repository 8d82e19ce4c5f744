//! The `serve` command: database first (embedded or external), then migrations, then the HTTP
//! server; on SIGINT/SIGTERM the reverse order.

use std::time::Duration;

use app::model::DatabaseMode;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

use super::RunError;
use crate::config::{Cli, DatabaseArgs, default_data_dir};
use crate::monitor::pipeline::Probing;
use crate::monitor::probe_file;
use crate::storage;
use crate::storage::cluster::{self, EmbeddedPg, EmbeddedPgConfig, EmbeddedPgError};
use crate::storage::pool::{self, PoolSettings};
use crate::storage::supervisor::{Backoff, Supervisor};
use crate::web::http_server::{self, Application, ServeSettings};

/// The database Triage runs on: its pool, and the embedded cluster if it started one.
pub struct Database {
    pub pool: sqlx::PgPool,
    pub embedded: Option<Supervisor>,
    pub mode: DatabaseMode,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the embedded cluster, then runs migrations.
    pub async fn open(args: &DatabaseArgs) -> Result<Self, RunError> {
        let settings =
            PoolSettings { max_connections: args.db_max_connections, min_connections: args.db_min_connections };
        let (pool, embedded, mode) = match &args.database_url {
            Some(url) => {
                if args.data_dir.is_some() {
                    tracing::warn!("DATABASE_URL is set: --data-dir / TRIAGE_DATA_DIR is ignored");
                }
                let options = PgConnectOptions::from_str(url.expose())
                    .map_err(|_| RunError::Config("DATABASE_URL is not a valid PostgreSQL URL".into()))?;
                tracing::info!(url = %url.redacted(), "using external PostgreSQL");
                let pool = pool::connect(options, settings).await.map_err(|e| {
                    RunError::Database(format!("cannot connect to {}: {}", url.redacted(), pool::describe(&e)))
                })?;
                (pool, None, DatabaseMode::External)
            }
            None => {
                let data_dir = match &args.data_dir {
                    Some(d) => d.clone(),
                    None => default_data_dir().map_err(|e| RunError::Config(e.0))?,
                };
                let mut config = EmbeddedPgConfig::new(data_dir);
                config.bin_dir = args.pg_bin_dir.clone();
                let start_config = config.clone();
                let pg = tokio::task::spawn_blocking(move || EmbeddedPg::start(&start_config))
                    .await
                    .map_err(|e| RunError::Io(format!("embedded PostgreSQL start-up task failed: {e}")))??;
                let admin = pool::connect(
                    pg.connect_options("postgres"),
                    PoolSettings { max_connections: 1, min_connections: 0 },
                )
                .await
                .map_err(|e| RunError::Database(format!("embedded cluster: {}", pool::describe(&e))))?;
                storage::create_database_if_missing(&admin, cluster::DATABASE)
                    .await
                    .map_err(|e| RunError::Database(format!("creating the triage database: {}", pool::describe(&e))))?;
                admin.close().await;
                let pool = pool::connect(pg.connect_options(cluster::DATABASE), settings)
                    .await
                    .map_err(|e| RunError::Database(format!("embedded cluster: {}", pool::describe(&e))))?;
                (pool, Some(Supervisor::start(pg, config, Backoff::default())), DatabaseMode::Embedded)
            }
        };
        pool::migrate(&pool).await.map_err(|e| RunError::Database(format!("migrations failed: {e}")))?;
        Ok(Self { pool, embedded, mode })
    }

    /// For command-line tools: like [`Database::open`], but when another Triage runs the embedded
    /// cluster of this data directory, connects to that cluster instead of refusing.
    pub async fn open_or_attach(args: &DatabaseArgs) -> Result<Self, RunError> {
        match Self::open(args).await {
            Err(RunError::EmbeddedPg(EmbeddedPgError::InUse { dir, .. })) => {
                let options = cluster::attach_options(&dir, cluster::DATABASE);
                let pool = pool::connect(options, PoolSettings { max_connections: 2, min_connections: 0 })
                    .await
                    .map_err(|e| {
                        RunError::Database(format!(
                            "attaching to the running instance's database: {}",
                            pool::describe(&e)
                        ))
                    })?;
                tracing::info!(dir = %dir.display(), "data directory in use: attached to its running PostgreSQL");
                Ok(Self { pool, embedded: None, mode: DatabaseMode::Embedded })
            }
            other => other,
        }
    }

    /// Closes the pool, then stops the embedded cluster (if any) cleanly.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(pg) = self.embedded
            && let Err(e) = pg.stop(Duration::from_secs(30)).await
        {
            tracing::error!(error = %e, "stopping the embedded PostgreSQL");
        }
    }
}

/// `triage serve`.
pub async fn serve(cli: &Cli) -> Result<(), RunError> {
    let mut settings = ServeSettings::from(cli.serve_args());
    let database = Database::open(&cli.database).await?;
    if let Some(pg) = &database.embedded {
        settings.setup_token_file = Some(pg.data_dir().join("setup-token"));
    }
    let result = serve_on(&database, &settings).await;
    database.close().await;
    result
}

async fn serve_on(database: &Database, settings: &ServeSettings) -> Result<(), RunError> {
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|e| RunError::Config(format!("cannot listen on {}: {e}", settings.addr)))?;
    let addr = listener.local_addr().map_err(|e| RunError::Io(e.to_string()))?;
    let (state, probing) = http_server::build_state(database.pool.clone(), settings, database.mode, addr)
        .await
        .map_err(|e| RunError::Database(pool::describe(&e)))?;
    if let Some(pg) = &database.embedded {
        state.readiness.attach_cluster(pg.state(), pg.data_dir().to_path_buf());
    }
    let prepared = prepare_probes(&database.pool, &probing, settings, addr).await;
    if let Err(e) = prepared {
        probing.shutdown(Duration::from_secs(5)).await;
        return Err(e);
    }
    if let Err(e) = state.demo.resume(&state.pool, &state.scheduler).await {
        // The demo is a convenience: Triage runs without it.
        tracing::warn!(error = %e, "the built-in demo could not start again");
    }
    spawn_reload_on_hangup(&state);
    let stopping = state.stopping.clone();
    let router = http_server::router(state, settings, crate::web::access::Secured::default());
    let app = Application::with_listener(listener, settings, router);
    let stop_signal = http_server::shutdown_signal();
    tracing::info!(url = %format!("http://{addr}"), "Triage is up");
    app.run_until_stopped(async move {
        stop_signal.await;
        stopping.send_replace(true);
    })
    .await;
    probing.shutdown(settings.shutdown_timeout).await;
    Ok(())
}

/// Records an application of the probe file, with what it changed.
async fn audit_file(
    pool: &sqlx::PgPool,
    path: &std::path::Path,
    diff: &probe_file::FileDiff,
    actor: &str,
) -> Result<(), sqlx::Error> {
    let entry = crate::storage::auth::AuditEntry {
        actor: actor.into(),
        action: "probes.apply".into(),
        target: path.display().to_string(),
        detail: serde_json::to_value(diff).unwrap_or_default(),
        remote_addr: None,
        request_id: None,
    };
    crate::storage::auth::insert_audit(pool, &entry).await
}

/// On SIGHUP, re-reads the probe file and applies it; a bad file is logged and changes nothing.
fn spawn_reload_on_hangup(state: &crate::web::state::AppState) {
    let path = state.config_file.clone();
    let state = state.clone();
    // Registered before "Triage is up" is logged, not in the task: until the handler exists,
    // SIGHUP's default action ends the process, and a reload sent right after start would kill it.
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; the probe file is read at start only");
            return;
        }
    };
    tokio::spawn(async move {
        let mut stopping = state.stopping.subscribe();
        loop {
            tokio::select! {
                _ = stopping.changed() => return,
                got = hangups.recv() => if got.is_none() { return },
            }
            // Installed without a file too: SIGHUP (a service manager's "reload") must not end Triage.
            let Some(path) = &path else {
                tracing::info!("SIGHUP: no probe file (--config) to re-read");
                continue;
            };
            match crate::respond::declared::reload(&state.pool, &state.scheduler, path, false).await {
                Ok(diff) => {
                    tracing::info!(path = %path.display(), changes = %diff.render().trim_end().replace('\n', "; "), "SIGHUP: probe file applied");
                    if let Err(e) = audit_file(&state.pool, path, &diff, "config-file (SIGHUP)").await {
                        tracing::error!(error = %e, "SIGHUP: the probe file was applied but not recorded in the audit trail");
                    }
                }
                Err(e) => tracing::error!(path = %path.display(), error = %e, "SIGHUP: probe file not applied"),
            }
        }
    });
}

/// Applies the declarative file and sets up Triage's watch of itself.
async fn prepare_probes(
    pool: &sqlx::PgPool,
    probing: &Probing,
    settings: &ServeSettings,
    addr: std::net::SocketAddr,
) -> Result<(), RunError> {
    if let Some(path) = &settings.config_file {
        let file = probe_file::load(path).map_err(|e| RunError::Config(e.to_string()))?;
        let diff = crate::respond::declared::apply_with_diff(pool, Some(&probing.scheduler), &file, false)
            .await
            .map_err(|e| RunError::Config(format!("{}: {e}", path.display())))?;
        tracing::info!(path = %path.display(), probes = file.probes.len(), removed = diff.probes_removed.len(), "probe file applied");
        audit_file(pool, path, &diff, "config-file")
            .await
            .map_err(|e| RunError::Database(format!("recording the probe file in the audit trail: {e}")))?;
    }
    if settings.probes.self_watch {
        probing.watch_self(pool, addr).await.map_err(|e| RunError::Database(format!("self-watch: {e}")))?;
    }
    Ok(())
}
