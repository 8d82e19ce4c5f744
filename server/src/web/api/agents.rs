//! Remote agents (`triage agent`): the stream of their location's assignments, the results they
//! deliver, and the admin's list with revoke.
//!
//! An agent signs in with an API token of scope `agent` (the access table lets no other scope
//! in, admin tokens aside). Its id is its own (kept in its spool directory); the first token to
//! use an id owns it, so one agent's token cannot report as another agent.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use app::model::{Agent, AgentBatch, AgentBatchAnswer, Assignments, LOCAL, ProbeResult, location_problem};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::Utc;
use futures::Stream;
use http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::{ApiJson, parse_id};
use crate::access::Principal;
use crate::access::accounts;
use crate::access::actor::Actor;
use crate::monitor::quorum::{Delivery, Located};
use crate::storage::agents::{self as store, Report};
use crate::storage::auth as tokens;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// Results in one batch at most (an agent sends fewer; the spool is drained in these steps).
pub const MAX_BATCH: usize = 2_000;
/// How often an open stream says the server's time (the agent's liveness check and clock).
const TICK: Duration = Duration::from_secs(5);
/// Changes arriving together (an import, a probe file) are sent as one new list.
const SETTLE: Duration = Duration::from_millis(200);

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    agent_id: String,
    location: String,
    #[serde(default)]
    version: Option<String>,
}

fn token_of(actor: &Actor) -> Result<Uuid, ApiError> {
    match &actor.principal {
        Principal::Token { id, .. } => Ok(*id),
        _ => Err(ApiError::Forbidden("agents sign in with an API token of scope agent".into())),
    }
}

fn check_location(location: &str) -> Result<(), ApiError> {
    if let Some(why) = location_problem(location) {
        return Err(ApiError::bad("location", why));
    }
    if location == LOCAL {
        return Err(ApiError::bad("location", "\"local\" is the server's own location; name the agent's"));
    }
    Ok(())
}

fn check_version(version: &str) -> Result<(), ApiError> {
    if version.is_empty() || version.len() > 64 {
        return Err(ApiError::bad("version", "must be 1–64 characters"));
    }
    Ok(())
}

fn assignments_event(state: &AppState, location: &str) -> (Event, String) {
    let probes = state.scheduler.assignments(location);
    let fingerprint = serde_json::to_string(&probes).unwrap_or_default();
    let body = Assignments { probes, server_time: Utc::now() };
    let data = serde_json::to_string(&body).unwrap_or_default();
    (Event::default().event("assignments").data(data), fingerprint)
}

fn tick_event() -> Event {
    Event::default().event("tick").data(serde_json::json!({ "server_time": Utc::now() }).to_string())
}

/// `GET /api/v1/agent/stream`: the probes of the agent's location, whole, on connect and after
/// every change to them; `tick` with the server's time every few seconds. It ends on shutdown
/// and once the agent's token is revoked.
pub async fn stream(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let token = token_of(&actor)?;
    let agent_id: Uuid = q.agent_id.parse().map_err(|_| ApiError::bad("agent_id", "not a valid id (UUID)"))?;
    check_location(&q.location)?;
    let version = q.version.unwrap_or_else(|| "unknown".into());
    check_version(&version)?;
    let Some(seen) = store::stream_open(&state.pool, agent_id, token, &q.location, &version).await? else {
        return Err(ApiError::Forbidden("this agent id belongs to another token".into()));
    };
    tracing::info!(agent = %agent_id, location = %q.location, version = %version, "agent connected");
    let changes = state.scheduler.changes();
    let stopping = state.stopping.subscribe();
    let (first, fingerprint) = assignments_event(&state, &q.location);
    let ticks = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
    let recheck_every = state.auth.settings.live_recheck;
    let recheck = tokio::time::interval_at(tokio::time::Instant::now() + recheck_every, recheck_every);
    let open = Open { state, agent_id, token, location: q.location, version, fingerprint, seen, ended: false };
    let updates = futures::stream::unfold(
        (open, changes, stopping, ticks, recheck),
        |(mut open, mut changes, mut stopping, mut ticks, mut recheck)| async move {
            loop {
                if open.ended || *stopping.borrow() {
                    return None;
                }
                let event = tokio::select! {
                    _ = stopping.changed() => return None,
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                        tokio::time::sleep(SETTLE).await;
                        changes.borrow_and_update();
                        let (event, fingerprint) = assignments_event(&open.state, &open.location);
                        if fingerprint == open.fingerprint {
                            continue;
                        }
                        open.fingerprint = fingerprint;
                        event
                    }
                    _ = ticks.tick() => {
                        let seen = store::stream_open(&open.state.pool, open.agent_id, open.token, &open.location, &open.version);
                        match seen.await {
                            Ok(Some(at)) => open.seen = at,
                            Ok(None) => {}
                            Err(e) => tracing::debug!(error = %e, "cannot note the agent's stream as open"),
                        }
                        tick_event()
                    }
                    _ = recheck.tick() => {
                        // A database error keeps the stream: an outage must not cut every agent off.
                        if tokens::token_active(&open.state.pool, open.token).await.unwrap_or(true) {
                            continue;
                        }
                        open.ended = true;
                        Event::default().event("revoked").data("{}")
                    }
                };
                return Some((Ok(event), (open, changes, stopping, ticks, recheck)));
            }
        },
    );
    let hello = Event::default().event("ready").retry(Duration::from_secs(2)).data("{}");
    let opening = futures::stream::iter([Ok(hello), Ok(first)]);
    Ok(Sse::new(futures::StreamExt::chain(opening, updates)).keep_alive(KeepAlive::new().interval(TICK)))
}

/// One open stream; marks the agent's stream closed when dropped.
struct Open {
    state: AppState,
    agent_id: Uuid,
    token: Uuid,
    location: String,
    version: String,
    fingerprint: String,
    /// When this stream last noted itself open.
    seen: chrono::DateTime<Utc>,
    ended: bool,
}

impl Drop for Open {
    fn drop(&mut self) {
        let pool = self.state.pool.clone();
        let (agent, seen) = (self.agent_id, self.seen);
        tracing::info!(agent = %agent, location = %self.location, "agent stream closed");
        // Best effort: the list shows it disconnected a minute later anyway.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), store::stream_closed(&pool, agent, seen)).await;
            });
        }
    }
}

/// `POST /api/v1/agent/results`: a batch of results, answered once all of it is committed.
/// Each result is judged at the agent's location; a retried batch stores nothing twice
/// (`agent_id` + `seq`). A result for a probe that no longer runs there is acknowledged and
/// dropped (`ignored`), so an agent never keeps a result it cannot deliver.
pub async fn results(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(batch): ApiJson<AgentBatch>,
) -> Result<Json<AgentBatchAnswer>, ApiError> {
    let received_at = Utc::now();
    let token = token_of(&actor)?;
    check_location(&batch.location)?;
    check_version(&batch.version)?;
    if batch.results.len() > MAX_BATCH {
        return Err(ApiError::bad("results", format!("at most {MAX_BATCH} results per batch")));
    }
    if batch.buffered < 0 || batch.dropped < 0 {
        return Err(ApiError::bad("buffered", "counts must not be negative"));
    }
    if let Some(r) = batch.results.iter().find(|r| r.seq < 0) {
        return Err(ApiError::bad("results.seq", format!("must not be negative (got {})", r.seq)));
    }
    let now = Utc::now();
    let oldest = now - chrono::Duration::from_std(state.raw_retention).unwrap_or(chrono::Duration::days(1));
    let newest = now + chrono::Duration::minutes(5);
    let report = Report {
        agent_id: batch.agent_id,
        token_id: token,
        location: &batch.location,
        version: &batch.version,
        lag_ms: None,
        buffered: batch.buffered,
        dropped: batch.dropped,
        clock_offset_ms: batch.clock_offset_ms,
    };
    if !store::report(&state.pool, &report).await? {
        return Err(ApiError::Forbidden("this agent id belongs to another token".into()));
    }
    let lag_ms = batch.results.iter().map(|r| (now - r.result.at).num_milliseconds()).max();
    let upto = batch.results.iter().map(|r| r.seq).max();
    // Per probe, in the order checked; probes judged one after another (each under its lock).
    let mut order = Vec::new();
    let mut by_probe: HashMap<Uuid, Vec<Located>> = HashMap::new();
    let mut ignored = 0u32;
    for item in batch.results {
        let mut result: ProbeResult = item.result;
        if result.at < oldest || result.at > newest {
            // Outside the raw-retention window: it could not be stored, and must not block the spool.
            ignored += 1;
            continue;
        }
        result.location = Some(batch.location.clone());
        let probe = result.probe_id;
        by_probe
            .entry(probe)
            .or_insert_with(|| {
                order.push(probe);
                Vec::new()
            })
            .push(Located { result, seq: Some(item.seq) });
    }
    let mut scheduled = Vec::with_capacity(order.len());
    for probe in order {
        let items = by_probe.remove(&probe).unwrap_or_default();
        match state.scheduler.get(probe) {
            Some(s) => scheduled.push((s, items)),
            // Not known here yet (this replica has not read a new probe): the agent retries.
            None if crate::storage::catalog::get_probe(&state.pool, probe).await?.is_some() => {
                return Err(ApiError::Unavailable("a probe in this batch is not loaded here yet; retry".into()));
            }
            None => ignored += u32::try_from(items.len()).unwrap_or(u32::MAX),
        }
    }
    let delivery = upto.map(|upto| Delivery { agent_id: batch.agent_id, upto });
    let items = scheduled.iter_mut().map(|(s, items)| (&s.probe, std::mem::take(items))).collect();
    let judged = state.judge.judge_many(items, delivery).await?;
    let (stored, duplicates) = (judged.stored, judged.duplicates);
    ignored += judged.ignored;
    store::report(&state.pool, &Report { lag_ms, ..report }).await?;
    Ok(Json(AgentBatchAnswer { stored, duplicates, ignored, received_at: Some(received_at), server_time: Utc::now() }))
}

/// `GET /api/v1/agents`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Agent>>, ApiError> {
    Ok(Json(store::list(&state.pool).await?))
}

/// `POST /api/v1/agents/{id}/revoke`: revokes the agent's token (its stream ends at the next
/// re-check, its deliveries are refused at once).
pub async fn revoke(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let token = store::token_of(&state.pool, parse_id(&id)?).await?.ok_or(ApiError::NotFound("agent"))?;
    accounts::revoke_token(&state.pool, &actor, token).await?;
    Ok(StatusCode::NO_CONTENT)
}
