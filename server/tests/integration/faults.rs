//! Real faults against a real `triage serve` process and its embedded PostgreSQL (durable, fsync
//! on). The short versions run in the test command; `docs/reliability.md` has the long runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Proc, triage};

/// A size-limited tmpfs mounted for one test (needs root, as the test machines have), unmounted
/// when dropped: the smallest real disk that fills up.
struct SmallDisk {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallDisk {
    fn mount(size_mib: u32) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("triage-disk-").tempdir().expect("tempdir");
        // PostgreSQL runs as `postgres` under root and must reach the data directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m,mode=0755"), "tmpfs"])
            .arg(&mount)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root: {status}");
        Self { _dir: dir, mount }
    }

    /// Writes a file until the disk refuses more; returns its path (remove it to free the space).
    fn fill(&self) -> PathBuf {
        let path = self.mount.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 1 << 20];
        loop {
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // The last partial megabyte too: leave nothing.
        let mut byte = [0u8; 4096];
        while file.write_all(&byte).is_ok() {
            byte[0] = byte[0].wrapping_add(1);
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

fn token(data: &Path) -> String {
    let out = triage()
        .args(["token", "create", "--scope", "admin", "--name", "faults", "--data-dir"])
        .arg(data)
        .output()
        .expect("token create");
    assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// R3, short: PostgreSQL's data on a 192 MiB disk that fills up while an agent pushes. No push
/// is acknowledged (2xx) unless it was stored; `/readyz` is 503 naming the disk while it is full;
/// once space returns Triage is ready again within 10 s, by itself, in the same process; and the
/// agent's retries then store every result exactly once.
#[test]
fn a_full_disk_gets_503_never_a_false_2xx_and_triage_recovers_by_itself() {
    let disk = SmallDisk::mount(192);
    let data = disk.mount.join("data");
    let server = Proc::start(&data, &["--self-watch", "false", "--readiness-cache", "0s"]);
    let pid = server.child.id();
    let admin = token(&data);
    let url = server.url.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        let post = |path: &str, body: Value| client.post(format!("{url}{path}")).bearer_auth(&admin).json(&body).send();
        let res = post("/api/v1/services", json!({"name": "disk"})).await.expect("service");
        assert_eq!(res.status(), StatusCode::CREATED);
        let probe = json!({"name": "agent", "service": "disk", "kind": "push", "interval_secs": 3600});
        let created: Value = post("/api/v1/probes", probe).await.expect("probe").json().await.expect("json");
        let (id, push_token) = (created["id"].as_str().expect("id").to_string(), created["push_token"].clone());
        let push_token = push_token.as_str().expect("push token").to_string();
        let push = |seq: u64| {
            client
                .post(format!("{url}/api/v1/push/{id}"))
                .bearer_auth(&push_token)
                .json(&json!({"agent_id": "r3", "seq": seq, "outcome": "up", "detail": "x".repeat(1000)}))
                .send()
        };
        let ready = || async { client.get(format!("{url}/readyz")).send().await.map(|r| r.status()).ok() };
        assert_eq!(ready().await, Some(StatusCode::OK));
        for seq in 0..20 {
            assert_eq!(push(seq).await.expect("push").status(), StatusCode::CREATED);
        }

        let filler = disk.fill();
        // The agent keeps pushing into the full disk: each answer is 201 (stored) or a 503 with
        // Retry-After (not stored, try again); nothing else.
        let mut acknowledged: Vec<u64> = (0..20).collect();
        let mut refused = Vec::new();
        // At most 900 in all, so one page of the results API (1,000) holds them.
        for seq in 20..900 {
            let res = push(seq).await.expect("push answered");
            match res.status() {
                StatusCode::CREATED => acknowledged.push(seq),
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(res.headers().get("retry-after").is_some(), "503 says when to retry");
                    refused.push(seq);
                }
                other => panic!("push {seq}: {other} {}", res.text().await.unwrap_or_default()),
            }
            if refused.len() >= 20 {
                break;
            }
        }
        assert!(refused.len() >= 20, "a full disk refuses writes ({} acknowledged)", acknowledged.len());
        let res = client.get(format!("{url}/readyz")).send().await.expect("readyz");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = res.json().await.expect("json");
        assert!(body["failing"].as_array().expect("failing").contains(&json!("disk")), "{body}");

        std::fs::remove_file(&filler).expect("space returns");
        let freed = Instant::now();
        while ready().await != Some(StatusCode::OK) {
            assert!(freed.elapsed() < Duration::from_secs(10), "ready again within 10 s of space returning");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "R3: {} acknowledged, {} refused while full; ready {:?} after space returned",
            acknowledged.len(),
            refused.len(),
            freed.elapsed()
        );

        // The agent retries what was refused (a 200 "duplicate" would mean an earlier attempt had
        // been stored after all, which is allowed; a 5xx now is not).
        for seq in &refused {
            let status = push(*seq).await.expect("retry").status();
            assert!(status == StatusCode::CREATED || status == StatusCode::OK, "retry of {seq}: {status}");
        }
        let mut ids = stored_request_ids(&client, &url, &id, &admin).await;
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "no result stored twice");
        for seq in acknowledged.iter().chain(&refused) {
            assert!(ids.contains(&format!("r3-{seq}")), "push {seq} stored");
        }
        assert_eq!(ids.len(), acknowledged.len() + refused.len());
    });
    let mut server = server;
    assert_eq!(server.child.id(), pid, "the same process");
    assert!(server.child.try_wait().expect("wait").is_none(), "Triage kept running through it");
}

/// The request ids of a probe's results of the last hour (one page: at most 1,000), as stored.
async fn stored_request_ids(client: &reqwest::Client, url: &str, probe: &str, admin: &str) -> Vec<String> {
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let results: Vec<Value> = client
        .get(format!("{url}/api/v1/probes/{probe}/results"))
        .query(&[("limit", "1000"), ("from", hour_ago.as_str())])
        .bearer_auth(admin)
        .send()
        .await
        .expect("results")
        .json()
        .await
        .expect("json");
    results.iter().filter_map(|r| r["request_id"].as_str().map(str::to_string)).collect()
}

/// How many times each fault is injected: a few in the test command, the counts with
/// `TRIAGE_FAULTS=long` (figures in `docs/reliability.md`).
fn rounds(short: usize, long: usize) -> usize {
    if std::env::var("TRIAGE_FAULTS").is_ok_and(|v| v == "long") { long } else { short }
}

/// An agent's and a responder's view of what the server acknowledged.
#[derive(Default)]
struct Receipts {
    pushes: Vec<u64>,
    entries: Vec<String>,
}

/// R2: Triage is killed with SIGKILL while an agent pushes and a responder posts timeline
/// entries, then started again on the same data directory. Everything answered 2xx before the
/// kill is there afterwards; what was cut off is sent again (same push sequence number, same
/// timeline idempotency key) and stored once.
#[test]
fn kill_9_of_triage_loses_no_acknowledged_write() {
    let kills = rounds(2, 10);
    let dir = tempfile::Builder::new().prefix("triage-r2-").tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut server = Proc::start(&data, &["--self-watch", "false"]);
    let admin = token(&data);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let (probe, push_token, incident) = rt.block_on(async {
        let url = server.url.clone();
        let post = |path: &str, body: Value| client.post(format!("{url}{path}")).bearer_auth(&admin).json(&body).send();
        let res = post("/api/v1/services", json!({"name": "r2"})).await.expect("service");
        assert_eq!(res.status(), StatusCode::CREATED);
        let probe = json!({"name": "agent", "service": "r2", "kind": "push", "interval_secs": 3600});
        let created: Value = post("/api/v1/probes", probe).await.expect("probe").json().await.expect("json");
        let incident: Value =
            post("/api/v1/incidents", json!({"title": "r2"})).await.expect("incident").json().await.expect("json");
        (
            created["id"].as_str().expect("id").to_string(),
            created["push_token"].as_str().expect("token").to_string(),
            incident["id"].as_str().expect("id").to_string(),
        )
    });
    let mut receipts = Receipts::default();
    let mut next_push = 0u64;
    let mut next_entry = 0u64;
    let mut cut_off = (Vec::<u64>::new(), Vec::<u64>::new());
    for round in 0..=kills {
        let url = server.url.clone();
        // Whatever the last kill cut off is sent again first, as an agent and a client would.
        let (retry_pushes, retry_entries) = std::mem::take(&mut cut_off);
        let (got, unanswered) = rt.block_on(traffic(
            &client,
            &url,
            (&probe, &push_token, &incident, &admin),
            (retry_pushes, retry_entries),
            (&mut next_push, &mut next_entry),
            round < kills,
            || server.signal(nix::sys::signal::Signal::SIGKILL),
        ));
        receipts.pushes.extend(got.pushes);
        receipts.entries.extend(got.entries);
        cut_off = unanswered;
        if round < kills {
            let status = server.child.wait().expect("killed");
            assert!(!status.success(), "SIGKILL ends it");
            server = Proc::start(&data, &["--self-watch", "false"]);
        }
    }
    assert!(cut_off.0.is_empty() && cut_off.1.is_empty(), "the last round ran without a kill");
    let url = server.url.clone();
    let (stored_pushes, stored_entries) = rt.block_on(async {
        let pushes = stored_request_ids(&client, &url, &probe, &admin).await;
        let timeline: Vec<Value> = client
            .get(format!("{url}/api/v1/incidents/{incident}/timeline"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("timeline")
            .json()
            .await
            .expect("json");
        let entries: Vec<String> = timeline.iter().filter_map(|e| e["text"].as_str().map(str::to_string)).collect();
        (pushes, entries)
    });
    for seq in &receipts.pushes {
        assert!(stored_pushes.contains(&format!("r2-{seq}")), "acknowledged push {seq} lost");
    }
    for text in &receipts.entries {
        assert!(stored_entries.contains(text), "acknowledged entry {text:?} lost");
    }
    let mut unique = stored_pushes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), stored_pushes.len(), "no push stored twice");
    assert_eq!(stored_pushes.len() as u64, next_push, "every push stored once in the end");
    let posted = stored_entries.iter().filter(|t| t.starts_with("r2 entry ")).count();
    assert_eq!(posted as u64, next_entry, "every timeline entry stored once in the end");
    println!(
        "R2: {kills} × kill -9; {} pushes and {} timeline entries acknowledged, lost 0, doubled 0",
        receipts.pushes.len(),
        receipts.entries.len()
    );
}

/// One round of traffic: first the retries, then new pushes and entries until 25 of each are
/// acknowledged; then, if `kill`, the server is killed while requests are still in flight and
/// what got no answer is returned for the next round.
async fn traffic(
    client: &reqwest::Client,
    url: &str,
    (probe, push_token, incident, admin): (&str, &str, &str, &str),
    (retry_pushes, retry_entries): (Vec<u64>, Vec<u64>),
    (next_push, next_entry): (&mut u64, &mut u64),
    kill: bool,
    kill_now: impl FnOnce(),
) -> (Receipts, (Vec<u64>, Vec<u64>)) {
    let push = |seq: u64| {
        client
            .post(format!("{url}/api/v1/push/{probe}"))
            .bearer_auth(push_token)
            .json(&json!({"agent_id": "r2", "seq": seq, "outcome": "up"}))
            .send()
    };
    let entry = |n: u64| {
        client
            .post(format!("{url}/api/v1/incidents/{incident}/timeline"))
            .bearer_auth(admin)
            .json(&json!({"text": format!("r2 entry {n}"), "idempotency_key": format!("r2-{n}")}))
            .send()
    };
    let mut got = Receipts::default();
    for seq in retry_pushes {
        let res = push(seq).await.expect("retried push");
        assert!(res.status().is_success(), "retry {seq}: {}", res.status());
        got.pushes.push(seq);
    }
    for n in retry_entries {
        let res = entry(n).await.expect("retried entry");
        assert!(res.status().is_success(), "retry {n}: {}", res.status());
        got.entries.push(format!("r2 entry {n}"));
    }
    // Eight of each kind in flight at once, so the kill lands in the middle of requests.
    let mut in_flight = futures::stream::FuturesUnordered::new();
    type Sent = (bool, u64, Result<reqwest::Response, reqwest::Error>);
    let start = |is_push: bool, n: u64| -> std::pin::Pin<Box<dyn std::future::Future<Output = Sent> + '_>> {
        if is_push {
            Box::pin(async move { (true, n, push(n).await) })
        } else {
            Box::pin(async move { (false, n, entry(n).await) })
        }
    };
    for _ in 0..8 {
        in_flight.push(start(true, *next_push));
        *next_push += 1;
        in_flight.push(start(false, *next_entry));
        *next_entry += 1;
    }
    let mut kill_now = Some(kill_now);
    let mut unanswered = (Vec::new(), Vec::new());
    use futures::StreamExt;
    while let Some((is_push, n, res)) = in_flight.next().await {
        match res {
            Ok(r) if r.status().is_success() => {
                if is_push {
                    got.pushes.push(n);
                } else {
                    got.entries.push(format!("r2 entry {n}"));
                }
            }
            Ok(r) => panic!("{} {n}: {}", if is_push { "push" } else { "entry" }, r.status()),
            // Cut off by the kill: no answer, so not acknowledged; sent again next round.
            Err(_) => {
                if is_push {
                    unanswered.0.push(n);
                } else {
                    unanswered.1.push(n);
                }
            }
        }
        let enough = got.pushes.len() >= 25 && got.entries.len() >= 25;
        if enough
            && kill
            && let Some(k) = kill_now.take()
        {
            k();
        }
        if !enough || (kill && kill_now.is_some()) {
            if is_push {
                in_flight.push(start(true, *next_push));
                *next_push += 1;
            } else {
                in_flight.push(start(false, *next_entry));
                *next_entry += 1;
            }
        }
    }
    (got, unanswered)
}

/// The embedded cluster's postmaster pid, from its `postmaster.pid` (none while it is down).
fn postmaster(data: &Path) -> Option<nix::unistd::Pid> {
    let text = std::fs::read_to_string(data.join("pg/postmaster.pid")).ok()?;
    text.lines().next().and_then(|l| l.trim().parse().ok()).map(nix::unistd::Pid::from_raw)
}

/// R1: PostgreSQL restarted again and again (fast and immediate shutdowns, the supervisor
/// starting it again each time) while scheduled checks of a flapping target and an agent's
/// pushes flow. Counted from the database afterwards and from the agent's receipts: no
/// acknowledged push lost, no result or state change stored twice, every probe's chain of
/// state changes unbroken (a lost change would leave a gap), no automatic entry doubled, and no
/// scheduled result dropped.
#[test]
fn postgres_restarts_lose_and_double_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
    let restarts = rounds(4, 20);
    // The long run: 500 checks a second for 20 gaps of 10 s (about 100,000 results) and two
    // agents (about 10,000 pushes).
    let (probes, gap, agents) = (rounds(20, 500), Duration::from_millis(rounds(1500, 10_000) as u64), rounds(1, 2));
    let dir = tempfile::Builder::new().prefix("triage-r1-").tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // A target that flips between healthy and failing every 700 ms: state changes keep coming.
    let status = Arc::new(AtomicU16::new(200));
    let target = rt.block_on(crate::common::serve_target(axum::Router::new().route(
        "/health",
        axum::routing::get({
            let status = Arc::clone(&status);
            move || {
                let code = status.load(Ordering::SeqCst);
                async move { http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK) }
            }
        }),
    )));
    let flipping = Arc::new(AtomicBool::new(true));
    rt.spawn({
        let (status, flipping) = (Arc::clone(&status), Arc::clone(&flipping));
        async move {
            while flipping.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(700)).await;
                let next = if status.load(Ordering::SeqCst) == 200 { 503 } else { 200 };
                status.store(next, Ordering::SeqCst);
            }
            status.store(200, Ordering::SeqCst);
        }
    });
    let server = Proc::start(&data, &["--self-watch", "false", "--probe-allow", "127.0.0.0/8"]);
    let admin = token(&data);
    let url = server.url.clone();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let (push_probe, push_token) = rt.block_on(async {
        let post = |path: &str, body: Value| client.post(format!("{url}{path}")).bearer_auth(&admin).json(&body).send();
        assert_eq!(post("/api/v1/services", json!({"name": "r1"})).await.expect("svc").status(), StatusCode::CREATED);
        for i in 0..probes {
            let probe = json!({"name": format!("check-{i}"), "service": "r1", "kind": "http",
                "url": format!("http://{target}/health"), "interval_secs": 1, "timeout_ms": 500,
                "failures_to_down": 1, "successes_to_up": 1});
            let res = post("/api/v1/probes", probe).await.expect("probe");
            assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap_or_default());
        }
        let probe = json!({"name": "agent", "service": "r1", "kind": "push", "interval_secs": 3600});
        let created: Value = post("/api/v1/probes", probe).await.expect("probe").json().await.expect("json");
        (created["id"].as_str().expect("id").to_string(), created["push_token"].as_str().expect("token").to_string())
    });

    // The agents: each pushes in order, each push until acknowledged (retrying on 503 and cut
    // connections).
    let pushing = Arc::new(AtomicBool::new(true));
    let agent_tasks: Vec<_> = (0..agents)
        .map(|agent| {
            rt.spawn({
                let (client, url, pushing) = (client.clone(), url.clone(), Arc::clone(&pushing));
                let (probe, token) = (push_probe.clone(), push_token.clone());
                async move {
                    let mut acknowledged = Vec::new();
                    let (mut retries, mut seq) = (0u64, 0u64);
                    while pushing.load(Ordering::SeqCst) {
                        let res = client
                            .post(format!("{url}/api/v1/push/{probe}"))
                            .bearer_auth(&token)
                            .json(&json!({"agent_id": format!("r1a{agent}"), "seq": seq, "outcome": "up"}))
                            .send()
                            .await;
                        match res.map(|r| r.status()) {
                            Ok(s) if s.is_success() => {
                                acknowledged.push(format!("r1a{agent}-{seq}"));
                                seq += 1;
                            }
                            Ok(s) if s != StatusCode::SERVICE_UNAVAILABLE => panic!("push {seq}: {s}"),
                            // 503 or a cut connection: the same push again shortly.
                            _ => {
                                retries += 1;
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                    (acknowledged, retries)
                }
            })
        })
        .collect();

    let ready = |client: &reqwest::Client| {
        let url = url.clone();
        let client = client.clone();
        async move {
            client.get(format!("{url}/readyz")).send().await.map(|r| r.status() == StatusCode::OK).unwrap_or(false)
        }
    };
    let started = Instant::now();
    for i in 0..restarts {
        // Let traffic flow between restarts, then stop PostgreSQL: fast, then immediate, in turn.
        rt.block_on(async { tokio::time::sleep(gap).await });
        let pid = postmaster(&data).expect("PostgreSQL running");
        let sig = if i % 2 == 0 { nix::sys::signal::Signal::SIGINT } else { nix::sys::signal::Signal::SIGQUIT };
        nix::sys::signal::kill(pid, sig).expect("signal the postmaster");
        // Back when the supervisor has started it again and Triage is ready.
        let deadline = Instant::now() + Duration::from_secs(60);
        while postmaster(&data).is_none_or(|p| p == pid) || !rt.block_on(ready(&client)) {
            assert!(Instant::now() < deadline, "PostgreSQL back within a minute of restart {i}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
    pushing.store(false, Ordering::SeqCst);
    flipping.store(false, Ordering::SeqCst);
    let (mut acknowledged, mut retries) = (Vec::new(), 0u64);
    for agent in agent_tasks {
        let (got, tried) = rt.block_on(agent).expect("agent");
        acknowledged.extend(got);
        retries += tried;
    }
    // Everything buffered is written once the database is back: wait until the writer is idle.
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // Checks keep running, so the writer always has a little pending: wait until what the
    // outages buffered is down to less than one batch.
    let (written, dropped) = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = client.get(format!("{url}/metrics")).send().await.expect("metrics").text().await.expect("text");
            assert!(Instant::now() < deadline, "the buffered results are written within 2 minutes");
            if metric(&text, "triage_probe_results_pending ") < 1000.0 {
                break (
                    metric(&text, "triage_probe_results_written_total"),
                    metric(&text, "triage_probe_results_dropped_total"),
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    let pool = rt
        .block_on(server::storage::pool::connect(
            server::storage::cluster::attach_options(&data, server::storage::cluster::DATABASE),
            server::storage::pool::PoolSettings { max_connections: 2, min_connections: 0 },
        ))
        .expect("attach to the cluster");
    rt.block_on(async {
        let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool);
        let doubled_results = count(
            "select count(*) from (select probe_id, request_id from results group by 1, 2 having count(*) > 1) d",
        )
        .await
        .expect("results");
        let doubled_changes = count(
            "select count(*) from (select probe_id, request_id from state_changes group by 1, 2 having count(*) > 1) d",
        )
        .await
        .expect("changes");
        // Each change starts where the one before it ended; a lost change leaves a gap.
        let gaps = count(
            "select count(*) from (select from_state, lag(to_state) over (partition by probe_id order by at, state_change_id) as before \
             from state_changes) c where before is not null and before <> from_state",
        )
        .await
        .expect("chain");
        let changes = count("select count(*) from state_changes").await.expect("changes");
        let doubled_entries = count(
            "select count(*) from (select incident_id, state_change_id from timeline_entries where state_change_id is not null \
             group by 1, 2 having count(*) > 1) d",
        )
        .await
        .expect("entries");
        let stored_scheduled: i64 = sqlx::query_scalar("select count(*) from results where probe_id <> $1::uuid")
            .bind(&push_probe)
            .fetch_one(&pool)
            .await
            .expect("scheduled");
        let pushes: Vec<String> = sqlx::query_scalar("select request_id from results where probe_id = $1::uuid")
            .bind(&push_probe)
            .fetch_all(&pool)
            .await
            .expect("pushes");
        let pushes: std::collections::HashSet<String> = pushes.into_iter().collect();
        let lost = acknowledged.iter().filter(|id| !pushes.contains(*id)).count();
        println!(
            "R1: {restarts} PostgreSQL restarts in {:.0?}; {} pushes acknowledged ({retries} retries), lost {lost}; \
             {stored_scheduled} scheduled results ({written} written by the writer, {dropped} dropped), doubled {doubled_results}; \
             {changes} state changes, doubled {doubled_changes}, chain gaps {gaps}; automatic entries doubled {doubled_entries}",
            started.elapsed(),
            acknowledged.len()
        );
        assert_eq!(lost, 0, "acknowledged pushes lost");
        assert_eq!(doubled_results, 0, "results stored twice");
        assert_eq!(doubled_changes, 0, "state changes stored twice");
        assert_eq!(gaps, 0, "state changes lost (a gap in a probe's chain)");
        assert_eq!(doubled_entries, 0, "automatic entries doubled");
        assert_eq!(dropped, 0.0, "scheduled results dropped");
        assert!(changes > 0 && !acknowledged.is_empty() && stored_scheduled > 0, "traffic flowed");
    });
}

/// S3: slowloris over HTTP/1 and h2c (headers trickled a byte at a time) and a crowd of idle
/// connections against the real process with a 2 s header-read timeout: every one of them is
/// cut by the server near the timeout, while pages and `/healthz` are still served.
#[test]
fn slow_and_idle_connections_are_cut_and_pages_still_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let idle = rounds(500, 10_000);
    let slow = rounds(50, 200);
    let dir = tempfile::Builder::new().prefix("triage-s3-").tempdir().expect("tempdir");
    let server = Proc::start(&dir.path().join("data"), &["--self-watch", "false", "--header-read-timeout", "2s"]);
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().expect("addr");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let started = Instant::now();
        // Each returns how long the server let it live.
        let mut held = tokio::task::JoinSet::new();
        for i in 0..idle {
            let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { panic!("connect {i}") };
            held.spawn(async move {
                let t = Instant::now();
                let mut buf = [0u8; 64];
                let _ = tokio::time::timeout(Duration::from_secs(60), s.read(&mut buf)).await;
                t.elapsed()
            });
        }
        for i in 0..slow {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            held.spawn(async move {
                let t = Instant::now();
                let bytes: Vec<u8> = if i % 2 == 0 {
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec()
                } else {
                    // h2c: the preface, then a HEADERS frame trickled byte by byte.
                    let mut b = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0".to_vec();
                    b.extend_from_slice(&[0, 0, 64, 0x1, 0x4, 0, 0, 0, 1, 0x82, 0x86, 0x84, 0x41, 0x8a]);
                    b.extend(std::iter::repeat_n(b'a', 40));
                    b
                };
                for byte in bytes {
                    if s.write_all(&[byte]).await.is_err() {
                        return t.elapsed();
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                t.elapsed()
            });
        }
        // The site keeps answering while they hang on.
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        let mut worst = Duration::ZERO;
        for path in ["/healthz", "/login", "/healthz", "/login"] {
            let t = Instant::now();
            let res = client.get(format!("{}{path}", server.url)).send().await.expect("served");
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            worst = worst.max(t.elapsed());
        }
        let mut lived = Vec::new();
        while let Some(d) = held.join_next().await {
            lived.push(d.expect("task"));
        }
        lived.sort();
        let longest = *lived.last().expect("some");
        println!(
            "S3: {idle} idle + {slow} slowloris (HTTP/1 and h2c) connections cut after {:.1?}..{longest:.1?} \
             (timeout 2 s); pages served meanwhile in at most {worst:.0?}; all done in {:.1?}",
            lived[0],
            started.elapsed()
        );
        assert!(longest < Duration::from_secs(20), "every connection cut near the timeout: {longest:?}");
        assert!(lived[0] >= Duration::from_millis(1500), "none cut before the timeout: {:?}", lived[0]);
    });
}

/// The process's peak and current resident memory, in MiB, from `/proc`.
fn rss_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// S2: hostile sizes and speeds. A 1 GiB upload to Triage is refused without being read; its
/// probes meet a gzip bomb (256 MiB of zeros in 256 KiB), a body trickled at one byte a second
/// and a readiness body with 100,000 components. Each check ends with its error (or its
/// components) within its timeout, and Triage's peak memory stays bounded (printed).
#[test]
fn huge_bodies_bombs_and_trickles_are_bounded_in_memory_and_time() {
    use std::io::Write as _;
    let dir = tempfile::Builder::new().prefix("triage-s2-").tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Proc::start(&data, &["--self-watch", "false", "--probe-allow", "127.0.0.0/8"]);
    let pid = server.child.id();
    let admin = token(&data);
    let url = server.url.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let bomb = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&zeros).expect("compress");
        }
        enc.finish().expect("finish")
    };
    let components: serde_json::Map<String, Value> = (0..100_000)
        .map(|i| (format!("component-{i:06}"), json!({"status": if i == 7 { "DOWN" } else { "UP" }})))
        .collect();
    let huge_readiness = json!({"status": "DOWN", "checks": components}).to_string();
    let target = rt.block_on(crate::common::serve_target(
        axum::Router::new()
            .route(
                "/bomb",
                axum::routing::get(move || {
                    let bomb = bomb.clone();
                    async move { ([(http::header::CONTENT_ENCODING, "gzip")], bomb) }
                }),
            )
            .route(
                "/trickle",
                axum::routing::get(|| async {
                    let drip = futures::stream::unfold(0u32, |n| async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        (n < 60).then(|| (Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"x")), n + 1))
                    });
                    axum::body::Body::from_stream(drip)
                }),
            )
            .route(
                "/ready",
                axum::routing::get(move || {
                    let body = huge_readiness.clone();
                    async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
                }),
            ),
    ));
    let (before, _) = rss_mib(pid);
    rt.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        let post = |path: &str, body: Value| client.post(format!("{url}{path}")).bearer_auth(&admin).json(&body).send();
        assert_eq!(post("/api/v1/services", json!({"name": "s2"})).await.expect("svc").status(), StatusCode::CREATED);
        let mut ids = Vec::new();
        for (name, kind, path, cap) in [
            ("bomb", "http", "/bomb", None),
            ("trickle", "http", "/trickle", None),
            ("ready", "readiness", "/ready", Some(8 << 20)),
        ] {
            let mut probe = json!({"name": name, "service": "s2", "kind": kind, "url": format!("http://{target}{path}"),
                "interval_secs": 5, "timeout_ms": 3000});
            if let Some(cap) = cap {
                probe["body_cap_bytes"] = json!(cap);
            }
            let res = post("/api/v1/probes", probe).await.expect("probe");
            assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap_or_default());
            ids.push(res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_string());
        }
        // 1 GiB offered to the API, streamed: refused at the body limit, never read whole.
        let t = Instant::now();
        let gib = futures::stream::iter(
            (0..1024).map(|_| Ok::<_, std::io::Error>(hyper::body::Frame::data(bytes::Bytes::from(vec![b' '; 1 << 20])))),
        );
        let upload = client
            .post(format!("{url}/api/v1/services"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap(http_body_util::StreamBody::new(gib)))
            .send()
            .await;
        let refused_in = t.elapsed();
        match upload {
            Ok(res) => assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE),
            // The server may close the connection while the rest is still being sent.
            Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
        }
        // Each probe's first result, as it comes.
        let mut results = Vec::new();
        for id in &ids {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got: Vec<Value> = client
                    .get(format!("{url}/api/v1/probes/{id}/results"))
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .expect("results")
                    .json()
                    .await
                    .expect("json");
                if let Some(first) = got.into_iter().next() {
                    results.push(first);
                    break;
                }
                assert!(Instant::now() < deadline, "a result within 30 s");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let (peak, now) = rss_mib(pid);
        println!(
            "S2: 1 GiB upload refused in {refused_in:.1?}; bomb: {}, trickle: {} after {} ms, readiness: {} ({} components); \
             Triage peak RSS {peak} MiB (was {before} MiB, now {now} MiB)",
            results[0]["error"],
            results[1]["error"],
            results[1]["phases"]["total_us"].as_u64().unwrap_or(0) / 1000,
            results[2]["error"],
            results[2]["components"].as_array().map_or(0, Vec::len),
        );
        assert_eq!(results[0]["error"], "body_too_large");
        assert_eq!(results[1]["error"], "timeout");
        assert!(results[1]["phases"]["total_us"].as_u64().unwrap_or(u64::MAX) < 4_000_000, "the trickle ended at its timeout");
        assert_eq!(results[2]["outcome"], "down", "the one component down is found among 100,000");
        assert!(refused_in < Duration::from_secs(20), "the upload was not read whole: {refused_in:?}");
        assert!(peak < before + 400, "peak memory bounded: {peak} MiB from {before} MiB");
    });
}

/// N1: notifications through `kill -9` of Triage and restarts of PostgreSQL. Incidents are
/// declared while a webhook receiver (answering after 50 ms, so deliveries are in flight) counts
/// what arrives by event id. Every incident acknowledged with a 201 is announced; an event id
/// arrives twice only when Triage was killed between the receiver's answer and its record
/// (the first copy before a kill, the second after it), and never because of a PostgreSQL restart.
#[test]
fn notifications_survive_kill_9_and_postgres_restarts_without_loss_or_doubles() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let faults = rounds(2, 10);
    let dir = tempfile::Builder::new().prefix("triage-n1-").tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // Event id → arrival times; incident id → event id.
    type Arrivals = Arc<Mutex<(HashMap<String, Vec<Instant>>, HashMap<String, String>)>>;
    let arrivals: Arrivals = Arc::default();
    let receiver = rt.block_on(crate::common::serve_target(axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let arrivals = Arc::clone(&arrivals);
            move |body: axum::Json<Value>| {
                let arrivals = Arc::clone(&arrivals);
                async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let id = body["id"].as_str().unwrap_or_default().to_string();
                    let mut a = arrivals.lock().expect("lock");
                    a.0.entry(id.clone()).or_default().push(Instant::now());
                    if let Some(incident) = body["incident"]["id"].as_str() {
                        a.1.insert(incident.to_string(), id);
                    }
                    http::StatusCode::OK
                }
            }
        }),
    )));
    let args = ["--self-watch", "false", "--probe-allow", "127.0.0.0/8", "--notify-timeout", "2s"];
    let mut server = Proc::start(&data, &args);
    let admin = token(&data);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    let url = server.url.clone();
    rt.block_on(async {
        let res = client
            .post(format!("{url}/api/v1/channels"))
            .bearer_auth(&admin)
            .json(&json!({"name": "n1", "kind": "webhook", "url": format!("http://{receiver}/hook")}))
            .send()
            .await
            .expect("channel");
        assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap_or_default());
    });
    let declare = |url: String, n: usize, offset: usize| {
        let (client, admin) = (client.clone(), admin.clone());
        async move {
            let mut acknowledged = Vec::new();
            for i in 0..n {
                let res = client
                    .post(format!("{url}/api/v1/incidents"))
                    .bearer_auth(&admin)
                    .json(&json!({"title": format!("n1 incident {}", offset + i), "severity": "SEV3"}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let v: Value = r.json().await.expect("json");
                        acknowledged.push(v["id"].as_str().expect("id").to_string());
                    }
                    // Cut off by the fault: not acknowledged, so nobody is owed a message.
                    _ => {}
                }
            }
            acknowledged
        }
    };
    let mut acknowledged = Vec::new();
    let mut kills: Vec<Instant> = Vec::new();
    for round in 0..faults * 2 {
        // Events are being delivered while the fault strikes.
        let batch = rt.spawn(declare(server.url.clone(), 30, round * 100));
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(400)).await });
        if round % 2 == 0 {
            server.signal(nix::sys::signal::Signal::SIGKILL);
            kills.push(Instant::now());
            acknowledged.extend(rt.block_on(batch).expect("batch"));
            assert!(!server.child.wait().expect("killed").success());
            server = Proc::start(&data, &args);
        } else {
            let pid = postmaster(&data).expect("PostgreSQL running");
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT).expect("signal the postmaster");
            acknowledged.extend(rt.block_on(batch).expect("batch"));
            let deadline = Instant::now() + Duration::from_secs(60);
            while postmaster(&data).is_none_or(|p| p == pid) {
                assert!(Instant::now() < deadline, "PostgreSQL back within a minute");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    acknowledged.extend(rt.block_on(declare(server.url.clone(), 20, 10_000)));

    // Every acknowledged incident is announced (retries back off, so allow them time).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let missing = {
            let a = arrivals.lock().expect("lock");
            acknowledged.iter().filter(|i| !a.1.contains_key(*i)).count()
        };
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged incidents never announced",
            acknowledged.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let a = arrivals.lock().expect("lock");
    let mut doubled = 0;
    for (id, times) in &a.0 {
        if times.len() > 1 {
            doubled += 1;
            assert_eq!(times.len(), 2, "event {id} arrived {} times", times.len());
            let at_a_kill = kills.iter().any(|k| times[0] <= *k + Duration::from_millis(100) && times[1] > *k);
            assert!(at_a_kill, "event {id} arrived twice without a kill between the copies");
        }
    }
    println!(
        "N1: {faults} × kill -9 and {faults} PostgreSQL restarts; {} incidents acknowledged, {} events received, lost 0, \
         repeated {doubled} (each across a kill)",
        acknowledged.len(),
        a.0.len()
    );
    drop(a);
    assert!(server.terminate().success());
}
