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

/// The h2c connection preface and an empty SETTINGS frame: what every HTTP/2 client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// h2c has no header-read timeout in hyper; the connection's idle watchdog gives it the same limit
/// as HTTP/1: a client that opens a stream's headers and never finishes them is cut.
#[tokio::test]
async fn an_h2c_client_that_never_finishes_its_headers_is_disconnected() {
    let mut settings = test_settings();
    settings.header_read_timeout = Duration::from_millis(300);
    let app = spawn_app_with(fresh_db().await, settings, Secured::default()).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(H2_PREFACE).await.expect("preface");
    // A HEADERS frame announcing 64 bytes of header block, of which only 3 ever arrive.
    stream.write_all(&[0, 0, 64, 0x1, 0x4, 0, 0, 0, 1, 0x82, 0x86, 0x84]).await.expect("partial headers");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "server closed the slow h2c connection");
    // Its own SETTINGS may have been sent; never a HEADERS frame (type 1) answering the request.
    let mut at = 0;
    while at + 9 <= buf.len() {
        let len = (usize::from(buf[at]) << 16) | (usize::from(buf[at + 1]) << 8) | usize::from(buf[at + 2]);
        assert_ne!(buf[at + 3], 0x1, "no response to an incomplete request");
        at += 9 + len;
    }
}

/// The idle limit counts only connections with nothing running: a response streamed for longer
/// than the header-read timeout over h2c is not cut short.
#[tokio::test]
async fn a_long_h2c_response_outlives_the_idle_limit() {
    use http_body_util::BodyExt;
    let mut settings = test_settings();
    settings.header_read_timeout = Duration::from_millis(200);
    let slow = || async {
        let ticks = futures::stream::unfold(0u32, |n| async move {
            if n == 6 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            Some((Ok::<_, std::convert::Infallible>(format!("tick {n}\n")), n + 1))
        });
        axum::body::Body::from_stream(ticks)
    };
    let extra = Secured::default().public(Method::GET, "/test/slow-stream", get(slow));
    let app = spawn_app_with(fresh_db().await, settings, extra).await;
    let tcp = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{}/test/slow-stream", app.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let res = send.send_request(req).await.expect("response");
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.expect("the whole body arrives").to_bytes();
    assert_eq!(String::from_utf8_lossy(&body).lines().count(), 6, "900 ms of ticks over a 200 ms idle limit");
}

/// At the connection cap new connections wait; idle ones are cut at the header-read timeout, and
/// the waiting request is served once one has gone.
#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_for_idle_ones_to_close() {
    let mut settings = test_settings();
    settings.max_connections = 16;
    settings.header_read_timeout = Duration::from_millis(500);
    let app = spawn_app_with(fresh_db().await, settings, Secured::default()).await;
    let mut closed = Vec::new();
    for _ in 0..16 {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
        // One complete exchange proves the server accepted this connection; then it sits idle.
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("request");
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.expect("answer");
        assert_eq!(&head, b"HTTP/1.1 200");
        closed.push(tokio::spawn(async move {
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
            std::time::Instant::now()
        }));
    }
    let res = app.anonymous.get(app.url("/healthz")).send().await.expect("served once there is room");
    let served_at = std::time::Instant::now();
    assert_eq!(res.status(), 200);
    let mut first_close = None::<std::time::Instant>;
    for c in closed {
        let at = c.await.expect("idle connection closed by the server");
        first_close = Some(first_close.map_or(at, |f| f.min(at)));
    }
    assert!(first_close.expect("closes") <= served_at, "the 17th waited for an idle connection to be cut");
}

/// Every response carries the security headers; a page's policy allows exactly the inline
/// scripts that carry its own per-response nonce, and violations reported by browsers are
/// counted.
#[tokio::test]
async fn pages_carry_a_nonced_policy_and_every_response_the_security_headers() {
    let app = spawn_app().await;
    let viewer = app.browser_of(Role::Viewer).await;
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let res = viewer.get(app.url("/")).send().await.expect("page");
        let policy = res.headers()["content-security-policy"].to_str().expect("ascii").to_string();
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        let nonce = policy.split("'nonce-").nth(1).and_then(|r| r.split('\'').next()).expect("a nonce").to_string();
        let html = res.text().await.expect("body");
        // Every inline script in the page carries the nonce (the theme, hydration and data scripts).
        let scripts = html.matches("<script").count();
        assert!(scripts >= 2, "{html}");
        assert_eq!(html.matches(&format!("nonce=\"{nonce}\"")).count(), scripts, "{html}");
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a new nonce for every response");
    for path in ["/api/v1/services", "/healthz", "/no-such-page"] {
        let res = viewer.get(app.url(path)).send().await.expect("request");
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h["content-security-policy"].to_str().expect("ascii").contains("default-src 'self'"), "{path}");
    }
    let report = serde_json::json!({"csp-report": {"violated-directive": "script-src", "blocked-uri": "inline"}});
    let res = app
        .anonymous
        .post(app.url("/csp-report"))
        .header("content-type", "application/csp-report")
        .body(report.to_string())
        .send()
        .await
        .expect("report");
    assert_eq!(res.status(), 204);
    let metrics = app.anonymous.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("triage_csp_violations_total 1"), "{metrics}");
}

#[tokio::test]
async fn front_end_files_go_out_precompressed_and_hashed_names_are_cached_for_good() {
    let site = tempfile::tempdir().expect("tempdir");
    let pkg = site.path().join("pkg");
    std::fs::create_dir_all(&pkg).expect("pkg");
    let hashed = "chunk_3.Ab3_-Z9kLmNoPqRsTuVwXy.js";
    let plain_js = "function triage() { return 'the plain file'; }\n".repeat(20);
    std::fs::write(pkg.join(hashed), &plain_js).expect("js");
    // What the build's brotli and gzip wrote: the server must send these bytes as they are.
    std::fs::write(pkg.join(format!("{hashed}.br")), b"brotli bytes from the build").expect("br");
    std::fs::write(pkg.join(format!("{hashed}.gz")), b"gzip bytes from the build").expect("gz");
    std::fs::write(pkg.join("triage.css"), "body { color: black; }\n".repeat(20)).expect("css");
    let mut settings = test_settings();
    settings.site_root = site.path().to_path_buf();
    let app = spawn_app_with(fresh_db().await, settings, Secured::default()).await;
    let get =
        |path: &str, encodings: &str| app.anonymous.get(app.url(path)).header("accept-encoding", encodings).send();
    let header = |res: &reqwest::Response, name: &str| {
        res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    };

    let path = format!("/pkg/{hashed}");
    let br = get(&path, "gzip, deflate, br").await.expect("br");
    assert_eq!(br.status(), 200);
    assert_eq!(header(&br, "content-encoding"), "br");
    assert!(header(&br, "content-type").contains("javascript"), "the original's type: {}", header(&br, "content-type"));
    assert_eq!(header(&br, "cache-control"), "public, max-age=31536000, immutable");
    assert!(header(&br, "vary").to_ascii_lowercase().contains("accept-encoding"));
    assert_eq!(br.bytes().await.expect("body").as_ref(), b"brotli bytes from the build");

    let gz = get(&path, "gzip").await.expect("gzip");
    assert_eq!(header(&gz, "content-encoding"), "gzip");
    assert_eq!(gz.bytes().await.expect("body").as_ref(), b"gzip bytes from the build");

    let identity = get(&path, "identity").await.expect("identity");
    assert_eq!(header(&identity, "content-encoding"), "");
    assert_eq!(identity.text().await.expect("body"), plain_js);

    // Without a precompressed copy the file is compressed on the fly, and an unhashed name is
    // revalidated: unchanged, it answers 304.
    let css = get("/pkg/triage.css", "br").await.expect("css");
    assert_eq!(css.status(), 200);
    assert_eq!(header(&css, "content-encoding"), "br");
    assert_eq!(header(&css, "cache-control"), "no-cache");
    let modified = header(&css, "last-modified");
    assert!(!modified.is_empty(), "a Last-Modified to revalidate with");
    let again = app
        .anonymous
        .get(app.url("/pkg/triage.css"))
        .header("if-modified-since", &modified)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "cache-control"), "no-cache");

    assert_eq!(get("/pkg/missing.js", "br").await.expect("missing").status(), 404);
}

#[tokio::test]
async fn the_overview_body_is_served_as_html_for_any_view_and_rendered_into_the_page() {
    let app = spawn_app().await;
    for (name, tags) in [("checkout", vec!["payments"]), ("search", vec!["edge"]), ("ledger", vec!["payments"])] {
        let res = app
            .client
            .post(app.url("/api/v1/services"))
            .json(&serde_json::json!({"name": name, "tags": tags}))
            .send()
            .await
            .expect("create");
        assert_eq!(res.status(), 201);
    }
    let viewer = app.browser_of(Role::Viewer).await;
    let body = |query: &'static str| {
        let viewer = viewer.clone();
        let url = app.url(&format!("/api/v1/overview.html{query}"));
        async move {
            let res = viewer.get(url).send().await.expect("request");
            assert_eq!(res.status(), 200);
            assert!(res.headers()[http::header::CONTENT_TYPE].to_str().expect("type").starts_with("text/html"));
            res.text().await.expect("body")
        }
    };
    let all = body("").await;
    assert!(all.contains("3 of 3 services"), "{all}");
    assert!(all.contains(r#"data-service="checkout""#) && all.contains(r#"data-service="search""#));
    // The facets: two services tagged payments, a link that narrows to them.
    assert!(all.contains(r#"href="/?tag=payments" data-tag="payments">payments <strong>2</strong>"#), "{all}");
    let tagged = body("?tag=payments&sort=name").await;
    assert!(tagged.contains("2 of 3 services"), "{tagged}");
    assert!(!tagged.contains(r#"data-service="search""#));
    assert!(tagged.find("data-service=\"checkout\"") < tagged.find("data-service=\"ledger\""), "by name");
    let none = body("?q=no-such-service&state=nonsense").await;
    assert!(none.contains("0 of 3 services"), "unknown filters fall back to the default: {none}");

    // The page the server renders carries the same body for its URL's view.
    let page = viewer.get(app.url("/?q=sea")).send().await.expect("page").text().await.expect("html");
    assert!(page.contains(r#"<div id="overview-body">"#) && page.contains(r#"data-service="search""#), "{page}");
    assert!(!page.contains(r#"data-service="checkout""#));

    // Without credentials: refused like every viewer route.
    let anonymous = app.anonymous.get(app.url("/api/v1/overview.html")).send().await.expect("anonymous");
    assert_eq!(anonymous.status(), 401);
}
