//! The services/probes REST API and scheduled probing end to end: real app, real PostgreSQL, real
//! targets on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::model::{ErrorClass, Outcome, Probe, ProbeResult, Series, Service, StateChange};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};
use server::monitor::hub::ProbeEvent;
use server::web::access::Secured;

use crate::common::{self, next_frame, result_of, serve_target, spawn_app, wait_events};

async fn post(app: &common::TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client.post(app.url(path)).json(&body).send().await.expect("request")
}

async fn error_field(res: reqwest::Response, status: u16) -> Option<String> {
    assert_eq!(res.status().as_u16(), status);
    let body: Value = res.json().await.expect("JSON error body");
    body["field"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn services_are_created_listed_updated_and_deleted() {
    let app = spawn_app().await;
    let res =
        post(&app, "/api/v1/services", json!({"name": "shop", "tags": ["checkout"], "criticality": "high"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let shop: Service = res.json().await.expect("service");
    assert_eq!((shop.name.as_str(), shop.state), ("shop", None));

    let dup = post(&app, "/api/v1/services", json!({"name": "shop"})).await;
    assert_eq!(error_field(dup, 409).await.as_deref(), Some("name"));
    let bad = post(&app, "/api/v1/services", json!({"name": "x", "criticality": "urgent"})).await;
    assert_eq!(error_field(bad, 400).await.as_deref(), Some("criticality"));

    let put = app
        .client
        .put(app.url(&format!("/api/v1/services/{}", shop.id)))
        .json(&json!({"name": "shop", "description": "the shop", "criticality": "critical"}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), StatusCode::OK);
    let list: Vec<Service> = app.get_json("/api/v1/services").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].description, "the shop");

    let del = app.client.delete(app.url(&format!("/api/v1/services/{}", shop.id))).send().await.expect("delete");
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let gone = app.client.get(app.url(&format!("/api/v1/services/{}", shop.id))).send().await.expect("get");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let junk = app.client.get(app.url("/api/v1/services/not-a-uuid")).send().await.expect("get");
    assert_eq!(error_field(junk, 400).await.as_deref(), Some("id"));
    app.stop().await;
}

#[tokio::test]
async fn bad_probe_definitions_get_a_400_naming_the_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let base = json!({"name": "p", "service": "shop", "kind": "http", "url": "http://127.0.0.1:9/"});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"interval_secs": 0}), "interval_secs"),
        (json!({"timeout_ms": 60000}), "timeout_ms"),
        (json!({"url": "file:///etc/passwd"}), "url"),
        (json!({"kind": "smtp"}), "kind"),
        (json!({"assert": {"status": {"min": 500, "max": 200}}}), "assert.status"),
        (json!({"assert": {"body_regex": "(("}}), "assert.body_regex"),
        (json!({"assert": {"json_path": [{"path": "$..[", "op": "eq", "value": 1}]}}), "assert.json_path"),
        (json!({"headers": {"Host": "internal"}}), "headers"),
        (json!({"intervall_secs": 5}), "intervall_secs"),
        (json!({"service_id": "00000000-0000-0000-0000-000000000001", "service": null}), "service_id"),
    ];
    for (patch, field) in cases {
        let mut body = base.clone();
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        let res = post(&app, "/api/v1/probes", body.clone()).await;
        assert_eq!(error_field(res, 400).await.as_deref(), Some(field), "{body}");
    }
    let missing = post(&app, "/api/v1/probes", json!({"kind": "http"})).await;
    assert_eq!(error_field(missing, 400).await.as_deref(), Some("name"));
    let not_json = app.client.post(app.url("/api/v1/probes")).body("name=p").send().await.expect("post");
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let probes: Vec<Probe> = app.get_json("/api/v1/probes").await;
    assert!(probes.is_empty(), "nothing half-stored");
    app.stop().await;
}

#[tokio::test]
async fn a_scheduled_probe_stores_results_carrying_the_request_id_the_target_saw() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let target = serve_target(Router::new().route(
        "/healthz",
        get(move |h: HeaderMap| {
            let seen = seen2.clone();
            async move {
                if let Some(id) = h.get("x-request-id").and_then(|v| v.to_str().ok()) {
                    seen.lock().expect("lock").push(id.to_string());
                }
                "ok"
            }
        }),
    ))
    .await;
    let app = spawn_app().await;
    let mut events = app.state.hub.subscribe();
    let res = post(
        &app,
        "/api/v1/probes",
        json!({"name": "shop-health", "service": "shop", "kind": "http", "url": format!("http://{target}/healthz"),
               "interval_secs": 1, "timeout_ms": 500}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let probe: Probe = res.json().await.expect("probe");
    assert_eq!(probe.spec.service.as_deref(), Some("shop"), "the service was created by name");
    wait_events(&mut events, 3, Duration::from_secs(20), result_of(probe.id)).await;

    let results: Vec<ProbeResult> = app.get_json(&format!("/api/v1/probes/{}/results?from=now-5m", probe.id)).await;
    assert!(results.len() >= 3, "{}", results.len());
    let seen = seen.lock().expect("lock").clone();
    for r in &results {
        assert_eq!(r.outcome, Outcome::Up);
        assert!(seen.contains(&r.request_id), "the target logged {}", r.request_id);
        assert!(r.phases.connect_us.is_some() && r.phases.ttfb_us.is_some());
    }
    assert!(results.windows(2).all(|w| w[0].at >= w[1].at), "newest first");

    let series: Series = app.get_json(&format!("/api/v1/probes/{}/series?from=now-15m", probe.id)).await;
    assert_eq!(series.step_secs, 60);
    let total: u64 = series.points.iter().map(|p| p.count).sum();
    assert!(total >= 3, "{total}");
    assert!(series.points.iter().any(|p| p.p95_ms.is_some()));

    let probe: Probe = app.get_json(&format!("/api/v1/probes/{}", probe.id)).await;
    let status = probe.status.expect("state stored");
    assert_eq!((status.state, status.last_outcome), (Some(Outcome::Up), Some(Outcome::Up)));
    let changes: serde_json::Value = app.get_json(&format!("/api/v1/probes/{}/state-changes", probe.id)).await;
    assert_eq!(changes.as_array().map(Vec::len), Some(1), "{changes}");
    assert_eq!(
        (&changes[0]["from"], &changes[0]["to"]),
        (&json!("unknown"), &json!("up")),
        "a first state, not a change"
    );
    let services: Vec<Service> = app.get_json("/api/v1/services").await;
    assert_eq!(services[0].state, Some(Outcome::Up), "a service is as bad as its worst probe");
    app.stop().await;
}

/// An ICMP probe's echo counts are stored with each result and roll up into the loss % series
/// its chart draws.
#[tokio::test]
async fn icmp_results_keep_their_echo_counts_and_the_series_their_loss() {
    let app = spawn_app().await;
    let mut events = app.state.hub.subscribe();
    let res = post(
        &app,
        "/api/v1/probes",
        json!({"name": "ping", "service": "edge", "kind": "icmp", "url": "icmp://127.0.0.1", "packets": 2,
               "interval_secs": 1, "timeout_ms": 800}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let probe: Probe = res.json().await.expect("probe");
    wait_events(&mut events, 2, Duration::from_secs(20), result_of(probe.id)).await;
    let results: Vec<Value> = app.get_json(&format!("/api/v1/probes/{}/results?from=now-5m", probe.id)).await;
    assert!(results.len() >= 2, "{results:?}");
    for r in &results {
        assert_eq!(r["echo"], json!({"sent": 2, "received": 2}), "{r}");
    }
    let series: Series = app.get_json(&format!("/api/v1/probes/{}/series?from=now-15m", probe.id)).await;
    let losses: Vec<f64> = series.points.iter().filter_map(|p| p.loss_pct).collect();
    assert!(!losses.is_empty() && losses.iter().all(|l| *l == 0.0), "{:?}", series.points);
    app.stop().await;
}

#[tokio::test]
async fn a_failing_target_is_confirmed_down_once_with_its_evidence() {
    let target =
        serve_target(Router::new().route("/", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "db down") }))).await;
    let app = spawn_app().await;
    let mut events = app.state.hub.subscribe();
    let probe: Probe = post(
        &app,
        "/api/v1/probes",
        json!({"name": "api", "service": "shop", "kind": "http", "url": format!("http://{target}/"),
               "interval_secs": 1, "timeout_ms": 500, "failures_to_down": 2}),
    )
    .await
    .json()
    .await
    .expect("probe");
    let results = wait_events(&mut events, 4, Duration::from_secs(20), result_of(probe.id)).await;
    // The event for a state change precedes its result's event; collect what arrived.
    let changes: Vec<StateChange> = app.get_json(&format!("/api/v1/probes/{}/state-changes", probe.id)).await;
    assert_eq!(changes.len(), 1, "one change, not one per failing check: {changes:?}");
    assert_eq!((changes[0].from, changes[0].to), (None, Outcome::Down), "a new probe was never up");
    assert_eq!(changes[0].error, Some(ErrorClass::Status));
    let second = match &results[1] {
        ProbeEvent::Result(result) => app.stored(result).await,
        other => panic!("{other:?}"),
    };
    assert_eq!(changes[0].request_id, second.request_id, "the confirming check's request id");
    assert_eq!(second.body_excerpt.as_deref(), Some("db down"));
    app.stop().await;
}

#[tokio::test]
async fn pushes_need_the_probe_token_and_a_retry_is_not_stored_twice() {
    let app = spawn_app().await;
    let res = post(
        &app,
        "/api/v1/probes",
        json!({"name": "batch-job", "service": "etl", "kind": "push", "interval_secs": 3600, "timeout_ms": 1000}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.expect("json");
    let token = created["push_token"].as_str().expect("token shown once").to_string();
    assert_eq!(token.len(), 64, "256 bits, hex");
    let id = created["id"].as_str().expect("id").to_string();
    let shown: Value = app.get_json(&format!("/api/v1/probes/{id}")).await;
    assert!(shown.get("push_token").is_none(), "never shown again");

    let url = app.url(&format!("/api/v1/push/{id}"));
    let body = json!({"agent_id": "agent-1", "seq": 7, "outcome": "up", "latency_ms": 12.5});
    let none = app.anonymous.post(&url).json(&body).send().await.expect("post");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let wrong = app.anonymous.post(&url).bearer_auth("0".repeat(64)).json(&body).send().await.expect("post");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let text = wrong.text().await.expect("body");
    assert!(!text.contains(&token), "secrets never echoed");

    let first = app.anonymous.post(&url).bearer_auth(&token).json(&body).send().await.expect("post");
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = app.anonymous.post(&url).bearer_auth(&token).json(&body).send().await.expect("post");
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["duplicate"], json!(true));
    let other_agent = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"agent_id": "agent-2", "seq": 7, "error": "timeout"}))
        .send()
        .await
        .expect("post");
    assert_eq!(other_agent.status(), StatusCode::CREATED, "the key is agent + sequence");
    let bad = app
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"agent_id": "a", "seq": -1}))
        .send()
        .await
        .expect("post");
    assert_eq!(error_field(bad, 400).await.as_deref(), Some("seq"));
    // An agent that buffered through a long outage: three days late is inside the raw-retention
    // window (35 days here) and stored; older than the window is refused, naming the field.
    let at = |days: i64| (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
    let late = json!({"agent_id": "agent-3", "seq": 1, "outcome": "up", "at": at(3)});
    let res = app.client.post(&url).bearer_auth(&token).json(&late).send().await.expect("post");
    assert_eq!(res.status(), StatusCode::CREATED);
    let ancient = json!({"agent_id": "agent-3", "seq": 2, "outcome": "up", "at": at(36)});
    let res = app.client.post(&url).bearer_auth(&token).json(&ancient).send().await.expect("post");
    assert_eq!(error_field(res, 400).await.as_deref(), Some("at"));

    let probe_id: uuid::Uuid = id.parse().expect("uuid");
    let stored = server::storage::results::count_results(&app.pool, Some(probe_id)).await.expect("count");
    assert_eq!(stored, 3);
    let results: Vec<ProbeResult> = app.get_json(&format!("/api/v1/probes/{id}/results?from=now-30d")).await;
    let down = results.iter().find(|r| r.outcome == Outcome::Down).expect("agent-2's failure");
    assert_eq!(down.error, Some(ErrorClass::Timeout));
    let up = results.iter().find(|r| r.outcome == Outcome::Up).expect("agent-1's");
    assert_eq!(up.phases.total_us, 12_500);
    app.stop().await;
}

/// A push whose store fails leaves no transition behind: the agent's retry confirms the change
/// again and it is stored, exactly once.
#[tokio::test]
async fn a_push_that_could_not_be_stored_confirms_its_change_on_the_retry() {
    let app = spawn_app().await;
    let created: Value = post(
        &app,
        "/api/v1/probes",
        json!({"name": "etl-run", "service": "etl", "kind": "push", "interval_secs": 3600, "failures_to_down": 1}),
    )
    .await
    .json()
    .await
    .expect("json");
    let (id, token) = (created["id"].as_str().expect("id"), created["push_token"].as_str().expect("token"));
    // The database refuses this one push, as it would while restarting.
    sqlx::raw_sql(
        "create function refuse_seq_7() returns trigger language plpgsql as $$
           begin if new.seq = 7 then
             raise exception 'the database system is shutting down' using errcode = '57P03';
           end if; return new; end $$;
         create trigger refuse_7 before insert on push_receipts for each row execute function refuse_seq_7();",
    )
    .execute(&app.pool)
    .await
    .expect("trigger");
    let url = app.url(&format!("/api/v1/push/{id}"));
    let push = |seq: i64| {
        app.anonymous
            .post(&url)
            .bearer_auth(token)
            .json(&json!({"agent_id": "agent-1", "seq": seq, "outcome": "down", "error": "timeout"}))
            .send()
    };
    let failed = push(7).await.expect("post");
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE, "an outage, not a bug: try again");
    assert!(failed.headers().contains_key("retry-after"), "{:?}", failed.headers());
    sqlx::raw_sql("drop trigger refuse_7 on push_receipts").execute(&app.pool).await.expect("drop");
    assert_eq!(push(7).await.expect("post").status(), StatusCode::CREATED, "the retry is stored");
    assert_eq!(push(8).await.expect("post").status(), StatusCode::CREATED);
    let changes: Vec<StateChange> = app.get_json(&format!("/api/v1/probes/{id}/state-changes")).await;
    assert_eq!(changes.len(), 1, "confirmed once, stored once: {changes:?}");
    assert_eq!((changes[0].from, changes[0].to), (None, Outcome::Down));
    app.stop().await;
}

/// A batch whose COMMIT landed but whose answer was lost is retried under the same id: its
/// results and state change are not stored twice (so no automatic timeline entry doubles).
#[tokio::test]
async fn a_retried_batch_is_not_stored_twice() {
    use server::storage::results::{self, StateRow};
    let app = spawn_app().await;
    let probe: Probe =
        post(&app, "/api/v1/probes", json!({"name": "db", "service": "shop", "kind": "push", "interval_secs": 3600}))
            .await
            .json()
            .await
            .expect("probe");
    let at = chrono::Utc::now();
    let result = ProbeResult {
        error: Some(ErrorClass::Timeout),
        ..ProbeResult::bare(probe.id, at, Outcome::Down, "batch-retry-1".into())
    };
    let state = StateRow {
        probe_id: probe.id,
        state: Some(Outcome::Down),
        since: at,
        last_result_at: at,
        last_outcome: Outcome::Down,
        last_error: Some(ErrorClass::Timeout),
    };
    let change = StateChange {
        probe_id: probe.id,
        service_id: probe.service_id,
        at,
        from: None,
        to: Outcome::Down,
        request_id: "batch-retry-1".into(),
        error: Some(ErrorClass::Timeout),
        quorum: None,
    };
    let id = uuid::Uuid::new_v4();
    let write = || {
        results::write_batch(
            &app.pool,
            id,
            std::slice::from_ref(&result),
            std::slice::from_ref(&state),
            std::slice::from_ref(&change),
        )
    };
    let first = write().await.expect("first");
    assert!(!first.repeated);
    let again = write().await.expect("the retry");
    assert!(again.repeated, "recognised");
    assert_eq!(results::count_results(&app.pool, Some(probe.id)).await.expect("count"), 1);
    let changes: Vec<StateChange> = app.get_json(&format!("/api/v1/probes/{}/state-changes", probe.id)).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_silent_push_agent_is_a_missed_heartbeat() {
    let app = spawn_app().await;
    let mut events = app.state.hub.subscribe();
    let created: Value = post(
        &app,
        "/api/v1/probes",
        json!({"name": "cron", "service": "etl", "kind": "push", "interval_secs": 1, "timeout_ms": 500}),
    )
    .await
    .json()
    .await
    .expect("json");
    let id: uuid::Uuid = created["id"].as_str().expect("id").parse().expect("uuid");
    let got = wait_events(&mut events, 1, Duration::from_secs(10), result_of(id)).await;
    let ProbeEvent::Result(result) = &got[0] else { panic!("{got:?}") };
    assert_eq!((result.outcome, result.error), (Outcome::Down, Some(ErrorClass::MissedHeartbeat)));
    app.stop().await;
}

#[tokio::test]
async fn triage_watches_itself_out_of_the_box() {
    let mut settings = common::test_settings();
    settings.probes.self_watch = true;
    let pool = common::fresh_db().await;
    let app = common::spawn_app_with(pool, settings, Secured::default()).await;
    let mut events = app.state.hub.subscribe();
    let probes: Vec<Probe> = app.get_json("/api/v1/probes").await;
    let names: Vec<&str> = probes.iter().map(|p| p.spec.name.as_str()).collect();
    assert_eq!(names, vec!["triage-healthz", "triage-metrics", "triage-readyz"]);
    let metrics = probes.iter().find(|p| p.spec.name == "triage-metrics").expect("metrics probe").id;
    let readyz = probes.iter().find(|p| p.spec.name == "triage-readyz").expect("readyz probe").id;
    let got = wait_events(&mut events, 1, Duration::from_secs(30), result_of(metrics)).await;
    let ProbeEvent::Result(live) = &got[0] else { panic!() };
    let result = app.stored(live).await;
    assert_eq!(result.outcome, Outcome::Up, "{result:?}");
    let pool = result.pool.expect("pool gauges scraped from Triage's own /metrics");
    assert_eq!(pool.max, Some(5.0), "the test pool's limit");
    let series: Series = app.get_json(&format!("/api/v1/probes/{metrics}/series?from=now-5m")).await;
    let point = series.points.last().expect("a point for the scrape");
    assert_eq!(point.pool.and_then(|p| p.max), Some(5.0), "pool gauges reach the series");
    let got = wait_events(&mut events, 1, Duration::from_secs(30), result_of(readyz)).await;
    let ProbeEvent::Result(live) = &got[0] else { panic!() };
    let result = app.stored(live).await;
    assert_eq!(result.outcome, Outcome::Up);
    assert!(result.components.iter().any(|c| c.name == "database"), "{:?}", result.components);
    app.stop().await;
}

#[tokio::test]
async fn the_probe_file_manages_its_probes() {
    let app = spawn_app().await;
    let text = r#"
[[service]]
name = "shop"
criticality = "critical"

[[probe]]
name = "shop-a"
service = "shop"
kind = "http"
url = "http://127.0.0.1:9/a"
interval_secs = 60

[[probe]]
name = "shop-b"
service = "shop"
kind = "http"
url = "http://127.0.0.1:9/b"
interval_secs = 60
"#;
    let file = server::monitor::probe_file::parse(text).expect("parses");
    let applied =
        server::monitor::probe_file::apply(&app.pool, Some(&app.state.scheduler), &file).await.expect("applies");
    assert_eq!((applied.probes, applied.removed), (2, 0));
    let probes: Vec<Probe> = app.get_json("/api/v1/probes").await;
    assert!(probes.iter().all(|p| p.file_managed));
    let a = &probes[0];
    let put = app.client.put(app.url(&format!("/api/v1/probes/{}", a.id))).json(&a.spec).send().await.expect("put");
    assert_eq!(put.status(), StatusCode::CONFLICT, "the file owns it");

    let fewer = server::monitor::probe_file::parse(&text.replace("shop-b", "shop-c")).expect("parses");
    let applied =
        server::monitor::probe_file::apply(&app.pool, Some(&app.state.scheduler), &fewer).await.expect("applies");
    assert_eq!(applied.removed, 1);
    let again: Vec<Probe> = app.get_json("/api/v1/probes").await;
    let names: Vec<&str> = again.iter().map(|p| p.spec.name.as_str()).collect();
    assert_eq!(names, vec!["shop-a", "shop-c"]);
    assert_eq!(again[0].id, a.id, "matched by name: same probe, same id");

    let exported = server::monitor::probe_file::export(&app.pool).await.expect("export");
    let round = server::monitor::probe_file::parse(&server::monitor::probe_file::to_toml(&exported).expect("toml"))
        .expect("re-parses");
    assert_eq!(round.probes.len(), 2);
    assert_eq!(round.services[0].criticality, app::model::Criticality::Critical);
    let bad =
        server::monitor::probe_file::parse(&text.replace("interval_secs = 60", "interval_secs = 0")).expect("parses");
    let err = server::monitor::probe_file::apply(&app.pool, Some(&app.state.scheduler), &bad)
        .await
        .expect_err("invalid")
        .to_string();
    assert!(err.contains("shop-a") && err.contains("interval_secs"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn the_overview_tile_carries_fresh_latency_errors_and_state() {
    let target = serve_target(Router::new().route("/", get(|| async { "ok" }))).await;
    let app = spawn_app().await;
    let mut events = app.state.hub.subscribe();
    let probe: Probe = post(
        &app,
        "/api/v1/probes",
        json!({"name": "shop-health", "service": "shop", "kind": "http", "url": format!("http://{target}/"),
               "interval_secs": 1, "timeout_ms": 500}),
    )
    .await
    .json()
    .await
    .expect("probe");
    wait_events(&mut events, 2, Duration::from_secs(20), result_of(probe.id)).await;
    let overview = server::monitor::overview::overview(&app.pool).await.expect("overview");
    let tile = &overview.services[0];
    assert_eq!((tile.name.as_str(), tile.state, tile.probes), ("shop", Some(Outcome::Up), 1));
    assert!(tile.p95_ms.is_some_and(|ms| ms > 0.0), "latency from raw results newer than any rollup: {tile:?}");
    assert_eq!(tile.error_pct, Some(0.0));
    assert!(tile.last_check.is_some());

    let view =
        server::monitor::overview::service_view(&app.pool, tile.id, &app::model::Window::Preset { name: "15m".into() })
            .await
            .expect("query")
            .expect("exists");
    assert_eq!(view.step_secs, 60);
    assert!(view.traffic.iter().map(|p| p.count).sum::<u64>() >= 2, "{:?}", view.traffic);
    assert!(view.pool.is_empty(), "no metrics probe, no pool series");
    assert!(view.recent.len() >= 2 && view.recent.windows(2).all(|w| w[0].at >= w[1].at));
    assert_eq!(view.probes.len(), 1);
    let none = server::monitor::overview::service_view(&app.pool, uuid::Uuid::new_v4(), &app::model::Window::default())
        .await
        .expect("query");
    assert!(none.is_none());

    // The prober's counters are on /metrics: the results just seen were counted.
    let text = app.client.get(app.url("/metrics")).send().await.expect("request").text().await.expect("body");
    let counter = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
    };
    assert!(counter("triage_probe_checks_started_total") >= 2);
    assert!(counter("triage_probe_results_written_total") >= 2);
    assert_eq!(counter("triage_probe_results_dropped_total"), 0);
    // Every started check's lateness is in the histogram (one may start between the two reads).
    let (late, started) =
        (counter("triage_probe_lateness_seconds_count"), counter("triage_probe_checks_started_total"));
    assert!(late >= 2 && late.abs_diff(started) <= 1, "lateness count {late}, started {started}");
    app.stop().await;
}

/// Reads SSE frames from a streaming response until `pred` accepts one or the stream ends.
#[tokio::test]
async fn live_events_stream_the_filtered_probes_results_and_end_at_shutdown() {
    let target = serve_target(Router::new().route("/", get(|| async { "ok" }))).await;
    let app = spawn_app().await;
    let make = |name: &str| {
        json!({"name": name, "service": "shop", "kind": "http", "url": format!("http://{target}/"),
               "interval_secs": 1, "timeout_ms": 500})
    };
    let watched: Probe = post(&app, "/api/v1/probes", make("watched")).await.json().await.expect("probe");
    let _other: Probe = post(&app, "/api/v1/probes", make("other")).await.json().await.expect("probe");
    let mut res =
        app.client.get(app.url(&format!("/api/v1/events?probe_id={}", watched.id))).send().await.expect("connect");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().expect("ascii").starts_with("text/event-stream"));
    let mut buf = String::new();
    let hello = next_frame(&mut res, &mut buf, |f| f.contains("event: ready")).await.expect("ready frame");
    assert!(hello.contains("retry: 2000"), "{hello}");
    for _ in 0..3 {
        let frame = next_frame(&mut res, &mut buf, |f| f.contains("event: result")).await.expect("result frame");
        let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).expect("data line");
        let event: app::model::LiveEvent = serde_json::from_str(data).expect("LiveEvent JSON");
        let app::model::LiveEvent::Result(r) = event else { panic!("{frame}") };
        assert_eq!(r.probe_id, watched.id, "only the filtered probe");
        assert_eq!(r.outcome, Outcome::Up);
    }
    let bad = app.client.get(app.url("/api/v1/events?service_id=x")).send().await.expect("get");
    assert_eq!(error_field(bad, 400).await.as_deref(), Some("service_id"));
    // An open stream must not hold the graceful drain for its whole grace period.
    tokio::time::timeout(Duration::from_secs(10), app.stop()).await.expect("shutdown is not held up by the stream");
    let mut left = 0;
    while next_frame(&mut res, &mut buf, |_| true).await.is_some() {
        left += 1;
        assert!(left < 100, "the stream ended");
    }
}

/// The running server re-reads its `--config` file on request: a dry run says what would
/// change, the real one applies it (scheduled at once) and records the same difference in the
/// audit trail.
#[tokio::test]
async fn the_server_reapplies_its_probe_file_on_request_with_the_difference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("triage.toml");
    let file = |names: &[(&str, u32)]| {
        names
            .iter()
            .map(|(n, interval)| {
                format!(
                    "[[probe]]\nname = \"{n}\"\nservice = \"shop\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/{n}\"\n\
                     interval_secs = {interval}\nenabled = false\n\n"
                )
            })
            .collect::<String>()
    };
    std::fs::write(&path, file(&[("shop-a", 60), ("shop-b", 60)])).expect("write");
    let mut settings = crate::common::test_settings();
    settings.config_file = Some(path.clone());
    let app = crate::common::spawn_app_with(crate::common::fresh_db().await, settings, Secured::default()).await;
    let apply = |dry: bool| app.client.post(app.url(&format!("/api/v1/probes/apply?dry_run={dry}"))).send();

    let dry: Value = apply(true).await.expect("apply").json().await.expect("diff");
    assert_eq!(dry["probes_added"], json!(["shop-a", "shop-b"]));
    assert_eq!(dry["services_added"], json!([]), "services are listed only when the file declares them");
    assert!(app.get_json::<Vec<Probe>>("/api/v1/probes").await.is_empty(), "a dry run changes nothing");
    let res = apply(false).await.expect("apply");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.get_json::<Vec<Probe>>("/api/v1/probes").await.len(), 2);

    // One probe changed, one gone, one new.
    std::fs::write(&path, file(&[("shop-a", 30), ("shop-c", 60)])).expect("write");
    let diff: Value = apply(false).await.expect("apply").json().await.expect("diff");
    assert_eq!(diff["probes_added"], json!(["shop-c"]));
    assert_eq!(diff["probes_changed"], json!(["shop-a"]));
    assert_eq!(diff["probes_removed"], json!(["shop-b"]));
    let names: Vec<String> =
        app.get_json::<Vec<Probe>>("/api/v1/probes").await.into_iter().map(|p| p.spec.name).collect();
    assert_eq!(names, vec!["shop-a", "shop-c"]);
    let same: Value = apply(true).await.expect("apply").json().await.expect("diff");
    assert_eq!(
        (same["probes_unchanged"].as_u64(), same["probes_changed"].as_array().map(Vec::len)),
        (Some(2), Some(0))
    );

    let audit = server::storage::auth::list_audit(&app.pool, 10).await.expect("audit");
    let applied: Vec<_> = audit.iter().filter(|(_, e)| e.action == "probes.apply").collect();
    assert_eq!(applied.len(), 2, "one entry per real application, none for dry runs");
    assert_eq!(applied[0].1.detail["probes_removed"], json!(["shop-b"]), "the newest carries its difference");

    // A broken file changes nothing and says why; so does a valid one with a refused entry, even
    // when the refused probe comes after one that would be written.
    std::fs::write(&path, "[[probe]]\nname = ").expect("write");
    let res = apply(false).await.expect("apply");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let refused = file(&[("shop-d", 60), ("shop-e", 0)]);
    std::fs::write(&path, refused).expect("write");
    let dry = apply(true).await.expect("apply");
    assert_eq!(dry.status(), StatusCode::BAD_REQUEST, "a dry run refuses what the real run would");
    let res = apply(false).await.expect("apply");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("error");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("shop-e") && m.contains("interval_secs")), "{body}");
    let names: Vec<String> =
        app.get_json::<Vec<Probe>>("/api/v1/probes").await.into_iter().map(|p| p.spec.name).collect();
    assert_eq!(names, vec!["shop-a", "shop-c"], "shop-d was not written either");
    // An exported file's masked secret for a probe that has none stored cannot be restored: the
    // whole file is refused before anything is written, in a dry run too.
    let masked = format!(
        "{}[[probe]]\nname = \"shop-f\"\nservice = \"shop\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/f\"\n\
         enabled = false\nheaders = {{ authorization = \"{}\" }}\n",
        file(&[("shop-d", 60)]),
        app::model::SECRET_MASK
    );
    std::fs::write(&path, masked).expect("write");
    for dry in [true, false] {
        let res = apply(dry).await.expect("apply");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "dry run: {dry}");
        let body: Value = res.json().await.expect("error");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("shop-f") && message.contains("type it again"), "{body}");
    }
    let names: Vec<String> =
        app.get_json::<Vec<Probe>>("/api/v1/probes").await.into_iter().map(|p| p.spec.name).collect();
    assert_eq!(names, vec!["shop-a", "shop-c"], "nothing from the masked file was written");
    app.stop().await;

    // Without --config there is nothing to re-read.
    let plain = spawn_app().await;
    let res = plain.client.post(plain.url("/api/v1/probes/apply")).send().await.expect("apply");
    assert_eq!(res.status(), StatusCode::CONFLICT);
    plain.stop().await;
}
