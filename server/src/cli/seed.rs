//! Synthetic services with a stretch of history: to measure the dashboard at scale (the overview
//! benchmark) and to try it with many services (`triage seed`). The data is deterministic.
//!
//! Each service gets a push probe (its traffic: latency and errors) and a metrics probe (its
//! pool), both with an hour-long interval so that nothing the scheduler does afterwards changes
//! the seeded picture while it is being measured.

use std::time::Instant;

use app::model::{Criticality, ErrorClass, Outcome, PoolReading, ProbeKind, ProbeResult, ProbeSpec, ServiceInput};
use chrono::{Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::cli::bench::{Rng, sample};
use crate::storage::catalog::{self as store, ProbeWrite};
use crate::storage::results::{self, StateRow};

/// Teams the services are tagged with (the overview groups by tag).
const TEAMS: [&str; 12] = [
    "payments",
    "search",
    "checkout",
    "identity",
    "catalog",
    "shipping",
    "billing",
    "media",
    "notifications",
    "pricing",
    "reviews",
    "platform",
];
const EVERY_SECS: i64 = 30;

#[derive(Debug)]
pub struct Seeded {
    pub services: usize,
    pub probes: usize,
    pub results: usize,
    pub secs: f64,
}

/// How service `i` behaves: most are healthy; a few slow, failing or out of pool connections.
fn profile(i: usize) -> (Outcome, f64, f64) {
    match i % 50 {
        7 => (Outcome::Down, 0.6, 19.0),
        13 | 29 => (Outcome::Degraded, 0.05, 20.0),
        _ => (Outcome::Up, 0.002, (i % 17) as f64),
    }
}

/// Adds `n` services named `svc-0000`… with `history` of results ending now, rolled up.
pub async fn seed(pool: &PgPool, n: usize, history: Duration) -> Result<Seeded, sqlx::Error> {
    let started = Instant::now();
    let now = Utc::now();
    let from = now - history;
    for d in -(history.num_days() + 1)..=1 {
        if let Some(day) = now.date_naive().checked_add_signed(Duration::days(d)) {
            results::ensure_partition(pool, day).await?;
        }
    }
    // The history is new to the rollups, not late: with the watermark ahead of it, the last
    // batch's minutes would be queued as dirty and then also rolled up as new, counted twice.
    crate::storage::rollups::set_watermark(pool, crate::storage::rollups::Level::Minute.truncate(from)).await?;
    let mut ids = Vec::with_capacity(n);
    let mut tx = pool.begin().await?;
    for i in 0..n {
        let (service, api, metrics) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let name = format!("svc-{i:04}");
        let input = ServiceInput {
            name: name.clone(),
            description: String::new(),
            tags: vec![TEAMS[i % TEAMS.len()].to_string()],
            criticality: [Criticality::Critical, Criticality::High, Criticality::Medium, Criticality::Low][i % 4],
        };
        store::insert_service(&mut *tx, service, &input).await?;
        for (id, kind, suffix, url) in [
            (api, ProbeKind::Push, "api", None),
            (metrics, ProbeKind::Metrics, "pool", Some(format!("http://{name}.internal:9090/metrics"))),
        ] {
            let mut spec = ProbeSpec::new(&format!("{name}-{suffix}"), &name, kind, url.as_deref());
            spec.interval_secs = 3_600;
            let write =
                ProbeWrite { id, service_id: service, spec: &spec, file_managed: false, push_token_sha256: None };
            store::upsert_probe(&mut tx, &write).await?;
        }
        ids.push((api, metrics));
    }
    tx.commit().await?;

    let mut rng = Rng(2_026);
    let mut batch: Vec<ProbeResult> = Vec::with_capacity(100_000);
    let mut written = 0;
    let mut states = Vec::with_capacity(n * 2);
    for (i, (api, metrics)) in ids.iter().enumerate() {
        let (state, error_share, in_use) = profile(i);
        let slow = if state == Outcome::Degraded { 8.0 } else { 1.0 };
        let mut at = from + Duration::seconds(i as i64 % EVERY_SECS);
        let mut last = at;
        while at < now {
            let mut r = sample(*api, at, (rng.latency_us() as f64 * slow) as u64);
            if rng.unit() < error_share {
                r.outcome = Outcome::Down;
                r.status = Some(503);
                r.error = Some(ErrorClass::Status);
            }
            batch.push(r);
            let mut m = sample(*metrics, at, 900);
            m.pool = Some(PoolReading {
                in_use: Some(in_use),
                idle: Some(20.0 - in_use),
                max: Some(20.0),
                waiting: Some(if in_use >= 19.0 { 6.0 } else { 0.0 }),
                requests_per_s: Some(40.0),
                errors_per_s: Some(40.0 * error_share),
            });
            batch.push(m);
            last = at;
            at += Duration::seconds(EVERY_SECS);
            if batch.len() >= 100_000 {
                written += batch.len();
                results::copy_only(pool, &batch).await?;
                batch.clear();
            }
        }
        for (probe, s) in [(*api, state), (*metrics, Outcome::Up)] {
            states.push(StateRow {
                probe_id: probe,
                state: Some(s),
                since: from,
                last_result_at: last,
                last_outcome: s,
                last_error: (s == Outcome::Down).then_some(ErrorClass::Status),
            });
        }
    }
    written += batch.len();
    results::write_batch(pool, Uuid::new_v4(), &batch, &states, &[]).await?;
    crate::monitor::pipeline::roll_up_to(pool, now).await?;
    Ok(Seeded { services: n, probes: n * 2, results: written, secs: started.elapsed().as_secs_f64() })
}

/// Adds `probes` probes of the benchmark fleet, five to a service (`fleet-00000`…): HTTP,
/// readiness, metrics, push and HTTP again, at the fleet's intervals; `url(i, kind)` is where
/// probe `i` checks. Answers their ids in order.
pub async fn add_fleet(
    pool: &PgPool,
    probes: usize,
    url: impl Fn(usize, ProbeKind) -> String,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut ids = Vec::with_capacity(probes);
    let mut tx = pool.begin().await?;
    let mut service = Uuid::nil();
    for i in 0..probes {
        let name = format!("fleet-{:05}", i / 5);
        if i % 5 == 0 {
            service = Uuid::new_v4();
            let input = ServiceInput {
                name: name.clone(),
                description: String::new(),
                tags: vec![TEAMS[(i / 5) % TEAMS.len()].to_string()],
                criticality: Criticality::Medium,
            };
            store::insert_service(&mut *tx, service, &input).await?;
        }
        let kind = FLEET_KINDS[i % 5];
        let url = (kind != ProbeKind::Push).then(|| url(i, kind));
        let mut spec = ProbeSpec::new(&format!("{name}-{}", i % 5), &name, kind, url.as_deref());
        spec.interval_secs = fleet_interval(i);
        let id = Uuid::new_v4();
        let write = ProbeWrite { id, service_id: service, spec: &spec, file_managed: false, push_token_sha256: None };
        store::upsert_probe(&mut tx, &write).await?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

/// The kind of fleet probe `i`, by `i % 5`.
pub const FLEET_KINDS: [ProbeKind; 5] =
    [ProbeKind::Http, ProbeKind::Readiness, ProbeKind::Metrics, ProbeKind::Push, ProbeKind::Http];

/// The fleet's intervals in seconds, in twentieths: a quarter every 30 s, two fifths every
/// minute, a fifth every 2 minutes, the rest every 5. At 100,000 probes that is 1,717 checks a
/// second.
pub fn fleet_interval(i: usize) -> u32 {
    match i % 20 {
        0..=4 => 30,
        5..=12 => 60,
        13..=16 => 120,
        _ => 300,
    }
}

/// Checks a second of `probes` probes with the fleet's intervals.
pub fn fleet_rate(probes: usize) -> f64 {
    (0..20).map(|i| 1.0 / f64::from(fleet_interval(i))).sum::<f64>() / 20.0 * probes as f64
}

/// `triage seed`: adds the services to the configured database (attaching to a running
/// instance's cluster if the data directory is in use).
pub async fn seed_command(
    cli: &crate::config::Cli,
    args: &crate::config::SeedArgs,
) -> Result<(), crate::cli::RunError> {
    let database = crate::cli::serve::Database::open_or_attach(&cli.database).await?;
    let seeded = seed(&database.pool, args.services, Duration::from_std(args.history.0).unwrap_or(Duration::hours(1)))
        .await
        .map_err(|e| crate::cli::RunError::Database(crate::storage::pool::describe(&e)));
    database.close().await;
    let s = seeded?;
    println!(
        "seeded {} services, {} probes, {} results in {:.1} s (rolled up)",
        s.services, s.probes, s.results, s.secs
    );
    Ok(())
}
