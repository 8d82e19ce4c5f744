//! gRPC health: the standard `grpc.health.v1.Health/Check` for one service name (empty: the
//! server as a whole), plaintext or TLS. The connection is Triage's own (resolved through the
//! network policy, connect and TLS timed); tonic speaks HTTP/2 and the protocol over it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::model::{ErrorClass, Phases};
use hyper_util::rt::TokioIo;
use tonic::transport::{Endpoint, Uri};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::confirm::Outcome;
use super::connect::{Failure, connect, micros};
use super::http::CheckResult;
use super::policy::NetworkPolicy;
use super::tcp::{SeenCertificate, handshake, judge};
use super::tls::TlsOptions;

#[derive(Clone, Debug)]
pub struct GrpcCheck {
    pub host: String,
    pub port: u16,
    /// The service asked about; empty asks about the server.
    pub service: String,
    /// `Some` for `grpcs://`.
    pub tls: Option<TlsOptions>,
    pub timeout: Duration,
    pub degraded_after: Option<Duration>,
    pub cert_min_days: Option<u32>,
}

/// What the connector measured, shared with the check (the connector runs inside tonic).
#[derive(Default)]
struct Measured {
    phases: Phases,
    seen: SeenCertificate,
    failure: Option<(ErrorClass, String)>,
}

pub async fn run(check: &GrpcCheck, policy: &NetworkPolicy) -> CheckResult {
    let mut result = CheckResult::pending(uuid::Uuid::new_v4().simple().to_string());
    let started = Instant::now();
    let measured = Arc::new(Mutex::new(Measured::default()));
    let attempt = tokio::time::timeout(check.timeout, ask(check, policy, measured.clone(), &result.request_id)).await;
    let m = std::mem::take(&mut *measured.lock().unwrap_or_else(|p| p.into_inner()));
    result.phases = m.phases;
    result.phases.total_us = micros(started.elapsed());
    result.cert_days_left = m.seen.days_left;
    match attempt {
        Err(_) => {
            result.error = Some(ErrorClass::Timeout);
            result.detail = Some(format!("no health answer within {} ms", check.timeout.as_millis()));
        }
        Ok(Err(Failure(class, detail))) => {
            // A failure inside the connector reaches tonic as an opaque error: prefer its own words.
            let (class, detail) = m.failure.unwrap_or((class, detail));
            result.error = Some(class);
            result.detail = Some(detail);
        }
        Ok(Ok((status, rpc))) => {
            result.phases.ttfb_us = Some(micros(rpc));
            let asked =
                if check.service.is_empty() { "the server".to_string() } else { format!("'{}'", check.service) };
            if status == ServingStatus::Serving {
                judge(&mut result, started, check.degraded_after, check.cert_min_days);
                if result.detail.is_none() {
                    result.detail = Some(format!("{asked} is SERVING"));
                }
            } else {
                result.outcome = Outcome::Down;
                result.error = Some(ErrorClass::Assertion);
                result.detail = Some(format!("{asked} is {}", status.as_str_name()));
            }
        }
    }
    result
}

async fn ask(
    check: &GrpcCheck,
    policy: &NetworkPolicy,
    measured: Arc<Mutex<Measured>>,
    request_id: &str,
) -> Result<(ServingStatus, Duration), Failure> {
    let scheme = if check.tls.is_some() { "https" } else { "http" };
    let host = if check.host.contains(':') { format!("[{}]", check.host) } else { check.host.clone() };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{host}:{}", check.port))
        .map_err(|e| Failure(ErrorClass::Protocol, format!("bad address: {e}")))?;
    let (policy, target, tls) = (policy.clone(), check.clone(), check.tls.clone());
    let shared = measured.clone();
    let connector = tower::service_fn(move |_: Uri| {
        let (policy, target, tls, shared) = (policy.clone(), target.clone(), tls.clone(), shared.clone());
        async move {
            let mut phases = Phases::default();
            let mut seen = SeenCertificate::default();
            let stream = connect(&policy, &target.host, target.port, &mut phases).await;
            let io = match stream {
                Ok(s) => match &tls {
                    None => Ok(Io::Plain(TokioIo::new(s))),
                    // Compiled with ALPN `h2` (see `spec`).
                    Some(options) => handshake(options, &target.host, s, &mut phases, &mut seen)
                        .await
                        .map(|t| Io::Tls(Box::new(TokioIo::new(t)))),
                },
                Err(f) => Err(f),
            };
            let mut m = shared.lock().unwrap_or_else(|p| p.into_inner());
            m.phases = phases;
            m.seen = seen;
            match io {
                Ok(io) => Ok(io),
                Err(Failure(class, detail)) => {
                    m.failure = Some((class, detail.clone()));
                    Err(std::io::Error::other(detail))
                }
            }
        }
    });
    let channel = endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| Failure(ErrorClass::Connect, format!("could not connect: {e}")))?;
    let t = Instant::now();
    let mut request = tonic::Request::new(HealthCheckRequest { service: check.service.clone() });
    if let Ok(v) = request_id.parse() {
        request.metadata_mut().insert("x-request-id", v);
    }
    if let Ok(v) = super::http::traceparent(request_id).parse() {
        request.metadata_mut().insert("traceparent", v);
    }
    let answer = HealthClient::new(channel).check(request).await.map_err(|status| {
        let class = match status.code() {
            tonic::Code::Unavailable => ErrorClass::Connect,
            tonic::Code::DeadlineExceeded => ErrorClass::Timeout,
            tonic::Code::NotFound => ErrorClass::Assertion,
            _ => ErrorClass::Protocol,
        };
        let what = if status.code() == tonic::Code::NotFound {
            format!("the server does not know the service '{}'", check.service)
        } else {
            format!("health check failed: {} ({})", status.message(), status.code())
        };
        Failure(class, what)
    })?;
    let status = ServingStatus::try_from(answer.into_inner().status).unwrap_or(ServingStatus::Unknown);
    Ok((status, t.elapsed()))
}

/// A plaintext or TLS connection, as one type for tonic.
enum Io {
    Plain(TokioIo<tokio::net::TcpStream>),
    // Boxed: a TLS session is over a kilobyte, a plain socket a few words.
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>),
}

macro_rules! delegate {
    ($self:ident, $io:ident => $call:expr) => {
        match $self.get_mut() {
            Io::Plain($io) => $call,
            Io::Tls($io) => {
                let $io = &mut **$io;
                $call
            }
        }
    };
}

impl hyper::rt::Read for Io {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, io => std::pin::Pin::new(io).poll_read(cx, buf))
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        delegate!(self, io => std::pin::Pin::new(io).poll_write(cx, buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, io => std::pin::Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, io => std::pin::Pin::new(io).poll_shutdown(cx))
    }
}
