//! HTTP checks against real targets on loopback: each error class, each assertion, phases,
//! caps, the request id, the timeout, and the policy refusing before any connection.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use server::monitor::check::confirm::Outcome;
use server::monitor::check::http::{self, ErrorClass, HeaderCheck, HttpCheck, StatusRule};
use server::monitor::check::policy::NetworkPolicy;
use server::monitor::check::spec::Check;

/// Tests probe loopback on purpose: allowlisted, as an admin would.
fn loopback_allowed() -> NetworkPolicy {
    NetworkPolicy::new(vec!["127.0.0.0/8".parse().expect("cidr")], vec![])
}

async fn target(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

fn check(addr: SocketAddr, path: &str) -> HttpCheck {
    HttpCheck::get(format!("http://{addr}{path}").parse().expect("url"), Duration::from_secs(5))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("compress");
    enc.finish().expect("finish")
}

#[tokio::test]
async fn a_healthy_target_is_up_with_its_phases_measured_and_the_request_id_sent() {
    let seen = Arc::new(Mutex::new(None::<String>));
    let seen2 = seen.clone();
    let addr = target(Router::new().route(
        "/healthz",
        get(move |headers: HeaderMap| {
            let seen = seen2.clone();
            async move {
                *seen.lock().expect("lock") =
                    headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                "ok"
            }
        }),
    ))
    .await;
    let r = http::run(&check(addr, "/healthz"), &loopback_allowed()).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    assert_eq!(r.status, Some(200));
    assert_eq!(r.error, None);
    assert_eq!(r.phases.dns_us, None, "an IP literal needs no DNS");
    assert!(r.phases.connect_us.is_some() && r.phases.ttfb_us.is_some() && r.phases.transfer_us.is_some());
    assert_eq!(r.phases.tls_us, None);
    assert!(r.phases.total_us >= r.phases.ttfb_us.unwrap_or(0));
    assert_eq!(&r.body[..], b"ok");
    assert_eq!(seen.lock().expect("lock").as_deref(), Some(r.request_id.as_str()), "target saw our request id");
    assert_eq!(r.body_excerpt, None, "no excerpt on success");
}

#[tokio::test]
async fn names_are_resolved_and_the_dns_phase_is_timed() {
    let addr = target(Router::new().route("/", get(|| async { "ok" }))).await;
    let mut c = check(addr, "/");
    c.url = format!("http://localhost:{}/", addr.port()).parse().expect("url");
    let r = http::run(&c, &loopback_allowed()).await;
    assert_eq!(r.outcome, Outcome::Up, "{r:?}");
    assert!(r.phases.dns_us.is_some());
}

#[tokio::test]
async fn an_unexpected_status_is_down_with_class_status_and_an_excerpt() {
    let addr = target(
        Router::new()
            .route("/", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "x".repeat(5000)).into_response() })),
    )
    .await;
    let r = http::run(&check(addr, "/"), &loopback_allowed()).await;
    assert_eq!(r.outcome, Outcome::Down);
    assert_eq!(r.error, Some(ErrorClass::Status));
    assert_eq!(r.status, Some(500));
    let excerpt = r.body_excerpt.expect("excerpt on failure");
    assert_eq!(excerpt.len(), http::EXCERPT_LIMIT, "at most 1 KiB");
}

#[tokio::test]
async fn status_rules_accept_sets_and_ranges() {
    let addr = target(Router::new().route("/", get(|| async { StatusCode::NO_CONTENT }))).await;
    let mut c = check(addr, "/");
    c.assertions.status = StatusRule::OneOf(vec![204]);
    assert_eq!(http::run(&c, &loopback_allowed()).await.outcome, Outcome::Up);
    c.assertions.status = StatusRule::Range { min: 200, max: 200 };
    assert_eq!(http::run(&c, &loopback_allowed()).await.error, Some(ErrorClass::Status));
}

#[tokio::test]
async fn body_and_header_assertions() {
    let addr = target(
        Router::new()
            .route("/", get(|| async { ([("x-version", "1.2.3")], r#"{"status":"healthy","db":"connected"}"#) })),
    )
    .await;
    let policy = loopback_allowed();
    let mut c = check(addr, "/");
    c.assertions.body_contains = Some("healthy".into());
    c.assertions.body_regex = Some(regex::Regex::new(r#""db":\s*"connected""#).expect("regex"));
    c.assertions.headers = vec![HeaderCheck::equals(header::HeaderName::from_static("x-version"), "1.2.3")];
    assert_eq!(http::run(&c, &policy).await.outcome, Outcome::Up);

    let mut wrong = c.clone();
    wrong.assertions.body_contains = Some("unhealthy".into());
    assert_eq!(http::run(&wrong, &policy).await.error, Some(ErrorClass::Assertion));
    let mut wrong = c.clone();
    wrong.assertions.body_regex = Some(regex::Regex::new("disconnected").expect("regex"));
    assert_eq!(http::run(&wrong, &policy).await.error, Some(ErrorClass::Assertion));
    let mut wrong = c;
    wrong.assertions.headers = vec![HeaderCheck::equals(header::HeaderName::from_static("x-version"), "2.0.0")];
    assert_eq!(http::run(&wrong, &policy).await.error, Some(ErrorClass::Assertion));
}

#[tokio::test]
async fn slower_than_the_threshold_is_degraded() {
    let addr = target(Router::new().route(
        "/",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            "ok"
        }),
    ))
    .await;
    let mut c = check(addr, "/");
    c.degraded_after = Some(Duration::from_millis(50));
    let r = http::run(&c, &loopback_allowed()).await;
    assert_eq!(r.outcome, Outcome::Degraded);
    assert_eq!(r.error, None);
}

#[tokio::test]
async fn a_hanging_target_times_out_within_ten_percent() {
    let addr = target(Router::new().route("/", get(std::future::pending::<&'static str>))).await;
    let mut c = check(addr, "/");
    // Long enough that 10% (200 ms) absorbs scheduling noise on a loaded CI machine.
    c.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let r = http::run(&c, &loopback_allowed()).await;
    let took = started.elapsed();
    assert_eq!(r.error, Some(ErrorClass::Timeout));
    assert_eq!(r.outcome, Outcome::Down);
    assert!(took >= c.timeout && took <= c.timeout.mul_f64(1.1), "took {took:?} for a {:?} timeout", c.timeout);
    assert!(r.phases.connect_us.is_some(), "phases reached before the timeout are kept");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let r = http::run(&check(addr, "/"), &loopback_allowed()).await;
    assert_eq!(r.error, Some(ErrorClass::Connect), "{r:?}");
}

#[tokio::test]
async fn an_unknown_name_is_a_dns_error() {
    let mut c = check("127.0.0.1:1".parse().expect("addr"), "/");
    c.url = "http://no-such-host.invalid/".parse().expect("url");
    let r = http::run(&c, &loopback_allowed()).await;
    assert_eq!(r.error, Some(ErrorClass::Dns), "{r:?}");
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused_before_being_read_whole() {
    let addr = target(Router::new().route("/", get(|| async { "y".repeat(64 * 1024) }))).await;
    let mut c = check(addr, "/");
    c.body_cap = 16 * 1024;
    let r = http::run(&c, &loopback_allowed()).await;
    assert_eq!(r.error, Some(ErrorClass::BodyTooLarge), "{r:?}");
}

#[tokio::test]
async fn a_decompression_bomb_is_cut_off_at_the_cap() {
    // 64 MiB of zeros compresses to about 64 KiB.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 200 * 1024);
    let addr = target(Router::new().route(
        "/",
        get(move || {
            let bomb = bomb.clone();
            async move { ([(header::CONTENT_ENCODING, "gzip")], bomb) }
        }),
    ))
    .await;
    let r = http::run(&check(addr, "/"), &loopback_allowed()).await;
    assert_eq!(r.error, Some(ErrorClass::BodyTooLarge), "{r:?}");
}

#[tokio::test]
async fn gzip_bodies_are_decompressed_for_assertions() {
    let payload = gzip(b"all systems nominal");
    let addr = target(Router::new().route(
        "/",
        get(move || {
            let payload = payload.clone();
            async move { ([(header::CONTENT_ENCODING, "gzip")], payload) }
        }),
    ))
    .await;
    let mut c = check(addr, "/");
    c.assertions.body_contains = Some("nominal".into());
    assert_eq!(http::run(&c, &loopback_allowed()).await.outcome, Outcome::Up);
}

#[tokio::test]
async fn the_default_policy_refuses_loopback_without_connecting() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let r = http::run(&check(addr, "/"), &NetworkPolicy::default()).await;
    assert_eq!(r.error, Some(ErrorClass::BlockedByPolicy));
    assert_eq!(r.phases.connect_us, None);
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the target must see no connection: {other:?}"),
    }
}

#[tokio::test]
async fn only_http_is_probed() {
    for url in ["ftp://example.com/", "file:///etc/passwd", "gopher://example.com/"] {
        let mut c = check("127.0.0.1:1".parse().expect("addr"), "/");
        c.url = url.parse().expect("url");
        let r = http::run(&c, &loopback_allowed()).await;
        assert_eq!(r.error, Some(ErrorClass::Protocol), "{url}");
    }
}

#[tokio::test]
async fn a_readiness_check_of_the_demo_target_names_the_failing_component() {
    use server::demo::{DemoTarget, Scenario};
    use server::monitor::check::readiness;
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let demo = DemoTarget::start(any, any).await.expect("demo");
    let policy = loopback_allowed();

    let healthy = http::run(&check(demo.addr, "/readyz"), &policy).await;
    assert_eq!(healthy.outcome, Outcome::Up);
    assert_eq!(readiness::parse(&healthy.body).failing().count(), 0);

    demo.set_scenario(Scenario::Unready);
    let r = http::run(&check(demo.addr, "/readyz"), &policy).await;
    assert_eq!((r.outcome, r.status, r.error), (Outcome::Down, Some(503), Some(ErrorClass::Status)));
    let report = readiness::parse(&r.body);
    let failing: Vec<_> = report.failing().map(|c| (c.name.as_str(), c.detail.as_deref())).collect();
    assert_eq!(failing, vec![("database", Some("connection refused"))]);
}

#[tokio::test]
async fn a_metrics_scrape_of_the_demo_target_shows_pool_exhaustion() {
    use server::demo::{DemoTarget, Scenario};
    use server::monitor::check::scrape::{self, PoolMapping};
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let demo = DemoTarget::start(any, any).await.expect("demo");
    let policy = loopback_allowed();

    let r = http::run(&check(demo.addr, "/metrics"), &policy).await;
    let calm = scrape::extract(std::str::from_utf8(&r.body).expect("utf8"), &PoolMapping::default()).expect("parses");
    assert!(calm.saturation().expect("known") < 0.9);

    demo.set_scenario(Scenario::Pool);
    let r = http::run(&check(demo.addr, "/metrics"), &policy).await;
    let s = scrape::extract(std::str::from_utf8(&r.body).expect("utf8"), &PoolMapping::default()).expect("parses");
    assert_eq!(s.saturation(), Some(1.0));
    assert!(s.waiting.expect("waiting gauge") > 0.0);
}

#[tokio::test]
async fn json_path_assertions_judge_a_live_body() {
    use app::model::{CompareOp, JsonPathAssertion};
    use server::monitor::check::http::JsonPathCheck;
    let addr =
        target(Router::new().route(
            "/status",
            get(|| async { axum::Json(serde_json::json!({"status": "UP", "db": {"latency_ms": 12}})) }),
        ))
        .await;
    let jp =
        |path: &str, op, value| JsonPathCheck::new(&JsonPathAssertion { path: path.into(), op, value }).expect("valid");
    let mut c = check(addr, "/status");
    c.assertions.json_paths = vec![
        jp("$.status", CompareOp::Eq, Some(serde_json::json!("UP"))),
        jp("$.db.latency_ms", CompareOp::Lt, Some(serde_json::json!(50))),
    ];
    assert_eq!(http::run(&c, &loopback_allowed()).await.outcome, Outcome::Up);
    c.assertions.json_paths = vec![jp("$.db.latency_ms", CompareOp::Lt, Some(serde_json::json!(5)))];
    let r = http::run(&c, &loopback_allowed()).await;
    assert_eq!(r.error, Some(ErrorClass::Assertion));
    assert!(r.detail.as_deref().is_some_and(|d| d.contains("$.db.latency_ms is 12")), "{:?}", r.detail);
}

#[tokio::test]
async fn a_readiness_body_reporting_a_component_down_fails_even_with_200() {
    use server::monitor::check::execute::{self, ScrapeMemory};
    let addr = target(Router::new().route(
        "/readyz",
        get(|| async { axum::Json(serde_json::json!({"status": "degraded", "database": "connected", "cache": {"status": "down", "error": "timeout"}})) }),
    ))
    .await;
    let c = Check::Http(check(addr, "/readyz"));
    let r = execute::run(
        uuid::Uuid::new_v4(),
        app::model::ProbeKind::Readiness,
        &c,
        &Default::default(),
        &loopback_allowed(),
        &mut ScrapeMemory::default(),
    )
    .await;
    assert_eq!((r.outcome, r.status, r.error), (Outcome::Down, Some(200), Some(ErrorClass::Assertion)));
    assert!(r.detail.as_deref().is_some_and(|d| d.contains("cache")), "{:?}", r.detail);
    assert_eq!(r.components.len(), 2);
}

#[tokio::test]
async fn a_metrics_body_that_is_not_prometheus_text_is_a_parse_error() {
    use server::monitor::check::execute::{self, ScrapeMemory};
    let addr = target(Router::new().route("/metrics", get(|| async { "<html>login required</html>\n{{{" }))).await;
    let c = Check::Http(check(addr, "/metrics"));
    let r = execute::run(
        uuid::Uuid::new_v4(),
        app::model::ProbeKind::Metrics,
        &c,
        &Default::default(),
        &loopback_allowed(),
        &mut ScrapeMemory::default(),
    )
    .await;
    assert_eq!((r.outcome, r.error), (Outcome::Down, Some(ErrorClass::Parse)), "{r:?}");
    assert!(r.body_excerpt.is_some());
}

#[tokio::test]
async fn counter_rates_come_from_consecutive_scrapes() {
    use server::monitor::check::execute::{self, ScrapeMemory};
    let hits = Arc::new(Mutex::new(0u32));
    let hits2 = hits.clone();
    let addr = target(Router::new().route(
        "/metrics",
        get(move || {
            let hits = hits2.clone();
            async move {
                let mut n = hits.lock().expect("lock");
                *n += 1;
                format!(
                    "http_requests_total{{status=\"200\"}} {}\nhttp_requests_total{{status=\"500\"}} {}\n",
                    *n * 1000,
                    *n * 10
                )
            }
        }),
    ))
    .await;
    let c = Check::Http(check(addr, "/metrics"));
    let mut memory = ScrapeMemory::default();
    let id = uuid::Uuid::new_v4();
    let kind = app::model::ProbeKind::Metrics;
    let first = execute::run(id, kind, &c, &Default::default(), &loopback_allowed(), &mut memory).await;
    assert_eq!(first.pool.and_then(|p| p.requests_per_s), None, "one scrape has no rate yet");
    let second = execute::run(id, kind, &c, &Default::default(), &loopback_allowed(), &mut memory).await;
    let pool = second.pool.expect("reading");
    let (req, err) = (pool.requests_per_s.expect("rate"), pool.errors_per_s.expect("5xx rate"));
    assert!(
        req > 0.0 && err > 0.0 && (req / err - 101.0).abs() < 0.01,
        "1,010 more requests, 10 more 5xx: {req} {err}"
    );
}
