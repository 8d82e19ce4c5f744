//! Triage's own Prometheus metrics. Labels stay low-cardinality: the matched route pattern (never
//! the raw path), a normalised method and the status code.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::monitor::ingest::IngestStats;
use crate::monitor::replicas::Leadership;
use crate::monitor::schedule::Scheduler;
use crate::storage::reads::Reads;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Seconds; from 1 ms to 30 s.
const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pool_size: Gauge,
    pool_idle: Gauge,
    pool_in_use: Gauge,
    pool_max: Gauge,
    pool: PgPool,
    probes: ProbeCounters,
    csp_violations: Counter,
}

/// The prober's counters, mirrored from its atomics when scraped. The lock makes two concurrent
/// scrapes add each increase once.
struct ProbeCounters {
    source: OnceLock<(Arc<IngestStats>, Scheduler)>,
    sync: Mutex<()>,
    started: Counter,
    written: Counter,
    dropped: Counter,
    pending: Gauge,
    running: Gauge,
    /// How long after its due time each check started: a scheduler falling behind shows here
    /// before any check fails.
    lateness: Histogram,
    /// This replica's part in the replica set: leading, reading from a replica.
    cluster: OnceLock<(Leadership, Reads)>,
    leader: Gauge,
    read_replica: Gauge,
}

impl Default for ProbeCounters {
    fn default() -> Self {
        Self {
            source: OnceLock::new(),
            sync: Mutex::new(()),
            started: Counter::default(),
            written: Counter::default(),
            dropped: Counter::default(),
            pending: Gauge::default(),
            running: Gauge::default(),
            lateness: latency_histogram(),
            cluster: OnceLock::new(),
            leader: Gauge::default(),
            read_replica: Gauge::default(),
        }
    }
}

impl ProbeCounters {
    fn register(&self, registry: &mut Registry) {
        registry.register("probe_checks_started", "Checks the scheduler started", self.started.clone());
        registry.register("probe_results_written", "Probe results committed to the database", self.written.clone());
        registry.register(
            "probe_results_dropped",
            "Probe results dropped because the outage buffer was full",
            self.dropped.clone(),
        );
        registry.register("probe_results_pending", "Probe results waiting to be written", self.pending.clone());
        registry.register(
            "probes_running",
            "Probes this replica runs (its share of the enabled ones)",
            self.running.clone(),
        );
        registry.register(
            "probe_lateness_seconds",
            "How long after its due time each check started",
            self.lateness.clone(),
        );
        registry.register("replica_leader", "1 while this replica runs the once-only work", self.leader.clone());
        registry.register(
            "db_read_replica_in_use",
            "1 while reads that tolerate lag go to the read replica",
            self.read_replica.clone(),
        );
    }

    fn refresh(&self) {
        let Some((ingest, scheduler)) = self.source.get() else { return };
        let _one_at_a_time = self.sync.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mirror = |counter: &Counter, now: u64| {
            let seen = counter.get();
            if now > seen {
                counter.inc_by(now - seen);
            }
        };
        mirror(&self.started, scheduler.lateness().started.load(Ordering::Relaxed));
        mirror(&self.written, ingest.written.load(Ordering::Relaxed));
        mirror(&self.dropped, ingest.dropped.load(Ordering::Relaxed));
        self.pending.set(i64::try_from(ingest.pending.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        self.running.set(i64::try_from(scheduler.running()).unwrap_or(i64::MAX));
        if let Some((leadership, reads)) = self.cluster.get() {
            self.leader.set(i64::from(leadership.leads()));
            self.read_replica.set(i64::from(reads.using_replica()));
        }
    }
}

impl Metrics {
    pub fn new(pool: PgPool) -> Arc<Self> {
        let mut registry = Registry::with_prefix("triage");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by matched route, method and status", requests.clone());
        let duration = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("http_request_duration_seconds", "HTTP request latency by matched route", duration.clone());
        let pool_size = Gauge::default();
        let pool_idle = Gauge::default();
        let pool_in_use = Gauge::default();
        let pool_max = Gauge::default();
        registry.register("db_pool_size", "Open connections in the database pool", pool_size.clone());
        registry.register("db_pool_idle", "Idle connections in the database pool", pool_idle.clone());
        registry.register("db_pool_in_use", "Database connections in use", pool_in_use.clone());
        registry.register("db_pool_max", "Configured maximum of the database pool", pool_max.clone());
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").to_string() }).set(1);
        registry.register("build_info", "Build of this Triage (value is always 1)", build);
        let probes = ProbeCounters::default();
        probes.register(&mut registry);
        let csp_violations = Counter::default();
        registry.register(
            "csp_violations",
            "Content-Security-Policy violations reported by browsers",
            csp_violations.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            duration,
            pool_size,
            pool_idle,
            pool_in_use,
            pool_max,
            pool,
            probes,
            csp_violations,
        })
    }

    pub fn csp_violation(&self) {
        self.csp_violations.inc();
    }

    /// Reports this replica's leadership and where its reads go from now on.
    pub fn attach_cluster(&self, leadership: Leadership, reads: Reads) {
        let _ = self.probes.cluster.set((leadership, reads));
    }

    /// Reports the prober's counters from now on.
    pub fn attach_probes(&self, ingest: Arc<IngestStats>, scheduler: Scheduler) {
        scheduler.lateness().export_to(self.probes.lateness.clone());
        let _ = self.probes.source.set((ingest, scheduler));
    }

    fn record(&self, method: &'static str, route: String, status: u16, seconds: f64) {
        self.duration.get_or_create(&RouteLabels { method, route: route.clone() }).observe(seconds);
        self.requests.get_or_create(&RequestLabels { method, route, status: status.to_string() }).inc();
    }

    /// The exposition text (OpenMetrics, which Prometheus scrapes natively).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let size = i64::from(self.pool.size());
        let idle = i64::try_from(self.pool.num_idle()).unwrap_or(i64::MAX);
        self.pool_size.set(size);
        self.pool_idle.set(idle);
        self.pool_in_use.set((size - idle).max(0));
        self.pool_max.set(i64::from(self.pool.options().get_max_connections()));
        self.probes.refresh();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route label: the matched pattern, or a fixed bucket for unmatched paths so that scanners
/// probing random URLs cannot create new series.
pub fn route_label(matched: Option<&MatchedPath>, path: &str) -> String {
    match matched {
        Some(m) => m.as_str().to_string(),
        None if path.starts_with("/pkg/") => "/pkg/{file}".to_string(),
        None => "unmatched".to_string(),
    }
}

/// Middleware recording every request's count and latency.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = route_label(req.extensions().get::<MatchedPath>(), req.uri().path());
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.record(method, route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}
