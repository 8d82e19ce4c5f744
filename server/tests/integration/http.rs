//! The HTTP surface against a real PostgreSQL: health, readiness, metrics, request ids, panics,
//! limits, timeouts, pages and server functions, graceful shutdown.

use std::time::Duration;

use crate::common::{fresh_db, spawn_app, spawn_app_with, test_settings};
use app::model::Role;
use axum::http::Method;
use axum::routing::{get, post};
use serde_json::Value;
use server::web::access::Secured;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn healthz_is_ok_without_touching_the_database() {
    let app = spawn_app().await;
    // Close the pool: liveness must not depend on it.
    app.pool.close().await;
    let res = app.client.get(app.url("/healthz")).send().await.expect("request");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body, serde_json::json!({ "status": "ok" }));
}

#[tokio::test]
async fn readyz_reports_the_database_component() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["failing"], serde_json::json!([]));
    assert_eq!(body["checks"]["database"]["status"], "up");
    assert!(body["checks"]["database"]["latency_ms"].as_f64().is_some());
}

#[tokio::test]
async fn readyz_is_503_naming_the_database_when_the_pool_is_gone() {
    let mut settings = test_settings();
    settings.readiness_cache = Duration::ZERO;
    let app = spawn_app_with(fresh_db().await, settings, Secured::default()).await;
    app.pool.close().await;
    let res = app.client.get(app.url("/readyz")).send().await.expect("request");
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["failing"], serde_json::json!(["database"]));
    assert_eq!(body["checks"]["database"]["status"], "down");
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_with_pool_gauges() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.client.get(app.url("/healthz")).send().await.expect("request");
    }
    app.client.get(app.url("/no/such/thing/4711")).send().await.expect("request");
    let res = app.client.get(app.url("/metrics")).send().await.expect("request");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"].to_str().expect("ascii").starts_with("application/openmetrics-text"),
        "exposition content type"
    );
    let text = res.text().await.expect("body");
    assert!(text.contains(r#"triage_http_requests_total{method="GET",route="/healthz",status="200"} 3"#), "{text}");
    assert!(text.contains("# TYPE triage_http_request_duration_seconds histogram"));
    assert!(text.contains(r#"triage_http_request_duration_seconds_bucket{le="0.001",method="GET",route="/healthz"}"#));
    assert!(text.contains(r#"route="unmatched""#), "unknown paths share one label");
    assert!(!text.contains("4711"), "raw paths never become labels");
    for gauge in ["triage_db_pool_size ", "triage_db_pool_idle ", "triage_db_pool_in_use "] {
        assert!(text.contains(gauge), "missing {gauge}");
    }
    let max = format!("triage_db_pool_max {}", app.pool.options().get_max_connections());
    assert!(text.contains(&max), "pool max reported: {max}");
    assert!(text.contains(&format!(r#"triage_build_info{{version="{}"}} 1"#, env!("CARGO_PKG_VERSION"))));
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn request_ids_are_propagated_or_generated() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.expect("request");
    assert_eq!(res.headers()["x-request-id"], "abc-123");

    let a = app.client.get(app.url("/healthz")).send().await.expect("request");
    let b = app.client.get(app.url("/healthz")).send().await.expect("request");
    let (a, b) = (a.headers()["x-request-id"].clone(), b.headers()["x-request-id"].clone());
    assert_eq!(a.len(), 32);
    assert_ne!(a, b, "each request gets its own id");

    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id\"with quotes")
        .send()
        .await
        .expect("request");
    assert_ne!(res.headers()["x-request-id"], "bad id\"with quotes");
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_500_and_the_server_keeps_serving() {
    async fn boom() -> &'static str {
        panic!("boom")
    }
    let extra = Secured::default().public(Method::GET, "/test/panic", get(boom));
    let app = spawn_app_with(fresh_db().await, test_settings(), extra).await;
    let res = app.client.get(app.url("/test/panic")).send().await.expect("a response, not a dropped connection");
    assert_eq!(res.status(), 500);
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "internal");
    assert!(!body.to_string().contains("boom"), "panic details stay in the log");
    let again = app.client.get(app.url("/healthz")).send().await.expect("request");
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn an_oversized_body_gets_413_json() {
    let mut settings = test_settings();
    settings.body_limit = 1024;
    let extra = Secured::default().public(
        Method::POST,
        "/test/echo",
        post(|body: String| async move { body.len().to_string() }),
    );
    let app = spawn_app_with(fresh_db().await, settings, extra).await;
    let small = app.client.post(app.url("/test/echo")).body("x".repeat(1000)).send().await.expect("request");
    assert_eq!(small.status(), 200);
    assert_eq!(small.text().await.expect("body"), "1000");
    let big = app.client.post(app.url("/test/echo")).body("x".repeat(5000)).send().await.expect("request");
    assert_eq!(big.status(), 413);
    let body: Value = big.json().await.expect("json");
    assert_eq!(body["error"], "payload_too_large");
    assert!(body["message"].as_str().expect("message").contains("1024"));
}

#[tokio::test]
async fn a_slow_handler_gets_408_after_the_request_timeout() {
    let mut settings = test_settings();
    settings.request_timeout = Duration::from_millis(200);
    let extra = Secured::default().public(Method::GET, "/test/forever", get(std::future::pending::<&'static str>));
    let app = spawn_app_with(fresh_db().await, settings, extra).await;
    let res = app.client.get(app.url("/test/forever")).send().await.expect("request");
    assert_eq!(res.status(), 408);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let mut settings = test_settings();
    settings.header_read_timeout = Duration::from_millis(300);
    let app = spawn_app_with(fresh_db().await, settings, Secured::default()).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("partial headers");
    let mut buf = Vec::new();
    // The server must close the connection on its own; the outer timeout only bounds a failure.
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "server closed the slow connection");
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("200 OK"), "no response to an incomplete request: {text}");
}

#[tokio::test]
async fn the_overview_renders_on_the_server() {
    let app = spawn_app().await;
    let viewer = app.browser_of(Role::Viewer).await;
    let res = viewer.get(app.url("/")).send().await.expect("request");
    assert_eq!(res.status(), 200);
    let html = res.text().await.expect("body");
    assert!(html.contains("<h1>Services</h1>"), "{html}");
    assert!(html.contains("/pkg/triage.js"), "hydration script is referenced");
}

#[tokio::test]
async fn the_status_page_renders_readiness_from_the_database() {
    let app = spawn_app().await;
    let viewer = app.browser_of(Role::Viewer).await;
    let html = viewer.get(app.url("/status")).send().await.expect("request").text().await.expect("body");
    assert!(html.contains("Ready: every dependency answers."), "{html}");
    assert!(html.contains("<svg"), "round-trip chart rendered server-side");
    let instance: (uuid::Uuid,) =
        sqlx::query_as("select instance_id from instance").fetch_one(&app.pool).await.expect("row");
    assert!(html.contains(&instance.0.to_string()));
}

#[tokio::test]
async fn unknown_pages_are_404() {
    let app = spawn_app().await;
    let viewer = app.browser_of(Role::Viewer).await;
    let res = viewer.get(app.url("/no-such-page")).send().await.expect("request");
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_status_server_function_returns_json() {
    let app = spawn_app().await;
    let viewer = app.browser_of(Role::Viewer).await;
    let res = viewer
        .post(app.url("/api/get_system_status"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_and_refuses_new_ones() {
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let (entered_tx, mut entered_rx) = tokio::sync::mpsc::channel::<()>(1);
    let extra = Secured::default().public(
        Method::GET,
        "/test/slow",
        get(move || {
            let mut release = release_rx.clone();
            let entered = entered_tx.clone();
            async move {
                let _ = entered.send(()).await;
                let _ = release.wait_for(|r| *r).await;
                "finished"
            }
        }),
    );
    let mut app = spawn_app_with(fresh_db().await, test_settings(), extra).await;
    let client = app.client.clone();
    let slow_url = app.url("/test/slow");
    let in_flight = tokio::spawn(async move { client.get(slow_url).send().await });
    entered_rx.recv().await.expect("handler entered");

    let server = app.begin_shutdown();
    // New connections are refused once the listener is closed.
    let mut refused = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(app.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "listener closed after shutdown began");
    release_tx.send(true).expect("release");
    let res = in_flight.await.expect("task").expect("in-flight request completed");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "finished");
    server.await.expect("server drained");
}

#[tokio::test]
async fn responses_are_compressed_when_the_client_accepts_it() {
    let app = spawn_app().await;
    let plain = app.client.get(app.url("/metrics")).send().await.expect("request");
    assert!(plain.headers().get("content-encoding").is_none(), "no encoding unless asked");
    let gz = app.client.get(app.url("/metrics")).header("accept-encoding", "gzip").send().await.expect("request");
    assert_eq!(gz.headers()["content-encoding"], "gzip");
}
