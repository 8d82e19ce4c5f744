//! A probe's JSON definition checked and compiled into what the scheduler runs. Every rejection
//! names the field, so the API can answer 400 with it and the declarative file can say which
//! probe and which field is wrong.

use std::time::Duration;

use app::model::{ProbeKind, ProbeSpec, StatusSpec};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use uuid::Uuid;

use super::confirm::Confirmation;
use super::dns::{DnsCheck, RecordKind};
use super::grpc::GrpcCheck;
use super::http::{Assertions, HeaderCheck, HttpCheck, JsonPathCheck, StatusRule};
use super::icmp::IcmpCheck;
use super::scrape::PoolMapping;
use super::tcp::{CertCheck, TcpCheck};
use super::tls::TlsOptions;

/// Largest body cap a probe may ask for.
pub const MAX_BODY_CAP: u32 = 64 << 20;
pub const DEFAULT_BODY_CAP: u32 = 1 << 20;
/// Longest interval: a day.
pub const MAX_INTERVAL_SECS: u32 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> SpecError {
    SpecError { field, message: message.into() }
}

/// One check of any kind, compiled. Built once per probe and kept, never copied per check, so
/// the HTTP variant's size does not matter.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Check {
    /// `http`, `readiness` and `metrics` probes.
    Http(HttpCheck),
    Tcp(TcpCheck),
    Tls(CertCheck),
    Dns(DnsCheck),
    Icmp(IcmpCheck),
    Grpc(GrpcCheck),
}

impl Check {
    /// The host and port the check connects to (for the network policy's verdict on a form),
    /// `None` where that is the system's resolver.
    pub fn target(&self) -> Option<(&str, u16)> {
        match self {
            Self::Http(c) => Some((c.url.host_str()?, c.url.port_or_known_default()?)),
            Self::Tcp(c) => Some((&c.host, c.port)),
            Self::Tls(c) => Some((&c.host, c.port)),
            Self::Dns(c) => c.resolver.as_ref().map(|(h, p)| (h.as_str(), *p)),
            // ICMP has no port; the policy judges the address alone.
            Self::Icmp(c) => Some((&c.host, 0)),
            Self::Grpc(c) => Some((&c.host, c.port)),
        }
    }

    pub fn timeout(&self) -> Duration {
        match self {
            Self::Http(c) => c.timeout,
            Self::Tcp(c) => c.timeout,
            Self::Tls(c) => c.timeout,
            Self::Dns(c) => c.timeout,
            Self::Icmp(c) => c.timeout,
            Self::Grpc(c) => c.timeout,
        }
    }
}

/// What the scheduler runs for one probe.
#[derive(Clone, Debug)]
pub struct CompiledProbe {
    pub id: Uuid,
    pub service_id: Uuid,
    pub name: String,
    pub kind: ProbeKind,
    pub enabled: bool,
    pub interval: Duration,
    pub confirmation: Confirmation,
    /// `None` for push probes.
    pub check: Option<Check>,
    pub pool_mapping: PoolMapping,
    /// Where it runs from; more than `local` alone: judged by quorum (`monitor::quorum`).
    pub locations: Vec<String>,
    /// Locations that must confirm down for the probe to be down.
    pub quorum: usize,
}

impl CompiledProbe {
    /// Judged by quorum over its locations rather than by the scheduler's own state machine.
    pub fn multi_location(&self) -> bool {
        !app::model::is_local_only(&self.locations)
    }

    pub fn runs_locally(&self) -> bool {
        self.locations.iter().any(|l| l == app::model::LOCAL)
    }

    /// The server schedules it: enabled and run from `local`.
    pub fn runnable(&self) -> bool {
        self.enabled && self.runs_locally()
    }
}

/// Headers Triage sets itself (the request id among them) or that would desynchronise the
/// connection; the importers drop them from a source's headers for the same reason.
pub const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "x-request-id",
];

/// Checks the parts of a spec that do not depend on the database (names, URL, numbers, patterns).
pub fn validate(spec: &ProbeSpec) -> Result<(), SpecError> {
    compile_check(spec).map(|_| ())
}

/// Compiles a stored, valid spec for the scheduler.
pub fn compile(id: Uuid, service_id: Uuid, spec: &ProbeSpec) -> Result<CompiledProbe, SpecError> {
    let check = compile_check(spec)?;
    Ok(CompiledProbe {
        id,
        service_id,
        name: spec.name.clone(),
        kind: spec.kind,
        enabled: spec.enabled,
        interval: Duration::from_secs(u64::from(spec.interval_secs)),
        confirmation: Confirmation { failures_to_down: spec.failures_to_down, successes_to_up: spec.successes_to_up },
        check,
        pool_mapping: pool_mapping(spec),
        locations: spec.locations.clone(),
        quorum: spec.quorum_of(),
    })
}

fn pool_mapping(spec: &ProbeSpec) -> PoolMapping {
    let m = &spec.pool_mapping;
    let d = PoolMapping::default();
    let pick = |over: &Vec<String>, default: Vec<String>| if over.is_empty() { default } else { over.clone() };
    PoolMapping {
        in_use: pick(&m.in_use, d.in_use),
        idle: pick(&m.idle, d.idle),
        max: pick(&m.max, d.max),
        waiting: pick(&m.waiting, d.waiting),
        total: pick(&m.total, d.total),
        requests: pick(&m.requests, d.requests),
        errors: pick(&m.errors, d.errors),
        saturated_at: spec.pool_saturated_at.unwrap_or(d.saturated_at),
    }
}

/// At most this many locations per probe (each adds a state machine and a chart line).
pub const MAX_LOCATIONS: usize = 16;

fn check_locations(spec: &ProbeSpec) -> Result<(), SpecError> {
    let l = &spec.locations;
    if l.is_empty() || l.len() > MAX_LOCATIONS {
        return Err(bad("locations", format!("must name 1–{MAX_LOCATIONS} locations (\"local\" is the server)")));
    }
    if let Some((name, why)) = l.iter().find_map(|n| app::model::location_problem(n).map(|w| (n, w))) {
        return Err(bad("locations", format!("{name:?} {why}")));
    }
    let mut sorted = l.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != l.len() {
        return Err(bad("locations", "names a location twice"));
    }
    if spec.kind == ProbeKind::Push && spec.is_multi_location() {
        return Err(bad("locations", "push probes are judged where their pushes arrive; leave `locations` out"));
    }
    if spec.quorum.is_some_and(|q| q < 1 || q as usize > l.len()) {
        return Err(bad("quorum", format!("must be between 1 and the number of locations ({})", l.len())));
    }
    Ok(())
}

fn compile_check(spec: &ProbeSpec) -> Result<Option<Check>, SpecError> {
    let name = spec.name.trim();
    if name.is_empty() || name.len() > 200 || name != spec.name {
        return Err(bad("name", "must be 1–200 characters without surrounding spaces"));
    }
    if spec.service.is_none() && spec.service_id.is_none() {
        return Err(bad("service", "name the service (`service`) or give its id (`service_id`)"));
    }
    if let Some(s) = &spec.service
        && (s.trim().is_empty() || s.len() > 200)
    {
        return Err(bad("service", "must be 1–200 characters"));
    }
    if spec.interval_secs < 1 || spec.interval_secs > MAX_INTERVAL_SECS {
        return Err(bad("interval_secs", format!("must be between 1 and {MAX_INTERVAL_SECS}")));
    }
    if spec.timeout_ms < 1 || u64::from(spec.timeout_ms) >= u64::from(spec.interval_secs) * 1000 {
        return Err(bad("timeout_ms", "must be at least 1 and less than the interval"));
    }
    if !(1..=100).contains(&spec.failures_to_down) {
        return Err(bad("failures_to_down", "must be between 1 and 100"));
    }
    if !(1..=100).contains(&spec.successes_to_up) {
        return Err(bad("successes_to_up", "must be between 1 and 100"));
    }
    check_locations(spec)?;
    let policy = &spec.incidents;
    if !(1..=86_400).contains(&policy.healthy_for_secs) {
        return Err(bad("incidents.healthy_for_secs", "must be between 1 and 86400"));
    }
    if policy.degraded_for_secs.is_some_and(|d| !(1..=86_400).contains(&d)) {
        return Err(bad("incidents.degraded_for_secs", "must be between 1 and 86400"));
    }
    if spec.max_redirects > 20 {
        return Err(bad("max_redirects", "must be at most 20"));
    }
    if let Some(d) = spec.degraded_after_ms
        && d >= spec.timeout_ms
    {
        return Err(bad("degraded_after_ms", "must be less than timeout_ms"));
    }
    let body_cap = spec.body_cap_bytes.unwrap_or(DEFAULT_BODY_CAP);
    if body_cap == 0 || body_cap > MAX_BODY_CAP {
        return Err(bad("body_cap_bytes", format!("must be between 1 and {MAX_BODY_CAP}")));
    }
    if spec.kind == ProbeKind::Push {
        if spec.url.is_some() {
            return Err(bad("url", "push probes receive results; they have no URL"));
        }
        return Ok(None);
    }
    let raw = spec.url.as_deref().ok_or_else(|| bad("url", format!("required for {} probes", spec.kind.as_str())))?;
    let url: url::Url = raw.parse().map_err(|e| bad("url", format!("not a valid URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in a URL end up in logs and exports; headers are kept out of both.
        return Err(bad("url", "must not contain credentials; send them in `headers`"));
    }
    refuse_foreign_options(spec)?;
    let m = &spec.pool_mapping;
    for entry in [&m.in_use, &m.idle, &m.max, &m.waiting, &m.total, &m.requests, &m.errors].into_iter().flatten() {
        if !super::scrape::is_selector(entry) {
            return Err(bad(
                "pool_mapping",
                format!("'{entry}' is not a metric name or a selector such as name{{label=\"value\"}}"),
            ));
        }
    }
    let timeout = Duration::from_millis(u64::from(spec.timeout_ms));
    let degraded_after = spec.degraded_after_ms.map(|ms| Duration::from_millis(u64::from(ms)));
    let tls = || TlsOptions::from_spec(&spec.tls).map_err(|m| bad("tls", m.0));
    let cert_min_days = spec.assertions.cert_min_days;
    Ok(Some(match spec.kind {
        ProbeKind::Http | ProbeKind::Readiness | ProbeKind::Metrics | ProbeKind::Push => {
            Check::Http(compile_http(spec, url, body_cap)?)
        }
        ProbeKind::Tcp => {
            let (host, port) = host_port(&url, "tcp")?;
            let tls = if spec.tcp_tls { Some(tls()?) } else { None };
            let send = spec.send.as_deref().map(unescape).map(Bytes::from);
            if spec.expect.as_deref().is_some_and(str::is_empty) {
                return Err(bad("expect", "must not be empty"));
            }
            Check::Tcp(TcpCheck {
                host,
                port,
                timeout,
                degraded_after,
                tls,
                send,
                expect: spec.expect.clone(),
                cert_min_days,
            })
        }
        ProbeKind::Tls => {
            let (host, port) = host_port(&url, "tls")?;
            Check::Tls(CertCheck { host, port, timeout, degraded_after, tls: tls()?, cert_min_days })
        }
        ProbeKind::Dns => Check::Dns(compile_dns(spec, &url, timeout, degraded_after)?),
        ProbeKind::Icmp => {
            if url.scheme() != "icmp" {
                return Err(bad("url", "an icmp probe's URL is icmp://host"));
            }
            if url.port().is_some() || !matches!(url.path(), "" | "/") {
                return Err(bad("url", "an icmp probe's URL is icmp://host, without a port or path"));
            }
            let host = url_host(&url)?;
            let packets = spec.packets.unwrap_or(3);
            if !(1..=20).contains(&packets) {
                return Err(bad("packets", "must be between 1 and 20"));
            }
            Check::Icmp(IcmpCheck { host, packets, timeout, degraded_after })
        }
        ProbeKind::Grpc => {
            let secure = match url.scheme() {
                "grpc" => false,
                "grpcs" => true,
                _ => return Err(bad("url", "a grpc probe's URL is grpc://host:port/service (grpcs:// for TLS)")),
            };
            let host = url_host(&url)?;
            let port = url.port().ok_or_else(|| bad("url", "a grpc probe's URL needs a port"))?;
            // The path names the service asked about; empty asks about the server as a whole.
            let service = url.path().trim_start_matches('/').to_string();
            let tls = if secure { Some(tls()?.with_alpn(b"h2")) } else { None };
            Check::Grpc(GrpcCheck { host, port, service, tls, timeout, degraded_after, cert_min_days })
        }
    }))
}

/// Options of one kind set on a probe of another: refused, so a typo'd kind cannot silently
/// drop what the author meant to check.
fn refuse_foreign_options(spec: &ProbeSpec) -> Result<(), SpecError> {
    let k = spec.kind;
    let only = |field: &'static str, set: bool, kinds: &[ProbeKind]| -> Result<(), SpecError> {
        if set && !kinds.contains(&k) {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            return Err(bad(field, format!("applies to {} probes only", names.join(" and "))));
        }
        Ok(())
    };
    only("tcp_tls", spec.tcp_tls, &[ProbeKind::Tcp])?;
    only("send", spec.send.is_some(), &[ProbeKind::Tcp])?;
    only("expect", spec.expect.is_some(), &[ProbeKind::Tcp])?;
    only("answers", !spec.answers.is_empty(), &[ProbeKind::Dns])?;
    only("rcode", spec.rcode.is_some(), &[ProbeKind::Dns])?;
    only("packets", spec.packets.is_some(), &[ProbeKind::Icmp])?;
    only("pool_saturated_at", spec.pool_saturated_at.is_some(), &[ProbeKind::Metrics])?;
    if spec.pool_saturated_at.is_some_and(|t| !(t > 0.0 && t <= 1.0)) {
        return Err(bad("pool_saturated_at", "must be a share of the maximum above 0 and at most 1"));
    }
    let http = [ProbeKind::Http, ProbeKind::Readiness, ProbeKind::Metrics];
    only("headers", !spec.headers.is_empty(), &http)?;
    only("body", spec.body.is_some(), &http)?;
    only("follow_redirects", spec.follow_redirects, &http)?;
    let a = &spec.assertions;
    let answer_checks = a.status.is_some()
        || a.body_contains.is_some()
        || a.body_regex.is_some()
        || !a.json_path.is_empty()
        || !a.header.is_empty();
    only("assert", answer_checks, &http)?;
    Ok(())
}

fn url_host(url: &url::Url) -> Result<String, SpecError> {
    url.host_str()
        .filter(|h| !h.is_empty())
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .ok_or_else(|| bad("url", "has no host"))
}

/// `scheme://host:port` and nothing else.
fn host_port(url: &url::Url, scheme: &str) -> Result<(String, u16), SpecError> {
    let shape = || bad("url", format!("a {scheme} probe's URL is {scheme}://host:port"));
    if url.scheme() != scheme || !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(shape());
    }
    let host = url_host(url)?;
    let port = url.port().ok_or_else(shape)?;
    Ok((host, port))
}

fn compile_dns(
    spec: &ProbeSpec,
    url: &url::Url,
    timeout: Duration,
    degraded_after: Option<Duration>,
) -> Result<DnsCheck, SpecError> {
    if url.scheme() != "dns" {
        return Err(bad("url", "a dns probe's URL is dns://[resolver[:port]]/name?type=A"));
    }
    let resolver = url
        .host_str()
        .filter(|h| !h.is_empty())
        .map(|h| (h.trim_start_matches('[').trim_end_matches(']').to_string(), url.port().unwrap_or(53)));
    let name = url.path().trim_start_matches('/').to_string();
    if name.is_empty() || name.len() > 253 || name.contains('/') {
        return Err(bad("url", "name the record to look up: dns://[resolver]/name?type=A"));
    }
    let mut kind = RecordKind::A;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "type" => {
                kind = RecordKind::parse(&v).ok_or_else(|| {
                    bad("url", format!("type '{v}' is not one of A, AAAA, CNAME, MX, TXT, NS, SOA, SRV"))
                })?
            }
            other => return Err(bad("url", format!("unknown parameter '{other}' (only type)"))),
        }
    }
    let rcode = match spec.rcode.as_deref() {
        None => "NOERROR".to_string(),
        Some(r) => {
            let upper = r.trim().to_ascii_uppercase();
            if !super::dns::RCODES.contains(&upper.as_str()) {
                return Err(bad("rcode", format!("'{r}' is not one of {}", super::dns::RCODES.join(", "))));
            }
            upper
        }
    };
    if spec.answers.iter().any(|a| a.trim().is_empty()) {
        return Err(bad("answers", "must not contain empty answers"));
    }
    Ok(DnsCheck { resolver, name, kind, answers: spec.answers.clone(), rcode, timeout, degraded_after })
}

/// `\r`, `\n`, `\t` and `\\` in a `send` line become the characters they name.
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some(other) => {
                out.push(b'\\');
                let mut buf = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

fn compile_http(spec: &ProbeSpec, url: url::Url, body_cap: u32) -> Result<HttpCheck, SpecError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("url", "only http and https URLs are probed"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("url", "has no host"));
    }
    let method = Method::from_bytes(spec.method.as_bytes()).map_err(|_| bad("method", "not an HTTP method"))?;
    let mut headers = Vec::with_capacity(spec.headers.len());
    for (k, v) in &spec.headers {
        let name =
            HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad("headers", format!("'{k}' is not a header name")))?;
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(bad("headers", format!("'{name}' is set by Triage and cannot be overridden")));
        }
        let value = HeaderValue::from_str(v)
            .map_err(|_| bad("headers", format!("value of '{k}' is not a valid header value")))?;
        headers.push((name, value));
    }
    let assertions = compile_assertions(spec)?;
    let mut check = HttpCheck::get(url, Duration::from_millis(u64::from(spec.timeout_ms)));
    check.method = method;
    check.headers = headers;
    check.body = spec.body.clone().map(Bytes::from);
    check.body_cap = body_cap as usize;
    check.degraded_after = spec.degraded_after_ms.map(|ms| Duration::from_millis(u64::from(ms)));
    check.assertions = assertions;
    check.follow_redirects = spec.follow_redirects;
    check.max_redirects = spec.max_redirects;
    check.tls = TlsOptions::from_spec(&spec.tls).map_err(|m| bad("tls", m.0))?;
    Ok(check)
}

fn compile_assertions(spec: &ProbeSpec) -> Result<Assertions, SpecError> {
    let a = &spec.assertions;
    let status = match &a.status {
        None => StatusRule::default(),
        Some(StatusSpec::OneOf(codes)) => {
            if codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)) {
                return Err(bad("assert.status", "codes must be between 100 and 599"));
            }
            StatusRule::OneOf(codes.clone())
        }
        Some(StatusSpec::Range { min, max }) => {
            if min > max || *min < 100 || *max > 599 {
                return Err(bad("assert.status", "range must satisfy 100 ≤ min ≤ max ≤ 599"));
            }
            StatusRule::Range { min: *min, max: *max }
        }
    };
    let body_regex = match &a.body_regex {
        None => None,
        Some(p) => Some(
            regex::RegexBuilder::new(p)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| bad("assert.body_regex", one_line(&e.to_string())))?,
        ),
    };
    let mut json_paths = Vec::new();
    for jp in &a.json_path {
        json_paths.push(JsonPathCheck::new(jp).map_err(|m| bad("assert.json_path", m.0))?);
    }
    let mut headers = Vec::new();
    for h in &a.header {
        headers.push(HeaderCheck::new(h).map_err(|m| bad("assert.header", m.0))?);
    }
    Ok(Assertions {
        status,
        body_contains: a.body_contains.clone(),
        body_regex,
        json_paths,
        headers,
        cert_min_days: a.cert_min_days,
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::{HeaderAssertion, JsonPathAssertion, ProbeKind};

    fn spec() -> ProbeSpec {
        ProbeSpec::new("shop-health", "shop", ProbeKind::Http, Some("http://shop.example/healthz"))
    }

    fn field_of(s: &ProbeSpec) -> &'static str {
        validate(s).expect_err("must be rejected").field
    }

    #[test]
    fn a_plain_probe_is_valid() {
        validate(&spec()).expect("valid");
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut s = spec();
        s.url = Some("ftp://x/".into());
        assert_eq!(field_of(&s), "url");
        s.url = Some("http://user:secret@x/".into());
        let err = validate(&s).expect_err("credentials");
        assert!(!err.message.contains("secret"), "never echoes secrets: {err}");
        let mut s = spec();
        s.timeout_ms = 30_000;
        assert_eq!(field_of(&s), "timeout_ms", "timeout must be under the 30 s interval");
        let mut s = spec();
        s.interval_secs = 0;
        assert_eq!(field_of(&s), "interval_secs");
        let mut s = spec();
        s.incidents.healthy_for_secs = 0;
        assert_eq!(field_of(&s), "incidents.healthy_for_secs");
        let mut s = spec();
        s.incidents.degraded_for_secs = Some(0);
        assert_eq!(field_of(&s), "incidents.degraded_for_secs");
        let mut s = spec();
        s.headers.insert("Host".into(), "evil".into());
        assert_eq!(field_of(&s), "headers");
        let mut s = spec();
        s.headers.insert("x-ok".into(), "line\r\nbreak".into());
        assert_eq!(field_of(&s), "headers");
        let mut s = spec();
        s.assertions.body_regex = Some("(unclosed".into());
        assert_eq!(field_of(&s), "assert.body_regex");
        let mut s = spec();
        s.assertions.json_path =
            vec![JsonPathAssertion { path: "$[".into(), op: app::model::CompareOp::Eq, value: None }];
        assert_eq!(field_of(&s), "assert.json_path");
        let mut s = spec();
        s.assertions.header =
            vec![HeaderAssertion { name: "bad name".into(), op: app::model::CompareOp::Eq, value: Some("x".into()) }];
        assert_eq!(field_of(&s), "assert.header");
        let mut s = spec();
        s.assertions.status = Some(StatusSpec::Range { min: 300, max: 200 });
        assert_eq!(field_of(&s), "assert.status");
        let mut s = spec();
        s.service = None;
        assert_eq!(field_of(&s), "service");
        let mut s = spec();
        s.degraded_after_ms = Some(9_000);
        assert_eq!(field_of(&s), "degraded_after_ms");
        let mut s = spec();
        s.name = " padded".into();
        assert_eq!(field_of(&s), "name");
    }

    #[test]
    fn push_probes_have_no_url_and_no_check() {
        let mut s = spec();
        s.kind = ProbeKind::Push;
        assert_eq!(field_of(&s), "url");
        s.url = None;
        let c = compile(Uuid::new_v4(), Uuid::new_v4(), &s).expect("valid");
        assert!(c.check.is_none());
    }

    #[test]
    fn pool_mapping_overrides_only_what_it_names() {
        let mut s = spec();
        s.kind = ProbeKind::Metrics;
        s.pool_mapping.in_use = vec!["myapp_busy".into()];
        let c = compile(Uuid::new_v4(), Uuid::new_v4(), &s).expect("valid");
        assert_eq!(c.pool_mapping.in_use, vec!["myapp_busy".to_string()]);
        assert_eq!(c.pool_mapping.max, PoolMapping::default().max);
    }
}
