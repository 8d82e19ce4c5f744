//! Building the application (state, routes, middleware) and serving it until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use app::api::backend::SharedBackend;
use app::model::{DatabaseMode, InstanceInfo};
use app::{App, shell};
use axum::Router;
use axum::extract::ConnectInfo;
use chrono::Utc;
use http::Method;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use leptos::prelude::{LeptosOptions, provide_context, use_context};
use leptos_axum::{LeptosRoutes, generate_route_list};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::access::{Auth, AuthSettings};
use crate::monitor::pipeline::{ProbeSettings, Probing};
use crate::respond::incidents::engine::{Engine, EngineSettings};
use crate::respond::incidents::{Incidents, RoomHub};
use crate::storage;
use crate::storage::reads::Reads;
use crate::web::access::{self, Gate, Secured, Table};
use crate::web::connection::{Activity, ClientAddr, ConnectionCap, client_addr, hold_until_sent};
use crate::web::metrics::Metrics;
use crate::web::middleware::{HttpLimits, with_middleware};
use crate::web::self_check::ReadinessChecker;
use crate::web::server_fns::PgBackend;
use crate::web::state::AppState;
use crate::web::{api, health, security};

/// Serving settings, separate from the CLI so tests can build them directly.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub addr: SocketAddr,
    pub site_root: PathBuf,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub trusted_proxies: Vec<crate::monitor::check::policy::Cidr>,
    pub body_limit: usize,
    pub shutdown_timeout: Duration,
    pub readiness_cache: Duration,
    pub readiness_timeout: Duration,
    pub probes: ProbeSettings,
    /// The declarative probe file applied at start.
    pub config_file: Option<PathBuf>,
    pub auth: AuthSettings,
    /// Where the first-run set-up token is also written (mode 0600), besides the log.
    pub setup_token_file: Option<PathBuf>,
    pub incidents: EngineSettings,
    /// Notification delivery; its `base_url` is filled from `--public-url` or the listen address.
    pub notify: crate::respond::notify::NotifySettings,
    /// `--trace-url`: a link template with `{trace_id}`, shown beside request ids.
    pub trace_url: Option<String>,
    /// `--database-read-url`: a streaming replica for reads that tolerate `read_max_lag`.
    pub read_url: Option<crate::config::DatabaseUrl>,
    pub read_max_lag: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            site_root: PathBuf::from("target/site"),
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            trusted_proxies: Vec::new(),
            body_limit: 2 << 20,
            shutdown_timeout: Duration::from_secs(30),
            readiness_cache: Duration::from_secs(1),
            readiness_timeout: Duration::from_secs(1),
            probes: ProbeSettings::default(),
            config_file: None,
            auth: AuthSettings::default(),
            setup_token_file: None,
            incidents: EngineSettings::default(),
            notify: crate::respond::notify::NotifySettings::default(),
            trace_url: None,
            read_url: None,
            read_max_lag: Duration::from_secs(1),
        }
    }
}

impl From<&crate::config::ServeArgs> for ServeSettings {
    fn from(a: &crate::config::ServeArgs) -> Self {
        Self {
            addr: a.addr,
            site_root: a.site_root.clone(),
            request_timeout: a.request_timeout.0,
            header_read_timeout: a.header_read_timeout.0,
            max_connections: a.max_connections as usize,
            trusted_proxies: a.trusted_proxies.clone(),
            body_limit: a.body_limit.0,
            shutdown_timeout: a.shutdown_timeout.0,
            readiness_cache: a.readiness_cache.0,
            readiness_timeout: a.readiness_timeout.0,
            probes: ProbeSettings {
                allow: a.probe_allow.clone(),
                resolver: a.probe_resolver,
                concurrency: a.probe_concurrency as usize,
                ingest: crate::monitor::ingest::IngestConfig {
                    buffer: a.result_buffer as usize,
                    buffer_bytes: a.result_buffer_bytes.0,
                    ..Default::default()
                },
                raw_retention: a.raw_retention.0,
                self_watch: a.self_watch,
                ..ProbeSettings::default()
            },
            config_file: a.config.clone(),
            auth: AuthSettings {
                public_url: a.public_url.clone(),
                session_idle: a.session_idle.0,
                session_lifetime: a.session_lifetime.0,
                audit_retention: a.audit_retention.0,
                audit_max_rows: a.audit_max_rows,
                ..AuthSettings::default()
            },
            setup_token_file: None,
            incidents: EngineSettings { auto_open: a.auto_incidents, ..EngineSettings::default() },
            notify: crate::respond::notify::NotifySettings {
                timeout: a.notify_timeout.0,
                max_attempts: a.notify_attempts,
                failing_after: a.notify_failing_after.0,
                flap_window: a.notify_flap_window.0,
                cert_days: a.notify_cert_days,
                log_retention: a.notify_log_retention.0,
                ..Default::default()
            },
            trace_url: a.trace_url.clone(),
            read_url: a.database_read_url.clone(),
            read_max_lag: a.read_max_lag.0,
        }
    }
}

/// Builds the shared state over a migrated pool and starts probing; `listen` is the bound address
/// (the prober may reach it, so Triage can watch itself).
pub async fn build_state(
    pool: PgPool,
    settings: &ServeSettings,
    database: DatabaseMode,
    listen: SocketAddr,
) -> Result<(AppState, Probing), sqlx::Error> {
    let (instance_id, created_at) = storage::ensure_instance(&pool).await?;
    let instance = InstanceInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        instance_id,
        created_at,
        started_at: Utc::now(),
        database,
    };
    let assets = super::assets::SiteAssets::find(&settings.site_root);
    let leptos_options = LeptosOptions::builder()
        .output_name("triage")
        .site_root(settings.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(settings.addr)
        .hash_files(assets.hash_file.is_some())
        .hash_file(assets.hash_file.as_ref().map_or_else(|| "hash.txt".into(), |f| f.to_string_lossy().into()))
        .build();
    let has_users = storage::auth::any_users(&pool).await?;
    let setup_token = if has_users { None } else { Some(first_run_token(settings)) };
    let token_file = setup_token.as_ref().and(settings.setup_token_file.clone());
    let auth = Arc::new(Auth::new(settings.auth.clone(), has_users, setup_token, token_file));
    match crate::respond::guidance::library::seed(&pool).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(checklists = n, "checklist versions seeded from checklists/"),
        Err(e) => tracing::error!(error = %e, "seeding the checklist library failed"),
    }
    let probing = Probing::start(pool.clone(), listen, &settings.probes).await?;
    let rooms = RoomHub::with_bus(probing.bus.clone());
    let stopping = Arc::new(tokio::sync::watch::Sender::new(false));
    let reads = match &settings.read_url {
        Some(url) => {
            let options = sqlx::postgres::PgConnectOptions::from_str(url.expose())
                .map_err(|_| sqlx::Error::Configuration("--database-read-url is not a valid PostgreSQL URL".into()))?;
            // Lazy: a replica that is down at start-up must not keep Triage from starting.
            let replica = sqlx::postgres::PgPoolOptions::new()
                .max_connections(pool.options().get_max_connections())
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(2))
                .connect_lazy_with(options);
            tracing::info!(url = %url.redacted(), "reads that tolerate lag may use a read replica");
            Reads::with_replica(pool.clone(), replica, settings.read_max_lag, stopping.subscribe())
        }
        None => Reads::primary_only(pool.clone()),
    };
    tokio::spawn(rooms.clone().follow(pool.clone(), probing.replicas.watch()));
    let metrics = Metrics::new(pool.clone());
    let mut notify = settings.notify.clone();
    notify.base_url = match &settings.auth.public_url {
        Some(u) => u.as_str().trim_end_matches('/').to_string(),
        None if listen.ip().is_unspecified() => format!("http://127.0.0.1:{}", listen.port()),
        None => format!("http://{listen}"),
    };
    let notifier = crate::respond::notify::Notifier {
        outbox: crate::respond::notify::Outbox {
            pool: pool.clone(),
            policy: probing.scheduler.policy_handle(),
            settings: Arc::new(notify),
            wake: Arc::default(),
        },
    };
    metrics.attach_probes(Arc::clone(&probing.ingest_stats), probing.scheduler.clone());
    metrics.attach_cluster(probing.replicas.leadership.clone(), reads.clone());
    let state = AppState::new(crate::web::state::Shared {
        leptos_options,
        assets,
        readiness: ReadinessChecker::new(
            pool.clone(),
            Arc::clone(&probing.ingest_stats),
            settings.readiness_timeout,
            settings.readiness_cache,
        ),
        metrics,
        instance: Arc::new(instance),
        scheduler: probing.scheduler.clone(),
        hub: probing.hub.clone(),
        judge: probing.judge.clone(),
        replicas: probing.replicas.clone(),
        bus: probing.bus.clone(),
        overview: Arc::default(),
        auth,
        incidents: Incidents { pool: pool.clone(), rooms: rooms.clone() },
        guide: crate::respond::guidance::Guide { pool: pool.clone(), rooms },
        postmortems: crate::respond::postmortems::Postmortems { pool: pool.clone() },
        notifier,
        maintenance: crate::monitor::maintenance::Maintenance { pool: pool.clone() },
        status_pages: crate::respond::status_pages::StatusPages::new(pool.clone(), reads.clone(), probing.bus.clone()),
        slos: crate::monitor::slo::Slos::new(pool.clone(), probing.bus.clone()),
        stopping,
        reads,
        config_file: settings.config_file.clone(),
        demo: Arc::default(),
        raw_retention: settings.probes.raw_retention,
        pool,
    });
    spawn_auth_housekeeping(&state);
    tokio::spawn(state.clone().follow_notes());
    let engine = || Engine {
        pool: state.pool.clone(),
        rooms: state.incidents.rooms.clone(),
        settings: settings.incidents.clone(),
    };
    let leadership = probing.replicas.leadership.clone();
    tokio::spawn(engine().run(state.hub.clone(), leadership.clone(), state.stopping.subscribe()));
    tokio::spawn(engine().judge_burns_every(leadership.clone(), state.stopping.subscribe()));
    state.notifier.outbox.clone().spawn(leadership, state.stopping.subscribe());
    Ok((state, probing))
}

/// Hourly, until shutdown begins: ended sessions are removed (they are refused as soon as they
/// end; this only keeps the table small) and the audit log is held to its age and size.
fn spawn_auth_housekeeping(state: &AppState) {
    let pool = state.pool.clone();
    let settings = state.auth.settings.clone();
    let mut stopping = state.stopping.subscribe();
    tokio::spawn(async move {
        let stopped = async move {
            // The returned guard is dropped at once: it must not live across an await.
            let _ = stopping.wait_for(|s| *s).await.map(|_| ());
        };
        tokio::pin!(stopped);
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = every.tick() => {
                    match storage::auth::purge_sessions(&pool, settings.session_idle).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(sessions = n, "ended sessions removed"),
                        Err(e) => tracing::warn!(error = %e, "removing ended sessions failed; retrying in an hour"),
                    }
                    let max_rows = i64::from(settings.audit_max_rows);
                    match storage::auth::prune_audit(&pool, settings.audit_retention, max_rows).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(entries = n, "audit entries past retention removed"),
                        Err(e) => tracing::warn!(error = %e, "trimming the audit log failed; retrying in an hour"),
                    }
                }
                () = &mut stopped => break,
            }
        }
    });
}

/// A new set-up token, logged (and written to the data directory) so whoever started the server
/// can create the first admin and nobody else on the network can.
fn first_run_token(settings: &ServeSettings) -> String {
    let token = crate::access::random_secret().unwrap_or_else(|_| uuid::Uuid::new_v4().simple().to_string());
    if let Some(path) = &settings.setup_token_file {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(token.as_bytes()));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "could not write the set-up token file");
        }
    }
    // Printed on purpose: it is single-use and only creates the first admin.
    tracing::warn!(setup_token = %token, "no users yet: open /setup and enter this set-up token to create the first admin");
    token
}

/// Health and metrics: open to everyone (orchestrators and Prometheus poll them).
fn health_routes() -> Secured {
    Secured::default()
        .open("/healthz", health::healthz)
        .open("/readyz", health::readyz)
        .open("/metrics", health::metrics)
        .public(Method::POST, security::CSP_REPORT_PATH, axum::routing::post(security::csp_report))
}

/// The access table of the whole application (for the enforcement middleware and for tests).
pub fn access_table(extra: Secured) -> (Router<AppState>, Table) {
    health_routes().merge(api::routes()).merge(super::status_page::routes()).merge(extra).finish()
}

/// All routes: health, metrics, the Leptos pages and server functions, static files, behind the
/// access gate. `extra` lets tests mount routes of their own under the same middleware.
pub fn router(state: AppState, settings: &ServeSettings, extra: Secured) -> Router {
    let backend = SharedBackend(Arc::new(PgBackend::new(state.clone())));
    let trace_url = settings.trace_url.clone();
    let stylesheet = app::model::StylesheetHref(state.assets.stylesheet.clone());
    let context = move || {
        provide_context(stylesheet.clone());
        // The overview's body, rendered for this request before the page (`api::overview::prefetch`).
        if let Some(body) = use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<app::model::OverviewBody>().cloned())
        {
            provide_context(body);
        }
        provide_context(backend.clone());
        // The page's user, from the credentials the access gate attached to the request.
        let me = use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<crate::access::Principal>().and_then(|p| p.user()).cloned());
        provide_context(app::model::CurrentUser(me));
        provide_context(app::model::TraceUrl(trace_url.clone()));
        // The nonce the response's policy names (made by the security middleware), in place of
        // the one Leptos would make, so the page's inline scripts carry it.
        if let Some(nonce) = use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<security::CspNonce>().map(|n| n.0.clone()))
        {
            provide_context(leptos::nonce::Nonce::from_value(nonce));
        }
    };
    let leptos_options = state.leptos_options.clone();
    let metrics = state.metrics.clone();
    let (secured, table) = access_table(extra);
    let gate = Arc::new(Gate {
        pool: state.pool.clone(),
        auth: state.auth.clone(),
        table,
        stylesheet: state.assets.stylesheet.clone(),
    });
    let files = super::assets::routes(&settings.site_root);
    let routes = secured
        .leptos_routes_with_context(&state, generate_route_list(App), context.clone(), move || {
            shell(leptos_options.clone())
        })
        .merge(files)
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        .with_state(state.clone())
        // Inside the gate: only for those allowed to see the page.
        .layer(axum::middleware::from_fn_with_state(state, super::api::overview::prefetch))
        .layer(axum::middleware::from_fn_with_state(gate, access::enforce));
    with_middleware(
        routes,
        metrics,
        HttpLimits { request_timeout: settings.request_timeout, body_limit: settings.body_limit },
    )
}

/// A bound, not yet serving, application.
pub struct Application {
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown_timeout: Duration,
    cap: Arc<ConnectionCap>,
    trusted_proxies: Arc<[crate::monitor::check::policy::Cidr]>,
}

impl Application {
    /// Binds the listener (port 0 picks a free port, as tests do).
    pub async fn bind(settings: &ServeSettings, router: Router) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.addr).await?;
        Ok(Self::with_listener(listener, settings, router))
    }

    /// Serves on a listener bound earlier (its address is needed before the router exists).
    pub fn with_listener(listener: TcpListener, settings: &ServeSettings, router: Router) -> Self {
        Self {
            listener,
            router,
            header_read_timeout: settings.header_read_timeout,
            shutdown_timeout: settings.shutdown_timeout,
            cap: Arc::new(ConnectionCap::new(settings.max_connections)),
            trusted_proxies: settings.trusted_proxies.clone().into(),
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting and gives in-flight requests up to
    /// the shutdown timeout to finish. axum::serve has no header-read timeout, hence our own loop.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(self.header_read_timeout);
        // Pings find dead h2 peers; the idle watchdog below gives h2c the header-read limit.
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.header_read_timeout)
            .keep_alive_timeout(self.header_read_timeout)
            .max_concurrent_streams(256)
            .max_header_list_size(64 << 10);
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = self.cap.admit() => permit,
                () = &mut shutdown => break,
            };
            let Some(permit) = permit else { break };
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // e.g. out of file descriptors: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // Pages are streamed in several writes: with Nagle's algorithm each small write
                    // after the first waits for the client's delayed ACK (up to 40 ms), which held
                    // SSR at ~750 pages/s. Responses are already batched by hyper; no need for it.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, %peer, "could not disable Nagle's algorithm");
                    }
                    let activity = Activity::default();
                    let service = self.service(peer, activity.clone());
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
                        .into_owned();
                    let conn = graceful.watch(conn);
                    let idle_limit = self.header_read_timeout;
                    tokio::spawn(async move {
                        let _permit = permit;
                        tokio::select! {
                            done = conn => if let Err(e) = done {
                                tracing::debug!(error = %e, %peer, "connection closed with an error");
                            },
                            () = activity.idle_for(idle_limit) => {
                                tracing::debug!(%peer, "connection closed: no request within the header-read timeout");
                            }
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(self.listener);
        tracing::info!("shutting down: no new connections; waiting for in-flight requests");
        if tokio::time::timeout(self.shutdown_timeout, graceful.shutdown()).await.is_err() {
            tracing::warn!(timeout = ?self.shutdown_timeout, "shutdown timeout reached; closing remaining connections");
        }
    }

    /// The router as one connection sees it: each request carries the peer and client address
    /// and counts as running until its response body is sent.
    fn service(
        &self,
        peer: SocketAddr,
        activity: Activity,
    ) -> impl tower::Service<
        http::Request<Incoming>,
        Response = http::Response<axum::body::Body>,
        Error = std::convert::Infallible,
        Future = impl Future<Output = Result<http::Response<axum::body::Body>, std::convert::Infallible>> + Send,
    > + Clone
    + Send
    + 'static {
        let router = self.router.clone();
        let trusted = Arc::clone(&self.trusted_proxies);
        tower::service_fn(move |mut req: http::Request<Incoming>| {
            let running = activity.start();
            let client = client_addr(peer.ip(), req.headers(), &trusted);
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(ClientAddr(client));
            let answer = router.clone().oneshot(req);
            async move { Ok(hold_until_sent(answer.await?, running)) }
        })
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: a SIGTERM sent right after "Triage is up" must stop Triage cleanly, not
/// meet the default action and kill it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for {name}");
            None
        }
    };
    let interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => tracing::info!("SIGINT received"),
            () = wait(terminate) => tracing::info!("SIGTERM received"),
        }
    }
}
