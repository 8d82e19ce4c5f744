//! Triage's view of its own health: readiness components and instance facts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// State of one dependency behind `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Up,
    Down,
}

/// One dependency check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComponentCheck {
    pub status: ComponentStatus,
    /// Round-trip time of the check, when it completed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub latency_ms: Option<f64>,
    /// Why the check failed, in words safe to show anyone (no addresses or credentials).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    NotReady,
}

/// The body of `/readyz`: 200 when `status` is `ready`, 503 otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    pub status: ReadyStatus,
    /// Names of the failing components (empty when ready).
    pub failing: Vec<String>,
    pub checks: BTreeMap<String, ComponentCheck>,
    pub checked_at: DateTime<Utc>,
}

impl Readiness {
    /// Builds the report from component checks: ready only if every component is up.
    pub fn from_checks(checks: BTreeMap<String, ComponentCheck>, checked_at: DateTime<Utc>) -> Self {
        let failing: Vec<String> =
            checks.iter().filter(|(_, c)| c.status == ComponentStatus::Down).map(|(name, _)| name.clone()).collect();
        let status = if failing.is_empty() { ReadyStatus::Ready } else { ReadyStatus::NotReady };
        Self { status, failing, checks, checked_at }
    }

    pub fn is_ready(&self) -> bool {
        self.status == ReadyStatus::Ready
    }
}

/// Where this instance keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DatabaseMode {
    /// A private cluster started by Triage from the machine's PostgreSQL binaries.
    Embedded,
    /// A server named by `DATABASE_URL`.
    External,
}

/// Facts about this Triage instance, fixed while it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceInfo {
    pub version: String,
    /// Created on first start and kept in the database: it survives restarts.
    pub instance_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub database: DatabaseMode,
}

/// One past database round trip, for the status page's chart.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LatencySample {
    pub at: DateTime<Utc>,
    /// `None` when the check failed.
    pub latency_ms: Option<f64>,
}

/// Everything the status page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemStatus {
    pub instance: InstanceInfo,
    pub readiness: Readiness,
    pub recent_checks: Vec<LatencySample>,
}

/// One `triage serve` process sharing the database (`GET /api/v1/replicas`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Replica {
    pub id: Uuid,
    pub host: String,
    pub pid: i32,
    pub version: String,
    /// The address it listens on, as it was bound.
    pub listen: String,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Probes it runs now (its share of the enabled ones).
    pub probes_owned: i32,
    /// It runs the background work that must run once: rollups, retention, the incident engine,
    /// notifications.
    pub leader: bool,
    /// Heartbeating and holding its membership lock; a dead replica stays listed for a day.
    pub alive: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn replica_json_format_is_pinned() {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 13, 0, 0).single().expect("valid time");
        let r = Replica {
            id: Uuid::nil(),
            host: "web-1".into(),
            pid: 42,
            version: "0.1.0".into(),
            listen: "127.0.0.1:3000".into(),
            started_at: at,
            last_seen: at,
            probes_owned: 7,
            leader: true,
            alive: true,
        };
        assert_eq!(
            serde_json::to_string(&r).expect("serialises"),
            r#"{"id":"00000000-0000-0000-0000-000000000000","host":"web-1","pid":42,"version":"0.1.0","listen":"127.0.0.1:3000","started_at":"2026-12-07T13:00:00Z","last_seen":"2026-12-07T13:00:00Z","probes_owned":7,"leader":true,"alive":true}"#
        );
    }

    #[test]
    fn readiness_json_format_is_pinned() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).single().expect("valid time");
        let mut checks = BTreeMap::new();
        checks.insert(
            "database".to_string(),
            ComponentCheck { status: ComponentStatus::Down, latency_ms: None, error: Some("timeout after 1s".into()) },
        );
        let r = Readiness::from_checks(checks, at);
        assert_eq!(
            serde_json::to_string(&r).expect("serialises"),
            r#"{"status":"not_ready","failing":["database"],"checks":{"database":{"status":"down","error":"timeout after 1s"}},"checked_at":"2026-11-22T03:00:00Z"}"#
        );
    }

    #[test]
    fn ready_only_when_every_component_is_up() {
        let at = Utc::now();
        let up = ComponentCheck { status: ComponentStatus::Up, latency_ms: Some(0.5), error: None };
        let mut checks = BTreeMap::from([("database".to_string(), up.clone())]);
        assert!(Readiness::from_checks(checks.clone(), at).is_ready());
        checks.insert("probes".into(), ComponentCheck { status: ComponentStatus::Down, ..up });
        let r = Readiness::from_checks(checks, at);
        assert!(!r.is_ready());
        assert_eq!(r.failing, vec!["probes".to_string()]);
    }

    #[test]
    fn database_mode_is_snake_case() {
        assert_eq!(serde_json::to_string(&DatabaseMode::Embedded).expect("ser"), r#""embedded""#);
    }
}
