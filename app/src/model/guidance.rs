//! Guided debugging: checklists (data, versioned), the symptoms Triage reads from the live signal,
//! evidence beside each step, hypotheses, and whether the signals are back to normal. The JSON
//! of `GET /api/v1/incidents/{id}/guidance` is pinned by tests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the signal says is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SymptomKind {
    /// Liveness failing: checks down, or refused / timed out / unresolvable.
    Down,
    /// A readiness component is down.
    NotReady,
    /// Error rate above its baseline or threshold.
    Errors,
    /// Connection pool in use ≥ 90 % of its maximum, or requests waiting.
    PoolSaturated,
    /// p95 well above its baseline.
    Slow,
    /// The network path fails: a name that does not resolve, a port that refuses or never
    /// answers, a handshake that fails, or echoes lost (DNS, TCP, TLS, ICMP and gRPC checks).
    Unreachable,
    /// A certificate expires within its probe's warning period.
    CertExpiring,
}

impl SymptomKind {
    pub const ALL: [SymptomKind; 7] = [
        Self::Down,
        Self::NotReady,
        Self::Errors,
        Self::PoolSaturated,
        Self::Slow,
        Self::Unreachable,
        Self::CertExpiring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::NotReady => "not_ready",
            Self::Errors => "errors",
            Self::PoolSaturated => "pool_saturated",
            Self::Slow => "slow",
            Self::Unreachable => "unreachable",
            Self::CertExpiring => "cert_expiring",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::NotReady => "not ready",
            Self::Errors => "errors",
            Self::PoolSaturated => "pool saturated",
            Self::Slow => "slow",
            Self::Unreachable => "unreachable",
            Self::CertExpiring => "certificate expiring",
        }
    }
}

/// A symptom with the figures behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Symptom {
    pub kind: SymptomKind,
    /// Which service shows it.
    pub service: String,
    /// In words, with the figures: "p95 is 4.1× its 7-day baseline since 14:02".
    pub reason: String,
    /// How strong, 0–1 (orders the checklists).
    pub strength: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    High,
}

/// A live signal a step can be checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// "Is the service up?": the latest liveness (HTTP) results.
    Liveness,
    /// "Is it ready?": the readiness components of the latest readiness check.
    Readiness,
    /// "Is the pool exhausted?": in use vs max and waiting, with the pool chart.
    Pool,
    /// "Latency or errors?": p95 against its baseline and the error rate, with both charts.
    LatencyVsErrors,
    /// "Which requests failed?": the request ids of failed checks.
    FailedRequests,
    /// "Does the name resolve?": the latest DNS checks' answers and rcode.
    Dns,
    /// "Does the host answer?": the latest ICMP checks' loss and round trips, with the loss chart.
    Icmp,
    /// "Does the port accept connections?": the latest TCP checks (connect time, banner).
    Tcp,
    /// "Is the certificate valid?": the latest TLS checks (days left, issuer, chain).
    Tls,
    /// "Does the gRPC health service say SERVING?": the latest gRPC checks.
    Grpc,
    /// "Is it back to normal?": the signals against their baseline, and for how long.
    Recovery,
    /// "Did anything ship or change?": the change events from an hour before the start.
    RecentChange,
    /// "Roll back the last change": the newest change before the start, and what undoing it
    /// risks for its kind.
    Rollback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Find something out.
    Check,
    /// Change something (has a risk).
    Action,
}

/// One step of a checklist, as written in `checklists/*.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    pub id: String,
    pub question: String,
    /// Why it matters.
    pub why: String,
    /// How to verify: metrics, traces, logs, a command or query (Markdown).
    pub verify: String,
    #[serde(default = "check")]
    pub kind: StepKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Binding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    /// Shown before a high-risk action is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

fn check() -> StepKind {
    StepKind::Check
}

/// A checklist as written in `checklists/*.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChecklistDef {
    pub id: String,
    pub title: String,
    pub summary: String,
    /// The symptoms it answers, the most telling first.
    pub symptoms: Vec<SymptomKind>,
    /// Breaks ties between checklists answering the same symptoms (the general one first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
    #[serde(rename = "step")]
    pub steps: Vec<StepDef>,
}

/// A checklist's newest version as the admin page edits it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChecklistText {
    pub id: String,
    pub version: i32,
    pub title: String,
    pub created_by: String,
    /// The definition as TOML, in the format of `checklists/*.toml`.
    pub toml: String,
}

/// A stored checklist version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Checklist {
    pub version: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[serde(flatten)]
    pub def: ChecklistDef,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EvidenceStatus {
    Pass,
    Fail,
    Unknown,
}

/// Which chart to draw beside a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    Latency,
    Errors,
    Pool,
    Loss,
}

/// A step's evidence from the live data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    pub status: EvidenceStatus,
    /// The value in words: "48 of 50 in use (96 %), 7 waiting".
    pub detail: String,
    /// Charts to show beside it, per affected service id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<(Uuid, ChartKind)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
}

/// What someone recorded against a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tick {
    pub done: bool,
    pub finding: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GuidedStep {
    #[serde(flatten)]
    pub def: StepDef,
    /// The step's evidence evaluated from the live data (only for steps with a binding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Evidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick: Option<Tick>,
}

/// A proposed checklist: the version the incident uses, why it was proposed, its steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GuidedChecklist {
    pub id: String,
    pub version: i32,
    pub title: String,
    pub summary: String,
    /// Why it is proposed, from the symptoms.
    pub reason: String,
    pub score: f64,
    pub steps: Vec<GuidedStep>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HypothesisStatus {
    Open,
    Confirmed,
    RuledOut,
}

impl HypothesisStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Confirmed => "confirmed",
            Self::RuledOut => "ruled_out",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Confirmed, Self::RuledOut].into_iter().find(|h| h.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hypothesis {
    pub id: Uuid,
    pub text: String,
    pub status: HypothesisStatus,
    /// What supports or rules it out.
    pub evidence: String,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

/// A likely cause Triage suggests from the symptoms (not stored until someone adds it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuggestedHypothesis {
    pub text: String,
    /// How to check it.
    pub verify: String,
}

/// Whether the signals are back to normal, and since when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recovery {
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// How long it must hold before recovery is confirmed.
    pub needed_secs: u32,
    pub confirmed: bool,
    pub detail: String,
}

/// `GET /api/v1/incidents/{id}/guidance`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Guidance {
    pub symptoms: Vec<Symptom>,
    /// Most likely first.
    pub checklists: Vec<GuidedChecklist>,
    pub hypotheses: Vec<Hypothesis>,
    pub suggested_hypotheses: Vec<SuggestedHypothesis>,
    pub recovery: Recovery,
    pub now: DateTime<Utc>,
}

/// `POST /api/v1/incidents/{id}/guidance/ticks`: a step checked (or unchecked) with a finding.
/// A high-risk action needs `accept_risk: true` (its warning was shown).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TickInput {
    pub checklist: String,
    pub step: String,
    #[serde(default = "yes")]
    pub done: bool,
    #[serde(default)]
    pub finding: String,
    #[serde(default)]
    pub accept_risk: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/v1/incidents/{id}/hypotheses` and `PATCH …/{hid}` (absent fields stay).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HypothesisInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HypothesisStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guided_step_keeps_its_binding_and_its_live_evidence_apart() {
        let step = GuidedStep {
            def: StepDef {
                id: "pool".into(),
                question: "Is the pool exhausted?".into(),
                why: "w".into(),
                verify: "v".into(),
                kind: StepKind::Check,
                evidence: Some(Binding::Pool),
                risk: None,
                warning: None,
            },
            live: Some(Evidence {
                status: EvidenceStatus::Fail,
                detail: "10 of 10".into(),
                charts: vec![],
                request_ids: vec![],
            }),
            tick: None,
        };
        let v = serde_json::to_value(&step).unwrap_or_default();
        assert_eq!(v["evidence"], "pool");
        assert_eq!(v["live"]["status"], "fail");
        assert_eq!(v["kind"], "check");
        assert_eq!(serde_json::to_string(&SymptomKind::PoolSaturated).ok().as_deref(), Some("\"pool_saturated\""));
        assert_eq!(serde_json::to_string(&HypothesisStatus::RuledOut).ok().as_deref(), Some("\"ruled_out\""));
        let back: GuidedStep = serde_json::from_value(v).unwrap_or_else(|_| step.clone());
        assert_eq!(back, step);
    }
}
