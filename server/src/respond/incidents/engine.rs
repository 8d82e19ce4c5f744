//! The automatic side of incidents. Every confirmed probe state change is handled once (the
//! queue is the `state_changes` table itself, so nothing is lost to a restart or a lagging event
//! hub): it becomes an automatic entry in the open incident that covers its service, or opens one
//! when a probe is confirmed down. A timer opens incidents for probes degraded too long, and
//! suggests resolving when every affected probe has been healthy long enough.

use std::time::Duration;

use app::model::{
    Criticality, EntryKind, EventEvidence, EventKind, EventProbe, IncidentStatus, KeyTimes, Outcome, ProbeResult,
    ProbeSpec, RoomEvent, Severity, Stamp, TRIAGE_AUTHOR, TimelineEntry, unknown_state,
};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::RoomHub;
use super::evidence::{self, Change};
use crate::monitor::hub::{EventHub, ProbeEvent};
use crate::monitor::maintenance;
use crate::monitor::replicas::Leadership;
use crate::respond::notify::events::{self as notify, IncidentFacts, ProbeFacts};
use crate::storage::incidents::{self as store, NewEntryRow, NewIncidentRow, PendingChange};
use crate::storage::maintenance as maintenance_store;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Off: no incident is opened automatically (state changes still become entries in open ones).
    pub auto_open: bool,
    /// How often degraded probes and recoveries are re-evaluated.
    pub tick: Duration,
    /// How often error budgets' burn rates are judged (their windows are whole minutes).
    pub burn_every: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self { auto_open: true, tick: Duration::from_secs(2), burn_every: Duration::from_secs(30) }
    }
}

pub struct Engine {
    pub pool: PgPool,
    pub rooms: RoomHub,
    pub settings: EngineSettings,
}

/// What to publish once a transaction commits.
pub(super) type Outbox = Vec<(Uuid, RoomEvent)>;

fn severity_of(spec: &ProbeSpec, service_criticality: &str) -> Severity {
    let c = spec.incidents.criticality.or_else(|| Criticality::parse(service_criticality)).unwrap_or_default();
    Severity::from_criticality(c)
}

impl Engine {
    /// Runs until `stopping` turns true: woken by state changes, and every tick; only while this
    /// replica leads (state changes wait in their table meanwhile, so none is missed).
    pub async fn run(self, hub: EventHub, leadership: Leadership, mut stopping: tokio::sync::watch::Receiver<bool>) {
        let mut events = hub.subscribe();
        let mut tick = tokio::time::interval(self.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let timed = tokio::select! {
                e = events.recv() => match e {
                    Ok(ProbeEvent::StateChanged(_)) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => false,
                    Ok(ProbeEvent::Result(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => true,
                _ = stopping.wait_for(|s| *s) => break,
            };
            if !leadership.leads() {
                continue;
            }
            if let Err(e) = self.handle_changes().await {
                tracing::warn!(error = %e, "incident engine: handling state changes failed; retrying");
            }
            if timed && let Err(e) = self.on_tick().await {
                tracing::warn!(error = %e, "incident engine: periodic evaluation failed; retrying");
            }
        }
    }

    /// Handles every pending state change, one transaction each.
    pub async fn handle_changes(&self) -> Result<usize, sqlx::Error> {
        let mut handled = 0;
        loop {
            let mut tx = self.pool.begin().await?;
            let Some(change) = store::claim_changes(&mut tx, 1).await?.pop() else {
                tx.rollback().await?;
                return Ok(handled);
            };
            let outbox = self.handle(&mut tx, &change).await?;
            store::mark_handled(&mut tx, change.state_change_id).await?;
            tx.commit().await?;
            self.publish(outbox).await;
            handled += 1;
        }
    }

    pub(super) async fn publish(&self, outbox: Outbox) {
        let mut incidents: Vec<Uuid> = Vec::new();
        for (id, event) in outbox {
            if !incidents.contains(&id) {
                incidents.push(id);
            }
            self.rooms.publish(id, event);
        }
        // The header's service states and the suggestion may have changed with the entry.
        for id in incidents {
            self.reload(id).await;
        }
    }

    async fn reload(&self, id: Uuid) {
        match store::get_incident(&self.pool, id).await {
            Ok(Some(i)) => self.rooms.publish(id, RoomEvent::Incident(Box::new(i))),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "incident engine: reloading an incident for its room"),
        }
    }

    async fn handle(&self, tx: &mut Transaction<'_, Postgres>, c: &PendingChange) -> Result<Outbox, sqlx::Error> {
        let (Some(from), Some(to)) = (unknown_state::parse(&c.from_state), Outcome::parse(&c.to_state)) else {
            return Ok(Vec::new());
        };
        let spec = &c.spec.0;
        let locations = c.quorum.as_ref().map(|q| q.0.describe(to));
        let mut outbox = Outbox::new();
        let result = store::result_at(&self.pool, c.probe_id, c.at).await?;
        let baseline = store::results_before(&self.pool, c.probe_id, c.at, Outcome::Up, 20).await?;
        let facts = || ProbeFacts {
            service_id: c.service_id,
            service: c.service_name.clone(),
            probe: EventProbe {
                id: c.probe_id,
                name: c.probe_name.clone(),
                state: to,
                previous: from,
                evidence: EventEvidence {
                    locations: locations.clone(),
                    ..event_evidence(&c.request_id, to, result.as_ref(), &baseline)
                },
            },
        };
        let mut incident = store::open_incident_for_service(tx, c.service_id).await?;
        let mut quiet = None;
        if incident.is_none() && to == Outcome::Down && spec.incidents.auto_open && self.settings.auto_open {
            quiet = maintenance::active_for(tx, c.service_id, c.at).await?;
            if let Some(title) = &quiet {
                // Remembered: if the probe is still down when the window ends, the incident opens then.
                maintenance_store::quiet_outage(tx, c.probe_id, c.at, title).await?;
                tracing::info!(
                    service = c.service_name,
                    probe = c.probe_name,
                    window = title,
                    "probe down during maintenance: no incident opened"
                );
            }
        }
        if to != Outcome::Down {
            maintenance_store::clear_quiet(tx, c.probe_id).await?;
        }
        if quiet.is_none()
            && incident.is_none()
            && to == Outcome::Down
            && spec.incidents.auto_open
            && self.settings.auto_open
        {
            // Two engines (or two probes of one service) must not open two incidents.
            store::lock_service_for_opening(tx, c.service_id).await?;
            incident = store::open_incident_for_service(tx, c.service_id).await?;
            if incident.is_none() {
                let started = store::failing_since(&self.pool, c.probe_id, c.at).await?.unwrap_or(c.at);
                let opening = Opening {
                    service_id: c.service_id,
                    service: &c.service_name,
                    probe: &c.probe_name,
                    spec,
                    criticality: &c.criticality,
                    state: to,
                    started,
                    detected: c.at,
                    locations: locations.as_deref(),
                };
                let (id, events) = self.open(tx, &opening, facts()).await?;
                outbox.extend(events.into_iter().map(|e| (id, e)));
                incident = Some(id);
            }
        }
        // Without an incident the probe's own change is news; with one, it is grouped into the
        // incident (its timeline gets the entry below). A new probe's first "up" is not news.
        if incident.is_none() && !(from.is_none() && to == Outcome::Up) {
            notify::probe_state(&mut *tx, facts(), severity_of(spec, &c.criticality), c.at).await?;
        }
        let Some(id) = incident else { return Ok(outbox) };
        if to != Outcome::Up {
            store::add_probe(tx, id, c.probe_id).await?;
            if store::set_resolve_suggested(tx, id, None).await? {
                tracing::info!(incident = %id, "resolve suggestion withdrawn: a probe failed again");
            }
        }
        let ev = evidence::describe(&Change {
            service_id: c.service_id,
            service: &c.service_name,
            probe_id: c.probe_id,
            probe: &c.probe_name,
            from,
            to,
            at: c.at,
            request_id: &c.request_id,
            result: result.as_ref(),
            baseline: &baseline,
            locations: locations.as_deref(),
        });
        let entry = store::insert_entry(
            &mut **tx,
            &NewEntryRow {
                id: Uuid::new_v4(),
                incident_id: id,
                kind: EntryKind::Automatic,
                text: &ev.text,
                author: TRIAGE_AUTHOR,
                author_id: None,
                happened_at: c.at,
                attachments: &ev.attachments,
                idempotency_key: None,
                state_change_id: Some(c.state_change_id),
            },
        )
        .await?;
        if let Some(e) = entry {
            outbox.push((id, RoomEvent::Entry(e)));
        }
        Ok(outbox)
    }

    /// Opens an incident for a failing probe's service: the opening record, its services, and
    /// the status entry. Returns its id and what to publish.
    async fn open(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        o: &Opening<'_>,
        cause: ProbeFacts,
    ) -> Result<(Uuid, Vec<RoomEvent>), sqlx::Error> {
        let severity = severity_of(o.spec, o.criticality);
        let whence = o.locations.map(|l| format!(", {l}")).unwrap_or_default();
        let text = format!(
            "Opened automatically as **{}**: probe **{}** confirmed {}{whence} (first failing check {}).",
            severity.as_str(),
            o.probe,
            o.state.as_str(),
            o.started.format("%H:%M:%S UTC")
        );
        let opened = Opened {
            service_id: o.service_id,
            title: format!("{}: {} {}", o.service, o.probe, o.state.as_str()),
            severity,
            started: o.started,
            detected: o.detected,
            text,
        };
        let opened = open_incident(tx, &opened, Some(cause)).await?;
        tracing::warn!(incident = %opened.0, service = o.service, probe = o.probe, severity = severity.as_str(), "incident opened automatically");
        Ok(opened)
    }

    /// Opens incidents for probes degraded longer than their policy allows, and suggests (or
    /// withdraws) resolving open incidents from their probes' health.
    pub async fn on_tick(&self) -> Result<(), sqlx::Error> {
        let now = Utc::now();
        if self.settings.auto_open {
            for d in store::degraded_uncovered(&self.pool).await? {
                let policy = &d.spec.0.incidents;
                let Some(limit) = policy.degraded_for_secs else { continue };
                if !policy.auto_open || now - d.since < chrono::Duration::seconds(i64::from(limit)) {
                    continue;
                }
                let mut tx = self.pool.begin().await?;
                store::lock_service_for_opening(&mut tx, d.service_id).await?;
                if store::open_incident_for_service(&mut tx, d.service_id).await?.is_some()
                    || maintenance::active_for(&mut tx, d.service_id, now).await?.is_some()
                {
                    tx.rollback().await?;
                    continue;
                }
                let opening = Opening {
                    service_id: d.service_id,
                    service: &d.service_name,
                    probe: &d.probe_name,
                    spec: &d.spec.0,
                    criticality: &d.criticality,
                    state: Outcome::Degraded,
                    started: d.since,
                    detected: now,
                    locations: None,
                };
                let cause = opening.cause(d.probe_id);
                let (id, events) = self.open(&mut tx, &opening, cause).await?;
                store::add_probe(&mut tx, id, d.probe_id).await?;
                tx.commit().await?;
                self.publish(events.into_iter().map(|e| (id, e)).collect()).await;
            }
        }
        if self.settings.auto_open {
            self.open_after_maintenance(now).await?;
        }
        for open in store::open_incident_probes(&self.pool).await? {
            let healthy_since = healthy_for(&open.probes, now);
            let mut tx = self.pool.begin().await?;
            let mut outbox = Outbox::new();
            match healthy_since {
                Some(secs) if !open.suggested => {
                    if store::set_resolve_suggested(&mut tx, open.incident_id, Some(now)).await? {
                        let text = format!(
                            "All {} affected probe{} healthy for {}: consider resolving. A commander confirms.",
                            open.probes.len(),
                            if open.probes.len() == 1 { " is" } else { "s are" },
                            human_secs(secs)
                        );
                        let entry =
                            automatic_entry(&mut tx, open.incident_id, EntryKind::Automatic, &text, now).await?;
                        outbox.extend(entry.map(|e| (open.incident_id, RoomEvent::Entry(e))));
                    }
                }
                None if open.suggested => {
                    store::set_resolve_suggested(&mut tx, open.incident_id, None).await?;
                }
                _ => {
                    tx.rollback().await?;
                    continue;
                }
            }
            tx.commit().await?;
            if outbox.is_empty() {
                self.reload(open.incident_id).await;
            } else {
                self.publish(outbox).await;
            }
        }
        Ok(())
    }
}

impl Engine {
    /// Outages a maintenance window kept quiet: once the window is over and the probe is still
    /// down, its incident opens (from the outage's real start); a recovered probe is forgotten.
    async fn open_after_maintenance(&self, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
        for q in maintenance_store::quieted(&self.pool).await? {
            let mut tx = self.pool.begin().await?;
            if q.down != Some(true) || !q.spec.0.incidents.auto_open {
                maintenance_store::clear_quiet(&mut tx, q.probe_id).await?;
                tx.commit().await?;
                continue;
            }
            store::lock_service_for_opening(&mut tx, q.service_id).await?;
            if maintenance::active_for(&mut tx, q.service_id, now).await?.is_some() {
                tx.rollback().await?;
                continue;
            }
            if store::open_incident_for_service(&mut tx, q.service_id).await?.is_some() {
                maintenance_store::clear_quiet(&mut tx, q.probe_id).await?;
                tx.commit().await?;
                continue;
            }
            let opening = Opening {
                service_id: q.service_id,
                service: &q.service_name,
                probe: &q.probe_name,
                spec: &q.spec.0,
                criticality: &q.criticality,
                state: Outcome::Down,
                started: q.since,
                detected: now,
                locations: None,
            };
            let cause = opening.cause(q.probe_id);
            let (id, events) = self.open(&mut tx, &opening, cause).await?;
            store::add_probe(&mut tx, id, q.probe_id).await?;
            let text = format!(
                "Maintenance window “{}” is over and **{}** is still down: opened now.",
                q.window_title, q.probe_name
            );
            let entry = automatic_entry(&mut tx, id, EntryKind::Automatic, &text, now).await?;
            maintenance_store::clear_quiet(&mut tx, q.probe_id).await?;
            tx.commit().await?;
            let mut outbox: Outbox = events.into_iter().map(|e| (id, e)).collect();
            outbox.extend(entry.map(|e| (id, RoomEvent::Entry(e))));
            self.publish(outbox).await;
        }
        Ok(())
    }
}

/// An incident the engine opens: for a failing probe, or for an error budget burning fast.
pub(super) struct Opened {
    pub service_id: Uuid,
    pub title: String,
    pub severity: Severity,
    pub started: DateTime<Utc>,
    pub detected: DateTime<Utc>,
    /// The opening entry (Markdown).
    pub text: String,
}

/// Writes an incident the engine opened: the record, its service, the opening entry, the
/// `incident.opened` announcement and the changes that may have caused it. Returns its id and
/// what to publish once the transaction commits.
pub(super) async fn open_incident(
    tx: &mut Transaction<'_, Postgres>,
    o: &Opened,
    cause: Option<ProbeFacts>,
) -> Result<(Uuid, Vec<RoomEvent>), sqlx::Error> {
    let id = Uuid::new_v4();
    let times = KeyTimes {
        started: Some(Stamp::automatic(o.started.min(o.detected))),
        detected: Some(Stamp::automatic(o.detected)),
        ..KeyTimes::default()
    };
    store::insert_incident(
        tx,
        &NewIncidentRow {
            id,
            title: &o.title,
            severity: o.severity,
            summary: "",
            commander: None,
            times: &times,
            automatic: true,
            created_by: TRIAGE_AUTHOR,
        },
    )
    .await?;
    store::add_services(tx, id, &[o.service_id]).await?;
    let entry = automatic_entry(tx, id, EntryKind::StatusChange, &o.text, o.detected).await?;
    let facts = IncidentFacts {
        id,
        title: o.title.clone(),
        severity: o.severity,
        status: IncidentStatus::Investigating,
        commander: None,
    };
    notify::incident(tx, EventKind::IncidentOpened, &facts, Vec::new(), false, cause).await?;
    let changes = super::changes::link(tx, id).await?;
    Ok((id, entry.into_iter().chain(changes).map(RoomEvent::Entry).collect()))
}

struct Opening<'a> {
    service_id: Uuid,
    service: &'a str,
    probe: &'a str,
    spec: &'a ProbeSpec,
    criticality: &'a str,
    state: Outcome,
    started: DateTime<Utc>,
    detected: DateTime<Utc>,
    /// A probe run from several locations: which of them the state stands on.
    locations: Option<&'a str>,
}

impl Opening<'_> {
    /// What the opening notification says of a probe whose state was judged over time (degraded
    /// too long, or down through a maintenance window): no single check is its evidence.
    fn cause(&self, probe_id: Uuid) -> ProbeFacts {
        ProbeFacts {
            service_id: self.service_id,
            service: self.service.to_string(),
            probe: EventProbe {
                id: probe_id,
                name: self.probe.to_string(),
                state: self.state,
                previous: None,
                evidence: EventEvidence::default(),
            },
        }
    }
}

/// The evidence a notification carries about a probe's change.
fn event_evidence(request_id: &str, to: Outcome, r: Option<&ProbeResult>, baseline: &[ProbeResult]) -> EventEvidence {
    let mut e = EventEvidence {
        request_id: (!request_id.is_empty()).then(|| request_id.to_string()),
        ..EventEvidence::default()
    };
    if let Some(r) = r {
        e.status = r.status;
        e.error = r.error.map(|c| c.as_str().to_string());
        e.detail = r.detail.as_ref().map(|d| d.chars().take(300).collect());
        if to != Outcome::Up
            && let Some((name, before, now)) = evidence::grown_phase(&r.phases, baseline)
        {
            e.phase = Some(format!("{name} grew {} → {}", evidence::ms(before), evidence::ms(now)));
        }
    }
    e
}

pub(super) async fn automatic_entry(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    kind: EntryKind,
    text: &str,
    at: DateTime<Utc>,
) -> Result<Option<TimelineEntry>, sqlx::Error> {
    store::insert_entry(
        &mut **tx,
        &NewEntryRow {
            id: Uuid::new_v4(),
            incident_id: id,
            kind,
            text,
            author: TRIAGE_AUTHOR,
            author_id: None,
            happened_at: at,
            attachments: &[],
            idempotency_key: None,
            state_change_id: None,
        },
    )
    .await
}

/// When every probe is up and has been for at least its `healthy_for` seconds: the longest
/// required wait (for the entry's wording). `None` if any is not, or there are none.
fn healthy_for(probes: &[(Outcome, DateTime<Utc>, u32)], now: DateTime<Utc>) -> Option<u32> {
    if probes.is_empty() {
        return None;
    }
    let mut needed = 0;
    for (state, since, secs) in probes {
        if *state != Outcome::Up || now - *since < chrono::Duration::seconds(i64::from(*secs)) {
            return None;
        }
        needed = needed.max(*secs);
    }
    Some(needed)
}

fn human_secs(s: u32) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3600 if s.is_multiple_of(60) => format!("{} min", s / 60),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{:.1} h", f64::from(s) / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_needs_every_probe_up_long_enough() {
        let now = Utc::now();
        let ago = |s: i64| now - chrono::Duration::seconds(s);
        assert_eq!(healthy_for(&[], now), None, "no probes: nothing to judge");
        assert_eq!(healthy_for(&[(Outcome::Up, ago(400), 300), (Outcome::Up, ago(120), 60)], now), Some(300));
        assert_eq!(healthy_for(&[(Outcome::Up, ago(400), 300), (Outcome::Up, ago(30), 60)], now), None);
        assert_eq!(healthy_for(&[(Outcome::Up, ago(400), 300), (Outcome::Degraded, ago(900), 60)], now), None);
        assert_eq!(human_secs(300), "5 min");
        assert_eq!(human_secs(5), "5 s");
    }

    #[test]
    fn severity_follows_the_probe_then_the_service() {
        let mut spec = ProbeSpec::new("p", "s", app::model::ProbeKind::Http, Some("http://x/"));
        assert_eq!(severity_of(&spec, "high"), Severity::Sev2);
        spec.incidents.criticality = Some(Criticality::Critical);
        assert_eq!(severity_of(&spec, "low"), Severity::Sev1);
    }
}
