//! "Run now" (`POST /api/v1/probes/test`): a definition run once against real loopback targets,
//! answered as it would be stored, with nothing stored; and the network policy's refusal named
//! with the way to allow it, on a run and on a save.

use app::model::{ErrorClass, Outcome, Probe, ProbeTrial};
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use server::storage::results;
use server::web::access::Secured;

use crate::common::{self, fresh_db, serve_target, spawn_app, spawn_app_with, test_settings};

async fn run_now(app: &common::TestApp, spec: Value) -> reqwest::Response {
    app.client.post(app.url("/api/v1/probes/test")).json(&spec).send().await.expect("request")
}

async fn trial(app: &common::TestApp, spec: Value) -> ProbeTrial {
    let res = run_now(app, spec).await;
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.expect("a trial")
}

fn orders() -> Router {
    Router::new()
        .route("/orders", get(|| async { axum::Json(json!({"status": "ok", "queue": {"depth": 7}})) }))
        .route(
            "/ready",
            get(|| async { axum::Json(json!({"status": "DOWN", "components": {"db": {"status": "DOWN"}}})) }),
        )
        .route(
            "/metrics",
            get(|| async {
                "# TYPE hikaricp_connections_active gauge\nhikaricp_connections_active 4\n\
                 hikaricp_connections_idle 6\nhikaricp_connections_max 10\nhikaricp_connections_pending 0\n"
            }),
        )
}

#[tokio::test]
async fn run_now_answers_the_result_as_stored_and_stores_nothing() {
    let app = spawn_app().await;
    let target = serve_target(orders()).await;
    let spec = |assertion: Value| {
        json!({"name": "orders", "service": "shop", "kind": "http", "url": format!("http://{target}/orders"),
               "assert": {"json_path": [assertion]}})
    };

    // A failing assertion says which one and why, with the body's start to fix it from.
    let failed = trial(&app, spec(json!({"path": "$.queue.depth", "op": "lt", "value": 5}))).await;
    assert_eq!((failed.result.outcome, failed.result.error), (Outcome::Down, Some(ErrorClass::Assertion)));
    let why = failed.result.detail.clone().unwrap_or_default();
    assert!(why.contains("$.queue.depth"), "the failing path is named: {why}");
    assert!(failed.result.body_excerpt.as_deref().is_some_and(|b| b.contains("\"depth\":7")));
    assert_eq!(failed.result.status, Some(200));
    assert!(failed.refused.is_none(), "loopback is allowlisted in the tests' settings");

    // Fixed from the shown reason: up, with the phases a stored result carries.
    let passed = trial(&app, spec(json!({"path": "$.queue.depth", "op": "lt", "value": 10}))).await;
    assert_eq!((passed.result.outcome, passed.result.error), (Outcome::Up, None));
    let phases = passed.result.phases;
    assert!(phases.connect_us.is_some() && phases.ttfb_us.is_some() && phases.transfer_us.is_some());
    assert!(phases.total_us >= phases.ttfb_us.unwrap_or(0));
    assert_eq!(passed.result.request_id.len(), 32, "a fresh x-request-id, as for a scheduled check");
    assert_ne!(passed.result.request_id, failed.result.request_id);

    // Readiness and metrics definitions show what their mapping finds.
    let ready = trial(
        &app,
        json!({"name": "ready", "service": "shop", "kind": "readiness", "url": format!("http://{target}/ready")}),
    )
    .await;
    assert_eq!(ready.result.outcome, Outcome::Down);
    assert!(ready.result.components.iter().any(|c| c.name == "db"), "components: {:?}", ready.result.components);
    let metrics = trial(
        &app,
        json!({"name": "pool", "service": "shop", "kind": "metrics", "url": format!("http://{target}/metrics")}),
    )
    .await;
    let pool = metrics.result.pool.expect("a pool reading");
    assert_eq!((pool.in_use, pool.idle, pool.max), (Some(4.0), Some(6.0), Some(10.0)));

    // Nothing was stored: no probe, no service, no result.
    let probes: Vec<Probe> = app.get_json("/api/v1/probes").await;
    assert!(probes.is_empty());
    let services: Vec<Value> = app.get_json("/api/v1/services").await;
    assert!(services.is_empty());
    assert_eq!(results::count_results(&app.pool, None).await.expect("count"), 0);
    app.stop().await;
}

#[tokio::test]
async fn run_now_refuses_what_it_cannot_run_naming_the_field() {
    let app = spawn_app().await;
    let bad = run_now(&app, json!({"name": "x", "service": "shop", "kind": "http", "url": "ftp://127.0.0.1/"})).await;
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(bad.json::<Value>().await.expect("body")["field"], "url");
    let push = run_now(&app, json!({"name": "x", "service": "shop", "kind": "push"})).await;
    assert_eq!(push.status().as_u16(), 400);
    assert_eq!(push.json::<Value>().await.expect("body")["field"], "kind");
    // Only admins run definitions (the access matrix covers every role; a viewer is the usual one).
    let viewer = app.browser_of(app::model::Role::Viewer).await;
    let res = viewer
        .post(app.url("/api/v1/probes/test"))
        .json(&json!({"name": "x", "service": "shop", "kind": "http", "url": "http://127.0.0.1:9/"}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 403);
    app.stop().await;
}

#[tokio::test]
async fn a_refused_target_is_named_with_its_rule_and_the_way_to_allow_it() {
    // The default policy: loopback is not allowlisted.
    let mut settings = test_settings();
    settings.probes.allow.clear();
    let app = spawn_app_with(fresh_db().await, settings, Secured::default()).await;
    let target = serve_target(orders()).await;
    let spec = json!({"name": "orders", "service": "shop", "kind": "http", "url": format!("http://{target}/orders")});

    let tried = trial(&app, spec.clone()).await;
    assert_eq!((tried.result.outcome, tried.result.error), (Outcome::Down, Some(ErrorClass::BlockedByPolicy)));
    let refused = tried.refused.expect("the refusal");
    assert_eq!(refused.address, target.to_string());
    assert_eq!(refused.rule, "loopback address");
    assert!(refused.allow.contains("127.0.0.1/32"), "how to allow it: {}", refused.allow);
    let detail = tried.result.detail.unwrap_or_default();
    assert!(detail.contains("allow 127.0.0.1/32 under Configure"), "the stored detail says it too: {detail}");

    // Saving is allowed (an admin may be about to allow it), and the answer carries the warning.
    let res = app.client.post(app.url("/api/v1/probes")).json(&spec).send().await.expect("create");
    assert_eq!(res.status().as_u16(), 201);
    let written: Value = res.json().await.expect("written probe");
    assert_eq!(written["refused"]["rule"], "loopback address");
    // A target the policy lets through carries no warning.
    let fine = json!({"name": "other", "service": "shop", "kind": "http", "url": "http://[::1]:9/",
                      "enabled": false});
    let mut allowed = test_settings();
    allowed.probes.allow = vec!["::1/128".parse().expect("cidr")];
    let app2 = spawn_app_with(fresh_db().await, allowed, Secured::default()).await;
    let res = app2.client.post(app2.url("/api/v1/probes")).json(&fine).send().await.expect("create");
    assert_eq!(res.status().as_u16(), 201);
    assert!(res.json::<Value>().await.expect("written")["refused"].is_null());
    app2.stop().await;
    app.stop().await;
}
