//! Change events against the real application and PostgreSQL: posted by the real `triage change
//! add` process with a push token, refused by name when wrong, listed by service and time, and
//! written into the live room of the incident they may have caused (and only that one).

use app::model::{ChangeEvent, EntryKind, Incident, RoomEvent, Scope, TimelineEntry};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, create_token, next_frame, spawn_app, triage};

async fn service(app: &TestApp, name: &str) -> uuid::Uuid {
    let res = app.client.post(app.url("/api/v1/services")).json(&json!({"name": name})).send().await.expect("post");
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.expect("service");
    v["id"].as_str().and_then(|s| s.parse().ok()).expect("id")
}

/// Runs `triage change add` against the app; returns its exit code, stdout and stderr.
async fn cli_add(app: &TestApp, token: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = triage();
    cmd.args(["change", "add", "--server", &app.url, "--token", token]).args(args).env_remove("TRIAGE_TOKEN");
    let out = tokio::process::Command::from(cmd).output().await.expect("run triage change add");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn post(client: &reqwest::Client, app: &TestApp, body: Value) -> (StatusCode, Value) {
    let res = client.post(app.url("/api/v1/changes")).json(&body).send().await.expect("post");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn token_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().expect("header"));
    reqwest::Client::builder().default_headers(headers).build().expect("client")
}

async fn timeline(app: &TestApp, id: uuid::Uuid) -> Vec<TimelineEntry> {
    app.get_json(&format!("/api/v1/incidents/{id}/timeline")).await
}

fn change_entries(entries: &[TimelineEntry]) -> Vec<&TimelineEntry> {
    entries.iter().filter(|e| e.kind == EntryKind::Automatic && e.text.starts_with("Change: ")).collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn a_change_from_ci_is_listed_and_lands_in_the_room_of_the_incident_it_may_have_caused() {
    let app = spawn_app().await;
    let shop = service(&app, "shop").await;
    let billing = service(&app, "billing").await;
    let push = create_token(&app.pool, Scope::Push, "ci").await;
    let read = create_token(&app.pool, Scope::Read, "dashboards").await;
    let now = Utc::now();
    let started = now - Duration::minutes(10);

    // A change made well before anything broke is recorded, and linked to nothing.
    let old = rfc3339(now - Duration::hours(3));
    let (code, out, err) =
        cli_add(&app, &push, &["--service", "shop", "--kind", "config", "--title", "raise pool to 80", "--at", &old])
            .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("config change “raise pool to 80” of shop"), "{out}");

    let incident: Incident = {
        let body = json!({"title": "Checkout errors", "services": [shop], "started_at": rfc3339(started)});
        let res = app.client.post(app.url("/api/v1/incidents")).json(&body).send().await.expect("declare");
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.expect("incident")
    };
    assert!(change_entries(&timeline(&app, incident.id).await).is_empty(), "3 hours before is outside the window");
    let mut room =
        app.client.get(app.url(&format!("/api/v1/incidents/{}/events", incident.id))).send().await.expect("room");
    let mut buf = String::new();
    next_frame(&mut room, &mut buf, |f| f.contains("event: ready")).await.expect("ready");

    // The deploy three minutes before the start reaches the open room live, with its lead time.
    let deployed: DateTime<Utc> = rfc3339(started - Duration::minutes(3)).parse().expect("whole seconds");
    let (code, out, err) = cli_add(
        &app,
        &push,
        &[
            "--service",
            "shop",
            "--kind",
            "deploy",
            "--title",
            "Release 1.4.2",
            "--version",
            "v1.4.2",
            "--author",
            "alice",
            "--link",
            "https://ci.example/runs/7",
            "--at",
            &rfc3339(deployed),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deploy v1.4.2 of shop"), "{out}");
    let frame = next_frame(&mut room, &mut buf, |f| f.contains("event: entry")).await.expect("entry frame");
    let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).expect("data");
    let Ok(RoomEvent::Entry(live)) = serde_json::from_str::<RoomEvent>(data) else { panic!("not an entry: {data}") };
    assert_eq!(
        live.text,
        "Change: **deploy v1\\.4\\.2 of shop** by alice, 3 minutes before the incident's start — Release \
         1\\.4\\.2 (<https://ci.example/runs/7>)"
    );
    assert_eq!((live.kind, live.author.as_str(), live.happened_at), (EntryKind::Automatic, "triage", deployed));
    assert!(live.html.contains("href=\"https://ci.example/runs/7\""), "{}", live.html);

    // A change of another service is not the room's business until that service is affected.
    let (status, v) = post(
        &token_client(&push),
        &app,
        json!({"service": billing.to_string(), "kind": "feature_flag", "title": "new invoices on", "at": rfc3339(started - Duration::minutes(30))}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(change_entries(&timeline(&app, incident.id).await).len(), 1);
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/incidents/{}", incident.id)))
        .json(&json!({"services": [shop, billing]}))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), StatusCode::OK);
    let entries = timeline(&app, incident.id).await;
    let linked: Vec<&str> = change_entries(&entries).iter().map(|e| e.text.as_str()).collect();
    assert_eq!(linked.len(), 2, "{linked:?}");
    assert!(
        linked[0].starts_with("Change: **feature flag “new invoices on” of billing**, 30 minutes before"),
        "{linked:?}"
    );
    // Changing the services again does not write the entries twice.
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/incidents/{}", incident.id)))
        .json(&json!({"services": [billing, shop]}))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(change_entries(&timeline(&app, incident.id).await).len(), 2);

    // The list: by service and time, newest first; readers may read it.
    let reader = token_client(&read);
    let res = reader
        .get(app.url(&format!(
            "/api/v1/changes?service_id={shop}&from={}",
            rfc3339(now - Duration::hours(4)).replace('+', "%2B")
        )))
        .send()
        .await
        .expect("list");
    assert_eq!(res.status(), StatusCode::OK);
    let list: Vec<ChangeEvent> = res.json().await.expect("changes");
    let titles: Vec<&str> = list.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, ["Release 1.4.2", "raise pool to 80"]);
    assert_eq!((list[0].recorded_by.as_str(), list[0].version.as_deref()), ("token:ci", Some("v1.4.2")));
    let recent: Vec<ChangeEvent> = app.get_json("/api/v1/changes").await;
    assert_eq!(recent.len(), 3, "the last 7 days of every service");
    let res = reader.get(app.url("/api/v1/changes?from=yesterday")).send().await.expect("list");
    let v: Value = res.json().await.expect("error");
    assert_eq!(v["field"], "from");
    app.stop().await;
}

#[tokio::test]
async fn bad_changes_are_refused_by_name_and_nothing_is_stored() {
    let app = spawn_app().await;
    service(&app, "shop").await;
    let push = token_client(&create_token(&app.pool, Scope::Push, "ci").await);
    let future = rfc3339(Utc::now() + Duration::hours(1));
    for (body, field) in [
        (json!({"service": "shop", "kind": "rollout", "title": "x"}), "kind"),
        (json!({"service": "nope", "kind": "deploy", "title": "x"}), "service"),
        (json!({"service": "shop", "kind": "deploy", "title": "  "}), "title"),
        (json!({"service": "shop", "kind": "deploy", "title": "x", "link": "javascript:alert(1)"}), "link"),
        (json!({"service": "shop", "kind": "deploy", "title": "x", "version": "a\nb"}), "version"),
        (json!({"service": "shop", "kind": "deploy", "title": "x", "at": future}), "at"),
        (
            json!({"service": "shop", "kind": "migration", "title": "x", "at": "2026-12-06T10:00:00Z", "ends_at": "2026-12-06T09:00:00Z"}),
            "ends_at",
        ),
        (json!({"service": "shop", "kind": "deploy", "title": "x", "sha": "abc"}), "sha"),
    ] {
        let (status, v) = post(&push, &app, body.clone()).await;
        assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{body} → {v}");
    }
    // Only push and admin tokens write; a read token, a viewer and nobody cannot.
    let read = token_client(&create_token(&app.pool, Scope::Read, "dashboards").await);
    let ok = json!({"service": "shop", "kind": "deploy", "title": "x"});
    assert_eq!(post(&read, &app, ok.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(post(&app.anonymous, &app, ok.clone()).await.0, StatusCode::UNAUTHORIZED);
    let viewer = app.browser_of(app::model::Role::Viewer).await;
    assert_eq!(post(&viewer, &app, ok).await.0, StatusCode::FORBIDDEN);
    let stored: Vec<ChangeEvent> = app.get_json("/api/v1/changes").await;
    assert!(stored.is_empty(), "{stored:?}");

    // The CLI says which field and exits 2, as for any bad input.
    let token = create_token(&app.pool, Scope::Push, "ci2").await;
    let (code, _, err) = cli_add(&app, &token, &["--service", "nope", "--kind", "deploy", "--title", "x"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("service: no service is named nope"), "{err}");
    let (code, _, err) = cli_add(&app, &token, &["--service", "shop", "--kind", "rollout", "--title", "x"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("deploy, config, feature_flag, migration or infra"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn the_checklist_the_charts_and_the_postmortem_start_from_the_change_before_an_outage() {
    let (target, _status) = crate::common::health_target(503).await;
    let app = spawn_app().await;
    let mut rooms = app.state.incidents.rooms.subscribe();
    let shop = service(&app, "shop").await;
    let push = token_client(&create_token(&app.pool, Scope::Push, "ci").await);
    let deployed = Utc::now() - Duration::minutes(2);
    let body = json!({"service": "shop", "kind": "deploy", "title": "Release 1.4.2", "version": "v1.4.2", "at": rfc3339(deployed)});
    assert_eq!(post(&push, &app, body).await.0, StatusCode::CREATED);

    // The outage after it opens an incident by itself; the engine writes the change into its room.
    let probe = json!({"name": "checkout", "service": "shop", "kind": "http", "url": format!("http://{target}/health"),
        "interval_secs": 1, "timeout_ms": 500, "failures_to_down": 2, "incidents": {"auto_open": true}});
    let res = app.client.post(app.url("/api/v1/probes")).json(&probe).send().await.expect("probe");
    assert_eq!(res.status(), StatusCode::CREATED);
    let (id, _) = crate::incidents::room_event(
        &mut rooms,
        "the change's entry",
        crate::incidents::automatic_containing("Change: **deploy v1\\.4\\.2 of shop**"),
    )
    .await;
    let entries = timeline(&app, id).await;
    let linked = change_entries(&entries);
    assert_eq!(linked.len(), 1);
    assert!(linked[0].text.contains("before the first failing check"), "{}", linked[0].text);

    // The checklist's "did anything ship?" answers itself, and rolling back is proposed.
    let guidance: Value = app.get_json(&format!("/api/v1/incidents/{id}/guidance")).await;
    let down = guidance["checklists"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == "service-down"))
        .expect("the service-down checklist");
    let step =
        |id: &str| down["steps"].as_array().and_then(|s| s.iter().find(|x| x["id"] == id)).cloned().expect("step");
    let shipped = step("recent-deploy");
    assert_eq!(shipped["live"]["status"], "fail", "{shipped}");
    assert!(
        shipped["live"]["detail"].as_str().is_some_and(|d| d.starts_with("deploy v1.4.2 of shop at ")),
        "{shipped}"
    );
    let rollback = step("rollback");
    assert!(
        rollback["live"]["detail"].as_str().is_some_and(|d| d.starts_with("Roll back deploy v1.4.2 of shop")),
        "{rollback}"
    );
    assert_eq!(rollback["risk"], "low");
    assert!(
        guidance["suggested_hypotheses"][0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("The deploy v1.4.2 of shop")),
        "{}",
        guidance["suggested_hypotheses"]
    );

    // The service page (and the room's charts) carry it for their markers.
    let view = server::monitor::overview::service_view(&app.pool, shop, &app::model::Window::default())
        .await
        .expect("query")
        .expect("the service");
    assert_eq!(view.change_events.iter().map(|c| c.headline()).collect::<Vec<_>>(), ["deploy v1.4.2 of shop"]);

    // Resolved, its postmortem names the change as the likely trigger and its frozen charts mark it.
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/incidents/{id}")))
        .json(&json!({"status": "resolved"}))
        .send()
        .await
        .expect("resolve");
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.client.post(app.url(&format!("/api/v1/incidents/{id}/postmortem"))).send().await.expect("postmortem");
    assert_eq!(res.status(), StatusCode::CREATED);
    let pm: Value = res.json().await.expect("postmortem");
    let trigger = pm["doc"]["sections"]["trigger"].as_str().unwrap_or_default();
    assert!(trigger.contains("**deploy v1.4.2 of shop**"), "{trigger}");
    assert!(trigger.contains("before it — Release 1.4.2"), "{trigger}");
    let latency = pm["charts"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["kind"] == "latency"))
        .and_then(|c| c["svg"].as_str())
        .expect("a frozen latency chart");
    assert!(latency.contains("stroke=\"var(--chart-warn)\""), "the change's line");
    assert!(latency.contains(">D</text>") || latency.contains(">\nD\n</text>"), "its letter");
    app.stop().await;
}
