//! Services, probes and their results as the REST API, the declarative file and the dashboard see
//! them. These formats are Triage's public contract: tests below pin them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The outcome of one check, and a probe's (or service's) state. Ordered from best to worst, so
/// a service's state is the `max` of its probes'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Up,
    /// Assertions pass, but slower than the probe's threshold (or a certificate close to expiry).
    Degraded,
    Down,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Up, Outcome::Degraded, Outcome::Down];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Why a check failed (or, for `cert_expiry`, why it is degraded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Timeout,
    Dns,
    Connect,
    Tls,
    Protocol,
    Status,
    Assertion,
    BodyTooLarge,
    BlockedByPolicy,
    CertExpiry,
    /// A push probe whose agent did not report within its interval.
    MissedHeartbeat,
    /// A metrics body that is not Prometheus text.
    Parse,
    /// A metrics probe's pool is saturated (`degraded`): requests wait for a connection, or the
    /// pool is in use beyond its threshold.
    PoolSaturated,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 13] = [
        Self::Timeout,
        Self::Dns,
        Self::Connect,
        Self::Tls,
        Self::Protocol,
        Self::Status,
        Self::Assertion,
        Self::BodyTooLarge,
        Self::BlockedByPolicy,
        Self::CertExpiry,
        Self::MissedHeartbeat,
        Self::Parse,
        Self::PoolSaturated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::Status => "status",
            Self::Assertion => "assertion",
            Self::BodyTooLarge => "body_too_large",
            Self::BlockedByPolicy => "blocked_by_policy",
            Self::CertExpiry => "cert_expiry",
            Self::MissedHeartbeat => "missed_heartbeat",
            Self::Parse => "parse",
            Self::PoolSaturated => "pool_saturated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Position in [`ErrorClass::ALL`], used for per-class counters.
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// How much an outage of a service hurts; later issues derive incident severity from it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    Critical,
    High,
    #[default]
    Medium,
    Low,
}

impl Criticality {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Critical, Self::High, Self::Medium, Self::Low].into_iter().find(|c| c.as_str() == s)
    }
}

pub(crate) fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A service: the probes that watch one thing, shown side by side.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Service {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub criticality: Criticality,
    /// The worst state of its enabled probes; `None` while it has none with a state.
    pub state: Option<Outcome>,
    pub probe_ids: Vec<Uuid>,
    /// Enabled probes whose last check the network policy refused (a configuration problem,
    /// not part of `state`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub blocked: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/services` and `PUT /api/v1/services/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub criticality: Criticality,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// An HTTP request with assertions.
    Http,
    /// An HTTP check whose JSON body is parsed into named components.
    Readiness,
    /// A Prometheus text scrape for pool gauges and request/error counters.
    Metrics,
    /// Results arrive from a remote agent; missing pushes count as failures.
    Push,
    /// A TCP connect (`tcp://host:port`), optionally a TLS handshake, a line sent and an answer expected.
    Tcp,
    /// A TLS handshake and the certificate chain only (`tls://host:port`): expiry, name, issuer, trust.
    Tls,
    /// A DNS query (`dns://[resolver[:port]]/name?type=A`) with expected answers or response code.
    Dns,
    /// ICMP echo (`icmp://host`): loss and round-trip times.
    Icmp,
    /// The standard gRPC health check (`grpc://host:port/service`, `grpcs://` over TLS).
    Grpc,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 9] = [
        Self::Http,
        Self::Readiness,
        Self::Metrics,
        Self::Push,
        Self::Tcp,
        Self::Tls,
        Self::Dns,
        Self::Icmp,
        Self::Grpc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Readiness => "readiness",
            Self::Metrics => "metrics",
            Self::Push => "push",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Dns => "dns",
            Self::Icmp => "icmp",
            Self::Grpc => "grpc",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Kinds that send an HTTP request (method, headers, body, assertions on the answer).
    pub fn is_http(self) -> bool {
        matches!(self, Self::Http | Self::Readiness | Self::Metrics)
    }
}

/// Accepted status codes: a list (`[200, 204]`) or a range (`{"min": 200, "max": 299}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum StatusSpec {
    OneOf(Vec<u16>),
    Range { min: u16, max: u16 },
}

/// Comparison of a JSON path's value or a header's value with the expected one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Eq,
    Ne,
    Contains,
    Lt,
    Le,
    Gt,
    Ge,
    /// The path matches at least one node (no `value` needed).
    Exists,
    Matches,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JsonPathAssertion {
    /// RFC 9535 JSONPath, e.g. `$.status` or `$.checks[?@.status != 'UP']`.
    pub path: String,
    #[serde(default = "default_op")]
    pub op: CompareOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderAssertion {
    pub name: String,
    #[serde(default = "default_op")]
    pub op: CompareOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

fn default_op() -> CompareOp {
    CompareOp::Eq
}

/// What a response must satisfy. Every field is optional; status defaults to 200–399.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AssertionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// The `regex` crate's syntax (linear-time matching; no look-around or back-references).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_path: Vec<JsonPathAssertion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header: Vec<HeaderAssertion>,
    /// Fewer days than this until the certificate expires makes the check `degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_min_days: Option<u32>,
}

impl AssertionSpec {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// TLS settings for `https` probes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// Extra trusted root certificates (PEM), for internal CAs and self-signed targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Accept any certificate. Phases and expiry are still measured; use for tests only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

impl TlsSpec {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Metric names feeding each pool gauge and counter (the first name present wins). An empty list
/// keeps Triage's defaults for that field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PoolMappingSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_use: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idle: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub max: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub total: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl PoolMappingSpec {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_true() -> bool {
    true
}
fn default_interval() -> u32 {
    30
}
fn default_timeout() -> u32 {
    5_000
}
fn default_failures() -> u32 {
    3
}
fn default_successes() -> u32 {
    2
}
fn default_method() -> String {
    "GET".into()
}
fn default_max_redirects() -> u32 {
    5
}
fn is_get(m: &String) -> bool {
    m == "GET"
}
fn is_true(b: &bool) -> bool {
    *b
}

/// A probe as configured: the body of `POST/PUT /api/v1/probes`, an entry of the declarative file,
/// and (with `id` and the service filled in) what `GET` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    pub name: String,
    /// The service's name; created if missing. Either this or `service_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<Uuid>,
    pub kind: ProbeKind,
    /// Required except for `push`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default = "default_method", skip_serializing_if = "is_get")]
    pub method: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default = "default_interval")]
    pub interval_secs: u32,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Slower than this, with every assertion passing, is `degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_after_ms: Option<u32>,
    /// Consecutive failing results before the probe is confirmed down.
    #[serde(default = "default_failures")]
    pub failures_to_down: u32,
    /// Consecutive passing results before it is up again.
    #[serde(default = "default_successes")]
    pub successes_to_up: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow_redirects: bool,
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// Largest body read, counted after decompression. Default 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_cap_bytes: Option<u32>,
    #[serde(default, rename = "assert", skip_serializing_if = "AssertionSpec::is_empty")]
    pub assertions: AssertionSpec,
    #[serde(default, skip_serializing_if = "TlsSpec::is_default")]
    pub tls: TlsSpec,
    #[serde(default, skip_serializing_if = "PoolMappingSpec::is_default")]
    pub pool_mapping: PoolMappingSpec,
    /// Whether and when this probe opens incidents.
    #[serde(default, skip_serializing_if = "IncidentPolicy::is_default")]
    pub incidents: IncidentPolicy,
    /// `tcp`: a TLS handshake after connecting (with the `tls` options).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp_tls: bool,
    /// `tcp`: text written once connected (`\r`, `\n`, `\t` and `\\` are unescaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// `tcp`: text the answer must contain (read until it appears, the peer closes, or the timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// `dns`: answers that must all be present (addresses, names, or record text); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
    /// `dns`: the response code expected (`NOERROR` unless set; `NXDOMAIN` for a name that must not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// `icmp`: echo requests per check (default 3, at most 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u32>,
    /// `metrics`: the share of the pool's maximum in use from which it counts as saturated
    /// (default [`POOL_SATURATED_AT`]); requests waiting always count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_saturated_at: Option<f64>,
    /// Where it runs from: `local` (the Triage server) and agents' locations.
    #[serde(default = "super::default_locations", skip_serializing_if = "super::is_local_only")]
    pub locations: Vec<String>,
    /// How many locations must confirm down for the probe to be down (default: a majority);
    /// fewer make it `degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
}

/// How a probe's failures become incidents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IncidentPolicy {
    /// Open an incident when the probe is confirmed down (off: it still adds entries to
    /// incidents that cover its service).
    #[serde(default = "default_true")]
    pub auto_open: bool,
    /// Also open one after the probe has been degraded this long; none: degraded never opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_for_secs: Option<u32>,
    /// The severity of an incident it opens follows this; none: the service's criticality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,
    /// How long every affected probe must be up before the room suggests resolving.
    #[serde(default = "default_healthy_for")]
    pub healthy_for_secs: u32,
}

fn default_healthy_for() -> u32 {
    300
}

impl Default for IncidentPolicy {
    fn default() -> Self {
        Self { auto_open: true, degraded_for_secs: None, criticality: None, healthy_for_secs: default_healthy_for() }
    }
}

impl IncidentPolicy {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl ProbeSpec {
    /// A minimal probe of `kind` at `url` with every default, as a starting point.
    pub fn new(name: &str, service: &str, kind: ProbeKind, url: Option<&str>) -> Self {
        Self {
            id: None,
            name: name.into(),
            service: Some(service.into()),
            service_id: None,
            kind,
            url: url.map(str::to_owned),
            method: default_method(),
            headers: BTreeMap::new(),
            body: None,
            interval_secs: default_interval(),
            timeout_ms: default_timeout(),
            enabled: true,
            degraded_after_ms: None,
            failures_to_down: default_failures(),
            successes_to_up: default_successes(),
            follow_redirects: false,
            max_redirects: default_max_redirects(),
            body_cap_bytes: None,
            assertions: AssertionSpec::default(),
            tls: TlsSpec::default(),
            pool_mapping: PoolMappingSpec::default(),
            incidents: IncidentPolicy::default(),
            tcp_tls: false,
            send: None,
            expect: None,
            answers: Vec::new(),
            rcode: None,
            packets: None,
            pool_saturated_at: None,
            locations: super::default_locations(),
            quorum: None,
        }
    }

    /// Runs from somewhere else than (or besides) the server: judged by quorum.
    pub fn is_multi_location(&self) -> bool {
        !super::is_local_only(&self.locations)
    }

    /// Whether the server itself checks it.
    pub fn runs_locally(&self) -> bool {
        self.locations.iter().any(|l| l == super::LOCAL)
    }

    /// How many locations must confirm down: the spec's quorum, or a majority.
    pub fn quorum_of(&self) -> usize {
        self.quorum.map_or_else(|| super::majority(self.locations.len()), |q| q as usize)
    }
}

/// A probe with its identity and current state, as `GET /api/v1/probes` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Probe {
    pub id: Uuid,
    pub service_id: Uuid,
    pub service: String,
    /// Created from the declarative file; the file wins on the next start.
    pub file_managed: bool,
    pub spec: ProbeSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProbeStatus>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A probe's confirmed state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeStatus {
    /// `"unknown"` (`None`) until enough results confirm a first state.
    #[serde(with = "unknown_state")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "up"))]
    pub state: Option<Outcome>,
    pub since: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorClass>,
}

impl ProbeStatus {
    /// The last check was refused by the network policy: a configuration problem, which opens no
    /// incident and leaves the confirmed state where it was.
    pub fn blocked(&self) -> bool {
        self.last_error == Some(ErrorClass::BlockedByPolicy)
    }
}

/// A state that may not be confirmed yet, written `"unknown"` on the wire and in the database.
pub mod unknown_state {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Outcome;

    pub const UNKNOWN: &str = "unknown";

    pub fn as_str(state: Option<Outcome>) -> &'static str {
        state.map_or(UNKNOWN, Outcome::as_str)
    }

    /// `Some(None)` for `"unknown"`, `None` for anything that is no state at all.
    pub fn parse(s: &str) -> Option<Option<Outcome>> {
        if s == UNKNOWN { Some(None) } else { Outcome::parse(s).map(Some) }
    }

    pub fn serialize<S: Serializer>(state: &Option<Outcome>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(as_str(*state))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Outcome>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown state `{s}`: expected unknown, up, degraded or down"))
        })
    }
}

/// Durations of each phase in µs; absent for a phase that did not happen (no DNS for an IP
/// literal, no TLS over plain HTTP, nothing after a failure).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Phases {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_us: Option<u64>,
    pub total_us: u64,
}

/// State of one component named in a readiness body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ComponentState {
    Up,
    Degraded,
    Down,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Component {
    pub name: String,
    pub state: ComponentState,
    /// A short reason when the target gave one (`error`, `message`, `output`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

/// Connection-pool gauges and counter rates from one metrics scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolReading {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_use: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<f64>,
    /// Requests per second since the previous scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_s: Option<f64>,
    /// Errors (error counter, or 5xx by status label) per second since the previous scrape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_per_s: Option<f64>,
}

/// In use at or above this share of the pool's maximum counts as saturated, unless a metrics
/// probe sets its own `pool_saturated_at`.
pub const POOL_SATURATED_AT: f64 = 0.9;

impl PoolReading {
    /// Whether the pool is saturated: requests waiting for a connection, or in use at or above
    /// `at` of the maximum (with the maximum unknown, only waiting requests count). The one
    /// definition behind a metrics probe's `degraded`, the guidance's pool symptom and its check
    /// of recovery, so the room's screens cannot disagree about it.
    pub fn saturated(&self, at: f64) -> bool {
        let waiting = self.waiting.is_some_and(|w| w > 0.0);
        let full = matches!((self.in_use, self.max), (Some(u), Some(m)) if m > 0.0 && u / m >= at);
        waiting || full
    }

    /// "10 of 10 in use (100 %), 12 waiting"; "4 in use, maximum unknown" where the exporter
    /// gives no maximum (never guessed).
    pub fn describe(&self) -> String {
        let in_use = self.in_use.map_or("? in use".to_string(), |u| format!("{u:.0}"));
        let mut s = match (self.in_use, self.max) {
            (Some(_), Some(m)) if m > 0.0 => {
                format!("{in_use} of {m:.0} in use ({:.0} %)", self.in_use.unwrap_or(0.0) / m * 100.0)
            }
            (Some(_), _) => format!("{in_use} in use, maximum unknown"),
            (None, Some(m)) => format!("maximum {m:.0}, in use unknown"),
            (None, None) => "no pool gauges".to_string(),
        };
        if let Some(w) = self.waiting {
            s.push_str(&format!(", {w:.0} waiting"));
        }
        s
    }
}

/// One stored check result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeResult {
    pub probe_id: Uuid,
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorClass>,
    /// A short explanation of `error` (never headers or credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub phases: Phases,
    pub response_bytes: u64,
    /// The `x-request-id` Triage sent: search the target's logs for it.
    pub request_id: String,
    /// The start of the body (≤ 1 KiB), on failure only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_excerpt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_days_left: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolReading>,
    /// ICMP checks: echoes sent and answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<EchoCount>,
    /// Where it was checked from: `"local"` (`None`, the server itself) or an agent's location.
    #[serde(default, with = "super::result_location")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "local"))]
    pub location: Option<String>,
}

impl ProbeResult {
    /// A result with nothing measured: no status, error, phases or readings.
    pub fn bare(probe_id: Uuid, at: DateTime<Utc>, outcome: Outcome, request_id: String) -> Self {
        Self {
            probe_id,
            at,
            outcome,
            status: None,
            error: None,
            detail: None,
            phases: Phases::default(),
            response_bytes: 0,
            request_id,
            body_excerpt: None,
            cert_days_left: None,
            components: Vec::new(),
            pool: None,
            echo: None,
            location: None,
        }
    }
}

/// Echo requests an ICMP check sent and the replies it got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EchoCount {
    pub sent: u32,
    pub received: u32,
}

impl EchoCount {
    pub fn loss_pct(self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            f64::from(self.sent.saturating_sub(self.received)) * 100.0 / f64::from(self.sent)
        }
    }
}

/// The network policy refusing a probe's target, with the rule and the way to allow it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyRefusal {
    /// The address the target resolved to, with its port.
    pub address: String,
    /// The rule it falls under ("loopback address", "private (RFC 1918) address", …).
    pub rule: String,
    /// What an admin can do to allow it.
    pub allow: String,
}

/// A probe run once on request ("Run now", `POST /api/v1/probes/test`): the result as it would be
/// stored (nothing is stored) and, when the network policy refuses the target, why and how to
/// allow it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeTrial {
    pub result: ProbeResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<PolicyRefusal>,
    /// The start of the answer's body (HTTP kinds; at most 64 KiB), for trying JSONPath
    /// assertions on a real sample. Never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
}

/// A confirmed change of a probe's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateChange {
    pub probe_id: Uuid,
    pub service_id: Uuid,
    pub at: DateTime<Utc>,
    /// `"unknown"` (`None`) for a probe's first confirmed state.
    #[serde(with = "unknown_state")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "up"))]
    pub from: Option<Outcome>,
    pub to: Outcome,
    /// The result that confirmed it (its request id is the handle into the target's logs).
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorClass>,
    /// For a probe run from several locations: which of them the new state stands on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<super::QuorumNote>,
}

impl StateChange {
    /// The state with the locations it stands on: "down (down from 2 of 3 locations: a, b)".
    pub fn describe(&self) -> String {
        match &self.quorum {
            Some(q) => format!("{} ({})", self.to.as_str(), q.describe(self.to)),
            None => self.to.as_str().to_owned(),
        }
    }
}

/// One bucket of `GET /api/v1/probes/{id}/series`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// Start of the bucket.
    pub at: DateTime<Utc>,
    pub count: u64,
    pub up: u64,
    pub degraded: u64,
    pub down: u64,
    /// Failed checks ÷ checks, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_pct: Option<f64>,
    /// Failed checks by error class (only classes that occurred).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<ErrorClass, u64>,
    /// Latency percentiles of the checks' total time, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// Mean time per phase of the timed checks, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases_ms: Option<PhaseMeans>,
    /// Pool gauges: highest in use, lowest idle, highest max and waiting in the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolReading>,
    /// ICMP echoes lost ÷ sent in the bucket, in percent (only where echoes were sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
}

/// Mean duration of each phase of a check in a bucket, in ms (a phase that did not happen, like
/// TLS over plain HTTP, counts as 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PhaseMeans {
    pub dns: f64,
    pub connect: f64,
    pub tls: f64,
    pub ttfb: f64,
    pub transfer: f64,
}

/// The answer of the series endpoint: the buckets actually used and the points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Series {
    pub probe_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub step_secs: u64,
    pub points: Vec<SeriesPoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_probe_gets_documented_defaults() {
        let spec: ProbeSpec = serde_json::from_str(
            r#"{"name":"shop-health","service":"shop","kind":"http","url":"http://shop.internal/healthz"}"#,
        )
        .expect("parses");
        assert_eq!((spec.interval_secs, spec.timeout_ms), (30, 5000));
        assert_eq!((spec.failures_to_down, spec.successes_to_up), (3, 2));
        assert_eq!(spec.method, "GET");
        assert!(spec.enabled && !spec.follow_redirects);
        assert_eq!(
            serde_json::to_string(&spec).expect("ser"),
            r#"{"name":"shop-health","service":"shop","kind":"http","url":"http://shop.internal/healthz","interval_secs":30,"timeout_ms":5000,"failures_to_down":3,"successes_to_up":2,"max_redirects":5}"#
        );
    }

    #[test]
    fn probe_spec_json_format_is_pinned() {
        let json = r#"{"name":"api","service":"shop","kind":"readiness","url":"https://shop/readyz","method":"POST","headers":{"x-env":"prod"},"body":"{}","interval_secs":10,"timeout_ms":2000,"enabled":false,"degraded_after_ms":300,"failures_to_down":2,"successes_to_up":1,"follow_redirects":true,"max_redirects":3,"body_cap_bytes":4096,"assert":{"status":{"min":200,"max":204},"body_contains":"ok","body_regex":"^\\{","json_path":[{"path":"$.status","op":"eq","value":"UP"}],"header":[{"name":"content-type","op":"contains","value":"json"}],"cert_min_days":14},"tls":{"insecure_skip_verify":true},"pool_mapping":{"in_use":["busy"]}}"#;
        let spec: ProbeSpec = serde_json::from_str(json).expect("parses");
        assert_eq!(spec.assertions.status, Some(StatusSpec::Range { min: 200, max: 204 }));
        assert_eq!(spec.assertions.json_path[0].op, CompareOp::Eq);
        assert_eq!(serde_json::to_string(&spec).expect("ser"), json, "round trip is exact");
        let list: AssertionSpec = serde_json::from_str(r#"{"status":[200,204]}"#).expect("list form");
        assert_eq!(list.status, Some(StatusSpec::OneOf(vec![200, 204])));
    }

    #[test]
    fn unknown_fields_are_rejected_not_ignored() {
        let err = serde_json::from_str::<ProbeSpec>(r#"{"name":"a","kind":"http","intervall_secs":5}"#)
            .expect_err("typo must fail");
        assert!(err.to_string().contains("intervall_secs"), "{err}");
    }

    #[test]
    fn result_json_format_is_pinned() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T03:00:00Z").expect("time").with_timezone(&Utc);
        let r = ProbeResult {
            probe_id: Uuid::nil(),
            at,
            outcome: Outcome::Down,
            status: Some(503),
            error: Some(ErrorClass::Status),
            detail: Some("status 503 not accepted".into()),
            phases: Phases {
                dns_us: None,
                connect_us: Some(120),
                tls_us: None,
                ttfb_us: Some(900),
                transfer_us: Some(15),
                total_us: 1100,
            },
            response_bytes: 57,
            request_id: "4f1c".into(),
            body_excerpt: Some("{\"status\":\"down\"}".into()),
            cert_days_left: None,
            components: vec![Component { name: "database".into(), state: ComponentState::Down, detail: None }],
            pool: None,
            echo: None,
            location: None,
        };
        assert_eq!(
            serde_json::to_string(&r).expect("ser"),
            r#"{"probe_id":"00000000-0000-0000-0000-000000000000","at":"2026-11-23T03:00:00Z","outcome":"down","status":503,"error":"status","detail":"status 503 not accepted","phases":{"connect_us":120,"ttfb_us":900,"transfer_us":15,"total_us":1100},"response_bytes":57,"request_id":"4f1c","body_excerpt":"{\"status\":\"down\"}","components":[{"name":"database","state":"down"}],"location":"local"}"#
        );
    }

    #[test]
    fn state_change_and_status_json_formats_are_pinned() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T03:00:00Z").expect("time").with_timezone(&Utc);
        let first = StateChange {
            probe_id: Uuid::nil(),
            service_id: Uuid::nil(),
            at,
            from: None,
            to: Outcome::Down,
            request_id: "r1".into(),
            error: Some(ErrorClass::Status),
            quorum: None,
        };
        let json = serde_json::to_string(&first).expect("ser");
        assert_eq!(
            json,
            r#"{"probe_id":"00000000-0000-0000-0000-000000000000","service_id":"00000000-0000-0000-0000-000000000000","at":"2026-12-06T03:00:00Z","from":"unknown","to":"down","request_id":"r1","error":"status"}"#
        );
        assert_eq!(serde_json::from_str::<StateChange>(&json).expect("de"), first);
        let later = StateChange { from: Some(Outcome::Up), ..first };
        assert!(serde_json::to_string(&later).expect("ser").contains(r#""from":"up","to":"down""#));
        let bad = serde_json::from_str::<StateChange>(&json.replace("unknown", "sideways")).expect_err("refused");
        assert!(bad.to_string().contains("unknown state `sideways`"), "{bad}");

        let status = ProbeStatus {
            state: None,
            since: at,
            last_result_at: Some(at),
            last_outcome: Some(Outcome::Down),
            last_error: Some(ErrorClass::BlockedByPolicy),
        };
        assert!(status.blocked());
        assert_eq!(
            serde_json::to_string(&status).expect("ser"),
            r#"{"state":"unknown","since":"2026-12-06T03:00:00Z","last_result_at":"2026-12-06T03:00:00Z","last_outcome":"down","last_error":"blocked_by_policy"}"#
        );
    }

    #[test]
    fn enum_names_match_their_wire_form() {
        for c in ErrorClass::ALL {
            assert_eq!(serde_json::to_string(&c).expect("ser"), format!("\"{}\"", c.as_str()));
            assert_eq!(ErrorClass::parse(c.as_str()), Some(c));
        }
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_string(&o).expect("ser"), format!("\"{}\"", o.as_str()));
        }
        assert!(Outcome::Down > Outcome::Degraded && Outcome::Degraded > Outcome::Up);
    }
}
