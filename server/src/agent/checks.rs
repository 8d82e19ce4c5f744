//! The agent's checks: one task per assigned probe, at the same phase of its interval as the
//! server would run it, with the server's check engine and this agent's network policy. Results
//! leave through a bounded channel (a full spool writer slows the checks, it never grows memory).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use app::model::{AssignedProbe, ProbeKind, ProbeResult, ProbeSpec};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::monitor::check::execute::{self, ScrapeMemory};
use crate::monitor::check::policy::NetworkPolicy;
use crate::monitor::check::spec::{self, CompiledProbe};
use crate::monitor::schedule::phase_ms;

/// The header naming where a check came from, so a target's logs (and tests) can tell the
/// locations apart. A spec that sets it itself keeps its own value.
pub const LOCATION_HEADER: &str = "x-triage-location";

/// Results are restamped in the server's time when the agent's clock is off by this much.
const CORRECT_FROM_MS: i64 = 1_000;

pub struct Checks {
    location: String,
    policy: Arc<NetworkPolicy>,
    permits: Arc<Semaphore>,
    out: mpsc::Sender<ProbeResult>,
    /// The agent's clock minus the server's, in ms: results are stamped in the server's time.
    offset_ms: Arc<AtomicI64>,
    running: HashMap<Uuid, (ProbeSpec, JoinHandle<()>)>,
}

impl Checks {
    pub fn new(
        location: String,
        policy: Arc<NetworkPolicy>,
        concurrency: usize,
        out: mpsc::Sender<ProbeResult>,
        offset_ms: Arc<AtomicI64>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        Self { location, policy, permits, out, offset_ms, running: HashMap::new() }
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Takes a whole new list: stops what left it, restarts what changed, starts what is new.
    pub fn apply(&mut self, assigned: Vec<AssignedProbe>) {
        let mut keep = HashMap::with_capacity(assigned.len());
        for a in assigned {
            if let Some((spec, task)) = self.running.remove(&a.id) {
                if spec == a.spec && !task.is_finished() {
                    keep.insert(a.id, (spec, task));
                    continue;
                }
                task.abort();
            }
            match self.compile(&a) {
                Ok(probe) => {
                    let task = tokio::spawn(run(
                        probe,
                        self.location.clone(),
                        self.policy.clone(),
                        self.permits.clone(),
                        self.out.clone(),
                        self.offset_ms.clone(),
                    ));
                    keep.insert(a.id, (a.spec, task));
                }
                Err(e) => tracing::error!(probe = %a.spec.name, error = %e, "assigned probe is invalid here; not run"),
            }
        }
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
        self.running = keep;
    }

    fn compile(&self, a: &AssignedProbe) -> Result<CompiledProbe, spec::SpecError> {
        let mut spec = a.spec.clone();
        if matches!(spec.kind, ProbeKind::Http | ProbeKind::Readiness | ProbeKind::Metrics)
            && !spec.headers.keys().any(|k| k.eq_ignore_ascii_case(LOCATION_HEADER))
        {
            spec.headers.insert(LOCATION_HEADER.into(), self.location.clone());
        }
        spec::compile(a.id, a.service_id, &spec)
    }

    pub fn stop(&mut self) {
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn run(
    probe: CompiledProbe,
    location: String,
    policy: Arc<NetworkPolicy>,
    permits: Arc<Semaphore>,
    out: mpsc::Sender<ProbeResult>,
    offset_ms: Arc<AtomicI64>,
) {
    let Some(check) = &probe.check else { return };
    let interval = probe.interval;
    let period_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX).max(1);
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    let wait = (phase_ms(probe.id, period_ms) + period_ms - now_ms % period_ms) % period_ms;
    let mut due = Instant::now() + Duration::from_millis(wait);
    let mut memory = ScrapeMemory::default();
    loop {
        tokio::time::sleep_until(due).await;
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let mut result = execute::run(probe.id, probe.kind, check, &probe.pool_mapping, &policy, &mut memory).await;
        drop(permit);
        result.location = Some(location.clone());
        // A clock that is clearly wrong is corrected; below a second, an estimate over a loaded
        // network is noisier than the clock it would correct (NTP keeps agents within ms).
        let offset = offset_ms.load(Ordering::Relaxed);
        if offset.abs() >= CORRECT_FROM_MS {
            result.at -= chrono::Duration::milliseconds(offset);
        }
        if out.send(result).await.is_err() {
            return;
        }
        due += interval;
        let now = Instant::now();
        if due <= now {
            // Missed ticks are skipped, not replayed in a burst (as on the server).
            let behind = u64::try_from(now.duration_since(due).as_millis()).unwrap_or(u64::MAX);
            due += interval * u32::try_from(behind / period_ms + 1).unwrap_or(u32::MAX);
        }
    }
}
