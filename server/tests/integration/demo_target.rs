//! The demo target behaves as each scenario promises, observed over real HTTP on loopback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use server::demo::{DemoTarget, Scenario};

async fn start() -> (DemoTarget, reqwest::Client) {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let target = DemoTarget::start(any, any).await.expect("demo target starts");
    (target, reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client"))
}

fn url(t: &DemoTarget, path: &str) -> String {
    format!("http://{}{}", t.addr, path)
}

async fn metric(client: &reqwest::Client, t: &DemoTarget, name: &str) -> f64 {
    let text = client.get(url(t, "/metrics")).send().await.expect("scrape").text().await.expect("body");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).map(|v| v.trim().parse::<f64>()))
        .expect("metric present")
        .expect("number")
}

#[tokio::test]
async fn healthy_answers_quickly_with_everything_up() {
    let (t, client) = start().await;
    let health = client.get(url(&t, "/healthz")).send().await.expect("request");
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value =
        client.get(url(&t, "/readyz")).send().await.expect("request").json().await.expect("json");
    assert_eq!(ready["checks"]["database"]["status"], "up");
    let products = client.get(url(&t, "/api/products")).send().await.expect("request");
    assert_eq!(products.status(), 200);
    assert!(metric(&client, &t, "db_connections_active").await < metric(&client, &t, "db_connections_max").await);
    assert_eq!(metric(&client, &t, "db_connections_waiting").await, 0.0);
}

#[tokio::test]
async fn slow_makes_api_calls_take_hundreds_of_milliseconds() {
    let (t, client) = start().await;
    t.set_scenario(Scenario::Slow);
    let started = Instant::now();
    let res = client.get(url(&t, "/api/products")).send().await.expect("request");
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(240), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn errors_fail_a_share_of_api_calls_with_500() {
    let (t, client) = start().await;
    t.set_scenario(Scenario::Errors);
    let mut failures = 0;
    for _ in 0..40 {
        if client.get(url(&t, "/api/cart")).send().await.expect("request").status() == 500 {
            failures += 1;
        }
    }
    // 35% per request: zero failures in 40 has probability below 1e-7.
    assert!(failures > 0 && failures < 40, "{failures}/40 failed");
    assert!(metric(&client, &t, "http_requests_total{status=\"5xx\"}").await >= 1.0);
}

#[tokio::test]
async fn pool_shows_an_exhausted_pool_with_waiters() {
    let (t, client) = start().await;
    t.set_scenario(Scenario::Pool);
    let max = metric(&client, &t, "db_connections_max").await;
    assert_eq!(metric(&client, &t, "db_connections_active").await, max);
    assert!(metric(&client, &t, "db_connections_waiting").await > 0.0);
    assert_eq!(metric(&client, &t, "db_connections_idle").await, 0.0);
}

#[tokio::test]
async fn unready_fails_readiness_naming_the_database() {
    let (t, client) = start().await;
    let switched = client.post(format!("http://{}/control/unready", t.control_addr)).send().await.expect("control");
    assert_eq!(switched.status(), 200);
    let res = client.get(url(&t, "/readyz")).send().await.expect("request");
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["checks"]["database"]["status"], "down");
    assert_eq!(client.get(url(&t, "/healthz")).send().await.expect("request").status(), 200, "still alive");
}

#[tokio::test]
async fn down_refuses_connections_until_switched_back() {
    let (t, client) = start().await;
    let res = client.post(format!("http://{}/control/down", t.control_addr)).send().await.expect("control");
    assert_eq!(res.status(), 200);
    // The port closes once the switch is processed; wait for the refusal (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::net::TcpStream::connect(t.addr).await {
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
                break;
            }
            Ok(_) if Instant::now() < deadline => tokio::task::yield_now().await,
            Ok(_) => panic!("service port still accepting after switching to down"),
        }
    }
    let back = client.post(format!("http://{}/control/healthy", t.control_addr)).send().await.expect("control");
    assert_eq!(back.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match client.get(url(&t, "/healthz")).send().await {
            Ok(res) => break res.status(),
            Err(_) if Instant::now() < deadline => tokio::task::yield_now().await,
            Err(e) => panic!("service did not come back: {e}"),
        }
    };
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_unknown_scenario_is_a_400_naming_the_field() {
    let (t, client) = start().await;
    let res = client.post(format!("http://{}/control/meteor", t.control_addr)).send().await.expect("control");
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["field"], "scenario");
}
