//! Prometheus jobs that probe through the blackbox exporter, with the exporter's modules file
//! (prometheus/blackbox_exporter, CONFIGURATION.md). A job is a blackbox job when its
//! `metrics_path` is `/probe`; its targets and module come out of Prometheus' relabelling (the
//! usual rule copies `__address__` to `__param_target`, the module comes from `params.module`
//! or a label copied to `__param_module`). Each remaining target becomes one probe in a service
//! named after the job, checked at the job's `scrape_interval` (or the global one, 1 minute by
//! default).
//!
//! | Module | Triage |
//! |---|---|
//! | `prober: http` | `http` probe: method, headers, body, `valid_status_codes` (2xx when empty), redirects, the first `fail_if_body_not_matches_regexp` as `body_regex`, `fail_if_header_not_matches` as header assertions, `tls_config.insecure_skip_verify`, `authorization.credentials` as a header |
//! | `prober: tcp` | `tcp` probe; one `send` then one `expect` (a pattern that is plain text) of `query_response`; `tls: true` as `tcp_tls`, or a `tls` probe when nothing is sent or expected |
//! | `prober: icmp` | `icmp` probe |
//! | `prober: dns` | `dns` probe asking the target for `query_name`/`query_type`; one of `valid_rcodes` |
//! | `prober: grpc` | `grpc` health check of `service`, over TLS when `tls: true` |
//! | `timeout` | the timeout, capped half a second before the scrape timeout as the exporter does |
//!
//! Listed as unmapped: service discovery (targets unknown until Prometheus runs), rule files and
//! Alertmanager settings, unix and websocket probers, unknown modules, and every module option
//! without a counterpart (IP family, proxies, credentials from files, negative body patterns,
//! answer patterns, TTLs, …).

use std::collections::{BTreeMap, BTreeSet};

use app::model::{CompareOp, HeaderAssertion, ProbeKind, ProbeSpec};
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{Builder, ImportError, ImportPlan, is_set};
use crate::monitor::check::dns::RCODES;

/// Prometheus' defaults when neither the job nor `global` sets them.
const PROMETHEUS_INTERVAL_MS: u64 = 60_000;
const PROMETHEUS_TIMEOUT_MS: u64 = 10_000;
/// The exporter finishes this long before Prometheus' scrape timeout (its `--timeout-offset`).
const TIMEOUT_OFFSET_MS: u64 = 500;
/// The module the exporter runs when a scrape names none.
const DEFAULT_MODULE: &str = "http_2xx";
/// Go's HTTP client, which the exporter uses, gives up after 10 redirects.
const GO_MAX_REDIRECTS: u32 = 10;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Prometheus {
    global: Option<Global>,
    scrape_configs: Vec<Job>,
    rule_files: Option<Value>,
    alerting: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Global {
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Job {
    job_name: String,
    metrics_path: Option<String>,
    scrape_interval: Option<String>,
    scrape_timeout: Option<String>,
    params: BTreeMap<String, Vec<String>>,
    static_configs: Vec<StaticConfig>,
    relabel_configs: Vec<Relabel>,
    /// Service discovery and scrape settings, looked through for `*_sd_configs`.
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StaticConfig {
    targets: Vec<String>,
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Relabel {
    source_labels: Vec<String>,
    separator: Option<String>,
    target_label: Option<String>,
    regex: Option<String>,
    replacement: Option<String>,
    action: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ModulesFile {
    modules: BTreeMap<String, Module>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Module {
    prober: String,
    timeout: Option<String>,
    http: Option<HttpProbe>,
    tcp: Option<TcpProbe>,
    dns: Option<DnsProbe>,
    icmp: Option<IcmpProbe>,
    grpc: Option<GrpcProbe>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HttpProbe {
    valid_status_codes: Vec<u16>,
    method: Option<String>,
    headers: BTreeMap<String, String>,
    body: Option<String>,
    follow_redirects: Option<bool>,
    fail_if_not_ssl: bool,
    fail_if_body_not_matches_regexp: Vec<String>,
    fail_if_header_not_matches: Vec<HeaderMatch>,
    tls_config: Option<TlsConfig>,
    authorization: Option<Authorization>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HeaderMatch {
    header: String,
    regexp: String,
    allow_missing: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TlsConfig {
    insecure_skip_verify: bool,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Authorization {
    #[serde(rename = "type")]
    kind: Option<String>,
    credentials: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TcpProbe {
    query_response: Vec<QueryStep>,
    tls: bool,
    tls_config: Option<TlsConfig>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct QueryStep {
    expect: Option<String>,
    send: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DnsProbe {
    query_name: String,
    query_type: Option<String>,
    query_class: Option<String>,
    transport_protocol: Option<String>,
    recursion_desired: Option<bool>,
    valid_rcodes: Vec<String>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IcmpProbe {
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GrpcProbe {
    service: String,
    tls: bool,
    tls_config: Option<TlsConfig>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

/// How a target is written into the probe's URL, by prober.
#[derive(Clone)]
enum Address {
    Http,
    Tcp,
    Tls,
    Icmp,
    Dns { name: String, kind: &'static str },
    Grpc { tls: bool, service: String },
}

/// What a module gives every target that uses it.
#[derive(Clone)]
struct Template {
    /// Kind, request and assertions; name, service, URL and schedule are filled per target.
    spec: ProbeSpec,
    address: Address,
    timeout_ms: Option<u64>,
    /// `fail_if_not_ssl`: only implied for targets that are `https://` already.
    require_tls: bool,
}

/// A job's schedule and service, shared by its targets.
struct JobContext {
    service: String,
    interval_secs: u32,
    scrape_timeout_ms: u64,
}

/// Reads a Prometheus configuration and the exporter's modules file; the names only appear in
/// messages.
pub fn plan(
    prom_name: &str,
    prom_text: &str,
    modules_name: &str,
    modules_text: &str,
) -> Result<ImportPlan, ImportError> {
    let prometheus: Prometheus = serde_yaml_ng::from_str(prom_text).map_err(|e| super::yaml_error(prom_name, &e))?;
    let modules: ModulesFile =
        serde_yaml_ng::from_str(modules_text).map_err(|e| super::yaml_error(modules_name, &e))?;
    let mut importer = Importer {
        b: Builder::default(),
        modules: &modules,
        modules_name,
        global: prometheus.global.as_ref(),
        templates: BTreeMap::new(),
    };
    if prometheus.rule_files.as_ref().is_some_and(is_set) {
        importer.b.note("rule_files", "alerting rules are not imported; Triage opens incidents from probe states");
    }
    if prometheus.alerting.as_ref().is_some_and(is_set) {
        importer.b.note("alerting", "Alertmanager settings are not imported; set up notification rules in Triage");
    }
    for (i, job) in prometheus.scrape_configs.iter().enumerate() {
        importer.job(i, job);
    }
    Ok(importer.b.finish())
}

struct Importer<'a> {
    b: Builder,
    modules: &'a ModulesFile,
    modules_name: &'a str,
    global: Option<&'a Global>,
    /// Modules already converted; `None` for one that cannot be (noted once).
    templates: BTreeMap<String, Option<Template>>,
}

impl Importer<'_> {
    fn job(&mut self, i: usize, job: &Job) {
        let place = format!("scrape_configs[{i}]");
        if job.metrics_path.as_deref().map(str::trim) != Some("/probe") {
            let name = &job.job_name;
            self.b.note(
                &place,
                format!(
                    "job \"{name}\" does not scrape the blackbox exporter (its metrics_path is not /probe); skipped"
                ),
            );
            return;
        }
        self.job_settings(&place, job);
        let context = self.context(&place, i, job);
        let relabelling = rules(&mut self.b, &place, &job.relabel_configs);
        for (s, group) in job.static_configs.iter().enumerate() {
            for (t, address) in group.targets.iter().enumerate() {
                let at = format!("{place}.static_configs[{s}].targets[{t}]");
                let Some(labels) = relabel(&relabelling, initial_labels(job, group, address)) else { continue };
                let Some(target) = labels.get("__param_target").filter(|t| !t.trim().is_empty()) else {
                    self.b.note(&at, "no target is left for the exporter after relabelling; not imported");
                    continue;
                };
                let module = labels.get("__param_module").map_or(DEFAULT_MODULE, String::as_str);
                self.target(&at, &context, target.trim(), module);
            }
        }
    }

    /// Job settings that keep targets from being imported or change what is probed.
    fn job_settings(&mut self, place: &str, job: &Job) {
        for (key, value) in &job.other {
            if key.ends_with("_sd_configs") && is_set(value) {
                self.b.note(
                    format!("{place}.{key}"),
                    "targets found by service discovery are only known while Prometheus runs; add probes for them by hand",
                );
            }
        }
        for (key, values) in &job.params {
            if key == "module" && values.len() > 1 {
                self.b.note(
                    format!("{place}.params.module"),
                    "the exporter runs only the first module; the others are ignored",
                );
            } else if key != "module" && key != "target" {
                self.b.note(format!("{place}.params.{key}"), "this probe parameter is not imported");
            }
        }
    }

    fn context(&mut self, place: &str, i: usize, job: &Job) -> JobContext {
        let global_interval = self.global.and_then(|g| g.scrape_interval.as_deref());
        let global_timeout = self.global.and_then(|g| g.scrape_timeout.as_deref());
        let default_interval = duration(&mut self.b, "global.scrape_interval", global_interval, PROMETHEUS_INTERVAL_MS);
        let default_timeout =
            duration(&mut self.b, "global.scrape_timeout", global_timeout, PROMETHEUS_TIMEOUT_MS).min(default_interval);
        let interval_place = format!("{place}.scrape_interval");
        let interval_ms = duration(&mut self.b, &interval_place, job.scrape_interval.as_deref(), default_interval);
        // Like Prometheus, an inherited timeout longer than the job's interval shrinks to it.
        let timeout_place = format!("{place}.scrape_timeout");
        let scrape_timeout_ms =
            duration(&mut self.b, &timeout_place, job.scrape_timeout.as_deref(), default_timeout.min(interval_ms));
        JobContext {
            service: super::clean_name(&job.job_name, &format!("job {i}")),
            interval_secs: self.b.interval(&interval_place, interval_ms),
            scrape_timeout_ms,
        }
    }

    fn target(&mut self, at: &str, context: &JobContext, target: &str, module: &str) {
        if !self.templates.contains_key(module) {
            let built = match self.modules.modules.get(module) {
                Some(m) => template(&mut self.b, module, m),
                None => {
                    let file = self.modules_name;
                    self.b.note(at, format!("module '{module}' is not defined in {file}; not imported"));
                    return;
                }
            };
            self.templates.insert(module.to_string(), built);
        }
        let Some(Some(module_template)) = self.templates.get(module) else { return };
        let mut spec = module_template.spec.clone();
        spec.name = super::clean_name(&format!("{target} ({module})"), module);
        spec.service = Some(context.service.clone());
        let address = url(&module_template.address, target);
        if module_template.require_tls && !address.to_ascii_lowercase().starts_with("https://") {
            self.b.note(at, "the module fails without TLS; Triage probes the target as written, without that rule");
        }
        spec.url = Some(address);
        spec.interval_secs = context.interval_secs;
        // The exporter stops at the module's timeout, or half a second before the scrape's own
        // timeout when that comes first.
        let budget = context.scrape_timeout_ms.saturating_sub(TIMEOUT_OFFSET_MS);
        let timeout = match module_template.timeout_ms {
            Some(t) if t > 0 && (t < budget || budget == 0) => t,
            _ => budget,
        };
        spec.timeout_ms = self.b.timeout(at, timeout, context.interval_secs);
        self.b.probe(at, spec);
    }
}

/// A duration setting, `fallback` when absent, noted when it is not a duration.
fn duration(b: &mut Builder, place: &str, raw: Option<&str>, fallback: u64) -> u64 {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else { return fallback };
    super::duration_ms(raw).unwrap_or_else(|| {
        b.note(place, format!("'{raw}' is not a duration; {fallback} ms used"));
        fallback
    })
}

/// The labels Prometheus starts relabelling a static target with.
fn initial_labels(job: &Job, group: &StaticConfig, address: &str) -> BTreeMap<String, String> {
    let mut labels = group.labels.clone();
    labels.insert("__address__".into(), address.to_string());
    labels.insert("job".into(), job.job_name.clone());
    labels.insert("__metrics_path__".into(), job.metrics_path.clone().unwrap_or_default());
    for (key, values) in &job.params {
        if let Some(first) = values.first() {
            labels.insert(format!("__param_{key}"), first.clone());
        }
    }
    labels
}

enum Action {
    Replace,
    Keep,
    Drop,
}

struct Rule {
    sources: Vec<String>,
    separator: String,
    target: Option<String>,
    regex: regex::Regex,
    replacement: String,
    action: Action,
}

/// The job's relabel rules that can decide a target or its parameters; others are noted.
fn rules(b: &mut Builder, place: &str, configs: &[Relabel]) -> Vec<Rule> {
    let mut out = Vec::new();
    for (k, r) in configs.iter().enumerate() {
        let at = format!("{place}.relabel_configs[{k}]");
        let action = match r.action.as_deref().unwrap_or("replace") {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            other => {
                b.note(at, format!("the '{other}' action is not applied by the importer; targets are read without it"));
                continue;
            }
        };
        let pattern = r.regex.as_deref().unwrap_or("(.*)");
        let Ok(regex) = regex::Regex::new(&format!("^(?s:{pattern})$")) else {
            b.note(at, "the regex cannot be read; the rule is not applied");
            continue;
        };
        out.push(Rule {
            sources: r.source_labels.clone(),
            separator: r.separator.clone().unwrap_or_else(|| ";".into()),
            target: r.target_label.clone(),
            regex,
            replacement: r.replacement.clone().unwrap_or_else(|| "$1".into()),
            action,
        });
    }
    out
}

/// Applies the rules in order; `None` when one drops the target.
fn relabel(rules: &[Rule], mut labels: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    for rule in rules {
        let value = rule
            .sources
            .iter()
            .map(|s| labels.get(s).map_or("", String::as_str))
            .collect::<Vec<_>>()
            .join(rule.separator.as_str());
        match rule.action {
            Action::Keep if !rule.regex.is_match(&value) => return None,
            Action::Drop if rule.regex.is_match(&value) => return None,
            Action::Keep | Action::Drop => {}
            Action::Replace => {
                let Some(target) = &rule.target else { continue };
                let Some(captures) = rule.regex.captures(&value) else { continue };
                let mut result = String::new();
                captures.expand(&rule.replacement, &mut result);
                if result.is_empty() {
                    labels.remove(target);
                } else {
                    labels.insert(target.clone(), result);
                }
            }
        }
    }
    Some(labels)
}

/// Converts a module once; `None` (noted) when its prober or settings leave nothing to probe.
fn template(b: &mut Builder, name: &str, m: &Module) -> Option<Template> {
    let place = format!("modules.{name}");
    let prober = m.prober.trim();
    let converted = match prober {
        "http" => Some(http_template(b, &place, m.http.as_ref())),
        "tcp" => Some(tcp_template(b, &place, m.tcp.as_ref())),
        "icmp" => Some(icmp_template(b, &place, m.icmp.as_ref())),
        "dns" => dns_template(b, &place, m.dns.as_ref()),
        "grpc" => Some(grpc_template(b, &place, m.grpc.as_ref())),
        other => {
            b.note(
                &place,
                format!("the '{other}' prober has no Triage counterpart; targets using this module are not imported"),
            );
            return None;
        }
    };
    for (key, value) in &m.other {
        if is_set(value) {
            b.note(format!("{place}.{key}"), option_note(key));
        }
    }
    let timeout_ms = m.timeout.as_deref().map(str::trim).filter(|s| !s.is_empty()).and_then(|raw| {
        let parsed = super::duration_ms(raw);
        if parsed.is_none() {
            b.note(format!("{place}.timeout"), format!("'{raw}' is not a duration; the scrape timeout is used"));
        }
        parsed
    });
    let (spec, address, require_tls) = converted?;
    Some(Template { spec, address, timeout_ms, require_tls })
}

fn notes_for_others(b: &mut Builder, place: &str, other: &BTreeMap<String, Value>) {
    for (key, value) in other {
        if is_set(value) {
            b.note(format!("{place}.{key}"), option_note(key));
        }
    }
}

/// Why a module option is not imported.
fn option_note(key: &str) -> &'static str {
    match key {
        "preferred_ip_protocol" | "ip_protocol_fallback" => {
            "the IP family choice is not imported; Triage uses the first address the system resolver returns"
        }
        "source_ip_address" => "Triage does not choose the source address",
        "basic_auth" | "oauth2" | "bearer_token" | "bearer_token_file" | "credentials_file" => {
            "these credentials are not imported; add an Authorization header to the probe"
        }
        "proxy_url"
        | "proxy_from_environment"
        | "no_proxy"
        | "proxy_connect_header"
        | "skip_resolve_phase_with_proxy" => "proxies are not imported; Triage connects to targets directly",
        "ca_file" | "cert_file" | "key_file" | "server_name" => {
            "TLS files and server-name overrides are not imported; paste a CA into the probe's TLS settings if needed"
        }
        "fail_if_body_matches_regexp" | "fail_if_header_matches" | "fail_if_ssl" => {
            "Triage cannot fail a check because something matches; not imported"
        }
        "fail_if_body_json_matches_cel" | "fail_if_body_json_not_matches_cel" => {
            "CEL expressions are not imported; write the check as a JSONPath assertion"
        }
        "validate_answer_rrs" | "validate_authority_rrs" | "validate_additional_rrs" => {
            "record patterns are not imported; list the expected answers on the probe"
        }
        "metadata" => "gRPC metadata is not imported",
        _ => "not imported: Triage has no such setting",
    }
}

fn http_template(b: &mut Builder, module_place: &str, http: Option<&HttpProbe>) -> (ProbeSpec, Address, bool) {
    let default = HttpProbe::default();
    let h = http.unwrap_or(&default);
    let place = format!("{module_place}.http");
    let mut spec = ProbeSpec::new("template", "template", ProbeKind::Http, None);
    if let Some(method) = h.method.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        spec.method = method.to_ascii_uppercase();
    }
    for (name, value) in &h.headers {
        b.header(&format!("{place}.headers.{name}"), &mut spec.headers, name, value);
    }
    spec.body = h.body.clone().filter(|s| !s.is_empty());
    let mut codes: BTreeSet<u16> = h.valid_status_codes.iter().copied().filter(|c| (100..=599).contains(c)).collect();
    if codes.len() != h.valid_status_codes.iter().collect::<BTreeSet<_>>().len() {
        b.note(format!("{place}.valid_status_codes"), "codes outside 100–599 are not imported");
    }
    if h.valid_status_codes.is_empty() {
        // The exporter's default: any 2xx.
        codes = (200..=299).collect();
    }
    spec.assertions.status = super::status_spec(&codes);
    spec.follow_redirects = h.follow_redirects.unwrap_or(true);
    if spec.follow_redirects {
        spec.max_redirects = GO_MAX_REDIRECTS;
    }
    body_patterns(b, &place, &h.fail_if_body_not_matches_regexp, &mut spec);
    header_patterns(b, &place, &h.fail_if_header_not_matches, &mut spec);
    if let Some(tls) = &h.tls_config {
        spec.tls.insecure_skip_verify = tls.insecure_skip_verify;
        notes_for_others(b, &format!("{place}.tls_config"), &tls.other);
    }
    if let Some(auth) = &h.authorization {
        if let Some(credentials) = auth.credentials.as_deref().filter(|c| !c.is_empty()) {
            let scheme = auth.kind.as_deref().unwrap_or("Bearer");
            let value = format!("{scheme} {credentials}");
            b.header(&format!("{place}.authorization"), &mut spec.headers, "authorization", &value);
        }
        notes_for_others(b, &format!("{place}.authorization"), &auth.other);
    }
    notes_for_others(b, &place, &h.other);
    (spec, Address::Http, h.fail_if_not_ssl)
}

/// Triage checks one body pattern: the first is imported, if the `regex` crate reads it as the
/// exporter (Go's RE2) does.
fn body_patterns(b: &mut Builder, place: &str, patterns: &[String], spec: &mut ProbeSpec) {
    for (k, pattern) in patterns.iter().enumerate() {
        let at = format!("{place}.fail_if_body_not_matches_regexp[{k}]");
        if k > 0 {
            b.note(at, "Triage checks one body pattern; only the first is imported");
        } else if regex::Regex::new(pattern).is_ok() {
            spec.assertions.body_regex = Some(pattern.clone());
        } else {
            b.note(at, "the pattern cannot be read by Triage; not imported");
        }
    }
}

fn header_patterns(b: &mut Builder, place: &str, matches: &[HeaderMatch], spec: &mut ProbeSpec) {
    for (k, m) in matches.iter().enumerate() {
        let at = format!("{place}.fail_if_header_not_matches[{k}]");
        if regex::Regex::new(&m.regexp).is_err() || http::HeaderName::from_bytes(m.header.as_bytes()).is_err() {
            b.note(at, "the header name or pattern cannot be read by Triage; not imported");
            continue;
        }
        if m.allow_missing {
            b.note(at, "Triage fails when the header is missing; imported without allow_missing");
        }
        spec.assertions.header.push(HeaderAssertion {
            name: m.header.to_ascii_lowercase(),
            op: CompareOp::Matches,
            value: Some(m.regexp.clone()),
        });
    }
}

fn tcp_template(b: &mut Builder, module_place: &str, tcp: Option<&TcpProbe>) -> (ProbeSpec, Address, bool) {
    let default = TcpProbe::default();
    let t = tcp.unwrap_or(&default);
    let place = format!("{module_place}.tcp");
    let (send, expect) = dialogue(b, &place, &t.query_response);
    // A TLS connection that neither sends nor expects anything is a certificate check.
    let address = if t.tls && send.is_none() && expect.is_none() { Address::Tls } else { Address::Tcp };
    let kind = if matches!(address, Address::Tls) { ProbeKind::Tls } else { ProbeKind::Tcp };
    let mut spec = ProbeSpec::new("template", "template", kind, None);
    spec.tcp_tls = t.tls && kind == ProbeKind::Tcp;
    spec.send = send;
    spec.expect = expect;
    if let Some(tls) = &t.tls_config {
        spec.tls.insecure_skip_verify = tls.insecure_skip_verify;
        notes_for_others(b, &format!("{place}.tls_config"), &tls.other);
    }
    notes_for_others(b, &place, &t.other);
    (spec, address, false)
}

/// The exporter's query/response steps as Triage's one line sent and one text expected: an
/// expectation alone, a line sent alone, or a line sent and then an answer expected.
fn dialogue(b: &mut Builder, place: &str, steps: &[QueryStep]) -> (Option<String>, Option<String>) {
    let at = format!("{place}.query_response");
    let mut actions = Vec::new();
    for step in steps {
        if step.other.values().any(is_set) {
            b.note(&at, "steps beyond send and expect (starttls, expect_bytes, labels) are not imported; the probe only connects");
            return (None, None);
        }
        if let Some(expect) = &step.expect {
            actions.push((false, expect.as_str()));
        }
        if let Some(send) = &step.send {
            actions.push((true, send.as_str()));
        }
    }
    let (send, expect) = match actions.as_slice() {
        [] => return (None, None),
        [(false, e)] => (None, Some((0, *e))),
        [(true, s)] => (Some(*s), None),
        [(true, s), (false, e)] => (Some(*s), Some((1, *e))),
        _ => {
            b.note(
                &at,
                "Triage sends one line and expects one answer; this dialogue is not imported, the probe only connects",
            );
            return (None, None);
        }
    };
    if send.is_some_and(|s| s.contains("${")) {
        b.note(&at, "lines built from an earlier answer are not imported; the probe only connects");
        return (None, None);
    }
    let expect = match expect {
        None => None,
        Some((k, pattern)) => expectation(b, &format!("{at}[{k}].expect"), pattern),
    };
    // The exporter ends every line it sends with a newline.
    (send.map(|s| super::send_text(&format!("{s}\n"))), expect)
}

/// A pattern as the plain text Triage looks for, when it is one: anchors are dropped and an
/// unescaped `.` is read as itself (both noted as approximations).
fn expectation(b: &mut Builder, at: &str, pattern: &str) -> Option<String> {
    let unanchored = pattern.strip_prefix('^').unwrap_or(pattern);
    let unanchored = unanchored.strip_suffix('$').unwrap_or(unanchored);
    let mut text = String::new();
    let mut loose = unanchored.len() != pattern.len();
    let mut chars = unanchored.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) if escaped.is_ascii_punctuation() => text.push(escaped),
                _ => return not_plain(b, at),
            },
            '.' => {
                loose = true;
                text.push('.');
            }
            '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => return not_plain(b, at),
            other => text.push(other),
        }
    }
    if text.is_empty() {
        return not_plain(b, at);
    }
    if loose {
        b.note(at, format!("approximated: Triage looks for the text \"{text}\" anywhere in the answer"));
    }
    Some(text)
}

fn not_plain(b: &mut Builder, at: &str) -> Option<String> {
    b.note(at, "Triage expects plain text, not a pattern; the answer is not checked");
    None
}

fn icmp_template(b: &mut Builder, module_place: &str, icmp: Option<&IcmpProbe>) -> (ProbeSpec, Address, bool) {
    if let Some(i) = icmp {
        notes_for_others(b, &format!("{module_place}.icmp"), &i.other);
    }
    (ProbeSpec::new("template", "template", ProbeKind::Icmp, None), Address::Icmp, false)
}

fn dns_template(b: &mut Builder, module_place: &str, dns: Option<&DnsProbe>) -> Option<(ProbeSpec, Address, bool)> {
    let place = format!("{module_place}.dns");
    let Some(d) = dns.filter(|d| !d.query_name.trim().is_empty()) else {
        b.note(&place, "a dns module without query_name asks nothing; targets using it are not imported");
        return None;
    };
    let asked = d.query_type.as_deref().unwrap_or("ANY");
    let Some(kind) = super::dns_type(asked) else {
        b.note(
            format!("{place}.query_type"),
            format!("Triage cannot query {asked} records; targets using this module are not imported"),
        );
        return None;
    };
    let mut spec = ProbeSpec::new("template", "template", ProbeKind::Dns, None);
    if d.query_class.as_deref().is_some_and(|c| !c.eq_ignore_ascii_case("IN")) {
        b.note(format!("{place}.query_class"), "Triage asks in the IN class only");
    }
    if d.transport_protocol.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("udp")) {
        b.note(format!("{place}.transport_protocol"), "the transport choice is not imported");
    }
    if d.recursion_desired == Some(false) {
        b.note(format!("{place}.recursion_desired"), "Triage always asks for recursion");
    }
    spec.rcode = rcode(b, &place, &d.valid_rcodes);
    notes_for_others(b, &place, &d.other);
    Some((spec, Address::Dns { name: d.query_name.trim().to_string(), kind }, false))
}

/// The expected response code: NOERROR (Triage's default) stays unset.
fn rcode(b: &mut Builder, place: &str, valid: &[String]) -> Option<String> {
    let first = valid.first()?.trim().to_ascii_uppercase();
    if valid.len() > 1 {
        b.note(format!("{place}.valid_rcodes"), "Triage expects one response code; only the first is imported");
    }
    if !RCODES.contains(&first.as_str()) {
        b.note(
            format!("{place}.valid_rcodes"),
            format!("{first} is not a response code Triage knows; NOERROR is expected"),
        );
        return None;
    }
    (first != "NOERROR").then_some(first)
}

fn grpc_template(b: &mut Builder, module_place: &str, grpc: Option<&GrpcProbe>) -> (ProbeSpec, Address, bool) {
    let default = GrpcProbe::default();
    let g = grpc.unwrap_or(&default);
    let place = format!("{module_place}.grpc");
    let mut spec = ProbeSpec::new("template", "template", ProbeKind::Grpc, None);
    if let Some(tls) = &g.tls_config {
        spec.tls.insecure_skip_verify = tls.insecure_skip_verify;
        notes_for_others(b, &format!("{place}.tls_config"), &tls.other);
    }
    notes_for_others(b, &place, &g.other);
    (spec, Address::Grpc { tls: g.tls, service: g.service.trim().to_string() }, false)
}

/// The probe's URL for a target, written as the exporter reads it for that prober.
fn url(address: &Address, target: &str) -> String {
    let lower = target.to_ascii_lowercase();
    match address {
        Address::Http if lower.starts_with("http://") || lower.starts_with("https://") => target.to_string(),
        Address::Http => format!("http://{target}"),
        Address::Tcp => format!("tcp://{target}"),
        Address::Tls => format!("tls://{target}"),
        Address::Icmp => format!("icmp://{}", super::url_host(target)),
        Address::Dns { name, kind } => {
            let (host, port) = super::split_host_port(target);
            super::dns_url(Some((host.as_str(), port)), name, kind)
        }
        Address::Grpc { tls, service } => {
            let bare = ["http://", "https://"]
                .into_iter()
                .find(|p| lower.starts_with(p))
                .map_or(target, |p| &target[p.len()..])
                .trim_end_matches('/');
            let (host, port) = super::split_host_port(bare);
            // The exporter dials port 80, or 443 over TLS, when the target names none.
            let port = port.unwrap_or(if *tls { 443 } else { 80 });
            let scheme = if *tls { "grpcs" } else { "grpc" };
            format!("{scheme}://{}:{port}/{service}", super::url_host(&host))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use app::model::{CompareOp, HeaderAssertion, ProbeKind, ProbeSpec, StatusSpec};

    use super::plan;

    const PROMETHEUS: &str = include_str!("../../../tests/fixtures/import/blackbox-prometheus.yml");
    const MODULES: &str = include_str!("../../../tests/fixtures/import/blackbox-modules.yml");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/import/blackbox-malformed.yml");

    fn run() -> crate::monitor::import::ImportPlan {
        plan("blackbox-prometheus.yml", PROMETHEUS, "blackbox-modules.yml", MODULES).expect("the fixtures parse")
    }

    fn probe(name: &str, service: &str, kind: ProbeKind, url: &str, interval: u32, timeout: u32) -> ProbeSpec {
        let mut p = ProbeSpec::new(name, service, kind, Some(url));
        p.interval_secs = interval;
        p.timeout_ms = timeout;
        p
    }

    fn http_2xx(name: &str, service: &str, url: &str, interval: u32) -> ProbeSpec {
        let mut p = probe(name, service, ProbeKind::Http, url, interval, 5_000);
        p.assertions.status = Some(StatusSpec::Range { min: 200, max: 299 });
        p.follow_redirects = true;
        p.max_redirects = 10;
        p
    }

    fn expected_probes() -> Vec<ProbeSpec> {
        let shop = "shop-http";
        let mut post = probe(
            "https://api.shop.example/v1/orders/validate (http_post_json)",
            "shop-api-post",
            ProbeKind::Http,
            "https://api.shop.example/v1/orders/validate",
            30,
            3_000,
        );
        post.method = "POST".into();
        post.headers = BTreeMap::from([
            ("authorization".to_string(), "Bearer test-token".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ]);
        post.body = Some("{\"dryRun\": true}".into());
        post.assertions.status = Some(StatusSpec::Range { min: 200, max: 202 });
        post.assertions.body_regex = Some("\"valid\":\\s*true".into());
        post.assertions.header = vec![HeaderAssertion {
            name: "content-type".into(),
            op: CompareOp::Matches,
            value: Some("^application/json".into()),
        }];
        post.tls.insecure_skip_verify = true;

        let infra = "infrastructure";
        let tcp =
            probe("db.shop.example:5432 (tcp_connect)", infra, ProbeKind::Tcp, "tcp://db.shop.example:5432", 60, 4_500);
        let mut redis = probe("127.0.0.1:6379 (redis_ping)", infra, ProbeKind::Tcp, "tcp://127.0.0.1:6379", 60, 2_000);
        redis.send = Some("PING\\n".into());
        redis.expect = Some("PONG".into());
        let tls = probe("ldap.example:636 (tls_handshake)", infra, ProbeKind::Tls, "tls://ldap.example:636", 60, 4_500);
        let mut ssh =
            probe("bastion.example:22 (ssh_banner)", infra, ProbeKind::Tcp, "tcp://bastion.example:22", 60, 4_500);
        ssh.expect = Some("SSH-2.0-".into());
        let smtp = probe(
            "mail.shop.example:25 (smtp_starttls)",
            infra,
            ProbeKind::Tcp,
            "tcp://mail.shop.example:25",
            60,
            4_500,
        );
        let icmp = probe("gw.example (icmp_ttl)", infra, ProbeKind::Icmp, "icmp://gw.example", 60, 3_000);
        let dns =
            probe("127.0.0.53 (dns_shop_a)", infra, ProbeKind::Dns, "dns://127.0.0.53/shop.example?type=A", 60, 2_000);
        let dns6 =
            probe("[::1]:5353 (dns_shop_a)", infra, ProbeKind::Dns, "dns://[::1]:5353/shop.example?type=A", 60, 2_000);
        let mut grpc = probe(
            "cart.shop.example:443 (grpc_cart)",
            infra,
            ProbeKind::Grpc,
            "grpcs://cart.shop.example:443/shop.Cart",
            60,
            3_000,
        );
        grpc.tls.insecure_skip_verify = true;

        vec![
            http_2xx("https://shop.example/health (http_2xx)", shop, "https://shop.example/health", 15),
            http_2xx("http://127.0.0.1:8080/readyz (http_2xx)", shop, "http://127.0.0.1:8080/readyz", 15),
            http_2xx("api.shop.example/v1/ping (http_2xx)", shop, "http://api.shop.example/v1/ping", 15),
            post,
            tcp,
            redis,
            tls,
            ssh,
            smtp,
            icmp,
            dns,
            dns6,
            grpc,
            http_2xx("https://status.shop.example/ (http_2xx)", "discovered", "https://status.shop.example/", 30),
        ]
    }

    #[test]
    fn every_target_and_module_becomes_the_expected_probe() {
        let plan = run();
        let expected = expected_probes();
        assert_eq!(plan.probes.len(), expected.len(), "{:#?}", plan.probes);
        for (got, want) in plan.probes.iter().zip(&expected) {
            assert_eq!(got, want, "probe {}", want.name);
        }
    }

    #[test]
    fn jobs_become_services() {
        let plan = run();
        let names: Vec<&str> = plan.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["shop-http", "shop-api-post", "infrastructure", "discovered"]);
        assert!(plan.services.iter().all(|s| s.description.is_empty() && s.tags.is_empty()));
    }

    #[test]
    fn what_could_not_be_mapped_is_listed_with_its_place() {
        let plan = run();
        let places: Vec<&str> = plan.unmapped.iter().map(|u| u.place.as_str()).collect();
        assert_eq!(
            places,
            [
                "rule_files",
                "alerting",
                "scrape_configs[0]",
                "modules.http_2xx.http.preferred_ip_protocol",
                "scrape_configs[2].params.module",
                "modules.http_post_json.http.headers.Host",
                "modules.http_post_json.http.fail_if_body_not_matches_regexp[1]",
                "modules.http_post_json.http.tls_config.ca_file",
                "modules.http_post_json.http.fail_if_body_matches_regexp",
                "modules.http_post_json.http.proxy_url",
                "modules.http_post_json.http.valid_http_versions",
                "modules.tls_handshake.tcp.tls_config.server_name",
                "modules.ssh_banner.tcp.query_response[0].expect",
                "modules.smtp_starttls.tcp.query_response",
                "modules.icmp_ttl.icmp.payload_size",
                "modules.icmp_ttl.icmp.ttl",
                "modules.dns_shop_a.dns.validate_answer_rrs",
                "modules.dns_any.dns.query_type",
                "modules.grpc_cart.grpc.metadata",
                "modules.unix_socket",
                "scrape_configs[3].static_configs[10].targets[0]",
                "scrape_configs[4].dns_sd_configs",
                "scrape_configs[4].file_sd_configs",
            ]
        );
        let what = |place: &str| plan.unmapped.iter().find(|u| u.place == place).map(|u| u.what.as_str());
        assert_eq!(
            what("scrape_configs[3].static_configs[10].targets[0]"),
            Some("module 'no_such_module' is not defined in blackbox-modules.yml; not imported")
        );
        assert_eq!(
            what("modules.ssh_banner.tcp.query_response[0].expect"),
            Some("approximated: Triage looks for the text \"SSH-2.0-\" anywhere in the answer")
        );
    }

    #[test]
    fn a_malformed_modules_file_names_the_file_and_position_on_one_line() {
        let err = plan("blackbox-prometheus.yml", PROMETHEUS, "blackbox-malformed.yml", MALFORMED)
            .expect_err("must be refused");
        let message = err.to_string();
        assert!(message.starts_with("blackbox-malformed.yml: line 7, column "), "{message}");
        assert!(message.contains("valid_status_codes"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn a_malformed_prometheus_file_is_named_too() {
        let err = plan("prometheus.yml", "scrape_configs:\n  - job_name: [a, b]\n", "modules.yml", MODULES)
            .expect_err("a job name must be text");
        let message = err.to_string();
        assert!(message.starts_with("prometheus.yml: line 2, column "), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}
