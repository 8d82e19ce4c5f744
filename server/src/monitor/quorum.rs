//! Probes run from several locations (the server's own, `local`, and remote agents'). Each
//! (probe, location) confirms its own state with the probe's confirmation thresholds; the probe's
//! state is the quorum of those: `down` once `quorum` locations confirm down, `degraded` while
//! fewer do, and the state change names the locations it stands on.
//!
//! Results of one probe may reach any replica (agents post wherever the load balancer sends
//! them, the probe's local checks run on its owner), so they are judged in PostgreSQL: one
//! transaction per batch of a probe, under the probe's advisory lock, from the state machines the
//! previous transaction stored. Nothing is published until the transaction commits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use app::model::{ErrorClass, LOCAL, LiveResult, Outcome, ProbeResult, QuorumNote, StateChange, quorum_state};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::monitor::check::confirm::ProbeState;
use crate::monitor::check::spec::CompiledProbe;
use crate::monitor::hub::{EventHub, ProbeEvent};
use crate::storage::locations::{self, LocationRow};
use crate::storage::results::{self, StateRow};

/// One result to judge, with the number its agent gave it.
#[derive(Clone, Debug)]
pub struct Located {
    pub result: ProbeResult,
    /// An agent's number for it: one at or below the agent's highest stored is a retry.
    pub seq: Option<i64>,
}

/// Whose batch it is: the agent, and the highest number in the batch (every result of it is
/// acknowledged, stored or not).
#[derive(Clone, Copy, Debug)]
pub struct Delivery {
    pub agent_id: Uuid,
    pub upto: i64,
}

/// A location that has not reported for this long counts as unknown in the quorum: an agent that
/// went away leaves neither its last `down` nor its last `up` behind.
pub fn stale_after(interval: std::time::Duration) -> Duration {
    Duration::from_std(interval * 3).unwrap_or(Duration::MAX) + Duration::seconds(30)
}

/// Judges results of probes run from several locations and stores them.
#[derive(Clone)]
pub struct Judge {
    pool: PgPool,
    hub: EventHub,
}

/// How many results of a batch were stored, were retries, or were for a location their probe
/// does not run from (or a probe gone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub stored: u32,
    pub duplicates: u32,
    pub ignored: u32,
}

impl Judge {
    pub fn new(pool: PgPool, hub: EventHub) -> Self {
        Self { pool, hub }
    }

    /// Judges `items` of one probe (in the order checked).
    pub async fn judge(&self, probe: &CompiledProbe, items: Vec<Located>) -> Result<Tally, sqlx::Error> {
        self.judge_many(vec![(probe, items)], None).await
    }

    /// Judges the results of several probes (each in the order checked) in one transaction: the
    /// probes' locks, their stored machines and states, the receipts, the results and what they
    /// change, each read or written in one statement for the whole batch.
    #[tracing::instrument(skip_all, fields(probes = batch.len()))]
    pub async fn judge_many(
        &self,
        batch: Vec<(&CompiledProbe, Vec<Located>)>,
        delivery: Option<Delivery>,
    ) -> Result<Tally, sqlx::Error> {
        let mut tally = Tally::default();
        let days: HashSet<_> =
            batch.iter().flat_map(|(_, items)| items.iter().map(|i| i.result.at.date_naive())).collect();
        for day in days {
            results::ensure_partition(&self.pool, day).await?;
        }
        let ids: Vec<Uuid> = batch.iter().map(|(p, _)| p.id).collect();
        let mut tx = self.pool.begin().await?;
        // The agent's row first, then the probes: every delivery takes them in this order.
        let delivered = match delivery {
            Some(d) => crate::storage::agents::lock_delivered(&mut tx, d.agent_id).await?.unwrap_or(-1),
            None => -1,
        };
        locations::lock_probes(&mut tx, &ids).await?;
        let existing: HashMap<Uuid, (Option<Outcome>, Option<DateTime<Utc>>)> =
            locations::states_in(&mut tx, &ids).await?.into_iter().map(|s| (s.probe_id, (s.state, s.since))).collect();
        let mut machines: HashMap<Uuid, HashMap<String, LocationRow>> = HashMap::new();
        for (id, row) in locations::rows_of(&mut tx, &ids).await? {
            machines.entry(id).or_default().insert(row.location.clone(), row);
        }
        let mut numbers = HashSet::new();
        let now = Utc::now();
        let (mut stored, mut changes, mut states, mut events) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut touched: HashSet<(Uuid, String)> = HashSet::new();
        for (probe, items) in batch {
            let Some(&(mut overall, since)) = existing.get(&probe.id) else {
                // Deleted meanwhile: nothing of it is kept.
                tally.ignored += u32::try_from(items.len()).unwrap_or(u32::MAX);
                continue;
            };
            let mut since = since.unwrap_or(now);
            let rows = machines.entry(probe.id).or_default();
            let mut last: Option<StateRow> = None;
            for item in items {
                let result = item.result;
                let location = result.location.clone().unwrap_or_else(|| LOCAL.to_owned());
                if !probe.locations.contains(&location) {
                    tally.ignored += 1;
                    continue;
                }
                // Stored before (a batch sent again), or twice in this batch: stored once.
                if let Some(seq) = item.seq
                    && (seq <= delivered || !numbers.insert(seq))
                {
                    tally.duplicates += 1;
                    continue;
                }
                let row = rows.entry(location.clone()).or_insert_with(|| fresh_row(&location, result.at));
                observe(row, probe, &result);
                touched.insert((probe.id, location));
                let next = quorum_of(probe, rows, now);
                if let Some(to) = next
                    && next != overall
                {
                    let change = StateChange {
                        probe_id: probe.id,
                        service_id: probe.service_id,
                        at: result.at,
                        from: overall,
                        to,
                        request_id: result.request_id.clone(),
                        error: result.error,
                        quorum: Some(note(probe, rows, to, now)),
                    };
                    overall = next;
                    since = result.at;
                    events.push(ProbeEvent::StateChanged(Arc::new(change.clone())));
                    changes.push(change);
                }
                let later = last.as_ref().is_none_or(|l| l.last_result_at <= result.at);
                last = Some(StateRow {
                    probe_id: probe.id,
                    state: overall,
                    since,
                    last_result_at: if later {
                        result.at
                    } else {
                        last.as_ref().map_or(result.at, |l| l.last_result_at)
                    },
                    last_outcome: if later {
                        result.outcome
                    } else {
                        last.as_ref().map_or(result.outcome, |l| l.last_outcome)
                    },
                    last_error: if later { result.error } else { last.as_ref().and_then(|l| l.last_error) },
                });
                events.push(ProbeEvent::Result(Arc::new(LiveResult::of(probe.service_id, &result))));
                stored.push(result);
                tally.stored += 1;
            }
            states.extend(last);
        }
        let saved: Vec<(Uuid, &LocationRow)> = touched
            .iter()
            .filter_map(|(id, l)| machines.get(id).and_then(|rows| rows.get(l)).map(|row| (*id, row)))
            .collect();
        results::store_judged_many(&mut tx, &stored, &changes).await?;
        if let Some(d) = delivery {
            crate::storage::agents::set_delivered(&mut tx, d.agent_id, d.upto).await?;
        }
        results::upsert_judged_states(&mut tx, &states).await?;
        locations::save_many(&mut tx, &saved).await?;
        tx.commit().await?;
        self.hub.publish_all(events);
        Ok(tally)
    }
}

fn fresh_row(location: &str, at: DateTime<Utc>) -> LocationRow {
    LocationRow {
        location: location.to_owned(),
        state: None,
        since: at,
        at_least: [0; 3],
        at_most: [0; 3],
        last_result_at: None,
        last_outcome: None,
        last_error: None,
    }
}

/// Feeds one result to its location's state machine. A check the network policy refused says
/// nothing about the target (as for single-location probes): it confirms nothing.
fn observe(row: &mut LocationRow, probe: &CompiledProbe, result: &ProbeResult) {
    if result.error != Some(ErrorClass::BlockedByPolicy) {
        let mut machine = ProbeState::restore(row.state, probe.confirmation, (row.at_least, row.at_most));
        if machine.observe(result.outcome).is_some() {
            row.since = result.at;
        }
        row.state = machine.state();
        (row.at_least, row.at_most) = machine.runs();
    }
    if row.last_result_at.is_none_or(|t| t <= result.at) {
        row.last_result_at = Some(result.at);
        row.last_outcome = Some(result.outcome);
        row.last_error = result.error;
    }
}

/// A location's state as the quorum counts it: unknown once it has gone quiet.
fn counted(row: Option<&LocationRow>, probe: &CompiledProbe, now: DateTime<Utc>) -> Option<Outcome> {
    let row = row?;
    let fresh = row.last_result_at.is_some_and(|t| t >= now - stale_after(probe.interval));
    if fresh { row.state } else { None }
}

fn quorum_of(probe: &CompiledProbe, rows: &HashMap<String, LocationRow>, now: DateTime<Utc>) -> Option<Outcome> {
    let states: Vec<Option<Outcome>> = probe.locations.iter().map(|l| counted(rows.get(l), probe, now)).collect();
    quorum_state(&states, probe.quorum)
}

/// The locations a new state stands on: those down (for `down`), down or degraded (for
/// `degraded`), none for `up`.
fn note(probe: &CompiledProbe, rows: &HashMap<String, LocationRow>, to: Outcome, now: DateTime<Utc>) -> QuorumNote {
    let bad = |s: Option<Outcome>| match to {
        Outcome::Down => s == Some(Outcome::Down),
        Outcome::Degraded => matches!(s, Some(Outcome::Down | Outcome::Degraded)),
        Outcome::Up => false,
    };
    let locations =
        probe.locations.iter().filter(|l| bad(counted(rows.get(*l), probe, now))).cloned().collect::<Vec<_>>();
    QuorumNote {
        locations,
        of: u32::try_from(probe.locations.len()).unwrap_or(u32::MAX),
        quorum: u32::try_from(probe.quorum).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::check::confirm::Confirmation;
    use crate::monitor::check::scrape::PoolMapping;
    use app::model::ProbeKind;
    use uuid::Uuid;

    fn probe(locations: &[&str]) -> CompiledProbe {
        CompiledProbe {
            id: Uuid::new_v4(),
            service_id: Uuid::new_v4(),
            name: "p".into(),
            kind: ProbeKind::Http,
            enabled: true,
            interval: std::time::Duration::from_secs(10),
            confirmation: Confirmation { failures_to_down: 2, successes_to_up: 1 },
            check: None,
            pool_mapping: PoolMapping::default(),
            locations: locations.iter().map(|l| l.to_string()).collect(),
            quorum: app::model::majority(locations.len()),
        }
    }

    fn at(location: &str, outcome: Outcome, t: DateTime<Utc>, p: &CompiledProbe) -> ProbeResult {
        let mut r = ProbeResult::bare(p.id, t, outcome, "r".into());
        r.location = (location != LOCAL).then(|| location.to_owned());
        r
    }

    #[test]
    fn one_location_down_of_three_is_degraded_and_named() {
        let p = probe(&["local", "eu-west", "us-east"]);
        let now = Utc::now();
        let mut rows = HashMap::new();
        for l in ["local", "eu-west", "us-east"] {
            let row = rows.entry(l.to_owned()).or_insert_with(|| fresh_row(l, now));
            observe(row, &p, &at(l, Outcome::Up, now, &p));
        }
        assert_eq!(quorum_of(&p, &rows, now), Some(Outcome::Up));
        for _ in 0..2 {
            let row = rows.get_mut("eu-west").unwrap();
            observe(row, &p, &at("eu-west", Outcome::Down, now, &p));
        }
        assert_eq!(quorum_of(&p, &rows, now), Some(Outcome::Degraded));
        assert_eq!(
            note(&p, &rows, Outcome::Degraded, now).describe(Outcome::Degraded),
            "down or degraded from 1 of 3 locations: eu-west"
        );
        for _ in 0..2 {
            let row = rows.get_mut("us-east").unwrap();
            observe(row, &p, &at("us-east", Outcome::Down, now, &p));
        }
        assert_eq!(quorum_of(&p, &rows, now), Some(Outcome::Down));
        assert_eq!(note(&p, &rows, Outcome::Down, now).locations, vec!["eu-west", "us-east"]);
    }

    #[test]
    fn a_quiet_location_no_longer_counts() {
        let p = probe(&["local", "eu-west"]);
        let long_ago = Utc::now() - Duration::minutes(10);
        let now = Utc::now();
        let mut rows = HashMap::new();
        let row = rows.entry("eu-west".to_owned()).or_insert_with(|| fresh_row("eu-west", long_ago));
        for _ in 0..2 {
            observe(row, &p, &at("eu-west", Outcome::Down, long_ago, &p));
        }
        let row = rows.entry("local".to_owned()).or_insert_with(|| fresh_row("local", now));
        observe(row, &p, &at("local", Outcome::Down, now, &p));
        observe(row, &p, &at("local", Outcome::Down, now, &p));
        // Both confirmed down, but eu-west's is ten minutes old: one of two, not down.
        assert_eq!(quorum_of(&p, &rows, now), Some(Outcome::Degraded));
    }

    #[test]
    fn a_late_result_moves_the_machine_but_not_the_last_result() {
        let p = probe(&["local", "eu-west"]);
        let now = Utc::now();
        let mut row = fresh_row("eu-west", now);
        observe(&mut row, &p, &at("eu-west", Outcome::Up, now, &p));
        observe(&mut row, &p, &at("eu-west", Outcome::Down, now - Duration::seconds(5), &p));
        assert_eq!(row.last_result_at, Some(now));
        assert_eq!(row.last_outcome, Some(Outcome::Up));
        assert_eq!(row.at_least[2], 1, "the late failure was counted");
    }
}
