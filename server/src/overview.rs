//! The overview's tiles: every service with its state and the last five minutes of its probes.
//! Latency and errors come from its HTTP, readiness and push probes; pool gauges from its metrics
//! probes (a scrape's own latency says nothing about the service).

use std::collections::HashMap;

use app::model::{Overview, Probe, ProbeKind, ServiceTile, ServiceView, Window};
use chrono::{Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::series;
use crate::stats::rollup::Rollup;
use crate::storage::{catalog, results};

pub const WINDOW: Duration = Duration::minutes(5);

pub async fn overview(pool: &PgPool) -> Result<Overview, sqlx::Error> {
    let now = Utc::now();
    let services = catalog::list_services(pool).await?;
    let probes = catalog::list_probes(pool, None).await?;
    let enabled: Vec<Uuid> = probes.iter().filter(|p| p.spec.enabled).map(|p| p.id).collect();
    let summaries = series::summaries(pool, &enabled, now - WINDOW, now).await?;

    let mut traffic: HashMap<Uuid, Rollup> = HashMap::new();
    let mut pools: HashMap<Uuid, Rollup> = HashMap::new();
    let mut counts: HashMap<Uuid, u32> = HashMap::new();
    let mut last: HashMap<Uuid, chrono::DateTime<Utc>> = HashMap::new();
    for p in &probes {
        *counts.entry(p.service_id).or_default() += 1;
        if let Some(at) = p.status.as_ref().and_then(|s| s.last_result_at) {
            let slot = last.entry(p.service_id).or_insert(at);
            *slot = (*slot).max(at);
        }
        let Some(r) = summaries.get(&p.id) else { continue };
        let into = if p.spec.kind == ProbeKind::Metrics { &mut pools } else { &mut traffic };
        into.entry(p.service_id).or_default().merge(r);
    }
    let mut tiles: Vec<ServiceTile> = services
        .into_iter()
        .map(|s| {
            let t = traffic.get(&s.id).map(|r| r.to_point(now));
            let pool = pools.get(&s.id).and_then(|r| r.to_point(now).pool);
            ServiceTile {
                id: s.id,
                name: s.name,
                tags: s.tags,
                criticality: s.criticality,
                state: s.state,
                probes: counts.get(&s.id).copied().unwrap_or(0),
                p95_ms: t.as_ref().and_then(|p| p.p95_ms),
                error_pct: t.as_ref().and_then(|p| p.error_pct),
                pool_in_use: pool.and_then(|p| p.in_use),
                pool_max: pool.and_then(|p| p.max),
                pool_waiting: pool.and_then(|p| p.waiting),
                last_check: last.get(&s.id).copied(),
            }
        })
        .collect();
    tiles.sort_by(|a, b| a.severity_rank().cmp(&b.severity_rank()).then_with(|| a.name.cmp(&b.name)));
    Ok(Overview { at: now, services: tiles })
}

/// The service page's data over `window`.
pub async fn service_view(pool: &PgPool, id: Uuid, window: &Window) -> Result<Option<ServiceView>, sqlx::Error> {
    let Some(service) = catalog::get_service(pool, id).await? else { return Ok(None) };
    let probes = catalog::list_probes(pool, Some(id)).await?;
    let now = Utc::now();
    let (from, to) = window.bounds(now);
    let (pool_ids, traffic_ids): (Vec<&Probe>, Vec<&Probe>) =
        probes.iter().filter(|p| p.spec.enabled).partition(|p| p.spec.kind == ProbeKind::Metrics);
    let ids = |ps: &[&Probe]| ps.iter().map(|p| p.id).collect::<Vec<Uuid>>();
    let traffic = series::series_of(pool, &ids(&traffic_ids), from, to, None).await?;
    let gauges = series::series_of(pool, &ids(&pool_ids), from, to, None).await?;
    let all: Vec<Uuid> = probes.iter().map(|p| p.id).collect();
    let recent = results::list_results(pool, &all, from, to, RECENT).await?;
    let changes = results::list_state_changes(pool, &all, RECENT).await?;
    Ok(Some(ServiceView {
        service,
        probes,
        from: traffic.from,
        to,
        step_secs: traffic.step_secs,
        now,
        traffic: traffic.points,
        pool: gauges.points,
        recent,
        changes,
    }))
}

/// Results and state changes listed on the service page.
const RECENT: i64 = 20;
