//! Burn-rate alerts on error budgets: judged by the engine every `burn_every`, from the minute
//! rollups. An alert fires when both of its windows burn at or above its rate (fast: 1 h and
//! 5 min at 14.4×, slow: 6 h and 30 min at 6×) and clears when either falls below.
//!
//! A firing alert goes where a probe's change would: into the room of the service's open
//! incident; else a fast burn opens one (when the objective and the engine allow, and no
//! maintenance window covers the service); else it is announced as `slo.burn`.

use std::collections::HashSet;

use app::model::{BurnAlert, BurnSpeed, Criticality, EntryKind, Objective, RoomEvent, Severity};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::engine::{Engine, Opened, Outbox, automatic_entry, open_incident};
use crate::monitor::maintenance;
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

impl Engine {
    /// Fires and clears burn-rate alerts for every objective.
    pub async fn judge_burn_rates(&self) -> Result<Judged, sqlx::Error> {
        let to = rollups::watermark(&self.pool).await?;
        let now = Utc::now();
        let firing: HashSet<(Uuid, Objective, BurnSpeed)> = slo_store::firing(&self.pool).await?.into_iter().collect();
        let mut judged = Judged::default();
        for o in slo_store::objectives(&self.pool, None).await? {
            let rates = slo::burn_rates(&self.pool, &o, to).await?;
            let mut seen = Vec::new();
            for (objective, speed, long, short) in rates {
                let key = (o.service_id, objective, speed);
                seen.push(key);
                let burning = long >= speed.threshold() && short >= speed.threshold();
                if burning && !firing.contains(&key) {
                    let alert = BurnAlert {
                        objective,
                        speed,
                        long_burn: long,
                        short_burn: short,
                        fired_at: now,
                        cleared_at: None,
                        incident_id: None,
                    };
                    if let Some(opened) = self.fire(&o, alert, now).await? {
                        judged.fired += 1;
                        judged.opened += usize::from(opened);
                    }
                } else if !burning && firing.contains(&key) {
                    slo_store::clear(&self.pool, o.service_id, objective, speed, now).await?;
                    judged.cleared += 1;
                }
            }
            // A firing alert whose objective went away (or has no checks left to judge) ends.
            for key in firing.iter().filter(|k| k.0 == o.service_id && !seen.contains(k)) {
                slo_store::clear(&self.pool, key.0, key.1, key.2, now).await?;
                judged.cleared += 1;
            }
        }
        Ok(judged)
    }

    /// Records one alert and sends it on. `None` when another engine recorded it first;
    /// `Some(true)` when it opened an incident.
    async fn fire(&self, o: &SloRow, mut alert: BurnAlert, now: DateTime<Utc>) -> Result<Option<bool>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        store::lock_service_for_opening(&mut tx, o.service_id).await?;
        if !slo_store::fire(&mut tx, o.service_id, &alert).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let severity = severity(o, alert.speed);
        let what = format!("{} of **{}**", alert.describe(), o.service);
        let mut outbox = Outbox::new();
        let mut opened = false;
        match store::open_incident_for_service(&mut tx, o.service_id).await? {
            Some(id) => {
                let text = format!("Error budget: {what}.");
                let entry = automatic_entry(&mut tx, id, EntryKind::Automatic, &text, now).await?;
                outbox.extend(entry.map(|e| (id, RoomEvent::Entry(e))));
                alert.incident_id = Some(id);
            }
            None if alert.speed == BurnSpeed::Fast
                && o.spec.open_incidents
                && self.settings.auto_open
                && maintenance::active_for(&mut tx, o.service_id, now).await?.is_none() =>
            {
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
        if let Some(id) = alert.incident_id {
            slo_store::attach_incident(&mut tx, o.service_id, alert.objective, alert.speed, id).await?;
        }
        tx.commit().await?;
        self.publish(outbox).await;
        Ok(Some(opened))
    }
}
