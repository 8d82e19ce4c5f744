//! The fleet benchmark's targets on loopback: every probe's URL names its index, and the target
//! answers as that probe's service behaves (healthy, failing, or flapping every ten minutes).
//! It notes the request id of every check it answers, so the benchmark can show that each one's
//! result was stored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;

/// How the service of fleet probe `i` behaves at `unix_secs`: 1 % of services always fail, and
/// 0.5 % flap (down for ten minutes, up for ten). Pushes follow the same rule.
pub fn failing(i: usize, unix_secs: i64) -> bool {
    let service = i / 5;
    service % 100 == 7 || (service % 200 == 13 && (unix_secs / 600) % 2 == 0)
}

#[derive(Default)]
pub struct Seen {
    /// (milliseconds since the epoch when it arrived, request id) of every check answered.
    pub checks: Mutex<Vec<(i64, u128)>>,
    /// When each edited probe (by index) was first checked at its new URL (and the same in
    /// milliseconds since the epoch).
    pub edited: Mutex<HashMap<usize, (Instant, i64)>>,
}

impl Seen {
    fn note(&self, headers: &HeaderMap) {
        let id =
            headers.get("x-request-id").and_then(|v| v.to_str().ok()).and_then(|v| u128::from_str_radix(v, 16).ok());
        if let Some(id) = id {
            let at = Utc::now().timestamp_millis();
            self.checks.lock().unwrap_or_else(|p| p.into_inner()).push((at, id));
        }
    }
}

type Shared = State<Arc<Seen>>;

async fn http(State(seen): Shared, Path(i): Path<usize>, headers: HeaderMap) -> impl IntoResponse {
    seen.note(&headers);
    if failing(i, Utc::now().timestamp()) { (StatusCode::SERVICE_UNAVAILABLE, "down") } else { (StatusCode::OK, "ok") }
}

async fn ready(State(seen): Shared, Path(i): Path<usize>, headers: HeaderMap) -> impl IntoResponse {
    seen.note(&headers);
    let json = [("content-type", "application/json")];
    if failing(i, Utc::now().timestamp()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json,
            r#"{"status":"DOWN","checks":{"database":"DOWN","cache":"UP","queue":"UP"}}"#,
        )
    } else {
        (StatusCode::OK, json, r#"{"status":"UP","checks":{"database":"UP","cache":"UP","queue":"UP"}}"#)
    }
}

async fn metrics(State(seen): Shared, Path(i): Path<usize>, headers: HeaderMap) -> impl IntoResponse {
    seen.note(&headers);
    if failing(i, Utc::now().timestamp()) {
        return (StatusCode::SERVICE_UNAVAILABLE, String::from("down\n"));
    }
    // A pool whose use moves with the index and the minute, as a real one would.
    let in_use = (i + usize::try_from(Utc::now().timestamp() / 60).unwrap_or(0)) % 18;
    let body = format!(
        "# TYPE hikaricp_connections_active gauge\nhikaricp_connections_active{{pool=\"main\"}} {in_use}\n\
         # TYPE hikaricp_connections_idle gauge\nhikaricp_connections_idle{{pool=\"main\"}} {}\n\
         # TYPE hikaricp_connections_max gauge\nhikaricp_connections_max{{pool=\"main\"}} 20\n\
         # TYPE hikaricp_connections_pending gauge\nhikaricp_connections_pending{{pool=\"main\"}} 0\n",
        20 - in_use
    );
    (StatusCode::OK, body)
}

async fn edited(State(seen): Shared, Path(i): Path<usize>, headers: HeaderMap) -> impl IntoResponse {
    seen.note(&headers);
    seen.edited
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(i)
        .or_insert_with(|| (Instant::now(), Utc::now().timestamp_millis()));
    "ok"
}

/// Starts the targets on their own thread and runtime (their CPU is not Triage's), on loopback.
pub fn spawn(seen: Arc<Seen>) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
            let app = Router::new()
                .route("/http/{i}", get(http))
                .route("/ready/{i}", get(ready))
                .route("/metrics/{i}", get(metrics))
                .route("/edited/{i}", get(edited))
                .with_state(seen);
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("fleet target stopped: {e}");
            }
        });
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_service_in_a_hundred_fails_and_one_in_two_hundred_flaps() {
        let services = 20_000;
        let down = |t: i64| (0..services * 5).filter(|i| failing(*i, t)).count();
        // Five probes to a service: 1 % of them always, 0.5 % more in every other ten minutes.
        assert_eq!(down(0), 200 * 5 + 100 * 5);
        assert_eq!(down(599), 200 * 5 + 100 * 5);
        assert_eq!(down(600), 200 * 5);
        assert_eq!(down(1200), 200 * 5 + 100 * 5);
    }
}
