//! The overview's tiles: every service with its state and the last five minutes of its probes.
//! Latency and errors come from its HTTP, readiness and push probes; pool gauges from its metrics
//! probes (a scrape's own latency says nothing about the service).

use std::collections::HashMap;

use std::sync::Arc;

use app::model::{
    LocationSummary, Outcome, Overview, Probe, ProbeKind, ServiceTile, ServiceView, TREND_BUCKETS, TREND_STEP_SECS,
    Window,
};
use chrono::{Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::monitor::cached::Cached;
use crate::monitor::series;
use crate::storage::rollups::bucket::Rollup;
use crate::storage::{catalog, results};

pub const WINDOW: Duration = Duration::minutes(5);

/// The overview as every open dashboard asks for it: computed at most once per second however
/// many browsers refresh, the sparklines at most once per minute (they cover an hour in
/// five-minute steps; recomputing them costs about twice the tiles at 2,000 services).
pub struct OverviewCache {
    tiles: Cached<Arc<Overview>, Arc<sqlx::Error>>,
    trends: Arc<Cached<Arc<Trends>, Arc<sqlx::Error>>>,
    /// Error budgets move by the hour: read once a minute, like the sparklines.
    budgets: Arc<Cached<Arc<Budgets>, Arc<sqlx::Error>>>,
}

type Budgets = HashMap<Uuid, (f64, f64)>;

type Trends = HashMap<Uuid, Vec<Option<f64>>>;

impl Default for OverviewCache {
    fn default() -> Self {
        Self {
            tiles: Cached::new(std::time::Duration::from_secs(1)),
            trends: Arc::new(Cached::new(std::time::Duration::from_secs(60))),
            budgets: Arc::new(Cached::new(std::time::Duration::from_secs(60))),
        }
    }
}

impl OverviewCache {
    /// An objective was set or removed: its tile shows it at the next refresh, not a minute on.
    pub fn forget_budgets(&self) {
        self.budgets.clear();
        self.tiles.clear();
    }

    /// The error is shared by every caller that waited for the same computation.
    pub async fn get(&self, pool: &PgPool) -> Result<Arc<Overview>, Arc<sqlx::Error>> {
        let (pool, trends, budgets) = (pool.clone(), Arc::clone(&self.trends), Arc::clone(&self.budgets));
        self.tiles
            .get(move || async move {
                let db = Arc::new;
                let services = catalog::list_services(&pool).await.map_err(db)?;
                let probes = catalog::list_probes(&pool, None).await.map_err(db)?;
                let mut o = overview_of(&pool, services, &probes, Utc::now()).await.map_err(db)?;
                let budget_pool = pool.clone();
                let budgets =
                    budgets
                        .get(move || async move {
                            crate::monitor::slo::budgets(&budget_pool).await.map(Arc::new).map_err(db)
                        })
                        .await?;
                let trends = trends.get(move || async move { p95_trends(&pool, &probes).await }).await?;
                for t in &mut o.services {
                    t.p95_trend = trends.get(&t.id).cloned().unwrap_or_default();
                    t.budget = budgets.get(&t.id).map(|(pct, secs)| (to_places(*pct, 1), secs.round()));
                }
                Ok(Arc::new(o))
            })
            .await
    }
}

/// Every service's p95 sparkline: its traffic probes' p95 per five minutes over the last hour.
pub async fn p95_trends(pool: &PgPool, probes: &[Probe]) -> Result<Arc<Trends>, Arc<sqlx::Error>> {
    let mut groups: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for p in probes.iter().filter(|p| p.spec.enabled && p.spec.kind != ProbeKind::Metrics) {
        groups.entry(p.service_id).or_default().push(p.id);
    }
    let step = Duration::seconds(TREND_STEP_SECS);
    let mut trends = series::p95_trends(pool, &groups, Utc::now(), step, TREND_BUCKETS).await.map_err(Arc::new)?;
    for v in trends.values_mut().flatten().flatten() {
        *v = to_places(*v, 2);
    }
    Ok(Arc::new(trends))
}

/// `v` rounded to `places` decimals. The tiles show whole milliseconds and tenths of a percent,
/// and the rollups' percentiles are within 1 % anyway: further digits are noise that every page
/// view would serialise into its hydration data (half of its bytes at 15 digits a figure).
fn to_places(v: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (v * scale).round() / scale
}

/// The tiles, straight from the database (the figures of the last five minutes).
pub async fn overview(pool: &PgPool) -> Result<Overview, sqlx::Error> {
    let now = Utc::now();
    let services = catalog::list_services(pool).await?;
    let probes = catalog::list_probes(pool, None).await?;
    overview_of(pool, services, &probes, now).await
}

async fn overview_of(
    pool: &PgPool,
    services: Vec<app::model::Service>,
    probes: &[Probe],
    now: chrono::DateTime<Utc>,
) -> Result<Overview, sqlx::Error> {
    let enabled: Vec<Uuid> = probes.iter().filter(|p| p.spec.enabled).map(|p| p.id).collect();
    let summaries = series::summaries(pool, &enabled, now - WINDOW, now).await?;

    let mut traffic: HashMap<Uuid, Rollup> = HashMap::new();
    let mut pools: HashMap<Uuid, Rollup> = HashMap::new();
    let mut counts: HashMap<Uuid, u32> = HashMap::new();
    let mut last: HashMap<Uuid, chrono::DateTime<Utc>> = HashMap::new();
    for p in probes {
        *counts.entry(p.service_id).or_default() += 1;
        if let Some(at) = p.status.as_ref().and_then(|s| s.last_result_at) {
            let slot = last.entry(p.service_id).or_insert(at);
            *slot = (*slot).max(at);
        }
        let Some(r) = summaries.get(&p.id) else { continue };
        let into = if p.spec.kind == ProbeKind::Metrics { &mut pools } else { &mut traffic };
        into.entry(p.service_id).or_default().merge(r);
    }
    let windows = {
        let mut conn = pool.acquire().await?;
        crate::monitor::maintenance::under_way(&mut conn, now).await?
    };
    let whence = locations_of_unwell(pool, probes).await?;
    let mut tiles: Vec<ServiceTile> = services
        .into_iter()
        .map(|s| {
            let maintenance = windows.iter().find(|w| w.covers(s.id, &s.tags)).map(|w| w.title.clone());
            let t = traffic.get(&s.id).map(|r| r.to_point(now));
            let pool = pools.get(&s.id).and_then(|r| r.to_point(now).pool);
            ServiceTile {
                id: s.id,
                name: s.name,
                tags: s.tags,
                criticality: s.criticality,
                state: s.state,
                blocked: s.blocked,
                probes: counts.get(&s.id).copied().unwrap_or(0),
                p95_ms: t.as_ref().and_then(|p| p.p95_ms).map(|v| to_places(v, 2)),
                error_pct: t.as_ref().and_then(|p| p.error_pct).map(|v| to_places(v, 2)),
                pool_in_use: pool.and_then(|p| p.in_use),
                pool_max: pool.and_then(|p| p.max),
                pool_waiting: pool.and_then(|p| p.waiting),
                last_check: last.get(&s.id).copied(),
                p95_trend: Vec::new(),
                maintenance,
                budget: None,
                locations: whence.get(&s.id).map(|(_, d)| d.clone()),
            }
        })
        .collect();
    tiles.sort_by(|a, b| a.severity_rank().cmp(&b.severity_rank()).then_with(|| a.name.cmp(&b.name)));
    Ok(Overview { at: now, services: tiles })
}

/// For each service with a probe run from several locations that is not up: where from, for
/// its worst such probe ("down from 1 of 3 locations: eu-west").
async fn locations_of_unwell(pool: &PgPool, probes: &[Probe]) -> Result<HashMap<Uuid, (Outcome, String)>, sqlx::Error> {
    let unwell: Vec<Uuid> = probes
        .iter()
        .filter(|p| p.spec.enabled && p.spec.is_multi_location())
        .filter(|p| p.status.as_ref().and_then(|s| s.state).is_some_and(|s| s != Outcome::Up))
        .map(|p| p.id)
        .collect();
    if unwell.is_empty() {
        return Ok(HashMap::new());
    }
    let notes = crate::storage::locations::latest_notes(pool, &unwell).await?;
    let mut whence: HashMap<Uuid, (Outcome, String)> = HashMap::new();
    for (probe, to, note) in notes {
        let Some(p) = probes.iter().find(|p| p.id == probe) else { continue };
        if p.status.as_ref().and_then(|s| s.state) != Some(to) {
            continue;
        }
        let worse = whence.get(&p.service_id).is_none_or(|(was, _)| to > *was);
        if worse {
            whence.insert(p.service_id, (to, note.describe(to)));
        }
    }
    Ok(whence)
}

/// The service page's data over `window`.
pub async fn service_view(pool: &PgPool, id: Uuid, window: &Window) -> Result<Option<ServiceView>, sqlx::Error> {
    let Some(service) = catalog::get_service(pool, id).await? else { return Ok(None) };
    let probes = catalog::list_probes(pool, Some(id)).await?;
    let now = Utc::now();
    let (from, to) = window.bounds(now);
    let (traffic_ids, gauge_ids) = series::split_probes(&probes);
    let traffic = series::series_of(pool, &traffic_ids, from, to, None).await?;
    let gauges = series::series_of(pool, &gauge_ids, from, to, None).await?;
    let all: Vec<Uuid> = probes.iter().map(|p| p.id).collect();
    // Enough recent results for each location to show some when one is picked.
    let per = probes.iter().map(|p| p.spec.locations.len()).max().unwrap_or(1).max(1) as i64;
    let recent = results::list_results(pool, &all, from, to, RECENT * per).await?;
    let locations = location_summaries(pool, &probes, from, to, traffic.step_secs).await?;
    let changes = results::list_state_changes(pool, &all, RECENT).await?;
    let incidents = crate::storage::incidents::bands_for_service(pool, id, from, to).await?;
    let maintenance = {
        let mut conn = pool.acquire().await?;
        crate::monitor::maintenance::bands_for_service(&mut conn, &service, from, to).await?
    };
    let mut change_events = crate::storage::changes::list(pool, Some(&[id]), from, to, MAX_CHANGE_MARKERS).await?;
    change_events.reverse();
    Ok(Some(ServiceView {
        service,
        // The page's data reaches every viewer: secrets masked.
        probes: probes.into_iter().map(Probe::masked).collect(),
        from: traffic.from,
        to,
        step_secs: traffic.step_secs,
        now,
        traffic: traffic.points,
        pool: gauges.points,
        recent,
        changes,
        incidents,
        maintenance,
        change_events,
        slo: None,
        locations,
    }))
}

/// Each location of the service's multi-location probes over the window.
async fn location_summaries(
    pool: &PgPool,
    probes: &[Probe],
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
    step_secs: u64,
) -> Result<Vec<LocationSummary>, sqlx::Error> {
    let multi: Vec<&Probe> = probes.iter().filter(|p| p.spec.is_multi_location()).collect();
    if multi.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = multi.iter().map(|p| p.id).collect();
    let step = i64::try_from(step_secs.max(1)).unwrap_or(60);
    let (buckets, whole) = crate::storage::locations::figures(pool, &ids, from, to, step).await?;
    let states = crate::storage::locations::states(pool, &ids).await?;
    let mut out = Vec::new();
    for p in multi {
        for location in &p.spec.locations {
            let mine = |f: &&crate::storage::locations::LocationFigures| f.probe_id == p.id && &f.location == location;
            let total = whole.iter().find(mine);
            let points = buckets
                .iter()
                .filter(mine)
                .filter_map(|b| {
                    Some(app::model::SeriesPoint {
                        at: b.at?,
                        count: u64::try_from(b.checks).unwrap_or(0),
                        down: u64::try_from(b.failed).unwrap_or(0),
                        p95_ms: b.p95_us.map(|us| to_places(us / 1000.0, 2)),
                        ..Default::default()
                    })
                })
                .collect();
            out.push(LocationSummary {
                probe_id: p.id,
                probe: p.spec.name.clone(),
                location: location.clone(),
                state: states.iter().find(|(id, l, _)| *id == p.id && l == location).and_then(|s| s.2),
                p95_ms: total.and_then(|t| t.p95_us).map(|us| to_places(us / 1000.0, 2)),
                checks: total.map_or(0, |t| u64::try_from(t.checks).unwrap_or(0)),
                failed: total.map_or(0, |t| u64::try_from(t.failed).unwrap_or(0)),
                last_check: total.and_then(|t| t.last),
                points,
            });
        }
    }
    Ok(out)
}

/// Results and state changes listed on the service page.
const RECENT: i64 = 20;
/// The newest change events marked on a service's charts (more would be a solid wall of lines).
const MAX_CHANGE_MARKERS: i64 = 200;

#[cfg(test)]
mod tests {
    use super::to_places;

    #[test]
    fn figures_keep_the_digits_the_tiles_show() {
        assert_eq!(to_places(39.130284795460035, 2), 39.13);
        assert_eq!(to_places(54.54545454545455, 2), 54.55);
        assert_eq!(to_places(1351.75, 1), 1351.8);
        assert_eq!(to_places(0.04, 1), 0.0);
    }
}
