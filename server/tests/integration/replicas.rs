//! Replicas as real processes: three `triage serve` on one PostgreSQL share the probes, one is
//! killed with SIGKILL and the others take its probes (and its leadership) over, and one joining
//! takes its share. Who checked what is counted from the stored results. Then two replicas in
//! one process: live results, rooms, presence, sessions and the sign-in limit agree through the
//! bus.

use std::collections::HashMap;
use std::time::Duration;

use app::model::{Replica, Scope};
use axum::Router;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use server::monitor::hub::ProbeEvent;
use server::storage::bus::Topic;
use server::web::access::Secured;

use crate::common::{Proc, TestApp, create_token, fresh_db, fresh_db_url, serve_target, spawn_app_with, test_settings};

const INTERVAL_SECS: i64 = 2;
const PROBES: usize = 30;

fn client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().expect("header"));
    reqwest::Client::builder().timeout(Duration::from_secs(10)).default_headers(headers).build().expect("client")
}

async fn replicas(client: &reqwest::Client, via: &Proc) -> Vec<Replica> {
    let res = client.get(format!("{}/api/v1/replicas", via.url)).send().await.expect("replicas");
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("replica list")
}

/// Polls the replica list until `settled` holds for the live ones (the membership is read every
/// second, so this is a wait for an event that has no stream of its own).
async fn until_replicas(client: &reqwest::Client, via: &Proc, what: &str, settled: impl Fn(&[Replica]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let alive: Vec<Replica> = replicas(client, via).await.into_iter().filter(|r| r.alive).collect();
        if settled(&alive) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {alive:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Each probe's result times, in order, from `from` on.
async fn results_since(pool: &sqlx::PgPool, from: DateTime<Utc>) -> HashMap<Uuid, Vec<DateTime<Utc>>> {
    let rows: Vec<(Uuid, DateTime<Utc>)> =
        sqlx::query_as("select probe_id, at from results where at >= $1 order by probe_id, at")
            .bind(from)
            .fetch_all(pool)
            .await
            .expect("results");
    let mut by_probe: HashMap<Uuid, Vec<DateTime<Utc>>> = HashMap::new();
    for (p, at) in rows {
        by_probe.entry(p).or_default().push(at);
    }
    by_probe
}

/// Waits until every probe has at least `n` results from `from` on.
async fn until_results(pool: &sqlx::PgPool, from: DateTime<Utc>, n: usize) -> HashMap<Uuid, Vec<DateTime<Utc>>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = results_since(pool, from).await;
        if got.len() == PROBES && got.values().all(|v| v.len() >= n) {
            return got;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} probes with {n} results since {from}", got.len());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks of one probe closer together than half an interval: two replicas ran it at once.
fn doubled(times: &[DateTime<Utc>]) -> usize {
    times.windows(2).filter(|w| (w[1] - w[0]).num_milliseconds() < INTERVAL_SECS * 500).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_probes_and_take_a_killed_ones_over_within_two_intervals() {
    let target = serve_target(Router::new().fallback(|| async { "ok" })).await;
    let (pool, url) = fresh_db_url().await;
    let token = create_token(&pool, Scope::Admin, "replicas").await;
    let client = client(&token);
    let args = ["--self-watch", "false", "--probe-allow", "127.0.0.1/32"];
    let mut procs: Vec<Proc> = Vec::new();
    for _ in 0..3 {
        let url = url.clone();
        procs.push(tokio::task::spawn_blocking(move || Proc::replica(&url, &args)).await.expect("start"));
    }

    // Created through one replica; each probe must run on whichever replica owns it.
    for i in 0..PROBES {
        let spec = json!({"name": format!("p{i}"), "service": "fleet", "kind": "http",
            "url": format!("http://{target}/p{i}"), "interval_secs": INTERVAL_SECS, "timeout_ms": 1000});
        let res = client.post(format!("{}/api/v1/probes", procs[0].url)).json(&spec).send().await.expect("create");
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    until_replicas(&client, &procs[2], "three replicas, each running a share, one leader", |alive| {
        alive.len() == 3
            && alive.iter().all(|r| r.probes_owned > 0)
            && alive.iter().map(|r| r.probes_owned).sum::<i32>() == PROBES as i32
            && alive.iter().filter(|r| r.leader).count() == 1
    })
    .await;
    let settled = Utc::now();
    let steady = until_results(&pool, settled, 3).await;
    for (probe, times) in &steady {
        assert_eq!(doubled(times), 0, "{probe} was checked by two replicas at once: {times:?}");
    }

    // SIGKILL the leader: no goodbye, its connection simply drops.
    let all = replicas(&client, &procs[0]).await;
    let leader = all.iter().find(|r| r.alive && r.leader).expect("a leader");
    let victim = procs.iter().position(|p| p.child.id() as i32 == leader.pid).expect("the leader is ours");
    let mut killed = procs.remove(victim);
    killed.child.kill().expect("SIGKILL");
    killed.child.wait().expect("reaped");
    let killed_at = Utc::now();
    until_replicas(&client, &procs[0], "two replicas share every probe and one of them leads", |alive| {
        alive.len() == 2
            && alive.iter().map(|r| r.probes_owned).sum::<i32>() == PROBES as i32
            && alive.iter().filter(|r| r.leader).count() == 1
    })
    .await;
    let after = until_results(&pool, killed_at, 3).await;
    let mut slowest = chrono::Duration::zero();
    for (probe, times) in &after {
        let first = times[0] - killed_at;
        slowest = slowest.max(first);
        assert!(
            first <= chrono::Duration::seconds(2 * INTERVAL_SECS),
            "{probe} was checked again {first} after the kill (more than two intervals)"
        );
        assert!(doubled(times) <= 1, "{probe}: more than one overlap at the handover: {times:?}");
    }
    println!("takeover after SIGKILL: every probe checked again within {} ms", slowest.num_milliseconds());

    // A replica joining takes its share from the two.
    let joined_at = Utc::now();
    let url2 = url.clone();
    procs.push(tokio::task::spawn_blocking(move || Proc::replica(&url2, &args)).await.expect("start"));
    until_replicas(&client, &procs[1], "the newcomer runs a share", |alive| {
        alive.len() == 3
            && alive.iter().all(|r| r.probes_owned > 0)
            && alive.iter().map(|r| r.probes_owned).sum::<i32>() == PROBES as i32
    })
    .await;
    let joined = until_results(&pool, joined_at, 4).await;
    for (probe, times) in &joined {
        assert!(doubled(times) <= 1, "{probe}: more than one overlap when a replica joined: {times:?}");
    }
    for p in procs {
        assert!(p.terminate().success(), "a replica shuts down cleanly");
    }
}

/// Two replicas in this process on one database (their bus is PostgreSQL's, as between
/// machines), each seeing the other.
async fn pair() -> (TestApp, TestApp) {
    let pool = fresh_db().await;
    let a = spawn_app_with(pool.clone(), test_settings(), Secured::default()).await;
    let b = spawn_app_with(pool, test_settings(), Secured::default()).await;
    for app in [&a, &b] {
        let mut views = app.state.replicas.watch();
        tokio::time::timeout(Duration::from_secs(10), views.wait_for(|v| v.members.len() == 2))
            .await
            .expect("each replica sees the other")
            .expect("membership running");
    }
    (a, b)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_checked_on_one_replica_is_live_on_the_other_within_a_second() {
    let target = serve_target(Router::new().fallback(|| async { "ok" })).await;
    let (a, b) = pair().await;
    let spec = json!({"name": "live", "service": "shop", "kind": "http",
        "url": format!("http://{target}/"), "interval_secs": 1, "timeout_ms": 800});
    let res = a.client.post(a.url("/api/v1/probes")).json(&spec).send().await.expect("create");
    assert_eq!(res.status(), StatusCode::CREATED);
    let probe: app::model::Probe = res.json().await.expect("probe");
    let (owner, other) = if a.state.replicas.view().owns(probe.id) { (&a, &b) } else { (&b, &a) };

    // Stamp each result as each hub hears it.
    let heard = |app: &TestApp| {
        let mut rx = app.state.hub.subscribe();
        tokio::spawn(async move {
            let mut at = HashMap::new();
            while at.len() < 20 {
                match rx.recv().await {
                    Ok(ProbeEvent::Result(r)) if r.probe_id == probe.id => {
                        at.insert(r.request_id.clone(), std::time::Instant::now());
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
            at
        })
    };
    let (here, there) = (heard(owner), heard(other));
    let here = tokio::time::timeout(Duration::from_secs(40), here).await.expect("20 results").expect("join");
    let there = tokio::time::timeout(Duration::from_secs(5), there).await.expect("all 20 crossed").expect("join");
    let mut delays: Vec<Duration> = here
        .iter()
        .map(|(id, t)| there.get(id).expect("every result reaches the other replica").saturating_duration_since(*t))
        .collect();
    delays.sort();
    let (p50, p99) = (percentile(&delays, 0.5), percentile(&delays, 0.99));
    println!("live across replicas: p50 {:.1} ms, p99 {:.1} ms", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);
    assert!(p99 < Duration::from_secs(1), "{delays:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_presence_sessions_and_the_sign_in_limit_agree_across_replicas() {
    let (a, b) = pair().await;
    // A room entry posted on one replica reaches the other's room, a long one too (too big for
    // one message, it is read from the database there).
    let res = a.client.post(a.url("/api/v1/incidents")).json(&json!({"title": "Checkout down", "severity": "SEV2"}));
    let incident: app::model::Incident = res.send().await.expect("declare").json().await.expect("incident");
    let mut room_b = b.state.incidents.rooms.subscribe();
    for text in ["checking the pool".to_string(), "x".repeat(12_000)] {
        let entry = json!({"kind": "note", "text": text, "idempotency_key": Uuid::new_v4().to_string()});
        let url = a.url(&format!("/api/v1/incidents/{}/timeline", incident.id));
        let posted: app::model::TimelineEntry =
            a.client.post(url).json(&entry).send().await.expect("post").json().await.expect("entry");
        let got = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if let Ok((id, e)) = room_b.recv().await
                    && let app::model::RoomEvent::Entry(e) = &*e
                    && id == incident.id
                    && e.id == posted.id
                {
                    return e.clone();
                }
            }
        })
        .await
        .expect("the entry is live on the other replica within a second");
        assert_eq!(got.text, text);
    }

    // Presence is the union of both replicas' viewers, and a viewer leaving leaves everywhere.
    let viewer = a.state.incidents.rooms.enter(incident.id, "ana@example.com".into());
    let _local = b.state.incidents.rooms.enter(incident.id, "bo@example.com".into());
    until(|| b.state.incidents.rooms.present(incident.id) == ["ana@example.com", "bo@example.com"]).await;
    until(|| a.state.incidents.rooms.present(incident.id) == ["ana@example.com", "bo@example.com"]).await;
    drop(viewer);
    until(|| b.state.incidents.rooms.present(incident.id) == ["bo@example.com"]).await;

    // Signing out on one replica ends the session on the other now, not when its cache expires.
    let (email, cookie) = a.session_of(app::model::Role::Viewer).await;
    let on_b = b.browser(&cookie);
    let me = on_b.get(b.url("/api/v1/auth/me")).send().await.expect("me");
    assert_eq!(me.status(), StatusCode::OK, "signed in (and now cached) on b");
    let out = a.browser(&cookie).post(a.url("/api/v1/auth/logout")).header("accept", "application/json").send();
    assert_eq!(out.await.expect("logout").status(), StatusCode::NO_CONTENT);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let me = on_b.get(b.url("/api/v1/auth/me")).send().await.expect("me");
        if me.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "b still accepts a session ended on a");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Guesses made on one replica count on the other.
    let mut notes = b.state.bus.subscribe();
    for _ in 0..5 {
        let bad = json!({"email": email, "password": "wrong password"});
        let res = a.anonymous.post(a.url("/api/v1/auth/login")).json(&bad).send().await.expect("login");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let mut heard = 0;
    while heard < 5 {
        let (topic, body) =
            tokio::time::timeout(Duration::from_secs(1), notes.recv()).await.expect("noted").expect("bus");
        if topic == Topic::Note && body.contains("login_failed") {
            heard += 1;
        }
    }
    let good = json!({"email": email, "password": crate::common::PASSWORD});
    let res = b.anonymous.post(b.url("/api/v1/auth/login")).json(&good).send().await.expect("login");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the account is throttled on b too");
    a.stop().await;
    b.stop().await;
}

/// Waits for a condition that the bus makes true within a second.
async fn until(cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "not true within a second");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn until_reads(app: &TestApp, on_replica: bool, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while app.state.reads.using_replica() != on_replica {
        assert!(tokio::time::Instant::now() < deadline, "reads on the replica: expected {on_replica}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn services_named(pool: &sqlx::PgPool, name: &str) -> i64 {
    sqlx::query_scalar("select count(*) from services where name = $1").bind(name).fetch_one(pool).await.expect("count")
}

/// `--database-read-url` against a real standby, made by `pg_basebackup` from a primary of the
/// test's own and streaming from it over its socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_a_real_standby_while_it_keeps_up_and_to_the_primary_otherwise() {
    use server::storage::cluster::{EmbeddedPg, EmbeddedPgConfig};
    use server::storage::pool::{self, PoolSettings};
    let (primary_dir, primary) = tokio::task::spawn_blocking(crate::common::start_private_cluster).await.expect("join");
    let admin =
        pool::connect(primary.connect_options("postgres"), PoolSettings { max_connections: 1, min_connections: 0 })
            .await
            .expect("admin");
    server::storage::create_database_if_missing(&admin, "triage").await.expect("database");
    admin.close().await;
    let pool =
        pool::connect(primary.connect_options("triage"), PoolSettings { max_connections: 5, min_connections: 0 })
            .await
            .expect("primary");
    pool::migrate(&pool).await.expect("migrations");

    let standby_dir = tempfile::Builder::new().prefix("triage-pg-").tempdir().expect("tempdir");
    let mut config = EmbeddedPgConfig::new(standby_dir.path());
    config.durable = false;
    config.standby_of = Some(primary_dir.path().to_path_buf());
    let mut standby =
        tokio::task::spawn_blocking(move || EmbeddedPg::start(&config)).await.expect("join").expect("standby");
    let direct =
        pool::connect(standby.connect_options("triage"), PoolSettings { max_connections: 1, min_connections: 0 })
            .await
            .expect("standby connection");
    let recovering: bool = sqlx::query_scalar("select pg_is_in_recovery()").fetch_one(&direct).await.expect("query");
    assert!(recovering, "a real standby");

    let mut settings = test_settings();
    let url = format!("postgres://triage@localhost/triage?host={}", standby_dir.path().join("run").display());
    settings.read_url = Some(url.parse().expect("url"));
    let app = spawn_app_with(pool.clone(), settings, Secured::default()).await;
    until_reads(&app, true, Duration::from_secs(10)).await;
    let on: bool = sqlx::query_scalar("select pg_is_in_recovery()").fetch_one(app.state.reads.pool()).await.expect("q");
    assert!(on, "charts, the overview and status pages read from the standby");

    // Replay paused: the standby falls behind, and reads go to the primary, which has the write.
    sqlx::query("select pg_wal_replay_pause()").execute(&direct).await.expect("pause");
    let res = app.client.post(app.url("/api/v1/services")).json(&json!({"name": "written-while-paused"})).send();
    assert_eq!(res.await.expect("create").status(), StatusCode::CREATED);
    until_reads(&app, false, Duration::from_secs(3)).await;
    assert_eq!(services_named(app.state.reads.pool(), "written-while-paused").await, 1, "read from the primary");
    assert_eq!(services_named(&direct, "written-while-paused").await, 0, "the standby has not replayed it");

    // Replay resumed: the standby catches up and serves reads again, with the write.
    sqlx::query("select pg_wal_replay_resume()").execute(&direct).await.expect("resume");
    until_reads(&app, true, Duration::from_secs(5)).await;
    assert_eq!(services_named(app.state.reads.pool(), "written-while-paused").await, 1);

    // The standby stopped: reads fall back to the primary and the pages keep answering.
    direct.close().await;
    tokio::task::spawn_blocking(move || standby.stop(Duration::from_secs(10))).await.expect("join").expect("stop");
    until_reads(&app, false, Duration::from_secs(3)).await;
    let overview = app.client.get(app.url("/api/v1/services")).send().await.expect("services");
    assert_eq!(overview.status(), StatusCode::OK);
    let summary = app.state.overview.get(app.state.reads.pool()).await.expect("the overview reads from the primary");
    assert!(summary.services.iter().any(|s| s.name == "written-while-paused"));
    app.stop().await;
}

/// Pushes of one probe reaching different replicas are judged from the state the other stored:
/// a recovery pushed to the second replica after an outage pushed to the first is `down → up`,
/// not a first `up` from a replica that never heard of the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_different_replicas_continue_each_others_state() {
    let (a, b) = pair().await;
    let spec = json!({"name": "nightly", "service": "jobs", "kind": "push", "interval_secs": 3600,
        "failures_to_down": 1, "successes_to_up": 1});
    let created: serde_json::Value =
        a.client.post(a.url("/api/v1/probes")).json(&spec).send().await.expect("create").json().await.expect("json");
    let (id, token) = (created["id"].as_str().expect("id"), created["push_token"].as_str().expect("token"));
    // Each replica knows the probe (the catalog reaches both).
    let probe: Uuid = id.parse().expect("uuid");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while b.state.scheduler.get(probe).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the probe reaches the other replica");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let push = |app: &TestApp, seq: i64, outcome: &str| {
        app.anonymous
            .post(app.url(&format!("/api/v1/push/{id}")))
            .bearer_auth(token)
            .json(&json!({"agent_id": "runner", "seq": seq, "outcome": outcome}))
            .send()
    };
    assert_eq!(push(&a, 1, "down").await.expect("push").status(), StatusCode::CREATED);
    assert_eq!(push(&b, 2, "up").await.expect("push").status(), StatusCode::CREATED);
    assert_eq!(push(&a, 3, "up").await.expect("push").status(), StatusCode::CREATED);
    let mut changes: Vec<app::model::StateChange> = a.get_json(&format!("/api/v1/probes/{id}/state-changes")).await;
    changes.sort_by_key(|c| c.at);
    let seen: Vec<_> = changes.iter().map(|c| (c.from, c.to)).collect();
    use app::model::Outcome::{Down, Up};
    assert_eq!(seen, [(None, Down), (Some(Down), Up)], "one outage and one recovery, across both replicas");
    a.stop().await;
    b.stop().await;
}
