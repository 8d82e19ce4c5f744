//! The readiness check behind `/readyz`: a bounded database round trip, whether results can be
//! written, and the embedded cluster's state (when Triage runs one), the result reused for a
//! short time and computed at most once at a time however many load balancers poll.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use app::model::{ComponentCheck, ComponentStatus, LatencySample, Readiness};
use chrono::Utc;
use sqlx::PgPool;

use tokio::sync::watch;

use crate::monitor::cached::Cached;
use crate::monitor::ingest::IngestStats;
use crate::storage;
use crate::storage::supervisor::ClusterState;

/// Samples kept for the status page's chart.
const HISTORY: usize = 120;

pub struct ReadinessChecker {
    pool: PgPool,
    /// The results writer's counters: whether its last write failed, and why.
    ingest: Arc<IngestStats>,
    /// The embedded cluster's state and data directory, when Triage runs its own PostgreSQL.
    cluster: OnceLock<(watch::Receiver<ClusterState>, PathBuf)>,
    timeout: Duration,
    cached: Cached<Readiness, Infallible>,
    history: Mutex<VecDeque<LatencySample>>,
}

impl ReadinessChecker {
    pub fn new(pool: PgPool, ingest: Arc<IngestStats>, timeout: Duration, cache_for: Duration) -> Arc<Self> {
        Arc::new(Self {
            pool,
            ingest,
            cluster: OnceLock::new(),
            timeout,
            cached: Cached::new(cache_for),
            history: Mutex::new(VecDeque::new()),
        })
    }

    /// Reports the embedded cluster's state, and the free space of its disk, from now on.
    pub fn attach_cluster(&self, state: watch::Receiver<ClusterState>, data_dir: PathBuf) {
        let _ = self.cluster.set((state, data_dir));
    }

    fn history_mut(&self) -> MutexGuard<'_, VecDeque<LatencySample>> {
        self.history.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub async fn check(self: &Arc<Self>) -> Readiness {
        let this = Arc::clone(self);
        match self.cached.get(move || async move { Ok(this.run().await) }).await {
            Ok(report) => report,
            Err(never) => match never {},
        }
    }

    pub fn history(&self) -> Vec<LatencySample> {
        self.history_mut().iter().copied().collect()
    }

    async fn run(&self) -> Readiness {
        let started = Instant::now();
        let database = match tokio::time::timeout(self.timeout, storage::ping(&self.pool)).await {
            Ok(Ok(())) => ComponentCheck {
                status: ComponentStatus::Up,
                latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
                error: None,
            },
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "readiness: database check failed");
                ComponentCheck { status: ComponentStatus::Down, latency_ms: None, error: Some(describe(&err)) }
            }
            Err(_) => ComponentCheck {
                status: ComponentStatus::Down,
                latency_ms: None,
                error: Some(format!("no answer within {} ms", self.timeout.as_millis())),
            },
        };
        let now = Utc::now();
        let sample = LatencySample { at: now, latency_ms: database.latency_ms };
        let mut checks = BTreeMap::from([("database".to_string(), database)]);
        // A database that answers `select 1` may still refuse every write (a full disk): the
        // results writer's last write says whether storing works.
        let storage = match self.ingest.failing() {
            None => ComponentCheck { status: ComponentStatus::Up, latency_ms: None, error: None },
            Some(why) => ComponentCheck { status: ComponentStatus::Down, latency_ms: None, error: Some(why) },
        };
        checks.insert("storage".to_string(), storage);
        if let Some((cluster, data_dir)) = self.cluster.get() {
            let problem = cluster.borrow().problem();
            checks.insert("postgres".to_string(), component(problem));
            checks.insert("disk".to_string(), component(disk_problem(data_dir)));
        }
        let report = Readiness::from_checks(checks, now);
        let mut history = self.history_mut();
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(sample);
        report
    }
}

fn component(problem: Option<String>) -> ComponentCheck {
    let status = if problem.is_some() { ComponentStatus::Down } else { ComponentStatus::Up };
    ComponentCheck { status, latency_ms: None, error: problem }
}

/// Below this much free space PostgreSQL is about to fail writes (and may stop on a WAL write).
const MIN_FREE_BYTES: u64 = 32 << 20;

/// Whether the disk under the embedded cluster is (nearly) full.
fn disk_problem(data_dir: &Path) -> Option<String> {
    let stat = match nix::sys::statvfs::statvfs(data_dir) {
        Ok(stat) => stat,
        Err(e) => return Some(format!("cannot read free space of {}: {e}", data_dir.display())),
    };
    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
    (free < MIN_FREE_BYTES).then(|| {
        format!(
            "only {} KiB free under {} (at least {} MiB needed)",
            free >> 10,
            data_dir.display(),
            MIN_FREE_BYTES >> 20
        )
    })
}

/// A description safe to publish: the kind of failure, never addresses or credentials.
fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::PoolTimedOut => "no free connection in the pool".into(),
        sqlx::Error::PoolClosed => "the connection pool is closed".into(),
        sqlx::Error::Io(_) => "cannot reach the database".into(),
        sqlx::Error::Tls(_) => "TLS handshake with the database failed".into(),
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("database error (SQLSTATE {code})"),
            None => "database error".into(),
        },
        _ => "database unavailable".into(),
    }
}
