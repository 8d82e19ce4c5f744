//! Notifications against real receivers on loopback: a webhook receiver that checks the body and
//! the signature, chat and PagerDuty formats, receivers that fail, throttle or hang, routing by tag
//! and severity, flap control driven by a real flapping target, and email over a real SMTP
//! conversation (plain and STARTTLS) with a small SMTP server started by the test.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::model::{Channel, Delivery, DeliveryState, Incident, Rule};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::common::{TestApp, health_target, serve_target, spawn_app_with, test_settings};
use crate::incidents::send;

/// What a receiver answers, in order; when the script runs out it answers 200.
#[derive(Clone, Debug)]
enum Reply {
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    Throttle(u64),
    /// Never answers (the sender must time out).
    Hang,
}

#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    raw: Bytes,
    body: Value,
    at: Instant,
    /// Whether it was answered with a 2xx (accepted).
    accepted: bool,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    scripts: Arc<Mutex<HashMap<String, VecDeque<Reply>>>>,
    arrived: Arc<tokio::sync::Notify>,
}

async fn receive(State(r): State<Receiver>, Path(path): Path<String>, headers: HeaderMap, raw: Bytes) -> Response {
    let reply = r.scripts.lock().expect("lock").get_mut(&path).and_then(VecDeque::pop_front);
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let accepted = matches!(reply, None | Some(Reply::Status(200..=299)));
    r.got.lock().expect("lock").push(Received { path: path.clone(), headers, raw, body, at: Instant::now(), accepted });
    r.arrived.notify_waiters();
    match reply {
        None => StatusCode::OK.into_response(),
        Some(Reply::Status(s)) => StatusCode::from_u16(s).expect("status").into_response(),
        Some(Reply::Throttle(secs)) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], "slow down").into_response()
        }
        Some(Reply::Hang) => std::future::pending().await,
    }
}

impl Receiver {
    async fn start() -> (SocketAddr, Receiver) {
        let r = Receiver::default();
        let addr = serve_target(Router::new().route("/{*path}", post(receive)).with_state(r.clone())).await;
        (addr, r)
    }

    fn script(&self, path: &str, replies: Vec<Reply>) {
        self.scripts.lock().expect("lock").insert(path.to_string(), replies.into());
    }

    fn at(&self, path: &str) -> Vec<Received> {
        self.got.lock().expect("lock").iter().filter(|r| r.path == path).cloned().collect()
    }

    fn accepted(&self, path: &str) -> Vec<Received> {
        self.at(path).into_iter().filter(|r| r.accepted).collect()
    }

    /// Waits until `path` has accepted at least `n` messages.
    async fn wait_accepted(&self, path: &str, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.arrived.notified();
            let got = self.accepted(path);
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("{path}: {} of {n} messages arrived: {:#?}", got.len(), self.at(path));
            }
        }
    }
}

fn fast_settings() -> server::web::http_server::ServeSettings {
    let mut s = test_settings();
    s.notify.timeout = Duration::from_millis(500);
    s.notify.backoff = Duration::from_millis(100);
    s.notify.backoff_max = Duration::from_millis(400);
    s.notify.poll = Duration::from_millis(100);
    s
}

async fn app_with(settings: server::web::http_server::ServeSettings) -> TestApp {
    spawn_app_with(crate::common::fresh_db().await, settings, Default::default()).await
}

async fn channel(app: &TestApp, body: Value) -> Channel {
    let (status, v) = send(&app.client, reqwest::Method::POST, app.url("/api/v1/channels"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    serde_json::from_value(v).expect("channel")
}

async fn declare(app: &TestApp, body: Value) -> Incident {
    let (status, v) = send(&app.client, reqwest::Method::POST, app.url("/api/v1/incidents"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    serde_json::from_value(v).expect("incident")
}

async fn patch_incident(app: &TestApp, id: uuid::Uuid, body: Value) {
    let (status, v) =
        send(&app.client, reqwest::Method::PATCH, app.url(&format!("/api/v1/incidents/{id}")), body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

/// A channel's delivery log once nothing in it is pending (a receiver's answer is recorded just
/// after it is sent, so the log may trail the receiver by a moment).
async fn settled_log(app: &TestApp, channel: uuid::Uuid) -> Vec<Delivery> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let log: Vec<Delivery> = app.get_json(&format!("/api/v1/channels/{channel}/deliveries")).await;
        if log.iter().all(|d| d.state != DeliveryState::Pending) {
            return log;
        }
        assert!(tokio::time::Instant::now() < deadline, "still pending: {log:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn hmac_hex(key: &str, t: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `X-Triage-Signature` the way a receiver would: recompute, and refuse old timestamps.
fn verify_signature(r: &Received, key: &str) {
    let header = r.headers.get("x-triage-signature").and_then(|v| v.to_str().ok()).expect("signature header");
    let (t, v1) = header.split_once(',').expect("t=…,v1=…");
    let t = t.strip_prefix("t=").expect("t=");
    let v1 = v1.strip_prefix("v1=").expect("v1=");
    assert_eq!(v1, hmac_hex(key, t, &r.raw), "the signature covers the timestamp and the exact body");
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().expect("unix seconds");
    assert!((0..60).contains(&age), "a fresh timestamp: {age} s");
    assert_ne!(v1, hmac_hex("wrong key", t, &r.raw));
}

#[tokio::test]
async fn a_signed_webhook_follows_an_incident_once_per_event() {
    let (addr, rx) = Receiver::start().await;
    let app = app_with(fast_settings()).await;
    let ch = channel(
        &app,
        json!({"name": "ops hook", "kind": "webhook", "url": format!("http://{addr}/hook"), "secret": "s3cret",
               "headers": {"Authorization": "Bearer receiver-token"}}),
    )
    .await;
    assert_eq!(ch.spec.secret.as_deref(), Some(app::model::SECRET_MASK), "write-only");

    let incident = declare(&app, json!({"title": "Checkout failing", "severity": "SEV3"})).await;
    patch_incident(&app, incident.id, json!({"severity": "SEV2", "summary": "not notified"})).await;
    patch_incident(&app, incident.id, json!({"status": "resolved"})).await;
    patch_incident(&app, incident.id, json!({"status": "investigating"})).await;
    let got = rx.wait_accepted("hook", 4).await;

    let events: Vec<&str> = got.iter().map(|r| r.body["event"].as_str().expect("event")).collect();
    assert_eq!(events, ["incident.opened", "incident.updated", "incident.resolved", "incident.opened"]);
    for r in &got {
        verify_signature(r, "s3cret");
        assert_eq!(r.body["version"], 1);
        assert_eq!(r.headers["authorization"], "Bearer receiver-token", "custom headers are sent");
        assert_eq!(r.headers["x-triage-event-id"].to_str().expect("ascii"), r.body["id"].as_str().expect("id"));
        assert_eq!(r.body["incident"]["id"], json!(incident.id));
        assert_eq!(r.body["url"], json!(app.url(&format!("/incidents/{}", incident.id))), "a link back");
    }
    assert_eq!(got[0].body["incident"]["severity"], "SEV3");
    assert_eq!(got[1].body["incident"]["changes"], json!(["severity SEV3 → SEV2"]), "the summary edit is not news");
    assert_eq!(got[3].body["incident"]["reopened"], true);
    let ids: std::collections::HashSet<&str> = got.iter().map(|r| r.body["id"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), 4, "one message per event");

    // Nothing more arrives: each (event, channel) is sent once.
    let log = settled_log(&app, ch.id).await;
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|d| d.state == DeliveryState::Delivered && d.attempts == 1), "{log:#?}");
    assert_eq!(rx.at("hook").len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn chat_formats_and_pagerduty_follow_the_incident() {
    let (addr, rx) = Receiver::start().await;
    let app = app_with(fast_settings()).await;
    for (kind, extra) in [
        ("slack", json!({})),
        ("discord", json!({})),
        ("teams", json!({})),
        ("ntfy", json!({"token": "tk_abc", "priority": 4})),
        ("pagerduty", json!({"routing_key": "R0UT1NG"})),
    ] {
        let mut body = json!({"name": kind, "kind": kind, "url": format!("http://{addr}/{kind}/topic-{kind}")});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        channel(&app, body).await;
    }
    let incident = declare(&app, json!({"title": "Payments <!channel> @everyone", "severity": "SEV1"})).await;
    let commander = crate::incidents::send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/users"),
        json!({"email": "ic@example.test", "password": "correct horse battery", "role": "commander"}),
    )
    .await;
    assert_eq!(commander.0, StatusCode::CREATED, "{}", commander.1);
    patch_incident(&app, incident.id, json!({"commander": commander.1["id"]})).await;
    patch_incident(&app, incident.id, json!({"status": "resolved"})).await;

    let slack = rx.wait_accepted("slack/topic-slack", 3).await;
    let opened = &slack[0].body;
    assert!(opened["text"].as_str().expect("fallback text").contains("&lt;!channel&gt;"), "escaped: {opened}");
    assert_eq!(opened["blocks"][0]["type"], "header");
    assert!(opened["blocks"][2]["elements"][0]["text"].as_str().expect("context").contains("|Open in Triage>"));

    let discord = rx.wait_accepted("discord/topic-discord", 3).await;
    let embed = &discord[0].body["embeds"][0];
    assert_eq!(discord[0].body["allowed_mentions"], json!({"parse": []}), "no pings");
    assert!(embed["title"].as_str().expect("title").contains("\\@everyone"), "{embed}");
    assert_eq!(embed["url"], json!(app.url(&format!("/incidents/{}", incident.id))));

    let teams = rx.wait_accepted("teams/topic-teams", 3).await;
    let card = &teams[0].body["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(card["content"]["actions"][0]["type"], "Action.OpenUrl");

    let ntfy = rx.wait_accepted("ntfy/", 3).await;
    assert_eq!(ntfy[0].body["topic"], "topic-ntfy", "posted to the server root with the topic in the body");
    assert_eq!(ntfy[0].body["priority"], 4);
    assert_eq!(ntfy[0].headers["authorization"], "Bearer tk_abc");
    assert_eq!(ntfy[2].body["priority"], 3, "a resolution is not urgent");

    let pd = rx.wait_accepted("pagerduty/topic-pagerduty", 3).await;
    let actions: Vec<&str> = pd.iter().map(|r| r.body["event_action"].as_str().expect("action")).collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"], "PagerDuty's incident follows Triage's");
    let keys: std::collections::HashSet<&str> = pd.iter().map(|r| r.body["dedup_key"].as_str().expect("key")).collect();
    assert_eq!(keys.len(), 1, "one dedup key per incident");
    assert_eq!(pd[0].body["routing_key"], "R0UT1NG");
    assert_eq!(pd[0].body["payload"]["severity"], "critical");
    app.stop().await;
}

#[tokio::test]
async fn failing_throttling_and_hanging_receivers_each_get_the_message_exactly_once() {
    let (addr, rx) = Receiver::start().await;
    rx.script("fails", vec![Reply::Status(500), Reply::Status(502), Reply::Status(503)]);
    rx.script("throttles", vec![Reply::Throttle(1)]);
    rx.script("hangs", vec![Reply::Hang]);
    rx.script("refuses", vec![Reply::Status(404)]);
    let app = app_with(fast_settings()).await;
    let mut ids = HashMap::new();
    for path in ["fails", "throttles", "hangs", "refuses"] {
        let c = channel(&app, json!({"name": path, "kind": "webhook", "url": format!("http://{addr}/{path}")})).await;
        ids.insert(path, c.id);
    }
    declare(&app, json!({"title": "Something broke", "severity": "SEV2"})).await;
    for path in ["fails", "throttles", "hangs"] {
        let got = rx.wait_accepted(path, 1).await;
        assert_eq!(got.len(), 1, "{path}: accepted once");
    }
    let fails = rx.at("fails");
    assert_eq!(fails.len(), 4, "three failures, then the success");
    assert!(fails.windows(2).all(|w| w[0].body["id"] == w[1].body["id"]), "every retry carries the same event id");
    let throttled = rx.at("throttles");
    assert_eq!(throttled.len(), 2);
    let waited = throttled[1].at - throttled[0].at;
    assert!(waited >= Duration::from_millis(950), "Retry-After: 1 was honoured ({waited:?})");

    // The log says what happened; the refused one is failed for good, not retried.
    let log = |path: &'static str| settled_log(&app, ids[path]);
    let f = log("fails").await;
    assert_eq!((f[0].state, f[0].attempts), (DeliveryState::Delivered, 4), "{f:#?}");
    let h = log("hangs").await;
    assert_eq!((h[0].state, h[0].attempts), (DeliveryState::Delivered, 2), "{h:#?}");
    let r = log("refuses").await;
    assert_eq!((r[0].state, r[0].attempts), (DeliveryState::Failed, 1), "{r:#?}");
    assert!(r[0].last_answer.as_deref().is_some_and(|a| a.starts_with("HTTP 404")), "{r:#?}");
    assert_eq!(rx.at("refuses").len(), 1);
    let refused: Channel = app.get_json(&format!("/api/v1/channels/{}", ids["refuses"])).await;
    assert!(refused.health.failing_since.is_some() && refused.health.failed == 1, "{:?}", refused.health);
    app.stop().await;
}

#[tokio::test]
async fn rules_route_by_tag_and_severity() {
    let (addr, rx) = Receiver::start().await;
    let app = app_with(fast_settings()).await;
    let rules: Vec<Rule> = app.get_json("/api/v1/notification-rules").await;
    assert_eq!(rules.len(), 1, "a new instance has the default rule");
    assert!(rules[0].spec.all_channels);
    let (status, _) = send(
        &app.client,
        reqwest::Method::DELETE,
        app.url(&format!("/api/v1/notification-rules/{}", rules[0].id)),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let payments =
        channel(&app, json!({"name": "payments", "kind": "webhook", "url": format!("http://{addr}/payments")})).await;
    let all =
        channel(&app, json!({"name": "everything", "kind": "webhook", "url": format!("http://{addr}/all")})).await;
    let svc = |name: &str, tags: Value| {
        let app = &app;
        let body = json!({"name": name, "tags": tags});
        async move {
            let (status, v) = send(&app.client, reqwest::Method::POST, app.url("/api/v1/services"), body).await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
            v["id"].as_str().expect("id").to_string()
        }
    };
    let pay = svc("pay-api", json!(["payments"])).await;
    let web = svc("web", json!(["frontend"])).await;
    let (status, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/notification-rules"),
        json!({"name": "payments pages", "events": ["incident.opened"], "tags": ["payments"], "min_severity": "SEV2",
               "channels": [payments.id]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/notification-rules"),
        json!({"name": "everything", "events": ["incident.opened"], "all_channels": false, "channels": [all.id]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/notification-rules"),
        json!({"name": "bad", "events": ["incident.opened"], "channels": [uuid::Uuid::new_v4()]}),
    )
    .await;
    assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("channels")), "{v}");

    declare(&app, json!({"title": "pay sev1", "severity": "SEV1", "services": [pay]})).await;
    declare(&app, json!({"title": "pay sev3", "severity": "SEV3", "services": [pay]})).await;
    declare(&app, json!({"title": "web sev1", "severity": "SEV1", "services": [web]})).await;
    let everything = rx.wait_accepted("all", 3).await;
    assert_eq!(everything.len(), 3);
    // Routing of all three is done once the catch-all channel has them; the other got only one.
    let routed: i64 = sqlx::query_scalar("select count(*) from notification_events where routed_at is not null")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(routed, 3);
    let paged = rx.wait_accepted("payments", 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while tokio::time::Instant::now() < deadline && rx.at("payments").len() == 1 {
        tokio::task::yield_now().await;
    }
    assert_eq!(rx.at("payments").len(), 1, "only the SEV1 of a payments-tagged service");
    assert_eq!(paged[0].body["incident"]["title"], "pay sev1");
    app.stop().await;
}

#[tokio::test]
async fn a_flapping_probe_is_grouped_and_every_change_is_accounted_for() {
    let (target, status) = health_target(200).await;
    let (addr, rx) = Receiver::start().await;
    let mut settings = fast_settings();
    settings.notify.flap_window = Duration::from_secs(3);
    let app = app_with(settings).await;
    let ch = channel(&app, json!({"name": "probes", "kind": "webhook", "url": format!("http://{addr}/probes")})).await;
    let (code, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/notification-rules"),
        json!({"name": "probe states", "events": ["probe.down", "probe.up"], "channels": [ch.id]}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let (code, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/probes"),
        json!({"name": "flappy", "service": "flaps", "kind": "http", "url": format!("http://{target}/health"),
               "interval_secs": 1, "timeout_ms": 500, "failures_to_down": 1, "successes_to_up": 1,
               "incidents": {"auto_open": false}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let probe: uuid::Uuid = v["id"].as_str().expect("id").parse().expect("uuid");

    // Flap for about three windows: the target changes its answer before every check.
    let flapping_until = Instant::now() + Duration::from_secs(9);
    let mut bad = false;
    while Instant::now() < flapping_until {
        bad = !bad;
        status.store(if bad { 503 } else { 200 }, Ordering::SeqCst);
        let mut events = app.state.hub.subscribe();
        crate::common::wait_events(&mut events, 1, Duration::from_secs(10), crate::common::result_of(probe)).await;
    }
    status.store(200, Ordering::SeqCst);
    // Every change becomes an event; wait until all are routed and nothing is held any more.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let changes: i64 = loop {
        let (events, waiting): (i64, i64) = sqlx::query_as(
            "select (select count(*) from notification_events where kind like 'probe.%'),
                    (select count(*) from notification_events where routed_at is null)
                  + (select count(*) from notification_deliveries where state = 'pending')",
        )
        .fetch_one(&app.pool)
        .await
        .expect("counts");
        let handled: bool =
            sqlx::query_scalar("select coalesce(bool_and(handled_at is not null), true) from state_changes")
                .fetch_one(&app.pool)
                .await
                .expect("handled");
        if waiting == 0 && handled && events > 0 {
            break events;
        }
        assert!(tokio::time::Instant::now() < deadline, "the outbox drains");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let got = rx.accepted("probes");
    assert!(changes >= 6, "the target flapped: {changes} changes");
    assert!((got.len() as i64) < changes, "{} messages for {changes} changes", got.len());
    let covered: i64 = got.iter().map(|r| r.body["covers"].as_i64().unwrap_or(1)).sum();
    assert_eq!(
        covered,
        changes,
        "every change is in exactly one message: {:#?}",
        got.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert!(got.iter().skip(1).any(|r| r.body["covers"].as_i64().is_some_and(|c| c > 1)), "a summary says how many");
    // At most two messages in any one window.
    for (i, first) in got.iter().enumerate() {
        let within = got[i..].iter().filter(|r| r.at - first.at < Duration::from_millis(2900)).count();
        assert!(within <= 2, "{within} messages within one window");
    }
    app.stop().await;
}

#[tokio::test]
async fn channel_secrets_are_write_only_and_bad_fields_are_named() {
    let (addr, rx) = Receiver::start().await;
    let app = app_with(fast_settings()).await;
    let slack =
        channel(&app, json!({"name": "chat", "kind": "slack", "url": format!("http://{addr}/services/T0/B0/XYZ")}))
            .await;
    assert_eq!(slack.spec.url, Some(format!("http://{addr}/••••••••")), "a chat webhook's URL is its token");
    let listed: Value = app.get_json("/api/v1/channels").await;
    assert!(!listed.to_string().contains("XYZ"), "{listed:?}");

    // Sent back as read (masked), the stored URL is kept, and "Send test" reaches it.
    let mut back = serde_json::to_value(&slack).expect("json");
    back["name"] = json!("chat room");
    let (status, v) =
        send(&app.client, reqwest::Method::PUT, app.url(&format!("/api/v1/channels/{}", slack.id)), back).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let res = app.client.post(app.url(&format!("/api/v1/channels/{}/test", slack.id))).send().await.expect("test");
    assert_eq!(res.status(), StatusCode::OK);
    let tested: Delivery = res.json().await.expect("delivery");
    assert_eq!(tested.state, DeliveryState::Delivered, "{tested:?}");
    assert_eq!(rx.at("services/T0/B0/XYZ").len(), 1);

    for (body, field) in [
        (json!({"name": "x", "kind": "slack", "url": "http://127.0.0.1:1/x", "secret": "s"}), "secret"),
        (json!({"name": "x", "kind": "webhook", "url": "ftp://h/x"}), "url"),
        (json!({"name": "x", "kind": "email", "host": "localhost", "from": "ops@example.test"}), "to"),
        (json!({"name": "x", "kind": "pagerduty"}), "routing_key"),
        (json!({"name": "x", "kind": "fax"}), "kind"),
        (json!({"name": "chat room", "kind": "webhook", "url": "http://127.0.0.1:1/x"}), "name"),
    ] {
        let (status, v) = send(&app.client, reqwest::Method::POST, app.url("/api/v1/channels"), body.clone()).await;
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::CONFLICT, "{body}: {status} {v}");
        assert_eq!(v["field"].as_str(), Some(field), "{body}: {v}");
    }

    // An internal address nobody allowed is refused like a probe's, and the test says why.
    let mut strict = fast_settings();
    strict.probes.allow.clear();
    let guarded = app_with(strict).await;
    let c =
        channel(&guarded, json!({"name": "inside", "kind": "webhook", "url": format!("http://{addr}/inside")})).await;
    let res = guarded.client.post(guarded.url(&format!("/api/v1/channels/{}/test", c.id))).send().await.expect("test");
    let tested: Delivery = res.json().await.expect("delivery");
    assert_eq!(tested.state, DeliveryState::Failed);
    assert!(tested.last_answer.as_deref().is_some_and(|a| a.contains("allowlist")), "{tested:?}");
    assert!(rx.at("inside").is_empty(), "nothing was sent");

    // Only admins see or change channels.
    let viewer = app.browser_of(app::model::Role::Commander).await;
    let res = viewer.get(app.url("/api/v1/channels")).send().await.expect("list");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    guarded.stop().await;
    app.stop().await;
}

/// A small SMTP server: enough of the protocol for a real client (EHLO, STARTTLS, AUTH PLAIN,
/// MAIL, RCPT, DATA, QUIT); it keeps each message with the credentials it was sent with.
#[derive(Clone, Default)]
struct SmtpSink {
    messages: Arc<Mutex<Vec<(String, String)>>>,
    arrived: Arc<tokio::sync::Notify>,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl SmtpSink {
    async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> (SocketAddr, SmtpSink) {
        let sink = SmtpSink::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (s, tls) = (s.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = s.converse(Box::new(socket), tls).await;
                });
            }
        });
        (addr, sink)
    }

    async fn converse(&self, stream: Box<dyn Stream>, tls: Option<tokio_rustls::TlsAcceptor>) -> std::io::Result<()> {
        let mut io = BufReader::new(stream);
        io.write_all(b"220 sink ESMTP\r\n").await?;
        let mut auth = String::new();
        let mut upgraded = false;
        loop {
            let mut line = String::new();
            if io.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let cmd = line.trim_end().to_string();
            let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" | "HELO" => {
                    let starttls = if tls.is_some() && !upgraded { "250-STARTTLS\r\n" } else { "" };
                    io.write_all(format!("250-sink\r\n{starttls}250-AUTH PLAIN\r\n250 8BITMIME\r\n").as_bytes())
                        .await?;
                }
                "STARTTLS" => {
                    io.write_all(b"220 go ahead\r\n").await?;
                    let acceptor = tls.clone().expect("tls offered");
                    let inner = io.into_inner();
                    let secured = acceptor.accept(inner).await?;
                    io = BufReader::new(Box::new(secured));
                    upgraded = true;
                }
                "AUTH" => {
                    use base64::Engine as _;
                    let b64 = cmd.split(' ').nth(2).unwrap_or("");
                    let raw = base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
                    auth = String::from_utf8_lossy(&raw).replace('\0', "|");
                    io.write_all(b"235 ok\r\n").await?;
                }
                "MAIL" | "RCPT" | "RSET" | "NOOP" => io.write_all(b"250 ok\r\n").await?,
                "DATA" => {
                    io.write_all(b"354 go on\r\n").await?;
                    let mut data = String::new();
                    loop {
                        let mut l = String::new();
                        if io.read_line(&mut l).await? == 0 {
                            return Ok(());
                        }
                        if l == ".\r\n" {
                            break;
                        }
                        data.push_str(&l);
                    }
                    self.messages.lock().expect("lock").push((format!("{auth};tls={upgraded}"), data));
                    self.arrived.notify_waiters();
                    io.write_all(b"250 queued\r\n").await?;
                }
                "QUIT" => {
                    io.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => io.write_all(b"502 unknown\r\n").await?,
            }
        }
    }

    async fn wait(&self, n: usize) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.arrived.notified();
            let got = self.messages.lock().expect("lock").clone();
            if got.len() >= n {
                return got;
            }
            assert!(tokio::time::timeout_at(deadline, notified).await.is_ok(), "{} of {n} emails", got.len());
        }
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params").self_signed(&key).expect("cert");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .expect("config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn email_goes_over_a_real_smtp_conversation_plain_and_with_starttls() {
    let (plain_addr, plain) = SmtpSink::start(None).await;
    let (tls_addr, secured) = SmtpSink::start(Some(tls_acceptor())).await;
    let app = app_with(fast_settings()).await;
    channel(
        &app,
        json!({"name": "mail relay", "kind": "email", "host": "127.0.0.1", "port": plain_addr.port(),
               "security": "none", "from": "Triage <triage@example.test>", "to": ["oncall@example.test"]}),
    )
    .await;
    let c = channel(
        &app,
        json!({"name": "mail tls", "kind": "email", "host": "localhost", "port": tls_addr.port(),
               "security": "starttls", "username": "triage", "password": "mail-pass", "accept_invalid_certs": true,
               "from": "triage@example.test", "to": ["a@example.test", "b@example.test"]}),
    )
    .await;
    assert_eq!(c.spec.password.as_deref(), Some(app::model::SECRET_MASK));
    let incident = declare(&app, json!({"title": "Mail <b>check</b>", "severity": "SEV2"})).await;

    let got = plain.wait(1).await;
    let (auth, data) = &got[0];
    assert!(auth.ends_with("tls=false"));
    assert!(data.contains("Subject: [Triage] Incident opened [SEV2]"), "{data}");
    assert!(
        data.contains("multipart/alternative") && data.contains("text/plain") && data.contains("text/html"),
        "{data}"
    );
    assert!(data.contains("&lt;b&gt;check&lt;/b&gt;"), "the HTML part escapes: {data}");
    assert!(data.contains(&incident.id.to_string()), "links to the incident");
    assert!(data.contains("Message-ID: <"), "{data}");

    let got = secured.wait(1).await;
    let (auth, data) = &got[0];
    assert_eq!(auth, "|triage|mail-pass;tls=true", "authenticated only after STARTTLS");
    assert!(data.contains("To: a@example.test, b@example.test"), "{data}");
    app.stop().await;
}

#[tokio::test]
async fn failing_channels_certificates_postmortems_and_overdue_items_are_announced_once() {
    let (addr, rx) = Receiver::start().await;
    rx.script("broken", vec![Reply::Status(500); 200]);
    let (tls_addr, pem) = crate::probe_tls::tls_target(5).await;
    let mut settings = fast_settings();
    settings.notify.failing_after = Duration::from_millis(300);
    settings.notify.housekeeping = Duration::from_millis(100);
    settings.notify.scan_every = Duration::from_millis(200);
    settings.notify.max_attempts = 100;
    let app = app_with(settings).await;
    let broken =
        channel(&app, json!({"name": "broken", "kind": "webhook", "url": format!("http://{addr}/broken")})).await;
    let ok = channel(&app, json!({"name": "ok", "kind": "webhook", "url": format!("http://{addr}/ok")})).await;
    let (code, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/notification-rules"),
        json!({"name": "the rest", "events": ["certificate.expiring", "postmortem.published", "action_item.overdue"],
               "channels": [ok.id]}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");

    // The broken channel keeps failing the incident message: the other one is told, once.
    let incident = declare(&app, json!({"title": "Cache down", "severity": "SEV2"})).await;
    let told = loop {
        let got = rx.wait_accepted("ok", 1).await;
        if let Some(m) = got.iter().find(|r| r.body["event"] == "channel.failing") {
            break m.clone();
        }
        rx.wait_accepted("ok", got.len() + 1).await;
    };
    assert_eq!(told.body["subject"]["id"], json!(broken.id));
    assert!(told.body["summary"].as_str().expect("summary").contains("HTTP 500"), "{}", told.body);

    // A certificate 5 days from expiry, seen by a probe.
    let (code, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/probes"),
        json!({"name": "tls", "service": "secure", "kind": "http", "url": format!("https://localhost:{}/", tls_addr.port()),
               "interval_secs": 1, "timeout_ms": 900, "tls": {"ca_pem": pem}}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let cert = loop {
        let got = rx.wait_accepted("ok", 1).await;
        if let Some(m) = got.iter().find(|r| r.body["event"] == "certificate.expiring") {
            break m.clone();
        }
        rx.wait_accepted("ok", got.len() + 1).await;
    };
    assert!(cert.body["summary"].as_str().expect("summary").contains("expires in"), "{}", cert.body);

    // A published postmortem whose action item is past due.
    patch_incident(&app, incident.id, json!({"status": "resolved"})).await;
    let (code, pm) = send(
        &app.client,
        reqwest::Method::POST,
        app.url(&format!("/api/v1/incidents/{}/postmortem", incident.id)),
        Value::Null,
    )
    .await;
    assert!(code.is_success(), "{pm}");
    let pm_url = app.url(&format!("/api/v1/postmortems/{}", pm["id"].as_str().expect("id")));
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
    for body in [
        json!({"action_items": [{"title": "Add a cache alert", "owner": "ana", "due": yesterday}], "status": "in_review"}),
        json!({"status": "published"}),
    ] {
        let (code, v) = send(&app.client, reqwest::Method::PATCH, pm_url.clone(), body).await;
        assert_eq!(code, StatusCode::OK, "{v}");
    }
    for event in ["postmortem.published", "action_item.overdue"] {
        loop {
            let got = rx.wait_accepted("ok", 1).await;
            if got.iter().any(|r| r.body["event"] == event) {
                break;
            }
            rx.wait_accepted("ok", got.len() + 1).await;
        }
    }
    // Scanning again (as every replica does, every few minutes) announces nothing twice.
    for _ in 0..2 {
        app.state.notifier.outbox.scan().await.expect("scan");
    }
    let raised: Vec<(String, i64)> =
        sqlx::query_as("select kind, count(*) from notification_events group by kind order by kind")
            .fetch_all(&app.pool)
            .await
            .expect("events");
    for (kind, n) in &raised {
        assert_eq!(*n, 1, "{kind} raised once: {raised:?}");
    }
    let got = rx.accepted("ok");
    for event in ["channel.failing", "certificate.expiring", "postmortem.published", "action_item.overdue"] {
        assert_eq!(got.iter().filter(|r| r.body["event"] == event).count(), 1, "{event} once");
    }
    let to_broken: i64 = sqlx::query_scalar(
        "select count(*) from notification_deliveries d join notification_events e using (event_id)
          where e.kind = 'channel.failing' and d.channel_id = $1",
    )
    .bind(broken.id)
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(to_broken, 0, "a failing channel is not told about itself");
    app.stop().await;
}

#[tokio::test]
async fn a_maintenance_window_keeps_an_outage_quiet_until_it_ends() {
    let (target, status) = health_target(503).await;
    let (addr, rx) = Receiver::start().await;
    let app = app_with(fast_settings()).await;
    let ch = channel(&app, json!({"name": "pager", "kind": "webhook", "url": format!("http://{addr}/pager")})).await;
    let (code, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/notification-rules"),
        json!({"name": "probes", "events": ["probe.down", "probe.up"], "channels": [ch.id]}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let (code, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/services"),
        json!({"name": "db", "tags": ["database"]}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let now = chrono::Utc::now();
    let (code, window) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/maintenance"),
        json!({"title": "DB upgrade", "tags": ["database"], "starts_at": now - chrono::Duration::minutes(1),
               "ends_at": now + chrono::Duration::hours(1)}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{window}");
    assert_eq!(window["active"], true);
    let (code, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/maintenance"),
        json!({"title": "x", "tags": ["database"], "starts_at": now, "ends_at": now - chrono::Duration::hours(1)}),
    )
    .await;
    assert_eq!((code, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("ends_at")), "{v}");

    // The outage happens during the window: probes run and store, nothing opens or notifies.
    let (code, v) = send(
        &app.client,
        reqwest::Method::POST,
        app.url("/api/v1/probes"),
        json!({"name": "db-health", "service": "db", "kind": "http", "url": format!("http://{target}/health"),
               "interval_secs": 1, "timeout_ms": 500, "failures_to_down": 1, "successes_to_up": 1}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let suppressed = loop {
        let log: Vec<Delivery> = app.get_json(&format!("/api/v1/channels/{}/deliveries", ch.id)).await;
        if let Some(d) = log.into_iter().find(|d| d.state == DeliveryState::Suppressed) {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "the probe's fall is recorded as suppressed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(suppressed.last_answer.as_deref().is_some_and(|a| a.contains("DB upgrade")), "{suppressed:?}");
    let incidents: Vec<Incident> = app.get_json("/api/v1/incidents").await;
    assert!(incidents.is_empty(), "no incident during maintenance: {incidents:?}");
    assert!(rx.at("pager").is_empty(), "nothing sent");

    // Ended early while the probe is still down: the incident opens, and is notified.
    let id = window["id"].as_str().expect("id");
    let (code, ended) =
        send(&app.client, reqwest::Method::POST, app.url(&format!("/api/v1/maintenance/{id}/end")), Value::Null).await;
    assert_eq!(code, StatusCode::OK, "{ended}");
    assert_eq!(ended["active"], false);
    let opened = rx.wait_accepted("pager", 1).await;
    assert_eq!(opened[0].body["event"], "incident.opened", "{}", opened[0].body);
    assert_eq!(opened[0].body["service"]["name"], "db");
    let incidents: Vec<Incident> = app.get_json("/api/v1/incidents").await;
    assert_eq!(incidents.len(), 1);
    let started = incidents[0].times.started.as_ref().expect("started").at;
    assert!(
        started < chrono::DateTime::parse_from_rfc3339(ended["ended_at"].as_str().expect("ended_at")).expect("time"),
        "from the outage's real start"
    );
    status.store(200, Ordering::SeqCst);
    app.stop().await;
}

#[tokio::test]
async fn the_probe_file_declares_rules_and_maintenance_by_name() {
    use server::monitor::probe_file::parse;
    use server::respond::declared::{apply_with_diff, export};
    let app = app_with(fast_settings()).await;
    channel(&app, json!({"name": "Ops", "kind": "webhook", "url": "http://127.0.0.1:9/ops"})).await;
    let text = r#"
[[service]]
name = "shop"
tags = ["db"]

[[notification_rule]]
name = "shop pages"
events = ["incident.opened", "probe.down"]
services = ["shop"]
min_severity = "SEV2"
channels = ["ops"]

[[maintenance]]
title = "Sunday DB upgrade"
tags = ["db"]
starts_at = "2026-12-13T01:00:00Z"
ends_at = "2026-12-13T03:00:00Z"
recurrence = { every = "week", time_zone = "Europe/Berlin" }
"#;
    let file = parse(text).expect("parses");
    let dry = apply_with_diff(&app.pool, Some(&app.state.scheduler), &file, true).await.expect("dry run");
    assert_eq!(
        (dry.rules_added.clone(), dry.maintenance_added.clone()),
        (vec!["shop pages".to_string()], vec!["Sunday DB upgrade".to_string()])
    );
    let rules: Vec<Rule> = app.get_json("/api/v1/notification-rules").await;
    assert_eq!(rules.len(), 1, "a dry run writes nothing");

    let applied = apply_with_diff(&app.pool, Some(&app.state.scheduler), &file, false).await.expect("applied");
    assert_eq!(applied.rules_added, ["shop pages"]);
    let rules: Vec<Rule> = app.get_json("/api/v1/notification-rules").await;
    let rule = rules.iter().find(|r| r.spec.name == "shop pages").expect("the file's rule");
    assert_eq!(rule.spec.channels.len(), 1);
    assert_eq!(rule.spec.services.len(), 1, "the service the same file created");
    let windows: Vec<app::model::MaintenanceWindow> = app.get_json("/api/v1/maintenance").await;
    assert_eq!(windows.len(), 1);
    assert!(windows[0].current.is_some(), "a weekly window always has a next occurrence");

    let again = apply_with_diff(&app.pool, Some(&app.state.scheduler), &file, false).await.expect("again");
    assert!(again.is_empty(), "nothing changes twice: {again:?}");
    let exported = export(&app.pool).await.expect("export");
    assert!(exported.rules.iter().any(|r| r.name == "shop pages" && r.channels == ["Ops"]), "{exported:?}");

    // A rule naming a channel that does not exist refuses the whole file, before anything changes.
    let bad = parse(
        &text.replace("channels = [\"ops\"]", "channels = [\"pager\"]").replace("name = \"shop\"", "name = \"shop2\""),
    )
    .expect("parses");
    let err = apply_with_diff(&app.pool, Some(&app.state.scheduler), &bad, false).await.expect_err("refused");
    assert!(err.to_string().contains("pager"), "{err}");
    let services: Vec<app::model::Service> = app.get_json("/api/v1/services").await;
    assert!(!services.iter().any(|s| s.name == "shop2"), "nothing was written");

    // Dropped from the file: the file's rule and window go; the default rule stays.
    let only_service = parse("[[service]]\nname = \"shop\"\ntags = [\"db\"]\n").expect("parses");
    let d = apply_with_diff(&app.pool, Some(&app.state.scheduler), &only_service, false).await.expect("applied");
    assert_eq!(
        (d.rules_removed, d.maintenance_removed),
        (vec!["shop pages".to_string()], vec!["Sunday DB upgrade".to_string()])
    );
    let rules: Vec<Rule> = app.get_json("/api/v1/notification-rules").await;
    assert_eq!(rules.len(), 1);
    app.stop().await;
}

/// The channel's delivery whose first attempt failed and whose retry waits.
async fn retry_waiting(app: &TestApp, channel: uuid::Uuid) -> Delivery {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let log: Vec<Delivery> = app.get_json(&format!("/api/v1/channels/{channel}/deliveries")).await;
        if let Some(d) = log.iter().find(|d| d.state == DeliveryState::Pending && d.last_answer.is_some()) {
            return d.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "the first attempt failed and a retry waits: {log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn disabling_a_channel_drops_what_waits_and_old_logs_are_trimmed() {
    let (addr, rx) = Receiver::start().await;
    rx.script("down", vec![Reply::Status(503); 100]);
    let mut settings = fast_settings();
    settings.notify.backoff = Duration::from_secs(30);
    let app = app_with(settings).await;
    let ch = channel(&app, json!({"name": "flaky", "kind": "webhook", "url": format!("http://{addr}/down")})).await;
    declare(&app, json!({"title": "Queue stuck", "severity": "SEV3"})).await;
    let waiting = retry_waiting(&app, ch.id).await;
    assert_eq!(waiting.attempts, 1);
    let mut off = serde_json::to_value(&ch).expect("json");
    off["enabled"] = json!(false);
    let (status, v) =
        send(&app.client, reqwest::Method::PUT, app.url(&format!("/api/v1/channels/{}", ch.id)), off).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let log = settled_log(&app, ch.id).await;
    assert_eq!(log[0].state, DeliveryState::Failed);
    assert!(log[0].last_answer.as_deref().is_some_and(|a| a.contains("disabled")), "{log:?}");
    assert_eq!(rx.at("down").len(), 1, "nothing more is sent");

    let removed = server::storage::notify::prune_events(&app.pool, chrono::Utc::now() + chrono::Duration::days(1))
        .await
        .expect("prune");
    assert_eq!(removed, 1);
    let log: Vec<Delivery> = app.get_json(&format!("/api/v1/channels/{}/deliveries", ch.id)).await;
    assert!(log.is_empty());
    app.stop().await;
}

/// How many sessions of this test's database wait for a lock.
async fn lock_waiters(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
    )
    .fetch_one(pool)
    .await
    .expect("pg_stat_activity")
}

async fn until_lock_waiters(pool: &sqlx::PgPool, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while lock_waiters(pool).await < n {
        assert!(tokio::time::Instant::now() < deadline, "{n} sessions never waited for a lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An admin deletes a channel just as a sender records an attempt's answer. Both used to take the
/// channel and the delivery in opposite orders, and PostgreSQL broke the deadlock by failing one:
/// the admin saw a 500. The test holds the delivery so both are waiting at once, then lets go.
#[tokio::test]
async fn deleting_a_channel_while_an_answer_is_recorded_finishes_both() {
    use server::storage::notify::{Attempt, record_attempt};
    let (addr, rx) = Receiver::start().await;
    rx.script("down", vec![Reply::Status(503); 100]);
    let mut settings = fast_settings();
    settings.notify.backoff = Duration::from_secs(30);
    let app = app_with(settings).await;
    let ch = channel(&app, json!({"name": "going", "kind": "webhook", "url": format!("http://{addr}/down")})).await;
    declare(&app, json!({"title": "Queue stuck", "severity": "SEV3"})).await;
    let waiting = retry_waiting(&app, ch.id).await;

    let mut holder = app.pool.begin().await.expect("begin");
    sqlx::query("select 1 from notification_deliveries where delivery_id = $1 for update")
        .bind(waiting.id)
        .execute(&mut *holder)
        .await
        .expect("hold the delivery");
    let pool = app.pool.clone();
    let recording = tokio::spawn(async move {
        let retry = Attempt::Retry { answer: "HTTP 503".into(), next_at: chrono::Utc::now() };
        record_attempt(&pool, waiting.id, waiting.channel_id, waiting.attempts, &retry).await
    });
    until_lock_waiters(&app.pool, 1).await;
    let (client, url) = (app.client.clone(), app.url(&format!("/api/v1/channels/{}", ch.id)));
    let deleting = tokio::spawn(async move { send(&client, reqwest::Method::DELETE, url, Value::Null).await });
    until_lock_waiters(&app.pool, 2).await;
    holder.commit().await.expect("let go");

    recording.await.expect("join").expect("the answer is recorded");
    let (status, body) = deleting.await.expect("join");
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let channels: Vec<Channel> = app.get_json("/api/v1/channels").await;
    assert!(channels.iter().all(|c| c.id != ch.id), "the channel is gone");
    app.stop().await;
}
