//! Incidents over the REST API against the real application and PostgreSQL: lifecycle and key
//! times, roles, concurrent and retried timeline posts, edits and soft deletion, list filters, the
//! room's live stream, and incidents opened and followed from a failing probe on loopback.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use app::model::{EntryKind, Incident, IncidentStatus, Probe, Role, RoomEvent, Severity, TimelineEntry};
use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, health_target, next_frame, serve_target, spawn_app};

pub async fn send(client: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> (StatusCode, Value) {
    let res = client.request(method, url).json(&body).send().await.expect("request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn declare(app: &TestApp, client: &reqwest::Client, body: Value) -> Incident {
    let (status, v) = send(client, reqwest::Method::POST, app.url("/api/v1/incidents"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    serde_json::from_value(v).expect("incident")
}

async fn patch(app: &TestApp, client: &reqwest::Client, id: uuid::Uuid, body: Value) -> (StatusCode, Value) {
    send(client, reqwest::Method::PATCH, app.url(&format!("/api/v1/incidents/{id}")), body).await
}

async fn timeline(app: &TestApp, client: &reqwest::Client, id: uuid::Uuid) -> Vec<TimelineEntry> {
    let res = client.get(app.url(&format!("/api/v1/incidents/{id}/timeline"))).send().await.expect("timeline");
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("entries")
}

async fn user_id(app: &TestApp, email: &str) -> uuid::Uuid {
    server::storage::auth::user_by_email(&app.pool, email).await.expect("query").expect("user").id
}

#[tokio::test]
async fn lifecycle_key_times_reopen_and_roles() {
    let app = spawn_app().await;
    let responder = app.browser_of(Role::Responder).await;
    let (commander_email, commander_cookie) = app.session_of(Role::Commander).await;
    let commander = app.browser(&commander_cookie);
    let viewer = app.browser_of(Role::Viewer).await;

    // Viewers read but do not declare; bad values are named.
    let (status, _) = send(&viewer, reqwest::Method::POST, app.url("/api/v1/incidents"), json!({"title": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (body, field) in [
        (json!({"title": "x", "severity": "SEV5"}), "severity"),
        (json!({"title": "  "}), "title"),
        (json!({"title": "x", "colour": "red"}), "colour"),
        (json!({"title": "x", "services": [uuid::Uuid::new_v4()]}), "services"),
        (json!({"title": "x", "started_at": "2999-01-01T00:00:00Z"}), "started_at"),
    ] {
        let (status, v) = send(&responder, reqwest::Method::POST, app.url("/api/v1/incidents"), body.clone()).await;
        assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{body} → {v}");
    }

    let started = chrono::Utc::now() - chrono::Duration::minutes(10);
    let incident = declare(
        &app,
        &responder,
        json!({"title": "Checkout errors", "severity": "SEV2", "started_at": started.to_rfc3339()}),
    )
    .await;
    assert_eq!((incident.status, incident.severity), (IncidentStatus::Investigating, Severity::Sev2));
    let times = &incident.times;
    assert!(times.started.as_ref().is_some_and(|s| s.source.starts_with("responder-")), "set by hand: {times:?}");
    assert_eq!(times.detected.as_ref().map(|s| s.source.as_str()), Some("automatic"));
    assert!(times.acknowledged.is_none() && times.resolved.is_none());
    let id = incident.id;

    // Only commanders change the incident.
    let (status, _) = patch(&app, &responder, id, json!({"status": "identified"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = patch(&app, &commander, id, json!({"status": "identified"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "identified");

    // Assigning the commander acknowledges.
    let commander_id = user_id(&app, &commander_email).await;
    let (_, v) = patch(&app, &commander, id, json!({"commander": commander_id})).await;
    assert_eq!(v["commander"]["email"], commander_email.as_str());
    assert_eq!(v["times"]["acknowledged"]["source"], "automatic");

    // Key times must stay in order, not lie in the future, and resolved goes with the status.
    let before_start = (started - chrono::Duration::minutes(1)).to_rfc3339();
    for (body, field) in [
        (json!({"detected_at": before_start}), "detected_at"),
        (json!({"mitigated_at": "2999-01-01T00:00:00Z"}), "mitigated_at"),
        (json!({"resolved_at": chrono::Utc::now().to_rfc3339()}), "resolved_at"),
        (json!({}), ""),
    ] {
        let (status, v) = patch(&app, &commander, id, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {v}");
        assert_eq!(v["field"].as_str().unwrap_or(""), field, "{body} → {v}");
    }
    let unchanged: Incident = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(unchanged.times.detected, incident.times.detected, "a refused change changes nothing");

    // Monitoring marks mitigated; resolving sets resolved; reopening clears it again.
    let (_, v) = patch(&app, &commander, id, json!({"status": "monitoring", "severity": "SEV3"})).await;
    assert_eq!(v["times"]["mitigated"]["source"], "automatic");
    let (_, v) = patch(&app, &commander, id, json!({"status": "resolved"})).await;
    assert_eq!(v["status"], "resolved");
    assert!(v["times"]["resolved"]["at"].is_string());
    let (status, v) = patch(&app, &commander, id, json!({"resolved_at": null})).await;
    assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("resolved_at")));
    let (_, v) = patch(&app, &commander, id, json!({"status": "investigating"})).await;
    assert_eq!(v["status"], "investigating");
    assert!(v["times"]["resolved"].is_null(), "reopened: {v}");

    // Every change is on the timeline, in order, by whom.
    let entries = timeline(&app, &viewer, id).await;
    let changes: Vec<&str> =
        entries.iter().filter(|e| e.kind == EntryKind::StatusChange).map(|e| e.text.as_str()).collect();
    assert_eq!(changes.len(), 6, "{changes:#?}");
    assert!(changes[0].starts_with("Declared **SEV2**"));
    assert!(changes[1].contains("investigating → **identified**"));
    assert!(changes[2].contains(&format!("commander → {commander_email}")));
    assert!(changes[3].contains("SEV2 → **SEV3**") && changes[3].contains("**monitoring**"));
    assert!(changes[5].contains("**reopened** → investigating"));
    assert!(entries.iter().skip(1).all(|e| e.author == commander_email));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_posts_are_both_kept_in_order_and_a_retry_is_not_doubled() {
    let app = spawn_app().await;
    let (a_email, a_cookie) = app.session_of(Role::Responder).await;
    let (b_email, b_cookie) = app.session_of(Role::Responder).await;
    let (a, b) = (app.browser(&a_cookie), app.browser(&b_cookie));
    let viewer = app.browser_of(Role::Viewer).await;
    let id = declare(&app, &a, json!({"title": "Slow search"})).await.id;
    let url = app.url(&format!("/api/v1/incidents/{id}/timeline"));
    let now = chrono::Utc::now();
    let earlier = (now - chrono::Duration::seconds(30)).to_rfc3339();
    let (ra, rb) = tokio::join!(
        send(&a, reqwest::Method::POST, url.clone(), json!({"kind": "observation", "text": "p95 **up** 4×"})),
        send(
            &b,
            reqwest::Method::POST,
            url.clone(),
            json!({"kind": "hypothesis", "text": "pool", "happened_at": earlier})
        ),
    );
    assert_eq!((ra.0, rb.0), (StatusCode::CREATED, StatusCode::CREATED));
    let entries = timeline(&app, &viewer, id).await;
    let people: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.kind != EntryKind::StatusChange)
        .map(|e| (e.author.as_str(), e.text.as_str()))
        .collect();
    assert_eq!(people, vec![(b_email.as_str(), "pool"), (a_email.as_str(), "p95 **up** 4×")], "by happened_at");
    assert!(entries.iter().any(|e| e.html.contains("<strong>up</strong>")), "markdown rendered");

    // The same post retried (a connection blip): stored once, answered with the first one.
    let key = uuid::Uuid::new_v4().to_string();
    let body = json!({"kind": "action", "text": "rolled back v42"});
    let post = |c: &reqwest::Client| c.post(&url).header("idempotency-key", &key).json(&body).send();
    let (first, second) = tokio::join!(post(&a), post(&a));
    let (first, second) = (first.expect("post"), second.expect("post"));
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED], "one stored, one replayed");
    let first: TimelineEntry = first.json().await.expect("entry");
    let second: TimelineEntry = second.json().await.expect("entry");
    assert_eq!(first.id, second.id);
    let third = post(&a).await.expect("post");
    assert_eq!(third.status(), StatusCode::OK);
    let actions = timeline(&app, &viewer, id).await.into_iter().filter(|e| e.kind == EntryKind::Action).count();
    assert_eq!(actions, 1);

    // People cannot write Triage's kinds; viewers cannot write at all; empty text is named.
    let (status, v) = send(&a, reqwest::Method::POST, url.clone(), json!({"kind": "automatic", "text": "x"})).await;
    assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("kind")));
    let (status, v) = send(&a, reqwest::Method::POST, url.clone(), json!({"text": " "})).await;
    assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("text")));
    let (status, _) = send(&viewer, reqwest::Method::POST, url.clone(), json!({"text": "hi"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let missing = app.url(&format!("/api/v1/incidents/{}/timeline", uuid::Uuid::new_v4()));
    let (status, _) = send(&a, reqwest::Method::POST, missing, json!({"text": "hi"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn edits_keep_history_and_deletion_is_soft_and_shown_to_commanders() {
    let app = spawn_app().await;
    let author = app.browser_of(Role::Responder).await;
    let other = app.browser_of(Role::Responder).await;
    let commander = app.browser_of(Role::Commander).await;
    let viewer = app.browser_of(Role::Viewer).await;
    let id = declare(&app, &author, json!({"title": "DB failover"})).await.id;
    let url = app.url(&format!("/api/v1/incidents/{id}/timeline"));
    let (_, v) = send(&author, reqwest::Method::POST, url.clone(), json!({"text": "/hyp replica lag"})).await;
    let entry: TimelineEntry = serde_json::from_value(v).expect("entry");
    let entry_url = format!("{url}/{}", entry.id);

    let (status, _) = send(&other, reqwest::Method::PATCH, entry_url.clone(), json!({"text": "mine now"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "someone else's entry");
    let (status, v) = send(
        &author,
        reqwest::Method::PATCH,
        entry_url.clone(),
        json!({"text": "replica lag 40 s", "kind": "hypothesis"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!((v["revision"].as_i64(), v["text"].as_str()), (Some(2), Some("replica lag 40 s")));
    let (status, _) = send(&commander, reqwest::Method::PATCH, entry_url.clone(), json!({"kind": "decision"})).await;
    assert_eq!(status, StatusCode::OK, "commanders may edit any entry");
    let history: Vec<Value> = app.get_json(&format!("/api/v1/incidents/{id}/timeline/{}/history", entry.id)).await;
    let texts: Vec<&str> = history.iter().filter_map(|h| h["text"].as_str()).collect();
    assert_eq!(texts, vec!["/hyp replica lag", "replica lag 40 s"], "every earlier version kept");

    let res = author.delete(&entry_url).send().await.expect("delete");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(timeline(&app, &viewer, id).await.iter().all(|e| e.id != entry.id), "gone for viewers");
    let seen = timeline(&app, &commander, id).await;
    let deleted = seen.iter().find(|e| e.id == entry.id).expect("commanders still see it");
    assert!(deleted.deleted.as_ref().is_some_and(|d| d.by.starts_with("responder-")));
    let (status, _) = send(&author, reqwest::Method::PATCH, entry_url, json!({"text": "again"})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Triage's own entries are records.
    let declared = seen.iter().find(|e| e.kind == EntryKind::StatusChange).expect("declared entry");
    let (status, _) =
        send(&commander, reqwest::Method::PATCH, format!("{url}/{}", declared.id), json!({"text": "x"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    app.stop().await;
}

#[tokio::test]
async fn the_list_puts_open_incidents_first_and_filters() {
    let app = spawn_app().await;
    let commander = app.browser_of(Role::Commander).await;
    let service: Value = app
        .client
        .post(app.url("/api/v1/services"))
        .json(&json!({"name": "payments"}))
        .send()
        .await
        .expect("service")
        .json()
        .await
        .expect("json");
    let service_id = service["id"].as_str().expect("id").to_string();
    let old = declare(&app, &commander, json!({"title": "Old outage", "severity": "SEV1"})).await;
    patch(&app, &commander, old.id, json!({"status": "resolved"})).await;
    declare(&app, &commander, json!({"title": "Payments timeouts", "services": [service_id]})).await;
    let other = declare(&app, &commander, json!({"title": "Search slow", "severity": "SEV4"})).await;
    let url = app.url(&format!("/api/v1/incidents/{}/timeline", other.id));
    send(&commander, reqwest::Method::POST, url, json!({"text": "elasticsearch heap at 95%"})).await;

    let titles = |list: Vec<Incident>| list.into_iter().map(|i| i.title).collect::<Vec<_>>();
    let all: Vec<Incident> = app.get_json("/api/v1/incidents").await;
    assert_eq!(titles(all), vec!["Search slow", "Payments timeouts", "Old outage"], "open first, newest first");
    let cases = [
        ("status=resolved", vec!["Old outage"]),
        ("severity=SEV4", vec!["Search slow"]),
        ("severity=sev1", vec!["Old outage"]),
        (&*format!("service={service_id}"), vec!["Payments timeouts"]),
        ("q=TIMEOUT", vec!["Payments timeouts"]),
        ("q=heap", vec!["Search slow"]),
        (&*format!("from={}", chrono::Utc::now().date_naive()), vec!["Search slow", "Payments timeouts", "Old outage"]),
        ("to=2000-01-01", vec![]),
    ];
    for (query, want) in cases {
        let got: Vec<Incident> = app.get_json(&format!("/api/v1/incidents?{query}")).await;
        assert_eq!(titles(got), want, "{query}");
    }
    for (query, field) in [("status=open", "status"), ("from=yesterday", "from"), ("sort=new", "sort")] {
        let res = app.client.get(app.url(&format!("/api/v1/incidents?{query}"))).send().await.expect("list");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        let v: Value = res.json().await.expect("json");
        assert_eq!(v["field"], field, "{query}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_room_stream_delivers_entries_and_presence_live() {
    let app = spawn_app().await;
    let (a_email, a_cookie) = app.session_of(Role::Responder).await;
    let (b_email, b_cookie) = app.session_of(Role::Viewer).await;
    let (a, b) = (app.browser(&a_cookie), app.browser(&b_cookie));
    let id = declare(&app, &a, json!({"title": "Queue backlog"})).await.id;
    let events = app.url(&format!("/api/v1/incidents/{id}/events"));
    let mut watching = b.get(&events).send().await.expect("connect");
    assert_eq!(watching.status(), StatusCode::OK);
    let mut buf = String::new();
    next_frame(&mut watching, &mut buf, |f| f.contains("event: ready")).await.expect("ready");
    let presence = next_frame(&mut watching, &mut buf, |f| f.contains("event: presence")).await.expect("presence");
    assert!(presence.contains(&b_email), "{presence}");
    let mut other = a.get(&events).send().await.expect("connect");
    let both = next_frame(&mut watching, &mut buf, |f| f.contains("event: presence") && f.contains(&a_email))
        .await
        .expect("the second viewer is announced");
    assert!(both.contains(&b_email));

    let url = app.url(&format!("/api/v1/incidents/{id}/timeline"));
    send(&a, reqwest::Method::POST, url, json!({"kind": "observation", "text": "backlog 12k"})).await;
    let frame = next_frame(&mut watching, &mut buf, |f| f.contains("event: entry")).await.expect("entry frame");
    let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).expect("data");
    let event: RoomEvent = serde_json::from_str(data).expect("RoomEvent JSON");
    assert!(matches!(&event, RoomEvent::Entry(e) if e.text == "backlog 12k" && e.author == a_email), "{event:?}");

    // Leaving is announced too.
    drop(other.chunk().await);
    drop(other);
    let left = next_frame(&mut watching, &mut buf, |f| f.contains("event: presence") && !f.contains(&a_email))
        .await
        .expect("the leaver is gone");
    assert!(left.contains(&b_email));
    let missing = b.get(app.url(&format!("/api/v1/incidents/{}/events", uuid::Uuid::new_v4()))).send().await;
    assert_eq!(missing.expect("connect").status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

/// The frames a room stream opens with, up to and including the viewer's own presence.
async fn opening_frames(client: &reqwest::Client, url: String) -> Vec<RoomEvent> {
    let mut res = client.get(url).send().await.expect("connect");
    assert_eq!(res.status(), StatusCode::OK);
    let mut buf = String::new();
    let mut out = Vec::new();
    loop {
        let frame = next_frame(&mut res, &mut buf, |_| true).await.expect("a frame");
        let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
        if frame.contains("event: ready") {
            continue;
        }
        let event: RoomEvent = serde_json::from_str(data).expect("RoomEvent JSON");
        let presence = matches!(event, RoomEvent::Presence(_));
        out.push(event);
        if presence {
            return out;
        }
    }
}

/// What happens between reading the room for a page and opening its stream reaches the page: the
/// stream opens with the incident as it is and the entries changed since the page's read.
#[tokio::test]
async fn the_room_stream_opens_with_what_changed_since_the_page_was_read() {
    let app = spawn_app().await;
    let (_, cookie) = app.session_of(Role::Commander).await;
    let c = app.browser(&cookie);
    let id = declare(&app, &c, json!({"title": "Cache stampede"})).await.id;
    let timeline = app.url(&format!("/api/v1/incidents/{id}/timeline"));
    let (status, _) = send(&c, reqwest::Method::POST, timeline.clone(), json!({"text": "read with the page"})).await;
    assert_eq!(status, StatusCode::CREATED);
    // Past the clock margin, so the entry above counts as already on the page.
    let read_at = chrono::Utc::now() + chrono::Duration::seconds(6);
    let events = app.url(&format!("/api/v1/incidents/{id}/events"));
    let since = |t: chrono::DateTime<chrono::Utc>| {
        format!("{events}?since={}", t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    };

    // Nothing happened since: the incident, then presence.
    let quiet = opening_frames(&c, since(read_at)).await;
    assert_eq!(quiet.len(), 2, "{quiet:?}");
    assert!(matches!(&quiet[0], RoomEvent::Incident(i) if i.id == id && i.status == IncidentStatus::Investigating));

    // In the gap: a status change and an entry.
    let (status, v) = patch(&app, &c, id, json!({"status": "identified"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, _) = send(&c, reqwest::Method::POST, timeline, json!({"text": "written in the gap"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let caught_up = opening_frames(&c, since(read_at - chrono::Duration::seconds(6))).await;
    assert!(matches!(&caught_up[0], RoomEvent::Incident(i) if i.status == IncidentStatus::Identified), "{caught_up:?}");
    let texts: Vec<&str> = caught_up
        .iter()
        .filter_map(|e| match e {
            RoomEvent::Entry(e) => Some(e.text.as_str()),
            _ => None,
        })
        .collect();
    assert!(texts.contains(&"written in the gap"), "{texts:?}");
    assert!(matches!(caught_up.last(), Some(RoomEvent::Presence(_))));

    // Without `since` the stream opens with the incident only.
    let bare = opening_frames(&c, events.clone()).await;
    assert!(matches!(&bare[..], [RoomEvent::Incident(_), RoomEvent::Presence(_)]), "{bare:?}");
    for (query, field) in [("since=yesterday", "since"), ("after=2026-01-01T00:00:00Z", "after")] {
        let res = c.get(format!("{events}?{query}")).send().await.expect("connect");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
        let v: Value = res.json().await.expect("json");
        assert_eq!(v["field"], field, "{query}");
    }
    app.stop().await;
}

/// Waits for a room event that `pred` accepts.
pub async fn room_event(
    rx: &mut tokio::sync::broadcast::Receiver<(uuid::Uuid, Arc<RoomEvent>)>,
    what: &str,
    pred: impl Fn(&RoomEvent) -> bool,
) -> (uuid::Uuid, RoomEvent) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok((id, e))) if pred(&e) => return (id, (*e).clone()),
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("room hub closed: {e}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

pub fn automatic_containing(needle: &'static str) -> impl Fn(&RoomEvent) -> bool {
    move |e| matches!(e, RoomEvent::Entry(x) if x.kind == EntryKind::Automatic && x.text.contains(needle))
}

#[tokio::test]
async fn a_probe_confirmed_down_opens_an_incident_and_its_recovery_suggests_resolving() {
    let (target, status) = health_target(503).await;
    let app = spawn_app().await;
    let mut rooms = app.state.incidents.rooms.subscribe();
    let spec = |name: &str, auto_open: bool| {
        json!({"name": name, "service": format!("{name}-svc"), "kind": "http", "url": format!("http://{target}/health"),
               "interval_secs": 1, "timeout_ms": 500, "failures_to_down": 2, "successes_to_up": 1,
               "incidents": {"auto_open": auto_open, "criticality": "high", "healthy_for_secs": 2}})
    };
    let res = app.client.post(app.url("/api/v1/probes")).json(&spec("quiet", false)).send().await.expect("probe");
    let quiet: Probe = res.json().await.expect("probe");
    let res = app.client.post(app.url("/api/v1/probes")).json(&spec("checkout", true)).send().await.expect("probe");
    assert_eq!(res.status(), StatusCode::CREATED);
    // A second probe of the same service joins the incident the first one opens.
    let mut sibling = spec("checkout-ready", true);
    sibling["service"] = json!("checkout-svc");
    let res = app.client.post(app.url("/api/v1/probes")).json(&sibling).send().await.expect("probe");
    assert_eq!(res.status(), StatusCode::CREATED);

    // Whichever probe is confirmed first opens the incident; the other's entry joins it.
    let mut seen: Vec<(String, uuid::Uuid)> = Vec::new();
    while seen.len() < 2 {
        let (id, e) = room_event(&mut rooms, "both down entries", automatic_containing("is **down**")).await;
        if let RoomEvent::Entry(x) = e {
            let probe = if x.text.contains("checkout-ready**") { "checkout-ready" } else { "checkout" };
            if !seen.iter().any(|(p, _)| p == probe) {
                seen.push((probe.to_string(), id));
            }
        }
    }
    assert_eq!(seen[0].1, seen[1].1, "both in one incident: {seen:?}");
    let id = seen[0].1;
    let incident: Incident = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert!(incident.automatic);
    assert_eq!(incident.severity, Severity::Sev2, "from the probe's criticality");
    assert_eq!(incident.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["checkout-svc"]);
    let (started, detected) = (incident.times.started.expect("started"), incident.times.detected.expect("detected"));
    assert!(started.at < detected.at, "first failing check before confirmation");
    let entries: Vec<TimelineEntry> = app.get_json(&format!("/api/v1/incidents/{id}/timeline")).await;
    let evidence = entries.iter().find(|e| e.kind == EntryKind::Automatic).expect("evidence entry");
    for needle in ["HTTP 503", "error `status`", "request id `"] {
        assert!(evidence.text.contains(needle), "{needle} in {}", evidence.text);
    }

    // The probe with auto_open off fails too, but opens nothing of its own.
    let handled = wait_handled(&app, quiet.id).await;
    assert!(handled, "its state change was handled");
    let open: Vec<Incident> = app.get_json("/api/v1/incidents?status=investigating").await;
    assert_eq!(open.len(), 1, "only the auto-opening probe's: {open:?}");

    status.store(200, Ordering::SeqCst);
    room_event(&mut rooms, "the recovery entry", automatic_containing("recovered")).await;
    room_event(&mut rooms, "the resolve suggestion", automatic_containing("consider resolving")).await;
    let incident: Incident = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert!(incident.resolve_suggested_at.is_some());
    assert_eq!(incident.status, IncidentStatus::Investigating, "only a commander resolves");
    let entries: Vec<TimelineEntry> = app.get_json(&format!("/api/v1/incidents/{id}/timeline")).await;
    let automatic = entries.iter().filter(|e| e.kind == EntryKind::Automatic).count();
    assert_eq!(automatic, 5, "one per state change (two probes down, two up) and the suggestion: {entries:#?}");
    let all: Vec<Incident> = app.get_json("/api/v1/incidents").await;
    assert_eq!(all.len(), 1, "one incident for the service, not one per probe");
    let (code, v) = patch(&app, &app.client, id, json!({"status": "resolved"})).await;
    assert_eq!(code, StatusCode::OK);
    assert!(v["resolve_suggested_at"].is_null());
    app.stop().await;
}

/// Whether the probe's state change has been handled by the incident engine (there is no event
/// for "handled, nothing to do", so this polls the queue row).
pub async fn wait_handled(app: &TestApp, probe: uuid::Uuid) -> bool {
    wait_handled_in(&app.pool, probe).await
}

/// [`wait_handled`] on a database (the engine may run in another process).
pub async fn wait_handled_in(pool: &sqlx::PgPool, probe: uuid::Uuid) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        let handled: Option<bool> = sqlx::query_scalar(
            "select bool_and(handled_at is not null) from state_changes where probe_id = $1 having count(*) > 0",
        )
        .bind(probe)
        .fetch_optional(pool)
        .await
        .expect("query");
        if handled == Some(true) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_probe_degraded_longer_than_its_policy_allows_opens_an_incident() {
    let target = serve_target(Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(120)).await;
            "slow"
        }),
    ))
    .await;
    let app = spawn_app().await;
    let mut rooms = app.state.incidents.rooms.subscribe();
    let res = app
        .client
        .post(app.url("/api/v1/probes"))
        .json(
            &json!({"name": "search", "service": "search-svc", "kind": "http", "url": format!("http://{target}/slow"),
               "interval_secs": 1, "timeout_ms": 900, "degraded_after_ms": 50, "failures_to_down": 1,
               "incidents": {"degraded_for_secs": 2}}),
        )
        .send()
        .await
        .expect("probe");
    assert_eq!(res.status(), StatusCode::CREATED);
    let (id, opened) = room_event(&mut rooms, "the opening entry", |e| {
        matches!(e, RoomEvent::Entry(x) if x.kind == EntryKind::StatusChange && x.text.contains("confirmed degraded"))
    })
    .await;
    assert!(matches!(&opened, RoomEvent::Entry(e) if e.author == "triage"));
    let incident: Incident = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident.title, "search-svc: search degraded");
    assert_eq!(incident.severity, Severity::Sev3, "the service's default criticality, medium");
    let started = incident.times.started.expect("started").at;
    let detected = incident.times.detected.expect("detected").at;
    assert!(
        detected - started >= chrono::Duration::seconds(2),
        "opened only after 2 s degraded: {started} → {detected}"
    );
    app.stop().await;
}

/// The demo target in the pool scenario: the room proposes the pool checklist first with failing
/// evidence; ticks, risky actions and hypotheses land on the timeline; an incident keeps the
/// checklist version it was shown.
#[tokio::test]
async fn guidance_reads_the_pool_scenario_and_records_what_responders_do() {
    use app::model::{EvidenceStatus, Guidance, SymptomKind};
    use server::demo::{DemoTarget, Scenario};
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let demo = DemoTarget::start(any, any).await.expect("demo target");
    demo.set_scenario(Scenario::Pool);
    let app = spawn_app().await;
    let mut hub = app.state.hub.subscribe();
    let res = app
        .client
        .post(app.url("/api/v1/probes"))
        .json(&json!({"name": "shop-pool", "service": "shop", "kind": "metrics",
                      "url": format!("http://{}/metrics", demo.addr), "interval_secs": 1, "timeout_ms": 800}))
        .send()
        .await
        .expect("probe");
    assert_eq!(res.status(), StatusCode::CREATED);
    let probe: Probe = res.json().await.expect("probe");
    // Wait for a scrape that shows the pool full.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got =
            crate::common::wait_events(&mut hub, 1, Duration::from_secs(20), crate::common::result_of(probe.id)).await;
        let server::monitor::hub::ProbeEvent::Result(live) = &got[0] else { unreachable!("filtered") };
        // The event is a summary; the scrape's gauges are in the stored result.
        let result = app.stored(live).await;
        if result.pool.is_some_and(|p| p.in_use.is_some() && p.in_use == p.max) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no scrape showed the pool full");
    }
    app.flush().await;
    let commander = app.browser_of(Role::Commander).await;
    let responder = app.browser_of(Role::Responder).await;
    let viewer = app.browser_of(Role::Viewer).await;
    let id = declare(&app, &commander, json!({"title": "Pool", "services": [probe.service_id]})).await.id;

    let raw = app.client.get(app.url(&format!("/api/v1/incidents/{id}/guidance"))).send().await.expect("guidance");
    let raw = raw.text().await.expect("body");
    let g: Guidance = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}: {raw}"));
    let pool = g.symptoms.iter().find(|s| s.kind == SymptomKind::PoolSaturated).expect("pool symptom");
    assert!(pool.reason.contains("of 10 in use") && pool.reason.contains("waiting"), "{}", pool.reason);
    assert_eq!(g.checklists[0].id, "pool-exhaustion", "{:?}", g.checklists.iter().map(|c| &c.id).collect::<Vec<_>>());
    let step = g.checklists[0].steps.iter().find(|s| s.def.id == "pool").expect("pool step");
    let evidence = step.live.as_ref().expect("evidence");
    assert_eq!(evidence.status, EvidenceStatus::Fail, "{evidence:?}");
    assert_eq!(evidence.charts, vec![(probe.service_id, app::model::ChartKind::Pool)]);
    assert!(!g.suggested_hypotheses.is_empty() && g.suggested_hypotheses.len() <= 3);
    assert!(!g.recovery.healthy);

    let ticks = app.url(&format!("/api/v1/incidents/{id}/guidance/ticks"));
    let tick = json!({"checklist": "pool-exhaustion", "step": "server-connections", "finding": "97 of 100 connections from the shop"});
    let (status, _) = send(&viewer, reqwest::Method::POST, ticks.clone(), tick.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = send(&responder, reqwest::Method::POST, ticks.clone(), tick).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let g: Guidance = serde_json::from_value(v).expect("guidance");
    let ticked = g.checklists[0].steps.iter().find(|s| s.def.id == "server-connections").and_then(|s| s.tick.clone());
    assert!(ticked.is_some_and(|t| t.done && t.finding.contains("97 of 100")));
    let risky = json!({"checklist": "pool-exhaustion", "step": "raise-max-connections"});
    let (status, v) = send(&responder, reqwest::Method::POST, ticks.clone(), risky.clone()).await;
    assert_eq!((status, v["field"].as_str()), (StatusCode::CONFLICT, Some("accept_risk")));
    assert!(v["message"].as_str().is_some_and(|m| m.contains("restarts PostgreSQL")), "the warning: {v}");
    let mut accepted = risky.clone();
    accepted["accept_risk"] = json!(true);
    let (status, _) = send(&responder, reqwest::Method::POST, ticks.clone(), accepted).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = send(&responder, reqwest::Method::POST, ticks, json!({"checklist": "nope", "step": "x"})).await;
    assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("checklist")));

    let hyps = app.url(&format!("/api/v1/incidents/{id}/hypotheses"));
    let (status, v) = send(&responder, reqwest::Method::POST, hyps.clone(), json!({"text": "connections leak"})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let hid = v["id"].as_str().expect("id").to_string();
    let (status, v) = send(
        &responder,
        reqwest::Method::PATCH,
        format!("{hyps}/{hid}"),
        json!({"status": "ruled_out", "evidence": "in use drops when traffic does"}),
    )
    .await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ruled_out")));
    let entries = timeline(&app, &viewer, id).await;
    let texts: Vec<&str> = entries.iter().map(|e| e.text.as_str()).collect();
    assert!(
        texts.iter().any(|t| t.starts_with("**Checked**: How many connections") && t.contains("97 of 100")),
        "{texts:#?}"
    );
    assert!(entries.iter().any(|e| e.kind == EntryKind::Action && e.text.contains("high-risk action taken")));
    assert!(texts.iter().any(|t| t.starts_with("**Hypothesis ruled out**: connections leak")));

    // An admin edits the checklist: new incidents get version 2, this one keeps version 1.
    let mut def: Value = app.get_json::<Vec<Value>>("/api/v1/checklists/pool-exhaustion").await[0].clone();
    for k in ["version", "created_by", "created_at"] {
        def.as_object_mut().expect("object").remove(k);
    }
    def["title"] = json!("Pool exhausted (edited)");
    let put = app.client.put(app.url("/api/v1/checklists/pool-exhaustion")).json(&def).send().await.expect("put");
    assert_eq!(put.status(), StatusCode::CREATED);
    let saved: Value = put.json().await.expect("json");
    assert_eq!(saved["version"], 2);
    let g: Guidance = app.get_json(&format!("/api/v1/incidents/{id}/guidance")).await;
    assert_eq!((g.checklists[0].version, g.checklists[0].title.as_str()), (1, "Connection pool exhausted"));
    def["step"][0]["id"] = json!("Not An Id");
    let bad = app.client.put(app.url("/api/v1/checklists/pool-exhaustion")).json(&def).send().await.expect("put");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let v: Value = bad.json().await.expect("json");
    assert_eq!(v["field"], "step[0].id");
    app.stop().await;
}

/// One notion of healthy: a metrics probe whose pool is exhausted is `degraded` with the reason,
/// the room's guidance says recovery has not come, and the resolve suggestion waits until the
/// pool has recovered for the probe's `healthy_for_secs`.
#[tokio::test]
async fn a_saturated_pool_is_degraded_and_the_resolve_suggestion_waits_for_it() {
    use app::model::{ErrorClass, Guidance, Outcome, StateChange};
    use server::demo::{DemoTarget, Scenario};
    use server::monitor::hub::ProbeEvent;
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let demo = DemoTarget::start(any, any).await.expect("demo target");
    demo.set_scenario(Scenario::Pool);
    let app = spawn_app().await;
    let mut hub = app.state.hub.subscribe();
    let mut rooms = app.state.incidents.rooms.subscribe();
    let res = app
        .client
        .post(app.url("/api/v1/probes"))
        .json(&json!({"name": "shop-pool", "service": "shop", "kind": "metrics",
                      "url": format!("http://{}/metrics", demo.addr), "interval_secs": 1, "timeout_ms": 800,
                      "failures_to_down": 1, "successes_to_up": 1,
                      "incidents": {"auto_open": false, "healthy_for_secs": 2}}))
        .send()
        .await
        .expect("probe");
    assert_eq!(res.status(), StatusCode::CREATED);
    let probe: Probe = res.json().await.expect("probe");

    // The exhausted pool makes the probe degraded, with the pool reading as the reason.
    let seen = crate::common::wait_events(
        &mut hub,
        1,
        Duration::from_secs(20),
        |e| matches!(e, ProbeEvent::StateChanged(c) if c.probe_id == probe.id && c.to == Outcome::Degraded),
    )
    .await;
    let ProbeEvent::StateChanged(change) = &seen[0] else { unreachable!("filtered above") };
    assert_eq!(change.error, Some(ErrorClass::PoolSaturated));
    let results: Vec<app::model::ProbeResult> = app.get_json(&format!("/api/v1/probes/{}/results", probe.id)).await;
    let latest = results.first().expect("a stored result");
    assert_eq!((latest.outcome, latest.error), (Outcome::Degraded, Some(ErrorClass::PoolSaturated)));
    let why = latest.detail.clone().unwrap_or_default();
    assert!(why.starts_with("pool saturated: 10 of 10 in use (100 %),") && why.contains("waiting"), "{why}");

    let commander = app.browser_of(Role::Commander).await;
    let id = declare(&app, &commander, json!({"title": "Pool", "services": [probe.service_id]})).await.id;
    let g: Guidance = app.get_json(&format!("/api/v1/incidents/{id}/guidance")).await;
    assert!(
        g.symptoms.iter().any(|s| s.kind == app::model::SymptomKind::PoolSaturated),
        "the guidance sees the same saturation: {:?}",
        g.symptoms
    );
    assert!(!g.recovery.healthy, "{}", g.recovery.detail);

    // The pool recovers: the probe comes back up, and only then (plus healthy_for_secs) is
    // resolving suggested.
    demo.set_scenario(Scenario::Healthy);
    let seen = crate::common::wait_events(
        &mut hub,
        1,
        Duration::from_secs(20),
        |e| matches!(e, ProbeEvent::StateChanged(c) if c.probe_id == probe.id && c.to == Outcome::Up),
    )
    .await;
    let ProbeEvent::StateChanged(up) = &seen[0] else { unreachable!("filtered above") };
    room_event(&mut rooms, "the resolve suggestion", automatic_containing("consider resolving")).await;
    let incident: Incident = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    let suggested = incident.resolve_suggested_at.expect("suggested");
    assert!(
        suggested >= up.at + chrono::Duration::seconds(2),
        "{suggested} is 2 s after the pool recovered at {}",
        up.at
    );
    let changes: Vec<StateChange> = app.get_json(&format!("/api/v1/probes/{}/state-changes", probe.id)).await;
    assert!(changes.iter().any(|c| c.to == Outcome::Degraded), "{changes:?}");
    app.stop().await;
}
