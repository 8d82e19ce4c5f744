//! The probe scheduler: one task per enabled probe, each firing at a fixed phase of its interval
//! (derived from the probe's id, so 10,000 probes with a 30 s interval spread over those 30 s
//! instead of firing together), under a global concurrency limit.
//!
//! A check never outlives its own timeout, so a hanging target delays nothing but itself. A
//! probe that could not start on time (all permits busy) skips the ticks it missed rather than
//! bursting to catch up. Each result goes through the probe's confirmation state machine and then
//! to the writer; `submit` waits when the writer is saturated (backpressure, not memory growth).
//! Locks here are `std::sync::Mutex`es held for a few instructions, never across `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use app::model::{
    AssignedProbe, ErrorClass, Outcome, Probe, ProbeKind, ProbeResult, ProbeSpec, ProbeStatus, StateChange,
};
use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::monitor::check::confirm::ProbeState;
use crate::monitor::check::execute::{self, ScrapeMemory};
use crate::monitor::check::policy::NetworkPolicy;
use crate::monitor::check::spec::{self, CompiledProbe};
use crate::monitor::ingest::{Ingest, Record};
use crate::monitor::quorum::{Judge, Located};
use crate::monitor::replicas::View;
use crate::storage::catalog;
use crate::storage::results::StateRow;
use crate::storage::rollups::histogram::LatencyHistogram;

pub const DEFAULT_CONCURRENCY: usize = 512;

/// A probe's confirmed state, shared by its task and the push endpoint.
#[derive(Clone, Debug)]
pub struct Tracker {
    machine: ProbeState,
    since: DateTime<Utc>,
    last_push: Option<DateTime<Utc>>,
    /// Results observed so far: tells a push whether anything else moved the machine while its
    /// own result was being stored.
    observed: u64,
}

impl Tracker {
    fn new(state: Option<Outcome>, since: DateTime<Utc>, probe: &CompiledProbe) -> Self {
        Self { machine: ProbeState::resume(state, probe.confirmation), since, last_push: None, observed: 0 }
    }

    /// Feeds a result through the state machine; returns the state row and any confirmed change.
    ///
    /// A check the network policy refused says nothing about the target: it is a configuration
    /// problem (shown from the stored last error), so it confirms nothing and opens no incident.
    pub fn observe(&mut self, result: &ProbeResult, service_id: Uuid) -> (StateRow, Option<StateChange>) {
        self.observed += 1;
        let blocked = result.error == Some(ErrorClass::BlockedByPolicy);
        let change = (!blocked).then(|| self.machine.observe(result.outcome)).flatten().map(|c| {
            self.since = result.at;
            StateChange {
                probe_id: result.probe_id,
                service_id,
                at: result.at,
                from: c.from,
                to: c.to,
                request_id: result.request_id.clone(),
                error: result.error,
                quorum: None,
            }
        });
        let row = StateRow {
            probe_id: result.probe_id,
            state: self.machine.state(),
            since: self.since,
            last_result_at: result.at,
            last_outcome: result.outcome,
            last_error: result.error,
        };
        (row, change)
    }
}

/// A scheduled probe: its compiled definition and its state.
pub struct Scheduled {
    pub probe: CompiledProbe,
    tracker: Mutex<Tracker>,
    /// Serialises pushes to this probe from trying a result to storing it (held across the
    /// store, so it is an async mutex; the tracker's own lock never is).
    pushing: tokio::sync::Mutex<()>,
}

/// A pushed result's record, computed on a copy of the state machine: the machine itself moves
/// only once the result is stored ([`Scheduled::commit`]), so a store that fails leaves no
/// transition behind and the agent's retry confirms it again, to be stored then.
pub struct Tentative {
    pub record: Record,
    after: Tracker,
    base: u64,
}

impl Scheduled {
    /// The state machine, locked for a moment (never across an await).
    pub fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Builds the writer's record for a finished check (push or scheduled).
    pub fn record(&self, result: ProbeResult) -> Record {
        let (state, change) = self.tracker().observe(&result, self.probe.service_id);
        Record { service_id: self.probe.service_id, result: Arc::new(result), state, change }
    }

    /// Serialises one push from [`try_record`](Self::try_record) to [`commit`](Self::commit).
    pub async fn push_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.pushing.lock().await
    }

    /// The record a pushed result would make, without moving the state machine.
    pub fn try_record(&self, result: ProbeResult) -> Tentative {
        let mut after = self.tracker().clone();
        let base = after.observed;
        let (state, change) = after.observe(&result, self.probe.service_id);
        let record = Record { service_id: self.probe.service_id, result: Arc::new(result), state, change };
        Tentative { record, after, base }
    }

    /// The pushed result is stored: the machine takes the state it was judged with. Should a
    /// scheduled result (a missed heartbeat) have moved it meanwhile, the pushed result is fed
    /// to it in turn instead, so no observation is lost.
    pub fn commit(&self, tentative: &Tentative) {
        let mut t = self.tracker();
        if t.observed == tentative.base {
            let last_push = t.last_push;
            *t = tentative.after.clone();
            t.last_push = last_push;
        } else {
            t.observe(&tentative.record.result, self.probe.service_id);
        }
    }

    /// Takes what PostgreSQL holds when another replica judged this probe last: its confirmed
    /// state (the machine restarts from it when it differs) and its last pushed result (a missed
    /// heartbeat does not count as one).
    pub fn adopt(&self, stored: &ProbeStatus) {
        let mut t = self.tracker();
        if t.machine.state() != stored.state {
            t.machine = ProbeState::resume(stored.state, self.probe.confirmation);
            t.since = stored.since;
        }
        if let Some(at) = stored.last_result_at
            && stored.last_error != Some(ErrorClass::MissedHeartbeat)
        {
            t.last_push = Some(t.last_push.map_or(at, |p| p.max(at)));
        }
    }

    pub fn note_push(&self, at: DateTime<Utc>) {
        let mut t = self.tracker();
        t.last_push = Some(t.last_push.map_or(at, |p| p.max(at)));
    }
}

struct Running {
    scheduled: Arc<Scheduled>,
    /// The definition it was scheduled with: the same definition again changes nothing.
    spec: ProbeSpec,
    task: Option<JoinHandle<()>>,
}

/// Scheduling lateness (how long after its due time a check started), for benchmarks and metrics.
#[derive(Default)]
pub struct Lateness {
    histogram: Mutex<LatencyHistogram>,
    pub started: AtomicU64,
    /// The exported histogram (`triage_probe_lateness_seconds`), once metrics are attached.
    exported: std::sync::OnceLock<prometheus_client::metrics::histogram::Histogram>,
}

impl Lateness {
    fn record(&self, late: Duration) {
        self.started.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.histogram.lock().unwrap_or_else(|p| p.into_inner()).record(us);
        if let Some(h) = self.exported.get() {
            h.observe(late.as_secs_f64());
        }
    }

    /// Records every check's lateness into `histogram` too, from now on.
    pub fn export_to(&self, histogram: prometheus_client::metrics::histogram::Histogram) {
        let _ = self.exported.set(histogram);
    }

    /// The lateness histogram so far, and a fresh one from now on.
    pub fn take(&self) -> LatencyHistogram {
        std::mem::take(&mut *self.histogram.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

struct Inner {
    policy: Arc<NetworkPolicy>,
    ingest: Ingest,
    permits: Arc<Semaphore>,
    probes: Mutex<HashMap<Uuid, Running>>,
    lateness: Lateness,
    /// Where probe tasks run (see [`crate::monitor::runtime`]).
    runtime: tokio::runtime::Handle,
    /// Which probes this replica runs; every probe is still known (for pushes and reads).
    view: Mutex<View>,
    /// Where a push probe's loop looks before calling a heartbeat missed: with several
    /// replicas, the push may have reached another one.
    pool: Option<sqlx::PgPool>,
    /// Judges the local results of probes run from several locations (by quorum, in PostgreSQL).
    judge: Option<Judge>,
    /// Bumped whenever a probe's definition changes: agents' streams send their assignments again.
    changed: watch::Sender<u64>,
}

#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl Scheduler {
    pub fn new(
        policy: Arc<NetworkPolicy>,
        ingest: Ingest,
        concurrency: usize,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                policy,
                ingest,
                permits: Arc::new(Semaphore::new(concurrency.max(1))),
                probes: Mutex::new(HashMap::new()),
                lateness: Lateness::default(),
                runtime,
                view: Mutex::new(View::alone()),
                pool: None,
                judge: None,
                changed: watch::Sender::new(0),
            }),
        }
    }

    /// Lets push probes' loops read what other replicas stored (before any probe is scheduled).
    pub fn with_pool(mut self, pool: sqlx::PgPool) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.pool = Some(pool);
        }
        self
    }

    /// Judges the local results of multi-location probes (before any probe is scheduled).
    pub fn with_judge(mut self, judge: Judge) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.judge = Some(judge);
        }
        self
    }

    /// Changes whenever a probe's definition does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    fn bump(&self) {
        self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The enabled probes that run from `location`, for its agents.
    pub fn assignments(&self, location: &str) -> Vec<AssignedProbe> {
        let mut out: Vec<AssignedProbe> = self
            .probes()
            .values()
            .filter(|r| {
                r.spec.enabled && r.spec.kind != ProbeKind::Push && r.spec.locations.iter().any(|l| l == location)
            })
            .map(|r| AssignedProbe {
                id: r.scheduled.probe.id,
                service_id: r.scheduled.probe.service_id,
                spec: r.spec.clone(),
            })
            .collect();
        out.sort_by_key(|a| a.id);
        out
    }

    fn probes(&self) -> MutexGuard<'_, HashMap<Uuid, Running>> {
        self.inner.probes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The network policy every check obeys (also for checks run on request).
    pub fn policy(&self) -> &NetworkPolicy {
        &self.inner.policy
    }

    /// The same policy, shared: notifications go out under it too (one allowlist for every
    /// outbound path).
    pub fn policy_handle(&self) -> Arc<NetworkPolicy> {
        Arc::clone(&self.inner.policy)
    }

    pub fn ingest(&self) -> &Ingest {
        &self.inner.ingest
    }

    pub fn lateness(&self) -> &Lateness {
        &self.inner.lateness
    }

    pub fn len(&self) -> usize {
        self.probes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.inner.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn owns(&self, id: Uuid) -> bool {
        self.view().owns(id)
    }

    /// Starts (or restarts with its new definition) a probe. Its confirmed state carries over from
    /// the running instance, or from the stored state after a restart. The same definition again
    /// (another replica's change echoed back) leaves a running probe alone.
    pub fn upsert(&self, probe: &Probe) -> Result<(), spec::SpecError> {
        self.install(probe, false)
    }

    /// Installs a probe; `fresh` takes its state from `probe.status` (what PostgreSQL holds)
    /// rather than from this replica's copy, which is stale when another replica ran it.
    fn install(&self, probe: &Probe, fresh: bool) -> Result<(), spec::SpecError> {
        // The probes lock first, then the view's: `set_view` takes them in the same order, so
        // no view change can fall between deciding ownership and starting the task.
        let mut probes = self.probes();
        let owned = self.owns(probe.id);
        if let Some(running) = probes.get(&probe.id)
            && !fresh
            && running.spec == probe.spec
            && running.task.is_some() == (owned && running.scheduled.probe.enabled)
        {
            return Ok(());
        }
        let compiled = spec::compile(probe.id, probe.service_id, &probe.spec)?;
        let previous = probes.remove(&probe.id);
        let stored = || match &probe.status {
            Some(s) => (s.state, s.since, None),
            None => (None, Utc::now(), None),
        };
        let (state, since, last_push) = match &previous {
            Some(running) => {
                if let Some(task) = &running.task {
                    task.abort();
                }
                if fresh {
                    stored()
                } else {
                    let t = running.scheduled.tracker();
                    (t.machine.state(), t.since, t.last_push)
                }
            }
            None => stored(),
        };
        let mut tracker = Tracker::new(state, since, &compiled);
        tracker.last_push = last_push;
        let run = compiled.runnable() && owned;
        let scheduled =
            Arc::new(Scheduled { probe: compiled, tracker: Mutex::new(tracker), pushing: tokio::sync::Mutex::new(()) });
        let task = run.then(|| self.inner.runtime.spawn(probe_loop(self.inner.clone(), scheduled.clone())));
        probes.insert(probe.id, Running { scheduled, spec: probe.spec.clone(), task });
        drop(probes);
        self.bump();
        Ok(())
    }

    /// A new view of the replica set: stops the probes this replica no longer owns and answers
    /// the ones it has just gained, which [`take_over`](Self::take_over) starts once their
    /// state has been read from PostgreSQL.
    pub fn set_view(&self, view: View) -> Vec<Uuid> {
        let mut probes = self.probes();
        *self.view() = view.clone();
        let mut gained = Vec::new();
        for (id, running) in probes.iter_mut() {
            let owned = view.owns(*id);
            match (&running.task, owned && running.scheduled.probe.runnable()) {
                (Some(task), false) => {
                    task.abort();
                    running.task = None;
                }
                (None, true) => gained.push(*id),
                _ => {}
            }
        }
        gained
    }

    /// Starts probes gained from another replica, from their stored state.
    pub fn take_over(&self, probes: &[Probe]) {
        for p in probes {
            if let Err(e) = self.install(p, true) {
                tracing::error!(probe = %p.spec.name, error = %e, "stored probe is invalid; not scheduled");
            }
        }
    }

    /// Starts gained probes with this replica's own copy of their state (when PostgreSQL could
    /// not be read).
    pub fn resume(&self, ids: &[Uuid]) {
        let mut probes = self.probes();
        for id in ids {
            if let Some(running) = probes.get_mut(id)
                && running.task.is_none()
                && running.scheduled.probe.runnable()
                && self.view().owns(*id)
            {
                running.task =
                    Some(self.inner.runtime.spawn(probe_loop(self.inner.clone(), running.scheduled.clone())));
            }
        }
    }

    /// How many probes run on this replica.
    pub fn running(&self) -> usize {
        self.probes().values().filter(|r| r.task.is_some()).count()
    }

    /// The ids of every known probe (for a full resynchronisation).
    pub fn known(&self) -> Vec<Uuid> {
        self.probes().keys().copied().collect()
    }

    pub fn remove(&self, id: Uuid) {
        let removed = self.probes().remove(&id);
        if let Some(running) = removed {
            if let Some(task) = running.task {
                task.abort();
            }
            self.bump();
        }
    }

    /// The scheduled probe, e.g. for the push endpoint.
    pub fn get(&self, id: Uuid) -> Option<Arc<Scheduled>> {
        self.probes().get(&id).map(|r| r.scheduled.clone())
    }

    /// Stops every probe task (results already submitted are still written).
    pub fn stop(&self) {
        for (_, running) in self.probes().drain() {
            if let Some(task) = running.task {
                task.abort();
            }
        }
    }
}

fn epoch_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

/// The probe's fixed phase within its interval, from its id: stable across restarts, spread
/// evenly over the interval across many probes.
pub fn phase_ms(id: Uuid, period_ms: u64) -> u64 {
    let period = u128::from(period_ms.max(1));
    u64::try_from(id.as_u128() % period).unwrap_or(0)
}

async fn probe_loop(inner: Arc<Inner>, scheduled: Arc<Scheduled>) {
    let probe = &scheduled.probe;
    let interval = probe.interval;
    let period_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut due = if probe.kind == ProbeKind::Push {
        // A heartbeat is judged after a whole interval of waiting for it.
        Instant::now() + interval
    } else {
        let wait = (phase_ms(probe.id, period_ms) + period_ms - epoch_ms() % period_ms) % period_ms;
        Instant::now() + Duration::from_millis(wait)
    };
    let mut memory = ScrapeMemory::default();
    // Local results of a multi-location probe the database could not take yet, oldest first.
    let mut unjudged: VecDeque<ProbeResult> = VecDeque::new();
    loop {
        tokio::time::sleep_until(due).await;
        let result = match (&probe.check, probe.kind) {
            (None, _) | (_, ProbeKind::Push) => {
                let window = chrono::Duration::from_std(interval).unwrap_or(chrono::TimeDelta::MAX);
                let mut last = scheduled.tracker().last_push;
                if last.is_none_or(|at| Utc::now() - at > window)
                    && let Some(pool) = &inner.pool
                {
                    // Silent here; the push may have gone to another replica.
                    let stored = tokio::time::timeout(Duration::from_secs(5), catalog::get_probe(pool, probe.id)).await;
                    if let Ok(Ok(Some(p))) = stored
                        && let Some(status) = &p.status
                    {
                        scheduled.adopt(status);
                        last = scheduled.tracker().last_push;
                    }
                }
                let silent = last.is_none_or(|at| Utc::now() - at > window);
                if silent {
                    let secs = last.map_or(interval.as_secs(), |at| (Utc::now() - at).num_seconds().max(0) as u64);
                    Some(execute::missed_heartbeat(probe.id, secs))
                } else {
                    None
                }
            }
            (Some(check), kind) => {
                let Ok(permit) = inner.permits.clone().acquire_owned().await else { return };
                inner.lateness.record(Instant::now().saturating_duration_since(due));
                let r = execute::run(probe.id, kind, check, &probe.pool_mapping, &inner.policy, &mut memory).await;
                drop(permit);
                Some(r)
            }
        };
        match (result, &inner.judge) {
            (Some(result), Some(judge)) if probe.multi_location() => {
                unjudged.push_back(result);
                judge_local(judge, probe, &mut unjudged).await;
            }
            (Some(result), _) => {
                if inner.ingest.submit(scheduled.record(result)).await.is_err() {
                    return;
                }
            }
            (None, _) => {}
        }
        due += interval;
        let now = Instant::now();
        if due <= now {
            // Missed ticks are skipped, not replayed in a burst.
            let behind = now.duration_since(due).as_millis() as u64;
            due += interval * u32::try_from(behind / period_ms + 1).unwrap_or(u32::MAX);
        }
    }
}

/// Local results of a multi-location probe kept while the database cannot take them: a minute
/// of checks at the shortest interval. Older ones are dropped (and counted in the log).
const UNJUDGED_KEPT: usize = 60;

/// Judges the waiting local results of a multi-location probe, oldest first; keeps them for the
/// next check when PostgreSQL cannot take them now.
async fn judge_local(judge: &Judge, probe: &CompiledProbe, unjudged: &mut VecDeque<ProbeResult>) {
    let items: Vec<Located> = unjudged.iter().map(|r| Located { result: r.clone(), seq: None }).collect();
    match judge.judge(probe, items).await {
        Ok(_) => unjudged.clear(),
        Err(e) => {
            let dropped = unjudged.len().saturating_sub(UNJUDGED_KEPT);
            unjudged.drain(..dropped);
            tracing::warn!(probe = %probe.name, error = %e, waiting = unjudged.len(), dropped,
                "cannot judge local results by quorum now; keeping them for the next check");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_spread_evenly_over_the_interval() {
        let period = 30_000u64;
        let mut per_second = [0u32; 30];
        for _ in 0..30_000 {
            per_second[(phase_ms(Uuid::new_v4(), period) / 1000) as usize] += 1;
        }
        let (min, max) = (per_second.iter().min().copied(), per_second.iter().max().copied());
        // 1,000 expected per second; random ids stay within ±20%.
        assert!(min > Some(800) && max < Some(1200), "{per_second:?}");
    }

    #[test]
    fn the_phase_of_a_probe_is_stable() {
        let id = Uuid::new_v4();
        assert_eq!(phase_ms(id, 10_000), phase_ms(id, 10_000));
        assert!(phase_ms(id, 10_000) < 10_000);
    }
}
