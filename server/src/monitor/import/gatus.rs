//! Gatus configuration files (`config.yaml`, as described in the README of TwiN/gatus).
//!
//! | Gatus | Triage |
//! |---|---|
//! | `http://`, `https://` endpoints | `http` probe: method, headers, body (`graphql` wraps it), redirects unless `client.ignore-redirect` |
//! | `tcp://` (with `body` as the line sent) | `tcp` probe |
//! | `tls://` | `tls` probe |
//! | `icmp://` | `icmp` probe |
//! | `grpc://`, `grpcs://` | `grpc` probe (the standard health check, as in Gatus) |
//! | a `dns:` block, `url` the resolver | `dns://resolver/name?type=T` |
//! | `external-endpoints` | `push` probes; `heartbeat.interval` is the interval |
//! | `group` | the service (an endpoint without group gets a service of its own name) |
//! | `interval`, `client.timeout`, `client.insecure`, `enabled`, `extra-labels` | interval, timeout, TLS verification, enabled, service tags |
//! | `alerts[].failure-threshold`, `success-threshold` | `failures_to_down`, `successes_to_up` (the smallest of the enabled alerts; Gatus' defaults 3 and 2 are Triage's too) |
//!
//! Conditions: `[STATUS]` (`==`, `any(…)`, `<`, `<=`, `>`, `>=`) → accepted codes;
//! `[BODY].path` comparisons → JSONPath assertions; `[BODY] == pat(*text*)` → `body_contains`
//! (other patterns → `body_regex`), on TCP → `expect`, on DNS `[BODY] == value` → `answers`;
//! `has([BODY].path) == true` → an `exists` assertion; `[CERTIFICATE_EXPIRATION] > 48h` →
//! `cert_min_days` (days rounded up; Triage marks the probe degraded where Gatus fails it);
//! `[DNS_RCODE] == X` → `rcode`; `[CONNECTED] == true` and, for gRPC, `[BODY].status == SERVING`
//! are what Triage checks anyway.
//!
//! `[RESPONSE_TIME] < N` has no exact counterpart: Gatus fails the check when slower, Triage
//! can only call it degraded. It is mapped to `degraded_after_ms = N` and listed as approximated,
//! so that the limit is not silently lost.
//!
//! Listed as unmapped: alerting, maintenance, suites, `udp`/`sctp`/`starttls`/`ws`/`ssh`
//! endpoints, `[IP]`, `[DOMAIN_EXPIRATION]`, `len(…)`, negated patterns and anything else.

use std::collections::{BTreeMap, BTreeSet};

use app::model::{CompareOp, JsonPathAssertion, ProbeKind, ProbeSpec};
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{Builder, Glob, ImportError, ImportPlan, is_set};
use crate::monitor::check::dns::RCODES;
use crate::monitor::check::spec::MAX_INTERVAL_SECS;

/// Gatus' defaults for an endpoint that does not set them.
const GATUS_INTERVAL_MS: u64 = 60_000;
const GATUS_TIMEOUT_MS: u64 = 10_000;
const GATUS_FAILURE_THRESHOLD: i64 = 3;
const GATUS_SUCCESS_THRESHOLD: i64 = 2;
/// Go's HTTP client, which Gatus uses, gives up after 10 redirects.
const GO_MAX_REDIRECTS: u32 = 10;
const DAY_MS: u64 = 86_400_000;
/// Gatus' operators, in the order it looks for them in a condition.
const OPERATORS: [&str; 6] = ["==", "!=", "<=", ">=", ">", "<"];

#[derive(Deserialize, Default)]
#[serde(default)]
struct Config {
    endpoints: Vec<Endpoint>,
    #[serde(rename = "external-endpoints")]
    external_endpoints: Vec<External>,
    alerting: Option<Value>,
    maintenance: Option<Value>,
    suites: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Endpoint {
    enabled: Option<bool>,
    name: String,
    group: String,
    url: String,
    method: String,
    body: String,
    graphql: bool,
    headers: BTreeMap<String, String>,
    #[serde(rename = "extra-labels")]
    extra_labels: BTreeMap<String, String>,
    interval: Option<String>,
    conditions: Vec<String>,
    alerts: Vec<Alert>,
    dns: Option<Dns>,
    client: Option<Client>,
    /// Every other key, so that none is dropped without a note.
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Alert {
    #[serde(rename = "type")]
    kind: String,
    enabled: Option<bool>,
    #[serde(rename = "failure-threshold")]
    failure_threshold: i64,
    #[serde(rename = "success-threshold")]
    success_threshold: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Dns {
    #[serde(rename = "query-type")]
    query_type: String,
    #[serde(rename = "query-name")]
    query_name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Client {
    insecure: bool,
    #[serde(rename = "ignore-redirect")]
    ignore_redirect: bool,
    timeout: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct External {
    enabled: Option<bool>,
    name: String,
    group: String,
    token: String,
    alerts: Vec<Alert>,
    heartbeat: Option<Heartbeat>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Heartbeat {
    interval: Option<String>,
}

/// Reads a Gatus configuration file; `file_name` only names the file in error messages.
pub fn plan(file_name: &str, text: &str) -> Result<ImportPlan, ImportError> {
    let config: Config = serde_yaml_ng::from_str(text).map_err(|e| super::yaml_error(file_name, &e))?;
    let mut b = Builder::default();
    top_level(&mut b, &config);
    for (i, e) in config.endpoints.iter().enumerate() {
        endpoint(&mut b, i, e);
    }
    for (i, e) in config.external_endpoints.iter().enumerate() {
        external(&mut b, i, e);
    }
    Ok(b.finish())
}

fn top_level(b: &mut Builder, config: &Config) {
    if config.alerting.as_ref().is_some_and(is_set) {
        b.note("alerting", "alerting providers are not imported; set up notification rules in Triage");
    }
    if config.maintenance.as_ref().is_some_and(is_set) {
        b.note("maintenance", "maintenance windows are not imported; plan maintenance in Triage");
    }
    if config.suites.as_ref().is_some_and(is_set) {
        b.note("suites", "suites (endpoints run in sequence with a shared context) are not imported");
    }
}

fn endpoint(b: &mut Builder, i: usize, e: &Endpoint) {
    let place = format!("endpoints[{i}]");
    let name = super::clean_name(&e.name, &format!("endpoint {i}"));
    let service = if e.group.trim().is_empty() { name.clone() } else { super::clean_name(&e.group, &name) };
    let tags: Vec<String> = e.extra_labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    b.describe_service(&service, "", &tags);
    let Some(mut spec) = target(b, &place, e, &name, &service) else { return };
    for (key, value) in &e.other {
        if let Some(why) = endpoint_setting(key)
            && is_set(value)
        {
            b.note(format!("{place}.{key}"), why);
        }
    }
    schedule(b, &place, e, &mut spec);
    client(b, &place, e, &mut spec);
    conditions(b, &place, e, &mut spec);
    alerts(b, &place, &e.alerts, &mut spec);
    spec.enabled = e.enabled.unwrap_or(true);
    b.probe(&place, spec);
}

/// Why an endpoint key outside this importer's reach is not imported; `None` for the ones that
/// only change Gatus' own pages or are reported with the endpoint's type.
fn endpoint_setting(key: &str) -> Option<&'static str> {
    match key {
        "ui" | "ssh" => None,
        "maintenance-windows" => Some("maintenance windows are not imported; plan maintenance in Triage"),
        "store" | "always-run" => Some("suite settings are not imported"),
        _ => Some("not imported: Triage has no such setting"),
    }
}

/// The probe's kind and address, from the URL's scheme (or the `dns:` block).
fn target(b: &mut Builder, place: &str, e: &Endpoint, name: &str, service: &str) -> Option<ProbeSpec> {
    if let Some(dns) = &e.dns {
        return dns_target(b, place, e, dns, name, service);
    }
    let url = e.url.trim();
    let lower = url.to_ascii_lowercase();
    let scheme = lower.split_once("://").map_or("", |(s, _)| s);
    let kind = match scheme {
        "http" | "https" => ProbeKind::Http,
        "tcp" => ProbeKind::Tcp,
        "tls" => ProbeKind::Tls,
        "icmp" => ProbeKind::Icmp,
        "grpc" | "grpcs" => ProbeKind::Grpc,
        "udp" | "sctp" | "starttls" | "ws" | "wss" | "ssh" => {
            b.note(place, format!("{scheme}:// endpoint \"{name}\" has no Triage counterpart; not imported"));
            return None;
        }
        _ => {
            b.note(place, format!("endpoint \"{name}\": '{url}' is not an address Gatus monitors; not imported"));
            return None;
        }
    };
    let mut spec = ProbeSpec::new(name, service, kind, Some(url));
    if kind == ProbeKind::Http {
        http_request(b, place, e, &mut spec);
    } else if !e.body.is_empty() {
        if kind == ProbeKind::Tcp {
            spec.send = Some(super::send_text(&e.body));
        } else {
            b.note(
                format!("{place}.body"),
                format!("Triage sends nothing on {} probes; the body is not imported", kind.as_str()),
            );
        }
    }
    Some(spec)
}

fn dns_target(b: &mut Builder, place: &str, e: &Endpoint, dns: &Dns, name: &str, service: &str) -> Option<ProbeSpec> {
    let Some(kind) = super::dns_type(&dns.query_type) else {
        let asked = &dns.query_type;
        b.note(format!("{place}.dns.query-type"), format!("Triage cannot query '{asked}' records; not imported"));
        return None;
    };
    let (host, port) = super::split_host_port(&e.url);
    let resolver = (!host.is_empty()).then_some((host.as_str(), port));
    let url = super::dns_url(resolver, &dns.query_name, kind);
    Some(ProbeSpec::new(name, service, ProbeKind::Dns, Some(&url)))
}

fn http_request(b: &mut Builder, place: &str, e: &Endpoint, spec: &mut ProbeSpec) {
    if !e.method.trim().is_empty() {
        spec.method = e.method.trim().to_ascii_uppercase();
    }
    for (name, value) in &e.headers {
        b.header(&format!("{place}.headers.{name}"), &mut spec.headers, name, value);
    }
    if e.body.is_empty() {
        return;
    }
    // Gatus fills these per endpoint, so they can be resolved once here; the others change per
    // request and are sent as written.
    let body = e
        .body
        .replace("[ENDPOINT_NAME]", &e.name)
        .replace("[ENDPOINT_GROUP]", &e.group)
        .replace("[ENDPOINT_URL]", &e.url);
    if body.contains("[LOCAL_ADDRESS]") || body.contains("[RANDOM_STRING_") {
        b.note(format!("{place}.body"), "placeholders Gatus fills per request are sent as written");
    }
    if e.graphql {
        spec.body = Some(serde_json::json!({ "query": body }).to_string());
        spec.headers.entry("content-type".to_string()).or_insert_with(|| "application/json".to_string());
    } else {
        spec.body = Some(body);
    }
}

fn schedule(b: &mut Builder, place: &str, e: &Endpoint, spec: &mut ProbeSpec) {
    let interval_place = format!("{place}.interval");
    let interval_ms = duration_or(b, &interval_place, e.interval.as_deref(), GATUS_INTERVAL_MS);
    spec.interval_secs = b.interval(&interval_place, interval_ms);
    let timeout_place = format!("{place}.client.timeout");
    let raw_timeout = e.client.as_ref().and_then(|c| c.timeout.as_deref());
    let timeout_ms = duration_or(b, &timeout_place, raw_timeout, GATUS_TIMEOUT_MS);
    spec.timeout_ms = b.timeout(&timeout_place, timeout_ms, spec.interval_secs);
}

/// A duration from the file, the default when absent or zero (as Gatus does), noted when it is
/// not a duration at all.
fn duration_or(b: &mut Builder, place: &str, raw: Option<&str>, default: u64) -> u64 {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else { return default };
    match super::duration_ms(raw) {
        Some(0) => default,
        Some(ms) => ms,
        None => {
            b.note(place, format!("'{raw}' is not a duration; {} s used", default / 1000));
            default
        }
    }
}

fn client(b: &mut Builder, place: &str, e: &Endpoint, spec: &mut ProbeSpec) {
    let default = Client::default();
    let client = e.client.as_ref().unwrap_or(&default);
    if spec.kind == ProbeKind::Http {
        spec.follow_redirects = !client.ignore_redirect;
        if spec.follow_redirects {
            spec.max_redirects = GO_MAX_REDIRECTS;
        }
    }
    let url = spec.url.as_deref().unwrap_or("").to_ascii_lowercase();
    let encrypted = ["https://", "tls://", "grpcs://"].iter().any(|s| url.starts_with(s));
    if client.insecure && encrypted {
        spec.tls.insecure_skip_verify = true;
    }
    for (key, value) in &client.other {
        if is_set(value) {
            b.note(format!("{place}.client.{key}"), client_setting(key));
        }
    }
}

fn client_setting(key: &str) -> &'static str {
    match key {
        "dns-resolver" => "custom resolvers are not imported; Triage uses the system's",
        "proxy-url" => "proxies are not imported; Triage connects to targets directly",
        "oauth2" | "identity-aware-proxy" => {
            "token-based authentication is not imported; add an Authorization header to the probe"
        }
        "tls" => "client certificates (mTLS) are not imported",
        "tunnel" => "SSH tunnels are not imported",
        "network" => "the IP family choice is not imported; Triage uses the first address the system resolver returns",
        _ => "not imported: Triage has no such setting",
    }
}

/// Accepted status codes gathered from every `[STATUS]` condition (they must all hold).
struct StatusBounds {
    min: u16,
    max: u16,
    one_of: Option<Vec<u16>>,
    seen: bool,
}

impl Default for StatusBounds {
    fn default() -> Self {
        Self { min: 100, max: 599, one_of: None, seen: false }
    }
}

impl StatusBounds {
    fn add(&mut self, op: &str, right: &str) -> Option<String> {
        if op == "==" {
            let codes: Option<Vec<u16>> = match function_args(right, "any(") {
                Some(list) => list.split(',').map(|c| c.trim().parse().ok()).collect(),
                None => right.parse().ok().map(|c| vec![c]),
            };
            let Some(codes) = codes else {
                return Some(format!("'{right}' is not a list of status codes Triage can check"));
            };
            self.one_of = Some(match self.one_of.take() {
                Some(before) => before.into_iter().filter(|c| codes.contains(c)).collect(),
                None => codes,
            });
            self.seen = true;
            return None;
        }
        let Ok(n) = right.parse::<u16>() else {
            return Some(format!("'{right}' is not a status code"));
        };
        match op {
            "<" => self.max = self.max.min(n.saturating_sub(1)),
            "<=" => self.max = self.max.min(n),
            ">" => self.min = self.min.max(n.saturating_add(1)),
            ">=" => self.min = self.min.max(n),
            _ => return Some("Triage cannot exclude a single status code; list the accepted ones".into()),
        }
        self.seen = true;
        None
    }

    fn apply(self, b: &mut Builder, place: &str, spec: &mut ProbeSpec) {
        let at = format!("{place}.conditions");
        if !self.seen {
            b.note(at, "no [STATUS] condition: Gatus accepted any status, Triage's default (200–399) applies");
            return;
        }
        let (min, max) = (self.min, self.max);
        let codes: BTreeSet<u16> = match self.one_of {
            Some(list) => list.into_iter().filter(|c| (min..=max).contains(c)).collect(),
            None => (min..=max).collect(),
        };
        spec.assertions.status = super::status_spec(&codes);
        if spec.assertions.status.is_none() {
            b.note(at, "the [STATUS] conditions admit no status code together; Triage's default (200–399) applies");
        }
    }
}

fn conditions(b: &mut Builder, place: &str, e: &Endpoint, spec: &mut ProbeSpec) {
    let mut status = StatusBounds::default();
    for (j, text) in e.conditions.iter().enumerate() {
        if let Some(why) = condition(spec, &mut status, text) {
            b.note(format!("{place}.conditions[{j}]"), why);
        }
    }
    if spec.kind == ProbeKind::Http {
        status.apply(b, place, spec);
    }
}

/// Maps one condition onto the probe; the note to record when it did not map exactly.
fn condition(spec: &mut ProbeSpec, status: &mut StatusBounds, text: &str) -> Option<String> {
    let Some((left, op, right)) = split_condition(text) else {
        return Some("not a condition of the form '<value> <operator> <value>'".into());
    };
    match left {
        "[CONNECTED]" if op == "==" && right == "true" => None,
        "[CONNECTED]" => Some("only [CONNECTED] == true has a Triage counterpart".into()),
        "[STATUS]" if spec.kind == ProbeKind::Http => status.add(op, right),
        "[STATUS]" => Some(format!("[STATUS] means nothing Triage checks on {} probes", spec.kind.as_str())),
        "[RESPONSE_TIME]" => response_time(spec, op, right),
        "[CERTIFICATE_EXPIRATION]" => certificate(spec, op, right),
        "[DNS_RCODE]" => rcode(spec, op, right),
        "[BODY]" => whole_body(spec, op, right),
        "[IP]" => Some("the resolved address is not checked by Triage".into()),
        "[DOMAIN_EXPIRATION]" => Some("domain expiry is not checked by Triage".into()),
        _ => {
            if let Some(path) = left.strip_prefix("[BODY]") {
                body_path(spec, path, op, right)
            } else if let Some(inner) = function_args(left, "has(") {
                has(spec, inner, op, right)
            } else if left.starts_with("len(") {
                Some("lengths cannot be checked by Triage".into())
            } else {
                Some("not a condition Triage can express".into())
            }
        }
    }
}

fn split_condition(text: &str) -> Option<(&str, &'static str, &str)> {
    OPERATORS.into_iter().find_map(|op| text.split_once(&format!(" {op} ")).map(|(l, r)| (l.trim(), op, r.trim())))
}

/// The text inside `name(…)`, e.g. `function_args("any(1, 2)", "any(")` is `1, 2`.
fn function_args<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.strip_prefix(prefix)?.strip_suffix(')')
}

/// A number of milliseconds, written plainly or as a duration (Gatus accepts both).
fn number_ms(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().or_else(|| super::duration_ms(text))
}

fn response_time(spec: &mut ProbeSpec, op: &str, right: &str) -> Option<String> {
    if !matches!(op, "<" | "<=") {
        return Some("only an upper limit on the response time has a counterpart".into());
    }
    let Some(ms) = number_ms(right).and_then(|ms| u32::try_from(ms).ok()) else {
        return Some(format!("'{right}' is not a number of milliseconds"));
    };
    if ms == 0 || ms >= spec.timeout_ms {
        return Some(format!(
            "a limit of {ms} ms is not below the probe's {} ms timeout; not imported",
            spec.timeout_ms
        ));
    }
    spec.degraded_after_ms = Some(ms);
    Some(format!("approximated: Gatus fails the check when slower than {ms} ms; Triage marks it degraded instead"))
}

fn certificate(spec: &mut ProbeSpec, op: &str, right: &str) -> Option<String> {
    if !matches!(op, ">" | ">=") {
        return Some("only a lower limit on the certificate's remaining validity has a counterpart".into());
    }
    let Some(ms) = number_ms(right) else {
        return Some(format!("'{right}' is not a duration"));
    };
    let days = ms.div_ceil(DAY_MS).max(1);
    spec.assertions.cert_min_days = Some(u32::try_from(days).unwrap_or(u32::MAX));
    if !ms.is_multiple_of(DAY_MS) {
        return Some(format!("approximated: Triage counts whole days; {right} rounded up to {days} day(s)"));
    }
    None
}

fn rcode(spec: &mut ProbeSpec, op: &str, right: &str) -> Option<String> {
    let upper = right.to_ascii_uppercase();
    if spec.kind != ProbeKind::Dns || op != "==" || !RCODES.contains(&upper.as_str()) {
        return Some("only [DNS_RCODE] == <code> on DNS endpoints has a Triage counterpart".into());
    }
    // NOERROR is what Triage expects unless told otherwise; leaving it unset keeps the probe plain.
    spec.rcode = (upper != "NOERROR").then_some(upper);
    None
}

/// The right side of `==` as a pattern: `pat(…)` in shell style, a plain value as exact text.
fn pattern(right: &str) -> Option<Glob> {
    if let Some(inner) = function_args(right, "pat(") {
        return super::glob(inner);
    }
    if right.starts_with("any(") || right.starts_with('[') {
        return None;
    }
    Some(Glob::Exact(right.to_string()))
}

/// `[BODY]` as a whole: text or a pattern on HTTP, the expected answer on TCP and DNS.
fn whole_body(spec: &mut ProbeSpec, op: &str, right: &str) -> Option<String> {
    let glob = if op == "==" { pattern(right) } else { None };
    let Some(glob) = glob else {
        return Some("only [BODY] == <text or pat(…)> has a Triage counterpart".into());
    };
    match (spec.kind, glob) {
        (ProbeKind::Http, glob) => body_check(spec, glob),
        (ProbeKind::Tcp, Glob::Contains(text)) if spec.expect.is_none() => {
            spec.expect = Some(text);
            None
        }
        (ProbeKind::Dns, Glob::Exact(answer)) => {
            spec.answers.push(answer);
            None
        }
        (kind, _) => Some(format!("this check of the answer has no counterpart on {} probes", kind.as_str())),
    }
}

fn body_check(spec: &mut ProbeSpec, glob: Glob) -> Option<String> {
    let a = &mut spec.assertions;
    match glob {
        Glob::Contains(text) if a.body_contains.is_none() => a.body_contains = Some(text),
        other if a.body_regex.is_none() => {
            a.body_regex = Some(match other {
                Glob::Contains(text) => regex::escape(&text),
                Glob::Exact(text) => format!("^{}$", regex::escape(&text)),
                Glob::Regex(re) => re,
            });
        }
        _ => return Some("Triage checks one body pattern besides one text; not imported".into()),
    }
    None
}

/// `[BODY].a.b <op> value` as a JSONPath assertion.
fn body_path(spec: &mut ProbeSpec, path: &str, op: &str, right: &str) -> Option<String> {
    if spec.kind == ProbeKind::Grpc {
        // Triage's gRPC check passes only on SERVING: this condition is what it checks anyway.
        return if path == ".status" && op == "==" && right == "SERVING" {
            None
        } else {
            Some("only [BODY].status == SERVING has a counterpart on gRPC probes".into())
        };
    }
    if spec.kind != ProbeKind::Http {
        return Some(format!("JSON bodies are not read on {} probes", spec.kind.as_str()));
    }
    let Some(json_path) = super::dotted_to_jsonpath(path.strip_prefix('.').unwrap_or(path)) else {
        return Some(format!("the path '[BODY]{path}' cannot be written as JSONPath"));
    };
    let (op, value) = match (op, pattern(right)) {
        ("==", Some(Glob::Exact(text))) => (CompareOp::Eq, super::literal(&text)),
        ("!=", Some(Glob::Exact(text))) => (CompareOp::Ne, super::literal(&text)),
        ("==", Some(Glob::Contains(text))) => (CompareOp::Contains, serde_json::Value::String(text)),
        ("==", Some(Glob::Regex(re))) => (CompareOp::Matches, serde_json::Value::String(re)),
        ("<" | "<=" | ">" | ">=", _) => {
            let value = super::literal(right);
            if !value.is_number() {
                return Some(format!("'{right}' is not a number to compare with"));
            }
            let op = match op {
                "<" => CompareOp::Lt,
                "<=" => CompareOp::Le,
                ">" => CompareOp::Gt,
                _ => CompareOp::Ge,
            };
            (op, value)
        }
        _ => return Some("this comparison has no Triage counterpart".into()),
    };
    spec.assertions.json_path.push(JsonPathAssertion { path: json_path, op, value: Some(value) });
    None
}

/// `has([BODY].path) == true`: the path must exist.
fn has(spec: &mut ProbeSpec, inner: &str, op: &str, right: &str) -> Option<String> {
    let Some(path) = inner.strip_prefix("[BODY]") else {
        return Some("has() of anything but [BODY] has no Triage counterpart".into());
    };
    let json_path = super::dotted_to_jsonpath(path.strip_prefix('.').unwrap_or(path));
    match (spec.kind, json_path, op, right) {
        (ProbeKind::Http, Some(json_path), "==", "true") => {
            spec.assertions.json_path.push(JsonPathAssertion { path: json_path, op: CompareOp::Exists, value: None });
            None
        }
        _ => Some("Triage can require a path to exist, not to be absent".into()),
    }
}

/// The enabled alerts' thresholds become the confirmation counts; the alerts themselves are not
/// imported. Without alerts, Triage's defaults already equal Gatus' alert defaults.
fn alerts(b: &mut Builder, place: &str, alerts: &[Alert], spec: &mut ProbeSpec) {
    if alerts.is_empty() {
        return;
    }
    let count = |v: i64, default: i64| {
        let n = if v > 0 { v } else { default };
        u32::try_from(n.min(100)).unwrap_or(1)
    };
    let enabled = || alerts.iter().filter(|a| a.enabled.unwrap_or(true));
    if let Some(f) = enabled().map(|a| count(a.failure_threshold, GATUS_FAILURE_THRESHOLD)).min() {
        spec.failures_to_down = f;
    }
    if let Some(s) = enabled().map(|a| count(a.success_threshold, GATUS_SUCCESS_THRESHOLD)).min() {
        spec.successes_to_up = s;
    }
    let kinds: Vec<&str> = alerts.iter().map(|a| a.kind.as_str()).collect();
    b.note(
        format!("{place}.alerts"),
        format!(
            "alerts ({}) are not imported; set up notification rules in Triage (their thresholds became the confirmation counts)",
            kinds.join(", ")
        ),
    );
}

/// An external endpoint: results pushed by an agent, a push probe in Triage.
fn external(b: &mut Builder, i: usize, e: &External) {
    let place = format!("external-endpoints[{i}]");
    let name = super::clean_name(&e.name, &format!("external endpoint {i}"));
    let service = if e.group.trim().is_empty() { name.clone() } else { super::clean_name(&e.group, &name) };
    let mut spec = ProbeSpec::new(&name, &service, ProbeKind::Push, None);
    let heartbeat = e.heartbeat.as_ref().and_then(|h| h.interval.as_deref());
    let ms = duration_or(b, &format!("{place}.heartbeat.interval"), heartbeat, 0);
    if ms == 0 {
        b.note(
            format!("{place}.heartbeat"),
            "Gatus expected no rhythm of pushes, Triage needs one: 1 day used, set the real one",
        );
        spec.interval_secs = MAX_INTERVAL_SECS;
    } else {
        spec.interval_secs = b.interval(&format!("{place}.heartbeat.interval"), ms);
    }
    // A push probe's timeout is never used, but it must still fit its interval.
    spec.timeout_ms = spec.timeout_ms.min(spec.interval_secs * 500).max(1);
    if !e.token.is_empty() {
        b.note(format!("{place}.token"), "agents pushing to Gatus must be pointed at this probe's Triage push address");
    }
    alerts(b, &place, &e.alerts, &mut spec);
    spec.enabled = e.enabled.unwrap_or(true);
    b.probe(&place, spec);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use app::model::{CompareOp, Criticality, JsonPathAssertion, ProbeKind, ProbeSpec, ServiceInput, StatusSpec};
    use serde_json::json;

    use super::plan;

    const CONFIG: &str = include_str!("../../../tests/fixtures/import/gatus-config.yaml");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/import/gatus-malformed.yaml");

    fn jp(path: &str, op: CompareOp, value: Option<serde_json::Value>) -> JsonPathAssertion {
        JsonPathAssertion { path: path.into(), op, value }
    }

    fn expected_probes() -> Vec<ProbeSpec> {
        let mut storefront = ProbeSpec::new("storefront", "shop", ProbeKind::Http, Some("https://shop.example/health"));
        storefront.interval_secs = 30;
        storefront.timeout_ms = 5_000;
        storefront.follow_redirects = true;
        storefront.max_redirects = 10;
        storefront.degraded_after_ms = Some(300);
        storefront.assertions.status = Some(StatusSpec::OneOf(vec![200]));
        storefront.assertions.json_path = vec![jp("$.status", CompareOp::Eq, Some(json!("UP")))];
        storefront.assertions.cert_min_days = Some(2);
        storefront.failures_to_down = 2;
        storefront.successes_to_up = 2;

        let mut orders =
            ProbeSpec::new("orders-api", "shop", ProbeKind::Http, Some("https://api.shop.example/graphql"));
        orders.method = "POST".into();
        orders.headers = BTreeMap::from([
            ("authorization".to_string(), "Bearer test-token".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ]);
        orders.body = Some(json!({ "query": "{ orders(first: 1) { id } }\n" }).to_string());
        orders.interval_secs = 60;
        orders.timeout_ms = 2_000;
        orders.tls.insecure_skip_verify = true;
        orders.assertions.status = Some(StatusSpec::Range { min: 200, max: 299 });
        orders.assertions.json_path = vec![jp("$.data.orders[0].id", CompareOp::Gt, Some(json!(0)))];

        let mut search =
            ProbeSpec::new("search", "search", ProbeKind::Http, Some("http://127.0.0.1:9200/_cluster/health"));
        search.interval_secs = 60;
        search.timeout_ms = 10_000;
        search.follow_redirects = true;
        search.max_redirects = 10;
        search.assertions.status = Some(StatusSpec::OneOf(vec![200, 203]));
        search.assertions.body_contains = Some("green".into());
        search.assertions.json_path =
            vec![jp("$.number_of_nodes", CompareOp::Ge, Some(json!(3))), jp("$.cluster_name", CompareOp::Exists, None)];

        let mut redis = ProbeSpec::new("redis", "cache", ProbeKind::Tcp, Some("tcp://127.0.0.1:6379"));
        redis.send = Some("PING\\r\\n".into());
        redis.expect = Some("PONG".into());
        redis.interval_secs = 10;
        redis.timeout_ms = 8_000;
        redis.degraded_after_ms = Some(50);

        let mut gateway = ProbeSpec::new("gateway", "network", ProbeKind::Icmp, Some("icmp://127.0.0.1"));
        gateway.interval_secs = 120;
        gateway.timeout_ms = 10_000;

        let mut dns =
            ProbeSpec::new("shop-a-record", "network", ProbeKind::Dns, Some("dns://127.0.0.53/shop.example?type=A"));
        dns.interval_secs = 60;
        dns.timeout_ms = 10_000;
        dns.answers = vec!["127.0.0.1".into()];

        let mut missing = ProbeSpec::new(
            "missing-record",
            "network",
            ProbeKind::Dns,
            Some("dns://[::1]:5353/gone.shop.test?type=AAAA"),
        );
        missing.interval_secs = 300;
        missing.timeout_ms = 10_000;
        missing.rcode = Some("NXDOMAIN".into());

        let mut ldaps =
            ProbeSpec::new("ldaps-certificate", "directory", ProbeKind::Tls, Some("tls://ldap.example:636"));
        ldaps.interval_secs = 1_800;
        ldaps.timeout_ms = 5_000;
        ldaps.assertions.cert_min_days = Some(2);

        let mut grpc = ProbeSpec::new("cart-grpc", "shop", ProbeKind::Grpc, Some("grpcs://cart.shop.example:443"));
        grpc.interval_secs = 60;
        grpc.timeout_ms = 3_000;
        grpc.tls.insecure_skip_verify = true;

        let mut legacy = ProbeSpec::new("legacy-admin", "shop", ProbeKind::Http, Some("http://admin.shop.test/login"));
        legacy.interval_secs = 1;
        legacy.timeout_ms = 800;
        legacy.enabled = false;
        legacy.follow_redirects = true;
        legacy.max_redirects = 10;
        legacy.assertions.body_contains = Some("Sign in".into());

        let mut backup = ProbeSpec::new("nightly-backup", "jobs", ProbeKind::Push, None);
        backup.interval_secs = 43_200;

        let mut etl = ProbeSpec::new("etl-import", "jobs", ProbeKind::Push, None);
        etl.interval_secs = 86_400;

        vec![storefront, orders, search, redis, gateway, dns, missing, ldaps, grpc, legacy, backup, etl]
    }

    #[test]
    fn every_mapped_endpoint_becomes_the_expected_probe() {
        let plan = plan("gatus-config.yaml", CONFIG).expect("the fixture parses");
        let expected = expected_probes();
        assert_eq!(plan.probes.len(), expected.len(), "{:#?}", plan.probes);
        for (got, want) in plan.probes.iter().zip(&expected) {
            assert_eq!(got, want, "probe {}", want.name);
        }
    }

    #[test]
    fn groups_become_services() {
        let plan = plan("gatus-config.yaml", CONFIG).expect("the fixture parses");
        let service = |name: &str, tags: &[&str]| ServiceInput {
            name: name.into(),
            description: String::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            criticality: Criticality::default(),
        };
        assert_eq!(
            plan.services,
            vec![
                service("shop", &[]),
                service("search", &["team:search"]),
                service("cache", &[]),
                service("network", &[]),
                service("directory", &[]),
                service("jobs", &[]),
            ]
        );
    }

    #[test]
    fn what_could_not_be_mapped_is_listed_with_its_place() {
        let plan = plan("gatus-config.yaml", CONFIG).expect("the fixture parses");
        let places: Vec<&str> = plan.unmapped.iter().map(|u| u.place.as_str()).collect();
        assert_eq!(
            places,
            [
                "alerting",
                "maintenance",
                "suites",
                "endpoints[0].conditions[1]",
                "endpoints[0].alerts",
                "endpoints[1].headers.Host",
                "endpoints[1].conditions[3]",
                "endpoints[1].conditions[4]",
                "endpoints[2].maintenance-windows",
                "endpoints[3].client.timeout",
                "endpoints[3].conditions[2]",
                "endpoints[4].conditions[1]",
                "endpoints[7].conditions[1]",
                "endpoints[7].conditions[2]",
                "endpoints[9]",
                "endpoints[10]",
                "endpoints[11].retries",
                "endpoints[11].interval",
                "endpoints[11].client.timeout",
                "endpoints[11].conditions[0]",
                "endpoints[11].conditions",
                "endpoints[12].dns.query-type",
                "external-endpoints[0].token",
                "external-endpoints[0].alerts",
                "external-endpoints[1].heartbeat",
                "external-endpoints[1].token",
            ]
        );
        let what = |place: &str| plan.unmapped.iter().find(|u| u.place == place).map(|u| u.what.as_str());
        assert_eq!(
            what("endpoints[0].conditions[1]"),
            Some("approximated: Gatus fails the check when slower than 300 ms; Triage marks it degraded instead")
        );
        assert_eq!(
            what("endpoints[9]"),
            Some("starttls:// endpoint \"smtp-starttls\" has no Triage counterpart; not imported")
        );
    }

    #[test]
    fn a_malformed_file_names_the_file_and_position_on_one_line() {
        let err = plan("gatus-malformed.yaml", MALFORMED).expect_err("must be refused");
        let message = err.to_string();
        assert!(message.starts_with("gatus-malformed.yaml: line 9, column "), "{message}");
        assert!(message.contains("endpoints[1].conditions"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn broken_yaml_is_refused_with_a_position_too() {
        let err = plan("broken.yaml", "endpoints:\n  - name: a\n   url: b\n").expect_err("bad indentation");
        let message = err.to_string();
        assert!(message.starts_with("broken.yaml: line "), "{message}");
        assert!(message.contains(", column "), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}
