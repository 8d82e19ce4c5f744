//! The kinds of check besides HTTP, each against a real server on loopback started by the test:
//! a TCP banner and echo server, a TLS server with a test certificate, a DNS server answering
//! over UDP and TCP, the gRPC health service, and loopback ICMP. Each: up, down with the right
//! error class, the timeout, and the network policy's refusal. Definitions go through the same
//! compile step as stored probes.

use std::net::SocketAddr;
use std::sync::Arc;

use app::model::{ErrorClass, Outcome, ProbeKind, ProbeResult, ProbeSpec};
use chrono::Datelike;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use server::monitor::check::execute::{self, ScrapeMemory};
use server::monitor::check::policy::NetworkPolicy;
use server::monitor::check::spec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

fn loopback() -> NetworkPolicy {
    NetworkPolicy::new(vec!["127.0.0.0/8".parse().expect("cidr"), "::1/128".parse().expect("cidr")], vec![])
}

/// The default policy: nothing on this machine is allowed.
fn strict() -> NetworkPolicy {
    NetworkPolicy::new(vec![], vec![])
}

fn spec_of(kind: ProbeKind, url: &str, patch: impl FnOnce(&mut ProbeSpec)) -> ProbeSpec {
    let mut s = ProbeSpec::new("p", "s", kind, Some(url));
    s.timeout_ms = 2_000;
    patch(&mut s);
    s
}

async fn run(spec: &ProbeSpec, policy: &NetworkPolicy) -> ProbeResult {
    let compiled = spec::compile(uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), spec).expect("a valid definition");
    let check = compiled.check.expect("a check to run");
    execute::run(compiled.id, compiled.kind, &check, &compiled.pool_mapping, policy, &mut ScrapeMemory::default()).await
}

fn assert_failed(r: &ProbeResult, class: ErrorClass) {
    assert_eq!((r.outcome, r.error), (Outcome::Down, Some(class)), "detail: {:?}", r.detail);
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr")
}

/// A port that accepts connections and never says anything (they are held open).
async fn mute_target() -> SocketAddr {
    let mute = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = mute.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = mute.accept().await {
            open.push(s);
        }
    });
    addr
}

// ---- tcp ----

/// Greets with a banner, answers `PING` with `PONG`, and says nothing to anything else.
async fn tcp_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"220 triage-test ready\r\n").await;
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    if buf[..n].starts_with(b"PING") {
                        let _ = s.write_all(b"+PONG\r\n").await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn tcp_connects_reads_the_banner_and_expects_an_answer() {
    let addr = tcp_target().await;
    let url = format!("tcp://{addr}");
    let up = run(&spec_of(ProbeKind::Tcp, &url, |_| {}), &loopback()).await;
    assert_eq!((up.outcome, up.error), (Outcome::Up, None));
    assert!(up.phases.connect_us.is_some());

    let banner = run(&spec_of(ProbeKind::Tcp, &url, |s| s.expect = Some("220 triage".into())), &loopback()).await;
    assert_eq!(banner.outcome, Outcome::Up, "{:?}", banner.detail);
    assert!(banner.phases.ttfb_us.is_some(), "the wait for the answer is timed");

    let echo = spec_of(ProbeKind::Tcp, &url, |s| {
        s.send = Some("PING\\r\\n".into());
        s.expect = Some("+PONG".into());
    });
    assert_eq!(run(&echo, &loopback()).await.outcome, Outcome::Up);

    // Expected text that never comes: the timeout, naming what was awaited.
    let silent = spec_of(ProbeKind::Tcp, &url, |s| {
        s.expect = Some("+OK".into());
        s.timeout_ms = 300;
    });
    let r = run(&silent, &loopback()).await;
    assert_failed(&r, ErrorClass::Timeout);
    assert!(r.detail.as_deref().is_some_and(|d| d.contains("'+OK' not received")), "{:?}", r.detail);

    let refused = run(&spec_of(ProbeKind::Tcp, &format!("tcp://{}", closed_port().await), |_| {}), &loopback()).await;
    assert_failed(&refused, ErrorClass::Connect);
    let blocked = run(&spec_of(ProbeKind::Tcp, &url, |_| {}), &strict()).await;
    assert_failed(&blocked, ErrorClass::BlockedByPolicy);
}

// ---- tls ----

/// A certificate for `localhost` signed by a test CA, expiring in `days` days: (chain, key, CA PEM).
fn issued(days: i64, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "Triage Test CA");
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let mut leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
    let end = chrono::Utc::now() + chrono::Duration::days(days) + chrono::Duration::hours(12);
    leaf.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
    let key = rcgen::KeyPair::generate().expect("key");
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let cert = leaf.signed_by(&key, &issuer).expect("signed");
    let chain = vec![cert.der().clone(), ca_cert.der().clone()];
    (chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())), ca_cert.pem())
}

/// A TLS server that completes handshakes and closes; ALPN `h2` offered for gRPC clients.
async fn tls_target(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"hello\n").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn tls_reports_days_left_and_issuer_and_names_what_does_not_verify() {
    let (chain, key, ca) = issued(40, &["localhost"]);
    let addr = tls_target(chain, key).await;
    let url = format!("tls://localhost:{}", addr.port());
    let trusted = |s: &mut ProbeSpec| s.tls.ca_pem = Some(ca.clone());
    let up = run(&spec_of(ProbeKind::Tls, &url, trusted), &loopback()).await;
    assert_eq!((up.outcome, up.error), (Outcome::Up, None), "{:?}", up.detail);
    assert!(up.cert_days_left.is_some_and(|d| (39..=40).contains(&d)), "days left: {:?}", up.cert_days_left);
    let said = up.detail.clone().unwrap_or_default();
    assert!(said.contains("Triage Test CA") && said.contains("verified"), "{said}");
    assert!(up.phases.tls_us.is_some());
    // The same compiled check again, as the scheduler runs it: no resumed session hides the
    // certificate, so expiry is read on every check.
    let compiled = spec::compile(uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), &spec_of(ProbeKind::Tls, &url, trusted))
        .expect("valid");
    let check = compiled.check.expect("a check");
    for _ in 0..2 {
        let r = execute::run(
            compiled.id,
            compiled.kind,
            &check,
            &compiled.pool_mapping,
            &loopback(),
            &mut ScrapeMemory::default(),
        )
        .await;
        assert!(r.cert_days_left.is_some(), "every check reads the certificate: {:?}", r.detail);
    }
    let insecure = run(&spec_of(ProbeKind::Tls, &url, |s| s.tls.insecure_skip_verify = true), &loopback()).await;
    assert_eq!(insecure.outcome, Outcome::Up);
    assert!(insecure.detail.as_deref().is_some_and(|d| d.contains("verification skipped")), "{:?}", insecure.detail);

    // Close to expiry: degraded with the certificate's class.
    let soon = run(
        &spec_of(ProbeKind::Tls, &url, |s| {
            trusted(s);
            s.assertions.cert_min_days = Some(60);
        }),
        &loopback(),
    )
    .await;
    assert_eq!((soon.outcome, soon.error), (Outcome::Degraded, Some(ErrorClass::CertExpiry)));

    // Not trusted (the CA is not given): down, and the issuer is still reported.
    let untrusted = run(&spec_of(ProbeKind::Tls, &url, |_| {}), &loopback()).await;
    assert_failed(&untrusted, ErrorClass::Tls);
    let why = untrusted.detail.unwrap_or_default();
    assert!(why.contains("unknown issuer") && why.contains("Triage Test CA"), "{why}");
    assert!(untrusted.cert_days_left.is_some(), "expiry is read before verification");

    // A certificate for another name.
    let (chain, key, ca2) = issued(40, &["other.test"]);
    let other = tls_target(chain, key).await;
    let r = run(
        &spec_of(ProbeKind::Tls, &format!("tls://localhost:{}", other.port()), |s| s.tls.ca_pem = Some(ca2)),
        &loopback(),
    )
    .await;
    assert_failed(&r, ErrorClass::Tls);
    assert!(r.detail.as_deref().is_some_and(|d| d.contains("does not name this host")), "{:?}", r.detail);

    // Expired.
    let (chain, key, ca3) = issued(-3, &["localhost"]);
    let old = tls_target(chain, key).await;
    let r = run(
        &spec_of(ProbeKind::Tls, &format!("tls://localhost:{}", old.port()), |s| s.tls.ca_pem = Some(ca3)),
        &loopback(),
    )
    .await;
    assert_failed(&r, ErrorClass::CertExpiry);

    // A server that never answers the handshake: the timeout.
    let mute_addr = mute_target().await;
    let r = run(&spec_of(ProbeKind::Tls, &format!("tls://{mute_addr}"), |s| s.timeout_ms = 300), &loopback()).await;
    assert_failed(&r, ErrorClass::Timeout);
    assert_failed(&run(&spec_of(ProbeKind::Tls, &url, trusted), &strict()).await, ErrorClass::BlockedByPolicy);

    // tcp with a TLS handshake: the same verification, and the greeting read through TLS.
    let over_tls = run(
        &spec_of(ProbeKind::Tcp, &url.replace("tls://", "tcp://"), |s| {
            trusted(s);
            s.tcp_tls = true;
            s.expect = Some("hello".into());
        }),
        &loopback(),
    )
    .await;
    assert_eq!(over_tls.outcome, Outcome::Up, "{:?}", over_tls.detail);
    assert!(over_tls.phases.tls_us.is_some() && over_tls.cert_days_left.is_some());
}

// ---- dns ----

/// Answers `shop.test` (A 127.0.0.7, and a TXT record too long for UDP, which comes back
/// truncated there and whole over TCP), NXDOMAIN for anything else.
async fn dns_server() -> SocketAddr {
    fn answer(query: &Message, tcp: bool) -> Message {
        let mut m = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
        m.metadata.recursion_desired = query.metadata.recursion_desired;
        m.metadata.recursion_available = true;
        let Some(q) = query.queries.first() else { return m };
        m.add_query(q.clone());
        if q.name().to_ascii().trim_end_matches('.') != "shop.test" {
            m.metadata.response_code = ResponseCode::NXDomain;
            return m;
        }
        match q.query_type() {
            RecordType::A => {
                m.answers.push(Record::from_rdata(q.name().clone(), 60, RData::A(A::new(127, 0, 0, 7))));
            }
            RecordType::TXT if !tcp => m.metadata.truncation = true,
            RecordType::TXT => {
                let long = "v".repeat(200);
                let txt = TXT::new(vec![long.clone(), long.clone(), long]);
                m.answers.push(Record::from_rdata(q.name().clone(), 60, RData::TXT(txt)));
            }
            _ => {}
        }
        m
    }
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let addr = udp.local_addr().expect("addr");
    let tcp = TcpListener::bind(addr).await.expect("bind tcp on the same port");
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            if let Ok(q) = Message::from_vec(&buf[..n]) {
                let _ = udp.send_to(&answer(&q, false).to_vec().expect("encode"), from).await;
            }
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if s.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let Ok(q) = Message::from_vec(&buf) else { return };
                let out = answer(&q, true).to_vec().expect("encode");
                let mut framed = (out.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&out);
                let _ = s.write_all(&framed).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn dns_asks_the_chosen_resolver_and_checks_answers_and_rcode() {
    let resolver = dns_server().await;
    let url = |name: &str, t: &str| format!("dns://{resolver}/{name}?type={t}");
    let up =
        run(&spec_of(ProbeKind::Dns, &url("shop.test", "A"), |s| s.answers = vec!["127.0.0.7".into()]), &loopback())
            .await;
    assert_eq!((up.outcome, up.error), (Outcome::Up, None), "{:?}", up.detail);
    assert!(up.detail.as_deref().is_some_and(|d| d.contains("NOERROR") && d.contains("127.0.0.7")));
    assert!(up.phases.dns_us.is_some(), "the query time");

    // Truncated over UDP: asked again over TCP.
    let txt = run(&spec_of(ProbeKind::Dns, &url("shop.test", "TXT"), |_| {}), &loopback()).await;
    assert_eq!(txt.outcome, Outcome::Up, "{:?}", txt.detail);
    assert!(txt.detail.as_deref().is_some_and(|d| d.contains("vvvv")));

    let wrong =
        run(&spec_of(ProbeKind::Dns, &url("shop.test", "A"), |s| s.answers = vec!["127.0.0.8".into()]), &loopback())
            .await;
    assert_failed(&wrong, ErrorClass::Assertion);
    assert!(wrong.detail.as_deref().is_some_and(|d| d.contains("missing 127.0.0.8")));
    let missing = run(&spec_of(ProbeKind::Dns, &url("gone.test", "A"), |_| {}), &loopback()).await;
    assert_failed(&missing, ErrorClass::Dns);
    assert!(missing.detail.as_deref().is_some_and(|d| d.starts_with("NXDOMAIN")));
    // A name that must not exist: NXDOMAIN is what was asked for.
    let absent =
        run(&spec_of(ProbeKind::Dns, &url("gone.test", "A"), |s| s.rcode = Some("nxdomain".into())), &loopback()).await;
    assert_eq!(absent.outcome, Outcome::Up, "{:?}", absent.detail);

    // A resolver that never answers: the timeout.
    let mute = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mute_url = format!("dns://{}/shop.test?type=A", mute.local_addr().expect("addr"));
    assert_failed(
        &run(&spec_of(ProbeKind::Dns, &mute_url, |s| s.timeout_ms = 300), &loopback()).await,
        ErrorClass::Timeout,
    );
    assert_failed(
        &run(&spec_of(ProbeKind::Dns, &url("shop.test", "A"), |_| {}), &strict()).await,
        ErrorClass::BlockedByPolicy,
    );
    drop(mute);
}

// ---- grpc ----

async fn grpc_server() -> (SocketAddr, tonic_health::server::HealthReporter) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("shop.Orders", tonic_health::ServingStatus::Serving).await;
    reporter.set_service_status("shop.Payments", tonic_health::ServingStatus::NotServing).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming));
    (addr, reporter)
}

#[tokio::test]
async fn grpc_asks_the_standard_health_service() {
    let (addr, reporter) = grpc_server().await;
    let url = |service: &str| format!("grpc://{addr}/{service}");
    let up = run(&spec_of(ProbeKind::Grpc, &url("shop.Orders"), |_| {}), &loopback()).await;
    assert_eq!((up.outcome, up.error), (Outcome::Up, None), "{:?}", up.detail);
    assert!(up.phases.connect_us.is_some() && up.phases.ttfb_us.is_some());
    let whole = run(&spec_of(ProbeKind::Grpc, &format!("grpc://{addr}"), |_| {}), &loopback()).await;
    assert_eq!(whole.outcome, Outcome::Up, "the server as a whole: {:?}", whole.detail);

    let down = run(&spec_of(ProbeKind::Grpc, &url("shop.Payments"), |_| {}), &loopback()).await;
    assert_failed(&down, ErrorClass::Assertion);
    assert!(down.detail.as_deref().is_some_and(|d| d.contains("NOT_SERVING")), "{:?}", down.detail);
    // Switched at run time, as a server going unhealthy would.
    reporter.set_service_status("shop.Orders", tonic_health::ServingStatus::NotServing).await;
    assert_failed(
        &run(&spec_of(ProbeKind::Grpc, &url("shop.Orders"), |_| {}), &loopback()).await,
        ErrorClass::Assertion,
    );
    let unknown = run(&spec_of(ProbeKind::Grpc, &url("shop.Nothing"), |_| {}), &loopback()).await;
    assert_failed(&unknown, ErrorClass::Assertion);

    let closed = closed_port().await;
    assert_failed(
        &run(&spec_of(ProbeKind::Grpc, &format!("grpc://{closed}/x"), |_| {}), &loopback()).await,
        ErrorClass::Connect,
    );
    // A server that accepts and never speaks HTTP/2: the timeout.
    let mute_addr = mute_target().await;
    let r = run(&spec_of(ProbeKind::Grpc, &format!("grpc://{mute_addr}/x"), |s| s.timeout_ms = 300), &loopback()).await;
    assert_failed(&r, ErrorClass::Timeout);
    assert_failed(
        &run(&spec_of(ProbeKind::Grpc, &url("shop.Orders"), |_| {}), &strict()).await,
        ErrorClass::BlockedByPolicy,
    );
}

/// A TLS stream tonic can serve: `Connected` is only implemented for its own TLS types, which
/// would need tonic's TLS feature in the tests.
struct ServedTls(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl tonic::transport::server::Connected for ServedTls {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl tokio::io::AsyncRead for ServedTls {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ServedTls {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// The gRPC health service behind TLS: a test CA's certificate, ALPN `h2`.
async fn grpcs_server(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> SocketAddr {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("shop.Orders", tonic_health::ServingStatus::Serving).await;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<ServedTls, std::io::Error>>(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                // A client that gives up on the handshake (an untrusted chain) is simply dropped.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = tx.send(Ok(ServedTls(tls))).await;
                }
            });
        }
    });
    let incoming = tokio_stream::wrappers::ReceiverStream::new(rx);
    tokio::spawn(async move {
        let _keep = reporter;
        tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await
    });
    addr
}

#[tokio::test]
async fn grpcs_asks_the_health_service_over_verified_tls() {
    let (chain, key, ca) = issued(40, &["localhost"]);
    let addr = grpcs_server(chain, key).await;
    let url = format!("grpcs://localhost:{}/shop.Orders", addr.port());
    let trusted = |s: &mut ProbeSpec| s.tls.ca_pem = Some(ca.clone());
    let up = run(&spec_of(ProbeKind::Grpc, &url, trusted), &loopback()).await;
    assert_eq!((up.outcome, up.error), (Outcome::Up, None), "{:?}", up.detail);
    assert!(up.phases.tls_us.is_some(), "the handshake is timed");
    assert!(up.cert_days_left.is_some_and(|d| (39..=40).contains(&d)), "{:?}", up.cert_days_left);
    assert_eq!(up.detail.as_deref(), Some("'shop.Orders' is SERVING"));
    // The same server without its CA: the chain does not verify, and nothing is asked.
    let untrusted = run(&spec_of(ProbeKind::Grpc, &url, |_| {}), &loopback()).await;
    assert_failed(&untrusted, ErrorClass::Tls);
    assert!(untrusted.phases.ttfb_us.is_none(), "no request went out: {untrusted:?}");
    // Near expiry: up but degraded, with the days.
    let soon = run(
        &spec_of(ProbeKind::Grpc, &url, |s| {
            s.tls.ca_pem = Some(ca.clone());
            s.assertions.cert_min_days = Some(60);
        }),
        &loopback(),
    )
    .await;
    assert_eq!((soon.outcome, soon.error), (Outcome::Degraded, Some(ErrorClass::CertExpiry)), "{:?}", soon.detail);
}

// ---- icmp ----

#[tokio::test]
async fn icmp_echoes_loopback_and_reports_loss_and_round_trips() {
    let r = run(&spec_of(ProbeKind::Icmp, "icmp://127.0.0.1", |s| s.packets = Some(3)), &loopback()).await;
    assert_eq!((r.outcome, r.error), (Outcome::Up, None), "{:?}", r.detail);
    let said = r.detail.unwrap_or_default();
    assert!(said.starts_with("3/3 received, 0 % loss; rtt min/avg/max"), "{said}");
    assert_eq!(r.echo, Some(app::model::EchoCount { sent: 3, received: 3 }));
    assert!(r.phases.connect_us.is_some(), "the average round trip is the latency");
    assert_failed(
        &run(&spec_of(ProbeKind::Icmp, "icmp://127.0.0.1", |_| {}), &strict()).await,
        ErrorClass::BlockedByPolicy,
    );
}

/// Runs `body` on a thread moved into a network namespace of its own (loopback up, unprivileged
/// ping allowed, then `setup`), so what it arranges (silence, loss, addresses) touches nothing
/// else on the machine, and nothing it sends can leave it. Creating the namespace needs
/// CAP_SYS_ADMIN, which the test machines have (root).
fn in_own_netns<T, F, Fut>(setup: &'static [&'static [&'static str]], body: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("a network namespace of the test's own");
        // Children inherit the calling thread's namespace: these commands change only the new one.
        let base: &[&[&str]] =
            &[&["ip", "link", "set", "lo", "up"], &["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]];
        for cmd in base.iter().chain(setup) {
            let status = std::process::Command::new(cmd[0]).args(&cmd[1..]).status().expect("run a setup command");
            assert!(status.success(), "{cmd:?}: {status}");
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(body())
    })
    .join()
    .expect("the namespaced test")
}

fn run_in_own_netns(setup: &'static [&'static [&'static str]], spec: ProbeSpec, policy: NetworkPolicy) -> ProbeResult {
    in_own_netns(setup, move || async move { run(&spec, &policy).await })
}

/// An address routed to loopback but owned by nobody: echoes to it vanish without an answer.
#[test]
fn icmp_to_a_silent_host_times_out_with_every_echo_lost() {
    const SETUP: &[&[&str]] = &[&["ip", "route", "add", "10.77.0.2/32", "dev", "lo"]];
    let policy = NetworkPolicy::new(vec!["10.77.0.0/16".parse().expect("cidr")], vec![]);
    let spec = spec_of(ProbeKind::Icmp, "icmp://10.77.0.2", |s| {
        s.packets = Some(3);
        s.timeout_ms = 800;
    });
    let r = run_in_own_netns(SETUP, spec, policy);
    assert_failed(&r, ErrorClass::Timeout);
    assert_eq!(r.echo, Some(app::model::EchoCount { sent: 3, received: 0 }));
    assert!(r.detail.unwrap_or_default().starts_with("0/3 received, 100 % loss"));
    assert!(r.phases.total_us >= 700_000, "it waited for its timeout: {} µs", r.phases.total_us);
}

/// A token bucket on loopback that lets one echo and its reply through (98 bytes each, a
/// 250-byte burst at 1 byte/s) and drops the rest: 4 echoes, 1 answer, 75 % loss.
#[test]
fn icmp_reports_partial_loss_as_degraded_with_the_counts() {
    const SETUP: &[&[&str]] =
        &[&["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "8bit", "burst", "250", "limit", "100"]];
    let spec = spec_of(ProbeKind::Icmp, "icmp://127.0.0.1", |s| {
        s.packets = Some(4);
        s.timeout_ms = 800;
    });
    let r = run_in_own_netns(SETUP, spec, loopback());
    assert_eq!((r.outcome, r.error), (Outcome::Degraded, None), "{:?}", r.detail);
    let echo = r.echo.expect("echo counts");
    assert_eq!((echo.sent, echo.received), (4, 1));
    assert_eq!(echo.loss_pct(), 75.0);
    assert!(r.detail.unwrap_or_default().starts_with("1/4 received, 75 % loss; rtt"));
}

// ---- definitions ----

#[test]
fn each_kind_names_its_bad_fields() {
    let field = |kind: ProbeKind, url: &str, patch: fn(&mut ProbeSpec)| {
        spec::validate(&spec_of(kind, url, patch)).expect_err("refused").field
    };
    assert_eq!(field(ProbeKind::Tcp, "tcp://127.0.0.1", |_| {}), "url", "a port is required");
    assert_eq!(field(ProbeKind::Tcp, "http://127.0.0.1:80", |_| {}), "url");
    assert_eq!(field(ProbeKind::Http, "http://127.0.0.1/", |s| s.send = Some("x".into())), "send");
    assert_eq!(
        field(ProbeKind::Tcp, "tcp://127.0.0.1:1", |s| s
            .headers
            .insert("a".into(), "b".into())
            .map(|_| ())
            .unwrap_or(())),
        "headers"
    );
    assert_eq!(field(ProbeKind::Dns, "dns:///shop.test?type=BOGUS", |_| {}), "url");
    assert_eq!(field(ProbeKind::Dns, "dns:///shop.test", |s| s.rcode = Some("MAYBE".into())), "rcode");
    assert_eq!(field(ProbeKind::Icmp, "icmp://127.0.0.1", |s| s.packets = Some(50)), "packets");
    assert_eq!(field(ProbeKind::Icmp, "icmp://127.0.0.1:7", |_| {}), "url");
    assert_eq!(field(ProbeKind::Grpc, "grpc://127.0.0.1/svc", |_| {}), "url", "a port is required");
    assert_eq!(field(ProbeKind::Tls, "tls://127.0.0.1:443/path", |_| {}), "url");
    assert_eq!(
        field(ProbeKind::Metrics, "http://127.0.0.1/metrics", |s| s.pool_mapping.in_use =
            vec!["pg{state=active}".into()]),
        "pool_mapping",
        "label values are quoted"
    );
    assert_eq!(
        field(ProbeKind::Metrics, "http://127.0.0.1/metrics", |s| s.pool_saturated_at = Some(1.5)),
        "pool_saturated_at"
    );
    for (kind, url) in [
        (ProbeKind::Tcp, "tcp://127.0.0.1:6379"),
        (ProbeKind::Tls, "tls://[::1]:443"),
        (ProbeKind::Dns, "dns:///shop.test?type=MX"),
        (ProbeKind::Dns, "dns://127.0.0.1:5353/shop.test"),
        (ProbeKind::Icmp, "icmp://localhost"),
        (ProbeKind::Grpc, "grpcs://127.0.0.1:443/shop.Orders"),
    ] {
        spec::validate(&spec_of(kind, url, |_| {})).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

// ---- DNS rebinding ----

/// A resolver that answers `rebind.test` with a public address, then loopback, then the public
/// one again (TTL 0, as a rebinding attacker's would); nothing for AAAA.
async fn rebinding_resolver(public: [u8; 4]) -> SocketAddr {
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let addr = udp.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut asked = 0u32;
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            let mut m = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
            m.metadata.recursion_available = true;
            if let Some(query) = q.queries.first() {
                m.add_query(query.clone());
                if query.query_type() == RecordType::A {
                    let [a, b, c, d] = if asked.is_multiple_of(2) { public } else { [127, 0, 0, 1] };
                    asked += 1;
                    m.answers.push(Record::from_rdata(query.name().clone(), 0, RData::A(A::new(a, b, c, d))));
                }
            }
            let _ = udp.send_to(&m.to_vec().expect("encode"), from).await;
        }
    });
    addr
}

/// Counts the TCP connections it accepts and answers each with 200, or with a redirect back to
/// `rebind.test` when asked for `/hop`.
async fn counting_target(bind: &str) -> Arc<std::sync::atomic::AtomicUsize> {
    let listener = TcpListener::bind(bind).await.expect("bind");
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let answer = if buf[..n].starts_with(b"GET /hop ") {
                    "HTTP/1.1 302 Found\r\nlocation: http://rebind.test:8080/next\r\ncontent-length: 0\r\n\r\n"
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                };
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    accepted
}

/// DNS rebinding: the name answers a public address, then loopback. Each check connects only to
/// the address it checked (never to a second lookup), so the loopback listener, counting real
/// TCP accepts, sees none: neither directly nor through a redirect. The "public" address lives
/// on the loopback of a network namespace the test creates, so no packet leaves the machine.
#[test]
fn a_rebinding_name_never_reaches_loopback() {
    const SETUP: &[&[&str]] = &[&["ip", "addr", "add", "1.2.3.4/32", "dev", "lo"]];
    let (results, public, local) = in_own_netns(SETUP, || async {
        let public = counting_target("1.2.3.4:8080").await;
        let local = counting_target("127.0.0.1:8080").await;
        let resolver = rebinding_resolver([1, 2, 3, 4]).await;
        let policy = strict().with_resolver(Some(resolver));
        let mut results = Vec::new();
        for _ in 0..10 {
            results.push(run(&spec_of(ProbeKind::Http, "http://rebind.test:8080/", |_| {}), &policy).await);
        }
        // Through a redirect: the first hop gets the public answer, the next lookup loopback.
        let follow = spec_of(ProbeKind::Http, "http://rebind.test:8080/hop", |s| s.follow_redirects = true);
        for _ in 0..5 {
            results.push(run(&follow, &policy).await);
        }
        let load = |c: &Arc<std::sync::atomic::AtomicUsize>| c.load(std::sync::atomic::Ordering::SeqCst);
        (results, load(&public), load(&local))
    });
    let up = results.iter().filter(|r| r.outcome == Outcome::Up).count();
    let refused = results.iter().filter(|r| r.error == Some(ErrorClass::BlockedByPolicy)).count();
    assert_eq!(local, 0, "the loopback listener accepted nothing");
    assert_eq!(up + refused, results.len(), "each check either reached the public address or was refused");
    assert_eq!((up, refused), (5, 10), "direct: 5 up, 5 refused; every redirect's second lookup refused");
    assert_eq!(public, 10, "only the checked public address was connected to");
}

// ---- S1: SSRF vectors ----

/// A resolver with fixed answers (A and AAAA) per name, for the vectors that go through DNS.
async fn fixed_resolver(answers: &'static [(&'static str, &'static [&'static str])]) -> SocketAddr {
    use hickory_proto::rr::rdata::AAAA;
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let addr = udp.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            let mut m = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
            if let Some(query) = q.queries.first() {
                m.add_query(query.clone());
                let name = query.name().to_ascii().trim_end_matches('.').to_string();
                let ips = answers.iter().find(|(n, _)| *n == name).map(|(_, ips)| *ips).unwrap_or(&[]);
                for ip in ips.iter().map(|s| s.parse::<std::net::IpAddr>().expect("ip")) {
                    let data = match (ip, query.query_type()) {
                        (std::net::IpAddr::V4(v4), RecordType::A) => RData::A(A(v4)),
                        (std::net::IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(v6)),
                        _ => continue,
                    };
                    m.answers.push(Record::from_rdata(query.name().clone(), 0, data));
                }
            }
            let _ = udp.send_to(&m.to_vec().expect("encode"), from).await;
        }
    });
    addr
}

/// Runs a check, or says why its definition was refused before it could run.
async fn run_or_refuse(spec: &ProbeSpec, policy: &NetworkPolicy) -> Result<ProbeResult, String> {
    let compiled = spec::compile(uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), spec).map_err(|e| e.to_string())?;
    let check = compiled.check.ok_or("no check")?;
    Ok(execute::run(compiled.id, compiled.kind, &check, &compiled.pool_mapping, policy, &mut ScrapeMemory::default())
        .await)
}

/// A public-looking target (on the namespace's loopback) that redirects `/to/<host:port>` there.
async fn redirecting_target(bind: &str) {
    let listener = TcpListener::bind(bind).await.expect("bind");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let to = path.strip_prefix("/to/").unwrap_or("127.0.0.1:8080");
                let answer = format!("HTTP/1.1 302 Found\r\nlocation: http://{to}/\r\ncontent-length: 0\r\n\r\n");
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
}

/// S1: every SSRF vector class, run as real checks under the default policy. Those that lead to
/// this machine (loopback in every spelling, names resolving there, redirects there) meet real
/// listeners on 127.0.0.1 and ::1 that count TCP accepts: none may arrive. The other classes
/// (private, link-local, metadata, CGNAT, NAT64, 6to4, multicast, reserved) must be refused by
/// the policy. All of it inside a network namespace of the test's own, so even a bug could send
/// nothing off this machine.
#[test]
fn ssrf_vectors_never_reach_this_machine() {
    const SETUP: &[&[&str]] = &[&["ip", "addr", "add", "1.2.3.4/32", "dev", "lo"]];
    const NAMES: &[(&str, &[&str])] = &[
        ("loop.test", &["127.0.0.1"]),
        ("loop6.test", &["::1"]),
        ("mixed.test", &["1.2.3.4", "127.0.0.1"]),
        ("mapped.test", &["::ffff:127.0.0.1"]),
        ("meta.test", &["169.254.169.254"]),
    ];
    // Loopback in every spelling a URL parser or a resolver accepts.
    const LOCAL: &[&str] = &[
        "127.0.0.1:8080",
        "127.1:8080",
        "127.0.1:8080",
        "0x7f.1:8080",
        "0177.0.0.1:8080",
        "2130706433:8080",
        "0x7f000001:8080",
        "127.127.127.127:8080",
        "0.0.0.0:8080",
        "0:8080",
        "[::1]:8080",
        "[0:0:0:0:0:0:0:1]:8080",
        "[::ffff:127.0.0.1]:8080",
        "[::ffff:7f00:1]:8080",
        "[::127.0.0.1]:8080",
        "[::ffff:0:7f00:1]:8080",
        "[64:ff9b::7f00:1]:8080",
        "[2002:7f00:1::1]:8080",
        "localhost:8080",
        "loop.test:8080",
        "loop6.test:8080",
        "mixed.test:8080",
        "mapped.test:8080",
    ];
    // Other machines' ranges: judged without a packet sent.
    const ELSEWHERE: &[&str] = &[
        "10.0.0.1:80",
        "172.16.0.1:80",
        "192.168.1.1:80",
        "100.64.0.1:80",
        "169.254.169.254:80",
        "168.63.129.16:80",
        "[fd00:ec2::254]:80",
        "[fe80::1]:80",
        "[fd12::1]:80",
        "[::ffff:10.0.0.1]:80",
        "[64:ff9b::a00:1]:80",
        "[2002:c0a8:101::1]:80",
        "224.0.0.1:80",
        "255.255.255.255:80",
        "240.0.0.1:80",
        "meta.test:80",
    ];
    let (results, accepted) = in_own_netns(SETUP, || async {
        let v4 = counting_target("127.0.0.1:8080").await;
        let v6 = counting_target("[::1]:8080").await;
        redirecting_target("1.2.3.4:8080").await;
        let policy = strict().with_resolver(Some(fixed_resolver(NAMES).await));
        let mut results = Vec::new();
        for target in LOCAL.iter().chain(ELSEWHERE) {
            for url in [format!("http://{target}/"), format!("tcp://{target}")] {
                let kind = if url.starts_with("tcp") { ProbeKind::Tcp } else { ProbeKind::Http };
                results
                    .push((url.clone(), run_or_refuse(&spec_of(kind, &url, |s| s.timeout_ms = 1_000), &policy).await));
            }
        }
        for target in LOCAL {
            let url = format!("http://1.2.3.4:8080/to/{target}");
            let spec = spec_of(ProbeKind::Http, &url, |s| s.follow_redirects = true);
            results.push((url, run_or_refuse(&spec, &policy).await));
        }
        let load = |c: &Arc<std::sync::atomic::AtomicUsize>| c.load(std::sync::atomic::Ordering::SeqCst);
        (results, load(&v4) + load(&v6))
    });
    println!("S1: {} vectors, {accepted} accepted by the loopback listeners", results.len());
    assert!(results.len() >= 60, "{} vectors", results.len());
    assert_eq!(accepted, 0, "a vector reached a listener on this machine");
    let refused_early = results.iter().filter(|(_, r)| r.is_err()).count();
    println!("S1: {refused_early} refused as definitions, the rest refused by the network policy");
    for (url, r) in &results {
        // A definition refused before it runs is as good as a refusal; whatever ran must have
        // been stopped by the policy (or found no address at all).
        if let Ok(r) = r {
            let stopped = matches!(r.error, Some(ErrorClass::BlockedByPolicy) | Some(ErrorClass::Dns));
            assert!(r.outcome == Outcome::Down && stopped, "{url}: {:?} {:?}", r.error, r.detail);
        }
    }
}
