//! What a response must satisfy: status, body text and pattern, JSONPath values and headers.
//! Each failure says which assertion failed, in words that never include header values of the
//! request (they may carry credentials).

use app::model::{CompareOp, HeaderAssertion, JsonPathAssertion, JsonPathTest};
use http::{HeaderMap, HeaderName};
use serde_json::Value;
use serde_json_path::JsonPath;

/// Which status codes count as success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusRule {
    Range { min: u16, max: u16 },
    OneOf(Vec<u16>),
}

impl Default for StatusRule {
    fn default() -> Self {
        Self::Range { min: 200, max: 399 }
    }
}

impl StatusRule {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            Self::Range { min, max } => (*min..=*max).contains(&status),
            Self::OneOf(codes) => codes.contains(&status),
        }
    }
}

/// Compiled assertions of one probe.
#[derive(Clone, Debug, Default)]
pub struct Assertions {
    pub status: StatusRule,
    pub body_contains: Option<String>,
    /// The `regex` crate matches in linear time: a hostile pattern cannot stall the prober.
    pub body_regex: Option<regex::Regex>,
    pub json_paths: Vec<JsonPathCheck>,
    pub headers: Vec<HeaderCheck>,
    pub cert_min_days: Option<u32>,
}

/// Why an assertion's definition is refused (a bad operator, pattern, path or header name).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadAssertion(pub String);

/// Why a response did not meet an assertion, for the result's failure reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unmet(pub String);

/// A compiled comparison: the operator, the expected value, and the pattern for `matches`.
#[derive(Clone, Debug)]
struct Comparison {
    op: CompareOp,
    expected: Option<Value>,
    pattern: Option<regex::Regex>,
}

impl Comparison {
    fn new(op: CompareOp, expected: Option<Value>) -> Result<Self, BadAssertion> {
        let needs_value = !matches!(op, CompareOp::Exists);
        if needs_value && expected.is_none() {
            return Err(BadAssertion(format!("operator {op:?} needs a `value`").to_lowercase()));
        }
        let pattern = match (op, &expected) {
            (CompareOp::Matches, Some(Value::String(p))) => {
                Some(regex::RegexBuilder::new(p).size_limit(1 << 20).build().map_err(|e| {
                    BadAssertion(format!(
                        "bad pattern: {}",
                        e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
                    ))
                })?)
            }
            (CompareOp::Matches, _) => return Err(BadAssertion("`matches` needs a string pattern as `value`".into())),
            _ => None,
        };
        if matches!(op, CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge)
            && !expected.as_ref().is_some_and(Value::is_number)
        {
            return Err(BadAssertion("ordering operators need a number as `value`".into()));
        }
        Ok(Self { op, expected, pattern })
    }

    /// Whether `actual` (the first matched node, or the header value) satisfies the comparison.
    fn holds(&self, actual: Option<&Value>) -> bool {
        let Some(actual) = actual else { return false };
        let expected = self.expected.as_ref();
        let number = |v: &Value| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let ordered = |f: fn(f64, f64) -> bool| match (number(actual), expected.and_then(number)) {
            (Some(a), Some(b)) => f(a, b),
            _ => false,
        };
        match self.op {
            CompareOp::Exists => true,
            CompareOp::Eq => expected.is_some_and(|e| loosely_equal(actual, e)),
            CompareOp::Ne => expected.is_some_and(|e| !loosely_equal(actual, e)),
            CompareOp::Contains => match (actual, expected) {
                (Value::String(a), Some(Value::String(e))) => a.contains(e.as_str()),
                (Value::Array(items), Some(e)) => items.iter().any(|i| loosely_equal(i, e)),
                _ => false,
            },
            CompareOp::Lt => ordered(|a, b| a < b),
            CompareOp::Le => ordered(|a, b| a <= b),
            CompareOp::Gt => ordered(|a, b| a > b),
            CompareOp::Ge => ordered(|a, b| a >= b),
            CompareOp::Matches => match (actual, &self.pattern) {
                (Value::String(a), Some(p)) => p.is_match(a),
                _ => false,
            },
        }
    }
}

/// Equality where a number and its decimal text are the same (headers are always text).
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.trim().parse::<f64>().ok() == n.as_f64()
        }
        _ => a == b,
    }
}

/// A JSONPath (RFC 9535) assertion: the first node the path selects is compared.
#[derive(Clone, Debug)]
pub struct JsonPathCheck {
    source: String,
    path: JsonPath,
    comparison: Comparison,
}

impl JsonPathCheck {
    pub fn new(a: &JsonPathAssertion) -> Result<Self, BadAssertion> {
        let path =
            JsonPath::parse(&a.path).map_err(|e| BadAssertion(format!("'{}' is not a JSONPath: {e}", a.path)))?;
        Ok(Self { source: a.path.clone(), path, comparison: Comparison::new(a.op, a.value.clone())? })
    }

    fn check(&self, body: &Value) -> Result<(), Unmet> {
        let nodes = self.path.query(body);
        let first = nodes.first();
        if self.comparison.holds(first) {
            return Ok(());
        }
        let got = first.map(|v| truncate(&v.to_string(), 80)).unwrap_or_else(|| "nothing".into());
        Err(Unmet(format!("JSONPath {} is {got}, expected {}", self.source, describe(&self.comparison))))
    }
}

/// A JSONPath assertion tried on a sample body (the form's tester): the nodes the path selects
/// and the verdict a check of that body would give, in the same words.
pub fn try_json_path(a: &JsonPathAssertion, body: &str) -> Result<JsonPathTest, BadAssertion> {
    let check = JsonPathCheck::new(a)?;
    let json: Value = serde_json::from_str(body)
        .map_err(|e| BadAssertion(format!("the sample is not JSON (line {}, column {})", e.line(), e.column())))?;
    let nodes = check.path.query(&json).all().into_iter().take(20).map(|v| truncate(&v.to_string(), 200)).collect();
    let verdict = check.check(&json);
    Ok(JsonPathTest { nodes, passed: verdict.is_ok(), reason: verdict.err().map(|Unmet(why)| why) })
}

/// A response-header assertion.
#[derive(Clone, Debug)]
pub struct HeaderCheck {
    name: HeaderName,
    comparison: Comparison,
}

impl HeaderCheck {
    pub fn new(a: &HeaderAssertion) -> Result<Self, BadAssertion> {
        let name = HeaderName::from_bytes(a.name.as_bytes())
            .map_err(|_| BadAssertion(format!("'{}' is not a header name", a.name)))?;
        Ok(Self { name, comparison: Comparison::new(a.op, a.value.clone().map(Value::String))? })
    }

    /// Equality on one header value, as the older single-header assertion had it.
    pub fn equals(name: HeaderName, value: &str) -> Self {
        Self {
            name,
            comparison: Comparison { op: CompareOp::Eq, expected: Some(Value::String(value.into())), pattern: None },
        }
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), Unmet> {
        let actual = headers.get(&self.name).and_then(|v| v.to_str().ok()).map(|s| Value::String(s.to_string()));
        if self.comparison.holds(actual.as_ref()) {
            return Ok(());
        }
        Err(Unmet(format!("header {} is not {}", self.name, describe(&self.comparison))))
    }
}

fn describe(c: &Comparison) -> String {
    let v = c.expected.as_ref().map(|v| truncate(&v.to_string(), 80)).unwrap_or_default();
    match c.op {
        CompareOp::Exists => "present".into(),
        CompareOp::Eq => format!("= {v}"),
        CompareOp::Ne => format!("≠ {v}"),
        CompareOp::Contains => format!("containing {v}"),
        CompareOp::Lt => format!("< {v}"),
        CompareOp::Le => format!("≤ {v}"),
        CompareOp::Gt => format!("> {v}"),
        CompareOp::Ge => format!("≥ {v}"),
        CompareOp::Matches => format!("matching {v}"),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

/// Why a response failed its assertions: `Status` or `Assertion` with a description.
pub enum Verdict {
    Pass,
    BadStatus(String),
    Failed(String),
}

pub fn assess(a: &Assertions, status: u16, headers: &HeaderMap, body: &[u8]) -> Verdict {
    if !a.status.accepts(status) {
        return Verdict::BadStatus(format!("status {status} not accepted"));
    }
    let text = String::from_utf8_lossy(body);
    if let Some(needle) = &a.body_contains
        && !text.contains(needle.as_str())
    {
        return Verdict::Failed(format!("body does not contain {needle:?}"));
    }
    if let Some(re) = &a.body_regex
        && !re.is_match(&text)
    {
        return Verdict::Failed(format!("body does not match /{}/", re.as_str()));
    }
    for h in &a.headers {
        if let Err(Unmet(why)) = h.check(headers) {
            return Verdict::Failed(why);
        }
    }
    if !a.json_paths.is_empty() {
        let json: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return Verdict::Failed("body is not JSON (a JSONPath assertion needs JSON)".into()),
        };
        for jp in &a.json_paths {
            if let Err(Unmet(why)) = jp.check(&json) {
                return Verdict::Failed(why);
            }
        }
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jp(path: &str, op: CompareOp, value: Option<Value>) -> JsonPathCheck {
        JsonPathCheck::new(&JsonPathAssertion { path: path.into(), op, value }).expect("valid")
    }

    fn passes(a: &Assertions, body: &Value) -> bool {
        matches!(assess(a, 200, &HeaderMap::new(), body.to_string().as_bytes()), Verdict::Pass)
    }

    #[test]
    fn json_path_operators() {
        let body = json!({"status": "UP", "db": {"latency_ms": 12, "pool": [1, 2, 3]}, "version": "1.4.2"});
        let cases = [
            (jp("$.status", CompareOp::Eq, Some(json!("UP"))), true),
            (jp("$.status", CompareOp::Eq, Some(json!("DOWN"))), false),
            (jp("$.status", CompareOp::Ne, Some(json!("DOWN"))), true),
            (jp("$.db.latency_ms", CompareOp::Lt, Some(json!(50))), true),
            (jp("$.db.latency_ms", CompareOp::Gt, Some(json!(50))), false),
            (jp("$.db.latency_ms", CompareOp::Eq, Some(json!(12.0))), true),
            (jp("$.db.pool", CompareOp::Contains, Some(json!(2))), true),
            (jp("$.version", CompareOp::Matches, Some(json!("^1\\.4\\."))), true),
            (jp("$.missing", CompareOp::Exists, None), false),
            (jp("$.db", CompareOp::Exists, None), true),
            (jp("$.missing", CompareOp::Ne, Some(json!("x"))), false),
        ];
        for (i, (check, want)) in cases.into_iter().enumerate() {
            let a = Assertions { json_paths: vec![check], ..Default::default() };
            assert_eq!(passes(&a, &body), want, "case {i}");
        }
    }

    #[test]
    fn the_tester_shows_the_nodes_and_the_checks_verdict() {
        let body = r#"{"checks":[{"name":"db","status":"DOWN"},{"name":"cache","status":"UP"}]}"#;
        let a = |path: &str, op, value: Option<Value>| JsonPathAssertion { path: path.into(), op, value };
        let t = try_json_path(&a("$.checks[*].status", CompareOp::Eq, Some(json!("UP"))), body).expect("valid");
        assert_eq!(t.nodes, vec!["\"DOWN\"", "\"UP\""]);
        assert!(!t.passed, "the first node is compared, as a check does");
        assert_eq!(t.reason.as_deref(), Some("JSONPath $.checks[*].status is \"DOWN\", expected = \"UP\""));
        let t = try_json_path(&a("$.checks[?@.status == 'UP'].name", CompareOp::Eq, Some(json!("cache"))), body)
            .expect("valid");
        assert!(t.passed && t.reason.is_none());
        let bad = try_json_path(&a("$.checks", CompareOp::Exists, None), "{oops").expect_err("not JSON");
        assert!(bad.0.contains("line 1"), "{bad}");
        assert!(try_json_path(&a("checks", CompareOp::Exists, None), body).is_err(), "paths start with $");
    }

    #[test]
    fn a_non_json_body_fails_json_assertions_clearly() {
        let a = Assertions { json_paths: vec![jp("$.a", CompareOp::Exists, None)], ..Default::default() };
        let Verdict::Failed(why) = assess(&a, 200, &HeaderMap::new(), b"<html>") else { panic!("must fail") };
        assert!(why.contains("not JSON"), "{why}");
    }

    #[test]
    fn comparisons_need_the_right_value() {
        assert!(Comparison::new(CompareOp::Eq, None).is_err());
        assert!(Comparison::new(CompareOp::Lt, Some(json!("ten"))).is_err());
        assert!(Comparison::new(CompareOp::Matches, Some(json!("("))).is_err());
        assert!(Comparison::new(CompareOp::Exists, None).is_ok());
    }

    #[test]
    fn header_operators() {
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/json; charset=utf-8".parse().expect("value"));
        let check = |op, value: Option<&str>| {
            HeaderCheck::new(&HeaderAssertion { name: "content-type".into(), op, value: value.map(str::to_owned) })
                .expect("valid")
                .check(&h)
                .is_ok()
        };
        assert!(check(CompareOp::Contains, Some("json")));
        assert!(!check(CompareOp::Eq, Some("text/html")));
        assert!(check(CompareOp::Exists, None));
        assert!(check(CompareOp::Matches, Some("^application/")));
    }
}
