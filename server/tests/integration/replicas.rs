//! Replicas as real processes: three `triage serve` on one PostgreSQL share the probes, one is
//! killed with SIGKILL and the others take its probes (and its leadership) over, and one joining
//! takes its share. Who checked what is counted from the stored results.

use std::collections::HashMap;
use std::time::Duration;

use app::model::{Replica, Scope};
use axum::Router;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::common::{Proc, create_token, fresh_db_url, serve_target};

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
