//! One HTTP check, over Triage's own connection path so that every phase is measured and the
//! network policy sits between resolving and connecting: resolve (policy-checked) → TCP connect
//! → rustls handshake for https → HTTP/1.1 via `hyper::client::conn` (time to first byte, then
//! the body under a size cap). Redirects are followed only when the probe asks, each hop resolved
//! and policy-checked again.
//!
//! Each check opens a fresh connection, so DNS and connect are measured every time. Every step
//! runs under the check's one timeout. The request carries a fresh `x-request-id`, which is kept
//! with the result so a failing check can be found in the target's own logs.

use std::io::Read;
use std::time::{Duration, Instant};

use app::model::EchoCount;
use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, HOST, LOCATION, USER_AGENT};
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

pub use super::assertions::{Assertions, HeaderCheck, JsonPathCheck, StatusRule};
use super::assertions::{Verdict, assess};
use super::confirm::Outcome;
use super::connect::{self, connect, micros};
use super::policy::NetworkPolicy;
use super::tls::{self, TlsOptions};

/// Longest body excerpt kept with a failed result.
pub const EXCERPT_LIMIT: usize = 1024;

pub use app::model::{ErrorClass, Phases};

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
    pub follow_redirects: bool,
    pub max_redirects: u32,
    pub tls: TlsOptions,
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
            follow_redirects: false,
            max_redirects: 5,
            tls: TlsOptions::default(),
        }
    }
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
    /// Days until the server certificate expires (https only).
    pub cert_days_left: Option<i32>,
    /// The (decompressed) body, for readiness parsing and metrics scraping; not stored.
    pub body: Bytes,
    /// ICMP echoes sent and answered.
    pub echo: Option<EchoCount>,
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

/// A W3C `traceparent` whose trace id is the check's request id (32 hex digits, never all zero):
/// the one id finds the request in the target's logs and in its traces. The parent span id is
/// fresh for each request; `01`: sampled, so a tracing backend keeps the trace.
pub fn traceparent(request_id: &str) -> String {
    format!("00-{request_id}-{:016x}-01", fastrand::u64(1..))
}

/// Runs the check once. Never panics and never exceeds `check.timeout` (plus scheduling noise).
pub async fn run(check: &HttpCheck, policy: &NetworkPolicy) -> CheckResult {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let mut phases = Phases::default();
    let mut cert_days = None;
    let attempt =
        tokio::time::timeout(check.timeout, follow(check, policy, &request_id, &mut phases, &mut cert_days)).await;
    phases.total_us = micros(started.elapsed());
    let mut result = CheckResult { phases, cert_days_left: cert_days, ..CheckResult::pending(request_id) };
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
    let verdict = assess(&check.assertions, response.status, &response.headers, &response.body);
    result.body = response.body;
    let failed = match verdict {
        Verdict::Pass => None,
        Verdict::BadStatus(why) => Some((ErrorClass::Status, why)),
        Verdict::Failed(why) => Some((ErrorClass::Assertion, why)),
    };
    if let Some((class, why)) = failed {
        result.error = Some(class);
        result.detail = Some(why);
        result.body_excerpt = Some(excerpt(&result.body));
        return result;
    }
    let slow = check.degraded_after.is_some_and(|limit| started.elapsed() > limit);
    result.outcome = if slow { Outcome::Degraded } else { Outcome::Up };
    if slow {
        result.detail = Some(format!("slower than {} ms", check.degraded_after.unwrap_or_default().as_millis()));
    }
    if let (Some(min), Some(days)) = (check.assertions.cert_min_days, cert_days)
        && i64::from(days) < i64::from(min)
    {
        // The target still answers: a certificate close to expiry is a warning, not an outage.
        result.outcome = Outcome::Degraded;
        result.error = Some(ErrorClass::CertExpiry);
        result.detail = Some(format!("certificate expires in {days} days (threshold {min})"));
    }
    result
}

/// A response as a caller that is not a probe needs it (notification delivery): the status, the
/// headers (`Retry-After`) and the body, under the same policy, timeout and redirect rules.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Sends one request the way a check does, without judging the answer.
pub async fn send(check: &HttpCheck, policy: &NetworkPolicy) -> Result<Answer, (ErrorClass, String)> {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let mut phases = Phases::default();
    let mut cert_days = None;
    match tokio::time::timeout(check.timeout, follow(check, policy, &request_id, &mut phases, &mut cert_days)).await {
        Err(_) => Err((ErrorClass::Timeout, format!("no complete answer within {} ms", check.timeout.as_millis()))),
        Ok(Err(f)) => Err((f.class, f.detail)),
        Ok(Ok(r)) => Ok(Answer { status: r.status, headers: r.headers, body: r.body }),
    }
}

impl CheckResult {
    /// A result before it is judged: down, nothing measured yet.
    pub(crate) fn pending(request_id: String) -> Self {
        CheckResult {
            outcome: Outcome::Down,
            status: None,
            error: None,
            detail: None,
            phases: Phases::default(),
            response_bytes: 0,
            request_id,
            body_excerpt: None,
            cert_days_left: None,
            body: Bytes::new(),
            echo: None,
        }
    }
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// One request, or a chain of them when the probe follows redirects. The phases describe the
/// last hop; the check's total covers them all.
async fn follow(
    check: &HttpCheck,
    policy: &NetworkPolicy,
    request_id: &str,
    phases: &mut Phases,
    cert_days: &mut Option<i32>,
) -> Result<Response, Failure> {
    let mut url = check.url.clone();
    let mut method = check.method.clone();
    let mut body = check.body.clone();
    let mut hop = 0;
    let origin = check.url.origin();
    loop {
        *phases = Phases::default();
        // The probe's headers are its credentials (they are write-only for that reason): they go
        // to the origin they were given for, never to wherever a redirect points.
        let headers = if url.origin() == origin { check.headers.as_slice() } else { &[] };
        let hop_request = Hop { url: &url, method: &method, headers, body: body.clone() };
        let response = exchange(check, hop_request, policy, request_id, phases, cert_days).await?;
        if !check.follow_redirects || !is_redirect(response.status) {
            return Ok(response);
        }
        if hop >= check.max_redirects {
            return Err(Failure::new(ErrorClass::Protocol, format!("more than {} redirects", check.max_redirects)));
        }
        hop += 1;
        let location = response.headers.get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
            Failure::new(ErrorClass::Protocol, format!("redirect {} without a Location", response.status))
        })?;
        let next = url
            .join(location)
            .map_err(|_| Failure::new(ErrorClass::Protocol, "redirect to an invalid URL".to_string()))?;
        if !matches!(next.scheme(), "http" | "https") {
            return Err(Failure::new(ErrorClass::Protocol, format!("redirect to a '{}' URL", next.scheme())));
        }
        if response.status == 303 || (matches!(response.status, 301 | 302) && method == Method::POST) {
            method = Method::GET;
            body = None;
        }
        // A 307/308 re-sends the body; the body may hold a secret too, so only to its own origin.
        if body.is_some() && next.origin() != origin {
            return Err(Failure::new(
                ErrorClass::Protocol,
                format!(
                    "redirect {} to another origin ({}) would re-send the request body; not followed",
                    response.status,
                    next.origin().ascii_serialization()
                ),
            ));
        }
        url = next;
    }
}

/// One request of a redirect chain: where, how, and what it carries.
struct Hop<'a> {
    url: &'a Url,
    method: &'a Method,
    headers: &'a [(HeaderName, HeaderValue)],
    body: Option<Bytes>,
}

async fn exchange(
    check: &HttpCheck,
    hop: Hop<'_>,
    policy: &NetworkPolicy,
    request_id: &str,
    phases: &mut Phases,
    cert_days: &mut Option<i32>,
) -> Result<Response, Failure> {
    let Hop { url, method, headers, body } = hop;
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(Failure::new(
                ErrorClass::Protocol,
                format!("scheme '{other}' is not probed (http and https only)"),
            ));
        }
    };
    let host = url.host_str().ok_or_else(|| Failure::new(ErrorClass::Protocol, "URL has no host"))?;
    let port = url.port_or_known_default().unwrap_or(if https { 443 } else { 80 });

    let stream = connect(policy, host, port, phases)
        .await
        .map_err(|connect::Failure(class, detail)| Failure { class, detail })?;

    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut builder = Request::builder().method(method.clone()).uri(path);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    // A probe that sets its own `traceparent` (to join an existing trace) keeps it.
    if !headers.iter().any(|(n, _)| n == "traceparent") {
        builder = builder.header("traceparent", traceparent(request_id));
    }
    let request = builder
        .header(HOST, host_header)
        .header(USER_AGENT, concat!("triage/", env!("CARGO_PKG_VERSION")))
        .header(ACCEPT_ENCODING, "gzip")
        .header("x-request-id", request_id)
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| Failure::new(ErrorClass::Protocol, format!("invalid request: {e}")))?;

    if !https {
        return http1(TokioIo::new(stream), request, check.body_cap, phases).await;
    }
    let t = Instant::now();
    let config = check.tls.config().ok_or_else(|| Failure::new(ErrorClass::Tls, "no TLS configuration available"))?;
    let name = tls::server_name(host).map_err(|m| Failure::new(ErrorClass::Tls, m))?;
    let tls_stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| Failure::new(ErrorClass::Tls, tls_failure(&e)))?;
    phases.tls_us = Some(micros(t.elapsed()));
    *cert_days = tls_stream.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(tls::days_left);
    http1(TokioIo::new(tls_stream), request, check.body_cap, phases).await
}

/// rustls reports certificate problems inside an io::Error; say what was wrong with the certificate.
fn tls_failure(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(why)) => format!("invalid certificate: {why:?}"),
        Some(other) => format!("TLS handshake failed: {other}"),
        None => format!("TLS handshake failed: {}", e.kind()),
    }
}

/// HTTP/1.1 over an established (plain or TLS) connection: time to first byte, then the body.
async fn http1<S>(
    io: TokioIo<S>,
    request: Request<Full<Bytes>>,
    body_cap: usize,
    phases: &mut Phases,
) -> Result<Response, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let t = Instant::now();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Failure::new(ErrorClass::Protocol, e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let response = match sender.send_request(request).await {
        Ok(r) => r,
        Err(e) => {
            driver.abort();
            return Err(Failure::new(ErrorClass::Protocol, e.to_string()));
        }
    };
    phases.ttfb_us = Some(micros(t.elapsed()));

    let t = Instant::now();
    let status = response.status().as_u16();
    let (parts, mut body) = response.into_parts();
    let mut raw: Vec<u8> = Vec::new();
    let mut wire_bytes = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                driver.abort();
                return Err(Failure::new(ErrorClass::Protocol, e.to_string()));
            }
        };
        if let Some(data) = frame.data_ref() {
            wire_bytes += data.len() as u64;
            if raw.len() + data.len() > body_cap {
                driver.abort();
                return Err(Failure::new(ErrorClass::BodyTooLarge, format!("body exceeds the {body_cap}-byte cap")));
            }
            raw.extend_from_slice(data);
        }
    }
    driver.abort();
    let gzipped = parts.headers.get(CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = if gzipped { gunzip_capped(&raw, body_cap)? } else { Bytes::from(raw) };
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

/// The start of the body, cut at a character boundary, at most 1 KiB.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_LIMIT)]);
    let mut s = text.into_owned();
    while s.len() > EXCERPT_LIMIT {
        s.pop();
    }
    s
}
