//! Uptime Kuma's backup file ("Settings → Backup → Export", a JSON object with `version`,
//! `notificationList` and `monitorList`; the monitors are what Kuma's `Monitor.toJSON` gives).
//!
//! | Kuma | Triage |
//! |---|---|
//! | `http`, `keyword`, `json-query` | `http` probe: method, headers, body, accepted status codes, redirects, `ignoreTls`, keyword as `body_contains`, a plain JSONata path as a JSONPath assertion |
//! | `port` | `tcp://hostname:port` |
//! | `ping` | `icmp://hostname` |
//! | `dns` | `dns://server[:port]/hostname?type=T` |
//! | `push` | `push` probe (agents must be pointed at Triage) |
//! | `grpc-keyword` | `grpc` health check of the same address (the called method and keyword are not) |
//! | `group` | the service of the monitors inside it; other monitors get a service of their own name |
//! | `interval`, `timeout` (s), `maxretries` | interval, timeout (ms), `failures_to_down = maxretries + 1`; Kuma is up again after one success |
//! | `active: false` | `enabled: false` |
//! | tags | tags of the monitor's service (`name:value`) |
//!
//! Everything else (notifications, proxies, authentication, inverted keywords, upside-down mode,
//! other monitor types such as docker, real-browser, mqtt or databases) is listed as unmapped.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use app::model::{CompareOp, JsonPathAssertion, ProbeKind, ProbeSpec};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::{Builder, ImportError, ImportPlan};

/// Kuma's defaults for a monitor that does not say (its edit form starts with these).
const KUMA_INTERVAL_SECS: f64 = 60.0;
const KUMA_MAX_REDIRECTS: u32 = 10;
/// Kuma warns about certificates 21, 14 and 7 days before expiry unless changed in its settings
/// (which the backup does not carry); Triage marks the probe degraded from the earliest of those.
const CERT_WARNING_DAYS: u32 = 21;
const DEFAULT_PACKET_SIZE: f64 = 56.0;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Backup {
    #[serde(default)]
    notification_list: Vec<IgnoredAny>,
    #[serde(default)]
    proxy_list: Vec<IgnoredAny>,
    monitor_list: Vec<Monitor>,
}

/// The fields of a monitor this importer reads. Flags are kept as JSON values because older
/// Kuma versions wrote them as 0/1 and newer ones as booleans.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Monitor {
    id: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    parent: Option<i64>,
    url: Option<String>,
    method: Option<String>,
    headers: Value,
    body: Option<String>,
    #[serde(rename = "httpBodyEncoding")]
    body_encoding: Option<String>,
    interval: Option<f64>,
    #[serde(rename = "retryInterval")]
    retry_interval: Option<f64>,
    maxretries: Option<f64>,
    timeout: Option<f64>,
    active: Value,
    keyword: Option<String>,
    #[serde(rename = "invertKeyword")]
    invert_keyword: Value,
    #[serde(rename = "upsideDown")]
    upside_down: Value,
    #[serde(rename = "ignoreTls")]
    ignore_tls: Value,
    #[serde(rename = "expiryNotification")]
    expiry_notification: Value,
    #[serde(rename = "jsonPath")]
    json_path: Option<String>,
    #[serde(rename = "jsonPathOperator")]
    json_path_operator: Option<String>,
    #[serde(rename = "expectedValue")]
    expected_value: Value,
    accepted_statuscodes: Option<Vec<String>>,
    maxredirects: Option<f64>,
    hostname: Option<String>,
    port: Option<f64>,
    dns_resolve_type: Option<String>,
    dns_resolve_server: Option<String>,
    #[serde(rename = "packetSize")]
    packet_size: Option<f64>,
    #[serde(rename = "notificationIDList")]
    notifications: Option<BTreeMap<String, Value>>,
    tags: Option<Vec<Tag>>,
    #[serde(rename = "grpcUrl")]
    grpc_url: Option<String>,
    #[serde(rename = "grpcServiceName")]
    grpc_service: Option<String>,
    #[serde(rename = "grpcMethod")]
    grpc_method: Option<String>,
    #[serde(rename = "grpcBody")]
    grpc_body: Option<String>,
    #[serde(rename = "grpcEnableTls")]
    grpc_tls: Value,
    #[serde(rename = "authMethod")]
    auth_method: Option<String>,
    #[serde(rename = "tlsCa")]
    tls_ca: Option<String>,
    #[serde(rename = "proxyId")]
    proxy_id: Value,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Tag {
    name: String,
    value: Option<String>,
}

/// Reads a Kuma backup; `file_name` only names the file in error messages.
pub fn plan(file_name: &str, text: &str) -> Result<ImportPlan, ImportError> {
    let backup: Backup = serde_json::from_str(text).map_err(|e| super::json_error(file_name, &e))?;
    let mut b = Builder::default();
    if !backup.notification_list.is_empty() {
        let n = backup.notification_list.len();
        b.note(
            "notificationList",
            format!("{n} notification provider(s) not imported; set up notification rules in Triage"),
        );
    }
    if !backup.proxy_list.is_empty() {
        b.note("proxyList", "proxies are not imported; Triage connects to targets directly");
    }
    let groups: HashMap<i64, &Monitor> = backup
        .monitor_list
        .iter()
        .filter(|m| m.kind.as_deref() == Some("group"))
        .filter_map(|m| m.id.map(|id| (id, m)))
        .collect();
    for (i, m) in backup.monitor_list.iter().enumerate() {
        let name = super::clean_name(m.name.as_deref().unwrap_or(""), &format!("monitor {}", m.id.unwrap_or(0)));
        let place = format!("monitorList[{i}] ({name:?})");
        notifications(&mut b, &place, m);
        if m.kind.as_deref() == Some("group") {
            continue;
        }
        let service = service_of(&mut b, m, &name, &groups);
        monitor(&mut b, &place, m, &name, &service);
    }
    Ok(b.finish())
}

/// The service a monitor goes into: its group's, or one named after the monitor. Descriptions
/// and tags of both are remembered for the service.
fn service_of(b: &mut Builder, m: &Monitor, name: &str, groups: &HashMap<i64, &Monitor>) -> String {
    let group = m.parent.and_then(|p| groups.get(&p));
    let service = match group {
        Some(g) => super::clean_name(g.name.as_deref().unwrap_or(""), &format!("group {}", g.id.unwrap_or(0))),
        None => name.to_string(),
    };
    if let Some(g) = group {
        b.describe_service(&service, g.description.as_deref().unwrap_or(""), &tags(g));
        b.describe_service(&service, "", &tags(m));
    } else {
        b.describe_service(&service, m.description.as_deref().unwrap_or(""), &tags(m));
    }
    service
}

fn tags(m: &Monitor) -> Vec<String> {
    let mut out = Vec::new();
    for tag in m.tags.iter().flatten() {
        let value = tag.value.as_deref().map(str::trim).unwrap_or("");
        let text = if value.is_empty() { tag.name.trim().to_string() } else { format!("{}:{value}", tag.name.trim()) };
        if !text.is_empty() && !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

fn notifications(b: &mut Builder, place: &str, m: &Monitor) {
    let on = m.notifications.iter().flatten().filter(|(_, v)| truthy(v, false)).count();
    if on > 0 {
        b.note(
            format!("{place}.notificationIDList"),
            "notifications are not imported; set up notification rules in Triage",
        );
    }
}

fn monitor(b: &mut Builder, place: &str, m: &Monitor, name: &str, service: &str) {
    let kind = m.kind.as_deref().unwrap_or("http");
    let spec = match kind {
        "http" | "keyword" | "json-query" => Some(http(b, place, m, name, service)),
        "port" => tcp(b, place, m, name, service),
        "ping" => icmp(b, place, m, name, service),
        "dns" => dns(b, place, m, name, service),
        "push" => Some(push(b, place, name, service)),
        "grpc-keyword" => Some(grpc(b, place, m, name, service)),
        other => {
            b.note(place, format!("monitor type '{other}' has no Triage counterpart; not imported"));
            None
        }
    };
    let Some(mut spec) = spec else { return };
    common(b, place, m, &mut spec);
    b.probe(place, spec);
}

/// Settings every kind shares: schedule, confirmation, enabled state.
fn common(b: &mut Builder, place: &str, m: &Monitor, spec: &mut ProbeSpec) {
    let interval_secs = m.interval.unwrap_or(KUMA_INTERVAL_SECS);
    spec.interval_secs = b.interval(&format!("{place}.interval"), secs_to_ms(interval_secs));
    if spec.kind == ProbeKind::Push {
        // A push probe's timeout is never used, but it must still fit its interval.
        spec.timeout_ms = spec.timeout_ms.min(spec.interval_secs * 500).max(1);
    } else {
        // Kuma itself uses 80 % of the interval when the timeout is missing or 0.
        let timeout = m.timeout.filter(|t| *t > 0.0).unwrap_or(f64::from(spec.interval_secs) * 0.8);
        spec.timeout_ms = b.timeout(&format!("{place}.timeout"), secs_to_ms(timeout), spec.interval_secs);
    }
    let retries = m.maxretries.map_or(0, whole);
    spec.failures_to_down = retries.saturating_add(1).min(100);
    if retries >= 100 {
        b.note(
            format!("{place}.maxretries"),
            format!("{retries} retries is more than Triage allows; 100 failures confirm down"),
        );
    }
    // Kuma reports a monitor up again on its first successful check.
    spec.successes_to_up = 1;
    if retries > 0
        && let Some(retry) = m.retry_interval
        && retry > 0.0
        && whole(retry) != spec.interval_secs
    {
        b.note(
            format!("{place}.retryInterval"),
            format!("Kuma retried every {} s; Triage checks at the probe's interval while confirming", whole(retry)),
        );
    }
    spec.enabled = truthy(&m.active, true);
    if truthy(&m.upside_down, false) {
        spec.enabled = false;
        b.note(
            format!("{place}.upsideDown"),
            "upside-down mode (up when the check fails) has no Triage counterpart; imported disabled",
        );
    }
    if !m.proxy_id.is_null() {
        b.note(format!("{place}.proxyId"), "proxies are not imported; Triage connects to targets directly");
    }
}

fn http(b: &mut Builder, place: &str, m: &Monitor, name: &str, service: &str) -> ProbeSpec {
    let url = m.url.as_deref().unwrap_or("").trim();
    let mut spec = ProbeSpec::new(name, service, ProbeKind::Http, Some(url));
    if let Some(method) = m.method.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        spec.method = method.to_ascii_uppercase();
    }
    headers(b, place, m, &mut spec);
    body(m, &mut spec);
    redirects(b, place, m, &mut spec);
    statuses(b, place, m, &mut spec);
    spec.tls.insecure_skip_verify = truthy(&m.ignore_tls, false);
    if truthy(&m.expiry_notification, false) && url.to_ascii_lowercase().starts_with("https://") {
        spec.assertions.cert_min_days = Some(CERT_WARNING_DAYS);
    }
    auth(b, place, m, &mut spec);
    match m.kind.as_deref() {
        Some("keyword") => keyword(b, place, m, &mut spec),
        Some("json-query") => json_query(b, place, m, &mut spec),
        _ => {}
    }
    spec
}

/// Kuma's headers are a JSON object written as text (older exports may hold the object itself).
fn headers(b: &mut Builder, place: &str, m: &Monitor, spec: &mut ProbeSpec) {
    let parsed = match &m.headers {
        Value::Null => return,
        Value::String(s) if s.trim().is_empty() => return,
        Value::String(s) => serde_json::from_str::<Value>(s).ok(),
        other => Some(other.clone()),
    };
    let Some(Value::Object(map)) = parsed else {
        b.note(format!("{place}.headers"), "not a JSON object; headers not imported");
        return;
    };
    for (name, value) in &map {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        b.header(&format!("{place}.headers.{name}"), &mut spec.headers, name, &text);
    }
}

/// Kuma sends a JSON body (the default encoding) or XML with the matching content type, unless
/// the monitor's headers name one.
fn body(m: &Monitor, spec: &mut ProbeSpec) {
    let Some(body) = m.body.as_deref().filter(|s| !s.trim().is_empty()) else { return };
    spec.body = Some(body.to_string());
    let content_type = match m.body_encoding.as_deref() {
        None | Some("json") => Some("application/json"),
        Some("xml") => Some("text/xml; charset=utf-8"),
        Some(_) => None,
    };
    if let Some(ct) = content_type {
        spec.headers.entry("content-type".to_string()).or_insert_with(|| ct.to_string());
    }
}

fn redirects(b: &mut Builder, place: &str, m: &Monitor, spec: &mut ProbeSpec) {
    let max = m.maxredirects.map_or(KUMA_MAX_REDIRECTS, whole);
    spec.follow_redirects = max > 0;
    if max > 20 {
        b.note(format!("{place}.maxredirects"), format!("Triage follows at most 20 redirects, not {max}"));
    }
    if max > 0 {
        spec.max_redirects = max.min(20);
    }
}

/// Entries like `"200-299"` or `"418"`, all accepted.
fn statuses(b: &mut Builder, place: &str, m: &Monitor, spec: &mut ProbeSpec) {
    let entries = m.accepted_statuscodes.clone().unwrap_or_else(|| vec!["200-299".to_string()]);
    let mut codes = BTreeSet::new();
    for (j, entry) in entries.iter().enumerate() {
        let range = match entry.split_once('-') {
            Some((lo, hi)) => lo.trim().parse::<u16>().ok().zip(hi.trim().parse::<u16>().ok()),
            None => entry.trim().parse::<u16>().ok().map(|c| (c, c)),
        };
        match range {
            Some((lo, hi)) if lo <= hi && lo >= 100 && hi <= 599 => codes.extend(lo..=hi),
            _ => b.note(
                format!("{place}.accepted_statuscodes[{j}]"),
                format!("'{entry}' is not a status code or range of 100–599"),
            ),
        }
    }
    spec.assertions.status = super::status_spec(&codes);
    if spec.assertions.status.is_none() {
        b.note(format!("{place}.accepted_statuscodes"), "no usable status codes; Triage's default (200–399) applies");
    }
}

fn auth(b: &mut Builder, place: &str, m: &Monitor, spec: &mut ProbeSpec) {
    let method = m.auth_method.as_deref().map(str::trim).unwrap_or("");
    match method {
        "" | "null" => {}
        "mtls" => {
            if let Some(ca) = m.tls_ca.as_deref().filter(|s| !s.trim().is_empty()) {
                spec.tls.ca_pem = Some(ca.to_string());
            }
            b.note(format!("{place}.authMethod"), "client certificates (mTLS) are not imported; only the CA is");
        }
        other => b.note(
            format!("{place}.authMethod"),
            format!("'{other}' authentication is not imported; add an Authorization header to the probe"),
        ),
    }
}

fn keyword(b: &mut Builder, place: &str, m: &Monitor, spec: &mut ProbeSpec) {
    let Some(word) = m.keyword.as_deref().filter(|s| !s.is_empty()) else { return };
    if truthy(&m.invert_keyword, false) {
        b.note(
            format!("{place}.invertKeyword"),
            format!("Triage cannot require that the body lacks '{word}'; the keyword is not checked"),
        );
        return;
    }
    spec.assertions.body_contains = Some(word.to_string());
}

/// A plain JSONata path compared with the expected value; expressions beyond a path are not.
fn json_query(b: &mut Builder, place: &str, m: &Monitor, spec: &mut ProbeSpec) {
    let expression = m.json_path.as_deref().unwrap_or("").trim();
    let bare = expression.strip_prefix("$.").unwrap_or(expression);
    // In JSONata most other characters are operators, so only plain paths are converted.
    let plain =
        !bare.is_empty() && bare.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
    let Some(path) = super::dotted_to_jsonpath(bare).filter(|_| plain) else {
        b.note(
            format!("{place}.jsonPath"),
            format!("the JSONata expression '{expression}' is not a plain path; write it as a JSONPath assertion"),
        );
        return;
    };
    let expected = match &m.expected_value {
        Value::String(s) => super::literal(s),
        Value::Null => Value::String(String::new()),
        other => other.clone(),
    };
    let op = match m.json_path_operator.as_deref().unwrap_or("==") {
        "==" => CompareOp::Eq,
        "!=" => CompareOp::Ne,
        "<" => CompareOp::Lt,
        "<=" => CompareOp::Le,
        ">" => CompareOp::Gt,
        ">=" => CompareOp::Ge,
        "contains" => CompareOp::Contains,
        other => {
            b.note(
                format!("{place}.jsonPathOperator"),
                format!("operator '{other}' is not known; the value is not checked"),
            );
            return;
        }
    };
    if matches!(op, CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge) && !expected.is_number() {
        b.note(format!("{place}.expectedValue"), "an ordering needs a number; the value is not checked");
        return;
    }
    spec.assertions.json_path.push(JsonPathAssertion { path, op, value: Some(expected) });
}

fn tcp(b: &mut Builder, place: &str, m: &Monitor, name: &str, service: &str) -> Option<ProbeSpec> {
    let host = m.hostname.as_deref().unwrap_or("").trim();
    let Some(port) = m.port.map(whole).filter(|p| (1..=65_535).contains(p)) else {
        b.note(format!("{place}.port"), "a port monitor without a valid port; not imported");
        return None;
    };
    let url = format!("tcp://{}:{port}", super::url_host(host));
    Some(ProbeSpec::new(name, service, ProbeKind::Tcp, Some(&url)))
}

fn icmp(b: &mut Builder, place: &str, m: &Monitor, name: &str, service: &str) -> Option<ProbeSpec> {
    let host = m.hostname.as_deref().unwrap_or("").trim();
    if let Some(size) = m.packet_size
        && size != DEFAULT_PACKET_SIZE
    {
        b.note(
            format!("{place}.packetSize"),
            "Triage sends echo requests of its own size; the packet size is not imported",
        );
    }
    let url = format!("icmp://{}", super::url_host(host));
    Some(ProbeSpec::new(name, service, ProbeKind::Icmp, Some(&url)))
}

fn dns(b: &mut Builder, place: &str, m: &Monitor, name: &str, service: &str) -> Option<ProbeSpec> {
    let raw_type = m.dns_resolve_type.as_deref().unwrap_or("A");
    let Some(kind) = super::dns_type(raw_type) else {
        b.note(format!("{place}.dns_resolve_type"), format!("Triage cannot query {raw_type} records; not imported"));
        return None;
    };
    let servers = m.dns_resolve_server.as_deref().unwrap_or("").trim();
    let mut listed = servers.split(',').map(str::trim).filter(|s| !s.is_empty());
    let server = listed.next();
    if listed.next().is_some() {
        b.note(format!("{place}.dns_resolve_server"), "Triage asks one resolver; only the first is imported");
    }
    let port = m.port.map(whole).and_then(|p| u16::try_from(p).ok());
    let resolver = server.map(|s| (s, port));
    let url = super::dns_url(resolver, m.hostname.as_deref().unwrap_or(""), kind);
    Some(ProbeSpec::new(name, service, ProbeKind::Dns, Some(&url)))
}

fn push(b: &mut Builder, place: &str, name: &str, service: &str) -> ProbeSpec {
    b.note(format!("{place}.pushToken"), "agents pushing to Kuma must be pointed at this probe's Triage push address");
    ProbeSpec::new(name, service, ProbeKind::Push, None)
}

/// Kuma calls any method and looks for a keyword in the answer; Triage runs the standard health
/// check. When the monitor already calls `Check` with a service name, that name is kept.
fn grpc(b: &mut Builder, place: &str, m: &Monitor, name: &str, service: &str) -> ProbeSpec {
    let raw = m.grpc_url.as_deref().unwrap_or("").trim();
    let address = raw.split_once("://").map_or(raw, |(_, rest)| rest).trim_start_matches('/').trim_end_matches('/');
    let health_service = health_service(m);
    let scheme = if truthy(&m.grpc_tls, false) { "grpcs" } else { "grpc" };
    let url = format!("{scheme}://{address}/{}", health_service.as_deref().unwrap_or(""));
    let method = m.grpc_method.as_deref().unwrap_or("");
    let called = m.grpc_service.as_deref().unwrap_or("");
    b.note(
        place,
        format!("Triage runs the standard gRPC health check instead of calling {called}/{method} and looking for its keyword"),
    );
    ProbeSpec::new(name, service, ProbeKind::Grpc, Some(&url))
}

fn health_service(m: &Monitor) -> Option<String> {
    if m.grpc_method.as_deref() != Some("Check") {
        return None;
    }
    let body: Value = serde_json::from_str(m.grpc_body.as_deref()?).ok()?;
    body.get("service")?.as_str().map(str::to_string)
}

/// Kuma's flags: booleans in newer versions, 0/1 in older ones; `missing` when absent.
fn truthy(v: &Value, missing: bool) -> bool {
    match v {
        Value::Null => missing,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => matches!(s.trim(), "1" | "true"),
        _ => missing,
    }
}

/// A count or seconds from the backup as a whole number (negative and absurd values clamp).
fn whole(x: f64) -> u32 {
    if x.is_finite() && x > 0.0 { x.round().min(f64::from(u32::MAX)) as u32 } else { 0 }
}

fn secs_to_ms(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 { (secs * 1000.0).round() as u64 } else { 0 }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use app::model::{CompareOp, Criticality, JsonPathAssertion, ProbeKind, ProbeSpec, ServiceInput, StatusSpec};

    use super::plan;
    use crate::monitor::import::Unmapped;

    const BACKUP: &str = include_str!("../../../tests/fixtures/import/kuma-backup.json");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/import/kuma-malformed.json");

    fn probe(name: &str, service: &str, kind: ProbeKind, url: Option<&str>) -> ProbeSpec {
        let mut p = ProbeSpec::new(name, service, kind, url);
        p.successes_to_up = 1;
        p
    }

    fn service(name: &str, description: &str, tags: &[&str]) -> ServiceInput {
        ServiceInput {
            name: name.into(),
            description: description.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            criticality: Criticality::default(),
        }
    }

    fn expected_probes() -> Vec<ProbeSpec> {
        let mut shop_home = probe("Shop home", "Shop", ProbeKind::Http, Some("https://shop.example/"));
        shop_home.interval_secs = 60;
        shop_home.timeout_ms = 48_000;
        shop_home.failures_to_down = 1;
        shop_home.follow_redirects = true;
        shop_home.max_redirects = 10;
        shop_home.assertions.status = Some(StatusSpec::Range { min: 200, max: 299 });
        shop_home.assertions.cert_min_days = Some(21);

        let mut shop_api = probe("Shop API", "Shop", ProbeKind::Http, Some("https://api.shop.example/v1/orders"));
        shop_api.method = "POST".into();
        shop_api.headers = BTreeMap::from([
            ("authorization".to_string(), "Bearer test-token".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
            ("x-tenant".to_string(), "7".to_string()),
        ]);
        shop_api.body = Some("{\"dryRun\":true}".into());
        shop_api.interval_secs = 30;
        shop_api.timeout_ms = 10_000;
        shop_api.failures_to_down = 3;
        shop_api.assertions.status = Some(StatusSpec::OneOf(vec![200, 201, 202, 204]));
        shop_api.tls.insecure_skip_verify = true;

        let mut keyword =
            probe("Shop status page", "Shop status page", ProbeKind::Http, Some("http://status.shop.example/"));
        keyword.interval_secs = 120;
        keyword.timeout_ms = 96_000;
        keyword.failures_to_down = 1;
        keyword.follow_redirects = true;
        keyword.max_redirects = 10;
        keyword.assertions.status = Some(StatusSpec::Range { min: 200, max: 299 });
        keyword.assertions.body_contains = Some("All systems operational".into());

        let mut inverted =
            probe("Maintenance banner", "Maintenance banner", ProbeKind::Http, Some("http://www.shop.example/"));
        inverted.interval_secs = 300;
        inverted.timeout_ms = 20_000;
        inverted.failures_to_down = 1;
        inverted.enabled = false;
        inverted.assertions.status = Some(StatusSpec::Range { min: 200, max: 299 });

        let mut json = probe("Inventory health", "Inventory", ProbeKind::Http, Some("http://127.0.0.1:8081/health"));
        json.interval_secs = 20;
        json.timeout_ms = 16_000;
        json.failures_to_down = 2;
        json.follow_redirects = true;
        json.max_redirects = 10;
        json.assertions.status = Some(StatusSpec::Range { min: 200, max: 299 });
        json.assertions.json_path = vec![JsonPathAssertion {
            path: "$.checks.database.status".into(),
            op: CompareOp::Eq,
            value: Some(serde_json::json!("UP")),
        }];

        let mut build = probe("Inventory build", "Inventory", ProbeKind::Http, Some("http://127.0.0.1:8081/info"));
        build.interval_secs = 60;
        build.timeout_ms = 48_000;
        build.failures_to_down = 1;
        build.follow_redirects = true;
        build.max_redirects = 10;
        build.assertions.status = Some(StatusSpec::Range { min: 200, max: 299 });

        let mut port =
            probe("Inventory database", "Inventory", ProbeKind::Tcp, Some("tcp://db.inventory.example:5432"));
        port.interval_secs = 60;
        port.timeout_ms = 5_000;
        port.failures_to_down = 4;
        port.enabled = false;

        let mut ping = probe("Gateway ping", "Gateway ping", ProbeKind::Icmp, Some("icmp://gw.example"));
        ping.interval_secs = 86_400;
        ping.timeout_ms = 10_000;
        ping.failures_to_down = 1;

        let mut dns =
            probe("Mail exchanger", "Mail exchanger", ProbeKind::Dns, Some("dns://127.0.0.53/shop.example?type=MX"));
        dns.interval_secs = 60;
        dns.timeout_ms = 48_000;
        dns.failures_to_down = 1;

        let mut dns_port = probe(
            "Internal resolver",
            "Internal resolver",
            ProbeKind::Dns,
            Some("dns://[::1]:5353/api.shop.test?type=AAAA"),
        );
        dns_port.interval_secs = 60;
        dns_port.timeout_ms = 48_000;
        dns_port.failures_to_down = 1;

        let mut push = probe("Nightly backup", "Nightly backup", ProbeKind::Push, None);
        push.interval_secs = 86_400;
        push.failures_to_down = 1;

        let mut grpc =
            probe("Cart gRPC", "Cart gRPC", ProbeKind::Grpc, Some("grpcs://cart.shop.example:443/shop.Cart"));
        grpc.interval_secs = 60;
        grpc.timeout_ms = 48_000;
        grpc.failures_to_down = 1;

        let mut zero = probe("Shop API (2)", "Legacy", ProbeKind::Http, Some("http://legacy.shop.test/"));
        zero.interval_secs = 60;
        zero.timeout_ms = 48_000;
        zero.failures_to_down = 1;
        zero.follow_redirects = true;
        zero.max_redirects = 10;
        zero.assertions.status = Some(StatusSpec::Range { min: 200, max: 299 });

        vec![shop_home, shop_api, keyword, inverted, json, build, port, ping, dns, dns_port, push, grpc, zero]
    }

    #[test]
    fn every_mapped_monitor_type_becomes_the_expected_probe() {
        let plan = plan("kuma-backup.json", BACKUP).expect("the fixture parses");
        let expected = expected_probes();
        assert_eq!(plan.probes.len(), expected.len(), "{:#?}", plan.probes);
        for (got, want) in plan.probes.iter().zip(&expected) {
            assert_eq!(got, want, "probe {}", want.name);
        }
    }

    #[test]
    fn services_come_from_groups_or_the_monitor_itself() {
        let plan = plan("kuma-backup.json", BACKUP).expect("the fixture parses");
        assert_eq!(
            plan.services,
            vec![
                service("Shop", "Customer-facing shop", &["team:web", "prod"]),
                service("Shop status page", "", &[]),
                service("Maintenance banner", "", &[]),
                service("Inventory", "", &["team:stock"]),
                service("Gateway ping", "", &["network"]),
                service("Mail exchanger", "", &[]),
                service("Internal resolver", "", &[]),
                service("Nightly backup", "Runs at 02:00", &[]),
                service("Cart gRPC", "", &[]),
                service("Legacy", "", &[]),
            ]
        );
    }

    #[test]
    fn what_could_not_be_mapped_is_listed_with_its_place() {
        let plan = plan("kuma-backup.json", BACKUP).expect("the fixture parses");
        let places: Vec<&str> = plan.unmapped.iter().map(|u| u.place.as_str()).collect();
        assert_eq!(
            places,
            [
                "notificationList",
                "monitorList[0] (\"Shop\").notificationIDList",
                "monitorList[2] (\"Shop API\").notificationIDList",
                "monitorList[2] (\"Shop API\").headers.Host",
                "monitorList[2] (\"Shop API\").accepted_statuscodes[2]",
                "monitorList[2] (\"Shop API\").retryInterval",
                "monitorList[4] (\"Maintenance banner\").invertKeyword",
                "monitorList[4] (\"Maintenance banner\").upsideDown",
                "monitorList[6] (\"Inventory build\").jsonPath",
                "monitorList[6] (\"Inventory build\").proxyId",
                "monitorList[8] (\"Gateway ping\").packetSize",
                "monitorList[8] (\"Gateway ping\").interval",
                "monitorList[9] (\"Mail exchanger\").dns_resolve_server",
                "monitorList[11] (\"Nightly backup\").pushToken",
                "monitorList[12] (\"Cart gRPC\")",
                "monitorList[13] (\"Billing container\")",
                "monitorList[14] (\"Checkout journey\")",
                "monitorList[15] (\"Orders DB\")",
                "monitorList[16] (\"Reverse lookup\").dns_resolve_type",
                "monitorList[17] (\"Shop API\").interval",
            ]
        );
        let what = |place: &str| plan.unmapped.iter().find(|u| u.place == place).map(|u: &Unmapped| u.what.clone());
        assert_eq!(
            what("monitorList[13] (\"Billing container\")").as_deref(),
            Some("monitor type 'docker' has no Triage counterpart; not imported")
        );
        assert_eq!(
            what("monitorList[17] (\"Shop API\").interval").as_deref(),
            Some("an interval of 0 s cannot run; 60 s used")
        );
    }

    #[test]
    fn every_planned_probe_names_a_planned_service() {
        let plan = plan("kuma-backup.json", BACKUP).expect("the fixture parses");
        for p in &plan.probes {
            let service = p.service.as_deref().expect("named");
            assert_eq!(plan.services.iter().filter(|s| s.name == service).count(), 1, "{service}");
        }
    }

    #[test]
    fn a_malformed_backup_names_the_file_and_position_on_one_line() {
        let err = plan("kuma-malformed.json", MALFORMED).expect_err("must be refused");
        let message = err.to_string();
        assert!(message.starts_with("kuma-malformed.json: line 9, column "), "{message}");
        assert!(message.contains("invalid type"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn a_file_that_is_no_backup_is_refused() {
        let err = plan("other.json", "{\"version\": \"1.23.16\"}").expect_err("no monitorList");
        assert!(err.to_string().starts_with("other.json: line 1, column "), "{err}");
        assert!(err.to_string().contains("monitorList"), "{err}");
    }
}
