//! Burn-rate alerts on error budgets: judged by the engine every `burn_every`, from the minute
//! rollups. An alert fires when both of its windows burn at or above its rate (fast: 1 h and
//! 5 min at 14.4×, slow: 6 h and 30 min at 6×) and clears when either falls below.
//!
//! A firing alert goes where a probe's change would: into the room of the service's open
//! incident; else a fast burn opens one (when the objective and the engine allow); else it is
//! announced as `slo.burn`. During a maintenance window nothing fires; a burn still going when
//! the window ends fires then.

use std::collections::HashSet;

use app::markdown::escape_inline;
use app::model::{BurnAlert, BurnSpeed, Criticality, EntryKind, Objective, RoomEvent, Severity};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::engine::{Engine, Opened, Outbox, automatic_entry, open_incident};
use crate::monitor::maintenance;
use crate::monitor::replicas::Leadership;
use crate::monitor::slo;
use crate::respond::notify::events as notify;
use crate::storage::incidents as store;
use crate::storage::rollups;
use crate::storage::slo::{self as slo_store, SloRow};

/// What one judgement did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    pub fired: usize,
    pub cleared: usize,
    pub opened: usize,
}

fn severity(o: &SloRow, speed: BurnSpeed) -> Severity {
    let own = Severity::from_criticality(Criticality::parse(&o.criticality).unwrap_or_default());
    // A slow burn leaves days to act: never more urgent than SEV3.
    if speed == BurnSpeed::Slow { own.max(Severity::Sev3) } else { own }
}

/// A burn judged from a handful of checks is noise: a single failed check of one probe every
/// 30 s is 0.8 % of its hour, more than a 99.95 % objective's fast threshold. An alert fires
/// only once its long window holds at least this many bad checks (as a probe needs a few
/// failures in a row to be confirmed down).
pub const MIN_BAD_CHECKS: f64 = 3.0;

/// Rollups further behind than this (a restart catching up, a stalled rollup) are not judged:
/// hours-old outages would fire alerts stamped now.
const STALE: chrono::Duration = chrono::Duration::minutes(3);

impl Engine {
    /// Judges the burn rates every `burn_every` until `stopping` turns true. Its own task: the
    /// judgement reads hours of minute rows and must not delay state changes.
    pub async fn judge_burns_every(self, leadership: Leadership, mut stopping: tokio::sync::watch::Receiver<bool>) {
        let mut every = tokio::time::interval(self.settings.burn_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stopping.wait_for(|s| *s) => break,
            }
            if !leadership.leads() {
                continue;
            }
            if let Err(e) = self.judge_burn_rates().await {
                tracing::warn!(error = %e, "judging error budgets failed; retrying");
            }
        }
    }

    /// Fires and clears burn-rate alerts for every objective.
    pub async fn judge_burn_rates(&self) -> Result<Judged, sqlx::Error> {
        let to = rollups::watermark(&self.pool).await?;
        let now = Utc::now();
        let mut judged = Judged::default();
        if now - to > STALE {
            tracing::info!(
                behind_secs = (now - to).num_seconds(),
                "rollups behind: error budgets not judged this time"
            );
            return Ok(judged);
        }
        let firing: HashSet<(Uuid, Objective, BurnSpeed)> = slo_store::firing(&self.pool).await?.into_iter().collect();
        let objectives = slo_store::objectives(&self.pool, None).await?;
        let ids: Vec<Uuid> = objectives.iter().map(|o| o.service_id).collect();
        let services = crate::storage::catalog::services_in(&self.pool, &ids).await?;
        let mut quiet = {
            let mut conn = self.pool.acquire().await?;
            maintenance::bands_for_services(&mut conn, &services, to - slo::longest_window(), to).await?
        };
        let mut judged_keys = HashSet::new();
        for o in &objectives {
            let bands = quiet.remove(&o.service_id).unwrap_or_default();
            for b in slo::burn_rates(&self.pool, o, to, &bands).await? {
                let key = (o.service_id, b.objective, b.speed);
                judged_keys.insert(key);
                // No checks in the long window (the probes were disabled or removed): nothing
                // burns. No checks in the short one alone says nothing: the alert stays as it is.
                let Some(long) = b.long else {
                    if firing.contains(&key) {
                        slo_store::clear(&self.pool, o.service_id, b.objective, b.speed, now).await?;
                        judged.cleared += 1;
                    }
                    continue;
                };
                let Some(short) = b.short else { continue };
                let threshold = b.speed.threshold();
                let burning = long >= threshold && short >= threshold && b.long_bad >= MIN_BAD_CHECKS;
                if burning && !firing.contains(&key) {
                    let alert = BurnAlert {
                        objective: b.objective,
                        speed: b.speed,
                        long_burn: long,
                        short_burn: short,
                        fired_at: now,
                        cleared_at: None,
                        incident_id: None,
                    };
                    if let Some(opened) = self.fire(o, alert, now).await? {
                        judged.fired += 1;
                        judged.opened += usize::from(opened);
                    }
                } else if !burning && firing.contains(&key) {
                    slo_store::clear(&self.pool, o.service_id, b.objective, b.speed, now).await?;
                    judged.cleared += 1;
                }
            }
        }
        // Alerts whose objective went away (removed, or its latency part dropped) end.
        for key in firing.iter().filter(|k| !judged_keys.contains(*k)) {
            slo_store::clear(&self.pool, key.0, key.1, key.2, now).await?;
            judged.cleared += 1;
        }
        Ok(judged)
    }

    /// Records one alert and sends it on. `None` when another engine recorded it first;
    /// `Some(true)` when it opened an incident.
    async fn fire(&self, o: &SloRow, mut alert: BurnAlert, now: DateTime<Utc>) -> Result<Option<bool>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        store::lock_service_for_opening(&mut tx, o.service_id).await?;
        // Nothing is announced during maintenance; a burn still going when it ends fires then.
        // And an objective removed since it was read fires nothing.
        if maintenance::active_for(&mut tx, o.service_id, now).await?.is_some()
            || !slo_store::still_set(&mut tx, o.service_id).await?
        {
            tx.rollback().await?;
            return Ok(None);
        }
        let severity = severity(o, alert.speed);
        let what = format!("{} of **{}**", alert.describe(), escape_inline(&o.service));
        let mut outbox = Outbox::new();
        let mut opened = false;
        match store::open_incident_for_service(&mut tx, o.service_id).await? {
            Some(id) => {
                let text = format!("Error budget: {what}.");
                let entry = automatic_entry(&mut tx, id, EntryKind::Automatic, &text, now).await?;
                outbox.extend(entry.map(|e| (id, RoomEvent::Entry(e))));
                alert.incident_id = Some(id);
            }
            None if alert.speed == BurnSpeed::Fast && o.spec.open_incidents && self.settings.auto_open => {
                let incident = Opened {
                    service_id: o.service_id,
                    title: format!("{}: {} error budget burning fast", o.service, alert.objective.as_str()),
                    severity,
                    started: now,
                    detected: now,
                    text: format!("Opened automatically as **{}**: {what}.", severity.as_str()),
                };
                let (id, events) = open_incident(&mut tx, &incident, None).await?;
                outbox.extend(events.into_iter().map(|e| (id, e)));
                alert.incident_id = Some(id);
                opened = true;
                tracing::warn!(incident = %id, service = o.service, objective = alert.objective.as_str(), "incident opened: error budget burning fast");
            }
            None => notify::slo_burn(&mut tx, o.service_id, &o.service, &alert, severity).await?,
        }
        // Recorded last, with its incident: if another engine recorded it first, this whole
        // transaction (entry, incident, announcement) rolls back.
        if !slo_store::fire(&mut tx, o.service_id, &alert).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        self.publish(outbox).await;
        Ok(Some(opened))
    }
}
