//! The demo target: "shop", a small service that behaves like a real one and can be switched
//! into the failure modes Triage is built to diagnose. It drives the README demo, the
//! built-in demo (`monitor::demo`, started from the overview) and the tests; `triage demo-target`
//! runs it alone.
//!
//! Scenarios (`POST /control/{scenario}` on either port):
//! - `healthy`: quick answers, everything up;
//! - `slow`: latency up severalfold, as when queries slow down;
//! - `errors`: about a third of API requests fail with 500;
//! - `pool`: the connection pool is exhausted (in use = max, requests waiting) and latency climbs;
//! - `unready`: `/readyz` answers 503 with the database component down;
//! - `down`: the service port refuses connections (the control port stays up).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Healthy,
    Slow,
    Errors,
    Pool,
    Unready,
    Down,
}

impl Scenario {
    pub const ALL: [Scenario; 6] =
        [Scenario::Healthy, Scenario::Slow, Scenario::Errors, Scenario::Pool, Scenario::Unready, Scenario::Down];

    pub fn name(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Slow => "slow",
            Self::Errors => "errors",
            Self::Pool => "pool",
            Self::Unready => "unready",
            Self::Down => "down",
        }
    }
}

/// A scenario name the demo does not have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario '{0}' (healthy, slow, errors, pool, unready, down)")]
pub struct UnknownScenario(pub String);

impl FromStr for Scenario {
    type Err = UnknownScenario;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|sc| sc.name() == s).ok_or_else(|| UnknownScenario(s.to_string()))
    }
}

/// Size of the simulated database pool.
const POOL_MAX: u64 = 10;

struct Shop {
    scenario: AtomicU8,
    changed: watch::Sender<Scenario>,
    requests_ok: AtomicU64,
    requests_failed: AtomicU64,
}

impl Shop {
    fn scenario(&self) -> Scenario {
        Scenario::ALL[usize::from(self.scenario.load(Ordering::Relaxed)).min(Scenario::ALL.len() - 1)]
    }

    fn set(&self, s: Scenario) {
        let index = Scenario::ALL.iter().position(|x| *x == s).unwrap_or(0);
        self.scenario.store(index as u8, Ordering::Relaxed);
        self.changed.send_replace(s);
    }
}

/// A running demo target.
pub struct DemoTarget {
    pub addr: SocketAddr,
    pub control_addr: SocketAddr,
    shop: Arc<Shop>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl DemoTarget {
    /// Binds both ports and starts serving in the background.
    pub async fn start(addr: SocketAddr, control_addr: SocketAddr) -> std::io::Result<Self> {
        let (changed, _) = watch::channel(Scenario::Healthy);
        let shop = Arc::new(Shop {
            scenario: AtomicU8::new(0),
            changed,
            requests_ok: AtomicU64::new(0),
            requests_failed: AtomicU64::new(0),
        });
        let service_listener = TcpListener::bind(addr).await?;
        let addr = service_listener.local_addr()?;
        let control_listener = TcpListener::bind(control_addr).await?;
        let control_addr = control_listener.local_addr()?;

        let control = Router::new().route("/control/{scenario}", post(control)).with_state(shop.clone());
        let control_task = tokio::spawn(async move {
            if let Err(e) = axum::serve(control_listener, control).await {
                tracing::error!(error = %e, "demo control server stopped");
            }
        });
        let service_task = tokio::spawn(serve_service(shop.clone(), service_listener, addr));
        Ok(Self { addr, control_addr, shop, tasks: vec![control_task, service_task] })
    }

    pub fn set_scenario(&self, s: Scenario) {
        self.shop.set(s);
    }

    pub fn scenario(&self) -> Scenario {
        self.shop.scenario()
    }
}

impl Drop for DemoTarget {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn service_router(shop: Arc<Shop>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/products", get(products))
        .route("/api/cart", get(cart))
        .route("/api/checkout", post(checkout))
        .route("/control/{scenario}", post(control))
        .with_state(shop)
}

/// Serves the shop, closing the port while the scenario is `down` and reopening it afterwards.
async fn serve_service(shop: Arc<Shop>, first: TcpListener, addr: SocketAddr) {
    let mut changes = shop.changed.subscribe();
    let mut listener = Some(first);
    loop {
        if let Some(l) = listener.take() {
            let router = service_router(shop.clone());
            let mut until_down = changes.clone();
            let served = axum::serve(l, router).with_graceful_shutdown(async move {
                let _ = until_down.wait_for(|s| *s == Scenario::Down).await;
            });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "demo service stopped");
                return;
            }
        }
        // Down: nothing listens, so connections are refused. Wait for any other scenario.
        if changes.wait_for(|s| *s != Scenario::Down).await.is_err() {
            return;
        }
        match TcpListener::bind(addr).await {
            Ok(l) => listener = Some(l),
            Err(e) => {
                tracing::error!(error = %e, %addr, "demo service cannot reopen its port");
                return;
            }
        }
    }
}

async fn control(State(shop): State<Arc<Shop>>, Path(name): Path<String>) -> Response {
    match name.parse::<Scenario>() {
        Ok(s) => {
            shop.set(s);
            tracing::info!(scenario = s.name(), "demo scenario switched");
            axum::Json(json!({ "scenario": s.name() })).into_response()
        }
        Err(msg) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "bad_request", "field": "scenario", "message": msg.to_string() })),
        )
            .into_response(),
    }
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn readyz(State(shop): State<Arc<Shop>>) -> Response {
    match shop.scenario() {
        Scenario::Unready => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "status": "unhealthy",
                "checks": {
                    "database": { "status": "down", "error": "connection refused" },
                    "cache": { "status": "up" }
                }
            })),
        )
            .into_response(),
        _ => axum::Json(json!({
            "status": "healthy",
            "checks": { "database": { "status": "up" }, "cache": { "status": "up" } }
        }))
        .into_response(),
    }
}

/// Simulated pool occupancy for the current scenario: (in use, idle, waiting).
fn pool_gauges(s: Scenario) -> (u64, u64, u64) {
    match s {
        Scenario::Pool => (POOL_MAX, 0, 4 + fastrand::u64(0..12)),
        Scenario::Slow => {
            let used = 6 + fastrand::u64(0..4);
            (used, POOL_MAX - used, 0)
        }
        _ => {
            let used = 1 + fastrand::u64(0..3);
            (used, POOL_MAX - used, 0)
        }
    }
}

async fn metrics(State(shop): State<Arc<Shop>>) -> Response {
    let (in_use, idle, waiting) = pool_gauges(shop.scenario());
    let ok = shop.requests_ok.load(Ordering::Relaxed);
    let failed = shop.requests_failed.load(Ordering::Relaxed);
    let body = format!(
        "# HELP db_connections_active Connections in use.\n# TYPE db_connections_active gauge\ndb_connections_active {in_use}\n\
         # HELP db_connections_idle Idle connections.\n# TYPE db_connections_idle gauge\ndb_connections_idle {idle}\n\
         # HELP db_connections_max Pool size limit.\n# TYPE db_connections_max gauge\ndb_connections_max {POOL_MAX}\n\
         # HELP db_connections_waiting Requests waiting for a connection.\n# TYPE db_connections_waiting gauge\ndb_connections_waiting {waiting}\n\
         # HELP http_requests_total HTTP requests.\n# TYPE http_requests_total counter\n\
         http_requests_total{{status=\"2xx\"}} {ok}\nhttp_requests_total{{status=\"5xx\"}} {failed}\n"
    );
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// How long an API request takes in the current scenario.
fn latency(s: Scenario, base_ms: u64) -> Duration {
    let jitter = fastrand::u64(0..=base_ms);
    let ms = match s {
        Scenario::Slow => (base_ms + jitter) * 12,
        Scenario::Pool => 800 + (base_ms + jitter) * 4,
        _ => base_ms + jitter,
    };
    Duration::from_millis(ms)
}

async fn api(shop: &Shop, base_ms: u64, body: serde_json::Value) -> Response {
    let s = shop.scenario();
    tokio::time::sleep(latency(s, base_ms)).await;
    if s == Scenario::Errors && fastrand::u8(0..100) < 35 {
        shop.requests_failed.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "error": "internal" }))).into_response();
    }
    shop.requests_ok.fetch_add(1, Ordering::Relaxed);
    axum::Json(body).into_response()
}

async fn products(State(shop): State<Arc<Shop>>) -> Response {
    api(
        &shop,
        20,
        json!([{ "id": 1, "name": "kettle", "price_cents": 2999 }, { "id": 2, "name": "mug", "price_cents": 899 }]),
    )
    .await
}

async fn cart(State(shop): State<Arc<Shop>>) -> Response {
    api(&shop, 15, json!({ "items": [], "total_cents": 0 })).await
}

async fn checkout(State(shop): State<Arc<Shop>>) -> Response {
    api(&shop, 60, json!({ "order": "accepted" })).await
}
