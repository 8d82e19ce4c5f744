//! Service level objectives: setting them, how a service stands against its objective, and the
//! burn rates the incident engine judges its alerts by (`respond::incidents::burn`).
//!
//! Everything is counted from the rollups, never from raw results: the window is whole hours of
//! hour rows up to the last complete hour, then the minute rows up to the newest rolled-up minute.
//! Availability is exact; latency splits the one histogram bucket (2 % wide) that holds the
//! threshold, so it is off by at most the checks in that bucket.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use app::model::{BudgetPoint, BurnSpeed, Objective, ObjectiveStatus, SloSpec, SloStatus, Tally, allowed};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::access::actor::Actor;
use crate::error::Error;
use crate::storage::bus::{Bus, Note};
use crate::storage::rollups::{self, Level};
use crate::storage::slo::{self as store, SloRow};

/// The two objectives' tallies for one stretch of time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tallies {
    pub availability: Tally,
    pub latency: Tally,
}

impl Tallies {
    fn add(&mut self, o: &Tallies) {
        self.availability.add(o.availability);
        self.latency.add(o.latency);
    }

    pub fn of(&self, objective: Objective) -> Tally {
        match objective {
            Objective::Availability => self.availability,
            Objective::Latency => self.latency,
        }
    }
}

/// Tallies per bucket of `level` in [from, to), summed over `probes`.
async fn tallies(
    pool: &PgPool,
    probes: &[Uuid],
    level: Level,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    latency_us: Option<u64>,
) -> Result<BTreeMap<DateTime<Utc>, Tallies>, sqlx::Error> {
    let mut out: BTreeMap<DateTime<Utc>, Tallies> = BTreeMap::new();
    if probes.is_empty() || from >= to {
        return Ok(out);
    }
    for row in rollups::read_chart_rows(pool, level, probes, from, to).await? {
        let c = &row.counts;
        let total = c.count() as f64;
        let t = out.entry(row.bucket).or_default();
        t.availability.add(Tally { good: total - c.n_down as f64, total });
        if let Some(us) = latency_us {
            let h = row.latency();
            t.latency.add(Tally { good: h.count_at_most(us), total: h.count() as f64 });
        }
    }
    Ok(out)
}

fn sum<'a>(t: impl Iterator<Item = &'a Tallies>) -> Tallies {
    let mut all = Tallies::default();
    for x in t {
        all.add(x);
    }
    all
}

/// The window an objective of `days` is judged over when the rollups are complete up to `to`.
pub fn window(days: u16, to: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (Level::Hour.truncate(to - Duration::days(i64::from(days))), to)
}

/// One alert's windows as judged: the burn of each, and the bad checks of the long one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Burn {
    pub objective: Objective,
    pub speed: BurnSpeed,
    /// `None` when the window holds no checks (nothing to judge: an alert keeps its state).
    pub long: Option<f64>,
    pub short: Option<f64>,
    pub long_bad: f64,
}

/// The longest window an alert looks back over.
pub fn longest_window() -> Duration {
    Duration::minutes(i64::from(BurnSpeed::ALL.iter().map(|s| s.windows_min().0).max().unwrap_or(360)))
}

/// Every alert a service's objective has, judged from the minute rollups up to `to`. Minutes in
/// `quiet` (maintenance windows) are left out: planned downtime spends budget, but must not
/// page anyone in the minutes after the window while the short windows still hold it.
pub async fn burn_rates(
    pool: &PgPool,
    o: &SloRow,
    to: DateTime<Utc>,
    quiet: &[app::model::MaintenanceBand],
) -> Result<Vec<Burn>, sqlx::Error> {
    let from = to - longest_window();
    let mut minutes = tallies(pool, &o.probes, Level::Minute, from, to, o.spec.latency().map(|l| l.0)).await?;
    minutes.retain(|minute, _| !quiet.iter().any(|b| b.from <= *minute && *minute < b.to));
    let last = |m: u32| sum(minutes.range(to - Duration::minutes(i64::from(m))..).map(|(_, t)| t));
    let mut objectives = vec![(Objective::Availability, o.spec.availability_target)];
    if let Some((_, target)) = o.spec.latency() {
        objectives.push((Objective::Latency, target));
    }
    let mut out = Vec::new();
    for speed in BurnSpeed::ALL {
        let (long, short) = speed.windows_min();
        let (long, short) = (last(long), last(short));
        for &(objective, target) in &objectives {
            let (l, s) = (long.of(objective), short.of(objective));
            out.push(Burn {
                objective,
                speed,
                long: l.burn_rate(target),
                short: s.burn_rate(target),
                long_bad: l.bad(),
            });
        }
    }
    Ok(out)
}

/// How long the service page reuses a service's figures: it refetches up to four times a second
/// while results arrive, and the figures move by whole minutes.
const PAGE_REUSE: std::time::Duration = std::time::Duration::from_secs(15);

type Recent = HashMap<Uuid, (std::time::Instant, Option<SloStatus>)>;

#[derive(Clone)]
pub struct Slos {
    pub pool: PgPool,
    /// The figures lately computed, and a generation bumped by every change of an objective: a
    /// computation that began before a change must not store what it read.
    recent: Arc<Mutex<(u64, Recent)>>,
    bus: Bus,
}

impl Slos {
    pub fn new(pool: PgPool, bus: Bus) -> Self {
        Self { pool, recent: Arc::default(), bus }
    }

    /// [`status`](Self::status) for the service page, `None` without an objective; reused for
    /// [`PAGE_REUSE`] unless the objective changed.
    pub async fn for_page(&self, service: Uuid) -> Result<Option<SloStatus>, Error> {
        let (generation, reused) = {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            let reused = recent.1.get(&service).filter(|(at, _)| at.elapsed() < PAGE_REUSE).map(|(_, s)| s.clone());
            (recent.0, reused)
        };
        if let Some(s) = reused {
            return Ok(s);
        }
        let status = match self.status(service).await {
            Ok(s) => Some(s),
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.0 == generation {
            recent.1.retain(|_, (at, _)| at.elapsed() < PAGE_REUSE);
            recent.1.insert(service, (std::time::Instant::now(), status.clone()));
        }
        Ok(status)
    }

    fn forget(&self, service: Uuid) {
        self.forget_here(Some(service));
        self.bus.note(&Note::Slo { service });
    }

    /// Drops this replica's figures for `service` (every service with `None`).
    pub fn forget_here(&self, service: Option<Uuid>) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.0 += 1;
        match service {
            Some(s) => {
                recent.1.remove(&s);
            }
            None => recent.1.clear(),
        }
    }

    /// How the service stands against its objective; 404 when it has none.
    pub async fn status(&self, service: Uuid) -> Result<SloStatus, Error> {
        let Some(o) = store::objectives(&self.pool, Some(service)).await?.pop() else {
            return Err(Error::NotFound("service level objective"));
        };
        let to = rollups::watermark(&self.pool).await?;
        let (from, _) = window(o.spec.window_days, to);
        let hour = Level::Hour.truncate(to);
        let latency_us = o.spec.latency().map(|l| l.0);
        let mut buckets = tallies(&self.pool, &o.probes, Level::Hour, from, hour, latency_us).await?;
        let minutes = tallies(&self.pool, &o.probes, Level::Minute, to - Duration::hours(1), to, latency_us).await?;
        // The current hour is summed from its minutes; the last hour's burn reads them too.
        let current = sum(minutes.range(hour..).map(|(_, t)| t));
        if current.availability.total > 0.0 {
            buckets.insert(hour, current);
        }
        let last_hour = sum(minutes.range(to - Duration::hours(1)..).map(|(_, t)| t));
        let whole = sum(buckets.values());
        let secs = (to - from).num_seconds() as f64;
        let availability =
            ObjectiveStatus::new(o.spec.availability_target, whole.availability, last_hour.availability, secs);
        let latency =
            o.spec.latency().map(|(_, target)| ObjectiveStatus::new(target, whole.latency, last_hour.latency, secs));
        let alerts = store::alerts(&self.pool, service, to - Duration::days(30)).await?;
        Ok(SloStatus {
            service_id: service,
            availability_target: o.spec.availability_target,
            latency_ms: o.spec.latency_ms,
            latency_target: o.spec.latency_target,
            window_days: o.spec.window_days,
            probes: o.spec.probes.clone(),
            open_incidents: o.spec.open_incidents,
            attainment: availability.attainment,
            budget_remaining_pct: availability.budget_remaining_pct,
            budget_remaining_secs: availability.budget_remaining_secs,
            burn_rate_1h: availability.burn_rate_1h,
            checks: availability.checks,
            bad_checks: availability.bad_checks,
            budget: budget_points(&o.spec, &buckets, &whole, to),
            latency,
            window_from: from,
            window_to: to,
            alerts,
        })
    }

    /// Sets a service's objective (admins). The chosen probes must be the service's own.
    pub async fn put(&self, actor: &Actor, service: Uuid, spec: &SloSpec) -> Result<SloStatus, Error> {
        spec.check().map_err(|(field, message)| Error::invalid(field, message))?;
        let Some(_) = crate::storage::catalog::get_service(&self.pool, service).await? else {
            return Err(Error::NotFound("service"));
        };
        if let Some(chosen) = &spec.probes {
            let own: Vec<Uuid> =
                crate::storage::catalog::list_probes(&self.pool, Some(service)).await?.iter().map(|p| p.id).collect();
            if let Some(other) = chosen.iter().find(|p| !own.contains(p)) {
                return Err(Error::invalid("probes", format!("{other} is not a probe of this service")));
            }
        }
        let mut tx = self.pool.begin().await?;
        store::put(&mut tx, service, spec, &actor.principal.actor()).await?;
        actor.audit(&mut *tx, "slo.set", service.to_string(), serde_json::to_value(spec).unwrap_or_default()).await?;
        tx.commit().await?;
        self.forget(service);
        self.status(service).await
    }

    pub async fn delete(&self, actor: &Actor, service: Uuid) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        if !store::delete(&mut tx, service).await? {
            return Err(Error::NotFound("service level objective"));
        }
        actor.audit(&mut *tx, "slo.delete", service.to_string(), serde_json::json!({})).await?;
        tx.commit().await?;
        self.forget(service);
        Ok(())
    }
}

/// The availability budget left of every service with an objective, for the overview's tiles:
/// service → (percent, seconds). Whole hours only: the tiles refresh it once a minute.
pub async fn budgets(pool: &PgPool) -> Result<HashMap<Uuid, (f64, f64)>, sqlx::Error> {
    let to = rollups::watermark(pool).await?;
    let mut out = HashMap::new();
    for o in store::objectives(pool, None).await? {
        let (from, _) = window(o.spec.window_days, to);
        let buckets = tallies(pool, &o.probes, Level::Hour, from, Level::Hour.truncate(to), None).await?;
        let whole = sum(buckets.values());
        let secs = (to - from).num_seconds() as f64;
        let s = ObjectiveStatus::new(o.spec.availability_target, whole.availability, Tally::default(), secs);
        if let (Some(pct), Some(secs)) = (s.budget_remaining_pct, s.budget_remaining_secs) {
            out.insert(o.service_id, (pct, secs));
        }
    }
    Ok(out)
}

/// The budget chart: after each hour, the share of the whole window's budget not yet spent.
fn budget_points(
    spec: &SloSpec,
    buckets: &BTreeMap<DateTime<Utc>, Tallies>,
    whole: &Tallies,
    to: DateTime<Utc>,
) -> Vec<BudgetPoint> {
    let budget_of = |target: f64, total: f64| allowed(target) * total;
    let avail_budget = budget_of(spec.availability_target, whole.availability.total);
    let latency_budget = spec.latency().map(|(_, t)| budget_of(t, whole.latency.total));
    let left = |spent: f64, budget: f64| if budget > 0.0 { 100.0 * (1.0 - spent / budget) } else { 100.0 };
    let mut spent = Tallies::default();
    buckets
        .iter()
        .map(|(at, t)| {
            spent.add(t);
            BudgetPoint {
                // The current hour ends at the newest rolled-up minute, not in the future.
                at: (*at + Duration::hours(1)).min(to),
                availability_pct: left(spent.availability.bad(), avail_budget),
                latency_pct: latency_budget.map(|b| left(spent.latency.bad(), b)),
            }
        })
        .collect()
}
