//! `POST /api/v1/push/{probe_id}`: a result (or a bare heartbeat) from a remote agent.
//!
//! The bearer token is a `push` (or `admin`) API token, or the probe's own push token, checked by
//! the access middleware (as a SHA-256, in constant time). The
//! idempotency key is `agent_id` + `seq`: a retry of a stored push is answered `200` with
//! `duplicate: true` and writes nothing. The `201` is sent only after the result is committed;
//! while the database cannot take it the answer is `503` with `Retry-After`, and a result
//! buffered by the agent is accepted as long as it is inside the raw-retention window (its
//! minutes are rolled up again, as for any late result).

use std::sync::Arc;

use app::model::{ErrorClass, LiveResult, Outcome, Phases, ProbeResult};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Duration, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ApiJson, parse_id};
use crate::monitor::hub::ProbeEvent;
use crate::storage::results::{self, PushReceipt};
use crate::web::error::ApiError;
use crate::web::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushBody {
    /// Who sends (one agent's sequence numbers are independent of another's).
    pub agent_id: String,
    /// Increases with each push of this agent; together with `agent_id` the idempotency key.
    pub seq: i64,
    /// Defaults to `up` (a heartbeat).
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// When the agent observed it; defaults to now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub latency_ms: Option<f64>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub error: Option<ErrorClass>,
    #[serde(default)]
    pub detail: Option<String>,
    /// The request id the agent used, if it made a request.
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushAnswer {
    pub duplicate: bool,
    pub at: DateTime<Utc>,
}

/// `oldest`: how far back a result may be (the raw-retention window), so an agent that buffered
/// through a long outage delivers everything it kept.
fn validate(body: &PushBody, now: DateTime<Utc>, oldest: Duration) -> Result<DateTime<Utc>, ApiError> {
    let id = body.agent_id.trim();
    if id.is_empty() || id.len() > 100 || id != body.agent_id {
        return Err(ApiError::bad("agent_id", "must be 1–100 characters without surrounding spaces"));
    }
    if body.seq < 0 {
        return Err(ApiError::bad("seq", "must not be negative"));
    }
    if body.latency_ms.is_some_and(|l| !l.is_finite() || !(0.0..=86_400_000.0).contains(&l)) {
        return Err(ApiError::bad("latency_ms", "must be between 0 and 86,400,000"));
    }
    if body.status.is_some_and(|s| !(100..=599).contains(&s)) {
        return Err(ApiError::bad("status", "must be between 100 and 599"));
    }
    if body.detail.as_ref().is_some_and(|d| d.len() > 1024) {
        return Err(ApiError::bad("detail", "must be at most 1 KiB"));
    }
    if body.request_id.as_ref().is_some_and(|r| r.is_empty() || r.len() > 128) {
        return Err(ApiError::bad("request_id", "must be 1–128 characters"));
    }
    let at = body.at.unwrap_or(now);
    if at < now - oldest || at > now + Duration::minutes(5) {
        let days = oldest.num_hours() as f64 / 24.0;
        return Err(ApiError::bad(
            "at",
            format!("must be within the raw-retention window ({days:.1} days back, at most 5 minutes ahead)"),
        ));
    }
    Ok(at)
}

pub async fn push(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PushBody>,
) -> Result<(StatusCode, Json<PushAnswer>), ApiError> {
    // Credentials were checked by the access middleware (a push token, or this probe's own).
    let probe_id = parse_id(&id)?;
    let now = Utc::now();
    let oldest = Duration::from_std(state.raw_retention).unwrap_or(Duration::days(1));
    let at = validate(&body, now, oldest)?;
    let scheduled = state.scheduler.get(probe_id).ok_or(ApiError::NotFound("probe"))?;
    let outcome = body.outcome.unwrap_or(if body.error.is_some() { Outcome::Down } else { Outcome::Up });
    let result = ProbeResult {
        probe_id,
        at,
        outcome,
        status: body.status,
        error: body.error,
        detail: body.detail,
        phases: Phases {
            total_us: body.latency_ms.map(|ms| (ms * 1000.0).round() as u64).unwrap_or(0),
            ..Phases::default()
        },
        response_bytes: 0,
        request_id: body.request_id.unwrap_or_else(|| format!("{}-{}", body.agent_id, body.seq)),
        body_excerpt: None,
        cert_days_left: None,
        components: Vec::new(),
        pool: None,
        echo: None,
        location: None,
    };
    // One push of this probe at a time, from judging it to storing it: the state machine moves
    // only after the store, in the order the results were stored.
    let _turn = scheduled.push_turn().await;
    // A retry must not be fed to the state machine twice: look for its receipt first.
    if let Some(first) = results::find_push_receipt(&state.pool, probe_id, &body.agent_id, body.seq).await? {
        return Ok((StatusCode::OK, Json(PushAnswer { duplicate: true, at: first })));
    }
    results::ensure_partition(&state.pool, at.date_naive()).await?;
    let serialise = state.bus.has_peers();
    let mut tx = results::begin_push(&state.pool, probe_id, serialise).await?;
    if serialise
        && let Some(status) = crate::storage::catalog::get_probe_in(&mut tx, probe_id).await?.and_then(|p| p.status)
    {
        // Another replica may have judged this probe since this one last did.
        scheduled.adopt(&status);
    }
    let tentative = scheduled.try_record(result);
    let record = &tentative.record;
    let receipt = results::store_push(
        &mut tx,
        &body.agent_id,
        body.seq,
        &record.result,
        Some(&record.state),
        record.change.as_ref(),
    )
    .await?;
    match receipt {
        // Dropping the transaction rolls it back.
        PushReceipt::Duplicate(first) => Ok((StatusCode::OK, Json(PushAnswer { duplicate: true, at: first }))),
        PushReceipt::Stored => {
            tx.commit().await?;
            scheduled.commit(&tentative);
            scheduled.note_push(at);
            let record = tentative.record;
            let mut events = Vec::with_capacity(2);
            if let Some(change) = record.change {
                events.push(ProbeEvent::StateChanged(Arc::new(change)));
            }
            events.push(ProbeEvent::Result(Arc::new(LiveResult::of(record.service_id, &record.result))));
            state.hub.publish_all(events);
            Ok((StatusCode::CREATED, Json(PushAnswer { duplicate: false, at })))
        }
    }
}
