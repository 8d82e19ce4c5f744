//! The overview's tiles: one per service, everything a glance needs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Criticality, ErrorClass, Outcome, StateChange};

/// One service on the overview. Figures cover the last five minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceTile {
    pub id: Uuid,
    pub name: String,
    pub tags: Vec<String>,
    pub criticality: Criticality,
    /// Worst confirmed state of its enabled probes; `None` before any result.
    pub state: Option<Outcome>,
    pub probes: u32,
    /// Probes the network policy refuses to run: shown as a configuration problem.
    #[serde(default, skip_serializing_if = "super::probe::is_zero")]
    pub blocked: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    /// Failed checks ÷ checks of its HTTP and readiness probes, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_in_use: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_waiting: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<DateTime<Utc>>,
    /// p95 in ms per [`TREND_STEP_SECS`] over the last hour, oldest first (the sparkline); `null`
    /// where no timed check ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub p95_trend: Vec<Option<f64>>,
    /// The maintenance window under way for this service, if any (its title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
    /// The availability budget left of its objective, if it has one: (percent, seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<(f64, f64)>,
    /// A probe run from several locations that is not up: where from ("down from 1 of 3
    /// locations: eu-west").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<String>,
}

/// A sparkline step: five minutes…
pub const TREND_STEP_SECS: i64 = 300;
/// …twelve of them, the last hour.
pub const TREND_BUCKETS: usize = 12;

impl ServiceTile {
    /// Sort key, worst first: down, degraded, up, then services without data; then by name.
    pub fn severity_rank(&self) -> u8 {
        match self.state {
            Some(Outcome::Down) => 0,
            Some(Outcome::Degraded) => 1,
            Some(Outcome::Up) => 2,
            None => 3,
        }
    }

    /// Does the text filter match (case-insensitive, on the name or any tag)?
    pub fn matches(&self, filter: &str) -> bool {
        let f = filter.trim().to_lowercase();
        f.is_empty() || self.name.to_lowercase().contains(&f) || self.tags.iter().any(|t| t.to_lowercase().contains(&f))
    }
}

/// The overview: tiles and when they were computed (the page shows the age).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overview {
    pub at: DateTime<Utc>,
    pub services: Vec<ServiceTile>,
}

/// A finished check, as pushed live to browsers (the full result is in the results API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveResult {
    pub service_id: Uuid,
    pub probe_id: Uuid,
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    pub total_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorClass>,
    pub request_id: String,
    /// Where it was checked from, when not by the server itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl LiveResult {
    /// What a live page is told about a stored result.
    pub fn of(service_id: Uuid, r: &super::ProbeResult) -> Self {
        Self {
            service_id,
            probe_id: r.probe_id,
            at: r.at,
            outcome: r.outcome,
            total_us: r.phases.total_us,
            status: r.status,
            error: r.error,
            request_id: r.request_id.clone(),
            location: r.location.clone(),
        }
    }
}

/// What `GET /api/v1/events` sends, as the `data` of SSE events named `result` and `state`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    Result(LiveResult),
    State(StateChange),
}

impl LiveEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Result(_) => "result",
            Self::State(_) => "state",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(name: &str, state: Option<Outcome>) -> ServiceTile {
        ServiceTile {
            id: Uuid::nil(),
            name: name.into(),
            tags: vec!["checkout".into()],
            criticality: Criticality::High,
            state,
            probes: 3,
            blocked: 0,
            p95_ms: Some(41.5),
            error_pct: Some(0.0),
            pool_in_use: Some(7.0),
            pool_max: Some(10.0),
            pool_waiting: None,
            last_check: None,
            p95_trend: Vec::new(),
            maintenance: None,
            budget: None,
            locations: None,
        }
    }

    #[test]
    fn tile_json_format_is_pinned() {
        assert_eq!(
            serde_json::to_string(&tile("shop", Some(Outcome::Down))).expect("ser"),
            r#"{"id":"00000000-0000-0000-0000-000000000000","name":"shop","tags":["checkout"],"criticality":"high","state":"down","probes":3,"p95_ms":41.5,"error_pct":0.0,"pool_in_use":7.0,"pool_max":10.0}"#
        );
    }

    #[test]
    fn the_trend_keeps_its_gaps() {
        let t = ServiceTile { p95_trend: vec![None, Some(12.5)], ..tile("shop", None) };
        let json = serde_json::to_string(&t).expect("ser");
        assert!(json.ends_with(r#""p95_trend":[null,12.5]}"#), "{json}");
        assert_eq!(serde_json::from_str::<ServiceTile>(&json).expect("de"), t);
    }

    #[test]
    fn live_event_json_format_is_pinned() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T03:00:00Z").expect("time").with_timezone(&Utc);
        let e = LiveEvent::Result(LiveResult {
            service_id: Uuid::nil(),
            probe_id: Uuid::nil(),
            at,
            outcome: Outcome::Down,
            total_us: 1500,
            status: Some(500),
            error: Some(ErrorClass::Status),
            request_id: "ab12".into(),
            location: None,
        });
        assert_eq!(e.name(), "result");
        assert_eq!(
            serde_json::to_string(&e).expect("ser"),
            r#"{"type":"result","service_id":"00000000-0000-0000-0000-000000000000","probe_id":"00000000-0000-0000-0000-000000000000","at":"2026-11-23T03:00:00Z","outcome":"down","total_us":1500,"status":500,"error":"status","request_id":"ab12"}"#
        );
    }

    #[test]
    fn worst_first_and_filter_on_name_or_tag() {
        let mut tiles = [tile("b", Some(Outcome::Up)), tile("a", None), tile("c", Some(Outcome::Down))];
        tiles.sort_by(|x, y| x.severity_rank().cmp(&y.severity_rank()).then(x.name.cmp(&y.name)));
        let names: Vec<&str> = tiles.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["c", "b", "a"]);
        assert!(tiles[0].matches("CHECK") && tiles[0].matches("c") && !tiles[0].matches("zzz"));
    }
}
