//! Incidents and their timelines as the API and the pages see them. Field names and values are
//! part of the REST API (`id`, `title`, `severity: "SEV1"…`, `status: "investigating"…`, entries
//! with `kind`, `text`, `author`, `happened_at`, `recorded_at`) and pinned by tests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Criticality, Outcome};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    #[serde(rename = "SEV1")]
    Sev1,
    #[serde(rename = "SEV2")]
    Sev2,
    #[serde(rename = "SEV3")]
    Sev3,
    #[serde(rename = "SEV4")]
    Sev4,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Sev1, Severity::Sev2, Severity::Sev3, Severity::Sev4];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sev1 => "SEV1",
            Self::Sev2 => "SEV2",
            Self::Sev3 => "SEV3",
            Self::Sev4 => "SEV4",
        }
    }

    /// Also accepts lower case (`sev2`), as people type it in URLs.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// The one line the UI shows beside the severity, so everyone means the same by it.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Sev1 => {
                "Critical: a core service is down or data is at risk for most users. Everyone needed joins now."
            }
            Self::Sev2 => "Major: an important feature is broken or badly slow for many users. Respond now.",
            Self::Sev3 => "Minor: degraded or partly broken, with a workaround or few users hit. Fix today.",
            Self::Sev4 => "Low: little or no user impact yet. Track it and fix it in normal work.",
        }
    }

    /// The severity an automatically opened incident gets from how critical the service is.
    pub fn from_criticality(c: Criticality) -> Self {
        match c {
            Criticality::Critical => Self::Sev1,
            Criticality::High => Self::Sev2,
            Criticality::Medium => Self::Sev3,
            Criticality::Low => Self::Sev4,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl IncidentStatus {
    pub const ALL: [IncidentStatus; 4] = [Self::Investigating, Self::Identified, Self::Monitoring, Self::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Investigating => "investigating",
            Self::Identified => "identified",
            Self::Monitoring => "monitoring",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn is_open(self) -> bool {
        self != Self::Resolved
    }
}

/// The key times of an incident, in the order they must happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyTime {
    /// The first failing check, or when the trouble began as far as anyone knows.
    Started,
    /// When Triage or a person noticed.
    Detected,
    /// When a commander took it.
    Acknowledged,
    /// When users stopped being hurt (the fix may come later).
    Mitigated,
    Resolved,
}

impl KeyTime {
    pub const ALL: [KeyTime; 5] = [Self::Started, Self::Detected, Self::Acknowledged, Self::Mitigated, Self::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Detected => "detected",
            Self::Acknowledged => "acknowledged",
            Self::Mitigated => "mitigated",
            Self::Resolved => "resolved",
        }
    }

    /// The PATCH field that sets it (`started_at`, …).
    pub fn field(self) -> &'static str {
        match self {
            Self::Started => "started_at",
            Self::Detected => "detected_at",
            Self::Acknowledged => "acknowledged_at",
            Self::Mitigated => "mitigated_at",
            Self::Resolved => "resolved_at",
        }
    }
}

/// Who set a key time: `"automatic"` (Triage, from the data or a status change) or the email of
/// the person who set it by hand.
pub const AUTOMATIC: &str = "automatic";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stamp {
    pub at: DateTime<Utc>,
    pub source: String,
}

impl Stamp {
    pub fn automatic(at: DateTime<Utc>) -> Self {
        Self { at, source: AUTOMATIC.into() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyTimes {
    pub started: Option<Stamp>,
    pub detected: Option<Stamp>,
    pub acknowledged: Option<Stamp>,
    pub mitigated: Option<Stamp>,
    pub resolved: Option<Stamp>,
}

impl KeyTimes {
    pub fn get(&self, k: KeyTime) -> Option<&Stamp> {
        match k {
            KeyTime::Started => self.started.as_ref(),
            KeyTime::Detected => self.detected.as_ref(),
            KeyTime::Acknowledged => self.acknowledged.as_ref(),
            KeyTime::Mitigated => self.mitigated.as_ref(),
            KeyTime::Resolved => self.resolved.as_ref(),
        }
    }

    pub fn slot(&mut self, k: KeyTime) -> &mut Option<Stamp> {
        match k {
            KeyTime::Started => &mut self.started,
            KeyTime::Detected => &mut self.detected,
            KeyTime::Acknowledged => &mut self.acknowledged,
            KeyTime::Mitigated => &mut self.mitigated,
            KeyTime::Resolved => &mut self.resolved,
        }
    }

    /// The set times must not go backwards: started ≤ detected ≤ acknowledged ≤ mitigated ≤
    /// resolved (unset ones are skipped). On failure names the later field of the first pair out
    /// of order, with both times.
    pub fn check_order(&self) -> Result<(), (KeyTime, String)> {
        let mut last: Option<(KeyTime, DateTime<Utc>)> = None;
        for k in KeyTime::ALL {
            let Some(stamp) = self.get(k) else { continue };
            if let Some((before, at)) = last
                && stamp.at < at
            {
                return Err((
                    k,
                    format!(
                        "{} ({}) is before {} ({}): key times must be in order started ≤ detected ≤ acknowledged ≤ mitigated ≤ resolved",
                        k.as_str(),
                        stamp.at.to_rfc3339(),
                        before.as_str(),
                        at.to_rfc3339()
                    ),
                ));
            }
            last = Some((k, stamp.at));
        }
        Ok(())
    }

    /// Whether `at` would keep the order if it were `k`.
    pub fn fits(&self, k: KeyTime, at: DateTime<Utc>) -> bool {
        let mut t = self.clone();
        *t.slot(k) = Some(Stamp::automatic(at));
        t.check_order().is_ok()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserRef {
    pub id: Uuid,
    pub email: String,
}

/// A service the incident affects, with its live state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AffectedService {
    pub id: Uuid,
    pub name: String,
    pub state: Option<Outcome>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    pub id: Uuid,
    /// Short number for people ("incident 42").
    pub number: i64,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub commander: Option<UserRef>,
    pub participants: Vec<UserRef>,
    pub services: Vec<AffectedService>,
    pub summary: String,
    pub times: KeyTimes,
    /// Opened by Triage from a failing probe.
    pub automatic: bool,
    /// Every affected probe has been healthy long enough since then: a commander may resolve.
    pub resolve_suggested_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/v1/incidents`. Severity defaults to SEV3; `started_at` to now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    pub title: String,
    #[serde(default = "default_severity")]
    pub severity: Severity,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub services: Vec<Uuid>,
    #[serde(default)]
    pub commander: Option<Uuid>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
}

fn default_severity() -> Severity {
    Severity::Sev3
}

/// `PATCH /api/v1/incidents/{id}`: absent fields stay. Key times are set by hand with `*_at`
/// (`null` clears one).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IncidentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commander: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<Uuid>>,
    #[serde(default, with = "maybe", skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, with = "maybe", skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, with = "maybe", skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, with = "maybe", skip_serializing_if = "Option::is_none")]
    pub mitigated_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, with = "maybe", skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Option<DateTime<Utc>>>,
}

impl IncidentPatch {
    pub fn time(&self, k: KeyTime) -> Option<Option<DateTime<Utc>>> {
        match k {
            KeyTime::Started => self.started_at,
            KeyTime::Detected => self.detected_at,
            KeyTime::Acknowledged => self.acknowledged_at,
            KeyTime::Mitigated => self.mitigated_at,
            KeyTime::Resolved => self.resolved_at,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn time_mut(&mut self, k: KeyTime) -> &mut Option<Option<DateTime<Utc>>> {
        match k {
            KeyTime::Started => &mut self.started_at,
            KeyTime::Detected => &mut self.detected_at,
            KeyTime::Acknowledged => &mut self.acknowledged_at,
            KeyTime::Mitigated => &mut self.mitigated_at,
            KeyTime::Resolved => &mut self.resolved_at,
        }
    }
}

/// Absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
mod maybe {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(v: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Observation,
    Hypothesis,
    Action,
    Decision,
    StatusChange,
    Note,
    /// Written by Triage (probe state changes, resolve suggestions); people cannot post these.
    Automatic,
}

impl EntryKind {
    pub const ALL: [EntryKind; 7] = [
        Self::Observation,
        Self::Hypothesis,
        Self::Action,
        Self::Decision,
        Self::StatusChange,
        Self::Note,
        Self::Automatic,
    ];

    /// What people may post by hand.
    pub const WRITABLE: [EntryKind; 5] =
        [Self::Observation, Self::Hypothesis, Self::Action, Self::Decision, Self::Note];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Observation => "observation",
            Self::Hypothesis => "hypothesis",
            Self::Action => "action",
            Self::Decision => "decision",
            Self::StatusChange => "status_change",
            Self::Note => "note",
            Self::Automatic => "automatic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Observation => "observation",
            Self::Hypothesis => "hypothesis",
            Self::Action => "action",
            Self::Decision => "decision",
            Self::StatusChange => "status",
            Self::Note => "note",
            Self::Automatic => "triage",
        }
    }

    /// The composer's quick kinds: `/obs`, `/hyp`, `/act`, `/dec`, `/note` at the start of the text.
    pub fn from_command(text: &str) -> (Option<Self>, &str) {
        const COMMANDS: [(&str, EntryKind); 5] = [
            ("/obs", EntryKind::Observation),
            ("/hyp", EntryKind::Hypothesis),
            ("/act", EntryKind::Action),
            ("/dec", EntryKind::Decision),
            ("/note", EntryKind::Note),
        ];
        let trimmed = text.trim_start();
        for (cmd, kind) in COMMANDS {
            if let Some(rest) = trimmed.strip_prefix(cmd)
                && (rest.is_empty() || rest.starts_with(char::is_whitespace))
            {
                return (Some(kind), rest.trim_start());
            }
        }
        (None, text)
    }
}

/// Evidence attached to an entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Attachment {
    /// A service's charts over a time range (links to the service page with that range).
    ChartRange { service_id: Uuid, from: DateTime<Utc>, to: DateTime<Utc> },
    /// Request ids to search the target's logs for.
    RequestIds { ids: Vec<String> },
    /// One probe result.
    ProbeResult {
        probe_id: Uuid,
        at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
}

/// A soft deletion: the entry stays, shown to commanders only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deletion {
    pub at: DateTime<Utc>,
    pub by: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub kind: EntryKind,
    /// Markdown as written.
    pub text: String,
    /// `text` rendered and sanitised on the server: the only HTML a page inserts.
    pub html: String,
    /// The author's email, `token:<name>` for API tokens, `triage` for automatic entries.
    pub author: String,
    pub happened_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub attachments: Vec<Attachment>,
    /// 1 for an entry never edited; each edit keeps the previous version.
    pub revision: i32,
    pub edited_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deletion>,
}

/// The author of automatic entries.
pub const TRIAGE_AUTHOR: &str = "triage";

/// `POST /api/v1/incidents/{id}/timeline`. `idempotency_key` (or the `Idempotency-Key` header)
/// makes a retry return the entry stored the first time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    #[serde(default = "default_kind")]
    pub kind: EntryKind,
    pub text: String,
    #[serde(default)]
    pub happened_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

fn default_kind() -> EntryKind {
    EntryKind::Note
}

/// `PATCH /api/v1/incidents/{id}/timeline/{entry}`: absent fields stay.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EntryPatch {
    #[serde(default)]
    pub kind: Option<EntryKind>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub happened_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub attachments: Option<Vec<Attachment>>,
}

/// An earlier version of an edited entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntryRevision {
    pub revision: i32,
    pub kind: EntryKind,
    pub text: String,
    pub happened_at: DateTime<Utc>,
    pub attachments: Vec<Attachment>,
    /// Who replaced this version, and when.
    pub replaced_by: String,
    pub replaced_at: DateTime<Utc>,
}

/// The list page's filters, as in its URL and `GET /api/v1/incidents`'s query.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IncidentFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IncidentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Uuid>,
    /// Opened on or after this day (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<chrono::NaiveDate>,
    /// Opened on or before this day (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<chrono::NaiveDate>,
    /// Words in the title, summary or timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

/// The list page: incidents and the services to filter by (id, name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentList {
    pub incidents: Vec<Incident>,
    pub services: Vec<(Uuid, String)>,
    pub now: DateTime<Utc>,
}

/// The incident room: the incident with its timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentRoom {
    pub incident: Incident,
    pub timeline: Vec<TimelineEntry>,
    pub now: DateTime<Utc>,
    /// Every service (id, name), for a commander changing the affected ones.
    pub services: Vec<(Uuid, String)>,
    /// The incident's postmortem, once someone has started it.
    #[serde(default)]
    pub postmortem: Option<Uuid>,
    /// Who may be assigned as commander (enabled commanders and admins).
    #[serde(default)]
    pub commanders: Vec<UserRef>,
}

/// What the room's live stream (`GET /api/v1/incidents/{id}/events`) sends, one SSE event each:
/// the event name is the variant (`entry`, `incident`, `presence`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoomEvent {
    Entry(TimelineEntry),
    Incident(Box<Incident>),
    /// Who has the room open (emails), whenever it changes.
    Presence(Vec<String>),
}

impl RoomEvent {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Entry(_) => "entry",
            Self::Incident(_) => "incident",
            Self::Presence(_) => "presence",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_default()
    }

    #[test]
    fn formats_are_pinned() {
        assert_eq!(serde_json::to_string(&Severity::Sev2).ok().as_deref(), Some("\"SEV2\""));
        assert_eq!(serde_json::to_string(&IncidentStatus::Monitoring).ok().as_deref(), Some("\"monitoring\""));
        assert_eq!(serde_json::to_string(&EntryKind::StatusChange).ok().as_deref(), Some("\"status_change\""));
        let a = Attachment::RequestIds { ids: vec!["r1".into()] };
        assert_eq!(serde_json::to_string(&a).ok().as_deref(), Some(r#"{"type":"request_ids","ids":["r1"]}"#));
        assert_eq!(Severity::parse("sev1"), Some(Severity::Sev1));
        assert_eq!(Severity::from_criticality(Criticality::High), Severity::Sev2);
    }

    #[test]
    fn key_times_must_be_in_order() {
        let mut t = KeyTimes {
            started: Some(Stamp::automatic(at("2026-01-01T10:00:00Z"))),
            detected: Some(Stamp::automatic(at("2026-01-01T10:02:00Z"))),
            ..KeyTimes::default()
        };
        assert!(t.check_order().is_ok());
        t.resolved = Some(Stamp::automatic(at("2026-01-01T10:01:00Z")));
        let err = t.check_order().err();
        assert_eq!(err.as_ref().map(|e| e.0), Some(KeyTime::Resolved));
        assert!(err.is_some_and(|e| e.1.contains("before detected")));
        // Unset times in between are skipped, equal times are fine.
        t.resolved = Some(Stamp::automatic(at("2026-01-01T10:02:00Z")));
        assert!(t.check_order().is_ok());
        assert!(!t.fits(KeyTime::Mitigated, at("2026-01-01T10:03:00Z")), "after resolved");
        assert!(t.fits(KeyTime::Mitigated, at("2026-01-01T10:02:00Z")));
    }

    #[test]
    fn a_patch_survives_the_round_trip_to_the_server() {
        let p = IncidentPatch { status: Some(IncidentStatus::Resolved), ..Default::default() };
        let json = serde_json::to_string(&p).unwrap_or_default();
        assert_eq!(json, r#"{"status":"resolved"}"#, "absent fields stay absent (null would clear a time)");
        let cleared = IncidentPatch { resolved_at: Some(None), ..Default::default() };
        assert_eq!(serde_json::to_string(&cleared).unwrap_or_default(), r#"{"resolved_at":null}"#);
        let back: IncidentPatch = serde_json::from_str(r#"{"resolved_at":null}"#).unwrap_or_default();
        assert_eq!(back, cleared);
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let p: IncidentPatch = serde_json::from_str(r#"{"mitigated_at":null}"#).unwrap_or_default();
        assert_eq!(p.mitigated_at, Some(None));
        assert_eq!(p.resolved_at, None);
        let p: IncidentPatch = serde_json::from_str(r#"{"resolved_at":"2026-01-01T00:00:00Z"}"#).unwrap_or_default();
        assert_eq!(p.resolved_at, Some(Some(at("2026-01-01T00:00:00Z"))));
    }

    #[test]
    fn quick_kinds() {
        assert_eq!(
            EntryKind::from_command("/hyp pool is exhausted"),
            (Some(EntryKind::Hypothesis), "pool is exhausted")
        );
        assert_eq!(EntryKind::from_command("  /act roll back"), (Some(EntryKind::Action), "roll back"));
        assert_eq!(EntryKind::from_command("/hypothesis"), (None, "/hypothesis"));
        assert_eq!(EntryKind::from_command("plain"), (None, "plain"));
    }
}
