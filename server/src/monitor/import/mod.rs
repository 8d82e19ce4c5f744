//! Importers: another tool's monitoring configuration turned into Triage services and probes.
//! Each format has its own module: `kuma` reads an Uptime Kuma backup (JSON), `gatus` a Gatus
//! configuration file, and `blackbox` a Prometheus configuration whose jobs scrape the blackbox
//! exporter, together with the exporter's modules file. All three are pure: text in, an
//! [`ImportPlan`] out. Nothing here touches the database; the `triage import` command applies a
//! plan.
//!
//! A plan lists the services to create (by name), the probes, each one already accepted by
//! `check::spec::validate`, and every setting that was left out, changed to fit Triage's ranges
//! or only approximated, with its place in the source file. Importing is lossy by nature; the
//! `unmapped` list is how the user learns what to set up by hand.

pub mod blackbox;
pub mod gatus;
pub mod kuma;
pub mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use app::model::{Criticality, ProbeSpec, ServiceInput, StatusSpec};
use serde::Serialize;

use crate::monitor::check::spec::{MAX_INTERVAL_SECS, RESERVED_HEADERS};

/// What an import would create, and what it could not carry over.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportPlan {
    /// Every service the probes name, once each, in the order the probes first use them.
    pub services: Vec<ServiceInput>,
    /// Probes with unique names, each naming its service.
    pub probes: Vec<ProbeSpec>,
    /// Settings of the source that were not imported, or imported only approximately.
    pub unmapped: Vec<Unmapped>,
}

/// One setting of the source file that Triage did not take over as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Unmapped {
    /// Where it sits in the source file, e.g. `endpoints[2].alerts` or
    /// `monitorList[3] ("Shop API").notificationIDList`.
    pub place: String,
    /// A short reason, and what to do instead where there is something to do.
    pub what: String,
}

/// A source file that could not be read as its format; the message is one line naming the file
/// and, when the parser knows it, the line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ImportError {
    pub message: String,
}

/// The interval used when the source gives none, or one Triage cannot run (0 s).
pub(crate) const DEFAULT_INTERVAL_SECS: u32 = 60;

/// Collects an importer's output: probes with unique names, the services they use (once each)
/// and the notes.
#[derive(Default)]
pub(crate) struct Builder {
    probes: Vec<ProbeSpec>,
    unmapped: Vec<Unmapped>,
    probe_names: HashSet<String>,
    /// Service details learnt from the source (description, tags), by name.
    details: HashMap<String, ServiceInput>,
    /// Services in the order probes first used them.
    used: Vec<String>,
}

impl Builder {
    pub(crate) fn note(&mut self, place: impl Into<String>, what: impl Into<String>) {
        self.unmapped.push(Unmapped { place: place.into(), what: what.into() });
    }

    /// Remembers a service's description and tags; tags from several calls are merged, and the
    /// first non-empty description wins.
    pub(crate) fn describe_service(&mut self, name: &str, description: &str, tags: &[String]) {
        let entry = self.details.entry(name.to_string()).or_insert_with(|| ServiceInput {
            name: name.to_string(),
            description: String::new(),
            tags: Vec::new(),
            criticality: Criticality::default(),
        });
        if entry.description.is_empty() {
            entry.description = description.trim().to_string();
        }
        for tag in tags {
            if !entry.tags.contains(tag) {
                entry.tags.push(tag.clone());
            }
        }
    }

    /// Adds the probe under a name no other probe of the plan has, if Triage accepts it;
    /// otherwise notes at `place` why it was left out.
    pub(crate) fn probe(&mut self, place: &str, mut spec: ProbeSpec) {
        spec.name = self.unique_name(&spec.name);
        if let Err(e) = crate::monitor::check::spec::validate(&spec) {
            self.note(place, format!("not imported: Triage refuses its {}: {}", e.field, e.message));
            return;
        }
        let service = spec.service.clone().unwrap_or_default();
        if !self.used.contains(&service) {
            self.used.push(service);
        }
        self.probe_names.insert(spec.name.clone());
        self.probes.push(spec);
    }

    fn unique_name(&self, wanted: &str) -> String {
        if !self.probe_names.contains(wanted) {
            return wanted.to_string();
        }
        (2u32..)
            .map(|n| {
                let suffix = format!(" ({n})");
                format!("{}{suffix}", truncate(wanted, 200 - suffix.len()).trim_end())
            })
            .find(|candidate| !self.probe_names.contains(candidate))
            .unwrap_or_default()
    }

    /// Brings an interval given in milliseconds into Triage's whole seconds between 1 s and a
    /// day, noting any change.
    pub(crate) fn interval(&mut self, place: &str, ms: u64) -> u32 {
        if ms == 0 {
            self.note(place, format!("an interval of 0 s cannot run; {DEFAULT_INTERVAL_SECS} s used"));
            return DEFAULT_INTERVAL_SECS;
        }
        let secs = ms.div_ceil(1000);
        if secs > u64::from(MAX_INTERVAL_SECS) {
            self.note(
                place,
                format!("an interval of {secs} s is longer than Triage's longest (1 day); {MAX_INTERVAL_SECS} s used"),
            );
            return MAX_INTERVAL_SECS;
        }
        if !ms.is_multiple_of(1000) {
            self.note(place, format!("Triage counts intervals in whole seconds; {ms} ms rounded up to {secs} s"));
        }
        u32::try_from(secs).unwrap_or(MAX_INTERVAL_SECS)
    }

    /// A timeout Triage accepts for `interval_secs`: at least 1 ms and shorter than the interval.
    /// One that is not becomes 80 % of the interval, noted.
    pub(crate) fn timeout(&mut self, place: &str, ms: u64, interval_secs: u32) -> u32 {
        let limit = u64::from(interval_secs) * 1000;
        if (1..limit).contains(&ms) {
            return u32::try_from(ms).unwrap_or(u32::MAX);
        }
        let fitted = (limit * 4 / 5).max(1);
        self.note(
            place,
            format!("a timeout of {ms} ms must be shorter than the {interval_secs} s interval; {fitted} ms used"),
        );
        u32::try_from(fitted).unwrap_or(u32::MAX)
    }

    /// Adds a request header unless Triage would refuse it, noting the ones it drops.
    pub(crate) fn header(&mut self, place: &str, headers: &mut BTreeMap<String, String>, name: &str, value: &str) {
        let Ok(parsed) = http::HeaderName::from_bytes(name.trim().as_bytes()) else {
            self.note(place, "not a valid header name; header not imported");
            return;
        };
        if RESERVED_HEADERS.contains(&parsed.as_str()) {
            self.note(place, format!("Triage sets '{parsed}' itself; header not imported"));
            return;
        }
        if http::HeaderValue::from_str(value).is_err() {
            self.note(place, "the value is not a valid header value; header not imported");
            return;
        }
        headers.insert(parsed.as_str().to_string(), value.to_string());
    }

    pub(crate) fn finish(self) -> ImportPlan {
        let Builder { probes, unmapped, mut details, used, .. } = self;
        let services = used
            .into_iter()
            .map(|name| {
                details.remove(&name).unwrap_or_else(|| ServiceInput {
                    name,
                    description: String::new(),
                    tags: Vec::new(),
                    criticality: Criticality::default(),
                })
            })
            .collect();
        ImportPlan { services, probes, unmapped }
    }
}

/// A name Triage accepts (1–200 bytes, no surrounding or control whitespace), or `fallback` when
/// nothing usable is left.
pub(crate) fn clean_name(raw: &str, fallback: &str) -> String {
    let flat: String = raw.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let cut = truncate(flat.trim(), 200).trim();
    if cut.is_empty() { fallback.to_string() } else { cut.to_string() }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Accepted status codes as Triage's assertion: one code as a list, a run without gaps as a
/// range, anything else as the full list. `None` for no codes.
pub(crate) fn status_spec(codes: &BTreeSet<u16>) -> Option<StatusSpec> {
    let (first, last) = (*codes.first()?, *codes.last()?);
    let contiguous = usize::from(last - first) + 1 == codes.len();
    if codes.len() > 1 && contiguous {
        Some(StatusSpec::Range { min: first, max: last })
    } else {
        Some(StatusSpec::OneOf(codes.iter().copied().collect()))
    }
}

/// A DNS record type Triage can query, upper-cased, or `None`.
pub(crate) fn dns_type(raw: &str) -> Option<&'static str> {
    crate::monitor::check::dns::RecordKind::parse(raw.trim()).map(|k| k.as_str())
}

/// `dns://[resolver[:port]]/name?type=T`; port 53 is left out since Triage assumes it, and a
/// trailing dot on the name is dropped.
pub(crate) fn dns_url(resolver: Option<(&str, Option<u16>)>, name: &str, kind: &str) -> String {
    let authority = match resolver {
        None => String::new(),
        Some((host, None | Some(53))) => url_host(host),
        Some((host, Some(port))) => format!("{}:{port}", url_host(host)),
    };
    format!("dns://{authority}/{}?type={kind}", name.trim().trim_end_matches('.'))
}

/// A host as it appears in a URL: IPv6 addresses in brackets.
pub(crate) fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() }
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address, split. A port that is not a number
/// stays part of the host, so the URL built from it is refused with a clear reason.
pub(crate) fn split_host_port(s: &str) -> (String, Option<u16>) {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        return (host.to_string(), after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match s.split_once(':') {
        Some((host, port)) if !port.contains(':') => match port.parse() {
            Ok(port) => (host.to_string(), Some(port)),
            Err(_) => (s.to_string(), None),
        },
        _ => (s.to_string(), None),
    }
}

/// Text a TCP probe sends, escaped so that Triage's unescaping (`\n`, `\r`, `\t`, `\\`) gives
/// back exactly these characters.
pub(crate) fn send_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out
}

/// An expected value written as text in the source: `true`, `false`, `null` and numbers as JSON
/// values (Triage compares numbers and their text as equal, but not booleans and their text),
/// anything else as a string.
pub(crate) fn literal(raw: &str) -> serde_json::Value {
    let trimmed = raw.trim();
    match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(v @ (serde_json::Value::Bool(_) | serde_json::Value::Number(_) | serde_json::Value::Null)) => v,
        _ => serde_json::Value::String(trimmed.to_string()),
    }
}

/// `a.b[0].c` (Gatus paths, plain JSONata paths) as RFC 9535 JSONPath (`$.a.b[0].c`), or `None`
/// for anything else: wildcards, filters, functions, negative indices.
pub(crate) fn dotted_to_jsonpath(path: &str) -> Option<String> {
    let mut out = String::from("$");
    if path.is_empty() {
        return Some(out);
    }
    for segment in path.split('.') {
        let (name, indices) = segment.find('[').map_or((segment, ""), |i| segment.split_at(i));
        if name.is_empty() && indices.is_empty() {
            return None;
        }
        if !name.is_empty() {
            push_member(&mut out, name)?;
        }
        push_indices(&mut out, indices)?;
    }
    Some(out)
}

fn push_member(out: &mut String, name: &str) -> Option<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii());
    if first_ok && rest_ok {
        out.push('.');
        out.push_str(name);
        return Some(());
    }
    let quotable =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@' | ':' | '/' | '#' | '+') || !c.is_ascii();
    if !name.chars().all(quotable) {
        return None;
    }
    out.push_str(&format!("['{name}']"));
    Some(())
}

fn push_indices(out: &mut String, mut rest: &str) -> Option<()> {
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let (index, after) = inner.split_once(']')?;
        if index.is_empty() || !index.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        out.push_str(&format!("[{index}]"));
        rest = after;
    }
    Some(())
}

/// A Go (`1h30m`, `1.5s`, `500ms`) or Prometheus (`1d`, `2w`) duration in milliseconds, or
/// `None` when it is not one. A bare `0` is zero, as in both.
pub(crate) fn duration_ms(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3_600e3,
            "d" => 86_400e3,
            "w" => 604_800e3,
            "y" => 31_536_000e3,
            _ => return None,
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    if total.is_finite() && total >= 0.0 { Some(total.round() as u64) } else { None }
}

/// One of the source's patterns in shell style (`*` any text, `?` one character), as Triage can
/// check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    /// `*text*`: the text anywhere.
    Contains(String),
    /// No wildcard at all: exactly this text.
    Exact(String),
    /// Anything else, as an anchored regular expression.
    Regex(String),
}

/// `None` for patterns using character classes or escapes, whose meaning differs between
/// implementations.
pub(crate) fn glob(pattern: &str) -> Option<Glob> {
    if pattern.contains(['[', '\\']) {
        return None;
    }
    let wild = |s: &str| s.contains(['*', '?']);
    if !wild(pattern) {
        return Some(Glob::Exact(pattern.to_string()));
    }
    if let Some(inner) = pattern.strip_prefix('*').and_then(|p| p.strip_suffix('*'))
        && !inner.is_empty()
        && !wild(inner)
    {
        return Some(Glob::Contains(inner.to_string()));
    }
    let mut re = String::from("(?s)^");
    let mut buf = [0u8; 4];
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            other => re.push_str(&regex::escape(other.encode_utf8(&mut buf))),
        }
    }
    re.push('$');
    Some(Glob::Regex(re))
}

/// Whether a YAML value asks for anything: absent, empty and `false` do not, so settings written
/// out at their defaults are not reported as unmapped.
pub(crate) fn is_set(v: &serde_yaml_ng::Value) -> bool {
    use serde_yaml_ng::Value;
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.trim().is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        _ => true,
    }
}

/// A JSON parse error as one line: `file: line L, column C: what went wrong`.
pub(crate) fn json_error(file: &str, err: &serde_json::Error) -> ImportError {
    let (line, column) = (err.line(), err.column());
    let text = err.to_string();
    if line == 0 {
        return ImportError { message: format!("{file}: {}", one_line(&text)) };
    }
    let detail = text.replacen(&format!(" at line {line} column {column}"), "", 1);
    ImportError { message: format!("{file}: line {line}, column {column}: {}", one_line(&detail)) }
}

/// A YAML parse error as one line: `file: line L, column C: what went wrong` (the detail starts
/// with the path to the offending value when the parser knows it).
pub(crate) fn yaml_error(file: &str, err: &serde_yaml_ng::Error) -> ImportError {
    let text = err.to_string();
    let Some(location) = err.location() else {
        return ImportError { message: format!("{file}: {}", one_line(&text)) };
    };
    let (line, column) = (location.line(), location.column());
    let detail = text.replacen(&format!(" at line {line} column {column}"), "", 1);
    ImportError { message: format!("{file}: line {line}, column {column}: {}", one_line(&detail)) }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_of_both_dialects() {
        assert_eq!(duration_ms("30s"), Some(30_000));
        assert_eq!(duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("1.5s"), Some(1_500));
        assert_eq!(duration_ms("2d"), Some(172_800_000));
        assert_eq!(duration_ms("0"), Some(0));
        assert_eq!(duration_ms("60"), None, "a number without unit is not a duration");
        assert_eq!(duration_ms("5 minutes"), None);
    }

    #[test]
    fn paths_become_rfc9535() {
        assert_eq!(dotted_to_jsonpath("status").as_deref(), Some("$.status"));
        assert_eq!(dotted_to_jsonpath("data[0].id").as_deref(), Some("$.data[0].id"));
        assert_eq!(dotted_to_jsonpath("[1].name").as_deref(), Some("$[1].name"));
        assert_eq!(dotted_to_jsonpath("app.build-info").as_deref(), Some("$.app['build-info']"));
        assert_eq!(dotted_to_jsonpath("items[*].id"), None);
        assert_eq!(dotted_to_jsonpath("a..b"), None);
    }

    #[test]
    fn globs_become_checks() {
        assert_eq!(glob("*ok*"), Some(Glob::Contains("ok".into())));
        assert_eq!(glob("UP"), Some(Glob::Exact("UP".into())));
        assert_eq!(glob("v1.*"), Some(Glob::Regex(r"(?s)^v1\..*$".into())));
        assert_eq!(glob("[ab]*"), None);
    }

    #[test]
    fn status_codes_fold_into_ranges() {
        let codes = |c: &[u16]| c.iter().copied().collect::<BTreeSet<u16>>();
        assert_eq!(status_spec(&codes(&[200])), Some(StatusSpec::OneOf(vec![200])));
        assert_eq!(status_spec(&codes(&[200, 201, 202])), Some(StatusSpec::Range { min: 200, max: 202 }));
        assert_eq!(status_spec(&codes(&[200, 204])), Some(StatusSpec::OneOf(vec![200, 204])));
        assert_eq!(status_spec(&codes(&[])), None);
    }

    #[test]
    fn names_are_made_acceptable_and_unique() {
        assert_eq!(clean_name("  Shop\nAPI ", "x"), "Shop API");
        assert_eq!(clean_name("   ", "fallback"), "fallback");
        assert_eq!(clean_name(&"é".repeat(150), "x").len(), 200);
        let mut b = Builder::default();
        let spec = |name: &str| ProbeSpec::new(name, "svc", app::model::ProbeKind::Icmp, Some("icmp://db.example"));
        b.probe("a", spec("db"));
        b.probe("b", spec("db"));
        b.probe("c", spec("db"));
        let plan = b.finish();
        let names: Vec<&str> = plan.probes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["db", "db (2)", "db (3)"]);
        assert_eq!(plan.services.len(), 1);
        assert!(plan.unmapped.is_empty(), "{:?}", plan.unmapped);
    }

    #[test]
    fn hosts_and_ports_split() {
        assert_eq!(split_host_port("127.0.0.1:53"), ("127.0.0.1".to_string(), Some(53)));
        assert_eq!(split_host_port("[::1]:5353"), ("::1".to_string(), Some(5353)));
        assert_eq!(split_host_port("::1"), ("::1".to_string(), None));
        assert_eq!(split_host_port("ns.example"), ("ns.example".to_string(), None));
        assert_eq!(dns_url(Some(("::1", Some(53))), "shop.example.", "A"), "dns://[::1]/shop.example?type=A");
        assert_eq!(dns_url(None, "shop.example", "MX"), "dns:///shop.example?type=MX");
    }
}
