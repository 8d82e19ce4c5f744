//! TLS for `https` probes: rustls with the ring provider and the Mozilla root set, optionally extra
//! roots from the probe (internal CAs) or no verification at all (tests only). The configuration is
//! built once per probe, not per check: parsing the root set costs more than a handshake.

use std::fmt;
use std::sync::{Arc, OnceLock};

use app::model::TlsSpec;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn mozilla_roots() -> RootCertStore {
    RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

/// Why a probe's TLS settings cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadTls(pub String);

/// A client configuration and the verifier inside it (kept apart as well, so a check can wrap it
/// to see the certificate a server presents even when it is refused).
#[derive(Clone)]
struct Built {
    config: Arc<ClientConfig>,
    verifier: Arc<dyn ServerCertVerifier>,
}

fn with_verifier(verifier: Arc<dyn ServerCertVerifier>) -> Result<Built, BadTls> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| BadTls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    Ok(Built { config: Arc::new(config), verifier })
}

fn build(roots: RootCertStore) -> Result<Built, BadTls> {
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| BadTls(e.to_string()))?;
    with_verifier(verifier)
}

/// The shared configuration for probes without TLS settings of their own.
fn default_built() -> Option<Built> {
    static DEFAULT: OnceLock<Option<Built>> = OnceLock::new();
    DEFAULT.get_or_init(|| build(mozilla_roots()).ok()).clone()
}

/// A probe's TLS client configuration.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// `None`: the shared default (Mozilla roots, full verification).
    custom: Option<Built>,
    insecure: bool,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("custom_roots", &self.custom.is_some())
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl TlsOptions {
    pub fn from_spec(spec: &TlsSpec) -> Result<Self, BadTls> {
        if spec.insecure_skip_verify {
            let algorithms = provider().signature_verification_algorithms;
            return Ok(Self { custom: Some(with_verifier(Arc::new(AcceptAny(algorithms)))?), insecure: true });
        }
        let Some(pem) = &spec.ca_pem else { return Ok(Self::default()) };
        let mut roots = mozilla_roots();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|_| BadTls("ca_pem is not valid PEM".into()))?;
            roots.add(cert).map_err(|e| BadTls(format!("ca_pem holds an unusable certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(BadTls("ca_pem holds no certificate".into()));
        }
        Ok(Self { custom: Some(build(roots)?), insecure: false })
    }

    pub fn config(&self) -> Option<Arc<ClientConfig>> {
        self.custom.clone().or_else(default_built).map(|b| b.config)
    }

    /// The same options offering one ALPN protocol (`h2` for gRPC).
    pub fn with_alpn(&self, protocol: &[u8]) -> TlsOptions {
        let Some(built) = self.custom.clone().or_else(default_built) else { return self.clone() };
        let mut config = ClientConfig::clone(&built.config);
        config.alpn_protocols = vec![protocol.to_vec()];
        TlsOptions {
            custom: Some(Built { config: Arc::new(config), verifier: built.verifier }),
            insecure: self.insecure,
        }
    }

    /// Whether certificates are accepted unverified (`insecure_skip_verify`).
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The certificate verifier `config` uses.
    pub fn verifier(&self) -> Option<Arc<dyn ServerCertVerifier>> {
        self.custom.clone().or_else(default_built).map(|b| b.verifier)
    }
}

/// The certificate's issuer, as its common name (or the whole distinguished name without one).
pub fn issuer(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let issuer = parsed.issuer();
    let cn = issuer.iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
    Some(cn.unwrap_or_else(|| issuer.to_string()))
}

/// Days from now until the certificate's notAfter (negative when expired).
pub fn days_left(cert: &CertificateDer<'_>) -> Option<i32> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let not_after = parsed.validity().not_after.timestamp();
    let now = chrono::Utc::now().timestamp();
    i32::try_from((not_after - now).div_euclid(86_400)).ok()
}

pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|_| format!("'{host}' is not a valid TLS server name"))
}

/// Accepts any certificate but still checks handshake signatures, so the session is at least
/// bound to the presented key. Only for probes that explicitly ask for it.
#[derive(Debug)]
struct AcceptAny(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
