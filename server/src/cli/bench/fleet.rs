//! `triage bench fleet`: 100,000 probes over 20,000 services checked by a real `triage serve`
//! (its own process, its embedded PostgreSQL) against local targets, for half an hour, while wrk
//! loads the pages and a browser opens the overview and a service page. It prints what the
//! scheduler, the processes and the pages did, each against its target.
//!
//! This process only sets up, drives and measures: the targets and the agent-like pusher run
//! here, so their CPU is not counted as Triage's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use app::model::{Outcome, Probe, ProbeKind};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::fleet_target::{self, Seen};
use super::procfs;
use super::{err, tempfile_dir};
use crate::cli::RunError;
use crate::cli::seed::{FLEET_KINDS, add_fleet, fleet_interval, fleet_rate};
use crate::config::{BenchArgs, DatabaseArgs};
use crate::storage::cluster;
use crate::storage::pool::{self, PoolSettings};
use crate::storage::results;

const VIEWER: &str = "fleet@example.com";
const VIEWER_PASSWORD: &str = "fleet bench viewer password";
/// The busy service a browser watches live: five probes every second.
const LIVE_SERVICE: &str = "fleet-live";
/// Checks answered this close to the end may still be in flight when it is taken.
const SETTLE: Duration = Duration::from_secs(15);

/// `triage serve` in its own process; stopped (SIGTERM, then waited for) when dropped, so that
/// its PostgreSQL stops cleanly on every way out.
struct Server {
    child: Child,
    base: String,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn triage() -> Result<Command, RunError> {
    Ok(Command::new(std::env::current_exe().map_err(err)?))
}

/// Runs a `triage` command on the data directory, with `stdin` as its input; answers its output.
fn triage_cli(data: &Path, args: &[&str], stdin: &str) -> Result<String, RunError> {
    use std::io::Write;
    let mut child = triage()?
        .arg("--data-dir")
        .arg(data)
        .args(["--log-level", "warn"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(err)?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).map_err(err)?;
    }
    let out = child.wait_with_output().map_err(err)?;
    if !out.status.success() {
        return Err(RunError::Io(format!("triage {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The prober's counters and its lateness histogram, from `/metrics`.
#[derive(Debug, Default, Clone)]
struct Scrape {
    started: f64,
    written: f64,
    dropped: f64,
    pending: f64,
    /// (upper bound in seconds, checks at most that late), cumulative.
    lateness: Vec<(f64, f64)>,
}

fn parse_metrics(text: &str) -> Scrape {
    let mut s = Scrape::default();
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else { continue };
        let Ok(v) = value.parse::<f64>() else { continue };
        match name {
            "triage_probe_checks_started_total" => s.started = v,
            "triage_probe_results_written_total" => s.written = v,
            "triage_probe_results_dropped_total" => s.dropped = v,
            "triage_probe_results_pending" => s.pending = v,
            _ => {
                if let Some(le) =
                    name.strip_prefix("triage_probe_lateness_seconds_bucket{le=\"").and_then(|r| r.strip_suffix("\"}"))
                {
                    let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
                    s.lateness.push((bound, v));
                }
            }
        }
    }
    s
}

/// The lateness of the checks between two scrapes: (quantile `q` in ms, interpolated within its
/// bucket as Prometheus' `histogram_quantile` does; share of checks at most `limit_s` late).
fn lateness(before: &Scrape, after: &Scrape, q: f64, limit_s: f64) -> (f64, f64) {
    let counts: Vec<(f64, f64)> = after
        .lateness
        .iter()
        .map(|(bound, n)| {
            let earlier = before.lateness.iter().find(|(b, _)| b == bound).map_or(0.0, |(_, n)| *n);
            (*bound, n - earlier)
        })
        .collect();
    let total = counts.last().map_or(0.0, |(_, n)| *n);
    if total <= 0.0 {
        return (0.0, 1.0);
    }
    let within = counts.iter().find(|(b, _)| *b >= limit_s).map_or(total, |(_, n)| *n) / total;
    let rank = q * total;
    let mut low = (0.0, 0.0);
    for (bound, n) in &counts {
        if *n >= rank {
            if bound.is_infinite() {
                return (low.0 * 1000.0, within);
            }
            let share = if *n > low.1 { (rank - low.1) / (n - low.1) } else { 1.0 };
            return ((low.0 + (bound - low.0) * share) * 1000.0, within);
        }
        low = (*bound, *n);
    }
    (low.0 * 1000.0, within)
}

struct Http {
    client: reqwest::Client,
    base: String,
    admin: String,
}

impl Http {
    async fn scrape(&self) -> Result<Scrape, RunError> {
        let text =
            self.client.get(format!("{}/metrics", self.base)).send().await.map_err(err)?.text().await.map_err(err)?;
        Ok(parse_metrics(&text))
    }
}

async fn wait_up(client: &reqwest::Client, base: &str, server: &mut Server) -> Result<(), RunError> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(600) {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(RunError::Io(format!("triage serve exited during start-up ({status}); see its log")));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(RunError::Io("triage serve did not come up in 10 minutes".into()))
}

async fn login(client: &reqwest::Client, base: &str) -> Result<String, RunError> {
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": VIEWER, "password": VIEWER_PASSWORD }))
        .send()
        .await
        .map_err(err)?;
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("triage_session=").and_then(|r| r.split(';').next()).map(str::to_string))
        .ok_or_else(|| RunError::Io(format!("signing in as the bench viewer failed: {}", res.status())))
}

/// What the pusher sent and had acknowledged.
#[derive(Default)]
struct Pushed {
    acked: std::sync::Mutex<Vec<u128>>,
    refused: AtomicU64,
    seq: AtomicI64,
}

/// The push probes' results, as agents would send them: each at its interval, from a random
/// phase, through at most 32 requests at a time. Stops when `stop` turns true.
fn spawn_pusher(
    http: &Http,
    push_token: &str,
    probes: Vec<(usize, Uuid)>,
    pushed: Arc<Pushed>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(32));
    for (i, id) in probes {
        let (client, url, token) =
            (http.client.clone(), format!("{}/api/v1/push/{id}", http.base), push_token.to_string());
        let (pushed, permits, mut stop) = (pushed.clone(), permits.clone(), stop.clone());
        set.spawn(async move {
            let every = Duration::from_secs(u64::from(fleet_interval(i)));
            let phase = Duration::from_millis(u64::try_from(id.as_u128() % every.as_millis()).unwrap_or(0));
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + phase, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = ticks.tick() => {}
                }
                let Ok(_permit) = permits.acquire().await else { return };
                let request_id = Uuid::new_v4().as_u128();
                let down = fleet_target::failing(i, Utc::now().timestamp());
                let body = json!({
                    "agent_id": "fleet",
                    "seq": pushed.seq.fetch_add(1, Ordering::Relaxed),
                    "outcome": if down { Outcome::Down } else { Outcome::Up },
                    "latency_ms": 2.0 + (request_id % 400) as f64 / 10.0,
                    "request_id": format!("{request_id:032x}"),
                });
                match client.post(&url).bearer_auth(&token).json(&body).send().await {
                    Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                        pushed.acked.lock().unwrap_or_else(|p| p.into_inner()).push(request_id);
                    }
                    _ => {
                        pushed.refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    set
}

/// Peak memory seen while sampling.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    triage_rss: u64,
    pg: procfs::ClusterMemory,
}

fn sample_memory(server_pid: u32, postmaster: u32, peaks: &mut Peaks) {
    if let Some((rss, _)) = procfs::rss(server_pid) {
        peaks.triage_rss = peaks.triage_rss.max(rss);
    }
    let m = procfs::cluster_memory(postmaster);
    if m.pss > peaks.pg.pss {
        peaks.pg = m;
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn tool(name: &str) -> bool {
    Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// wrk on the pages for `secs`: a few users, each loading a page every half second.
fn spawn_wrk(work: &Path, base: &str, cookie: &str, paths: &[String], secs: u64) -> Result<Child, RunError> {
    let list = paths.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ");
    let script = format!(
        "local paths = {{ {list} }}\nlocal n = 0\n\
         request = function() n = n % #paths + 1; return wrk.format(\"GET\", paths[n]) end\n\
         function delay() return 500 end\n"
    );
    let file = work.join("pages.lua");
    std::fs::write(&file, script).map_err(err)?;
    Command::new("wrk")
        .args(["-t1", "-c4", &format!("-d{secs}s"), "--latency", "--timeout", "10s", "-s"])
        .arg(&file)
        .args(["-H", &format!("Cookie: triage_session={cookie}"), base])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(err)
}

/// The browser's figures: overview cold loads and interaction, a service page cold, live updates.
fn browser(dir: &Path, base: &str, cookie: &str, service: &str) -> Result<String, RunError> {
    let out = Command::new("node")
        .current_dir(dir)
        .args(["bench/fleet-web.js", base, service, "60"])
        .env("TRIAGE_COOKIE", cookie)
        .env("TRIAGE_LIVE_SERVICE", LIVE_SERVICE)
        .output()
        .map_err(err)?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // A step that failed is a figure too (the page did not do it in time): reported, and the
    // rest of the run's figures still printed.
    if !out.status.success() {
        return Ok(format!("{text}(the browser run stopped at the step above: {})\n", out.status));
    }
    Ok(text)
}

/// Edits probes (a new URL on the same target) through the API: the time until each edit is
/// stored and the scheduler runs the new spec, then when the first check at the new URL came
/// against the probe's next phase slot (the schedule a probe keeps across edits).
async fn edits(
    http: Arc<Http>,
    seen: Arc<Seen>,
    target: String,
    probes: Vec<(usize, Uuid)>,
) -> Result<String, RunError> {
    let mut applied = Vec::new();
    // (index, when its PUT was sent, its next phase slot in ms since the epoch, its period).
    let mut slots = Vec::new();
    for (i, id) in &probes {
        let url = format!("{}/api/v1/probes/{id}", http.base);
        let probe: Probe =
            http.client.get(&url).bearer_auth(&http.admin).send().await.map_err(err)?.json().await.map_err(err)?;
        let mut spec = probe.spec;
        spec.url = Some(format!("http://{target}/edited/{i}"));
        let t = Instant::now();
        let res = http.client.put(&url).bearer_auth(&http.admin).json(&spec).send().await.map_err(err)?;
        let took = t.elapsed();
        if !res.status().is_success() {
            return Err(RunError::Io(format!(
                "editing a probe: {} {}",
                res.status(),
                res.text().await.unwrap_or_default()
            )));
        }
        applied.push(took.as_secs_f64() * 1000.0);
        let period = u64::from(spec.interval_secs) * 1000;
        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        let slot = now_ms - now_ms % period + crate::monitor::schedule::phase_ms(*id, period);
        slots.push((*i, t, if slot < now_ms { slot + period } else { slot }, period));
    }
    let (mut waits, mut late_ms) = (Vec::new(), Vec::new());
    for (i, t, slot, period) in slots {
        let deadline = t + Duration::from_millis(period + 5_000);
        loop {
            let first = seen.edited.lock().unwrap_or_else(|p| p.into_inner()).get(&i).copied();
            if let Some((at, at_ms)) = first {
                waits.push(at.duration_since(t).as_secs_f64());
                late_ms.push(at_ms as f64 - slot as f64);
                break;
            }
            if Instant::now() > deadline {
                return Err(RunError::Io(format!(
                    "edited probe {i} was not checked at its new URL within its interval"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let q = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        let rank = ((v.len() as f64 * p).ceil() as usize).max(1);
        v.get(rank - 1).copied().unwrap_or(f64::NAN)
    };
    Ok(format!(
        "probe edit (PUT, {} probes every 30 s): stored and rescheduled in p50 {:.1} ms, max {:.1} ms (target ≤ 100 ms); \
         first check at the new URL {:.0}–{:.0} s later, {:+.0}…{:+.0} ms from its phase slot",
        applied.len(),
        q(&mut applied, 0.5),
        q(&mut applied, 1.0),
        q(&mut waits, 0.0),
        q(&mut waits, 1.0),
        q(&mut late_ms, 0.0),
        q(&mut late_ms, 1.0),
    ))
}

/// Every check the target answered up to `cut` (ms) and every acknowledged push must have its
/// result stored: answers (checked, lost).
async fn lost_results(
    data: &Path,
    since: chrono::DateTime<Utc>,
    seen: &Seen,
    pushed: &Pushed,
    cut: i64,
) -> Result<(usize, usize), RunError> {
    let pool = pool::connect(
        cluster::attach_options(data, cluster::DATABASE),
        PoolSettings { max_connections: 1, min_connections: 0 },
    )
    .await
    .map_err(err)?;
    let mut stored = HashSet::new();
    let end = Utc::now() + chrono::Duration::minutes(1);
    let mut from = since - chrono::Duration::minutes(1);
    while from < end {
        let to = from + chrono::Duration::minutes(2);
        let mut tx = results::snapshot(&pool).await.map_err(err)?;
        for r in results::scan(&mut tx, None, from, to).await.map_err(err)? {
            if let Ok(id) = u128::from_str_radix(&r.request_id, 16) {
                stored.insert(id);
            }
        }
        tx.rollback().await.map_err(err)?;
        from = to;
    }
    pool.close().await;
    let checks = seen.checks.lock().unwrap_or_else(|p| p.into_inner());
    let acked = pushed.acked.lock().unwrap_or_else(|p| p.into_inner());
    let mut checked = 0;
    let mut lost = 0;
    for id in checks.iter().filter(|(at, _)| *at <= cut).map(|(_, id)| id).chain(acked.iter()) {
        checked += 1;
        if !stored.contains(id) {
            lost += 1;
        }
    }
    Ok((checked, lost))
}

pub async fn run(args: &BenchArgs) -> Result<(), RunError> {
    let n = args.fleet_probes;
    let (warmup, duration) = (args.fleet_warmup.0, args.fleet_duration.0);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    if !args.site_root.join("pkg").is_dir() {
        return Err(RunError::Config(format!(
            "no built front end at {}: build it first (LEPTOS_HASH_FILES=true cargo leptos build --release --split --precompress)",
            args.site_root.display()
        )));
    }
    let has_wrk = tool("wrk");
    let has_browser = args.browser_dir.join("node_modules/@playwright/test").is_dir() && tool("node");
    println!(
        "== fleet: {n} probes over {} services ({:.0} checks/s), {:?} warm-up then {:?} measured, on {cores} cores",
        n / 5,
        fleet_rate(n),
        warmup,
        duration
    );
    if !has_wrk {
        println!("(wrk not installed: the pages are not loaded, their figures are skipped)");
    }
    if !has_browser {
        println!("(no {}/node_modules or node: the browser's figures are skipped)", args.browser_dir.display());
    }

    let work = tempfile_dir::TempDir::new().map_err(err)?;
    let data = work.path().join("data");
    let seen = Arc::new(Seen::default());
    let target = fleet_target::spawn(seen.clone()).map_err(err)?;

    // The fleet, written straight into the data directory's database before Triage starts.
    let t = Instant::now();
    let database = crate::cli::serve::Database::open(&DatabaseArgs {
        database_url: None,
        data_dir: Some(data.clone()),
        pg_bin_dir: None,
        db_max_connections: 2,
        db_min_connections: 0,
    })
    .await?;
    let path = |kind: ProbeKind| match kind {
        ProbeKind::Readiness => "ready",
        ProbeKind::Metrics => "metrics",
        _ => "http",
    };
    let ids = add_fleet(&database.pool, n, |i, kind| format!("http://{target}/{}/{i}", path(kind))).await;
    database.close().await;
    let ids = ids.map_err(err)?;
    triage_cli(&data, &["user", "add", "--email", VIEWER, "--role", "viewer"], VIEWER_PASSWORD)?;
    let admin = triage_cli(&data, &["token", "create", "--scope", "admin", "--name", "fleet-admin"], "")?;
    let push_token = triage_cli(&data, &["token", "create", "--scope", "push", "--name", "fleet-push"], "")?;
    println!("set-up: {n} probes written, viewer and tokens made in {:.1} s", t.elapsed().as_secs_f64());

    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(err)?.port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(work.path().join("serve.log")).map_err(err)?;
    let child = triage()?
        .arg("--data-dir")
        .arg(&data)
        .args(["--log-level", "warn", "serve", "--addr", &format!("127.0.0.1:{port}"), "--self-watch", "false"])
        .args(["--probe-allow", "127.0.0.0/8", "--site-root"])
        .arg(&args.site_root)
        .stdout(log.try_clone().map_err(err)?)
        .stderr(log)
        .spawn()
        .map_err(err)?;
    let mut server = Server { child, base: base.clone(), data: data.clone() };
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(64).build().map_err(err)?;
    let t = Instant::now();
    wait_up(&client, &base, &mut server).await?;
    println!("triage serve up with {n} probes in {:.1} s", t.elapsed().as_secs_f64());
    let http = Arc::new(Http { client, base: server.base.clone(), admin });
    let cookie = login(&http.client, &http.base).await?;
    // The service the browser watches live (it would take minutes to see a result of the fleet's).
    for k in 0..5 {
        let spec = json!({ "name": format!("{LIVE_SERVICE}-{k}"), "service": LIVE_SERVICE, "kind": "http",
                           "url": format!("http://{target}/http/{}", 1_000_000 + k), "interval_secs": 1, "timeout_ms": 800 });
        let res = http
            .client
            .post(format!("{}/api/v1/probes", http.base))
            .bearer_auth(&http.admin)
            .json(&spec)
            .send()
            .await
            .map_err(err)?;
        if !res.status().is_success() {
            return Err(RunError::Io(format!(
                "adding the live service: {} {}",
                res.status(),
                res.text().await.unwrap_or_default()
            )));
        }
    }
    let push: Vec<(usize, Uuid)> =
        ids.iter().copied().enumerate().filter(|(i, _)| FLEET_KINDS[i % 5] == ProbeKind::Push).collect();
    let pushed = Arc::new(Pushed::default());
    let (stop_push, stop_rx) = tokio::sync::watch::channel(false);
    let mut pushers = spawn_pusher(&http, &push_token, push, pushed.clone(), stop_rx);
    let since = Utc::now();

    let server_pid = server.child.id();
    let postmaster = procfs::postmaster(&server.data.join("pg"))
        .ok_or_else(|| RunError::Io("cannot find PostgreSQL's postmaster.pid".into()))?;
    println!("warm-up: {warmup:?} (every probe checked at least once)");
    let warm_end = Instant::now() + warmup;
    while Instant::now() < warm_end {
        tokio::time::sleep((warm_end - Instant::now()).min(Duration::from_secs(60))).await;
        let s = http.scrape().await?;
        println!("  … {:.0} checks started, {:.0} results written, {:.0} pending", s.started, s.written, s.pending);
    }

    // The measured window.
    let m0 = http.scrape().await?;
    let (cpu_t0, cpu_p0) =
        (procfs::process_cpu(server_pid).unwrap_or(0.0), procfs::cluster_cpu(postmaster).unwrap_or(0.0));
    let acked0 = pushed.acked.lock().unwrap_or_else(|p| p.into_inner()).len();
    let t0 = Instant::now();
    // One overview page, a filtered one, a later page, and a service page.
    let first_service = {
        let services: Vec<app::model::Service> = http
            .client
            .get(format!("{}/api/v1/services", http.base))
            .bearer_auth(&http.admin)
            .send()
            .await
            .map_err(err)?
            .json()
            .await
            .map_err(err)?;
        services
            .into_iter()
            .find(|s| s.name == "fleet-00042")
            .ok_or_else(|| RunError::Io("service fleet-00042 missing".into()))?
            .id
    };
    let pages = [
        "/".to_string(),
        "/?state=problems".into(),
        "/?q=fleet-01&page=3".into(),
        format!("/services/{first_service}"),
    ];
    let wrk =
        if has_wrk { Some(spawn_wrk(work.path(), &http.base, &cookie, &pages, duration.as_secs())?) } else { None };
    let mut peaks = Peaks::default();
    sample_memory(server_pid, postmaster, &mut peaks);
    let mut browser_run = None;
    let mut edit_run = None;
    let end = t0 + duration;
    let mut next_line = t0 + Duration::from_secs(60);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(5).min(end - Instant::now())).await;
        sample_memory(server_pid, postmaster, &mut peaks);
        // The browser a sixth of the way in, the edits a third of the way: the fleet at full
        // load. Both run beside the sampling.
        if has_browser && browser_run.is_none() && t0.elapsed() >= duration / 6 {
            let (dir, base, cookie) = (args.browser_dir.clone(), http.base.clone(), cookie.clone());
            browser_run = Some(tokio::task::spawn_blocking(move || browser(&dir, &base, &cookie, "fleet-00042")));
        }
        if edit_run.is_none() && t0.elapsed() >= duration / 3 {
            // Twenty HTTP probes every 30 s, from the middle of the fleet.
            let every_30s: Vec<(usize, Uuid)> = ids.iter().copied().enumerate().filter(|(i, _)| i % 20 == 0).collect();
            let edited: Vec<(usize, Uuid)> = every_30s.iter().copied().skip(every_30s.len() / 2).take(20).collect();
            edit_run = Some(tokio::spawn(edits(http.clone(), seen.clone(), target.to_string(), edited)));
        }
        if Instant::now() >= next_line {
            next_line += Duration::from_secs(60);
            let s = http.scrape().await?;
            let secs = t0.elapsed().as_secs_f64();
            let (p99, _) = lateness(&m0, &s, 0.99, 0.05);
            println!(
                "  {:>4.0} s: {:.0} checks/s, lateness p99 {p99:.1} ms, {:.0} pending, Triage RSS {:.0} MB",
                secs,
                (s.started - m0.started) / secs,
                s.pending,
                mb(procfs::rss(server_pid).map_or(0, |r| r.0))
            );
        }
    }
    let m1 = http.scrape().await?;
    let secs = t0.elapsed().as_secs_f64();
    let (cpu_t1, cpu_p1) =
        (procfs::process_cpu(server_pid).unwrap_or(0.0), procfs::cluster_cpu(postmaster).unwrap_or(0.0));
    let acked1 = pushed.acked.lock().unwrap_or_else(|p| p.into_inner()).len();
    let hwm = procfs::rss(server_pid).map_or(0, |r| r.1);
    let _ = stop_push.send(true);
    while pushers.join_next().await.is_some() {}
    let browser_report = match browser_run {
        Some(run) => Some(run.await.map_err(err)??),
        None => None,
    };
    let edit_report = match edit_run {
        Some(run) => Some(run.await.map_err(err)?.unwrap_or_else(|e| format!("probe edit: failed: {e}"))),
        None => None,
    };
    let wrk_out = match wrk {
        Some(child) => {
            let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.map_err(err)?.map_err(err)?;
            Some(String::from_utf8_lossy(&out.stdout).to_string())
        }
        None => None,
    };

    // Every answered check and acknowledged push has its result stored.
    let cut = Utc::now().timestamp_millis() - i64::try_from(SETTLE.as_millis()).unwrap_or(0);
    tokio::time::sleep(SETTLE).await;
    for _ in 0..120 {
        if http.scrape().await?.pending == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (checked, lost) = lost_results(&server.data, since, &seen, &pushed, cut).await?;
    drop(server);

    let checks_s = (m1.started - m0.started) / secs;
    let (p50, _) = lateness(&m0, &m1, 0.5, 0.05);
    let (p99, within) = lateness(&m0, &m1, 0.99, 0.05);
    let triage_cores = (cpu_t1 - cpu_t0) / secs;
    let pg_cores = (cpu_p1 - cpu_p0) / secs;
    let machine = (triage_cores + pg_cores) / cores as f64 * 100.0;
    println!("\n== fleet: {secs:.0} s measured");
    println!(
        "checks started {checks_s:.0}/s (fleet average {:.0}/s), results written {:.0}/s, pushes acknowledged {:.0}/s",
        fleet_rate(n),
        (m1.written - m0.written) / secs,
        (acked1 - acked0) as f64 / secs
    );
    println!(
        "scheduling lateness p50 {p50:.1} ms, p99 {p99:.1} ms (target ≤ 50 ms); {:.3} % of checks started within 50 ms",
        within * 100.0
    );
    println!(
        "results lost: {lost} of {checked} answered checks and acknowledged pushes (target 0); dropped by the buffer: {:.0}; pushes refused: {}",
        m1.dropped,
        pushed.refused.load(Ordering::Relaxed)
    );
    println!(
        "CPU: Triage {:.1} % of a core, PostgreSQL {:.1} %: {machine:.1} % of the machine's {cores} cores (target ≤ 50 %)",
        triage_cores * 100.0,
        pg_cores * 100.0
    );
    println!(
        "memory: Triage RSS peak {:.0} MB (sampled every 5 s; VmHWM {:.0} MB; target ≤ 400 MB); PostgreSQL at its largest: \
         {:.0} MB private over {} processes, {:.0} MB shared (buffers touched), {:.0} MB PSS",
        mb(peaks.triage_rss),
        mb(hwm),
        mb(peaks.pg.private),
        peaks.pg.processes,
        mb(peaks.pg.shared),
        mb(peaks.pg.pss)
    );
    if let Some(out) = wrk_out {
        println!("pages under wrk (4 users, a page every 0.5 s each, {} paths in turn):", pages.len());
        for line in out.lines().filter(|l| {
            l.contains("Requests/sec")
                || l.contains("Non-2xx")
                || l.contains("Socket errors")
                || ["50%", "90%", "99%"].iter().any(|p| l.trim_start().starts_with(p))
        }) {
            println!("  {}", line.trim());
        }
    }
    if let Some(r) = edit_report {
        println!("{r}");
    }
    if let Some(r) = browser_report {
        print!("{r}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE triage_probe_lateness_seconds histogram\n\
        triage_probe_lateness_seconds_sum 1.5\n\
        triage_probe_lateness_seconds_count 100\n\
        triage_probe_lateness_seconds_bucket{le=\"0.001\"} 50\n\
        triage_probe_lateness_seconds_bucket{le=\"0.01\"} 90\n\
        triage_probe_lateness_seconds_bucket{le=\"0.05\"} 99\n\
        triage_probe_lateness_seconds_bucket{le=\"+Inf\"} 100\n\
        triage_probe_checks_started_total 100\n\
        triage_probe_results_pending 3\n";

    #[test]
    fn the_prober_figures_are_read_from_the_exposition() {
        let s = parse_metrics(TEXT);
        assert_eq!((s.started, s.pending), (100.0, 3.0));
        assert_eq!(s.lateness.len(), 4);
        assert!(s.lateness[3].0.is_infinite());
    }

    #[test]
    fn lateness_quantiles_interpolate_within_the_bucket_between_two_scrapes() {
        let after = parse_metrics(TEXT);
        let (p50, within) = lateness(&Scrape::default(), &after, 0.5, 0.05);
        assert!((p50 - 1.0).abs() < 1e-9, "{p50}");
        assert!((within - 0.99).abs() < 1e-9);
        // Rank 95 lies 5/9 of the way from 10 ms to 50 ms.
        let (p95, _) = lateness(&Scrape::default(), &after, 0.95, 0.05);
        assert!((p95 - (10.0 + 40.0 * 5.0 / 9.0)).abs() < 1e-6, "{p95}");
        // Only the checks after the first scrape count.
        let before = parse_metrics(&TEXT.replace("} 90", "} 80").replace("} 99", "} 80").replace("} 100\n", "} 80\n"));
        let (_, within) = lateness(&before, &after, 0.5, 0.05);
        assert!((within - 19.0 / 20.0).abs() < 1e-9, "{within}");
    }
}
