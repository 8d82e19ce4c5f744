//! Test support: one private PostgreSQL cluster per test binary (the same embedded-PostgreSQL code
//! the app uses), a template database migrated once, and a fresh database per test cloned from
//! it; the real app spawned on port 0; the real `triage` binary for process-level tests.
#![allow(dead_code)]

pub mod openapi;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use app::model::DatabaseMode;
use app::model::{NewToken, NewUser, Role, Scope};
use axum::Router;
use server::access::Principal;
use server::access::actor::Actor;
use server::monitor::pipeline::{ProbeSettings, Probing};
use server::storage;
use server::storage::cluster::{EmbeddedPg, EmbeddedPgConfig};
use server::storage::pool::{self, PoolSettings};
use server::web::access::Secured;
use server::web::http_server::{self, Application, ServeSettings};
use server::web::state::AppState;
use sqlx::PgPool;
use tempfile::TempDir;

const TEMPLATE: &str = "triage_template";

pub struct TestCluster {
    pub pg: EmbeddedPg,
    _dir: TempDir,
}

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
static CREATE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The binary's shared cluster, started (and the template migrated) on first use.
pub fn cluster() -> &'static TestCluster {
    CLUSTER.get_or_init(|| {
        let dir = shared_cluster_dir();
        let mut config = EmbeddedPgConfig::new(dir.path());
        config.durable = false;
        let pg = EmbeddedPg::start(&config).expect("embedded PostgreSQL starts");
        let options = pg.connect_options("postgres");
        // The template is prepared on a runtime of its own: callers may be inside another runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let admin = pool::connect(options.clone(), PoolSettings { max_connections: 1, min_connections: 0 })
                    .await
                    .expect("connect to test cluster");
                storage::create_database_if_missing(&admin, TEMPLATE).await.expect("create template");
                let template =
                    pool::connect(options.database(TEMPLATE), PoolSettings { max_connections: 1, min_connections: 0 })
                        .await
                        .expect("connect to template");
                pool::migrate(&template).await.expect("migrate template");
                template.close().await;
                admin.close().await;
            })
        })
        .join()
        .expect("template set-up thread");
        TestCluster { pg, _dir: dir }
    })
}

/// The shared cluster's directory: `target/tmp/pg-<pid>`. A static is never dropped, so its
/// directory outlives the run; it lives under `target/` rather than the system's temporary
/// directory, and each run removes those of runs whose process is gone (a full disk fails
/// later builds in odd ways: a linker killed mid-write).
fn shared_cluster_dir() -> TempDir {
    let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(parent).expect("target tmp dir");
    if let Ok(entries) = std::fs::read_dir(parent) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("pg-")).and_then(|p| p.split('-').next()) else {
                continue;
            };
            let Ok(pid) = pid.parse::<i32>() else { continue };
            let gone =
                matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Err(nix::errno::Errno::ESRCH));
            if gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new().prefix(&format!("pg-{}-", std::process::id())).tempdir_in(parent).expect("tempdir")
}

/// A cluster of the test's own in a new temporary directory (fsync off: throwaway).
pub fn start_private_cluster() -> (TempDir, EmbeddedPg) {
    let dir = tempfile::Builder::new().prefix("triage-pg-").tempdir().expect("tempdir");
    let mut config = EmbeddedPgConfig::new(dir.path());
    config.durable = false;
    let pg = EmbeddedPg::start(&config).expect("embedded PostgreSQL starts");
    (dir, pg)
}

/// A new, migrated database for one test, cloned from the template.
pub async fn fresh_db() -> PgPool {
    fresh_db_url().await.0
}

/// A fresh database and a `DATABASE_URL` for it, for `triage` processes the test starts.
pub async fn fresh_db_url() -> (PgPool, String) {
    let cluster = cluster();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    {
        // CREATE DATABASE … TEMPLATE fails while another session uses the template: one at a time.
        let _guard = CREATE_LOCK.lock().await;
        let admin = pool::connect(
            cluster.pg.connect_options("postgres"),
            PoolSettings { max_connections: 1, min_connections: 0 },
        )
        .await
        .expect("admin connection");
        storage::create_database_from_template(&admin, &name, TEMPLATE).await.expect("clone template");
        admin.close().await;
    }
    let pool =
        pool::connect(cluster.pg.connect_options(&name), PoolSettings { max_connections: 5, min_connections: 0 })
            .await
            .expect("connect to test database");
    let socket_dir = cluster.pg.data_dir().join("run");
    (pool, format!("postgres://{}@localhost/{name}?host={}", server::storage::cluster::SUPERUSER, socket_dir.display()))
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    /// Sends an `admin` API token with every request (most tests exercise features, not access).
    pub client: reqwest::Client,
    /// Sends no credentials.
    pub anonymous: reqwest::Client,
    pub admin_token: String,
    pub pool: PgPool,
    pub state: AppState,
    probing: Option<Probing>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Signals shutdown and waits until the server has drained and probing has stopped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            handle.await.expect("server task");
        }
        if let Some(p) = self.probing.take() {
            p.shutdown(Duration::from_secs(10)).await;
        }
    }

    /// GETs `path` and decodes its JSON body (panics with the path on any failure: tests only).
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let res = self.client.get(self.url(path)).send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.unwrap_or_else(|e| panic!("GET {path}: not the expected JSON: {e}"))
    }

    /// Waits until every result submitted so far is written.
    pub async fn flush(&self) {
        self.state.scheduler.ingest().flush().await.expect("writer running");
    }

    /// The stored result a live event announced (live events carry a summary, not the details).
    pub async fn stored(&self, live: &app::model::LiveResult) -> app::model::ProbeResult {
        let results: Vec<app::model::ProbeResult> =
            self.get_json(&format!("/api/v1/probes/{}/results?limit=1000", live.probe_id)).await;
        results.into_iter().find(|r| r.request_id == live.request_id).expect("the announced result is stored")
    }

    /// Signals shutdown without waiting; returns the server task to await.
    pub fn begin_shutdown(&mut self) -> tokio::task::JoinHandle<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server.take().expect("server running")
    }
}

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// A new user of `role` with a signed-in session: the session cookie's value.
    pub async fn session_of(&self, role: Role) -> (String, String) {
        let email = format!("{}-{}@example.com", role.as_str(), uuid::Uuid::new_v4().simple());
        let actor = Actor { principal: Principal::Cli, remote_addr: None, request_id: None };
        let input = NewUser { email: email.clone(), display_name: String::new(), role, password: PASSWORD.into() };
        let user = server::access::accounts::create_user(&self.pool, &actor, &input).await.expect("user");
        let cookie = server::access::session::start(&self.pool, &self.state.auth.settings, user.id, None, None)
            .await
            .expect("session");
        (email, cookie)
    }

    /// A client that behaves like this site's pages in a browser: the session cookie and the
    /// site's Origin on every request, redirects not followed.
    pub fn browser(&self, cookie: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::COOKIE, format!("triage_session={cookie}").parse().expect("header"));
        headers.insert(reqwest::header::ORIGIN, self.url.parse().expect("header"));
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .expect("client")
    }

    /// A signed-in browser of a new user with `role`.
    pub async fn browser_of(&self, role: Role) -> reqwest::Client {
        let (_, cookie) = self.session_of(role).await;
        self.browser(&cookie)
    }
}

/// Port 0, no site, no self-watch; probes may reach loopback (tests' targets live there), as an
/// admin's `--probe-allow 127.0.0.0/8` would allow.
pub fn test_settings() -> ServeSettings {
    ServeSettings {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        site_root: std::env::temp_dir().join("triage-test-site-absent"),
        probes: ProbeSettings {
            allow: vec!["127.0.0.0/8".parse().expect("cidr")],
            self_watch: false,
            ..ProbeSettings::default()
        },
        ..ServeSettings::default()
    }
}

/// An API token of `scope`, created as `triage token create` would.
pub async fn create_token(pool: &PgPool, scope: Scope, name: &str) -> String {
    let actor = Actor { principal: Principal::Cli, remote_addr: None, request_id: None };
    let input = NewToken { name: name.into(), scope, expires_in_days: None };
    server::access::accounts::create_token(pool, &actor, &input).await.expect("token").token
}

/// Spawns the real application on port 0 over `pool`.
pub async fn spawn_app_with(pool: PgPool, settings: ServeSettings, extra: Secured) -> TestApp {
    let listener = tokio::net::TcpListener::bind(settings.addr).await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (state, probing) =
        http_server::build_state(pool.clone(), &settings, DatabaseMode::Embedded, addr).await.expect("state");
    if settings.probes.self_watch {
        probing.watch_self(&pool, addr).await.expect("self-watch");
    }
    let router =
        http_server::router(state.clone(), &settings, extra).layer(axum::middleware::from_fn(openapi::conforms));
    let app = Application::with_listener(listener, &settings, router);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stopping = state.stopping.clone();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
        stopping.send_replace(true);
    }));
    let admin_token = create_token(&pool, Scope::Admin, "tests").await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {admin_token}").parse().expect("header value"));
    TestApp {
        addr,
        url: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers)
            .build()
            .expect("client"),
        anonymous: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        admin_token,
        pool,
        state,
        probing: Some(probing),
        shutdown: Some(tx),
        server: Some(server),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(fresh_db().await, test_settings(), Secured::default()).await
}

/// The real `triage` binary, for tests of the process itself.
pub fn triage() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_triage"));
    // Keep the developer's environment out of the test.
    for var in
        ["DATABASE_URL", "TRIAGE_DATA_DIR", "TRIAGE_ADDR", "TRIAGE_LOG", "TRIAGE_LOG_FORMAT", "TRIAGE_PG_BIN_DIR"]
    {
        cmd.env_remove(var);
    }
    cmd
}

/// A running `triage` process with JSON logs, and the lines it has logged so far.
pub struct Proc {
    pub child: Child,
    pub url: String,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Proc {
    /// Starts `triage serve` on `data_dir` and waits for its "Triage is up" line.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Proc {
        let mut cmd = triage();
        cmd.arg("--data-dir").arg(data_dir);
        Proc::serve(cmd, extra_args)
    }

    /// Starts `triage serve` on the database at `url` (one replica of several).
    pub fn replica(url: &str, extra_args: &[&str]) -> Proc {
        let mut cmd = triage();
        cmd.env("DATABASE_URL", url);
        Proc::serve(cmd, extra_args)
    }

    /// Starts `triage agent` for `location` against `server` (the token in the environment, as
    /// the README advises), probes allowed to reach loopback; waits for its first log line.
    pub fn agent(server: &str, token: &str, location: &str, spool: Option<&Path>, extra_args: &[&str]) -> Proc {
        let mut cmd = triage();
        cmd.env("TRIAGE_TOKEN", token)
            .args(["agent", "--server", server, "--location", location, "--probe-allow", "127.0.0.0/8"])
            .args(["--log-format", "json"]);
        if let Some(dir) = spool {
            cmd.arg("--spool-dir").arg(dir);
        }
        cmd.args(extra_args);
        let mut proc = Proc::launch(cmd);
        proc.wait_for(|l| l.contains("agent starting"), Duration::from_secs(30)).expect("the agent starts");
        proc.url = server.to_string();
        proc
    }

    fn launch(mut cmd: Command) -> Proc {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn triage");
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc { child, url: String::new(), lines: rx, seen: Vec::new() }
    }

    fn serve(mut cmd: Command, extra_args: &[&str]) -> Proc {
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--log-format", "json"]).args(extra_args);
        let mut proc = Proc::launch(cmd);
        let up = proc.wait_for(|l| l.contains("Triage is up"), Duration::from_secs(90)).expect("triage comes up");
        let v: serde_json::Value = serde_json::from_str(&up).expect("JSON log line");
        proc.url = v["url"].as_str().expect("url field").to_string();
        proc
    }

    /// Waits for the next log line matching `pred` (lines before it are kept in `seen`).
    pub fn wait_for(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).expect("signal");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.child.wait().expect("wait")
    }
}

impl Drop for Proc {
    /// A failed assertion must not leave a server running (it would also hold the test's pipes).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A real HTTP target on loopback.
pub async fn serve_target(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// A loopback target whose `/health` answers the status held in the returned cell (switched by
/// the test to fail and recover).
pub async fn health_target(initial: u16) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU16>) {
    use std::sync::atomic::{AtomicU16, Ordering};
    let status = std::sync::Arc::new(AtomicU16::new(initial));
    let served = status.clone();
    let target = serve_target(Router::new().route(
        "/health",
        axum::routing::get(move || {
            let code = served.load(Ordering::SeqCst);
            async move { (http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK), "state") }
        }),
    ))
    .await;
    (target, status)
}

/// Waits for hub events until `pred` has accepted `n` of them; returns those.
pub async fn wait_events(
    rx: &mut tokio::sync::broadcast::Receiver<server::monitor::hub::ProbeEvent>,
    n: usize,
    timeout: Duration,
    pred: impl Fn(&server::monitor::hub::ProbeEvent) -> bool,
) -> Vec<server::monitor::hub::ProbeEvent> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while got.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) => {
                if pred(&e) {
                    got.push(e);
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("event hub closed: {e}"),
            Err(_) => panic!("timed out after {timeout:?} with {} of {n} events", got.len()),
        }
    }
    got
}

/// Result events of one probe.
pub fn result_of(probe: uuid::Uuid) -> impl Fn(&server::monitor::hub::ProbeEvent) -> bool {
    move |e| matches!(e, server::monitor::hub::ProbeEvent::Result(result) if result.probe_id == probe)
}

/// The next Server-Sent Events frame that `pred` accepts (earlier ones are skipped).
pub async fn next_frame(res: &mut reqwest::Response, buf: &mut String, pred: impl Fn(&str) -> bool) -> Option<String> {
    loop {
        while let Some(end) = buf.find("\n\n") {
            let frame = buf[..end].to_string();
            buf.drain(..end + 2);
            if pred(&frame) {
                return Some(frame);
            }
        }
        match tokio::time::timeout(Duration::from_secs(20), res.chunk()).await.expect("no frame within 20 s") {
            Ok(Some(bytes)) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            _ => return None,
        }
    }
}
