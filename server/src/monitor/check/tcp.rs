//! Checks below HTTP: a TCP connect (`tcp`), optionally a TLS handshake, a line sent and an
//! answer expected (a banner, a `PONG`); and a TLS handshake on its own (`tls`), which reports
//! the certificate: days left, issuer, and whether the chain and name verify.
//!
//! Both resolve through the network policy first and run under the probe's one timeout, like an
//! HTTP check; their phases are the same columns (DNS, connect, TLS, and the wait for the
//! expected answer as time to first byte).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::model::{ErrorClass, Phases};
use bytes::Bytes;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::confirm::Outcome;
use super::connect::{Failure, connect, micros};
use super::http::{CheckResult, excerpt};
use super::policy::NetworkPolicy;
use super::tls::{self, TlsOptions};

/// Most bytes read while waiting for `expect`.
const EXPECT_CAP: usize = 64 << 10;

#[derive(Clone, Debug)]
pub struct TcpCheck {
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
    pub degraded_after: Option<Duration>,
    /// `Some`: a TLS handshake after connecting.
    pub tls: Option<TlsOptions>,
    pub send: Option<Bytes>,
    pub expect: Option<String>,
    pub cert_min_days: Option<u32>,
}

/// The `tls` kind: the handshake and the certificate only.
#[derive(Clone, Debug)]
pub struct CertCheck {
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
    pub degraded_after: Option<Duration>,
    pub tls: TlsOptions,
    pub cert_min_days: Option<u32>,
}

/// What a handshake saw of the server's certificate, whether or not it verified.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeenCertificate {
    pub days_left: Option<i32>,
    pub issuer: Option<String>,
}

/// A TLS handshake over `stream`, timed. The certificate is recorded before verification, so a
/// refused one still reports its issuer and expiry.
pub(crate) async fn handshake(
    options: &TlsOptions,
    host: &str,
    stream: TcpStream,
    phases: &mut Phases,
    seen: &mut SeenCertificate,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Failure> {
    let unavailable = || Failure(ErrorClass::Tls, "no TLS configuration available".into());
    let base = options.config().ok_or_else(unavailable)?;
    let recorder = Arc::new(Recorder { inner: options.verifier().ok_or_else(unavailable)?, seen: Mutex::new(None) });
    let mut config = ClientConfig::clone(&base);
    config.dangerous().set_certificate_verifier(recorder.clone());
    // A resumed session skips certificate verification, so the recorder would see nothing and
    // expiry would go unchecked from the second check on: every check does a full handshake.
    config.resumption = rustls::client::Resumption::disabled();
    let name = tls::server_name(host).map_err(|m| Failure(ErrorClass::Tls, m))?;
    let t = Instant::now();
    let outcome = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream).await;
    let presented = recorder.seen.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(cert) = presented {
        seen.days_left = tls::days_left(&cert);
        seen.issuer = tls::issuer(&cert);
    }
    let stream = outcome.map_err(|e| handshake_failure(&e))?;
    phases.tls_us = Some(micros(t.elapsed()));
    Ok(stream)
}

/// Says what was wrong with the certificate, in the words an engineer would use.
fn handshake_failure(e: &std::io::Error) -> Failure {
    use rustls::CertificateError as C;
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(why)) => {
            let said = match why {
                C::Expired | C::ExpiredContext { .. } => "the certificate has expired".to_string(),
                C::NotValidYet | C::NotValidYetContext { .. } => "the certificate is not valid yet".to_string(),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "the certificate does not name this host".to_string()
                }
                C::UnknownIssuer => "the chain does not lead to a trusted root (unknown issuer)".to_string(),
                C::BadSignature => "the chain's signature does not verify".to_string(),
                C::Revoked => "the certificate is revoked".to_string(),
                other => format!("invalid certificate: {other:?}"),
            };
            let class = if matches!(why, C::Expired | C::ExpiredContext { .. }) {
                ErrorClass::CertExpiry
            } else {
                ErrorClass::Tls
            };
            Failure(class, said)
        }
        Some(other) => Failure(ErrorClass::Tls, format!("TLS handshake failed: {other}")),
        None => Failure(ErrorClass::Tls, format!("TLS handshake failed: {}", e.kind())),
    }
}

/// Keeps the end-entity certificate the server presented, then lets the real verifier decide.
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn ServerCertVerifier>,
    seen: Mutex<Option<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(end_entity.clone().into_owned());
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Up, or degraded when slow or when the certificate is closer to expiry than allowed.
pub(crate) fn judge(
    result: &mut CheckResult,
    started: Instant,
    degraded_after: Option<Duration>,
    cert_min_days: Option<u32>,
) {
    result.outcome = Outcome::Up;
    if let Some(limit) = degraded_after
        && started.elapsed() > limit
    {
        result.outcome = Outcome::Degraded;
        result.detail = Some(format!("slower than {} ms", limit.as_millis()));
    }
    if let (Some(min), Some(days)) = (cert_min_days, result.cert_days_left)
        && i64::from(days) < i64::from(min)
    {
        result.outcome = Outcome::Degraded;
        result.error = Some(ErrorClass::CertExpiry);
        result.detail = Some(format!("certificate expires in {days} days (threshold {min})"));
    }
}

pub async fn run_tcp(check: &TcpCheck, policy: &NetworkPolicy) -> CheckResult {
    let mut result = CheckResult::pending(uuid::Uuid::new_v4().simple().to_string());
    let started = Instant::now();
    let mut seen = SeenCertificate::default();
    let attempt = tokio::time::timeout(check.timeout, tcp_steps(check, policy, &mut result.phases, &mut seen)).await;
    result.phases.total_us = micros(started.elapsed());
    result.cert_days_left = seen.days_left;
    match attempt {
        Err(_) => {
            result.error = Some(ErrorClass::Timeout);
            result.detail = Some(match &check.expect {
                Some(e) if result.phases.connect_us.is_some() => {
                    format!("'{e}' not received within {} ms", check.timeout.as_millis())
                }
                _ => format!("no connection within {} ms", check.timeout.as_millis()),
            });
        }
        Ok(Err((Failure(class, detail), received))) => {
            result.error = Some(class);
            result.detail = Some(detail);
            if !received.is_empty() {
                result.body_excerpt = Some(excerpt(&received));
            }
        }
        Ok(Ok(received)) => {
            result.response_bytes = received.len() as u64;
            judge(&mut result, started, check.degraded_after, check.cert_min_days);
        }
    }
    result
}

type Received = Vec<u8>;

async fn tcp_steps(
    check: &TcpCheck,
    policy: &NetworkPolicy,
    phases: &mut Phases,
    seen: &mut SeenCertificate,
) -> Result<Received, (Failure, Received)> {
    let stream = connect(policy, &check.host, check.port, phases).await.map_err(|f| (f, Vec::new()))?;
    match &check.tls {
        None => converse(stream, check, phases).await,
        Some(options) => {
            let stream = handshake(options, &check.host, stream, phases, seen).await.map_err(|f| (f, Vec::new()))?;
            converse(stream, check, phases).await
        }
    }
}

/// Sends the line, then reads until the expected text appears (or the peer closes).
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    check: &TcpCheck,
    phases: &mut Phases,
) -> Result<Received, (Failure, Received)> {
    let t = Instant::now();
    if let Some(line) = &check.send {
        stream
            .write_all(line)
            .await
            .map_err(|e| (Failure(ErrorClass::Connect, format!("could not send: {}", e.kind())), Vec::new()))?;
        let _ = stream.flush().await;
    }
    let Some(expect) = &check.expect else {
        return Ok(Vec::new());
    };
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => return Err((Failure(ErrorClass::Protocol, format!("read failed: {}", e.kind())), received)),
        };
        if n == 0 {
            let why = format!("the peer closed the connection before sending '{expect}'");
            return Err((Failure(ErrorClass::Assertion, why), received));
        }
        if phases.ttfb_us.is_none() {
            phases.ttfb_us = Some(micros(t.elapsed()));
        }
        received.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&received).contains(expect.as_str()) {
            phases.transfer_us = Some(micros(t.elapsed()).saturating_sub(phases.ttfb_us.unwrap_or(0)));
            return Ok(received);
        }
        if received.len() > EXPECT_CAP {
            let why = format!("'{expect}' not in the first {EXPECT_CAP} bytes");
            return Err((Failure(ErrorClass::Assertion, why), received));
        }
    }
}

pub async fn run_cert(check: &CertCheck, policy: &NetworkPolicy) -> CheckResult {
    let mut result = CheckResult::pending(uuid::Uuid::new_v4().simple().to_string());
    let started = Instant::now();
    let mut seen = SeenCertificate::default();
    let attempt = tokio::time::timeout(check.timeout, async {
        let stream = connect(policy, &check.host, check.port, &mut result.phases).await?;
        handshake(&check.tls, &check.host, stream, &mut result.phases, &mut seen).await.map(|_| ())
    })
    .await;
    result.phases.total_us = micros(started.elapsed());
    result.cert_days_left = seen.days_left;
    let issuer = seen.issuer.as_deref().map(|i| format!("issued by {i}"));
    match attempt {
        Err(_) => {
            result.error = Some(ErrorClass::Timeout);
            result.detail = Some(format!("no handshake within {} ms", check.timeout.as_millis()));
        }
        Ok(Err(Failure(class, detail))) => {
            result.error = Some(class);
            result.detail = Some(match issuer {
                Some(i) => format!("{detail} ({i})"),
                None => detail,
            });
        }
        Ok(Ok(())) => {
            judge(&mut result, started, check.degraded_after, check.cert_min_days);
            if result.detail.is_none() {
                let days = seen.days_left.map(|d| format!("expires in {d} days"));
                let verified = if check.tls.is_insecure() {
                    "verification skipped (insecure_skip_verify)"
                } else {
                    "chain and name verified"
                };
                let said: Vec<String> = [Some(verified.to_string()), days, issuer].into_iter().flatten().collect();
                result.detail = Some(said.join(", "));
            }
        }
    }
    result
}
