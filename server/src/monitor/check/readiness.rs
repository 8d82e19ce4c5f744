//! Readiness bodies parsed into named components, so a failing readiness check says *which*
//! dependency failed. Understood shapes (status words are matched case-insensitively):
//! - flat: `{"status":"healthy","database":"connected","cache":true}`;
//! - maps: `{"status":"UP","checks"|"components"|"details":{"db":{"status":"UP"},"cache":"ok"}}`
//!   (Spring Boot, most hand-written services);
//! - IETF health-check draft: `{"status":"pass","checks":{"db:connections":[{"status":"pass"}]}}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use app::model::{Component, ComponentState};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessReport {
    /// The body's own overall status, if it states one.
    pub overall: Option<ComponentState>,
    pub components: Vec<Component>,
}

impl ReadinessReport {
    /// Components that are down, for the result's evidence.
    pub fn failing(&self) -> impl Iterator<Item = &Component> {
        self.components.iter().filter(|c| c.state == ComponentState::Down)
    }
}

const DETAIL_LIMIT: usize = 200;
const CONTAINERS: [&str; 3] = ["checks", "components", "details"];

fn word(s: &str) -> ComponentState {
    match s.trim().to_ascii_lowercase().as_str() {
        "up" | "ok" | "pass" | "passing" | "healthy" | "ready" | "connected" | "available" | "green" | "true" => {
            ComponentState::Up
        }
        "degraded" | "warn" | "warning" | "yellow" | "slow" => ComponentState::Degraded,
        "down" | "fail" | "failing" | "failed" | "error" | "unhealthy" | "unready" | "not_ready" | "disconnected"
        | "unavailable" | "red" | "false" | "out_of_service" => ComponentState::Down,
        _ => ComponentState::Unknown,
    }
}

fn state_of(v: &Value) -> Option<ComponentState> {
    match v {
        Value::String(s) => Some(word(s)),
        Value::Bool(b) => Some(if *b { ComponentState::Up } else { ComponentState::Down }),
        Value::Object(o) => o.get("status").or_else(|| o.get("state")).and_then(state_of),
        Value::Array(items) => {
            let states: Vec<ComponentState> = items.iter().filter_map(state_of).collect();
            // The worst entry decides; unknowns only if nothing is known.
            states.iter().filter(|s| **s != ComponentState::Unknown).max().or(states.first()).copied()
        }
        _ => None,
    }
}

fn detail_of(v: &Value) -> Option<String> {
    let o = match v {
        Value::Object(o) => o,
        Value::Array(items) => return items.iter().find_map(detail_of),
        _ => return None,
    };
    let text = ["error", "message", "output", "reason"].iter().find_map(|k| o.get(*k)?.as_str())?;
    let mut t: String = text.chars().take(DETAIL_LIMIT).collect();
    if text.chars().count() > DETAIL_LIMIT {
        t.push('…');
    }
    Some(t)
}

/// Parses a readiness body; anything that is not a JSON object yields an empty report.
pub fn parse(body: &[u8]) -> ReadinessReport {
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(body) else {
        return ReadinessReport::default();
    };
    let overall = root.get("status").and_then(state_of);
    let mut components = Vec::new();
    let container = CONTAINERS.iter().find_map(|k| root.get(*k).and_then(Value::as_object));
    match container {
        Some(map) => {
            for (name, v) in map {
                if let Some(state) = state_of(v) {
                    components.push(Component { name: name.clone(), state, detail: detail_of(v) });
                }
            }
        }
        None => {
            for (name, v) in &root {
                if name == "status" || matches!(v, Value::Number(_) | Value::Null) {
                    continue;
                }
                if let Some(state) = state_of(v) {
                    components.push(Component { name: name.clone(), state, detail: detail_of(v) });
                }
            }
        }
    }
    components.sort_by(|a, b| a.name.cmp(&b.name));
    ReadinessReport { overall, components }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::*;

    fn states(r: &ReadinessReport) -> Vec<(&str, ComponentState)> {
        r.components.iter().map(|c| (c.name.as_str(), c.state)).collect()
    }

    #[test]
    fn flat_bodies_name_each_dependency() {
        let r =
            parse(br#"{"status":"healthy","database":"connected","cache":true,"queue":"disconnected","uptime":123}"#);
        assert_eq!(r.overall, Some(Up));
        assert_eq!(states(&r), vec![("cache", Up), ("database", Up), ("queue", Down)]);
        assert_eq!(r.failing().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["queue"]);
    }

    #[test]
    fn checks_maps_with_objects_and_reasons() {
        let r = parse(
            br#"{"status":"unhealthy","checks":{"database":{"status":"down","error":"connection refused"},"cache":{"status":"up"}}}"#,
        );
        assert_eq!(r.overall, Some(Down));
        assert_eq!(states(&r), vec![("cache", Up), ("database", Down)]);
        assert_eq!(r.components[1].detail.as_deref(), Some("connection refused"));
    }

    #[test]
    fn spring_boot_components() {
        let r = parse(br#"{"status":"DOWN","components":{"db":{"status":"DOWN","details":{"error":"x"}},"diskSpace":{"status":"UP"},"ping":{"status":"UP"}}}"#);
        assert_eq!(r.overall, Some(Down));
        assert_eq!(states(&r), vec![("db", Down), ("diskSpace", Up), ("ping", Up)]);
    }

    #[test]
    fn ietf_draft_arrays_take_the_worst_entry() {
        let r = parse(br#"{"status":"warn","checks":{"db:connections":[{"status":"pass"},{"status":"warn","output":"90% used"}],"uptime":[{"status":"pass"}]}}"#);
        assert_eq!(r.overall, Some(Degraded));
        assert_eq!(states(&r), vec![("db:connections", Degraded), ("uptime", Up)]);
        assert_eq!(r.components[0].detail.as_deref(), Some("90% used"));
    }

    #[test]
    fn non_json_or_unknown_words_do_not_invent_components() {
        assert_eq!(parse(b"OK"), ReadinessReport::default());
        assert_eq!(parse(b"[1,2]"), ReadinessReport::default());
        let r = parse(br#"{"database":"flummoxed"}"#);
        assert_eq!(states(&r), vec![("database", Unknown)]);
    }

    #[test]
    fn long_reasons_are_cut() {
        let long = "e".repeat(1000);
        let body = format!(r#"{{"checks":{{"db":{{"status":"down","error":"{long}"}}}}}}"#);
        let r = parse(body.as_bytes());
        assert_eq!(r.components[0].detail.as_ref().map(|d| d.chars().count()), Some(DETAIL_LIMIT + 1));
    }

    #[test]
    fn serde_format_is_pinned() {
        let r = parse(br#"{"status":"ok","checks":{"db":{"status":"down","error":"boom"}}}"#);
        assert_eq!(
            serde_json::to_string(&r).expect("ser"),
            r#"{"overall":"up","components":[{"name":"db","state":"down","detail":"boom"}]}"#
        );
    }
}
