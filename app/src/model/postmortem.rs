//! Postmortems as the API and the pages see them. Field names and values are part of the REST API
//! (`status: "draft" | "in_review" | "published"`, `sections` keyed by section name, `metrics`
//! with `computed_secs` and `override`) and pinned by tests.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{IncidentStatus, Severity, TimelineEntry};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PostmortemStatus {
    Draft,
    InReview,
    Published,
}

impl PostmortemStatus {
    pub const ALL: [Self; 3] = [Self::Draft, Self::InReview, Self::Published];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::InReview => "in_review",
            Self::Published => "published",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::InReview => "in review",
            Self::Published => "published",
        }
    }
}

/// The document's Markdown sections, in reading order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Summary,
    Impact,
    /// The four questions every postmortem answers.
    Trigger,
    Detection,
    Mitigation,
    Prevention,
    ContributingFactors,
    WentWell,
    WentBadly,
    Hypotheses,
    ChecklistSteps,
}

impl Section {
    pub const ALL: [Self; 11] = [
        Self::Summary,
        Self::Impact,
        Self::Trigger,
        Self::Detection,
        Self::Mitigation,
        Self::Prevention,
        Self::ContributingFactors,
        Self::WentWell,
        Self::WentBadly,
        Self::Hypotheses,
        Self::ChecklistSteps,
    ];

    /// The four questions, in the order they are asked.
    pub const QUESTIONS: [Self; 4] = [Self::Trigger, Self::Detection, Self::Mitigation, Self::Prevention];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Impact => "impact",
            Self::Trigger => "trigger",
            Self::Detection => "detection",
            Self::Mitigation => "mitigation",
            Self::Prevention => "prevention",
            Self::ContributingFactors => "contributing_factors",
            Self::WentWell => "went_well",
            Self::WentBadly => "went_badly",
            Self::Hypotheses => "hypotheses",
            Self::ChecklistSteps => "checklist_steps",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Summary => "Summary",
            Self::Impact => "Impact",
            Self::Trigger => "What triggered it?",
            Self::Detection => "Which signal detected it first?",
            Self::Mitigation => "What was the fastest safe mitigation?",
            Self::Prevention => "What single change would prevent it?",
            Self::ContributingFactors => "Contributing factors",
            Self::WentWell => "What went well",
            Self::WentBadly => "What went badly",
            Self::Hypotheses => "Hypotheses and their outcome",
            Self::ChecklistSteps => "Checklist steps taken",
        }
    }

    /// A prompt shown in an empty section.
    pub fn hint(self) -> &'static str {
        match self {
            Self::Summary => "Two or three sentences a reader outside the team understands.",
            Self::Impact => "Who was hurt, how badly, for how long.",
            Self::Trigger => "The change or event that set it off: a deploy, a traffic spike, a dependency.",
            Self::Detection => "The first signal that showed it, and whether an alert or a person caught it.",
            Self::Mitigation => "What stopped the damage soonest with the least risk, and how long it took.",
            Self::Prevention => "One change that would have prevented it or cut its impact the most.",
            Self::ContributingFactors => "What made it possible or worse: missing limits, alerts, tests.",
            Self::WentWell => "What helped: tools, signals, people, runbooks.",
            Self::WentBadly => "What slowed the response down.",
            Self::Hypotheses => "What was suspected, and what confirmed or ruled it out.",
            Self::ChecklistSteps => "What was checked, and what was found.",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    #[default]
    Open,
    InProgress,
    Done,
}

impl ActionStatus {
    pub const ALL: [Self; 3] = [Self::Open, Self::InProgress, Self::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InProgress => "in_progress",
            Self::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A follow-up with an owner. `id` is assigned by the server when absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActionItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    pub title: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
    #[serde(default)]
    pub status: ActionStatus,
    /// A ticket or pull request (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// What people write: Markdown per section, and the action items.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostmortemDoc {
    pub sections: BTreeMap<Section, String>,
    pub action_items: Vec<ActionItem>,
}

impl PostmortemDoc {
    pub fn section(&self, s: Section) -> &str {
        self.sections.get(&s).map(String::as_str).unwrap_or("")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// First failing check → detected.
    TimeToDetect,
    /// First failing check → a commander took it.
    TimeToAcknowledge,
    /// First failing check → mitigated, or the probes recovered, whichever came first.
    TimeToMitigate,
    /// First failing check → resolved.
    TimeToResolve,
}

impl MetricKind {
    pub const ALL: [Self; 4] = [Self::TimeToDetect, Self::TimeToAcknowledge, Self::TimeToMitigate, Self::TimeToResolve];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TimeToDetect => "time_to_detect",
            Self::TimeToAcknowledge => "time_to_acknowledge",
            Self::TimeToMitigate => "time_to_mitigate",
            Self::TimeToResolve => "time_to_resolve",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::TimeToDetect => "Time to detect",
            Self::TimeToAcknowledge => "Time to acknowledge",
            Self::TimeToMitigate => "Time to mitigate",
            Self::TimeToResolve => "Time to resolve",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Self::TimeToDetect => "TTD",
            Self::TimeToAcknowledge => "TTA",
            Self::TimeToMitigate => "TTM",
            Self::TimeToResolve => "TTR",
        }
    }
}

/// One end of a measured interval: when, what it was, and who or what says so.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mark {
    pub at: DateTime<Utc>,
    /// "first failing check of shop-api", "detected", "probes recovered", …
    pub what: String,
    /// `automatic`, `probe data`, or the email of whoever set the key time.
    pub source: String,
}

/// A commander's correction, kept beside the computed value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricOverride {
    pub secs: i64,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metric {
    pub kind: MetricKind,
    /// From the key times and the probe data; none when an end is missing (see `note`).
    pub computed_secs: Option<i64>,
    pub from: Option<Mark>,
    pub to: Option<Mark>,
    /// Why there is no value, or what to know about it (a reopened incident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub overridden: Option<MetricOverride>,
}

impl Metric {
    /// What the postmortem reports: the override when there is one.
    pub fn value_secs(&self) -> Option<i64> {
        self.overridden.as_ref().map(|o| o.secs).or(self.computed_secs)
    }
}

/// A duration as people read it: `45s`, `12m 5s`, `3h 4m`, `2d 1h`.
pub fn human_secs(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceImpact {
    pub id: Uuid,
    pub name: String,
    /// Checks run and failed during the incident window.
    pub checks: u64,
    pub failed: u64,
    pub error_pct: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Impact {
    /// Start to resolution (or to when the postmortem was created, while open).
    pub duration_secs: Option<i64>,
    pub services: Vec<ServiceImpact>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FrozenChartKind {
    Latency,
    Errors,
    Pool,
}

impl FrozenChartKind {
    pub const ALL: [Self; 3] = [Self::Latency, Self::Errors, Self::Pool];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Latency => "latency",
            Self::Errors => "errors",
            Self::Pool => "pool",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A chart drawn when the postmortem was created, kept as SVG.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FrozenChart {
    /// Its number within the postmortem (`charts/{position}.svg`).
    pub position: i32,
    pub service_id: Uuid,
    pub service: String,
    pub kind: FrozenChartKind,
    pub svg: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostmortemComment {
    pub id: Uuid,
    /// The revision it was written on.
    pub revision: i32,
    pub section: Section,
    pub text: String,
    /// Rendered and sanitised on the server.
    pub html: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/postmortems/{id}/comments`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    pub section: Section,
    pub text: String,
}

/// A published revision kept when the postmortem was amended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostmortemRevision {
    pub revision: i32,
    pub doc: PostmortemDoc,
    pub metrics: Vec<Metric>,
    pub published_by: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub amended_by: String,
    pub amended_at: DateTime<Utc>,
    pub reason: String,
}

/// The incident a postmortem is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentRef {
    pub id: Uuid,
    pub number: i64,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub commander: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Postmortem {
    pub id: Uuid,
    pub incident: IncidentRef,
    pub status: PostmortemStatus,
    pub revision: i32,
    pub doc: PostmortemDoc,
    /// Each section rendered and sanitised on the server: the only HTML a page inserts.
    pub html: BTreeMap<Section, String>,
    pub metrics: Vec<Metric>,
    pub impact: Impact,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub charts: Vec<FrozenChart>,
    /// The incident's timeline: as published once published, live before.
    pub timeline: Vec<TimelineEntry>,
    pub timeline_frozen: bool,
    pub comments: Vec<PostmortemComment>,
    pub revisions: Vec<PostmortemRevision>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
    pub published_by: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
}

/// A row of the list page, with what its MTTD / MTTR chart needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostmortemSummary {
    pub id: Uuid,
    pub incident: IncidentRef,
    pub status: PostmortemStatus,
    pub revision: i32,
    /// When the incident started (the metrics' origin).
    pub started_at: DateTime<Utc>,
    pub time_to_detect_secs: Option<i64>,
    pub time_to_resolve_secs: Option<i64>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

/// A commander's override of one metric; `null` in the patch removes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OverrideInput {
    pub secs: i64,
    pub reason: String,
}

/// `PATCH /api/v1/postmortems/{id}`: absent fields stay. `sections` merges into the document,
/// `action_items` replaces the list. `amend` (a reason) reopens a published postmortem as the
/// next revision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PostmortemPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sections: Option<BTreeMap<Section, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_items: Option<Vec<ActionItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PostmortemStatus>,
    /// A metric's override, or `null` to remove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub overrides: Option<BTreeMap<MetricKind, Option<OverrideInput>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amend: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_format_is_pinned() {
        let mut doc = PostmortemDoc::default();
        doc.sections.insert(Section::Trigger, "a deploy".into());
        doc.action_items.push(ActionItem {
            id: None,
            title: "Add a pool alert".into(),
            owner: "ana@example.com".into(),
            due: NaiveDate::from_ymd_opt(2026, 12, 1),
            status: ActionStatus::InProgress,
            link: None,
        });
        assert_eq!(
            serde_json::to_value(&doc).ok(),
            Some(serde_json::json!({
                "sections": { "trigger": "a deploy" },
                "action_items": [{ "title": "Add a pool alert", "owner": "ana@example.com",
                    "due": "2026-12-01", "status": "in_progress" }]
            }))
        );
        let patch: PostmortemPatch = serde_json::from_value(serde_json::json!({
            "status": "in_review",
            "overrides": { "time_to_detect": { "secs": 60, "reason": "alert fired earlier" }, "time_to_resolve": null }
        }))
        .unwrap_or_default();
        assert_eq!(patch.status, Some(PostmortemStatus::InReview));
        let overrides = patch.overrides.unwrap_or_default();
        assert_eq!(overrides.get(&MetricKind::TimeToResolve), Some(&None));
        assert_eq!(overrides.get(&MetricKind::TimeToDetect).map(|o| o.as_ref().map(|o| o.secs)), Some(Some(60)));
        let metric = Metric {
            kind: MetricKind::TimeToDetect,
            computed_secs: Some(90),
            from: None,
            to: None,
            note: None,
            overridden: None,
        };
        assert_eq!(
            serde_json::to_value(&metric).ok(),
            Some(serde_json::json!({ "kind": "time_to_detect", "computed_secs": 90, "from": null, "to": null }))
        );
        assert!(serde_json::from_value::<PostmortemPatch>(serde_json::json!({ "sections": { "nope": "" } })).is_err());
    }

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(human_secs(45), "45s");
        assert_eq!(human_secs(725), "12m 5s");
        assert_eq!(human_secs(3 * 3600 + 240), "3h 4m");
        assert_eq!(human_secs(2 * 86400 + 3600), "2d 1h");
        assert_eq!(human_secs(-5), "0s");
    }
}
