//! Remote agents as real `triage agent` processes against a real server on loopback: their
//! assignments, quorum over locations, the agents' list and revoke, idempotent batches, and an
//! agent cut off from the server that delivers everything it checked, once.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::model::{Agent, Incident, LocationState, Outcome, Probe, ProbeResult, Scope, TimelineEntry};
use axum::Router;
use axum::routing::get;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use server::monitor::hub::ProbeEvent;
use tokio::task::JoinHandle;

use crate::common::{Proc, TestApp, create_token, serve_target, spawn_app, wait_events};

/// A target that fails for the locations in the set (by the header agents add to their checks;
/// the server's own checks count as `local`).
async fn regional_target() -> (SocketAddr, Arc<Mutex<HashSet<String>>>) {
    let failing: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seen = failing.clone();
    let addr = serve_target(Router::new().route(
        "/health",
        get(move |headers: HeaderMap| {
            let from = headers.get("x-triage-location").and_then(|v| v.to_str().ok()).unwrap_or("local").to_string();
            let down = seen.lock().expect("lock").contains(&from);
            async move { if down { (StatusCode::SERVICE_UNAVAILABLE, "down here") } else { (StatusCode::OK, "ok") } }
        }),
    ))
    .await;
    (addr, failing)
}

async fn create_probe(app: &TestApp, target: SocketAddr, locations: &[&str]) -> Probe {
    let body = json!({
        "name": "regional", "service": "shop", "kind": "http",
        "url": format!("http://{target}/health"), "interval_secs": 1, "timeout_ms": 800,
        "failures_to_down": 2, "successes_to_up": 1, "locations": locations,
    });
    let res = app.client.post(app.url("/api/v1/probes")).json(&body).send().await.expect("create");
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.expect("probe")
}

fn result_from(probe: uuid::Uuid, location: &'static str) -> impl Fn(&ProbeEvent) -> bool {
    move |e| matches!(e, ProbeEvent::Result(r) if r.probe_id == probe && r.location.as_deref() == Some(location))
}

fn change_to(probe: uuid::Uuid, to: Outcome) -> impl Fn(&ProbeEvent) -> bool {
    move |e| matches!(e, ProbeEvent::StateChanged(c) if c.probe_id == probe && c.to == to)
}

async fn agents(app: &TestApp) -> Vec<Agent> {
    app.get_json("/api/v1/agents").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_and_the_server_judge_a_probe_by_quorum() {
    let app = spawn_app().await;
    let (target, failing) = regional_target().await;
    let token = create_token(&app.pool, Scope::Agent, "agents").await;
    let spools = tempfile::tempdir().expect("tempdir");
    let mut eu = Proc::agent(&app.url, &token, "eu-west", Some(&spools.path().join("eu")), &[]);
    let _us = Proc::agent(&app.url, &token, "us-east", Some(&spools.path().join("us")), &[]);
    let mut rx = app.state.hub.subscribe();
    let probe = create_probe(&app, target, &["local", "eu-west", "us-east"]).await;

    // Both agents receive the probe over their stream and check it.
    wait_events(&mut rx, 2, Duration::from_secs(30), result_from(probe.id, "eu-west")).await;
    wait_events(&mut rx, 2, Duration::from_secs(30), result_from(probe.id, "us-east")).await;
    let stored: Vec<ProbeResult> = app.get_json(&format!("/api/v1/probes/{}/results?limit=200", probe.id)).await;
    let located: HashSet<Option<String>> = stored.iter().map(|r| r.location.clone()).collect();
    assert!(located.contains(&None) && located.contains(&Some("eu-west".into())), "{located:?}");
    let raw: Value = app.get_json(&format!("/api/v1/probes/{}/results?limit=1", probe.id)).await;
    assert!(raw[0]["location"].is_string(), "every result names its location: {raw}");

    // Down from one location of three: degraded, named, and no incident.
    failing.lock().expect("lock").insert("eu-west".into());
    let degraded = wait_events(&mut rx, 1, Duration::from_secs(30), change_to(probe.id, Outcome::Degraded)).await;
    let ProbeEvent::StateChanged(change) = &degraded[0] else { unreachable!() };
    let note = change.quorum.clone().expect("a quorum note");
    assert_eq!((note.locations.clone(), note.of, note.quorum), (vec!["eu-west".to_string()], 3, 2));
    assert!(crate::incidents::wait_handled(&app, probe.id).await, "the engine handled the change");
    let open: Vec<Incident> = app.get_json("/api/v1/incidents").await;
    assert!(open.is_empty(), "one location down of three opens no incident: {open:?}");
    let table: Vec<LocationState> = app.get_json(&format!("/api/v1/probes/{}/locations", probe.id)).await;
    let state_of = |l: &str| table.iter().find(|s| s.location == l).and_then(|s| s.state);
    assert_eq!(state_of("eu-west"), Some(Outcome::Down));
    assert_eq!(state_of("us-east"), Some(Outcome::Up));
    assert_eq!(state_of("local"), Some(Outcome::Up));
    let overview = server::monitor::overview::overview(&app.pool).await.expect("overview");
    let tile = overview.services.iter().find(|t| t.id == probe.service_id).expect("the shop's tile");
    assert_eq!(tile.state, Some(Outcome::Degraded));
    assert_eq!(tile.locations.as_deref(), Some("down or degraded from 1 of 3 locations: eu-west"));

    // Down from two: down, one incident, naming both locations.
    failing.lock().expect("lock").insert("us-east".into());
    let down = wait_events(&mut rx, 1, Duration::from_secs(30), change_to(probe.id, Outcome::Down)).await;
    let ProbeEvent::StateChanged(change) = &down[0] else { unreachable!() };
    assert_eq!(change.quorum.as_ref().map(|q| q.locations.clone()), Some(vec!["eu-west".into(), "us-east".into()]));
    assert!(crate::incidents::wait_handled(&app, probe.id).await);
    let open: Vec<Incident> = app.get_json("/api/v1/incidents").await;
    assert_eq!(open.len(), 1, "{open:?}");
    let entries: Vec<TimelineEntry> = app.get_json(&format!("/api/v1/incidents/{}/timeline", open[0].id)).await;
    let text: String = entries.iter().map(|e| e.text.as_str()).collect::<Vec<_>>().join("\n");
    assert!(text.contains("down from 2 of 3 locations: eu-west, us-east"), "{text}");

    // The admin's list: both agents, their version, connected, and how far behind.
    let listed = agents(&app).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    for a in &listed {
        assert_eq!(a.version, env!("CARGO_PKG_VERSION"));
        assert!(a.connected && !a.revoked, "{a:?}");
        assert!(a.assigned == 1 && a.lag_ms >= 0 && a.lag_ms < 30_000 && a.buffered >= 0, "{a:?}");
    }
    let eu_agent = listed.iter().find(|a| a.location == "eu-west").expect("eu-west agent");

    // Revoked: its deliveries are refused from the next one, and the list says so.
    let res = app.client.post(app.url(&format!("/api/v1/agents/{}/revoke", eu_agent.id))).send().await.expect("revoke");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    eu.wait_for(|l| l.contains("refuses this agent's token"), Duration::from_secs(30)).expect("deliveries refused");
    let after = agents(&app).await;
    assert!(after.iter().any(|a| a.id == eu_agent.id && a.revoked));
    app.stop().await;
}

#[tokio::test]
async fn a_batch_delivered_twice_is_stored_once_and_foreign_tokens_are_refused() {
    let app = spawn_app().await;
    let (target, _) = regional_target().await;
    let probe = create_probe(&app, target, &["eu-west"]).await;
    let token = create_token(&app.pool, Scope::Agent, "agent").await;
    let other = create_token(&app.pool, Scope::Agent, "another agent").await;
    let push = create_token(&app.pool, Scope::Push, "a push token").await;
    let agent_id = uuid::Uuid::new_v4();
    let at = chrono::Utc::now();
    let batch = json!({
        "agent_id": agent_id, "location": "eu-west", "version": "test", "buffered": 0, "dropped": 3,
        "clock_offset_ms": 12,
        "results": (0..5).map(|i| json!({"seq": i, "result": {
            "probe_id": probe.id, "at": at - chrono::Duration::seconds(5 - i), "outcome": "up",
            "phases": {"total_us": 1000}, "response_bytes": 2, "request_id": format!("r{i}")}})).collect::<Vec<_>>(),
    });
    let post =
        |t: &str, body: &Value| app.anonymous.post(app.url("/api/v1/agent/results")).bearer_auth(t).json(body).send();
    let first: Value = post(&token, &batch).await.expect("post").json().await.expect("json");
    assert_eq!((first["stored"].as_u64(), first["duplicates"].as_u64()), (Some(5), Some(0)), "{first}");
    let again: Value = post(&token, &batch).await.expect("post").json().await.expect("json");
    assert_eq!((again["stored"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(5)), "{again}");
    let stored: Vec<ProbeResult> = app.get_json(&format!("/api/v1/probes/{}/results?limit=100", probe.id)).await;
    assert_eq!(stored.len(), 5);
    assert!(stored.iter().all(|r| r.location.as_deref() == Some("eu-west")));

    // Another token may not report as this agent; a push token is no agent token.
    assert_eq!(post(&other, &batch).await.expect("post").status(), StatusCode::FORBIDDEN);
    assert_eq!(post(&push, &batch).await.expect("post").status(), StatusCode::FORBIDDEN);
    // A location the probe does not run from is acknowledged and ignored (it must not block a spool).
    let mut elsewhere = batch.clone();
    elsewhere["location"] = json!("ap-south");
    elsewhere["agent_id"] = json!(uuid::Uuid::new_v4());
    let answer: Value = post(&token, &elsewhere).await.expect("post").json().await.expect("json");
    assert_eq!(answer["ignored"].as_u64(), Some(5), "{answer}");
    // Bad input names its field.
    let mut bad = batch.clone();
    bad["location"] = json!("Not A Location");
    let res = post(&token, &bad).await.expect("post");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.expect("json")["field"], "location");

    let listed = agents(&app).await;
    let me = listed.iter().find(|a| a.id == agent_id).expect("listed");
    assert_eq!((me.dropped, me.clock_offset_ms, me.version.as_str()), (3, 12, "test"));
    assert!(me.lag_ms >= 1_000, "the oldest result of the last batch was seconds old: {me:?}");
    app.stop().await;
}

/// A TCP relay in front of the server that can be cut (connections dropped, the port closed)
/// and restored on the same port: the agent's server address becomes unreachable for real.
struct Relay {
    port: u16,
    upstream: SocketAddr,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let mut relay = Relay { port: 0, upstream, accept: None, conns: Arc::default() };
        relay.restore().await;
        relay
    }

    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.expect("bind relay");
        self.port = listener.local_addr().expect("addr").port();
        let (upstream, conns) = (self.upstream, self.conns.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                conns.lock().expect("lock").push(conn);
            }
        }));
    }

    fn cut(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for conn in self.conns.lock().expect("lock").drain(..) {
            conn.abort();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// How long the agent is cut off (`TRIAGE_CUT_SECS`; the fault run in docs/benchmarks.md uses 60).
fn cut_for() -> Duration {
    Duration::from_secs(std::env::var("TRIAGE_CUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(6))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cut_off_from_the_server_delivers_every_result_once() {
    let app = spawn_app().await;
    let (target, _) = regional_target().await;
    let mut relay = Relay::start(app.addr).await;
    let token = create_token(&app.pool, Scope::Agent, "agent").await;
    let spool = tempfile::tempdir().expect("tempdir");
    let mut rx = app.state.hub.subscribe();
    let probe = create_probe(&app, target, &["eu-west"]).await;
    let mut agent = Proc::agent(&relay.url(), &token, "eu-west", Some(spool.path()), &[]);
    wait_events(&mut rx, 3, Duration::from_secs(30), result_from(probe.id, "eu-west")).await;

    // The cut is the fault's own length, not a wait for something to happen.
    relay.cut();
    let cut_at = chrono::Utc::now();
    agent.wait_for(|l| l.contains("cannot deliver results"), Duration::from_secs(30)).expect("the agent notices");
    tokio::time::sleep(cut_for()).await;
    relay.restore().await;
    let restored_at = chrono::Utc::now();

    // Delivered oldest first: a result checked after the cut ended arrives after all before it.
    let late = move |e: &ProbeEvent| matches!(e, ProbeEvent::Result(r) if r.probe_id == probe.id && r.location.is_some() && r.at > restored_at);
    wait_events(&mut rx, 1, Duration::from_secs(90), late).await;
    let drained = chrono::Utc::now() - restored_at;
    let status = agent.terminate();
    assert!(status.success(), "the agent stops cleanly: {status:?}");

    let rows: Vec<(chrono::DateTime<chrono::Utc>, String)> =
        sqlx::query_as("select at, request_id from results where probe_id = $1 and location = 'eu-west' order by at")
            .bind(probe.id)
            .fetch_all(&app.pool)
            .await
            .expect("results");
    let ids: HashSet<&str> = rows.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "no result stored twice");
    assert!(rows.first().is_some_and(|(at, _)| *at < cut_at) && rows.last().is_some_and(|(at, _)| *at > restored_at));
    // One check a second, none missing across the cut (a gap would be a lost result).
    let widest = rows.windows(2).map(|w| (w[1].0 - w[0].0).num_milliseconds()).max().unwrap_or(0);
    assert!(widest < 1_600, "a gap of {widest} ms between results: one was lost");
    // The agent numbered every result it checked from 0: the highest number stored, plus one,
    // is how many it checked, and each of them is stored.
    let delivered: i64 = sqlx::query_scalar("select delivered_seq from agents")
        .fetch_one(&app.pool)
        .await
        .expect("the agent's highest number");
    assert_eq!(delivered + 1, rows.len() as i64, "every numbered result is stored, once");
    println!(
        "agent cut off for {} s: {} results stored, none twice, widest gap {widest} ms; caught up {} ms after the cut ended",
        (restored_at - cut_at).num_seconds(),
        rows.len(),
        drained.num_milliseconds()
    );
    app.stop().await;
}

fn client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().expect("header"));
    reqwest::Client::builder().timeout(Duration::from_secs(10)).default_headers(headers).build().expect("client")
}

async fn fetch<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: String) -> T {
    let res = client.get(&url).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.json().await.expect("json")
}

/// Polls `read` until `done` holds (these processes have no stream the test could await).
async fn until<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    read: impl Fn() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let got = read().await;
        if done(&got) {
            return got;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {got:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_and_two_agents_judge_by_quorum_and_survive_a_kill() {
    let (target, failing) = regional_target().await;
    let (pool, url) = crate::common::fresh_db_url().await;
    let admin = client(&create_token(&pool, Scope::Admin, "admin").await);
    let agent_token = create_token(&pool, Scope::Agent, "agents").await;
    let args = ["--self-watch", "false", "--probe-allow", "127.0.0.1/32"];
    let mut procs: Vec<Proc> = Vec::new();
    for _ in 0..3 {
        let url = url.clone();
        procs.push(tokio::task::spawn_blocking(move || Proc::replica(&url, &args)).await.expect("start"));
    }
    let spools = tempfile::tempdir().expect("tempdir");
    // Each agent talks to a replica of its own; the probe's local checks run on a third, maybe.
    let (eu_url, us_url) = (procs[0].url.clone(), procs[1].url.clone());
    let (eu_spool, us_spool) = (spools.path().join("eu"), spools.path().join("us"));
    let (token_a, token_b) = (agent_token.clone(), agent_token.clone());
    let _eu = tokio::task::spawn_blocking(move || Proc::agent(&eu_url, &token_a, "eu-west", Some(&eu_spool), &[]))
        .await
        .expect("agent");
    let _us = tokio::task::spawn_blocking(move || Proc::agent(&us_url, &token_b, "us-east", Some(&us_spool), &[]))
        .await
        .expect("agent");
    let body = json!({
        "name": "regional", "service": "shop", "kind": "http",
        "url": format!("http://{target}/health"), "interval_secs": 1, "timeout_ms": 800,
        "failures_to_down": 2, "successes_to_up": 1, "locations": ["local", "eu-west", "us-east"],
    });
    let res = admin.post(format!("{}/api/v1/probes", procs[2].url)).json(&body).send().await.expect("create");
    assert_eq!(res.status(), StatusCode::CREATED);
    let probe: Probe = res.json().await.expect("probe");
    let via = procs[2].url.clone();
    let locations = || fetch::<Vec<LocationState>>(&admin, format!("{via}/api/v1/probes/{}/locations", probe.id));
    let all = |want: Outcome| move |t: &Vec<LocationState>| t.iter().all(|l| l.state == Some(want));
    until("every location up", &locations, all(Outcome::Up)).await;

    let state = || async {
        let p: Probe = fetch(&admin, format!("{via}/api/v1/probes/{}", probe.id)).await;
        p.status.and_then(|s| s.state)
    };
    failing.lock().expect("lock").insert("eu-west".into());
    until("degraded from eu-west", &state, |s| *s == Some(Outcome::Degraded)).await;
    assert!(crate::incidents::wait_handled_in(&pool, probe.id).await);
    let open: Vec<Incident> = fetch(&admin, format!("{via}/api/v1/incidents")).await;
    assert!(open.is_empty(), "{open:?}");

    failing.lock().expect("lock").insert("us-east".into());
    until("down from two locations", &state, |s| *s == Some(Outcome::Down)).await;
    assert!(crate::incidents::wait_handled_in(&pool, probe.id).await);
    let open: Vec<Incident> = fetch(&admin, format!("{}/api/v1/incidents", procs[0].url)).await;
    assert_eq!(open.len(), 1, "{open:?}");
    let entries: Vec<TimelineEntry> =
        fetch(&admin, format!("{}/api/v1/incidents/{}/timeline", procs[1].url, open[0].id)).await;
    assert!(entries.iter().any(|e| e.text.contains("eu-west, us-east")), "{entries:#?}");

    // kill -9 the replica running the probe's local checks: another takes them over, and the
    // quorum state holds (no second incident, no flap).
    let owner: app::model::Replica = fetch(&admin, format!("{via}/api/v1/probes/{}/replica", probe.id)).await;
    let victim = procs.iter().position(|p| p.child.id() as i32 == owner.pid).expect("the owner is ours");
    let mut killed = procs.remove(victim);
    killed.child.kill().expect("SIGKILL");
    killed.child.wait().expect("reaped");
    let killed_at = chrono::Utc::now();
    let via = procs[0].url.clone();
    let local_after = || async {
        let rows: Vec<ProbeResult> = fetch(&admin, format!("{via}/api/v1/probes/{}/results?limit=50", probe.id)).await;
        rows.iter().filter(|r| r.location.is_none() && r.at > killed_at).count()
    };
    until("local checks resumed on another replica", &local_after, |n| *n >= 2).await;
    let p: Probe = fetch(&admin, format!("{via}/api/v1/probes/{}", probe.id)).await;
    assert_eq!(p.status.and_then(|s| s.state), Some(Outcome::Down));
    let open: Vec<Incident> = fetch(&admin, format!("{via}/api/v1/incidents")).await;
    assert_eq!(open.len(), 1, "still one incident: {open:?}");
}
