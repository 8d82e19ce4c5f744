//! Service level objectives and their error budgets. Field names are part of the REST API
//! (`PUT/GET /api/v1/services/{id}/slo`) and pinned by tests.
//!
//! An objective counts checks: availability is the share of checks that were not `down`, latency
//! the share of timed checks at or under a threshold. The budget is the share of checks allowed
//! to be bad (100 % − target); the burn rate is how fast a period spends it (1 = exactly on pace
//! to spend it all by the window's end).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The rolling windows an objective may be judged over, in days.
pub const SLO_WINDOW_DAYS: [u16; 2] = [28, 30];

/// `PUT /api/v1/services/{id}/slo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Percent of checks that must not be down, e.g. 99.9.
    pub availability_target: f64,
    /// A check is fast when its total time is at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u32>,
    /// Percent of timed checks that must be fast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_target: Option<f64>,
    pub window_days: u16,
    /// The probes whose checks count; all of the service's probes when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Vec<Uuid>>,
    /// A fast burn opens an incident (when the service has none open); off: it only notifies.
    #[serde(default = "yes")]
    pub open_incidents: bool,
}

fn yes() -> bool {
    true
}

impl SloSpec {
    /// The first field that is wrong and why (the API answers 400 naming it).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let target = |field: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 && v < 100.0 {
                Ok(())
            } else {
                Err((field, "a percentage above 0 and below 100, e.g. 99.9".to_string()))
            }
        };
        target("availability_target", self.availability_target)?;
        match (self.latency_ms, self.latency_target) {
            (None, None) => {}
            (Some(ms), Some(t)) => {
                if !(1..=600_000).contains(&ms) {
                    return Err(("latency_ms", "between 1 and 600000 milliseconds".into()));
                }
                target("latency_target", t)?;
            }
            (Some(_), None) => return Err(("latency_target", "needed with latency_ms".into())),
            (None, Some(_)) => return Err(("latency_ms", "needed with latency_target".into())),
        }
        if !SLO_WINDOW_DAYS.contains(&self.window_days) {
            return Err(("window_days", "28 or 30".into()));
        }
        if self.probes.as_ref().is_some_and(Vec::is_empty) {
            return Err(("probes", "leave it out to count every probe of the service".into()));
        }
        Ok(())
    }

    /// The latency objective, if there is one: (threshold in µs, target %).
    pub fn latency(&self) -> Option<(u64, f64)> {
        Some((u64::from(self.latency_ms?) * 1000, self.latency_target?))
    }
}

/// Which objective a figure or an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    Availability,
    Latency,
}

impl Objective {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Availability => "availability",
            Self::Latency => "latency",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Availability, Self::Latency].into_iter().find(|o| o.as_str() == s)
    }
}

/// The two multi-window burn-rate alerts of the SRE workbook: a long window that shows the burn
/// is real and a short one that shows it is still going on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BurnSpeed {
    /// 1 h and 5 min at 14.4×: 2 % of a 30-day budget gone in an hour.
    Fast,
    /// 6 h and 30 min at 6×: 5 % of it gone in six hours.
    Slow,
}

impl BurnSpeed {
    pub const ALL: [BurnSpeed; 2] = [Self::Fast, Self::Slow];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Slow => "slow",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// (long window, short window) in minutes.
    pub fn windows_min(self) -> (u32, u32) {
        match self {
            Self::Fast => (60, 5),
            Self::Slow => (360, 30),
        }
    }

    /// The burn rate both windows must reach.
    pub fn threshold(self) -> f64 {
        match self {
            Self::Fast => 14.4,
            Self::Slow => 6.0,
        }
    }
}

/// Good and all checks of one objective over some period. Latency counts may be fractional:
/// checks in the histogram bucket holding the threshold are split by interpolation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tally {
    pub good: f64,
    pub total: f64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.good += other.good;
        self.total += other.total;
    }

    pub fn bad(&self) -> f64 {
        (self.total - self.good).max(0.0)
    }

    /// Percent good; `None` without checks.
    pub fn attainment(&self) -> Option<f64> {
        (self.total > 0.0).then(|| 100.0 * self.good / self.total)
    }

    /// How many times faster than allowed the budget is being spent; `None` without checks.
    pub fn burn_rate(&self, target: f64) -> Option<f64> {
        let allowed = allowed(target);
        (self.total > 0.0 && allowed > 0.0).then(|| self.bad() / self.total / allowed)
    }
}

/// The share of checks an objective allows to be bad (0.001 for 99.9 %).
pub fn allowed(target: f64) -> f64 {
    (1.0 - target / 100.0).max(0.0)
}

/// One objective's standing over the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectiveStatus {
    pub target: f64,
    /// Percent good over the window; `None` before the first check.
    pub attainment: Option<f64>,
    /// Percent of the window's budget still unspent (negative once overspent).
    pub budget_remaining_pct: Option<f64>,
    /// The budget left as time: how much more of the window could be fully bad.
    pub budget_remaining_secs: Option<f64>,
    pub burn_rate_1h: Option<f64>,
    pub checks: f64,
    pub bad_checks: f64,
}

impl ObjectiveStatus {
    pub fn new(target: f64, window: Tally, last_hour: Tally, window_secs: f64) -> Self {
        let share = allowed(target);
        let spent = (window.total > 0.0 && share > 0.0).then(|| window.bad() / window.total / share);
        Self {
            target,
            attainment: window.attainment(),
            budget_remaining_pct: spent.map(|s| 100.0 * (1.0 - s)),
            budget_remaining_secs: (window.total > 0.0).then(|| (share - window.bad() / window.total) * window_secs),
            burn_rate_1h: last_hour.burn_rate(target),
            checks: window.total,
            bad_checks: window.bad(),
        }
    }
}

/// A point of the budget chart: how much of the window's budget was left at `at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BudgetPoint {
    pub at: DateTime<Utc>,
    pub availability_pct: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_pct: Option<f64>,
}

/// A burn-rate alert, firing or (with `cleared_at`) past.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BurnAlert {
    pub objective: Objective,
    pub speed: BurnSpeed,
    pub long_burn: f64,
    pub short_burn: f64,
    pub fired_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<Uuid>,
}

impl BurnAlert {
    /// "Availability budget burning 15.2× (fast: 1 h and 5 min over 14.4×)".
    pub fn describe(&self) -> String {
        let (long, short) = self.speed.windows_min();
        let name = match self.objective {
            Objective::Availability => "Availability",
            Objective::Latency => "Latency",
        };
        format!(
            "{name} budget burning {:.1}× ({}: {} and {} over {}×)",
            self.long_burn,
            self.speed.as_str(),
            minutes(long),
            minutes(short),
            self.speed.threshold()
        )
    }
}

fn minutes(m: u32) -> String {
    if m.is_multiple_of(60) { format!("{} h", m / 60) } else { format!("{m} min") }
}

/// `GET /api/v1/services/{id}/slo`: the objective as set, and how the service stands against it.
/// The top-level figures are the availability objective's; `latency` has the latency one's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SloStatus {
    pub service_id: Uuid,
    pub availability_target: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_target: Option<f64>,
    pub window_days: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<Vec<Uuid>>,
    pub open_incidents: bool,
    pub attainment: Option<f64>,
    pub budget_remaining_pct: Option<f64>,
    pub budget_remaining_secs: Option<f64>,
    pub burn_rate_1h: Option<f64>,
    pub checks: f64,
    pub bad_checks: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<ObjectiveStatus>,
    /// The window judged: whole hours back from the newest rolled-up minute.
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    /// Hourly, oldest first.
    pub budget: Vec<BudgetPoint>,
    /// Firing now, then the last 30 days' past ones, newest first.
    pub alerts: Vec<BurnAlert>,
}

impl SloStatus {
    pub fn spec(&self) -> SloSpec {
        SloSpec {
            availability_target: self.availability_target,
            latency_ms: self.latency_ms,
            latency_target: self.latency_target,
            window_days: self.window_days,
            probes: self.probes.clone(),
            open_incidents: self.open_incidents,
        }
    }
}

/// A budget as the overview and the page say it: "43 min left (71 %)" or "overspent by 12 min".
pub fn budget_words(secs: Option<f64>, pct: Option<f64>) -> String {
    let (Some(secs), Some(pct)) = (secs, pct) else { return "no checks yet".into() };
    let human = |s: f64| {
        let m = (s / 60.0).round() as i64;
        if m >= 120 { format!("{:.1} h", m as f64 / 60.0) } else { format!("{m} min") }
    };
    if secs >= 0.0 { format!("{} left ({pct:.0} %)", human(secs)) } else { format!("overspent by {}", human(-secs)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SloSpec {
        serde_json::from_value(serde_json::json!({"availability_target": 99.9, "window_days": 28})).expect("spec")
    }

    #[test]
    fn the_spec_format_is_pinned() {
        let s = spec();
        assert!(s.open_incidents && s.latency().is_none() && s.probes.is_none());
        assert_eq!(
            serde_json::to_value(&s).expect("json"),
            serde_json::json!({"availability_target": 99.9, "window_days": 28, "open_incidents": true})
        );
        let full: SloSpec = serde_json::from_value(serde_json::json!({
            "availability_target": 99.5, "latency_ms": 300, "latency_target": 99, "window_days": 30
        }))
        .expect("spec");
        assert_eq!(full.latency(), Some((300_000, 99.0)));
        assert!(
            serde_json::from_value::<SloSpec>(
                serde_json::json!({"availability_target": 99, "window_days": 28, "x": 1})
            )
            .is_err()
        );
    }

    #[test]
    fn bad_specs_name_their_field() {
        let field = |f: &dyn Fn(&mut SloSpec)| {
            let mut s = spec();
            f(&mut s);
            s.check().err().map(|e| e.0)
        };
        assert_eq!(field(&|_| {}), None);
        assert_eq!(field(&|s| s.availability_target = 100.0), Some("availability_target"));
        assert_eq!(field(&|s| s.availability_target = f64::NAN), Some("availability_target"));
        assert_eq!(field(&|s| s.window_days = 7), Some("window_days"));
        assert_eq!(field(&|s| s.latency_ms = Some(300)), Some("latency_target"));
        assert_eq!(field(&|s| s.latency_target = Some(99.0)), Some("latency_ms"));
        assert_eq!(
            field(&|s| {
                s.latency_ms = Some(0);
                s.latency_target = Some(99.0)
            }),
            Some("latency_ms")
        );
        assert_eq!(field(&|s| s.probes = Some(vec![])), Some("probes"));
    }

    #[test]
    fn budget_and_burn_follow_the_definitions() {
        // 99.9 % over 10,000 checks allows 10 bad ones; 4 spent leaves 60 %.
        let window = Tally { good: 9_996.0, total: 10_000.0 };
        let hour = Tally { good: 99.0, total: 100.0 };
        let s = ObjectiveStatus::new(99.9, window, hour, 28.0 * 86_400.0);
        assert!((s.attainment.unwrap_or(0.0) - 99.96).abs() < 1e-9);
        assert!((s.budget_remaining_pct.unwrap_or(0.0) - 60.0).abs() < 1e-9);
        // 0.06 % of 28 days is 1,451.52 s.
        assert!((s.budget_remaining_secs.unwrap_or(0.0) - 1_451.52).abs() < 1e-6);
        assert!((s.burn_rate_1h.unwrap_or(0.0) - 10.0).abs() < 1e-9, "1 % bad against 0.1 % allowed");
        let empty = ObjectiveStatus::new(99.9, Tally::default(), Tally::default(), 1.0);
        assert_eq!((empty.attainment, empty.budget_remaining_pct, empty.burn_rate_1h), (None, None, None));
        assert_eq!(budget_words(Some(2_580.0), Some(71.2)), "43 min left (71 %)");
        assert_eq!(budget_words(Some(-720.0), Some(-20.0)), "overspent by 12 min");
    }

    #[test]
    fn alerts_describe_themselves() {
        let a = BurnAlert {
            objective: Objective::Availability,
            speed: BurnSpeed::Fast,
            long_burn: 15.24,
            short_burn: 30.0,
            fired_at: Utc::now(),
            cleared_at: None,
            incident_id: None,
        };
        assert_eq!(a.describe(), "Availability budget burning 15.2× (fast: 1 h and 5 min over 14.4×)");
        assert_eq!(BurnSpeed::parse("slow"), Some(BurnSpeed::Slow));
        assert_eq!(Objective::parse("latency"), Some(Objective::Latency));
    }
}
