//! Public status pages against the real application: admins build them, anyone reads them, and
//! only what was chosen reaches the outside. The leak check searches the page, its JSON summary
//! and its feed for everything internal the test planted: an unchosen service, the probe's
//! target and name, the incident's own title, internal timeline text, request ids.

use app::model::{Role, Scope, StatusSummary};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, create_token, health_target, spawn_app};

async fn service(app: &TestApp, name: &str) -> uuid::Uuid {
    let res = app.client.post(app.url("/api/v1/services")).json(&json!({"name": name})).send().await.expect("post");
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.expect("service");
    v["id"].as_str().and_then(|s| s.parse().ok()).expect("id")
}

async fn send(client: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> (StatusCode, Value) {
    let res = client.request(method, url).json(&body).send().await.expect("request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get_text(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let res = app.anonymous.get(app.url(path)).send().await.expect("get");
    let status = res.status();
    let kind = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, kind, res.text().await.expect("body"))
}

#[tokio::test]
async fn a_status_page_shows_what_was_chosen_and_nothing_internal() {
    let (target, _) = health_target(200).await;
    let app = spawn_app().await;
    let shop = service(&app, "Shop").await;
    let billing = service(&app, "Billing").await;
    let hidden = service(&app, "ledger-internal").await;
    let probe = json!({"name": "shop-probe-xyz", "service": "Shop", "kind": "http",
        "url": format!("http://{target}/health"), "interval_secs": 1, "timeout_ms": 500});
    let res = app.client.post(app.url("/api/v1/probes")).json(&probe).send().await.expect("probe");
    assert_eq!(res.status(), StatusCode::CREATED);

    // Only admins build pages; bad input is named.
    let pages = app.url("/api/v1/status-pages");
    let spec = json!({"slug": "acme", "title": "Acme status", "description": "Our public services",
        "groups": [{"name": "Storefront", "services": [shop, billing]}]});
    let viewer = app.browser_of(Role::Viewer).await;
    assert_eq!(send(&viewer, reqwest::Method::POST, pages.clone(), spec.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        send(&app.anonymous, reqwest::Method::POST, pages.clone(), spec.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    for (body, field) in [
        (json!({"slug": "Acme Status", "title": "x", "groups": []}), "slug"),
        (json!({"slug": "x", "title": "", "groups": []}), "title"),
        (
            json!({"slug": "x", "title": "x", "groups": [{"name": "g", "services": [uuid::Uuid::new_v4()]}]}),
            "groups[0].services",
        ),
        (json!({"slug": "x", "title": "x", "groups": [], "theme": "dark"}), "theme"),
    ] {
        let (status, v) = send(&app.client, reqwest::Method::POST, pages.clone(), body.clone()).await;
        assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{body} → {v}");
    }
    let (status, v) = send(&app.client, reqwest::Method::POST, pages.clone(), spec.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = send(&app.client, reqwest::Method::POST, pages.clone(), spec.clone()).await;
    assert_eq!((status, v["field"].as_str()), (StatusCode::CONFLICT, Some("slug")), "{v}");

    // An incident with an internal title and timeline, and one public update.
    let body = json!({"title": "INTERNAL-TITLE pg-7 pool exhausted", "services": [shop, hidden]});
    let (status, incident) = send(&app.client, reqwest::Method::POST, app.url("/api/v1/incidents"), body).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = incident["id"].as_str().expect("id").to_string();
    let entry = json!({"kind": "observation", "text": "db host pg-7.corp.internal refused; request id req-9f3e2a"});
    let (status, _) =
        send(&app.client, reqwest::Method::POST, app.url(&format!("/api/v1/incidents/{id}/timeline")), entry).await;
    assert_eq!(status, StatusCode::CREATED);
    let updates = app.url(&format!("/api/v1/incidents/{id}/public-updates"));
    let update =
        json!({"status": "identified", "text": "We found the cause and are **fixing** it.<script>alert(1)</script>"});
    let responder = app.browser_of(Role::Responder).await;
    assert_eq!(send(&responder, reqwest::Method::POST, updates.clone(), update.clone()).await.0, StatusCode::FORBIDDEN);
    let (status, v) =
        send(&app.client, reqwest::Method::POST, updates.clone(), json!({"status": "identified", "text": " "})).await;
    assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("text")));
    let (status, v) = send(&app.client, reqwest::Method::POST, updates.clone(), update).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    // Anyone reads the page, its summary and its feed.
    let (status, kind, html) = get_text(&app, "/s/acme").await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
    let (status, _, json_text) = get_text(&app, "/s/acme/summary.json").await;
    assert_eq!(status, StatusCode::OK);
    let summary: StatusSummary = serde_json::from_str(&json_text).expect("summary");
    let (status, kind, atom) = get_text(&app, "/s/acme/feed.atom").await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/atom+xml; charset=utf-8"));
    roxmltree::Document::parse(&atom).expect("the feed is XML");
    assert!(html.contains("Acme status") && html.contains("Storefront"));
    assert!(html.contains("We found the cause and are <strong>fixing</strong> it."), "the update, rendered");
    assert!(html.contains("Service disruption: Shop"), "a neutral heading");
    assert_eq!(html.matches("class=\"bar ").count(), 2 * 90, "90 daily bars per service");
    assert_eq!(summary.groups[0].services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Shop", "Billing"]);
    assert_eq!(summary.incidents.len(), 1);
    let today = summary.groups[0].services[0].days.last().expect("today's bar");
    assert_eq!(today.incidents, ["Service disruption: Shop"], "the bar's hover names the day's incident");
    assert!(summary.groups[0].services[1].days.iter().all(|d| d.incidents.is_empty()), "Billing had none");
    assert!(atom.contains("Service disruption: Shop: identified"), "{atom}");
    let leaks = [
        "ledger-internal",
        &target.to_string(),
        "127.0.0.1",
        "shop-probe-xyz",
        "INTERNAL-TITLE",
        "pg-7",
        "req-9f3e2a",
        "<script>",
        "alert(1)",
        &id,
    ];
    for (what, body) in [("page", &html), ("summary", &json_text), ("feed", &atom)] {
        for leak in leaks {
            assert!(!body.contains(leak), "the {what} shows {leak:?}");
        }
    }
    let ids: Vec<String> =
        sqlx::query_scalar("select request_id from results").fetch_all(&app.pool).await.expect("ids");
    for rid in ids.iter().filter(|r| !r.is_empty()) {
        assert!(!html.contains(rid.as_str()) && !json_text.contains(rid.as_str()), "a request id leaked");
    }

    // Badges: valid SVG for chosen services, 404 for the rest, cacheable.
    for path in [
        format!("/badge/services/{shop}/status.svg"),
        format!("/badge/services/{shop}/uptime.svg?window=24h"),
        format!("/badge/services/{billing}/uptime.svg?window=7d"),
        format!("/badge/services/{shop}/p95.svg"),
    ] {
        let res = app.anonymous.get(app.url(&path)).send().await.expect("badge");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        assert!(res.headers()["cache-control"].to_str().is_ok_and(|c| c.contains("max-age=")));
        let svg = res.text().await.expect("svg");
        let doc = roxmltree::Document::parse(&svg).expect("the badge is XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg", "{path}");
    }
    for path in [
        format!("/badge/services/{hidden}/status.svg"),
        format!("/badge/services/{}/status.svg", uuid::Uuid::new_v4()),
        "/s/nope".to_string(),
        "/s/nope/summary.json".to_string(),
    ] {
        let res = app.anonymous.get(app.url(&path)).send().await.expect("get");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let res = app.anonymous.get(app.url(&format!("/badge/services/{shop}/uptime.svg?window=1y"))).send().await;
    assert_eq!(res.expect("badge").status(), StatusCode::BAD_REQUEST);

    // A read token cannot manage pages; an admin's change shows at once.
    let read = create_token(&app.pool, Scope::Read, "dash").await;
    let res = reqwest::Client::new().get(&pages).bearer_auth(&read).send().await.expect("list");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let page_id = v_page_id(&app).await;
    let renamed =
        json!({"slug": "acme", "title": "Acme public status", "groups": [{"name": "Storefront", "services": [shop]}]});
    let (status, _) =
        send(&app.client, reqwest::Method::PUT, app.url(&format!("/api/v1/status-pages/{page_id}")), renamed).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, html) = get_text(&app, "/s/acme").await;
    assert!(html.contains("Acme public status") && !html.contains("Billing"));
    let res = app.anonymous.get(app.url(&format!("/badge/services/{billing}/status.svg"))).send().await.expect("badge");
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "off the page, no badge");
    app.stop().await;
}

async fn v_page_id(app: &TestApp) -> String {
    let pages: Vec<Value> = app.get_json("/api/v1/status-pages").await;
    pages[0]["id"].as_str().expect("id").to_string()
}
