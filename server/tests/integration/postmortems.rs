//! Postmortems over the REST API against the real application and PostgreSQL: created from an
//! incident a real probe opened on loopback (prefilled, metrics from the probe data, frozen
//! charts), reviewed, overridden, published, exported, amended; the charts survive the raw
//! results' deletion; metrics of a manual incident without probes and of a reopened one.

use std::sync::atomic::Ordering;
use std::time::Duration;

use app::model::{Incident, MetricKind, Postmortem, PostmortemStatus, Role, Section};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, health_target, result_of, spawn_app, wait_events};
use crate::incidents::{automatic_containing, room_event, send};

async fn patch_pm(app: &TestApp, client: &reqwest::Client, id: uuid::Uuid, body: Value) -> (StatusCode, Value) {
    send(client, reqwest::Method::PATCH, app.url(&format!("/api/v1/postmortems/{id}")), body).await
}

async fn patch_incident(app: &TestApp, client: &reqwest::Client, id: uuid::Uuid, body: Value) -> Value {
    let (status, v) = send(client, reqwest::Method::PATCH, app.url(&format!("/api/v1/incidents/{id}")), body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

fn metric(p: &Postmortem, kind: MetricKind) -> &app::model::Metric {
    p.metrics.iter().find(|m| m.kind == kind).expect("metric")
}

#[tokio::test]
async fn a_probed_incident_becomes_a_reviewed_published_exported_and_amended_postmortem() {
    let (target, status) = health_target(200).await;
    let app = spawn_app().await;
    let mut rooms = app.state.incidents.rooms.subscribe();
    let (commander_email, cookie) = app.session_of(Role::Commander).await;
    let commander = app.browser(&cookie);
    let responder = app.browser_of(Role::Responder).await;
    let viewer = app.browser_of(Role::Viewer).await;
    let spec = json!({"name": "pay", "service": "payments", "kind": "http", "url": format!("http://{target}/health"),
        "interval_secs": 1, "timeout_ms": 500, "failures_to_down": 2, "successes_to_up": 1,
        "incidents": {"auto_open": true, "criticality": "high", "healthy_for_secs": 1}});
    let mut hub = app.state.hub.subscribe();
    let res = app.client.post(app.url("/api/v1/probes")).json(&spec).send().await.expect("probe");
    assert_eq!(res.status(), StatusCode::CREATED);
    let probe: app::model::Probe = res.json().await.expect("probe");

    // Healthy first, then down until an incident opens, then healthy until it recovers.
    wait_events(&mut hub, 2, Duration::from_secs(20), result_of(probe.id)).await;
    status.store(503, Ordering::SeqCst);
    let id = room_event(&mut rooms, "the down entry", automatic_containing("is **down**")).await.0;
    status.store(200, Ordering::SeqCst);
    room_event(&mut rooms, "the recovery entry", automatic_containing("recovered: **up**")).await;
    let me = server::storage::auth::user_by_email(&app.pool, &commander_email).await.expect("q").expect("user").id;
    patch_incident(&app, &commander, id, json!({"commander": me})).await;
    let (status_code, v) = send(
        &responder,
        reqwest::Method::POST,
        app.url(&format!("/api/v1/incidents/{id}/timeline")),
        json!({"kind": "action", "text": "Restarted the **payments** worker"}),
    )
    .await;
    assert_eq!(status_code, StatusCode::CREATED, "{v}");
    patch_incident(&app, &commander, id, json!({"status": "resolved"})).await;
    let incident: Incident = app.get_json(&format!("/api/v1/incidents/{id}")).await;

    // Viewers do not write one; a responder does, and a second create returns the same one.
    let create = format!("/api/v1/incidents/{id}/postmortem");
    let (code, _) = send(&viewer, reqwest::Method::POST, app.url(&create), json!({})).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, v) = send(&responder, reqwest::Method::POST, app.url(&create), json!({})).await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let pm: Postmortem = serde_json::from_value(v).expect("postmortem");
    let (code, again) = send(&responder, reqwest::Method::POST, app.url(&create), json!({})).await;
    assert_eq!((code, again["id"].as_str()), (StatusCode::OK, Some(pm.id.to_string().as_str())));

    // Prefilled from the data.
    assert_eq!(pm.status, PostmortemStatus::Draft);
    let detect = metric(&pm, MetricKind::TimeToDetect);
    let from = detect.from.as_ref().expect("start");
    assert_eq!((from.what.as_str(), from.source.as_str()), ("first failing check of pay", "probe data"));
    let detected = incident.times.detected.as_ref().expect("detected").at;
    assert_eq!(detect.computed_secs, Some((detected - from.at).num_seconds()));
    assert!(from.at <= incident.times.started.as_ref().expect("started").at);
    let ack = metric(&pm, MetricKind::TimeToAcknowledge);
    assert_eq!(ack.to.as_ref().map(|t| t.source.as_str()), Some("automatic"));
    let mitigate = metric(&pm, MetricKind::TimeToMitigate);
    assert_eq!(mitigate.to.as_ref().map(|t| t.what.as_str()), Some("probes recovered"), "{mitigate:?}");
    let resolve = metric(&pm, MetricKind::TimeToResolve);
    let resolved = incident.times.resolved.as_ref().expect("resolved").at;
    assert_eq!(resolve.computed_secs, Some((resolved - from.at).num_seconds()));
    let payments = &pm.impact.services[0];
    assert_eq!(payments.name, "payments");
    assert!(payments.checks >= 3 && payments.failed >= 2, "{payments:?}");
    assert!(pm.doc.section(Section::Impact).contains("**payments:**"), "{:?}", pm.doc.sections);
    assert!(pm.doc.section(Section::Detection).contains("first failing check of pay"));
    assert!(pm.doc.section(Section::Mitigation).contains("Restarted the **payments** worker"));
    assert!(pm.html[&Section::Mitigation].contains("<strong>payments</strong>"), "rendered Markdown");
    let kinds: Vec<&str> = pm.charts.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, vec!["latency", "errors"]);
    assert!(pm.charts.iter().all(|c| c.svg.contains("<svg") && c.svg.contains(&format!("#{}", incident.number))));
    assert!(!pm.timeline_frozen && pm.timeline.iter().any(|e| e.text.contains("Restarted")));

    // Writing: sections, action items, comments; bad input names the field and changes nothing.
    let pid = pm.id;
    let answers = json!({
        "trigger": "A config push turned the payments health endpoint to 503.",
        "detection": "The pay probe failed first; Triage opened the incident.",
        "mitigation": "Rolled the config back.",
        "prevention": "Validate config pushes against a canary.",
        "summary": "<script>alert(1)</script>Payments failed health checks for a minute."
    });
    let (code, v) = patch_pm(&app, &responder, pid, json!({"sections": answers})).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(!v["html"]["summary"].as_str().unwrap_or("<script").contains("<script"), "sanitised");
    for (body, field) in [
        (json!({"sections": {"nonsense": "x"}}), "sections.nonsense"),
        (json!({"action_items": [{"title": ""}]}), "action_items[0].title"),
        (json!({"action_items": [{"title": "x", "link": "javascript:alert(1)"}]}), "action_items[0].link"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let (code, v) = patch_pm(&app, &responder, pid, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body} → {v}");
        assert!(v["field"].as_str().is_some_and(|f| f.starts_with(field)), "{body} → {v}");
    }
    let (code, v) = patch_pm(
        &app,
        &responder,
        pid,
        json!({"action_items": [{"title": "Canary config pushes", "owner": "ana@example.com", "due": "2026-12-15",
                                 "link": "https://tracker.example/PAY-1"}]}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(v["doc"]["action_items"][0]["id"].is_string());
    let (code, v) = send(
        &responder,
        reqwest::Method::POST,
        app.url(&format!("/api/v1/postmortems/{pid}/comments")),
        json!({"section": "trigger", "text": "Which *change* exactly? Link the diff."}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    assert!(v["html"].as_str().is_some_and(|h| h.contains("<em>change</em>")));
    let (code, _) = send(
        &viewer,
        reqwest::Method::POST,
        app.url(&format!("/api/v1/postmortems/{pid}/comments")),
        json!({"section": "trigger", "text": "x"}),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);

    // Overrides: commanders only, with a reason; the computed value stays beside it.
    let o = json!({"overrides": {"time_to_detect": {"secs": 30, "reason": "the pager fired before Triage confirmed"}}});
    assert_eq!(patch_pm(&app, &responder, pid, o.clone()).await.0, StatusCode::FORBIDDEN);
    let (code, v) =
        patch_pm(&app, &commander, pid, json!({"overrides": {"time_to_detect": {"secs": 30, "reason": " "}}})).await;
    assert_eq!((code, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("overrides.time_to_detect.reason")));
    let (code, v) = patch_pm(&app, &commander, pid, o).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let p: Postmortem = serde_json::from_value(v).expect("postmortem");
    let d = metric(&p, MetricKind::TimeToDetect);
    assert_eq!((d.value_secs(), d.computed_secs), (Some(30), detect.computed_secs));
    assert_eq!(d.overridden.as_ref().map(|o| o.by.as_str()), Some(commander_email.as_str()));

    // Review: draft → in review → published (commanders only, never straight from draft).
    let (code, v) = patch_pm(&app, &commander, pid, json!({"status": "published"})).await;
    assert_eq!((code, v["field"].as_str()), (StatusCode::CONFLICT, Some("status")));
    assert_eq!(patch_pm(&app, &responder, pid, json!({"status": "in_review"})).await.0, StatusCode::OK);
    assert_eq!(patch_pm(&app, &responder, pid, json!({"status": "published"})).await.0, StatusCode::FORBIDDEN);
    let (code, v) = patch_pm(&app, &commander, pid, json!({"status": "published"})).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let published: Postmortem = serde_json::from_value(v).expect("postmortem");
    assert!(published.timeline_frozen && published.published_by.as_deref() == Some(commander_email.as_str()));

    // Published is read-only.
    let (code, v) = patch_pm(&app, &commander, pid, json!({"sections": {"summary": "changed"}})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| m.contains("amend")));

    // The export has the metrics, the four answers and the timeline.
    let res = viewer.get(app.url(&format!("/api/v1/postmortems/{pid}/export.md"))).send().await.expect("export");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap_or("").starts_with("text/markdown"));
    let md = res.text().await.expect("markdown");
    for needle in [
        "| Time to detect (TTD) | 30s |",
        "overridden by",
        "### What triggered it?\n\nA config push turned the payments health endpoint to 503.",
        "### Which signal detected it first?\n\nThe pay probe failed first",
        "### What was the fastest safe mitigation?\n\nRolled the config back.",
        "### What single change would prevent it?\n\nValidate config pushes against a canary.",
        "Restarted the **payments** worker",
        "is **down**",
        "| Canary config pushes | ana@example.com | 2026-12-15 | open | https://tracker.example/PAY-1 |",
        "![payments latency](charts/0.svg)",
    ] {
        assert!(md.contains(needle), "{needle:?} missing from\n{md}");
    }

    let res =
        viewer.get(app.url(&format!("/api/v1/postmortems/{pid}/export.md?charts=inline"))).send().await.expect("x");
    let inline = res.text().await.expect("markdown");
    assert!(
        inline.contains("**payments latency**") && inline.contains("<style>svg {") && !inline.contains("charts/0.svg")
    );
    let res =
        viewer.get(app.url(&format!("/api/v1/postmortems/{pid}/export.md?charts=embed"))).send().await.expect("x");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The charts are stored: deleting the raw results and rollups changes the live series, not them.
    let chart_url = app.url(&format!("/api/v1/postmortems/{pid}/charts/0.svg"));
    let before = viewer.get(&chart_url).send().await.expect("chart").text().await.expect("svg");
    assert!(before.contains("<style>svg {") && before.contains("--chart-p95"), "standalone: {before:.200}");
    let probe = probe.id;
    let series_url = format!(
        "/api/v1/probes/{probe}/series?from={}&to={}",
        published.window_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        published.window_to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let checks = |series: &Value| {
        series["points"].as_array().map(|p| p.iter().map(|x| x["count"].as_u64().unwrap_or(0)).sum::<u64>())
    };
    let live: Value = app.get_json(&series_url).await;
    assert!(checks(&live).is_some_and(|n| n > 0), "the window had data: {live}");
    app.state.scheduler.remove(probe);
    sqlx::query("delete from results where probe_id = $1").bind(probe).execute(&app.pool).await.expect("delete");
    sqlx::query("delete from rollups where probe_id = $1").bind(probe).execute(&app.pool).await.expect("delete");
    let series: Value = app.get_json(&series_url).await;
    assert_eq!(checks(&series), Some(0), "the raw data is gone: {series}");
    let after: Postmortem = app.get_json(&format!("/api/v1/postmortems/{pid}")).await;
    assert_eq!(after.charts, published.charts);
    assert_eq!(viewer.get(&chart_url).send().await.expect("chart").text().await.expect("svg"), before);

    // Amending keeps the published revision and starts the next as a draft.
    assert_eq!(patch_pm(&app, &responder, pid, json!({"amend": "typo"})).await.0, StatusCode::FORBIDDEN);
    let (code, v) = patch_pm(&app, &commander, pid, json!({"amend": "The trigger was a different config key"})).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let amended: Postmortem = serde_json::from_value(v).expect("postmortem");
    assert_eq!((amended.status, amended.revision), (PostmortemStatus::Draft, 2));
    assert_eq!(amended.revisions.len(), 1);
    assert_eq!(amended.revisions[0].revision, 1);
    assert!(amended.revisions[0].doc.section(Section::Trigger).starts_with("A config push"));
    let list: Vec<app::model::PostmortemSummary> = app.get_json("/api/v1/postmortems").await;
    assert_eq!(list.iter().find(|s| s.id == pid).map(|s| (s.revision, s.time_to_detect_secs)), Some((2, Some(30))));
    app.stop().await;
}

#[tokio::test]
async fn manual_and_reopened_incidents_get_honest_metrics() {
    let app = spawn_app().await;
    let (commander_email, cookie) = app.session_of(Role::Commander).await;
    let commander = app.browser(&cookie);
    let started = chrono::Utc::now() - chrono::Duration::minutes(10);
    let (code, v) = send(
        &commander,
        reqwest::Method::POST,
        app.url("/api/v1/incidents"),
        json!({"title": "Customers report slow search", "started_at": started.to_rfc3339()}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let incident: Incident = serde_json::from_value(v).expect("incident");
    let id = incident.id;

    // No probes, no commander, not resolved: only time to detect, from the hand-set start.
    let (code, v) =
        send(&commander, reqwest::Method::POST, app.url(&format!("/api/v1/incidents/{id}/postmortem")), json!({}))
            .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let pm: Postmortem = serde_json::from_value(v).expect("postmortem");
    let detect = metric(&pm, MetricKind::TimeToDetect);
    assert_eq!(
        detect.from.as_ref().map(|f| (f.what.as_str(), f.source.as_str())),
        Some(("started", commander_email.as_str()))
    );
    let detected = incident.times.detected.as_ref().expect("detected").at;
    assert_eq!(detect.computed_secs, Some((detected - incident.times.started.as_ref().expect("s").at).num_seconds()));
    assert_eq!(metric(&pm, MetricKind::TimeToAcknowledge).note.as_deref(), Some("no commander assigned yet"));
    assert_eq!(metric(&pm, MetricKind::TimeToResolve).computed_secs, None);
    assert!(pm.charts.is_empty() && pm.impact.services.is_empty());

    // Publishing waits for the incident to be resolved.
    assert_eq!(patch_pm(&app, &commander, pm.id, json!({"status": "in_review"})).await.0, StatusCode::OK);
    let (code, v) = patch_pm(&app, &commander, pm.id, json!({"status": "published"})).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(v["message"].as_str().is_some_and(|m| m.contains("resolve incident")), "{v}");

    // Resolved, reopened, resolved again: the draft follows, measured to the final resolution.
    patch_incident(&app, &commander, id, json!({"status": "resolved"})).await;
    patch_incident(&app, &commander, id, json!({"status": "investigating"})).await;
    let last = patch_incident(&app, &commander, id, json!({"status": "resolved"})).await;
    let resolved: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(last["times"]["resolved"]["at"].clone()).expect("resolved");
    let p: Postmortem = app.get_json(&format!("/api/v1/postmortems/{}", pm.id)).await;
    let r = metric(&p, MetricKind::TimeToResolve);
    assert_eq!(r.computed_secs, Some((resolved - incident.times.started.as_ref().expect("s").at).num_seconds()));
    assert_eq!(r.note.as_deref(), Some("reopened once: measured to the final resolution"));
    // Written while open, its charts stopped at creation: publishing draws them to the end.
    assert!(pm.window_to < resolved + chrono::Duration::minutes(5));
    let (code, v) = patch_pm(&app, &commander, pm.id, json!({"status": "published"})).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let published: Postmortem = serde_json::from_value(v).expect("postmortem");
    assert_eq!(published.window_to, resolved + chrono::Duration::minutes(5));

    // Unknown and malformed ids.
    let res =
        commander.get(app.url(&format!("/api/v1/postmortems/{}", uuid::Uuid::new_v4()))).send().await.expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = commander.get(app.url("/api/v1/postmortems/nope")).send().await.expect("get");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}
