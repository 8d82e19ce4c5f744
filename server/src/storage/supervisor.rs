//! Keeps the embedded PostgreSQL running. When the server exits without being asked to (killed,
//! crashed, a PANIC on a full disk), it is started again with backoff, until it runs or Triage
//! stops. Its state is published for `/readyz` and written to the log at every change; the
//! connection pool reconnects by itself once the server is back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::cluster::{EmbeddedPg, EmbeddedPgConfig};

/// What the embedded server is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterState {
    Running {
        pid: u32,
        since: DateTime<Utc>,
        restarts: u32,
    },
    /// It exited; `attempt` restarts have been tried since (the last one's error, if any).
    Restarting {
        exited: String,
        since: DateTime<Utc>,
        attempt: u32,
        last_error: Option<String>,
    },
    Stopped,
}

impl ClusterState {
    /// One line for `/readyz` and the status page; `None` while it runs.
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::Running { .. } => None,
            Self::Restarting { exited, since, attempt, last_error } => Some(format!(
                "exited ({exited}) at {}; restarting (attempt {attempt}){}",
                since.format("%H:%M:%S UTC"),
                last_error.as_deref().map(|e| format!(", last: {e}")).unwrap_or_default()
            )),
            Self::Stopped => Some("stopped".into()),
        }
    }
}

/// How soon a dead server is started again: `first`, doubling up to `max`. The maximum stays
/// short so Triage is back within seconds once whatever killed the server is gone.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { first: Duration::from_millis(500), max: Duration::from_secs(4) }
    }
}

/// The embedded cluster under supervision.
pub struct Supervisor {
    pg: Arc<Mutex<Option<EmbeddedPg>>>,
    state: watch::Sender<ClusterState>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    data_dir: std::path::PathBuf,
}

/// How often the server's exit is looked for (the exit status is already collected by the
/// cluster's own reaper thread; this only reads it).
const WATCH_EVERY: Duration = Duration::from_millis(200);

impl Supervisor {
    /// Watches `pg`, started from `config`, restarting it with `backoff` when it dies.
    pub fn start(pg: EmbeddedPg, config: EmbeddedPgConfig, backoff: Backoff) -> Self {
        let data_dir = pg.data_dir().to_path_buf();
        let state = watch::Sender::new(ClusterState::Running { pid: pg.pid(), since: Utc::now(), restarts: 0 });
        let pg = Arc::new(Mutex::new(Some(pg)));
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(watch_over(Arc::clone(&pg), config, backoff, state.clone(), stopping));
        Self { pg, state, stop, task, data_dir }
    }

    /// The server's state, to read or to wait on.
    pub fn state(&self) -> watch::Receiver<ClusterState> {
        self.state.subscribe()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// The running server's pid.
    pub fn pid(&self) -> Option<u32> {
        match *self.state.borrow() {
            ClusterState::Running { pid, .. } => Some(pid),
            _ => None,
        }
    }

    /// Ends supervision, then stops the server cleanly (blocking work off the runtime).
    #[tracing::instrument(skip_all)]
    pub async fn stop(mut self, timeout: Duration) -> Result<(), super::cluster::EmbeddedPgError> {
        self.stop.send_replace(true);
        let _ = (&mut self.task).await;
        self.state.send_replace(ClusterState::Stopped);
        let pg = self.pg.lock().unwrap_or_else(|p| p.into_inner()).take();
        match pg {
            Some(mut pg) => tokio::task::spawn_blocking(move || pg.stop(timeout))
                .await
                .unwrap_or_else(|e| Err(super::cluster::EmbeddedPgError::Setup(format!("stop task: {e}")))),
            None => Ok(()),
        }
    }
}

impl Drop for Supervisor {
    /// Dropped without `stop` (start-up failed later on): no restarts from now on; the server
    /// stops when its handle goes with the task.
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tracing::instrument(skip_all, name = "postgres_supervisor")]
async fn watch_over(
    pg: Arc<Mutex<Option<EmbeddedPg>>>,
    config: EmbeddedPgConfig,
    backoff: Backoff,
    state: watch::Sender<ClusterState>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut restarts = 0u32;
    loop {
        // Until the running server exits, or Triage stops.
        let exited = loop {
            let status = pg.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(EmbeddedPg::exit_status);
            if let Some(status) = status {
                break status.to_string();
            }
            tokio::select! {
                () = tokio::time::sleep(WATCH_EVERY) => {}
                _ = stopping.changed() => return,
            }
        };
        let since = Utc::now();
        tracing::error!(
            exit = %exited,
            log = %config.data_dir.join("postgres.log").display(),
            "embedded PostgreSQL exited unexpectedly; restarting it (writes answer 503 meanwhile)"
        );
        // The dead server's handle goes first: it holds the data directory's lock.
        let dead = pg.lock().unwrap_or_else(|p| p.into_inner()).take();
        let _ = tokio::task::spawn_blocking(move || drop(dead)).await;
        let mut attempt = 0u32;
        let mut wait = backoff.first;
        let mut last_error = None;
        let started = loop {
            state.send_replace(ClusterState::Restarting {
                exited: exited.clone(),
                since,
                attempt,
                last_error: last_error.clone(),
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stopping.changed() => return,
            }
            attempt += 1;
            let config = config.clone();
            match tokio::task::spawn_blocking(move || EmbeddedPg::start(&config)).await {
                Ok(Ok(started)) => break started,
                Ok(Err(e)) => {
                    tracing::warn!(attempt, error = %e, retry_in_ms = wait.as_millis() as u64, "embedded PostgreSQL did not start again");
                    last_error = Some(e.to_string().chars().take(300).collect());
                }
                Err(e) => last_error = Some(format!("start task failed: {e}")),
            }
            wait = (wait * 2).min(backoff.max);
        };
        restarts += 1;
        let pid = started.pid();
        *pg.lock().unwrap_or_else(|p| p.into_inner()) = Some(started);
        tracing::info!(
            pid,
            attempts = attempt,
            down_for_ms = (Utc::now() - since).num_milliseconds(),
            "embedded PostgreSQL running again"
        );
        state.send_replace(ClusterState::Running { pid, since: Utc::now(), restarts });
    }
}
