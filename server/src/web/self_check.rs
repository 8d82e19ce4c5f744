//! The readiness check behind `/readyz`: a bounded database round trip, its result reused for a
//! short time and computed at most once at a time however many load balancers poll.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use app::model::{ComponentCheck, ComponentStatus, LatencySample, Readiness};
use chrono::Utc;
use sqlx::PgPool;

use crate::monitor::cached::Cached;
use crate::storage;

/// Samples kept for the status page's chart.
const HISTORY: usize = 120;

pub struct ReadinessChecker {
    pool: PgPool,
    timeout: Duration,
    cached: Cached<Readiness, Infallible>,
    history: Mutex<VecDeque<LatencySample>>,
}

impl ReadinessChecker {
    pub fn new(pool: PgPool, timeout: Duration, cache_for: Duration) -> Arc<Self> {
        Arc::new(Self { pool, timeout, cached: Cached::new(cache_for), history: Mutex::new(VecDeque::new()) })
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
        let report = Readiness::from_checks(BTreeMap::from([("database".to_string(), database)]), now);
        let mut history = self.history_mut();
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(sample);
        report
    }
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
