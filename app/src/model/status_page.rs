//! Public status pages: what an admin chose to show (`StatusPageSpec`), the public updates a
//! commander posts from the room, and the summary anyone may read (`/s/{slug}/summary.json`).
//! Nothing internal is in the summary: no probe, URL, host, request id or error detail, and of
//! incidents only their public updates. Field names are part of the API and pinned by tests.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::IncidentStatus;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusGroup {
    pub name: String,
    pub services: Vec<Uuid>,
}

/// `POST /api/v1/status-pages`, `PUT …/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusPageSpec {
    /// The page's address: `/s/{slug}` (lower-case letters, digits and dashes).
    pub slug: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub groups: Vec<StatusGroup>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusPage {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: StatusPageSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/v1/incidents/{id}/public-updates`: what the outside is told (Markdown).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PublicUpdateInput {
    pub status: IncidentStatus,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicUpdate {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub status: IncidentStatus,
    /// The Markdown as written; left out of the public summary, which carries only `html`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Rendered and sanitised on the server.
    pub html: String,
    pub at: DateTime<Utc>,
}

/// A service's state as the public sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PublicState {
    Operational,
    Maintenance,
    Degraded,
    Outage,
    /// No check has run yet.
    Unknown,
}

impl PublicState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Operational => "Operational",
            Self::Maintenance => "Under maintenance",
            Self::Degraded => "Degraded performance",
            Self::Outage => "Outage",
            Self::Unknown => "No data",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operational => "operational",
            Self::Maintenance => "maintenance",
            Self::Degraded => "degraded",
            Self::Outage => "outage",
            Self::Unknown => "unknown",
        }
    }
}

/// One day's bar: the share of good checks and the worst that day saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayBar {
    pub date: NaiveDate,
    /// `None` on a day without checks.
    pub uptime_pct: Option<f64>,
    pub worst: PublicState,
    /// The headings of the public incidents that day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicService {
    pub id: Uuid,
    pub name: String,
    pub state: PublicState,
    /// Over the days shown.
    pub uptime_pct: Option<f64>,
    /// The last 90 days, oldest first.
    pub days: Vec<DayBar>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicGroup {
    pub name: String,
    pub services: Vec<PublicService>,
}

/// An incident as the page shows it: a neutral heading naming the page's services it touches,
/// and its public updates, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicIncident {
    pub id: Uuid,
    pub heading: String,
    pub status: IncidentStatus,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub updates: Vec<PublicUpdate>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicMaintenance {
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub active: bool,
    pub services: Vec<String>,
}

/// `/s/{slug}/summary.json`: everything the page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusSummary {
    pub slug: String,
    pub title: String,
    pub description: String,
    /// The worst state of any service on the page.
    pub status: PublicState,
    /// "All systems operational", "Partial outage", …
    pub status_text: String,
    pub groups: Vec<PublicGroup>,
    /// Open incidents, then those resolved in the last 14 days; only ones with public updates.
    pub incidents: Vec<PublicIncident>,
    pub maintenance: Vec<PublicMaintenance>,
    pub generated_at: DateTime<Utc>,
}

/// The banner's words for the page's worst state and how many services share it.
pub fn banner(worst: PublicState, affected: usize, total: usize) -> String {
    match worst {
        PublicState::Operational => "All systems operational".into(),
        PublicState::Unknown => "Status not known yet".into(),
        PublicState::Maintenance => "Scheduled maintenance under way".into(),
        PublicState::Degraded => "Degraded performance".into(),
        PublicState::Outage if affected >= total && total > 0 => "Major outage".into(),
        PublicState::Outage => "Partial outage".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_format_is_pinned() {
        let spec: StatusPageSpec = serde_json::from_value(serde_json::json!({
            "slug": "acme", "title": "Acme status", "groups": [{"name": "Shop", "services": [Uuid::nil()]}]
        }))
        .expect("spec");
        assert_eq!(spec.description, "");
        assert!(
            serde_json::from_value::<StatusPageSpec>(
                serde_json::json!({"slug": "a", "title": "t", "groups": [], "x": 1})
            )
            .is_err()
        );
        let u: PublicUpdateInput =
            serde_json::from_value(serde_json::json!({"status": "identified", "text": "We found it."})).expect("input");
        assert_eq!(u.status, IncidentStatus::Identified);
        let bar = DayBar {
            date: NaiveDate::from_ymd_opt(2026, 12, 7).expect("date"),
            uptime_pct: Some(99.5),
            worst: PublicState::Degraded,
            incidents: vec![],
        };
        assert_eq!(
            serde_json::to_value(&bar).expect("json"),
            serde_json::json!({"date": "2026-12-07", "uptime_pct": 99.5, "worst": "degraded"})
        );
    }

    #[test]
    fn the_banner_says_how_bad_it_is() {
        assert_eq!(banner(PublicState::Operational, 0, 3), "All systems operational");
        assert_eq!(banner(PublicState::Outage, 1, 3), "Partial outage");
        assert_eq!(banner(PublicState::Outage, 3, 3), "Major outage");
        assert_eq!(banner(PublicState::Degraded, 1, 3), "Degraded performance");
    }
}
