//! `triage agent`: runs the probes assigned to one location for a Triage server.
//!
//! Three tasks share the work:
//! - the **stream** (`GET /api/v1/agent/stream`) brings the location's probes, whole, on connect
//!   and after every change; it reconnects with backoff and counts a silent stream as broken;
//! - the **checks** ([`checks`]) run them and send their results through a bounded channel to
//!   the spool ([`spool`]);
//! - the **deliverer** posts the oldest spooled results in batches (`POST /api/v1/agent/results`)
//!   and forgets them once the server answers, which it does only after committing them. While
//!   the server cannot be reached it backs off and the spool fills (bounded, oldest dropped).
//!
//! With each batch the agent reports its version, its spool's size and dropped count, and its
//! clock offset measured on the previous round trip; results are stamped in the server's time.

pub mod checks;
pub mod spool;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::model::{AgentBatchAnswer, Assignments, ProbeResult};
use chrono::{DateTime, Utc};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

use crate::monitor::check::policy::{Cidr, NetworkPolicy};
use checks::Checks;
use spool::Spool;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Results per delivery at most.
const BATCH: usize = 500;
/// Deliveries at most this often unless a whole batch waits: fewer, fuller batches cost the
/// server and PostgreSQL less per result (one transaction each), and a result waits at most this
/// long for its turn.
const PACE: Duration = Duration::from_millis(500);
/// How long a delivery may take before it is given up (and retried).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);
/// The server ticks every 5 s: three missed ticks and the stream is taken for broken.
const STREAM_SILENCE: Duration = Duration::from_secs(15);
/// Retries back off to this at most: an agent back on the network catches up within seconds.
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// How long to wait after the server refused the token (an admin must act first).
const REFUSED_WAIT: Duration = Duration::from_secs(30);

pub struct AgentSettings {
    pub server: url::Url,
    pub token: String,
    pub location: String,
    pub spool_dir: Option<std::path::PathBuf>,
    pub spool_max: usize,
    pub allow: Vec<Cidr>,
    pub resolver: Option<std::net::SocketAddr>,
    pub concurrency: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error("--server: {0}")]
    Server(String),
    #[error("cannot start an HTTP client: {0}")]
    Client(String),
}

/// Everything the tasks share.
struct Link {
    client: reqwest::Client,
    base: url::Url,
    token: String,
    location: String,
    agent_id: Uuid,
    spool: Mutex<Spool>,
    /// Wakes the deliverer when results arrive.
    spooled: Notify,
    offset_ms: Arc<AtomicI64>,
}

impl Link {
    fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn url(&self, path: &str) -> Result<url::Url, AgentError> {
        self.base.join(path).map_err(|e| AgentError::Server(format!("cannot add the API path: {e}")))
    }
}

/// Runs until `stop` turns true; what is spooled on disk stays for the next run.
pub async fn run(settings: AgentSettings, mut stop: watch::Receiver<bool>) -> Result<(), AgentError> {
    let spool = match &settings.spool_dir {
        Some(dir) => Spool::open(dir, settings.spool_max)?,
        None => Spool::in_memory(settings.spool_max),
    };
    let mut base = settings.server.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!("triage-agent/{VERSION}"))
        .build()
        .map_err(|e| AgentError::Client(e.to_string()))?;
    let agent_id = spool.agent_id();
    tracing::info!(agent = %agent_id, location = %settings.location, server = %base, waiting = spool.len(),
        "agent starting");
    let link = Arc::new(Link {
        client,
        base,
        token: settings.token,
        location: settings.location.clone(),
        agent_id,
        spool: Mutex::new(spool),
        spooled: Notify::new(),
        offset_ms: Arc::new(AtomicI64::new(0)),
    });
    // The agent has no own address to protect: only the policy's denied ranges (and what the
    // admin allowed) apply.
    let policy = Arc::new(NetworkPolicy::new(settings.allow, Vec::new()).with_resolver(settings.resolver));
    let (tx, rx) = mpsc::channel(4_096);
    let checks = Checks::new(settings.location, policy, settings.concurrency, tx, link.offset_ms.clone());
    let spooler = tokio::spawn(spool_results(link.clone(), rx));
    let deliverer = tokio::spawn(deliver(link.clone()));
    let follower = tokio::spawn(follow(link.clone(), checks));
    let _ = stop.wait_for(|s| *s).await;
    follower.abort();
    let _ = follower.await;
    // The checks stopped with the follower, and with them the channel's senders: the spooler
    // ends once it has spooled what they sent. One more delivery tries to leave nothing behind.
    if tokio::time::timeout(Duration::from_secs(5), spooler).await.is_err() {
        tracing::warn!("the spool did not take the last results in time");
    }
    deliverer.abort();
    let _ = tokio::time::timeout(Duration::from_secs(5), deliver_once(&link, BATCH)).await;
    let left = link.spool().len();
    if let Err(e) = link.spool().sync() {
        tracing::warn!(error = %e, "cannot sync the spool");
    }
    tracing::info!(undelivered = left, "agent stopped");
    Ok(())
}

/// Moves results from the checks into the spool, as many as are waiting at once.
async fn spool_results(link: Arc<Link>, mut rx: mpsc::Receiver<ProbeResult>) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let pushed = link.spool().push(std::mem::take(&mut batch));
        if let Err(e) = pushed {
            // A disk that refuses writes: the results are kept in memory all the same.
            tracing::error!(error = %e, "cannot write the spool; results wait in memory");
        }
        link.spooled.notify_one();
    }
}

/// Sleeps `backoff` with ±20 % jitter (agents cut off together do not come back together).
async fn pause(backoff: Duration) {
    let jitter = 0.8 + fastrand::f64() * 0.4;
    tokio::time::sleep(backoff.mul_f64(jitter)).await;
}

fn next(backoff: Duration) -> Duration {
    (backoff * 2).min(BACKOFF_MAX)
}

/// Why one delivery failed.
enum Failed {
    /// Unreachable, timed out, 5xx, 429, 404 (a replica on an older version), 409: try again
    /// later with the same results.
    Retry(String),
    /// Too large for the server (413): try again with half as many.
    TooLarge,
    /// The server will not take this batch (another 4xx): drop it, counted, rather than block.
    Refused(String),
    /// The token is refused: keep everything, wait long.
    Unauthorised(String),
}

async fn deliver(link: Arc<Link>) {
    let mut backoff = Duration::from_secs(1);
    let mut synced = tokio::time::Instant::now();
    let mut last = tokio::time::Instant::now();
    // Halved on a 413, grown back by a quarter after each success.
    let mut size = BATCH;
    loop {
        if link.spool().is_empty() {
            let _ = tokio::time::timeout(Duration::from_secs(1), link.spooled.notified()).await;
        }
        if link.spool().len() < BATCH {
            tokio::time::sleep_until(last + PACE).await;
        }
        last = tokio::time::Instant::now();
        if synced.elapsed() >= Duration::from_secs(1) {
            if let Err(e) = link.spool().sync() {
                tracing::warn!(error = %e, "cannot sync the spool");
            }
            synced = tokio::time::Instant::now();
        }
        match deliver_once(&link, size).await {
            Ok(_) => {
                backoff = Duration::from_secs(1);
                size = (size + size / 4 + 1).min(BATCH);
            }
            Err(Failed::TooLarge) => {
                size = (size / 2).max(1);
                tracing::warn!(batch = size, "the server found a batch too large; sending smaller ones");
            }
            Err(Failed::Retry(why)) => {
                tracing::warn!(waiting = link.spool().len(), retry_in = ?backoff, "cannot deliver results: {why}");
                pause(backoff).await;
                backoff = next(backoff);
            }
            Err(Failed::Unauthorised(why)) => {
                tracing::error!(waiting = link.spool().len(), "the server refuses this agent's token: {why}");
                pause(REFUSED_WAIT).await;
            }
            Err(Failed::Refused(why)) => {
                tracing::error!("the server refused a batch; dropping it (counted as dropped): {why}");
                backoff = Duration::from_secs(1);
            }
        }
    }
}

/// Delivers up to `size` of the oldest results; answers how many the server took.
async fn deliver_once(link: &Link, size: usize) -> Result<usize, Failed> {
    let (entries, buffered, dropped) = {
        let spool = link.spool();
        let entries = spool.peek(size);
        let buffered = spool.len().saturating_sub(entries.len());
        (entries, buffered, spool.dropped())
    };
    let Some(last) = entries.last().map(|e| e.seq) else { return Ok(0) };
    let url = link.url("api/v1/agent/results").map_err(|e| Failed::Refused(e.to_string()))?;
    // The spooled lines are already the results' JSON: the body is put together around them.
    let head = serde_json::json!({
        "agent_id": link.agent_id,
        "location": link.location,
        "version": VERSION,
        "buffered": buffered,
        "dropped": dropped,
        "clock_offset_ms": link.offset_ms.load(Ordering::Relaxed),
    })
    .to_string();
    let mut body = String::with_capacity(head.len() + entries.iter().map(|e| e.json.len() + 1).sum::<usize>() + 16);
    body.push_str(&head[..head.len() - 1]);
    body.push_str(",\"results\":[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&e.json);
    }
    body.push_str("]}");
    let sent_at = Utc::now();
    let answer = link
        .client
        .post(url)
        .bearer_auth(&link.token)
        .header(http::header::CONTENT_TYPE, "application/json")
        .timeout(DELIVERY_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(|e| Failed::Retry(e.to_string()))?;
    let status = answer.status();
    if status.is_success() {
        let got: AgentBatchAnswer =
            answer.json().await.map_err(|e| Failed::Retry(format!("unexpected answer: {e}")))?;
        note_offset(link, sent_at, Utc::now(), got.received_at.unwrap_or(got.server_time), got.server_time);
        if let Err(e) = link.spool().ack(last) {
            tracing::warn!(error = %e, "cannot trim the spool");
        }
        tracing::debug!(stored = got.stored, duplicates = got.duplicates, ignored = got.ignored, "delivered");
        return Ok(entries.len());
    }
    let text = answer.text().await.unwrap_or_default();
    let why = format!("{status}: {}", text.chars().take(300).collect::<String>());
    match status.as_u16() {
        401 | 403 => Err(Failed::Unauthorised(why)),
        413 if entries.len() > 1 => Err(Failed::TooLarge),
        404 | 405 | 408 | 409 | 429 => Err(Failed::Retry(why)),
        400..=499 => {
            if let Err(e) = link.spool().refuse(entries.len()) {
                tracing::warn!(error = %e, "cannot trim the spool");
            }
            Err(Failed::Refused(why))
        }
        _ => Err(Failed::Retry(why)),
    }
}

/// The agent's clock minus the server's from one round trip, as NTP computes it: the mean of
/// (sent − received by the server) and (received − answered by the server), so the time the
/// server spent storing the batch does not count.
fn note_offset(
    link: &Link,
    sent: DateTime<Utc>,
    back: DateTime<Utc>,
    received: DateTime<Utc>,
    answered: DateTime<Utc>,
) {
    link.offset_ms.store(clock_offset(sent, back, received, answered).num_milliseconds(), Ordering::Relaxed);
}

fn clock_offset(
    sent: DateTime<Utc>,
    back: DateTime<Utc>,
    received: DateTime<Utc>,
    answered: DateTime<Utc>,
) -> chrono::Duration {
    ((sent - received) + (back - answered)) / 2
}

/// Follows the stream of assignments for as long as the agent runs, reconnecting with backoff.
async fn follow(link: Arc<Link>, mut checks: Checks) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let opened = tokio::time::Instant::now();
        match follow_once(&link, &mut checks).await {
            Ok(()) => tracing::info!("the server closed the stream of assignments; reconnecting"),
            Err(why) => tracing::warn!(retry_in = ?backoff, "stream of assignments: {why}"),
        }
        // Probes keep running on the last list while the server is away.
        if opened.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_secs(1);
        }
        pause(backoff).await;
        backoff = next(backoff);
    }
}

async fn follow_once(link: &Link, checks: &mut Checks) -> Result<(), String> {
    let mut url = link.url("api/v1/agent/stream").map_err(|e| e.to_string())?;
    url.query_pairs_mut()
        .append_pair("agent_id", &link.agent_id.to_string())
        .append_pair("location", &link.location)
        .append_pair("version", VERSION);
    let response = link
        .client
        .get(url)
        .bearer_auth(&link.token)
        .header(http::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(format!("{status}: {}", text.chars().take(300).collect::<String>()));
    }
    let mut events = response.bytes_stream().eventsource();
    loop {
        let event = match tokio::time::timeout(STREAM_SILENCE, events.next()).await {
            Err(_) => return Err(format!("nothing from the server for {STREAM_SILENCE:?}")),
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(event))) => event,
        };
        match event.event.as_str() {
            "assignments" => match serde_json::from_str::<Assignments>(&event.data) {
                Ok(a) => {
                    let n = a.probes.len();
                    checks.apply(a.probes);
                    tracing::info!(probes = n, running = checks.len(), "assignments received");
                }
                Err(e) => tracing::error!(error = %e, "cannot read the assignments; keeping the last ones"),
            },
            "revoked" => return Err("this agent's token was revoked".into()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_offset_leaves_out_the_time_the_server_spent() {
        let server = |ms: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds(ms);
        // The agent's clock is 50 ms behind; 10 ms each way; the server takes 200 ms to store.
        let agent = |server_ms: i64| server(server_ms - 50);
        let offset = clock_offset(agent(1_050), agent(1_270), server(1_060), server(1_260));
        assert_eq!(offset.num_milliseconds(), -50);
    }
}
