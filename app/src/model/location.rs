//! Where checks run from: the server's own location (`local`) and the locations of remote
//! agents, the quorum that turns their states into one, and the agents as the admin sees them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Outcome;

/// The location of checks run by the Triage server itself.
pub const LOCAL: &str = "local";

/// The locations a probe runs from when its spec names none.
pub fn default_locations() -> Vec<String> {
    vec![LOCAL.to_owned()]
}

/// Only the server's own location: the spec leaves `locations` out.
pub fn is_local_only(locations: &[String]) -> bool {
    locations.len() == 1 && locations[0] == LOCAL
}

/// Why a location name is not acceptable, if it is not: 1–40 lowercase letters, digits and
/// `-`/`_`, starting with a letter or digit (it shows in URLs and headers).
pub fn location_problem(name: &str) -> Option<&'static str> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if name.is_empty() || name.len() > 40 {
        Some("must be 1–40 characters")
    } else if !name.chars().all(ok_char) {
        Some("may hold only lowercase letters, digits, '-' and '_'")
    } else if name.starts_with(['-', '_']) {
        Some("must start with a letter or a digit")
    } else {
        None
    }
}

/// How many of `n` locations must confirm `down` by default: a majority.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// A probe's state from the confirmed states of its locations.
///
/// `down` when at least `quorum` locations confirm down; `degraded` when some are down or degraded
/// but fewer; `up` once every location that has confirmed anything is up; unknown while none has.
pub fn quorum_state(states: &[Option<Outcome>], quorum: usize) -> Option<Outcome> {
    let down = states.iter().filter(|s| **s == Some(Outcome::Down)).count();
    if down >= quorum.max(1) {
        return Some(Outcome::Down);
    }
    if down > 0 || states.contains(&Some(Outcome::Degraded)) {
        return Some(Outcome::Degraded);
    }
    states.iter().any(Option::is_some).then_some(Outcome::Up)
}

/// Which locations a multi-location state change stands on, for the people reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuorumNote {
    /// Locations whose confirmed state was down (or degraded when none was down), by name.
    pub locations: Vec<String>,
    /// How many locations the probe runs from.
    pub of: u32,
    /// How many must confirm down for the probe to be down.
    pub quorum: u32,
}

impl QuorumNote {
    /// "down from 1 of 3 locations: eu-west".
    pub fn describe(&self, to: Outcome) -> String {
        let word = if self.of == 1 { "location" } else { "locations" };
        if self.locations.is_empty() {
            return format!("{} from all {} {word}", to.as_str(), self.of);
        }
        let bad = if to == Outcome::Up { Outcome::Down } else { to };
        let what = if to == Outcome::Degraded { "down or degraded" } else { bad.as_str() };
        format!("{what} from {} of {} {word}: {}", self.locations.len(), self.of, self.locations.join(", "))
    }
}

/// Serialises a result's location, `None` (the server's own) as `"local"`, so every result names
/// where it was checked from.
pub mod result_location {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_deref().unwrap_or(super::LOCAL))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Option::<String>::deserialize(d)?;
        Ok(v.filter(|l| l != super::LOCAL))
    }
}

/// One location of a probe as its table shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LocationState {
    pub location: String,
    /// `"unknown"` (`None`) until its results confirm a first state.
    #[serde(with = "super::unknown_state")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "up"))]
    pub state: Option<Outcome>,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<Outcome>,
}

/// One location of a multi-location probe over a service page's window: its state, its p95 and
/// checks in the window, its last check, and its p95 per bucket (the chart's line).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LocationSummary {
    pub probe_id: Uuid,
    pub probe: String,
    pub location: String,
    #[serde(with = "super::unknown_state")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "up"))]
    pub state: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    pub checks: u64,
    pub failed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<DateTime<Utc>>,
    /// Buckets of the page's step with `at`, `count` and `p95_ms` set.
    #[serde(default)]
    pub points: Vec<super::SeriesPoint>,
}

/// A remote agent as `GET /api/v1/agents` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Agent {
    /// The agent's own id (kept in its spool directory across restarts).
    pub id: Uuid,
    pub location: String,
    pub version: String,
    /// The API token it signs in with, and that token's name.
    pub token_id: Uuid,
    pub token_name: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// How old the oldest result of its last batch was on arrival.
    pub lag_ms: i64,
    /// Results checked but not yet delivered, as it last reported.
    pub buffered: i64,
    /// Results its spool dropped (oldest first) because it was full, since it started.
    pub dropped: i64,
    /// Its clock minus the server's, as it last measured.
    pub clock_offset_ms: i64,
    /// Probes assigned to its location.
    pub assigned: i64,
    /// Its stream of assignments is open (it heard from the server in the last minute).
    pub connected: bool,
    /// Its token was revoked: it can neither fetch assignments nor deliver results.
    pub revoked: bool,
}

/// One probe an agent runs: the definition as stored, with its identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssignedProbe {
    pub id: Uuid,
    pub service_id: Uuid,
    pub spec: super::ProbeSpec,
}

/// The `assignments` event of `GET /api/v1/agent/stream`: every probe of the agent's location
/// (sent whole on connect and after each change, so an agent never applies a partial list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignments {
    pub probes: Vec<AssignedProbe>,
    pub server_time: DateTime<Utc>,
}

/// One result an agent delivers, numbered by the agent (`agent_id` + `seq` is the idempotency key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentResult {
    pub seq: i64,
    pub result: super::ProbeResult,
}

/// `POST /api/v1/agent/results`: a batch of results with the agent's report about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentBatch {
    pub agent_id: Uuid,
    pub location: String,
    pub version: String,
    /// Results waiting in its spool besides this batch.
    pub buffered: i64,
    /// Results its spool dropped (oldest first) because it was full, since it started.
    pub dropped: i64,
    /// Its clock minus the server's, from its last round trip.
    pub clock_offset_ms: i64,
    pub results: Vec<AgentResult>,
}

/// The answer to a batch, sent once everything in it is committed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentBatchAnswer {
    pub stored: u32,
    /// Already stored by an earlier delivery of the same batch.
    pub duplicates: u32,
    /// For a probe that no longer runs from the agent's location (or no longer exists).
    pub ignored: u32,
    /// When the server received the batch, and when it answered: with the agent's own times
    /// of sending and receiving, the clock offset without the time spent storing.
    #[serde(default)]
    pub received_at: Option<DateTime<Utc>>,
    pub server_time: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::{Degraded, Down, Up};

    #[test]
    fn a_majority_of_locations_is_needed_for_down() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(2), 2);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        let three = |a, b, c| quorum_state(&[a, b, c], 2);
        assert_eq!(three(Some(Down), Some(Up), Some(Up)), Some(Degraded));
        assert_eq!(three(Some(Down), Some(Down), Some(Up)), Some(Down));
        assert_eq!(three(Some(Up), Some(Up), None), Some(Up));
        assert_eq!(three(None, None, None), None);
        assert_eq!(three(Some(Degraded), Some(Up), Some(Up)), Some(Degraded));
        assert_eq!(quorum_state(&[Some(Down)], 1), Some(Down));
        assert_eq!(quorum_state(&[Some(Down), Some(Up), Some(Up)], 1), Some(Down), "a quorum of one");
    }

    #[test]
    fn a_note_names_the_locations() {
        let note = QuorumNote { locations: vec!["eu-west".into()], of: 3, quorum: 2 };
        assert_eq!(note.describe(Degraded), "down or degraded from 1 of 3 locations: eu-west");
        let note = QuorumNote { locations: vec!["eu-west".into(), "us-east".into()], of: 3, quorum: 2 };
        assert_eq!(note.describe(Down), "down from 2 of 3 locations: eu-west, us-east");
        let up = QuorumNote { locations: vec![], of: 3, quorum: 2 };
        assert_eq!(up.describe(Up), "up from all 3 locations");
    }

    #[test]
    fn the_agent_batch_format_is_pinned() {
        let id = Uuid::nil();
        let at: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().unwrap_or_default();
        let batch = AgentBatch {
            agent_id: id,
            location: "eu-west".into(),
            version: "0.1.0".into(),
            buffered: 2,
            dropped: 1,
            clock_offset_ms: -3,
            results: vec![AgentResult {
                seq: 7,
                result: super::super::ProbeResult {
                    location: Some("eu-west".into()),
                    ..super::super::ProbeResult::bare(id, at, Outcome::Up, "rid".into())
                },
            }],
        };
        let json = serde_json::to_value(&batch).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "agent_id": "00000000-0000-0000-0000-000000000000", "location": "eu-west", "version": "0.1.0",
                "buffered": 2, "dropped": 1, "clock_offset_ms": -3,
                "results": [{"seq": 7, "result": {
                    "probe_id": "00000000-0000-0000-0000-000000000000", "at": "2026-12-07T10:00:00Z",
                    "outcome": "up", "phases": {"total_us": 0}, "response_bytes": 0, "request_id": "rid",
                    "location": "eu-west"}}]
            })
        );
    }

    #[test]
    fn location_names_are_checked() {
        assert_eq!(location_problem("eu-west"), None);
        assert!(location_problem("").is_some());
        assert!(location_problem("EU").is_some());
        assert!(location_problem("-x").is_some());
        assert!(location_problem("a b").is_some());
    }

    #[test]
    fn a_result_always_names_its_location() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct R {
            #[serde(default, with = "result_location")]
            location: Option<String>,
        }
        assert_eq!(serde_json::to_string(&R { location: None }).ok().as_deref(), Some(r#"{"location":"local"}"#));
        assert_eq!(serde_json::from_str::<R>(r#"{"location":"local"}"#).ok(), Some(R { location: None }));
        assert_eq!(serde_json::from_str::<R>("{}").ok(), Some(R { location: None }));
        assert_eq!(
            serde_json::from_str::<R>(r#"{"location":"eu-west"}"#).ok(),
            Some(R { location: Some("eu-west".into()) })
        );
    }
}
