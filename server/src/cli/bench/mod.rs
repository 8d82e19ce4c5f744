//! `triage bench probes|ingest|percentiles|all`: the probe pipeline's speed, measured on this
//! machine against a private PostgreSQL (durable, as in production) and local targets. Figures
//! are printed with the baseline they are compared to, measured in the same run.

mod fleet;
mod fleet_target;
mod procfs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use app::model::{Outcome, Phases, Probe, ProbeKind, ProbeResult, ProbeSpec};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::cli::RunError;
use crate::cli::seed::{add_fleet, fleet_interval, fleet_rate};
use crate::config::{BenchArgs, BenchKind};
use crate::monitor::check::policy::{BadCidr, NetworkPolicy};
use crate::monitor::hub::EventHub;
use crate::monitor::ingest::{Ingest, IngestConfig, Record};
use crate::monitor::schedule::Scheduler;
use crate::storage::cluster::{self, EmbeddedPg, EmbeddedPgConfig};
use crate::storage::pool::{self, PoolSettings};
use crate::storage::results::StateRow;
use crate::storage::rollups::histogram::LatencyHistogram;
use crate::storage::{self, bench as store, results, rollups};

struct Env {
    _dir: tempfile_dir::TempDir,
    pg: EmbeddedPg,
    pool: PgPool,
}

/// A throwaway directory removed on drop (the benchmark's cluster lives there).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> std::io::Result<Self> {
            let dir = std::env::temp_dir().join(format!("triage-bench-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir)?;
            Ok(Self(dir))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn err(e: impl std::fmt::Display) -> RunError {
    RunError::Io(e.to_string())
}

async fn environment() -> Result<Env, RunError> {
    let dir = tempfile_dir::TempDir::new().map_err(err)?;
    let config = EmbeddedPgConfig::new(dir.path());
    let pg = tokio::task::spawn_blocking(move || EmbeddedPg::start(&config)).await.map_err(err)??;
    let admin = pool::connect(pg.connect_options("postgres"), PoolSettings { max_connections: 1, min_connections: 0 })
        .await
        .map_err(err)?;
    storage::create_database_if_missing(&admin, cluster::DATABASE).await.map_err(err)?;
    admin.close().await;
    let pool =
        pool::connect(pg.connect_options(cluster::DATABASE), PoolSettings { max_connections: 8, min_connections: 1 })
            .await
            .map_err(err)?;
    pool::migrate(&pool).await.map_err(err)?;
    let today = Utc::now().date_naive();
    for d in -31..=1 {
        if let Some(day) = today.checked_add_signed(chrono::Duration::days(d)) {
            results::ensure_partition(&pool, day).await.map_err(err)?;
        }
    }
    Ok(Env { _dir: dir, pg, pool })
}

pub async fn run(args: &BenchArgs) -> Result<(), RunError> {
    if args.which == BenchKind::Fleet {
        return fleet::run(args).await;
    }
    println!(
        "triage bench on {} cores; PostgreSQL: private cluster, durable commits",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let env = environment().await?;
    let which = args.which;
    if matches!(which, BenchKind::Ingest | BenchKind::All) {
        ingest(&env.pool, args.results).await?;
    }
    if matches!(which, BenchKind::Percentiles | BenchKind::All) {
        percentiles(&env.pool).await?;
    }
    if matches!(which, BenchKind::Overview | BenchKind::All) {
        overview(&env.pool).await?;
    }
    if matches!(which, BenchKind::Probes | BenchKind::All) {
        probes(&env.pool, args).await?;
    }
    if matches!(which, BenchKind::Storage | BenchKind::All) {
        storage(&env.pool).await?;
    }
    env.pool.close().await;
    let mut pg = env.pg;
    tokio::task::spawn_blocking(move || pg.stop(Duration::from_secs(30))).await.map_err(err)??;
    Ok(())
}

/// An `up` HTTP result with plausible phases (benchmarks and tests).
pub fn sample(probe_id: Uuid, at: DateTime<Utc>, total_us: u64) -> ProbeResult {
    ProbeResult {
        probe_id,
        at,
        outcome: Outcome::Up,
        status: Some(200),
        error: None,
        detail: None,
        phases: Phases {
            dns_us: None,
            connect_us: Some(80),
            tls_us: None,
            ttfb_us: Some(total_us.saturating_sub(100)),
            transfer_us: Some(20),
            total_us,
        },
        response_bytes: 2,
        request_id: Uuid::new_v4().simple().to_string(),
        body_excerpt: None,
        cert_days_left: None,
        components: Vec::new(),
        pool: None,
        echo: None,
        location: None,
    }
}

/// xorshift64*: the same data every run (benchmarks and tests share it).
pub struct Rng(pub u64);
impl Rng {
    pub fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// 99% around 20 ms, a 1% slow tail around 2 s.
    pub fn latency_us(&mut self) -> u64 {
        let base = if self.unit() < 0.01 { 2_000_000.0 } else { 20_000.0 };
        (base * (0.5 + self.unit() * 1.5)) as u64
    }
}

async fn ingest(pool: &PgPool, n: usize) -> Result<(), RunError> {
    println!("\n== ingest: {n} results from 1,000 probes into the real schema");
    let probes: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
    let mut rng = Rng(7);
    let now = Utc::now();
    let rows: Vec<ProbeResult> = (0..n).map(|i| sample(probes[i % probes.len()], now, rng.latency_us())).collect();

    store::truncate_results(pool).await.map_err(err)?;
    let t = Instant::now();
    for chunk in rows.chunks(50_000) {
        results::copy_only(pool, chunk).await.map_err(err)?;
    }
    let copy_secs = t.elapsed().as_secs_f64();

    store::truncate_results(pool).await.map_err(err)?;
    let (writer, handle) = Ingest::spawn(pool.clone(), EventHub::new(), IngestConfig::default());
    let records: Vec<Record> = rows
        .into_iter()
        .map(|r| Record {
            service_id: Uuid::nil(),
            state: StateRow {
                probe_id: r.probe_id,
                state: Some(Outcome::Up),
                since: now,
                last_result_at: r.at,
                last_outcome: Outcome::Up,
                last_error: None,
            },
            result: Arc::new(r),
            change: None,
        })
        .collect();
    let t = Instant::now();
    for r in records {
        writer.submit(r).await.map_err(err)?;
    }
    writer.flush().await.map_err(err)?;
    let writer_secs = t.elapsed().as_secs_f64();
    let stored = results::count_results(pool, None).await.map_err(err)?;
    drop(writer);
    let _ = handle.await;

    let copy_rate = n as f64 / copy_secs;
    let writer_rate = n as f64 / writer_secs;
    println!("binary COPY (baseline):        {copy_rate:>10.0} results/s  ({copy_secs:.2} s)");
    println!("Triage's writer (binary COPY batches + watermark check + state upserts, one transaction each):");
    println!("                               {writer_rate:>10.0} results/s  ({writer_secs:.2} s), {stored} stored");
    println!("writer / COPY:                 {:>10.0} %", writer_rate / copy_rate * 100.0);
    Ok(())
}

/// One result of probe `i` of the fleet (its kind by `i`; ~1 % failing, a few flapping).
fn fleet_result(i: usize, probe: Uuid, at: DateTime<Utc>, rng: &mut Rng) -> ProbeResult {
    let mut r = sample(probe, at, rng.latency_us());
    match i % 5 {
        1 => {
            r.components = ["database", "cache", "queue"]
                .map(|name| app::model::Component {
                    name: name.into(),
                    state: app::model::ComponentState::Up,
                    detail: None,
                })
                .to_vec();
        }
        2 => {
            let in_use = (rng.unit() * 20.0).floor();
            r.pool = Some(app::model::PoolReading {
                in_use: Some(in_use),
                idle: Some(20.0 - in_use),
                max: Some(20.0),
                waiting: Some(0.0),
                requests_per_s: Some((rng.unit() * 4_000.0).round() / 100.0),
                errors_per_s: Some(0.0),
            });
        }
        3 => r.phases = Phases { total_us: r.phases.total_us, ..Phases::default() },
        _ => {}
    }
    let flapping = i % 100 == 13 && (at.timestamp() / 600) % 2 == 0;
    if i % 100 == 7 || flapping || rng.unit() < 0.002 {
        r.outcome = Outcome::Down;
        r.status = Some(503);
        r.error = Some(app::model::ErrorClass::Status);
    }
    r
}

/// Bytes per stored result: a fleet's day as rows, then compacted, and what a day of 100,000
/// probes takes on disk in the long run (compacted results, hour, day and week rollups).
async fn storage(pool: &PgPool) -> Result<(), RunError> {
    const PROBES: usize = 2_000;
    const FLEET: f64 = 100_000.0;
    let history = chrono::Duration::hours(26);
    println!(
        "\n== storage: {PROBES} probes (HTTP, readiness, metrics, push; every 30–300 s, ~1 % failing), {} h of history",
        history.num_hours()
    );
    store::truncate_results(pool).await.map_err(err)?;
    let now = Utc::now();
    let from = now - history;
    for d in -2..=1 {
        if let Some(day) = now.date_naive().checked_add_signed(chrono::Duration::days(d)) {
            results::ensure_partition(pool, day).await.map_err(err)?;
        }
    }
    rollups::set_watermark(pool, rollups::Level::Minute.truncate(from)).await.map_err(err)?;
    // Never checked here (no scheduler runs), so the names need not resolve.
    let ids =
        add_fleet(pool, PROBES, |i, _| format!("http://fleet-{:05}.internal/{}", i / 5, i % 5)).await.map_err(err)?;
    let mut rng = Rng(24);
    let t = Instant::now();
    let mut batch = Vec::with_capacity(100_000);
    let mut total = 0usize;
    for (i, probe) in ids.iter().enumerate() {
        let every = chrono::Duration::seconds(i64::from(fleet_interval(i)));
        let mut at = from + chrono::Duration::milliseconds((i as i64 * 7_919) % every.num_milliseconds());
        while at < now {
            batch.push(fleet_result(i, *probe, at, &mut rng));
            at += every + chrono::Duration::microseconds((rng.unit() * 2_000.0) as i64);
            copy_batch(pool, &mut batch, &mut total, false).await?;
        }
    }
    copy_batch(pool, &mut batch, &mut total, true).await?;
    let t_seed = t.elapsed().as_secs_f64();
    let t = Instant::now();
    crate::monitor::pipeline::roll_up_to(pool, now).await.map_err(err)?;
    println!("{total} results written in {t_seed:.1} s, rolled up in {:.1} s", t.elapsed().as_secs_f64());
    store::vacuum_results(pool).await.map_err(err)?;
    let rows = store::storage_sizes(pool).await.map_err(err)?;
    let per = |bytes: i64, n: i64| bytes as f64 / n.max(1) as f64;
    let n = total as i64;
    let rollup_bytes = |s: &store::StorageSizes, levels: std::ops::Range<usize>| -> i64 {
        s.rollups[levels].iter().map(|(b, _)| b).sum()
    };
    println!("as rows (before compaction), bytes per result with indexes:");
    println!(
        "  raw rows                    {:>8.1} B  ({} rows, {:.1} MB)",
        per(rows.rows_bytes, n),
        rows.rows,
        mb(rows.rows_bytes)
    );
    println!("  minute rollups              {:>8.1} B  ({} rows)", per(rows.rollups[0].0, n), rows.rollups[0].1);
    println!("  hour, day and week rollups  {:>8.1} B", per(rollup_bytes(&rows, 1..4), n));
    let before_total = rows.rows_bytes + rollup_bytes(&rows, 0..4);
    println!("  in all                      {:>8.1} B", per(before_total, n));

    let t = Instant::now();
    let done = results::compact(pool, now - chrono::Duration::hours(2), 1_000).await.map_err(err)?;
    println!(
        "compacted {} results of {} hours into {} chunks in {:.1} s ({} partitions dropped)",
        done.results,
        done.hours,
        done.chunks,
        t.elapsed().as_secs_f64(),
        done.partitions
    );
    store::vacuum_results(pool).await.map_err(err)?;
    let after = store::storage_sizes(pool).await.map_err(err)?;
    let chunk_per = per(after.chunks_bytes, after.chunked);
    println!("compacted, bytes per result with indexes:");
    println!(
        "  compacted results           {chunk_per:>8.1} B  ({} chunks, {:.1} MB)",
        after.chunks,
        mb(after.chunks_bytes)
    );
    println!(
        "  still rows (the last ~2 h)  {} rows in {:.1} MB; minute rollups left: {} rows",
        after.rows,
        mb(after.rows_bytes),
        after.rollups[0].1
    );
    // What a day adds for good: every result compacted, 24 hour rows, a day row and a seventh of
    // a week row per probe. Rows are the same size whatever the interval.
    let (hour_b, day_b, week_b) = (
        per(after.rollups[1].0, after.rollups[1].1),
        per(after.rollups[2].0, after.rollups[2].1),
        per(after.rollups[3].0, after.rollups[3].1),
    );
    let per_probe_day = 24.0 * hour_b + day_b + week_b / 7.0;
    let results_day = fleet_rate(100_000) * 86_400.0;
    let day_bytes = results_day * chunk_per + FLEET * per_probe_day;
    println!("rollup rows: hour {hour_b:.0} B, day {day_b:.0} B, week {week_b:.0} B each (with their index share)");
    println!(
        "a day of 100,000 probes ({:.0} checks/s, {:.1} M results): {:.2} GB on disk = {:.1} B per result \
         (compacted {chunk_per:.1} + rollups {:.1}); before: {:.1} B per result",
        fleet_rate(100_000),
        results_day / 1e6,
        day_bytes / 1e9,
        day_bytes / results_day,
        FLEET * per_probe_day / results_day,
        per(before_total, n),
    );
    println!("(target: ≤ 60 B per stored result including indexes and rollups)");
    Ok(())
}

/// Writes `batch` by binary COPY once it holds 100,000 results, or (`last`) whatever it holds.
async fn copy_batch(
    pool: &PgPool,
    batch: &mut Vec<ProbeResult>,
    total: &mut usize,
    last: bool,
) -> Result<(), RunError> {
    if last || batch.len() >= 100_000 {
        *total += batch.len();
        results::copy_only(pool, batch).await.map_err(err)?;
        batch.clear();
    }
    Ok(())
}

fn mb(bytes: i64) -> f64 {
    bytes as f64 / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn percentiles(pool: &PgPool) -> Result<(), RunError> {
    let now = rollups::Level::Minute.truncate(Utc::now());
    let from = now - chrono::Duration::days(30);
    println!("\n== percentiles: 30 days; one probe every minute plus 999 probes every 15 minutes");
    store::truncate_results(pool).await.map_err(err)?;
    let probes: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
    let mut rng = Rng(11);
    let t = Instant::now();
    let mut batch = Vec::with_capacity(100_000);
    let mut total = 0usize;
    for (i, probe) in probes.iter().enumerate() {
        let every = if i == 0 { 60 } else { 900 };
        let mut at = from + chrono::Duration::seconds(i as i64 % every);
        while at < now {
            batch.push(sample(*probe, at, rng.latency_us()));
            at += chrono::Duration::seconds(every);
            copy_batch(pool, &mut batch, &mut total, false).await?;
        }
    }
    copy_batch(pool, &mut batch, &mut total, true).await?;
    println!("seeded {total} raw results in {:.1} s", t.elapsed().as_secs_f64());
    rollups::set_watermark(pool, from).await.map_err(err)?;
    let t = Instant::now();
    crate::monitor::pipeline::roll_up_to(pool, now).await.map_err(err)?;
    println!("rolled up 30 days in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    store::vacuum_rollups(pool).await.map_err(err)?;
    println!("vacuum analyze rollups (autovacuum's steady state) in {:.1} s", t.elapsed().as_secs_f64());

    for (label, set, reps) in [("1 probe", &probes[..1], 21), ("1,000 probes", &probes[..], 5)] {
        let mut fast = Vec::new();
        let mut summaries = Default::default();
        for _ in 0..reps {
            let t = Instant::now();
            summaries = crate::monitor::series::summaries(pool, set, from, now).await.map_err(err)?;
            fast.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let mut slow = Vec::new();
        let mut exact = Default::default();
        for _ in 0..3 {
            let t = Instant::now();
            exact = store::exact_percentiles(pool, set, from, now).await.map_err(err)?;
            slow.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let mut worst: f64 = 0.0;
        for (probe, want) in &exact {
            let Some(r) = summaries.get(probe) else { continue };
            for (q, w) in [0.5, 0.95, 0.99].into_iter().zip(want) {
                if let Some(got) = r.latency.percentile(q) {
                    worst = worst.max((got - w).abs() / w);
                }
            }
        }
        let (fast, slow) = (median(fast), median(slow));
        println!(
            "{label:>13}: rollups {fast:>8.1} ms   exact percentile_cont {slow:>9.1} ms   {:>6.1}× faster   worst error {:.3}%",
            slow / fast,
            worst * 100.0
        );
    }

    // The series API (a chart's data) over 1 hour and over 30 days, on the same data. The first
    // request of each computes every bucket; later ones take closed buckets from the cache and
    // read only the open end (as a dashboard refetching a chart does).
    println!("\n== series: one probe's chart data, 50 requests each (step chosen by the API)");
    let mut p95 = Vec::new();
    for (label, span) in [("1 hour", chrono::Duration::hours(1)), ("30 days", chrono::Duration::days(30))] {
        let mut times = Vec::new();
        let mut points = 0;
        for _ in 0..50 {
            let now = Utc::now();
            let t = Instant::now();
            let s = crate::monitor::series::series(pool, probes[0], now - span, now, None).await.map_err(err)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            points = s.points.len();
        }
        let first = times[0];
        times.sort_by(f64::total_cmp);
        let q = times[(times.len() * 95).div_ceil(100) - 1];
        println!(
            "{label:>8}: first (cold) {first:.2} ms, p95 {q:.2} ms, median {:.2} ms ({points} points)",
            times[times.len() / 2]
        );
        p95.push(q);
    }
    println!("30 days ÷ 1 hour: {:.2}× (target ≤ 2×)", p95[1] / p95[0]);
    Ok(())
}

/// `triage trivial-http`: the least an axum handler can do, on the same runtime as `serve`.
pub async fn trivial_http(addr: SocketAddr) -> Result<(), RunError> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(err)?;
    axum::serve(listener, app).await.map_err(err)
}

/// The overview's data (every tile's 5-minute figures and p95 sparkline) for 2,000 services.
async fn overview(pool: &PgPool) -> Result<(), RunError> {
    println!("\n== overview: 2,000 services (4,000 probes), one hour of results every 30 s");
    store::truncate_results(pool).await.map_err(err)?;
    let seeded = crate::cli::seed::seed(pool, 2_000, chrono::Duration::hours(1)).await.map_err(err)?;
    println!("seeded {} results and rolled them up in {:.1} s", seeded.results, seeded.secs);
    store::vacuum_rollups(pool).await.map_err(err)?;
    let mut tiles = Vec::new();
    let mut count = 0;
    for _ in 0..11 {
        let t = Instant::now();
        count = crate::monitor::overview::overview(pool).await.map_err(err)?.services.len();
        tiles.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let probes = crate::storage::catalog::list_probes(pool, None).await.map_err(err)?;
    let mut trends = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        crate::monitor::overview::p95_trends(pool, &probes).await.map_err(err)?;
        trends.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let cache = crate::monitor::overview::OverviewCache::default();
    let t = Instant::now();
    cache.get(pool).await.map_err(err)?;
    let cold = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let n = 1_000;
    for _ in 0..n {
        cache.get(pool).await.map_err(err)?;
    }
    let hit_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("tiles (5-minute figures) from the database:     median {:>7.1} ms ({count} tiles)", median(tiles));
    println!("p95 sparklines (12 × 5 min) from the database:  median {:>7.1} ms", median(trends));
    println!(
        "overview through the cache: first {cold:.1} ms, then {hit_us:.1} µs per request (tiles ≤ 1 s old, sparklines ≤ 60 s)"
    );
    Ok(())
}

/// A minimal target on its own thread and runtime: the prober's work is what is measured.
fn spawn_target() -> Result<SocketAddr, RunError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
            let _ = axum::serve(listener, app).await;
        });
    });
    Ok(addr)
}

async fn probes(pool: &PgPool, args: &BenchArgs) -> Result<(), RunError> {
    let n = args.probes;
    let interval = args.interval.0;
    println!(
        "\n== probes: {n} probes every {:?} ({:.0} checks/s asked), new connection per check, results persisted",
        interval,
        n as f64 / interval.as_secs_f64()
    );
    store::truncate_results(pool).await.map_err(err)?;
    let target = match &args.target {
        Some(url) if url.host_str().is_some_and(|h| h == "127.0.0.1" || h == "localhost") => url.to_string(),
        Some(url) => return Err(RunError::Config(format!("--target must be on loopback: {url}"))),
        None => format!("http://{}/", spawn_target()?),
    };
    let core = args.prober_core;
    let pool_for_counts = pool.clone();
    let pool = pool.clone();
    let duration = args.duration.0;
    // The prober and its writer on one core: a current-thread runtime on a thread of its own.
    let report = std::thread::spawn(move || -> Result<String, RunError> {
        if let Some(core) = core {
            let mut set = nix::sched::CpuSet::new();
            set.set(core).map_err(|e| RunError::Config(format!("--prober-core {core}: {e}")))?;
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
                .map_err(|e| RunError::Config(format!("--prober-core {core}: {e}")))?;
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| RunError::Io(e.to_string()))?;
        rt.block_on(async move {
            let (ingest, writer) = Ingest::spawn(pool.clone(), EventHub::new(), IngestConfig::default());
            let policy = Arc::new(NetworkPolicy::new(vec!["127.0.0.0/8".parse().map_err(|e: BadCidr| RunError::Config(e.0))?], vec![]));
            let scheduler = Scheduler::new(policy, ingest.clone(), 512, tokio::runtime::Handle::current());
            let now = Utc::now();
            for i in 0..n {
                let mut spec = ProbeSpec::new(&format!("bench-{i}"), "bench", ProbeKind::Http, Some(&target));
                spec.interval_secs = u32::try_from(interval.as_secs()).unwrap_or(1).max(1);
                spec.timeout_ms = u32::try_from(interval.as_millis() / 2).unwrap_or(1_000).clamp(1, 1_000);
                let probe = Probe {
                    id: Uuid::new_v4(),
                    service_id: Uuid::nil(),
                    service: "bench".into(),
                    file_managed: false,
                    spec,
                    status: None,
                    created_at: now,
                    updated_at: now,
                };
                scheduler.upsert(&probe).map_err(|e| RunError::Config(e.to_string()))?;
            }
            // One interval to settle into the spread, then measure.
            tokio::time::sleep(interval).await;
            let _ = scheduler.lateness().take();
            let started0 = scheduler.lateness().started.load(Ordering::Relaxed);
            let written0 = ingest.stats.written.load(Ordering::Relaxed);
            let t = Instant::now();
            tokio::time::sleep(duration).await;
            let secs = t.elapsed().as_secs_f64();
            let started = scheduler.lateness().started.load(Ordering::Relaxed) - started0;
            let written = ingest.stats.written.load(Ordering::Relaxed) - written0;
            let late: LatencyHistogram = scheduler.lateness().take();
            scheduler.stop();
            ingest.flush().await.map_err(|e| RunError::Database(e.to_string()))?;
            drop(scheduler);
            drop(ingest);
            let _ = writer.await;
            let ms = |q: f64| late.percentile(q).unwrap_or(0.0) / 1000.0;
            Ok(format!(
                "checks started {:>8.0}/s   results persisted {:>8.0}/s   lateness p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
                started as f64 / secs,
                written as f64 / secs,
                ms(0.5),
                ms(0.99),
                late.max_us() as f64 / 1000.0
            ))
        })
    })
    .join()
    .map_err(|_| RunError::Io("benchmark thread panicked".into()))??;
    println!("{report}");
    let outcomes = store::count_by_outcome(&pool_for_counts).await.map_err(err)?;
    let describe: Vec<String> = outcomes
        .iter()
        .map(|(o, n)| format!("{} {n}", crate::storage::results::outcome_from_code(*o).as_str()))
        .collect();
    println!("stored results by outcome: {}", describe.join(", "));
    Ok(())
}
