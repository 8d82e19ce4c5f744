//! Reads that tolerate a second of lag (charts, the overview, status pages) can go to a
//! PostgreSQL streaming replica (`--database-read-url`), taking load off the primary.
//!
//! The replica is used only while it is *fresh*: it answers, and it has replayed everything the
//! primary had written `max_lag` ago. Every [`CHECK_EVERY`] the watcher samples the primary's
//! WAL position and the replica's replay position; the replica is fresh when its replay position
//! has reached the primary's position of `max_lag` ago. Otherwise (replica down, replay paused
//! or behind, not yet enough samples) reads go to the primary. Writes always go to the primary.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::watch;

pub const CHECK_EVERY: Duration = Duration::from_millis(200);
/// How long one position query may take before the replica counts as unavailable.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Reads {
    primary: PgPool,
    replica: Option<PgPool>,
    fresh: Arc<AtomicBool>,
    /// After a change that a cache was told about, reads stay on the primary until then: a
    /// cache refilled from a replica that has not replayed the change would keep the old data.
    primary_until: Arc<Mutex<Option<Instant>>>,
    max_lag: Duration,
}

impl Reads {
    /// Every read on the primary.
    pub fn primary_only(primary: PgPool) -> Self {
        Self { primary, replica: None, fresh: Arc::default(), primary_until: Arc::default(), max_lag: Duration::ZERO }
    }

    /// Reads on `replica` while it is fresh; watches it until `stopping`.
    pub fn with_replica(primary: PgPool, replica: PgPool, max_lag: Duration, stopping: watch::Receiver<bool>) -> Self {
        let reads =
            Self { primary, replica: Some(replica), fresh: Arc::default(), primary_until: Arc::default(), max_lag };
        tokio::spawn(reads.clone().watch(max_lag, stopping));
        reads
    }

    /// The pool for a read that tolerates `max_lag`.
    pub fn pool(&self) -> &PgPool {
        match &self.replica {
            Some(r) if self.fresh.load(Ordering::Relaxed) => r,
            _ => &self.primary,
        }
    }

    /// Something cached was just changed: reads go to the primary for the next `max_lag`.
    pub fn changed(&self) {
        if self.replica.is_none() {
            return;
        }
        let until = Instant::now() + self.max_lag + CHECK_EVERY;
        *self.primary_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
        self.fresh.store(false, Ordering::Relaxed);
    }

    /// Whether reads go to the replica now.
    pub fn using_replica(&self) -> bool {
        self.replica.is_some() && self.fresh.load(Ordering::Relaxed)
    }

    #[tracing::instrument(skip_all)]
    async fn watch(self, max_lag: Duration, mut stopping: watch::Receiver<bool>) {
        let Some(replica) = self.replica.clone() else { return };
        let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
        let mut every = tokio::time::interval(CHECK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
            let now = Instant::now();
            if let Ok(Ok(lsn)) = tokio::time::timeout(QUERY_TIMEOUT, primary_position(&self.primary)).await {
                samples.push_back((now, lsn));
            }
            while samples.len() > 1 && samples[1].0 + max_lag <= now {
                // Keep the newest sample at least `max_lag` old, and everything after it.
                samples.pop_front();
            }
            let due = samples.front().filter(|(at, _)| *at + max_lag <= now).map(|(_, lsn)| *lsn);
            // Without recent samples of the primary nothing says how far behind the replica is.
            let sampling = samples.back().is_some_and(|(at, _)| now.duration_since(*at) < CHECK_EVERY * 3);
            let changed_lately = self.primary_until.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|t| now < t);
            let fresh = match tokio::time::timeout(QUERY_TIMEOUT, replay_position(&replica)).await {
                _ if changed_lately => false,
                // Not a standby at all (pointed at a primary): nothing to lag behind.
                Ok(Ok(None)) => true,
                Ok(Ok(Some(replayed))) => sampling && due.is_some_and(|d| replayed >= d),
                Ok(Err(_)) | Err(_) => false,
            };
            if self.fresh.swap(fresh, Ordering::Relaxed) != fresh {
                if fresh {
                    tracing::info!("reads go to the read replica");
                } else {
                    tracing::warn!(
                        max_lag_ms = max_lag.as_millis() as u64,
                        "read replica down or behind: reads go to the primary"
                    );
                }
            }
        }
    }
}

/// The primary's current WAL position, in bytes.
#[tracing::instrument(skip_all)]
async fn primary_position(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(r#"select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint as "lsn!""#)
        .fetch_one(pool)
        .await
}

/// How far the replica has replayed, in bytes; `None` when it is not a standby.
#[tracing::instrument(skip_all)]
async fn replay_position(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select case when pg_is_in_recovery()
                       then pg_wal_lsn_diff(coalesce(pg_last_wal_replay_lsn(), '0/0'), '0/0')::bigint end as "lsn""#
    )
    .fetch_one(pool)
    .await
}
