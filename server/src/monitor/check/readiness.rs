//! Readiness bodies parsed into named components, so a failing readiness check says *which*
//! dependency failed. Status words are matched case-insensitively. Understood shapes:
//! - flat JSON: `{"status":"healthy","database":"connected","cache":true}`;
//! - JSON maps under `checks`, `components`, `entries` or `details`:
//!   `{"status":"UP","checks":{"db":{"status":"UP"},"cache":"ok"}}`, as most hand-written
//!   services answer;
//! - Spring Boot Actuator `/actuator/health` (`UP`, `DOWN`, `OUT_OF_SERVICE`, `UNKNOWN`), with
//!   composite indicators flattened to their leaves by path: `components.db.components.primary`
//!   becomes `db/primary`, the name Actuator serves it under (`/actuator/health/db/primary`);
//!   Spring Boot 2.0 and 2.1 nested them under `details`, which is understood too;
//! - ASP.NET Core health checks: the default writer's plain `Healthy`, `Degraded` or `Unhealthy`
//!   (overall state only), and HealthChecks.UI's `UIResponseWriter` JSON (`entries`);
//! - MicroProfile Health: `{"status":"UP","checks":[{"name":"db","status":"UP","data":{}}]}`,
//!   and its 1.0 form with `outcome` and `state`;
//! - Kubernetes `/readyz?verbose`, `/livez?verbose` text: `[+]ping ok`,
//!   `[-]etcd failed: reason withheld`, then `readyz check passed` or `readyz check failed`;
//! - the IETF health check draft (`application/health+json`):
//!   `{"status":"pass","checks":{"db:connections":[{"status":"pass"}]}}`, the worst entry of
//!   each array deciding.
//!
//! A body that is neither a JSON object nor one of the plain-text shapes yields an empty report.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use app::model::{Component, ComponentState};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessReport {
    /// The body's own overall status, if it states one.
    pub overall: Option<ComponentState>,
    pub components: Vec<Component>,
    /// Components the body listed beyond [`MAX_COMPONENTS`], not kept (all of them no worse
    /// than those kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ReadinessReport {
    /// Components that are down, for the result's evidence.
    pub fn failing(&self) -> impl Iterator<Item = &Component> {
        self.components.iter().filter(|c| c.state == ComponentState::Down)
    }
}

const DETAIL_LIMIT: usize = 200;
const CONTAINERS: [&str; 4] = ["checks", "components", "entries", "details"];
/// Composite health nests; a body nesting deeper than this is not describing dependencies.
const MAX_DEPTH: usize = 8;
/// Keys whose text explains a state, most specific first. `exception` and `description` are
/// HealthChecks.UI's, `rootCause` the MicroProfile specification's example.
const REASON_KEYS: [&str; 7] = ["error", "message", "output", "reason", "exception", "description", "rootCause"];
/// Top-level keys the documented formats use for metadata, not dependencies: the IETF draft's,
/// Spring Boot's `groups`, HealthChecks.UI's `totalDuration`. Without this list a flat body's
/// `"version":"1"` would become a component of unknown state.
const METADATA_KEYS: [&str; 12] = [
    "status",
    "outcome",
    "version",
    "releaseId",
    "notes",
    "output",
    "serviceId",
    "description",
    "links",
    "time",
    "groups",
    "totalDuration",
];

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

/// The first non-empty reason among `REASON_KEYS` in `o`.
fn reason_in(o: &Map<String, Value>) -> Option<&str> {
    REASON_KEYS.iter().find_map(|k| o.get(*k)?.as_str().map(str::trim).filter(|t| !t.is_empty()))
}

fn reason(v: &Value) -> Option<&str> {
    match v {
        Value::Object(o) => reason_in(o).or_else(|| {
            // Spring Boot puts the failure under `details`, MicroProfile under `data`.
            ["details", "data"].iter().find_map(|k| reason_in(o.get(*k)?.as_object()?))
        }),
        Value::Array(items) => {
            // The entry that decided the state explains it best.
            let decided = state_of(v);
            items.iter().filter(|i| state_of(i) == decided).find_map(reason).or_else(|| items.iter().find_map(reason))
        }
        _ => None,
    }
}

fn cut(text: &str) -> String {
    let mut t: String = text.chars().take(DETAIL_LIMIT).collect();
    if text.chars().count() > DETAIL_LIMIT {
        t.push('…');
    }
    t
}

fn detail_of(v: &Value) -> Option<String> {
    reason(v).map(cut)
}

/// Parses a readiness body. Bodies that are not JSON are tried as the plain-text shapes; anything
/// else yields an empty report.
pub fn parse(body: &[u8]) -> ReadinessReport {
    let mut report = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(root)) => parse_json(&root),
        Ok(_) => ReadinessReport::default(),
        Err(_) => std::str::from_utf8(body).ok().and_then(parse_text).unwrap_or_default(),
    };
    keep_most_telling(&mut report);
    report
}

/// Components kept per result at most: each result stores its components, and a body listing
/// 100,000 of them must not become 100,000 rows' worth of JSON every interval.
pub const MAX_COMPONENTS: usize = 256;

/// Past the cap, the components that say most are kept (down, then degraded, unknown, up), so
/// a failing one is never lost among thousands that are fine; the rest are counted.
fn keep_most_telling(report: &mut ReadinessReport) {
    if report.components.len() <= MAX_COMPONENTS {
        return;
    }
    let rank = |s: ComponentState| match s {
        ComponentState::Down => 0,
        ComponentState::Degraded => 1,
        ComponentState::Unknown => 2,
        ComponentState::Up => 3,
    };
    report.components.sort_by_key(|c| rank(c.state));
    report.omitted = report.components.len() - MAX_COMPONENTS;
    report.components.truncate(MAX_COMPONENTS);
    report.components.sort_by(|a, b| a.name.cmp(&b.name));
}

fn parse_json(root: &Map<String, Value>) -> ReadinessReport {
    let mut overall = root.get("status").and_then(state_of);
    let mut components = Vec::new();
    if let Some(Value::Array(checks)) = root.get("checks") {
        // MicroProfile Health: a list of named procedures. Its 1.0 form said `outcome` for the
        // overall status (and `state` per check, which `state_of` reads).
        overall = overall.or_else(|| root.get("outcome").and_then(state_of));
        for check in checks {
            let Some(name) = check.get("name").and_then(Value::as_str) else {
                continue;
            };
            if let Some(state) = state_of(check) {
                components.push(Component { name: shown_name(name).to_string(), state, detail: detail_of(check) });
            }
        }
    } else if let Some(map) = CONTAINERS.iter().find_map(|k| root.get(*k).and_then(Value::as_object)) {
        collect(map, "", 0, &mut components);
    } else {
        for (name, v) in root {
            if METADATA_KEYS.contains(&name.as_str()) || matches!(v, Value::Number(_) | Value::Null) {
                continue;
            }
            if let Some(state) = state_of(v) {
                components.push(Component { name: shown_name(name).to_string(), state, detail: detail_of(v) });
            }
        }
    }
    components.sort_by(|a, b| a.name.cmp(&b.name));
    ReadinessReport { overall, components, omitted: 0 }
}

/// The children of a composite health, if `v` is one: Spring Boot's nested `components`, or
/// (Spring Boot 2.0 and 2.1) a `details` map whose every value is itself a health with a status.
/// Any other `details` is data about `v` itself (disk sizes, the database product).
fn children(v: &Value) -> Option<&Map<String, Value>> {
    let o = v.as_object()?;
    if let Some(nested) = o.get("components").and_then(Value::as_object).filter(|m| !m.is_empty()) {
        return Some(nested);
    }
    let details = o.get("details").and_then(Value::as_object)?;
    let all_healths = !details.is_empty() && details.values().all(|d| d.get("status").is_some_and(Value::is_string));
    all_healths.then_some(details)
}

/// Leaves of a (possibly nested) map of healths, named by their path. A composite's own status
/// is the aggregate of its leaves, so only the leaves are listed: the failing list then names
/// the datasource that is down rather than the composite and the datasource both.
fn collect(map: &Map<String, Value>, prefix: &str, depth: usize, out: &mut Vec<Component>) {
    for (name, v) in map {
        let name = shown_name(name);
        let path = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
        if depth < MAX_DEPTH
            && let Some(nested) = children(v)
        {
            collect(nested, &path, depth + 1, out);
            continue;
        }
        if let Some(state) = state_of(v) {
            out.push(Component { name: path, state, detail: detail_of(v) });
        }
    }
}

/// A component the body names with an empty string still needs a name on the page (the fuzzer
/// found `{"": "UP"}` shown as a blank row).
fn shown_name(name: &str) -> &str {
    if name.trim().is_empty() { "(unnamed)" } else { name }
}

fn parse_text(text: &str) -> Option<ReadinessReport> {
    let text = text.trim_start_matches('\u{feff}').trim();
    aspnet_plain(text).or_else(|| kubernetes_verbose(text))
}

/// ASP.NET Core's default health writer answers the overall status alone, as its enum name.
/// Only those three words: a bare "OK" says nothing a status code does not already say.
fn aspnet_plain(text: &str) -> Option<ReadinessReport> {
    let overall = match text.to_ascii_lowercase().as_str() {
        "healthy" => ComponentState::Up,
        "degraded" => ComponentState::Degraded,
        "unhealthy" => ComponentState::Down,
        _ => return None,
    };
    Some(ReadinessReport { overall: Some(overall), components: Vec::new(), omitted: 0 })
}

/// The check lines of a Kubernetes health endpoint. The closing line only counts after at least
/// one check line, so prose such as "health check failed" is not read as this format.
fn kubernetes_verbose(text: &str) -> Option<ReadinessReport> {
    let mut overall = None;
    let mut components = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("[+]") {
            let (name, said) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            // `?exclude=` skips a check but still lists it with [+]: it was not run.
            let component = if said.trim_start().starts_with("excluded") {
                Component {
                    name: shown_name(name).to_string(),
                    state: ComponentState::Unknown,
                    detail: Some("excluded".into()),
                }
            } else {
                Component { name: shown_name(name).to_string(), state: ComponentState::Up, detail: None }
            };
            components.push(component);
        } else if let Some(rest) = line.strip_prefix("[-]") {
            let (name, said) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let said = said.trim();
            let reason = said.strip_prefix("failed").map(|r| r.trim_start_matches(':').trim()).unwrap_or(said);
            let detail = (!reason.is_empty()).then(|| cut(reason));
            components.push(Component { name: shown_name(name).to_string(), state: ComponentState::Down, detail });
        } else if !components.is_empty() {
            let verdict = line.rsplit_once(' ').filter(|(head, _)| head.ends_with(" check"));
            match verdict.map(|(_, last)| last) {
                Some("passed") => overall = Some(ComponentState::Up),
                Some("failed") => overall = Some(ComponentState::Down),
                _ => {}
            }
        }
    }
    if components.is_empty() {
        return None;
    }
    components.sort_by(|a, b| a.name.cmp(&b.name));
    Some(ReadinessReport { overall, components, omitted: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::*;

    fn states(r: &ReadinessReport) -> Vec<(&str, ComponentState)> {
        r.components.iter().map(|c| (c.name.as_str(), c.state)).collect()
    }

    fn detail<'a>(r: &'a ReadinessReport, name: &str) -> Option<&'a str> {
        r.components.iter().find(|c| c.name == name).and_then(|c| c.detail.as_deref())
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

    #[test]
    fn a_body_with_100000_components_keeps_the_failing_ones_and_counts_the_rest() {
        let checks: Map<String, Value> = (0..100_000)
            .map(|i| (format!("c{i:06}"), serde_json::json!({"status": if i % 25_000 == 7 { "DOWN" } else { "UP" }})))
            .collect();
        let body = serde_json::json!({"status": "DOWN", "checks": checks}).to_string();
        let r = parse(body.as_bytes());
        assert_eq!(r.components.len(), MAX_COMPONENTS);
        assert_eq!(r.omitted, 100_000 - MAX_COMPONENTS);
        let down: Vec<&str> = r.failing().map(|c| c.name.as_str()).collect();
        assert_eq!(down, vec!["c000007", "c025007", "c050007", "c075007"]);
    }

    const SPRING_BOOT: &[u8] = include_bytes!("../../../tests/fixtures/formats/spring-boot-health.json");
    const ASPNET_PLAIN: &[u8] = include_bytes!("../../../tests/fixtures/formats/aspnet-plain-degraded.txt");
    const ASPNET_UI: &[u8] = include_bytes!("../../../tests/fixtures/formats/aspnet-ui-unhealthy.json");
    const MICROPROFILE: &[u8] = include_bytes!("../../../tests/fixtures/formats/microprofile-health-down.json");
    const KUBE_READYZ: &[u8] = include_bytes!("../../../tests/fixtures/formats/kube-readyz-verbose-failed.txt");
    const KUBE_LIVEZ: &[u8] = include_bytes!("../../../tests/fixtures/formats/kube-livez-verbose-excluded.txt");
    const HEALTH_JSON: &[u8] = include_bytes!("../../../tests/fixtures/formats/health-json-warn.json");

    #[test]
    fn spring_boot_actuator_nested_components_are_named_by_path() {
        let r = parse(SPRING_BOOT);
        assert_eq!(r.overall, Some(Down));
        assert_eq!(
            states(&r),
            vec![
                ("db/primary", Up),
                ("db/replica", Down),
                ("diskSpace", Up),
                ("livenessState", Up),
                ("mail", Unknown),
                ("ping", Up),
                ("readinessState", Down),
            ]
        );
        assert_eq!(
            detail(&r, "db/replica"),
            Some("org.springframework.jdbc.CannotGetJdbcConnectionException: Failed to obtain JDBC Connection")
        );
        assert_eq!(detail(&r, "diskSpace"), None, "sizes are data, not a reason");
    }

    #[test]
    fn spring_boot_2_1_nested_details() {
        let r = parse(br#"{"status":"DOWN","details":{"db":{"status":"DOWN","details":{"one":{"status":"UP","details":{"database":"H2"}},"two":{"status":"DOWN","details":{"error":"timeout"}}}},"diskSpace":{"status":"UP","details":{"total":1,"free":1}}}}"#);
        assert_eq!(states(&r), vec![("db/one", Up), ("db/two", Down), ("diskSpace", Up)]);
        assert_eq!(detail(&r, "db/two"), Some("timeout"));
    }

    #[test]
    fn spring_boot_without_components_shown_is_the_overall_status_only() {
        let r = parse(br#"{"status":"OUT_OF_SERVICE","groups":["liveness","readiness"]}"#);
        assert_eq!(r, ReadinessReport { overall: Some(Down), components: Vec::new(), omitted: 0 });
    }

    #[test]
    fn aspnet_core_plain_text_writer() {
        assert_eq!(
            parse(ASPNET_PLAIN),
            ReadinessReport { overall: Some(Degraded), components: Vec::new(), omitted: 0 }
        );
        assert_eq!(parse(b"Healthy").overall, Some(Up));
        assert_eq!(parse(b"Unhealthy").overall, Some(Down));
        assert!(parse(b"Unhealthy").components.is_empty());
    }

    #[test]
    fn aspnet_core_healthchecks_ui_writer() {
        let r = parse(ASPNET_UI);
        assert_eq!(r.overall, Some(Down));
        assert_eq!(states(&r), vec![("disk", Degraded), ("npgsql", Down), ("redis", Up), ("self", Up)]);
        assert_eq!(detail(&r, "npgsql"), Some("Failed to connect to 10.20.0.12:5432"));
        assert_eq!(detail(&r, "disk"), Some("Free space on / is below the 512 MB threshold"));
        assert_eq!(detail(&r, "redis"), None);
    }

    #[test]
    fn microprofile_health_checks_are_named_by_their_name() {
        let r = parse(MICROPROFILE);
        assert_eq!(r.overall, Some(Down));
        assert_eq!(states(&r), vec![("heap-memory", Up), ("inventory-datasource", Down), ("kafka-consumer", Up)]);
        assert_eq!(detail(&r, "inventory-datasource"), Some("timed out waiting for available connection"));
    }

    #[test]
    fn microprofile_health_1_0_outcome_and_state() {
        let r = parse(br#"{"outcome":"DOWN","checks":[{"name":"firstCheck","state":"DOWN","data":{"key":"value"}},{"name":"secondCheck","state":"UP"}]}"#);
        assert_eq!(r.overall, Some(Down));
        assert_eq!(states(&r), vec![("firstCheck", Down), ("secondCheck", Up)]);
        let empty = parse(br#"{"status":"UP","checks":[]}"#);
        assert_eq!(empty, ReadinessReport { overall: Some(Up), components: Vec::new(), omitted: 0 });
    }

    #[test]
    fn kubernetes_readyz_verbose_names_the_failed_checks() {
        let r = parse(KUBE_READYZ);
        assert_eq!(r.overall, Some(Down));
        assert_eq!(
            states(&r),
            vec![
                ("etcd", Down),
                ("etcd-readiness", Down),
                ("informer-sync", Up),
                ("log", Up),
                ("ping", Up),
                ("poststarthook/generic-apiserver-start-informers", Up),
                ("poststarthook/rbac/bootstrap-roles", Up),
                ("shutdown", Up),
            ]
        );
        assert_eq!(detail(&r, "etcd"), Some("reason withheld"));
        assert_eq!(r.failing().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["etcd", "etcd-readiness"]);
    }

    #[test]
    fn kubernetes_livez_verbose_with_an_excluded_check() {
        let r = parse(KUBE_LIVEZ);
        assert_eq!(r.overall, Some(Up));
        assert_eq!(
            states(&r),
            vec![
                ("etcd", Unknown),
                ("log", Up),
                ("ping", Up),
                ("poststarthook/crd-informer-synced", Up),
                ("poststarthook/start-apiextensions-controllers", Up),
            ]
        );
        assert_eq!(detail(&r, "etcd"), Some("excluded"));
    }

    #[test]
    fn plain_text_that_is_no_known_shape_stays_empty() {
        assert_eq!(parse(b"health check failed"), ReadinessReport::default());
        assert_eq!(parse(b"readyz check failed\n"), ReadinessReport::default());
        assert_eq!(parse(b"<html><body>Sign in</body></html>"), ReadinessReport::default());
        assert_eq!(parse(&[0xff, 0xfe, 0x00]), ReadinessReport::default());
    }

    #[test]
    fn ietf_health_json_with_metadata_and_several_nodes() {
        let r = parse(HEALTH_JSON);
        assert_eq!(r.overall, Some(Degraded));
        assert_eq!(
            states(&r),
            vec![
                ("cpu:utilization", Degraded),
                ("postgres:connections", Degraded),
                ("postgres:responseTime", Up),
                ("uptime", Up),
            ]
        );
        assert_eq!(detail(&r, "postgres:connections"), Some("95 of 100 connections in use"));
        assert_eq!(detail(&r, "postgres:responseTime"), None, "an empty output is no reason");
    }

    #[test]
    fn flat_bodies_skip_the_formats_metadata() {
        let r = parse(br#"{"status":"pass","version":"1","releaseId":"1.2.2","description":"authz","database":"up"}"#);
        assert_eq!(states(&r), vec![("database", Up)]);
    }
}
