//! HTTPS checks against a real TLS server on loopback (a certificate made by rcgen), and redirects:
//! followed only on request, every hop checked by the network policy again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use app::model::{ErrorClass, Outcome, TlsSpec};
use axum::Router;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::get;
use chrono::Datelike;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use server::monitor::check::http::{self, HttpCheck};
use server::monitor::check::policy::NetworkPolicy;
use server::monitor::check::tls::TlsOptions;

use crate::common::serve_target;

fn policy(allow: &[&str]) -> NetworkPolicy {
    NetworkPolicy::new(allow.iter().map(|c| c.parse().expect("cidr")).collect(), vec![])
}

/// A self-signed certificate for `localhost` expiring in `days` days, and its PEM.
fn certificate(days: i64) -> (CertificateDer<'static>, PrivateKeyDer<'static>, String) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    let end = chrono::Utc::now() + chrono::Duration::days(days) + chrono::Duration::hours(12);
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    let pem = cert.pem();
    (cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())), pem)
}

pub async fn tls_target(days: i64) -> (SocketAddr, String) {
    let (cert, key, pem) = certificate(days);
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route("/", get(|| async { "secure ok" }));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
                    .await;
            });
        }
    });
    (addr, pem)
}

fn https_check(addr: SocketAddr, tls: TlsSpec) -> HttpCheck {
    let mut c =
        HttpCheck::get(format!("https://localhost:{}/", addr.port()).parse().expect("url"), Duration::from_secs(5));
    c.tls = TlsOptions::from_spec(&tls).expect("tls options");
    c
}

#[tokio::test]
async fn https_is_measured_and_the_certificate_expiry_is_kept() {
    let (addr, pem) = tls_target(90).await;
    let r = http::run(
        &https_check(addr, TlsSpec { ca_pem: Some(pem), insecure_skip_verify: false }),
        &policy(&["127.0.0.0/8", "::1/128"]),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    assert_eq!(&r.body[..], b"secure ok");
    assert!(r.phases.tls_us.is_some() && r.phases.connect_us.is_some() && r.phases.ttfb_us.is_some());
    assert!(matches!(r.cert_days_left, Some(89..=90)), "{:?}", r.cert_days_left);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error_unless_verification_is_skipped() {
    let (addr, _) = tls_target(90).await;
    let loopback = policy(&["127.0.0.0/8", "::1/128"]);
    let r = http::run(&https_check(addr, TlsSpec::default()), &loopback).await;
    assert_eq!((r.outcome, r.error), (Outcome::Down, Some(ErrorClass::Tls)), "{r:?}");
    assert!(r.detail.as_deref().is_some_and(|d| d.contains("certificate")), "{:?}", r.detail);
    let insecure = http::run(&https_check(addr, TlsSpec { ca_pem: None, insecure_skip_verify: true }), &loopback).await;
    assert_eq!(insecure.outcome, Outcome::Up, "{insecure:?}");
}

#[tokio::test]
async fn a_certificate_close_to_expiry_degrades_the_check() {
    let (addr, pem) = tls_target(5).await;
    let mut c = https_check(addr, TlsSpec { ca_pem: Some(pem), insecure_skip_verify: false });
    c.assertions.cert_min_days = Some(14);
    let r = http::run(&c, &policy(&["127.0.0.0/8", "::1/128"])).await;
    assert_eq!((r.outcome, r.error), (Outcome::Degraded, Some(ErrorClass::CertExpiry)), "{r:?}");
    assert!(matches!(r.cert_days_left, Some(4..=5)));
}

#[tokio::test]
async fn redirects_are_followed_only_when_asked() {
    let fin = serve_target(Router::new().route("/final", get(|| async { "arrived" }))).await;
    let start = serve_target(
        Router::new().route("/start", get(move || async move { Redirect::temporary(&format!("http://{fin}/final")) })),
    )
    .await;
    let loopback = policy(&["127.0.0.0/8"]);
    let mut c = HttpCheck::get(format!("http://{start}/start").parse().expect("url"), Duration::from_secs(5));
    let r = http::run(&c, &loopback).await;
    assert_eq!((r.outcome, r.status), (Outcome::Up, Some(307)), "not followed by default");
    c.follow_redirects = true;
    let r = http::run(&c, &loopback).await;
    assert_eq!((r.outcome, r.status), (Outcome::Up, Some(200)));
    assert_eq!(&r.body[..], b"arrived");
}

/// The probe's headers are its credentials: they follow a redirect within their origin, never to
/// another one (another port is another origin), and a body is not re-sent across origins.
#[tokio::test]
async fn credentials_never_follow_a_redirect_to_another_origin() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, Option<String>, Option<String>)>::new()));
    let record = |tag: &'static str, seen: Arc<std::sync::Mutex<Vec<_>>>| {
        move |h: axum::http::HeaderMap| async move {
            let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
            seen.lock().expect("lock").push((tag.to_string(), get("authorization"), get("x-api-key")));
            "arrived"
        }
    };
    let other = serve_target(Router::new().route("/final", get(record("other", seen.clone())))).await;
    let start = serve_target(
        Router::new()
            .route("/same", get(|| async { Redirect::temporary("/here") }))
            .route("/here", get(record("same", seen.clone())))
            .route("/away", get(move || async move { Redirect::temporary(&format!("http://{other}/final")) }))
            .route(
                "/post-away",
                axum::routing::post(move || async move { Redirect::temporary(&format!("http://{other}/final")) }),
            ),
    )
    .await;
    let loopback = policy(&["127.0.0.0/8"]);
    let check = |path: &str| {
        let mut c = HttpCheck::get(format!("http://{start}{path}").parse().expect("url"), Duration::from_secs(5));
        c.follow_redirects = true;
        c.headers = vec![
            ("authorization".parse().expect("name"), "Bearer s3cret".parse().expect("value")),
            ("x-api-key".parse().expect("name"), "k3y".parse().expect("value")),
        ];
        c
    };
    let same = http::run(&check("/same"), &loopback).await;
    assert_eq!((same.outcome, same.status), (Outcome::Up, Some(200)), "{same:?}");
    let away = http::run(&check("/away"), &loopback).await;
    assert_eq!((away.outcome, away.status), (Outcome::Up, Some(200)), "followed, without the credentials: {away:?}");
    let got = seen.lock().expect("lock").clone();
    assert_eq!(
        got,
        vec![("same".into(), Some("Bearer s3cret".into()), Some("k3y".into())), ("other".into(), None, None),]
    );
    let mut post = check("/post-away");
    post.method = axum::http::Method::POST;
    post.body = Some(bytes::Bytes::from_static(b"{\"password\":\"p4ss\"}"));
    let refused = http::run(&post, &loopback).await;
    assert_eq!(refused.error, Some(ErrorClass::Protocol), "{refused:?}");
    assert!(refused.detail.as_deref().is_some_and(|d| d.contains("would re-send the request body")), "{refused:?}");
    assert_eq!(seen.lock().expect("lock").len(), 2, "the body went nowhere else");
}

#[tokio::test]
async fn a_redirect_into_denied_space_is_refused_without_connecting() {
    // The second hop listens on 127.0.0.2, which this policy does not allow (only 127.0.0.1 is).
    let inner = tokio::net::TcpListener::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
    let inner_addr = inner.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while inner.accept().await.is_ok() {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    let targets = [
        format!("http://{inner_addr}/admin"),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[::ffff:127.0.0.2]:80/".into(),
    ];
    for to in targets {
        let start = serve_target(Router::new().route("/", get(move || async move { Redirect::to(&to) }))).await;
        let mut c = HttpCheck::get(format!("http://{start}/").parse().expect("url"), Duration::from_secs(5));
        c.follow_redirects = true;
        let r = http::run(&c, &policy(&["127.0.0.1/32"])).await;
        assert_eq!(r.error, Some(ErrorClass::BlockedByPolicy), "{r:?}");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 0, "no connection reached the private listener");
}

#[tokio::test]
async fn a_redirect_loop_stops_at_the_limit() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = Router::new().route("/", get(move || async move { (StatusCode::FOUND, [("location", "/")]) }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let mut c = HttpCheck::get(format!("http://{addr}/").parse().expect("url"), Duration::from_secs(5));
    c.follow_redirects = true;
    c.max_redirects = 3;
    let r = http::run(&c, &policy(&["127.0.0.0/8"])).await;
    assert_eq!(r.error, Some(ErrorClass::Protocol));
    assert!(r.detail.as_deref().is_some_and(|d| d.contains("more than 3 redirects")), "{:?}", r.detail);
}
