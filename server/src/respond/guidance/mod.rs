//! Guided debugging in the incident room: symptoms read from the affected services' data, the
//! checklists that answer them (each incident keeps the versions it was shown), evidence beside
//! each step, hypotheses, and whether the signals are back to normal. Every tick, finding and
//! hypothesis change is written to the timeline.

pub mod library;
pub mod signals;

use app::model::{
    EntryKind, Guidance, GuidedChecklist, GuidedStep, Hypothesis, HypothesisInput, HypothesisStatus, Risk, Role,
    RoomEvent, SeriesPoint, StepKind, TickInput,
};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::access::actor::Actor;
use crate::error::Error;
use crate::respond::incidents::{Author, RoomHub};
use crate::storage::guidance as store;
use crate::storage::incidents::{self as incidents_store, NewEntryRow};
use crate::storage::{catalog, results};
use signals::{BaselineSource, ProbeSignal, ServiceSignals};

/// Symptoms are read from this much recent data.
const WINDOW: Duration = Duration::minutes(15);
/// A gentle warning past this many open hypotheses (the loop wants two or three).
pub const MAX_OPEN_HYPOTHESES: usize = 3;

fn quantile(mut v: Vec<f64>, q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v.get(i).copied()
}

/// The usual p95 and error rate of a stretch of buckets. Buckets where checks failed are left out
/// when enough clean ones remain: a timeout or an outage earlier in the hour is not what "normal"
/// looks like, and counting it would hide a slowdown behind an inflated baseline. Without enough
/// clean buckets, the lower quartile keeps a bad stretch from counting as normal.
fn usual(points: &[&SeriesPoint]) -> (Option<f64>, Option<f64>) {
    let clean: Vec<&SeriesPoint> = points.iter().copied().filter(|p| p.error_pct.is_none_or(|e| e == 0.0)).collect();
    if clean.len() >= 3 {
        let p95 = quantile(clean.iter().filter_map(|p| p.p95_ms).collect(), 0.5);
        return (p95, Some(0.0));
    }
    let p95 = quantile(points.iter().filter_map(|p| p.p95_ms).collect(), 0.25);
    let err = quantile(points.iter().filter_map(|p| p.error_pct).collect(), 0.25);
    (p95, err)
}

/// The usual p95 and error rate: the median of the same hour on earlier days when at least three
/// of the last seven have data. Otherwise the hour before the incident started (the incident
/// must not become its own baseline), and failing that the last hour's settled buckets; both
/// through [`usual`].
async fn baseline(
    pool: &PgPool,
    ids: &[Uuid],
    now: DateTime<Utc>,
    incident_start: Option<DateTime<Utc>>,
) -> Result<(Option<f64>, Option<f64>, BaselineSource), sqlx::Error> {
    let mut p95s = Vec::new();
    let mut errs = Vec::new();
    for day in 1..=7 {
        let to = now - Duration::days(day);
        let s = crate::monitor::series::series_of(pool, ids, to - Duration::hours(1), to, Some(3600)).await?;
        let day_p95: Vec<f64> = s.points.iter().filter_map(|p| p.p95_ms).collect();
        if let Some(v) = quantile(day_p95, 0.5) {
            p95s.push(v);
            errs.extend(s.points.iter().filter_map(|p| p.error_pct));
        }
    }
    if p95s.len() >= 3 {
        return Ok((quantile(p95s, 0.5), quantile(errs, 0.5), BaselineSource::SameHour7d));
    }
    if let Some(start) = incident_start.filter(|s| *s < now) {
        let s = crate::monitor::series::series_of(pool, ids, start - Duration::hours(1), start, None).await?;
        let before: Vec<&SeriesPoint> = s.points.iter().filter(|p| p.count >= 5).collect();
        if !before.is_empty() {
            let (p95, err) = usual(&before);
            return Ok((p95, err, BaselineSource::BeforeIncident));
        }
    }
    let s = crate::monitor::series::series_of(pool, ids, now - Duration::hours(1), now, None).await?;
    let settled: Vec<&SeriesPoint> = s.points.iter().rev().skip(2).collect();
    let (p95, err) = usual(&settled);
    Ok((p95, err, BaselineSource::PreviousHour))
}

/// What the data of one service says now.
pub async fn service_signals(
    pool: &PgPool,
    service_id: Uuid,
    service: &str,
    now: DateTime<Utc>,
    incident_start: Option<DateTime<Utc>>,
) -> Result<ServiceSignals, sqlx::Error> {
    let probes = catalog::list_probes(pool, Some(service_id)).await?;
    let enabled: Vec<&app::model::Probe> = probes.iter().filter(|p| p.spec.enabled).collect();
    let (traffic_ids, gauge_ids) = crate::monitor::series::split_probes(&probes);
    let from = now - WINDOW;
    let series = crate::monitor::series::series_of(pool, &traffic_ids, from, now, None).await?;
    let pool_series = crate::monitor::series::series_of(pool, &gauge_ids, from, now, None).await?;
    let all: Vec<Uuid> = enabled.iter().map(|p| p.id).collect();
    // One read serves both the probes' latest results and the traffic probes' recent ones.
    let latest = results::list_results(pool, &all, from, now + Duration::seconds(1), 500).await?;
    let recent: Vec<_> = latest.iter().filter(|r| traffic_ids.contains(&r.probe_id)).take(200).cloned().collect();
    let (baseline_p95_ms, baseline_error_pct, baseline_source) =
        baseline(pool, &traffic_ids, now, incident_start).await?;
    let probes = enabled
        .iter()
        .map(|p| ProbeSignal {
            id: p.id,
            name: p.spec.name.clone(),
            kind: p.spec.kind,
            state: p.status.as_ref().and_then(|s| s.state),
            since: p.status.as_ref().map(|s| s.since),
            last: latest.iter().find(|r| r.probe_id == p.id).cloned(),
            healthy_for_secs: p.spec.incidents.healthy_for_secs,
        })
        .collect();
    // The strictest threshold among the service's metrics probes: the guidance calls the pool
    // saturated exactly when one of them is degraded for it.
    let pool_saturated_at = enabled
        .iter()
        .filter(|p| p.spec.kind == app::model::ProbeKind::Metrics)
        .map(|p| p.spec.pool_saturated_at.unwrap_or(app::model::POOL_SATURATED_AT))
        .reduce(f64::min)
        .unwrap_or(app::model::POOL_SATURATED_AT);
    let since = incident_start.unwrap_or(now) - crate::respond::incidents::changes::lookback();
    // Up to the start: the newest changes before it are the suspects, not what responders did.
    let until = incident_start.unwrap_or(now);
    let mut changes = crate::storage::changes::list(pool, Some(&[service_id]), since, until, 50).await?;
    changes.reverse();
    let records_changes = !changes.is_empty()
        || !crate::storage::changes::list(pool, Some(&[service_id]), now - Duration::days(30), now, 1)
            .await?
            .is_empty();
    Ok(ServiceSignals {
        service_id,
        service: service.to_string(),
        changes,
        records_changes,
        incident_start,
        pool_saturated_at,
        traffic: series.points,
        step_secs: series.step_secs,
        pool: pool_series.points,
        baseline_p95_ms,
        baseline_error_pct,
        baseline_source,
        probes,
        recent,
    })
}

#[derive(Clone)]
pub struct Guide {
    pub pool: PgPool,
    pub rooms: RoomHub,
}

impl Guide {
    /// The room's guidance now.
    pub async fn guidance(&self, id: Uuid) -> Result<Guidance, Error> {
        let incident = incidents_store::get_incident(&self.pool, id).await?.ok_or(Error::NotFound("incident"))?;
        let now = Utc::now();
        let mut services = Vec::new();
        for s in &incident.services {
            let start = incident.times.started.as_ref().map(|t| t.at);
            services.push(service_signals(&self.pool, s.id, &s.name, now, start).await?);
        }
        let mut symptoms: Vec<_> = services.iter().flat_map(signals::detect).collect();
        symptoms.sort_by(|a, b| b.strength.total_cmp(&a.strength));
        let library = store::latest(&self.pool).await?;
        let chosen = signals::choose(&library, &symptoms);
        let ids: Vec<String> = chosen.iter().map(|c| c.0.clone()).collect();
        // Proposed once, kept: the incident goes on using the version it was first shown.
        let pinned = store::pin(&self.pool, id, &ids).await?;
        let ticks = store::ticks(&self.pool, id).await?;
        let recovery = signals::recovery(&services, &symptoms, now);
        let mut checklists: Vec<GuidedChecklist> = pinned
            .into_iter()
            .map(|c| {
                let (score, reason) = chosen
                    .iter()
                    .find(|x| x.0 == c.def.id)
                    .map(|x| (x.1, x.2.clone()))
                    .unwrap_or((0.0, "proposed earlier in this incident; its symptoms are gone now".into()));
                let steps = c
                    .def
                    .steps
                    .iter()
                    .map(|s| GuidedStep {
                        live: s.evidence.map(|b| signals::evaluate(b, &services, &recovery)),
                        tick: ticks.iter().find(|t| t.0 == c.def.id && t.1 == s.id).map(|t| t.2.clone()),
                        def: s.clone(),
                    })
                    .collect();
                GuidedChecklist {
                    id: c.def.id.clone(),
                    version: c.version,
                    title: c.def.title.clone(),
                    summary: c.def.summary.clone(),
                    reason,
                    score,
                    steps,
                }
            })
            .collect();
        checklists.sort_by(|a, b| b.score.total_cmp(&a.score));
        let hypotheses = store::hypotheses(&self.pool, id).await?;
        let mut suggested = signals::suggest_changes(&services);
        suggested.extend(signals::suggest(&symptoms));
        suggested.retain(|s| !hypotheses.iter().any(|h| h.text == s.text));
        Ok(Guidance { symptoms, checklists, hypotheses, suggested_hypotheses: suggested, recovery, now })
    }

    /// Ticks (or unticks) a step with a finding; the timeline records it.
    pub async fn tick(&self, actor: &Actor, id: Uuid, input: &TickInput) -> Result<Guidance, Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Responder, "ticking a step")?;
        if input.finding.chars().count() > 5000 {
            return Err(Error::invalid("finding", "at most 5000 characters"));
        }
        let pinned = store::pin(&self.pool, id, &[]).await?;
        let checklist = pinned
            .iter()
            .find(|c| c.def.id == input.checklist)
            .ok_or_else(|| Error::invalid("checklist", "not a checklist of this incident"))?;
        let step = checklist
            .def
            .steps
            .iter()
            .find(|s| s.id == input.step)
            .ok_or_else(|| Error::invalid("step", "no such step in this checklist"))?;
        if input.done && step.risk == Some(Risk::High) && !input.accept_risk {
            return Err(Error::Conflict {
                field: Some("accept_risk".into()),
                message: format!("high-risk action: {}", step.warning.clone().unwrap_or_default()),
            });
        }
        let (kind, text) = match (step.kind, input.done) {
            (StepKind::Action, true) => {
                let risk = if step.risk == Some(Risk::High) { "high-risk action taken" } else { "action taken" };
                (EntryKind::Action, format!("**{risk}**: {}", step.question))
            }
            (StepKind::Check, true) => (EntryKind::Observation, format!("**Checked**: {}", step.question)),
            (_, false) => (EntryKind::Note, format!("**Unchecked**: {}", step.question)),
        };
        let text = if input.finding.trim().is_empty() {
            format!("{text} ({})", checklist.def.title)
        } else {
            format!("{text} ({})\n\n{}", checklist.def.title, input.finding.trim())
        };
        let mut tx = self.pool.begin().await?;
        store::upsert_tick(&mut *tx, id, &input.checklist, &input.step, input.done, input.finding.trim(), &author.name)
            .await?;
        let entry = incidents_store::insert_entry(&mut *tx, &entry_row(id, kind, &text, &author)).await?;
        tx.commit().await?;
        if let Some(e) = entry {
            self.rooms.publish(id, RoomEvent::Entry(e));
        }
        self.guidance(id).await
    }

    /// Adds a hypothesis (open unless said otherwise).
    pub async fn add_hypothesis(&self, actor: &Actor, id: Uuid, input: &HypothesisInput) -> Result<Hypothesis, Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Responder, "adding a hypothesis")?;
        let text = input.text.as_deref().map(str::trim).unwrap_or("");
        if text.is_empty() || text.chars().count() > 2000 {
            return Err(Error::invalid("text", "must be 1–2000 characters"));
        }
        incidents_store::get_incident(&self.pool, id).await?.ok_or(Error::NotFound("incident"))?;
        let status = input.status.unwrap_or(HypothesisStatus::Open);
        let evidence = input.evidence.as_deref().unwrap_or("").trim();
        let mut tx = self.pool.begin().await?;
        let h = store::insert_hypothesis(&mut *tx, id, text, status, evidence, &author.name).await?;
        let line = format!("**Hypothesis** ({}): {}", status_word(status), text);
        let entry =
            incidents_store::insert_entry(&mut *tx, &entry_row(id, EntryKind::Hypothesis, &line, &author)).await?;
        tx.commit().await?;
        if let Some(e) = entry {
            self.rooms.publish(id, RoomEvent::Entry(e));
        }
        Ok(h)
    }

    /// Changes a hypothesis' text, status or evidence; the change is on the timeline.
    pub async fn update_hypothesis(
        &self,
        actor: &Actor,
        id: Uuid,
        hid: Uuid,
        input: &HypothesisInput,
    ) -> Result<Hypothesis, Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Responder, "changing a hypothesis")?;
        if input.text.as_deref().is_some_and(|t| t.trim().is_empty() || t.chars().count() > 2000) {
            return Err(Error::invalid("text", "must be 1–2000 characters"));
        }
        let mut tx = self.pool.begin().await?;
        let old = store::lock_hypothesis(&mut tx, id, hid).await?.ok_or(Error::NotFound("hypothesis"))?;
        let mut new = old.clone();
        if let Some(t) = &input.text {
            new.text = t.trim().to_string();
        }
        if let Some(s) = input.status {
            new.status = s;
        }
        if let Some(e) = &input.evidence {
            new.evidence = e.trim().to_string();
        }
        if new == old {
            tx.rollback().await?;
            return Ok(old);
        }
        let saved = store::update_hypothesis(&mut tx, &new).await?;
        let mut line = if new.status != old.status {
            format!("**Hypothesis {}**: {}", status_word(new.status), new.text)
        } else {
            format!("**Hypothesis updated**: {}", new.text)
        };
        if !new.evidence.is_empty() && new.evidence != old.evidence {
            line.push_str(&format!("\n\nEvidence: {}", new.evidence));
        }
        let entry =
            incidents_store::insert_entry(&mut *tx, &entry_row(id, EntryKind::Hypothesis, &line, &author)).await?;
        tx.commit().await?;
        if let Some(e) = entry {
            self.rooms.publish(id, RoomEvent::Entry(e));
        }
        Ok(saved)
    }
}

fn status_word(s: HypothesisStatus) -> &'static str {
    match s {
        HypothesisStatus::Open => "open",
        HypothesisStatus::Confirmed => "confirmed",
        HypothesisStatus::RuledOut => "ruled out",
    }
}

fn entry_row<'a>(id: Uuid, kind: EntryKind, text: &'a str, author: &'a Author) -> NewEntryRow<'a> {
    NewEntryRow {
        id: Uuid::new_v4(),
        incident_id: id,
        kind,
        text,
        author: &author.name,
        author_id: author.user,
        happened_at: Utc::now(),
        attachments: &[],
        idempotency_key: None,
        state_change_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(p95: f64, error_pct: Option<f64>) -> SeriesPoint {
        SeriesPoint { count: 10, p95_ms: Some(p95), error_pct, ..SeriesPoint::default() }
    }

    #[test]
    fn failing_buckets_do_not_inflate_the_usual_latency() {
        // An hour that was mostly outage and timeouts (800 ms) with a few clean 30 ms stretches.
        let mut points: Vec<SeriesPoint> = (0..10).map(|_| bucket(800.0, Some(60.0))).collect();
        points.extend([bucket(30.0, Some(0.0)), bucket(35.0, None), bucket(28.0, Some(0.0))]);
        let refs: Vec<&SeriesPoint> = points.iter().collect();
        assert_eq!(usual(&refs), (Some(30.0), Some(0.0)));
    }

    #[test]
    fn without_clean_buckets_the_lower_quartile_is_usual() {
        let points: Vec<SeriesPoint> =
            [100.0, 200.0, 300.0, 400.0, 500.0].iter().map(|v| bucket(*v, Some(10.0))).collect();
        let refs: Vec<&SeriesPoint> = points.iter().collect();
        assert_eq!(usual(&refs), (Some(200.0), Some(10.0)));
        assert_eq!(usual(&[]), (None, None));
    }
}
