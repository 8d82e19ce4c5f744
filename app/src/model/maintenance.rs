//! Maintenance windows: planned work on services or tags. During one, probes keep running and
//! storing, but nothing opens an incident and nothing is notified (deliveries are recorded as
//! suppressed). Field names are part of the REST API and pinned by tests.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Every {
    Week,
    Month,
}

/// A window that repeats: every `interval` weeks or months, at the same wall-clock time in
/// `time_zone` (so a Sunday 02:00 window stays at 02:00 across daylight-saving changes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    pub every: Every,
    #[serde(default = "one")]
    pub interval: u32,
    /// An IANA time zone (`Europe/Berlin`, `UTC`).
    pub time_zone: String,
    /// No occurrence starts after this day (in `time_zone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<NaiveDate>,
}

fn one() -> u32 {
    1
}

/// A window as written (POST/PUT). `starts_at`/`ends_at` are the first occurrence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    pub title: String,
    #[serde(default)]
    pub services: Vec<Uuid>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Recurrence>,
}

/// A stored window, with where it stands now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceWindow {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: MaintenanceSpec,
    /// Set when someone ended it early (for a recurring window: the occurrence under way then).
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Whether an occurrence is under way now.
    pub active: bool,
    /// The occurrence under way, else the next one (none when the window is over).
    #[serde(default)]
    pub current: Option<Occurrence>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Occurrence {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl MaintenanceSpec {
    /// Whether the window names this service, or one of its tags.
    pub fn covers(&self, service: Uuid, tags: &[String]) -> bool {
        self.services.contains(&service) || tags.iter().any(|t| self.tags.iter().any(|w| w.eq_ignore_ascii_case(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_format_is_pinned() {
        let w: MaintenanceSpec = serde_json::from_value(serde_json::json!({
            "title": "DB upgrade", "tags": ["db"], "starts_at": "2026-12-13T01:00:00Z", "ends_at": "2026-12-13T03:00:00Z",
            "recurrence": {"every": "week", "time_zone": "Europe/Berlin"}
        }))
        .expect("spec");
        assert_eq!(w.recurrence.as_ref().map(|r| (r.every, r.interval)), Some((Every::Week, 1)));
        assert!(w.covers(Uuid::nil(), &["DB".into()]));
        assert!(!w.covers(Uuid::nil(), &["web".into()]));
        let bad = serde_json::from_value::<MaintenanceSpec>(serde_json::json!({
            "title": "x", "starts_at": "2026-12-13T01:00:00Z", "ends_at": "2026-12-13T03:00:00Z", "repeat": "weekly"
        }));
        assert!(bad.is_err(), "unknown fields are refused");
    }
}
