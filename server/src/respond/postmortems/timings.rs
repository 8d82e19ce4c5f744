//! The incident's response times, computed from its key times and the probe data. Every metric
//! is measured from the incident's start: its first failing check when the probes saw one,
//! otherwise the started key time. A pure function of [`Facts`], so each edge case is tested.

use app::model::{AUTOMATIC, KeyTimes, Mark, Metric, MetricKind, Stamp};
use chrono::{DateTime, Utc};

/// What the metrics are computed from.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub times: KeyTimes,
    /// The first failing check of an affected probe near the start, with the probe's name.
    pub first_failure: Option<(DateTime<Utc>, String)>,
    /// When every affected probe was last back up, if all of them are.
    pub recovered: Option<DateTime<Utc>>,
    /// How many times the incident was reopened after being resolved.
    pub reopened: u32,
}

fn stamp_mark(what: &str, s: &Stamp) -> Mark {
    Mark { at: s.at, what: what.into(), source: s.source.clone() }
}

/// The start every metric counts from: the first failing check or the started time, whichever
/// is earlier (a person may declare before the probes fail, or the probes may fail first).
pub fn start(f: &Facts) -> Option<Mark> {
    let failure = f.first_failure.as_ref().map(|(at, probe)| Mark {
        at: *at,
        what: format!("first failing check of {probe}"),
        source: "probe data".into(),
    });
    let started = f.times.started.as_ref().map(|s| stamp_mark("started", s));
    match (failure, started) {
        (Some(a), Some(b)) => Some(if a.at <= b.at { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn interval(kind: MetricKind, from: &Option<Mark>, to: Option<Mark>, missing: &str) -> Metric {
    let (computed_secs, note) = match (from, &to) {
        (None, _) => (None, Some("no start: no failing check and no started time".to_string())),
        (Some(_), None) => (None, Some(missing.to_string())),
        (Some(a), Some(b)) if b.at < a.at => (None, Some(format!("{} is before the start", b.what))),
        (Some(a), Some(b)) => (Some((b.at - a.at).num_seconds()), None),
    };
    Metric { kind, computed_secs, from: from.clone(), to, note, overridden: None }
}

pub fn compute(f: &Facts) -> Vec<Metric> {
    let from = start(f);
    let t = &f.times;
    let detect = interval(
        MetricKind::TimeToDetect,
        &from,
        t.detected.as_ref().map(|s| stamp_mark("detected", s)),
        "not detected yet",
    );
    let ack = interval(
        MetricKind::TimeToAcknowledge,
        &from,
        t.acknowledged.as_ref().map(|s| stamp_mark("commander assigned", s)),
        "no commander assigned yet",
    );
    let recovered = f.recovered.map(|at| Mark { at, what: "probes recovered".into(), source: AUTOMATIC.into() });
    let mitigated = t.mitigated.as_ref().map(|s| stamp_mark("mitigated", s));
    // The earlier of the two: users stopped being hurt at whichever came first.
    let mitigation = match (mitigated, recovered) {
        (Some(m), Some(r)) => Some(if r.at < m.at { r } else { m }),
        (m, r) => m.or(r),
    };
    let mitigate =
        interval(MetricKind::TimeToMitigate, &from, mitigation, "not mitigated and the probes not recovered");
    let mut resolve = interval(
        MetricKind::TimeToResolve,
        &from,
        t.resolved.as_ref().map(|s| stamp_mark("resolved", s)),
        "not resolved yet",
    );
    if f.reopened > 0 && resolve.note.is_none() {
        let times = if f.reopened == 1 { "once".to_string() } else { format!("{} times", f.reopened) };
        resolve.note = Some(format!("reopened {times}: measured to the final resolution"));
    }
    vec![detect, ack, mitigate, resolve]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).single().unwrap() + chrono::Duration::minutes(min)
    }

    fn auto(min: i64) -> Option<Stamp> {
        Some(Stamp::automatic(at(min)))
    }

    fn secs(m: &[Metric]) -> Vec<Option<i64>> {
        m.iter().map(|m| m.computed_secs).collect()
    }

    #[test]
    fn from_the_first_failing_check_through_every_key_time() {
        let f = Facts {
            times: KeyTimes {
                started: auto(2),
                detected: auto(3),
                acknowledged: Some(Stamp { at: at(5), source: "ana@example.com".into() }),
                mitigated: auto(20),
                resolved: auto(40),
            },
            first_failure: Some((at(1), "shop-api".into())),
            recovered: Some(at(18)),
            reopened: 0,
        };
        let m = compute(&f);
        assert_eq!(secs(&m), vec![Some(120), Some(240), Some(17 * 60), Some(39 * 60)]);
        let start = m[0].from.clone().unwrap();
        assert_eq!((start.what.as_str(), start.source.as_str()), ("first failing check of shop-api", "probe data"));
        assert_eq!(m[1].to.as_ref().map(|t| t.source.as_str()), Some("ana@example.com"));
        // The probes came back before anyone marked it mitigated.
        assert_eq!(m[2].to.as_ref().map(|t| t.what.as_str()), Some("probes recovered"));
        assert!(m.iter().all(|m| m.note.is_none()));
    }

    #[test]
    fn a_manual_incident_without_probe_data_counts_from_its_started_time() {
        let f = Facts {
            times: KeyTimes {
                started: Some(Stamp { at: at(0), source: "ana@example.com".into() }),
                detected: Some(Stamp { at: at(10), source: "ana@example.com".into() }),
                ..KeyTimes::default()
            },
            ..Facts::default()
        };
        let m = compute(&f);
        assert_eq!(secs(&m), vec![Some(600), None, None, None]);
        assert_eq!(m[0].from.as_ref().map(|s| s.what.as_str()), Some("started"));
        assert_eq!(m[1].note.as_deref(), Some("no commander assigned yet"));
        assert_eq!(m[2].note.as_deref(), Some("not mitigated and the probes not recovered"));
        assert_eq!(m[3].note.as_deref(), Some("not resolved yet"));
    }

    #[test]
    fn declared_before_the_probes_failed_counts_from_the_declaration() {
        let f = Facts {
            times: KeyTimes { started: auto(0), detected: auto(0), mitigated: auto(30), ..KeyTimes::default() },
            first_failure: Some((at(4), "shop-api".into())),
            ..Facts::default()
        };
        let m = compute(&f);
        assert_eq!(secs(&m)[0], Some(0));
        assert_eq!(secs(&m)[2], Some(1800));
        assert_eq!(m[2].to.as_ref().map(|t| t.what.as_str()), Some("mitigated"));
    }

    #[test]
    fn no_start_at_all_says_so() {
        let m = compute(&Facts::default());
        assert_eq!(secs(&m), vec![None; 4]);
        assert!(m.iter().all(|m| m.note.as_deref().is_some_and(|n| n.starts_with("no start"))));
    }

    #[test]
    fn a_reopened_incident_is_measured_to_its_final_resolution() {
        let f = Facts {
            times: KeyTimes { started: auto(0), detected: auto(1), resolved: auto(90), ..KeyTimes::default() },
            reopened: 2,
            ..Facts::default()
        };
        let m = compute(&f);
        assert_eq!(m[3].computed_secs, Some(90 * 60));
        assert_eq!(m[3].note.as_deref(), Some("reopened 2 times: measured to the final resolution"));
    }

    #[test]
    fn an_override_is_reported_and_the_computed_value_kept() {
        let mut m = compute(&Facts {
            times: KeyTimes { started: auto(0), detected: auto(10), ..KeyTimes::default() },
            ..Facts::default()
        });
        m[0].overridden = Some(app::model::MetricOverride {
            secs: 120,
            reason: "the pager fired at 14:02; the detected time was set late".into(),
            by: "ana@example.com".into(),
            at: at(100),
        });
        assert_eq!(m[0].value_secs(), Some(120));
        assert_eq!(m[0].computed_secs, Some(600));
        assert_eq!(m[1].value_secs(), None);
    }
}
