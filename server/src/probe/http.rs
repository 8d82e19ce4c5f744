//! One HTTP check, over Triage's own connection path so that every phase is measured and the
//! network policy sits between resolving and connecting: resolve (policy-checked) → TCP connect
//! → HTTP/1.1 via `hyper::client::conn` (time to first byte, then the body under a size cap).
//!
//! Each check opens a fresh connection, so DNS and connect are measured every time. Every step
//! runs under the check's one timeout. The request carries a fresh `x-request-id`, which is kept
//! with the result so a failing check can be found in the target's own logs.

use std::io::Read;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, HOST, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use url::Url;

use super::policy::{NetworkPolicy, ResolveError, resolve_checked};
use super::state::Outcome;

/// Longest body excerpt kept with a failed result.
pub const EXCERPT_LIMIT: usize = 1024;

/// Why a check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Which status codes count as success.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    fn accepts(&self, status: u16) -> bool {
        match self {
            Self::Range { min, max } => (*min..=*max).contains(&status),
            Self::OneOf(codes) => codes.contains(&status),
        }
    }
}

/// What a response must satisfy beyond its status.
#[derive(Clone, Debug, Default)]
pub struct Assertions {
    pub status: StatusRule,
    pub body_contains: Option<String>,
    /// The `regex` crate matches in linear time: a hostile pattern cannot stall the prober.
    pub body_regex: Option<regex::Regex>,
    pub header_equals: Option<(HeaderName, String)>,
}

#[derive(Clone, Debug)]
pub struct HttpCheck {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Bytes>,
    pub timeout: Duration,
    /// Largest body read, counted after decompression.
    pub body_cap: usize,
    /// Slower than this (but otherwise fine) is `degraded`.
    pub degraded_after: Option<Duration>,
    pub assertions: Assertions,
}

impl HttpCheck {
    pub fn get(url: Url, timeout: Duration) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: Vec::new(),
            body: None,
            timeout,
            body_cap: 1 << 20,
            degraded_after: None,
            assertions: Assertions::default(),
        }
    }
}

/// Durations of each phase in µs; `None` for a phase that did not happen (no DNS for an IP
/// literal, no TLS over plain HTTP, nothing after a failure).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    pub dns_us: Option<u64>,
    pub connect_us: Option<u64>,
    pub tls_us: Option<u64>,
    pub ttfb_us: Option<u64>,
    pub transfer_us: Option<u64>,
    pub total_us: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub error: Option<ErrorClass>,
    /// A short human explanation of `error` (never headers or credentials).
    pub detail: Option<String>,
    pub phases: Phases,
    pub response_bytes: u64,
    pub request_id: String,
    /// First ≤ 1 KiB of the body, on failure only.
    pub body_excerpt: Option<String>,
    /// The (decompressed) body, for readiness parsing and metrics scraping; not stored.
    pub body: Bytes,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

struct Failure {
    class: ErrorClass,
    detail: String,
}

impl Failure {
    fn new(class: ErrorClass, detail: impl Into<String>) -> Self {
        Self { class, detail: detail.into() }
    }
}

struct Response {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
    wire_bytes: u64,
}

/// Runs the check once. Never panics and never exceeds `check.timeout` (plus scheduling noise).
pub async fn run(check: &HttpCheck, policy: &NetworkPolicy) -> CheckResult {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let mut phases = Phases::default();
    let attempt = tokio::time::timeout(check.timeout, exchange(check, policy, &request_id, &mut phases)).await;
    phases.total_us = micros(started.elapsed());
    let mut result = CheckResult {
        outcome: Outcome::Down,
        status: None,
        error: None,
        detail: None,
        phases,
        response_bytes: 0,
        request_id,
        body_excerpt: None,
        body: Bytes::new(),
    };
    let response = match attempt {
        Err(_) => {
            result.error = Some(ErrorClass::Timeout);
            result.detail = Some(format!("no complete answer within {} ms", check.timeout.as_millis()));
            return result;
        }
        Ok(Err(failure)) => {
            result.error = Some(failure.class);
            result.detail = Some(failure.detail);
            return result;
        }
        Ok(Ok(response)) => response,
    };
    result.status = Some(response.status);
    result.response_bytes = response.wire_bytes;
    let verdict = assess(&check.assertions, &response);
    result.body = response.body;
    match verdict {
        Err(failure) => {
            result.error = Some(failure.class);
            result.detail = Some(failure.detail);
            result.body_excerpt = Some(excerpt(&result.body));
        }
        Ok(()) => {
            let slow = check.degraded_after.is_some_and(|limit| started.elapsed() > limit);
            result.outcome = if slow { Outcome::Degraded } else { Outcome::Up };
        }
    }
    result
}

async fn exchange(
    check: &HttpCheck,
    policy: &NetworkPolicy,
    request_id: &str,
    phases: &mut Phases,
) -> Result<Response, Failure> {
    let url = &check.url;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(Failure::new(ErrorClass::Tls, "https checks are not available in this build yet"));
        }
        other => return Err(Failure::new(ErrorClass::Protocol, format!("scheme '{other}' is not probed (http only)"))),
    }
    let host = url.host_str().ok_or_else(|| Failure::new(ErrorClass::Protocol, "URL has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);

    let t = Instant::now();
    let is_literal = matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)));
    let addrs = resolve_checked(policy, host, port).await.map_err(|e| match e {
        ResolveError::Dns(msg) => Failure::new(ErrorClass::Dns, msg),
        blocked @ ResolveError::Blocked { .. } => Failure::new(ErrorClass::BlockedByPolicy, blocked.to_string()),
    })?;
    if !is_literal {
        phases.dns_us = Some(micros(t.elapsed()));
    }

    let t = Instant::now();
    let mut last_err = None;
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let stream = stream.ok_or_else(|| {
        Failure::new(ErrorClass::Connect, last_err.map(|e| e.kind().to_string()).unwrap_or_else(|| "no address".into()))
    })?;
    phases.connect_us = Some(micros(t.elapsed()));
    let _ = stream.set_nodelay(true);

    let t = Instant::now();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::new(ErrorClass::Protocol, e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut builder = Request::builder().method(check.method.clone()).uri(path);
    for (name, value) in &check.headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .header(HOST, host_header)
        .header(USER_AGENT, concat!("triage/", env!("CARGO_PKG_VERSION")))
        .header(ACCEPT_ENCODING, "gzip")
        .header("x-request-id", request_id)
        .body(Full::new(check.body.clone().unwrap_or_default()))
        .map_err(|e| Failure::new(ErrorClass::Protocol, format!("invalid request: {e}")))?;
    let response = sender.send_request(request).await.map_err(|e| Failure::new(ErrorClass::Protocol, e.to_string()));
    let response = match response {
        Ok(r) => r,
        Err(f) => {
            driver.abort();
            return Err(f);
        }
    };
    phases.ttfb_us = Some(micros(t.elapsed()));

    let t = Instant::now();
    let status = response.status().as_u16();
    let (parts, mut body) = response.into_parts();
    let mut raw: Vec<u8> = Vec::new();
    let mut wire_bytes = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Failure::new(ErrorClass::Protocol, e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            wire_bytes += data.len() as u64;
            if raw.len() + data.len() > check.body_cap {
                driver.abort();
                return Err(Failure::new(
                    ErrorClass::BodyTooLarge,
                    format!("body exceeds the {}-byte cap", check.body_cap),
                ));
            }
            raw.extend_from_slice(data);
        }
    }
    driver.abort();
    let gzipped = parts.headers.get(CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = if gzipped { gunzip_capped(&raw, check.body_cap)? } else { Bytes::from(raw) };
    phases.transfer_us = Some(micros(t.elapsed()));
    Ok(Response { status, headers: parts.headers, body, wire_bytes })
}

/// Decompresses at most `cap` bytes: a small bomb that would expand to gigabytes is cut off.
fn gunzip_capped(raw: &[u8], cap: usize) -> Result<Bytes, Failure> {
    let mut out = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(raw)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Failure::new(ErrorClass::Protocol, format!("bad gzip body: {e}")))?;
    if out.len() > cap {
        return Err(Failure::new(ErrorClass::BodyTooLarge, format!("decompressed body exceeds the {cap}-byte cap")));
    }
    Ok(Bytes::from(out))
}

fn assess(a: &Assertions, r: &Response) -> Result<(), Failure> {
    if !a.status.accepts(r.status) {
        return Err(Failure::new(ErrorClass::Status, format!("status {} not accepted", r.status)));
    }
    let text = String::from_utf8_lossy(&r.body);
    if let Some(needle) = &a.body_contains
        && !text.contains(needle.as_str())
    {
        return Err(Failure::new(ErrorClass::Assertion, format!("body does not contain {needle:?}")));
    }
    if let Some(re) = &a.body_regex
        && !re.is_match(&text)
    {
        return Err(Failure::new(ErrorClass::Assertion, format!("body does not match /{}/", re.as_str())));
    }
    if let Some((name, want)) = &a.header_equals {
        let got = r.headers.get(name).and_then(|v| v.to_str().ok());
        if got != Some(want.as_str()) {
            return Err(Failure::new(ErrorClass::Assertion, format!("header {name} is not {want:?}")));
        }
    }
    Ok(())
}

/// The start of the body, cut at a character boundary, at most 1 KiB.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_LIMIT)]);
    let mut s = text.into_owned();
    while s.len() > EXCERPT_LIMIT {
        s.pop();
    }
    s
}
