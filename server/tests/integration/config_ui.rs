//! The configuration pages' server functions, called as the browser calls them (a signed-in
//! session, the site's Origin, JSON bodies): probes saved with write-only secrets, "Run now"
//! with a sample body, the JSONPath tester, bulk actions by selection and tag, the probe file's
//! export and import, the built-in demo, and the admin role checked on each.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::model::{
    AllowEntry, BulkOutcome, Catalog, DemoStatus, ImportSummary, JsonPathTest, Outcome, Probe, ProbeTrial, Role,
    SECRET_MASK, SavedProbe,
};
use axum::Router;
use axum::routing::any;
use http::HeaderMap;
use serde_json::{Value, json};
use server::storage::catalog as store;
use server::web::access::Secured;

use crate::common::{self, fresh_db, serve_target, spawn_app, spawn_app_with, test_settings};

async fn call<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    app: &common::TestApp,
    f: &str,
    body: Value,
) -> T {
    let res = client.post(app.url(&format!("/api/{f}"))).json(&body).send().await.expect("post");
    let status = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(status, 200, "{f}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{f}: {e}: {text}"))
}

async fn status_of(client: &reqwest::Client, app: &common::TestApp, f: &str, body: Value) -> (u16, Value) {
    let res = client.post(app.url(&format!("/api/{f}"))).json(&body).send().await.expect("post");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A target that remembers the `authorization` header of the last request it got.
async fn recording_target() -> (std::net::SocketAddr, Arc<Mutex<Option<String>>>) {
    let seen = Arc::new(Mutex::new(None));
    let keep = seen.clone();
    let addr = serve_target(Router::new().route(
        "/status",
        any(move |headers: HeaderMap| {
            let keep = keep.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                *keep.lock().expect("lock") = auth;
                axum::Json(json!({"status": "ok", "checks": [{"name": "db", "status": "UP"}]}))
            }
        }),
    ))
    .await;
    (addr, seen)
}

#[tokio::test]
async fn secrets_saved_from_the_browser_are_kept_and_never_shown_again() {
    let app = spawn_app().await;
    let admin = app.browser_of(Role::Admin).await;
    let (target, seen) = recording_target().await;
    let spec = json!({
        "name": "orders-status", "service": "orders", "kind": "http",
        "url": format!("http://{target}/status"),
        "headers": {"authorization": "Bearer t0ken-secret", "x-env": "prod-secret"},
        "method": "POST", "body": "{\"key\":\"body-secret\"}", "interval_secs": 60
    });
    let saved: SavedProbe = call(&admin, &app, "save_probe", json!({"id": null, "from": null, "spec": spec})).await;
    let id = saved.probe.id;

    let secrets = ["t0ken-secret", "prod-secret", "body-secret"];
    let shown = [
        serde_json::to_string(&saved).expect("json"),
        serde_json::to_string(&call::<Catalog>(&admin, &app, "get_catalog", json!({})).await).expect("json"),
        call::<String>(&admin, &app, "export_probe_file", json!({})).await,
    ];
    for text in &shown {
        for s in secrets {
            assert!(!text.contains(s), "{s} shown to the browser: {text}");
        }
        assert!(text.contains(SECRET_MASK), "{text}");
    }

    // A form loads the services and its own probe only (masked too), not the whole fleet.
    let other =
        json!({"name": "orders-other", "service": "orders", "kind": "http", "url": format!("http://{target}/x")});
    let _: SavedProbe = call(&admin, &app, "save_probe", json!({"id": null, "from": null, "spec": other})).await;
    let one: Catalog = call(&admin, &app, "get_catalog", json!({"scope": {"probe": id}})).await;
    assert_eq!(one.probes.iter().map(|p| p.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(one.probes[0].spec.headers["authorization"], SECRET_MASK);
    let services: Catalog = call(&admin, &app, "get_catalog", json!({"scope": "services"})).await;
    assert!(services.probes.is_empty() && services.services.len() == 1, "{services:?}");
    assert_eq!(call::<Catalog>(&admin, &app, "get_catalog", json!({})).await.probes.len(), 2, "the list: all");

    // The form sends the masked spec back with one change: the secrets stay as stored.
    let catalog: Catalog = call(&admin, &app, "get_catalog", json!({})).await;
    let mut back = catalog.probes.iter().find(|p| p.id == id).expect("listed").spec.clone();
    back.interval_secs = 30;
    let _: SavedProbe = call(&admin, &app, "save_probe", json!({"id": id, "from": id, "spec": back})).await;
    let stored = store::get_probe(&app.pool, id).await.expect("db").expect("probe").spec;
    assert_eq!(stored.interval_secs, 30);
    assert_eq!(stored.headers["authorization"], "Bearer t0ken-secret");
    assert_eq!(stored.body.as_deref(), Some("{\"key\":\"body-secret\"}"));

    // "Run now" of the masked form sends the real credentials to the target.
    let trial: ProbeTrial = call(&admin, &app, "run_probe", json!({"from": id, "spec": back})).await;
    assert_eq!(trial.result.outcome, Outcome::Up, "{trial:?}");
    assert_eq!(seen.lock().expect("lock").as_deref(), Some("Bearer t0ken-secret"));
    assert!(trial.sample.as_deref().is_some_and(|s| s.contains("\"checks\"")), "{trial:?}");

    // Viewers' pages and the REST API show them masked too; a REST client's GET-then-PUT keeps
    // them.
    let viewer = app.browser_of(Role::Viewer).await;
    let page = viewer.get(app.url(&format!("/services/{}", saved.probe.service_id))).send().await.expect("page");
    let page = page.text().await.expect("html");
    let rest = app.client.get(app.url("/api/v1/probes")).send().await.expect("list").text().await.expect("body");
    for text in [&page, &rest] {
        for s in secrets {
            assert!(!text.contains(s), "{s} shown: {text}");
        }
    }
    let got: Probe = app.get_json(&format!("/api/v1/probes/{id}")).await;
    let put = app.client.put(app.url(&format!("/api/v1/probes/{id}"))).json(&got.spec).send().await.expect("put");
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap_or_default());
    let stored = store::get_probe(&app.pool, id).await.expect("db").expect("probe").spec;
    assert_eq!(stored.headers["authorization"], "Bearer t0ken-secret", "a masked PUT keeps the secret");

    // Another probe's secrets are borrowed only by a clone, and never for another host.
    let other = json!({"name": "other", "service": "orders", "kind": "http", "url": format!("http://{target}/status")});
    let other: SavedProbe = call(&admin, &app, "save_probe", json!({"id": null, "from": null, "spec": other})).await;
    let (status, body) =
        status_of(&admin, &app, "save_probe", json!({"id": other.probe.id, "from": id, "spec": back})).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("from")), "{body}");
    let mut elsewhere = back.clone();
    elsewhere.url = Some("http://127.0.0.2:9/headers".into());
    let (status, body) = status_of(&admin, &app, "run_probe", json!({"from": id, "spec": elsewhere})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("headers")),
        "the token must not follow a new host: {body}"
    );
    let mut copy = back.clone();
    copy.name = "orders-copy".into();
    copy.id = None;
    let clone: SavedProbe = call(&admin, &app, "save_probe", json!({"id": null, "from": id, "spec": copy})).await;
    let cloned = store::get_probe(&app.pool, clone.probe.id).await.expect("db").expect("probe").spec;
    assert_eq!(cloned.headers["authorization"], "Bearer t0ken-secret", "a clone takes the original's secrets");

    // A mask cannot be carried to another header, nor into a probe that has no stored value.
    let mut moved = back.clone();
    moved.headers.insert("x-api-key".into(), SECRET_MASK.into());
    let (status, body) = status_of(&admin, &app, "save_probe", json!({"id": id, "from": id, "spec": moved})).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("headers")), "{body}");
    let (status, body) = status_of(&admin, &app, "save_probe", json!({"id": null, "from": null, "spec": back})).await;
    assert_eq!((status, body["kind"].as_str()), (400, Some("invalid")), "{body}");

    // "Remove the stored body" sends no body: the hidden one goes, the masked headers stay.
    let mut cleared = back.clone();
    cleared.body = None;
    let _: SavedProbe = call(&admin, &app, "save_probe", json!({"id": id, "from": id, "spec": cleared})).await;
    let stored = store::get_probe(&app.pool, id).await.expect("db").expect("probe").spec;
    assert_eq!((stored.body, stored.headers["authorization"].as_str()), (None, "Bearer t0ken-secret"));
    app.stop().await;
}

#[tokio::test]
async fn form_errors_name_the_field_as_the_api_does() {
    let app = spawn_app().await;
    let admin = app.browser_of(Role::Admin).await;
    let spec = json!({"name": "x", "service": "s", "kind": "http", "url": "ftp://nope", "interval_secs": 30});
    let (status, body) =
        status_of(&admin, &app, "save_probe", json!({"id": null, "from": null, "spec": spec.clone()})).await;
    let api = app.client.post(app.url("/api/v1/probes")).json(&spec).send().await.expect("post");
    let api: Value = api.json().await.expect("json");
    assert_eq!(status, 400);
    assert_eq!(body["field"], "url");
    assert_eq!(body["message"], api["message"], "the form shows the API's words: {body} / {api}");

    let (status, body) =
        status_of(&admin, &app, "save_service", json!({"id": null, "input": {"name": " padded"}})).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("name")), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn only_admins_configure() {
    let app = spawn_app().await;
    for role in [Role::Viewer, Role::Responder, Role::Commander] {
        let user = app.browser_of(role).await;
        for f in [
            "get_catalog",
            "save_probe",
            "run_probe",
            "bulk_probes",
            "export_probe_file",
            "control_demo",
            "network_allowlist",
        ] {
            let (status, _) = status_of(&user, &app, f, json!({})).await;
            assert_eq!(status, 403, "{} may not call {f}", role.as_str());
        }
        let page = user.get(app.url("/config")).send().await.expect("page");
        assert_eq!(page.status(), 403, "{} may not open /config", role.as_str());
        let demo: DemoStatus = call(&user, &app, "get_demo", json!({})).await;
        assert!(!demo.running);
    }
    app.stop().await;
}

#[tokio::test]
async fn the_jsonpath_tester_answers_as_a_check_would() {
    let app = spawn_app().await;
    let admin = app.browser_of(Role::Admin).await;
    let body = r#"{"checks":[{"name":"db","status":"DOWN"}]}"#;
    let t: JsonPathTest = call(
        &admin,
        &app,
        "test_json_path",
        json!({"assertion": {"path": "$.checks[0].status", "op": "eq", "value": "UP"}, "body": body}),
    )
    .await;
    assert_eq!(t.nodes, vec!["\"DOWN\""]);
    assert!(!t.passed);
    assert_eq!(t.reason.as_deref(), Some("JSONPath $.checks[0].status is \"DOWN\", expected = \"UP\""));
    let (status, err) =
        status_of(&admin, &app, "test_json_path", json!({"assertion": {"path": "$[", "op": "exists"}, "body": body}))
            .await;
    assert_eq!((status, err["field"].as_str()), (400, Some("assert.json_path")), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn bulk_actions_cover_a_selection_or_a_tag_and_leave_file_probes_alone() {
    let app = spawn_app().await;
    let admin = app.browser_of(Role::Admin).await;
    let (target, _) = recording_target().await;
    for (service, tags) in [("cart", vec!["checkout"]), ("pay", vec!["checkout"]), ("search", vec![])] {
        let _: Value =
            call(&admin, &app, "save_service", json!({"id": null, "input": {"name": service, "tags": tags}})).await;
    }
    let mut ids = Vec::new();
    for (name, service) in [("cart-a", "cart"), ("cart-b", "cart"), ("pay-a", "pay"), ("search-a", "search")] {
        let spec = json!({"name": name, "service": service, "kind": "http", "url": format!("http://{target}/status"), "interval_secs": 60});
        let saved: SavedProbe = call(&admin, &app, "save_probe", json!({"id": null, "from": null, "spec": spec})).await;
        ids.push(saved.probe.id);
    }
    let file = server::monitor::probe_file::parse(&format!(
        "[[probe]]\nname = \"pay-file\"\nservice = \"pay\"\nkind = \"http\"\nurl = \"http://{target}/status\"\n"
    ))
    .expect("file");
    server::monitor::probe_file::apply(&app.pool, Some(&app.state.scheduler), &file).await.expect("applied");

    let o: BulkOutcome =
        call(&admin, &app, "bulk_probes", json!({"selection": {"tag": "checkout"}, "action": "pause"})).await;
    assert_eq!(o.changed, 3, "{o:?}");
    assert_eq!(o.skipped, vec!["pay-file"]);
    let enabled = |p: &Probe| p.spec.enabled;
    let probes = store::list_probes(&app.pool, None).await.expect("db");
    let by = |n: &str| probes.iter().find(|p| p.spec.name == n).expect("probe").clone();
    assert!(!enabled(&by("cart-a")) && !enabled(&by("cart-b")) && !enabled(&by("pay-a")));
    assert!(enabled(&by("search-a")) && enabled(&by("pay-file")));

    let o: BulkOutcome =
        call(&admin, &app, "bulk_probes", json!({"selection": {"probes": [ids[0]]}, "action": "resume"})).await;
    assert_eq!(o.changed, 1);
    // The overview's selection: the services its filter shows.
    let search = by("search-a").service_id;
    let o: BulkOutcome =
        call(&admin, &app, "bulk_probes", json!({"selection": {"services": [search]}, "action": "pause"})).await;
    assert_eq!((o.changed, o.skipped.len()), (1, 0));
    let o: BulkOutcome =
        call(&admin, &app, "bulk_probes", json!({"selection": {"services": [search]}, "action": "pause"})).await;
    assert_eq!(o.changed, 0, "pausing a paused probe changes nothing");
    let o: BulkOutcome =
        call(&admin, &app, "bulk_probes", json!({"selection": {"probes": [ids[1], ids[3]]}, "action": "delete"})).await;
    assert_eq!(o.changed, 2);
    let names: Vec<String> =
        store::list_probes(&app.pool, None).await.expect("db").into_iter().map(|p| p.spec.name).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(!names.contains(&"cart-b".to_string()) && !names.contains(&"search-a".to_string()));
    let audit: Vec<Value> = app.get_json("/api/v1/audit").await;
    for action in ["probes.pause", "probes.resume", "probes.delete"] {
        assert!(audit.iter().any(|a| a["action"] == action), "{action} audited: {audit:?}");
    }
    let stored = server::storage::auth::list_audit(&app.pool, 20).await.expect("audit");
    let (_, deleted) = stored.iter().find(|(_, e)| e.action == "probes.delete").expect("audited");
    let mut names: Vec<&str> =
        deleted.detail["changed"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["cart-b", "search-a"], "the entry names what it changed: {:?}", deleted.detail);
    assert_eq!(deleted.detail["stopped_at"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn a_probe_file_imports_from_the_browser_after_a_dry_run() {
    let app = spawn_app().await;
    let admin = app.browser_of(Role::Admin).await;
    let file = "[[service]]\nname = \"ledger\"\ntags = [\"money\"]\n\n[[probe]]\nname = \"ledger-health\"\nservice = \"ledger\"\nkind = \"tcp\"\nurl = \"tcp://127.0.0.1:9\"\nenabled = false\n";
    let dry: ImportSummary =
        call(&admin, &app, "import_config", json!({"source": "triage", "files": [file], "dry_run": true})).await;
    assert_eq!((dry.services.clone(), dry.probes.clone()), (vec!["ledger".into()], vec!["ledger-health".into()]));
    assert!(store::list_probes(&app.pool, None).await.expect("db").is_empty(), "a dry run writes nothing");
    let done: ImportSummary =
        call(&admin, &app, "import_config", json!({"source": "triage", "files": [file], "dry_run": false})).await;
    assert!(!done.dry_run);
    let probes = store::list_probes(&app.pool, None).await.expect("db");
    assert_eq!(probes.len(), 1);
    assert!(!probes[0].file_managed, "imported probes are edited in the browser, not in a file");
    let again: ImportSummary =
        call(&admin, &app, "import_config", json!({"source": "triage", "files": [file], "dry_run": false})).await;
    assert_eq!(again.existing, vec!["ledger-health"]);

    let (status, body) =
        status_of(&admin, &app, "import_config", json!({"source": "triage", "files": ["[[probe]\n"], "dry_run": true}))
            .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("file")), "{body}");
    let masked = file.replace("enabled = false", "headers = { authorization = \"••••••••\" }");
    let (status, body) =
        status_of(&admin, &app, "import_config", json!({"source": "triage", "files": [masked], "dry_run": true})).await;
    assert_eq!(status, 400, "an export's masked secrets are not imported as values: {body}");
    app.stop().await;
}

/// The built-in demo with no loopback allowlist: its probes reach it only through the exact
/// sockets the demo registers; a failure opens an incident; removing the demo removes all of it
/// and closes the door again.
#[tokio::test]
async fn the_built_in_demo_runs_inside_triage_and_leaves_nothing_behind() {
    let mut settings = test_settings();
    settings.probes.allow = Vec::new();
    let app = spawn_app_with(fresh_db().await, settings, Secured::default()).await;
    let admin = app.browser_of(Role::Admin).await;
    let mut hub = app.state.hub.subscribe();
    let started: DemoStatus = call(&admin, &app, "control_demo", json!({"command": "start"})).await;
    assert!(started.running && started.scenario == "healthy", "{started:?}");
    let service = started.service_id.expect("service");
    let probes = store::list_probes(&app.pool, Some(service)).await.expect("db");
    assert_eq!(probes.len(), 3);
    let api = probes.iter().find(|p| p.spec.name == "demo-shop-api").expect("api probe").clone();
    common::wait_events(&mut hub, 1, Duration::from_secs(30), |e| {
        matches!(e, server::monitor::hub::ProbeEvent::Result(result)
            if result.probe_id == api.id && result.outcome == Outcome::Up)
    })
    .await;

    let mut rooms = app.state.incidents.rooms.subscribe();
    let down: DemoStatus = call(&admin, &app, "control_demo", json!({"command": {"scenario": "down"}})).await;
    assert_eq!(down.scenario, "down");
    let (incident, _) = crate::incidents::room_event(
        &mut rooms,
        "the demo's incident",
        crate::incidents::automatic_containing("is **down**"),
    )
    .await;
    let list: Vec<Value> = app.get_json("/api/v1/incidents").await;
    assert!(list.iter().any(|i| i["id"] == incident.to_string()), "{list:?}");

    let (status, _) = status_of(&admin, &app, "control_demo", json!({"command": {"scenario": "melting"}})).await;
    assert_eq!(status, 400);
    let removed: DemoStatus = call(&admin, &app, "control_demo", json!({"command": "remove"})).await;
    assert!(!removed.running);
    assert!(store::list_services(&app.pool).await.expect("db").iter().all(|s| s.name != "demo-shop"));
    let list: Vec<Value> = app.get_json("/api/v1/incidents").await;
    assert!(list.is_empty(), "the demo's incidents go with it: {list:?}");
    let blocked: ProbeTrial = call(&admin, &app, "run_probe", json!({"from": null, "spec": api.spec})).await;
    assert_eq!(blocked.result.error, Some(app::model::ErrorClass::BlockedByPolicy), "{blocked:?}");
    app.stop().await;
}

/// The demo is known by id: a user's own service called like it is neither taken over by
/// "Try the demo" nor removed with it.
#[tokio::test]
async fn the_demo_leaves_a_users_service_of_the_same_name_alone() {
    let app = spawn_app().await;
    let admin = app.browser_of(Role::Admin).await;
    let mine: Value = call(&admin, &app, "save_service", json!({"id": null, "input": {"name": "demo-shop"}})).await;
    let (status, body) = status_of(&admin, &app, "control_demo", json!({"command": "start"})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("rename it to try the demo"), "{body}");
    let removed: DemoStatus = call(&admin, &app, "control_demo", json!({"command": "remove"})).await;
    assert!(!removed.running);
    let services = store::list_services(&app.pool).await.expect("db");
    assert!(services.iter().any(|s| s.id.to_string() == mine["id"].as_str().unwrap_or_default()), "kept: {services:?}");
    app.stop().await;
}

/// The allowlist an admin edits in the browser: kept in the database, audited, applied to the
/// running policy at once and again after a restart; command-line entries are listed read-only.
#[tokio::test]
async fn admins_allow_a_network_in_the_browser_and_it_applies_at_once_and_after_a_restart() {
    let pool = fresh_db().await;
    let mut settings = test_settings();
    settings.probes.allow = vec!["10.9.0.0/16".parse().expect("cidr")];
    let app = spawn_app_with(pool.clone(), settings.clone(), Secured::default()).await;
    let admin = app.browser_of(Role::Admin).await;
    let (target, _) = recording_target().await;
    let spec = json!({"name": "local", "service": "local", "kind": "http", "url": format!("http://{target}/status")});
    let run = |client: reqwest::Client, app_url: String| {
        let spec = spec.clone();
        async move {
            let res =
                client.post(format!("{app_url}/api/run_probe")).json(&json!({"from": null, "spec": spec})).send().await;
            res.expect("post").json::<ProbeTrial>().await.expect("trial")
        }
    };
    let before = run(admin.clone(), app.url("")).await;
    assert_eq!(before.result.error, Some(app::model::ErrorClass::BlockedByPolicy));
    assert!(before.refused.expect("refusal").allow.contains("Network allowlist"));

    let list: Vec<AllowEntry> = call(
        &admin,
        &app,
        "network_allowlist",
        json!({"change": {"add": {"cidr": " 127.0.0.1 ", "note": "the shop on this host"}}}),
    )
    .await;
    let cidrs: Vec<(&str, bool)> = list.iter().map(|e| (e.cidr.as_str(), e.from_command_line)).collect();
    assert_eq!(cidrs, vec![("10.9.0.0/16", true), ("127.0.0.1/32", false)]);
    assert_eq!(run(admin.clone(), app.url("")).await.result.outcome, Outcome::Up, "applied at once");

    let (status, body) =
        status_of(&admin, &app, "network_allowlist", json!({"change": {"add": {"cidr": "127.0.0.1/32", "note": ""}}}))
            .await;
    assert_eq!((status, body["field"].as_str()), (409, Some("cidr")), "{body}");
    let (status, body) =
        status_of(&admin, &app, "network_allowlist", json!({"change": {"add": {"cidr": "10.0.0.0/33", "note": ""}}}))
            .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("cidr")), "{body}");
    let audit: Vec<Value> = app.get_json("/api/v1/audit").await;
    assert!(audit.iter().any(|a| a["action"] == "network.allow" && a["target"] == "127.0.0.1/32"), "{audit:?}");
    app.stop().await;

    let again = spawn_app_with(pool, settings, Secured::default()).await;
    let admin = again.browser_of(Role::Admin).await;
    assert_eq!(run(admin.clone(), again.url("")).await.result.outcome, Outcome::Up, "kept across a restart");
    let _: Vec<AllowEntry> =
        call(&admin, &again, "network_allowlist", json!({"change": {"remove": {"cidr": "127.0.0.1/32"}}})).await;
    let after = run(admin.clone(), again.url("")).await;
    assert_eq!(after.result.error, Some(app::model::ErrorClass::BlockedByPolicy), "removed at once");
    again.stop().await;
}

/// A probe whose target the network policy refuses is a configuration problem: its checks are
/// stored and shown as blocked, but they confirm no state and open no incident. Once an admin
/// allows the address, its first confirmed state is recorded from `unknown`.
#[tokio::test]
async fn a_probe_the_policy_refuses_is_a_configuration_problem_and_opens_no_incident() {
    use server::monitor::hub::ProbeEvent;

    let mut settings = test_settings();
    settings.probes.allow = Vec::new();
    let app = spawn_app_with(fresh_db().await, settings, Secured::default()).await;
    let admin = app.browser_of(Role::Admin).await;
    let (target, _) = recording_target().await;
    let mut events = app.state.hub.subscribe();
    let res = app
        .client
        .post(app.url("/api/v1/probes"))
        .json(&json!({"name": "local", "service": "local", "kind": "http", "url": format!("http://{target}/status"),
                      "interval_secs": 1, "timeout_ms": 500, "failures_to_down": 1, "successes_to_up": 1}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 201);
    let written: Value = res.json().await.expect("json");
    let allow = written["refused"]["allow"].as_str().unwrap_or_default();
    assert!(allow.contains("Network allowlist"), "the warning says how to allow it: {written}");
    let id: uuid::Uuid = serde_json::from_value(written["id"].clone()).expect("id");

    // Three checks, each refused: with `failures_to_down = 1` any one of them would have confirmed
    // `down` had it counted.
    let refused = common::wait_events(&mut events, 3, Duration::from_secs(20), |e| match e {
        ProbeEvent::Result(result) => result.probe_id == id,
        ProbeEvent::StateChanged(c) => c.probe_id == id,
    })
    .await;
    for e in &refused {
        match e {
            ProbeEvent::Result(result) => {
                assert_eq!(result.error, Some(app::model::ErrorClass::BlockedByPolicy), "{result:?}")
            }
            ProbeEvent::StateChanged(c) => panic!("a refused check confirmed {c:?}"),
        }
    }
    let probe: Probe = app.get_json(&format!("/api/v1/probes/{id}")).await;
    let status = probe.status.expect("the last check is stored");
    assert!(status.blocked(), "{status:?}");
    assert_eq!(status.state, None, "still unknown: nothing was learnt about the target");
    let changes: Vec<Value> = app.get_json(&format!("/api/v1/probes/{id}/state-changes")).await;
    assert!(changes.is_empty(), "{changes:?}");
    let incidents: Vec<Value> = app.get_json("/api/v1/incidents").await;
    assert!(incidents.is_empty(), "no incident for a configuration problem: {incidents:?}");
    let services: Vec<Value> = app.get_json("/api/v1/services").await;
    assert_eq!((&services[0]["blocked"], services[0].get("state")), (&json!(1), Some(&Value::Null)), "{services:?}");

    let _: Vec<AllowEntry> =
        call(&admin, &app, "network_allowlist", json!({"change": {"add": {"cidr": "127.0.0.1", "note": ""}}})).await;
    let first = common::wait_events(
        &mut events,
        1,
        Duration::from_secs(20),
        |e| matches!(e, ProbeEvent::StateChanged(c) if c.probe_id == id),
    )
    .await;
    let ProbeEvent::StateChanged(change) = &first[0] else { unreachable!("filtered") };
    assert_eq!((change.from, change.to), (None, Outcome::Up), "its first state, from unknown");
    // The state row is written with the change, in the same transaction.
    let probe: Probe = app.get_json(&format!("/api/v1/probes/{id}")).await;
    let status = probe.status.expect("stored");
    assert!(!status.blocked());
    assert_eq!(status.state, Some(Outcome::Up));
    let services: Vec<Value> = app.get_json("/api/v1/services").await;
    assert_eq!((services[0].get("blocked"), &services[0]["state"]), (None, &json!("up")), "{services:?}");
    app.stop().await;
}

/// Every HTTP check sends a W3C `traceparent` whose trace id is its request id, and with
/// `--trace-url` the pages link each request id to its trace.
#[tokio::test]
async fn checks_send_a_traceparent_and_pages_link_request_ids_to_their_trace() {
    let seen = Arc::new(Mutex::new(None::<String>));
    let keep = seen.clone();
    let target = serve_target(Router::new().route(
        "/status",
        any(move |headers: HeaderMap| {
            let keep = keep.clone();
            async move {
                *keep.lock().expect("lock") =
                    headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
                "ok"
            }
        }),
    ))
    .await;
    let mut settings = test_settings();
    settings.trace_url = Some("https://traces.example/trace/{trace_id}".into());
    let app = spawn_app_with(fresh_db().await, settings, Secured::default()).await;
    let mut hub = app.state.hub.subscribe();
    let spec = json!({"name": "traced", "service": "traced", "kind": "http", "url": format!("http://{target}/status"), "interval_secs": 1, "timeout_ms": 500});
    let res = app.client.post(app.url("/api/v1/probes")).json(&spec).send().await.expect("create");
    let probe: Probe = res.json().await.expect("probe");
    let events = common::wait_events(&mut hub, 1, Duration::from_secs(20), common::result_of(probe.id)).await;
    let server::monitor::hub::ProbeEvent::Result(result) = &events[0] else { panic!("a result") };
    let header = seen.lock().expect("lock").clone().expect("traceparent sent");
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!((parts[0], parts[3]), ("00", "01"), "{header}");
    assert_eq!(parts[1].len(), 32);
    assert!(parts[2].len() == 16 && parts[2] != "0000000000000000", "{header}");
    app.flush().await;
    let stored: Vec<app::model::ProbeResult> =
        app.get_json(&format!("/api/v1/probes/{}/results?limit=1000", probe.id)).await;
    assert!(stored.iter().any(|r| r.request_id == parts[1]), "the trace id is a stored request id: {header}");
    assert!(stored.iter().any(|r| r.request_id == result.request_id));
    let html = app
        .browser_of(Role::Viewer)
        .await
        .get(app.url(&format!("/services/{}", probe.service_id)))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let linked =
        stored.iter().any(|r| html.contains(&format!("href=\"https://traces.example/trace/{}\"", r.request_id)));
    assert!(linked, "a request id on the page links to its trace: {html}");
    assert!(html.contains("name=\"triage-trace-url\" content=\"https://traces.example/trace/{trace_id}\""));
    app.stop().await;
}
