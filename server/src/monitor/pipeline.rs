//! Everything that runs probes, started after the listener is bound and stopped before the pool
//! closes: the event hub, the result writer, the scheduler, the rollup and maintenance task, and
//! Triage's watch of itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use app::model::{ProbeKind, ProbeSpec, ServiceInput};
use chrono::{DurationRound, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::Error;
use crate::monitor::catalog::{self, Mode};
use crate::monitor::check::policy::{Cidr, NetworkPolicy};
use crate::monitor::hub::EventHub;
use crate::monitor::ingest::{Ingest, IngestConfig};
use crate::monitor::quorum::Judge;
use crate::monitor::replicas::{self, Identity, Leadership, ReplicaSettings, Replicas};
use crate::monitor::runtime::ProbeRuntime;
use crate::monitor::schedule::{DEFAULT_CONCURRENCY, Scheduler};
use crate::storage::bus::Bus;
use crate::storage::{catalog as store, results, rollups};

#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub allow: Vec<Cidr>,
    /// `--probe-resolver`: the DNS server probes look names up with (else the system's).
    pub resolver: Option<SocketAddr>,
    pub concurrency: usize,
    pub ingest: IngestConfig,
    /// How often raw results are rolled up.
    pub rollup_every: Duration,
    pub raw_retention: Duration,
    /// Create and keep the `triage` service probing this instance's own endpoints.
    pub self_watch: bool,
    /// Membership of the replica set sharing the database.
    pub replicas: ReplicaSettings,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            resolver: None,
            concurrency: DEFAULT_CONCURRENCY,
            ingest: IngestConfig::default(),
            rollup_every: Duration::from_secs(10),
            raw_retention: Duration::from_secs(35 * 86_400),
            self_watch: true,
            replicas: ReplicaSettings::default(),
        }
    }
}

/// How long after a minute ends before it is rolled up: results of checks that started in it may
/// still be on their way to the writer. Later arrivals are handled too (as dirty minutes).
const ROLLUP_GRACE: chrono::Duration = chrono::Duration::seconds(10);

pub struct Probing {
    pub scheduler: Scheduler,
    pub hub: EventHub,
    /// Judges results of probes run from several locations (agents' and this server's own).
    pub judge: Judge,
    pub ingest_stats: Arc<crate::monitor::ingest::IngestStats>,
    pub replicas: Replicas,
    /// Messages to and from the other replicas.
    pub bus: Bus,
    /// Ends the membership (a clean exit hands probes and leadership over at once).
    leave: watch::Sender<bool>,
    writer: JoinHandle<()>,
    background: JoinHandle<()>,
    followers: [JoinHandle<()>; 3],
    /// Dropped last: the probe tasks stop with it.
    _runtime: ProbeRuntime,
}

/// Addresses that mean "this instance": a wildcard listener is reached over loopback.
fn own_addresses(listen: SocketAddr) -> Vec<SocketAddr> {
    let mut own = vec![listen];
    if listen.ip().is_unspecified() {
        own.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port()));
        own.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port()));
    }
    own
}

impl Probing {
    pub async fn start(pool: PgPool, listen: SocketAddr, settings: &ProbeSettings) -> Result<Self, sqlx::Error> {
        maintain(&pool, settings).await?;
        let (leave, leaving) = watch::channel(false);
        let identity = Identity { listen: listen.to_string() };
        let replicas = replicas::join(pool.clone(), identity, settings.replicas, leaving.clone()).await?;
        let bus = Bus::start(&pool, replicas.id, leaving);
        bus.set_peers(replicas.view().members.len() > 1);
        let hub = EventHub::with_bus(bus.clone());
        let (ingest, writer) = Ingest::spawn(pool.clone(), hub.clone(), settings.ingest);
        let policy = Arc::new(
            NetworkPolicy::new(settings.allow.clone(), own_addresses(listen)).with_resolver(settings.resolver),
        );
        crate::monitor::allowlist::load(&pool, &policy).await.map_err(|e| match e {
            crate::error::Error::Database(db) => db,
            other => sqlx::Error::Protocol(other.to_string()),
        })?;
        let ingest_stats = Arc::clone(&ingest.stats);
        let runtime = ProbeRuntime::start()
            .map_err(|e| sqlx::Error::Io(std::io::Error::other(format!("starting the probe threads: {e}"))))?;
        let judge = Judge::new(pool.clone(), hub.clone());
        let scheduler = Scheduler::new(policy, ingest, settings.concurrency, runtime.handle())
            .with_pool(pool.clone())
            .with_judge(judge.clone());
        scheduler.set_view(replicas.view());
        // Listening before the first read: a change committed in between is not missed.
        let listener = listen_catalog(&pool).await;
        let scheduled = catalog::schedule_all(&pool, &scheduler).await?;
        replicas.owned.store(scheduler.running(), Ordering::Relaxed);
        tracing::info!(probes = scheduled, running_here = scheduler.running(), "probes scheduled");
        let followers = [
            tokio::spawn(hub.clone().follow()),
            tokio::spawn(follow_view(pool.clone(), scheduler.clone(), replicas.clone(), bus.clone())),
            tokio::spawn(follow_catalog(pool.clone(), scheduler.clone(), replicas.clone(), listener)),
        ];
        let background = tokio::spawn(background(pool, settings.clone(), replicas.leadership.clone()));
        Ok(Self {
            scheduler,
            hub,
            judge,
            ingest_stats,
            replicas,
            bus,
            leave,
            writer,
            background,
            followers,
            _runtime: runtime,
        })
    }

    /// Creates (or refreshes) the `triage` service watching this instance. A replica joining
    /// others leaves it alone: the probes are shared, and pointing them at each newcomer's own
    /// address would only move them about (watch the load balancer instead).
    pub async fn watch_self(&self, pool: &PgPool, listen: SocketAddr) -> Result<(), Error> {
        if self.replicas.view().members.len() > 1 {
            tracing::info!("other replicas are running: the triage service's probes are left as they are");
            return Ok(());
        }
        let host = if listen.ip().is_unspecified() {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        } else {
            listen
        };
        let base = format!("http://{host}");
        if store::list_services(pool).await?.iter().all(|s| s.name != SELF_SERVICE) {
            let input = ServiceInput {
                name: SELF_SERVICE.into(),
                description: "This Triage instance: its liveness, readiness (database) and connection pool.".into(),
                tags: vec!["triage".into()],
                criticality: app::model::Criticality::High,
            };
            match catalog::create_service(pool, &input).await {
                Ok(_) | Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for spec in self_probes(&base) {
            catalog::write_probe(pool, Some(&self.scheduler), &spec, Mode::Named).await?;
        }
        Ok(())
    }

    /// Stops probing and writes what is queued, within `timeout`.
    pub async fn shutdown(self, timeout: Duration) {
        for f in &self.followers {
            f.abort();
        }
        self.scheduler.stop();
        self.background.abort();
        self.leave.send_replace(true);
        let ingest = self.scheduler.ingest().clone();
        if tokio::time::timeout(timeout, ingest.flush()).await.is_err() {
            let pending = ingest.stats.pending.load(std::sync::atomic::Ordering::Relaxed);
            tracing::error!(pending, "results still unwritten at shutdown (database unreachable?)");
        }
        self.writer.abort();
    }
}

/// Raw results are compacted once this old (whole hours): the incident engine, notifications
/// and rollups read recent rows, and the last hour's certificate check reads only rows.
const COMPACT_AFTER: chrono::Duration = chrono::Duration::hours(2);
/// Hours compacted per run at most: catching up after downtime is spread over the ticks.
const COMPACT_HOURS_PER_RUN: usize = 6;

pub const SELF_SERVICE: &str = "triage";

fn self_probes(base: &str) -> Vec<ProbeSpec> {
    let mut health = ProbeSpec::new("triage-healthz", SELF_SERVICE, ProbeKind::Http, Some(&format!("{base}/healthz")));
    health.interval_secs = 15;
    health.timeout_ms = 2_000;
    health.degraded_after_ms = Some(250);
    let mut ready =
        ProbeSpec::new("triage-readyz", SELF_SERVICE, ProbeKind::Readiness, Some(&format!("{base}/readyz")));
    ready.interval_secs = 15;
    ready.timeout_ms = 3_000;
    ready.degraded_after_ms = Some(1_000);
    let mut metrics =
        ProbeSpec::new("triage-metrics", SELF_SERVICE, ProbeKind::Metrics, Some(&format!("{base}/metrics")));
    metrics.interval_secs = 15;
    metrics.timeout_ms = 3_000;
    let m = &mut metrics.pool_mapping;
    m.in_use = vec!["triage_db_pool_in_use".into()];
    m.idle = vec!["triage_db_pool_idle".into()];
    m.max = vec!["triage_db_pool_max".into()];
    m.requests = vec!["triage_http_requests_total".into()];
    vec![health, ready, metrics]
}

/// Partitions for the coming days, retention, receipt pruning.
async fn maintain(pool: &PgPool, settings: &ProbeSettings) -> Result<(), sqlx::Error> {
    let today = Utc::now().date_naive();
    // Not yesterday's: compaction drops a day's partition once it is compacted, and results
    // for days without one land in the default partition.
    for offset in 0..=2 {
        if let Some(day) = today.checked_add_signed(chrono::Duration::days(offset)) {
            results::ensure_partition(pool, day).await?;
        }
    }
    let keep = chrono::Duration::from_std(settings.raw_retention).unwrap_or(chrono::Duration::days(35));
    if let Some(cutoff) = today.checked_sub_signed(keep) {
        for name in results::drop_partitions_before(pool, cutoff).await? {
            tracing::info!(partition = %name, "dropped raw results past retention");
        }
    }
    let pruned = results::prune_chunks(pool, Utc::now() - keep).await?;
    if pruned > 0 {
        tracing::info!(chunks = pruned, "dropped compacted results past retention");
    }
    results::prune_push_receipts(pool, chrono::Duration::days(2)).await?;
    results::prune_batches(pool, chrono::Duration::days(1)).await?;
    rollups::prune_rollups(pool, rollups::Level::Minute, Utc::now() - chrono::Duration::days(35)).await?;
    rollups::prune_rollups(pool, rollups::Level::Hour, Utc::now() - chrono::Duration::days(400)).await?;
    Ok(())
}

/// Rolls up results every `rollup_every`, catching up in steps after a gap; maintenance hourly;
/// on the leading replica only.
async fn background(pool: PgPool, settings: ProbeSettings, leadership: Leadership) {
    let mut tick = tokio::time::interval(settings.rollup_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_maintenance = tokio::time::Instant::now();
    let mut last_compaction = None;
    loop {
        tick.tick().await;
        if !leadership.leads() {
            continue;
        }
        if let Err(e) = roll_up_to(&pool, Utc::now() - ROLLUP_GRACE).await {
            tracing::warn!(error = %e, "rollup failed; will retry");
        }
        // Compaction wants whole hours: it has work once an hour, and little else to check.
        let compact_before = Utc::now() - COMPACT_AFTER;
        if compact_before.duration_trunc(chrono::Duration::hours(1)).ok() != last_compaction {
            match results::compact(&pool, compact_before, COMPACT_HOURS_PER_RUN).await {
                Ok(done) => {
                    // A backlog (an upgrade, days of rows) is worked off a few hours per tick.
                    if done.hours < COMPACT_HOURS_PER_RUN {
                        last_compaction = compact_before.duration_trunc(chrono::Duration::hours(1)).ok();
                    }
                    if done.results > 0 {
                        tracing::info!(
                            results = done.results,
                            chunks = done.chunks,
                            hours = done.hours,
                            partitions = done.partitions,
                            "compacted raw results"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "compaction failed; will retry"),
            }
        }
        if last_maintenance.elapsed() >= Duration::from_secs(3600) {
            last_maintenance = tokio::time::Instant::now();
            if let Err(e) = maintain(&pool, &settings).await {
                tracing::warn!(error = %e, "maintenance failed; will retry");
            }
        }
    }
}

/// Runs rollups until the watermark reaches `upto` (a long gap takes several runs).
pub async fn roll_up_to(pool: &PgPool, upto: chrono::DateTime<Utc>) -> Result<(), sqlx::Error> {
    let target = rollups::Level::Minute.truncate(upto);
    loop {
        let run = rollups::run_rollup(pool, upto).await?;
        match run.watermark {
            Some(w) if w < target => continue,
            None if run.finished_earlier_claim => continue,
            _ => return Ok(()),
        }
    }
}

/// The channel the `probes` table's trigger notifies on, with the probe's id.
const PROBES_CHANNEL: &str = "triage_probes";

async fn listen_catalog(pool: &PgPool) -> Option<PgListener> {
    crate::storage::bus::listener(pool, &[PROBES_CHANNEL], Duration::from_secs(2)).await
}

/// Applies probe changes made through any replica: each notified id is read again and
/// scheduled, rescheduled or removed here. Ids arriving together are read in one query.
async fn follow_catalog(pool: PgPool, scheduler: Scheduler, replicas: Replicas, mut listener: Option<PgListener>) {
    loop {
        let Some(l) = listener.as_mut() else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            listener = listen_catalog(&pool).await;
            if listener.is_some() {
                // Whatever changed while nobody listened.
                resync(&pool, &scheduler).await;
                replicas.owned.store(scheduler.running(), Ordering::Relaxed);
            }
            continue;
        };
        let mut ids = Vec::new();
        match l.try_recv().await {
            Ok(Some(n)) => ids.extend(n.payload().parse::<Uuid>().ok()),
            Ok(None) | Err(_) => {
                tracing::debug!("lost the probe-change listener; listening again");
                listener = None;
                continue;
            }
        }
        // A bulk change (an import, a probe file) arrives as many notifications at once.
        let mut lost = false;
        while ids.len() < 10_000 {
            match tokio::time::timeout(Duration::from_millis(20), l.try_recv()).await {
                Ok(Ok(Some(n))) => ids.extend(n.payload().parse::<Uuid>().ok()),
                // Nothing more for now.
                Err(_) => break,
                // Lost (sqlx listens again by itself, but what was sent meanwhile is gone):
                // apply what arrived, then read everything again.
                Ok(Ok(None) | Err(_)) => {
                    lost = true;
                    break;
                }
            }
        }
        if lost {
            listener = None;
        }
        ids.sort_unstable();
        ids.dedup();
        match store::probes_by_id(&pool, &ids).await {
            Ok(found) => {
                for p in &found {
                    if let Err(e) = scheduler.upsert(p) {
                        tracing::error!(probe = %p.spec.name, error = %e, "stored probe is invalid; not scheduled");
                    }
                }
                for gone in ids.iter().filter(|id| found.iter().all(|p| p.id != **id)) {
                    scheduler.remove(*gone);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading changed probes failed; reading them all again");
                listener = None;
            }
        }
        if listener.is_none() {
            // Listen again (after a pause) and read every probe.
            continue;
        }
        replicas.owned.store(scheduler.running(), Ordering::Relaxed);
    }
}

/// Every stored probe scheduled as stored, and probes no longer stored removed.
async fn resync(pool: &PgPool, scheduler: &Scheduler) {
    match store::list_probes(pool, None).await {
        Ok(all) => {
            for p in &all {
                if let Err(e) = scheduler.upsert(p) {
                    tracing::error!(probe = %p.spec.name, error = %e, "stored probe is invalid; not scheduled");
                }
            }
            for id in scheduler.known() {
                if all.iter().all(|p| p.id != id) {
                    scheduler.remove(id);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading the probes again failed"),
    }
}

/// Follows the replica set: probes another replica now owns stop here at once; probes gained
/// start from the state PostgreSQL holds (the last one the previous owner stored).
async fn follow_view(pool: PgPool, scheduler: Scheduler, replicas: Replicas, bus: Bus) {
    let mut views = replicas.watch();
    while views.changed().await.is_ok() {
        let view = views.borrow_and_update().clone();
        bus.set_peers(view.members.len() > 1);
        let gained = scheduler.set_view(view);
        if !gained.is_empty() {
            let mut tries = 0;
            loop {
                match store::probes_by_id(&pool, &gained).await {
                    Ok(probes) => {
                        scheduler.take_over(&probes);
                        tracing::info!(probes = probes.len(), "took probes over from the replica set");
                        break;
                    }
                    Err(e) if tries < 3 => {
                        tries += 1;
                        tracing::warn!(error = %e, "reading taken-over probes failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => {
                        // Checking from a possibly stale state beats not checking at all.
                        tracing::warn!(error = %e, "taking probes over with the state this replica last saw");
                        scheduler.resume(&gained);
                        break;
                    }
                }
            }
        }
        replicas.owned.store(scheduler.running(), Ordering::Relaxed);
    }
}
