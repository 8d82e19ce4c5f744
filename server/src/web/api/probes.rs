use app::model::{PolicyRefusal, Probe, ProbeResult, ProbeSpec, ProbeTrial, Series, StateChange};
use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Duration, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ApiJson, parse_id};
use crate::access::actor::Actor;
use crate::monitor::catalog::{self, Mode};
use crate::monitor::probe_file::FileDiff;
use crate::monitor::{series, trial};
use crate::storage::catalog as store;
use crate::storage::results;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// The longest range one request may ask for.
const MAX_RANGE_DAYS: i64 = 400;

#[derive(Deserialize)]
pub struct ListQuery {
    service_id: Option<String>,
}

pub async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Vec<Probe>>, ApiError> {
    let service = q.service_id.as_deref().map(|s| s.parse().map_err(|_| ApiError::bad("service_id", "not a valid id")));
    // Secrets are write-only: a client that sends a masked value back keeps the stored one.
    let probes = store::list_probes(&state.pool, service.transpose()?).await?;
    Ok(Json(probes.into_iter().map(Probe::masked).collect()))
}

pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Probe>, ApiError> {
    let id = parse_id(&id)?;
    store::get_probe(&state.pool, id).await?.map(|p| Json(p.masked())).ok_or(ApiError::NotFound("probe"))
}

/// `GET /api/v1/probes/{id}/locations`: each location the probe runs from, with its own
/// confirmed state (a location that has not reported yet is `unknown`).
pub async fn locations(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<app::model::LocationState>>, ApiError> {
    let id = parse_id(&id)?;
    let probe = store::get_probe(&state.pool, id).await?.ok_or(ApiError::NotFound("probe"))?;
    let mut stored = crate::storage::locations::list(&state.pool, id).await?;
    let since = probe.status.as_ref().map_or(probe.created_at, |s| s.since);
    let rows = probe
        .spec
        .locations
        .iter()
        .map(|l| match stored.iter().position(|s| &s.location == l) {
            Some(i) => stored.swap_remove(i),
            None => app::model::LocationState {
                location: l.clone(),
                state: if probe.spec.is_multi_location() { None } else { probe.status.as_ref().and_then(|s| s.state) },
                since,
                last_result_at: probe
                    .status
                    .as_ref()
                    .and_then(|s| s.last_result_at)
                    .filter(|_| !probe.spec.is_multi_location()),
                last_outcome: probe
                    .status
                    .as_ref()
                    .and_then(|s| s.last_outcome)
                    .filter(|_| !probe.spec.is_multi_location()),
            },
        })
        .collect();
    Ok(Json(rows))
}

/// A written probe; `push_token` only when one was just issued (it is never shown again), and
/// `refused` when the network policy refuses its target (saved all the same: an admin may be
/// about to allow it).
#[derive(Serialize, utoipa::ToSchema)]
pub struct WrittenProbe {
    #[serde(flatten)]
    probe: Probe,
    #[serde(skip_serializing_if = "Option::is_none")]
    push_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<PolicyRefusal>,
}

#[derive(Deserialize)]
pub struct ApplyQuery {
    #[serde(default)]
    dry_run: bool,
}

/// Re-reads the server's `--config` file and applies it (as SIGHUP does); answers what changed.
pub async fn apply_file(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<ApplyQuery>,
) -> Result<Json<FileDiff>, ApiError> {
    let path = state.config_file.clone().ok_or_else(|| ApiError::Conflict {
        field: None,
        message: "this server runs without a probe file (--config)".into(),
    })?;
    let diff = crate::respond::declared::reload(&state.pool, &state.scheduler, &path, q.dry_run).await?;
    if !q.dry_run {
        let detail = serde_json::to_value(&diff).unwrap_or_default();
        actor.audit(&state.pool, "probes.apply", path.display().to_string(), detail).await?;
    }
    Ok(Json(diff))
}

/// "Run now": the definition run once, nothing stored.
pub async fn test(
    State(state): State<AppState>,
    ApiJson(spec): ApiJson<ProbeSpec>,
) -> Result<Json<ProbeTrial>, ApiError> {
    Ok(Json(trial::run_once(&spec, state.scheduler.policy()).await?))
}

pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(spec): ApiJson<ProbeSpec>,
) -> Result<(StatusCode, Json<WrittenProbe>), ApiError> {
    if let Some(id) = spec.id
        && store::get_probe(&state.pool, id).await?.is_some()
    {
        return Err(ApiError::Conflict { field: Some("id".into()), message: "a probe with this id exists".into() });
    }
    let w = catalog::write_probe(&state.pool, Some(&state.scheduler), &spec, Mode::Create).await?;
    actor.audit(&state.pool, "probe.create", w.probe.id.to_string(), serde_json::json!({ "name": spec.name })).await?;
    let refused = trial::refusal(&spec, state.scheduler.policy()).await;
    Ok((StatusCode::CREATED, Json(WrittenProbe { probe: w.probe.masked(), push_token: w.push_token, refused })))
}

pub async fn replace(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<ProbeSpec>,
) -> Result<Json<WrittenProbe>, ApiError> {
    let id = parse_id(&id)?;
    let w = catalog::write_probe(&state.pool, Some(&state.scheduler), &spec, Mode::Replace(id)).await?;
    actor.audit(&state.pool, "probe.update", id.to_string(), serde_json::json!({ "name": spec.name })).await?;
    let refused = trial::refusal(&spec, state.scheduler.policy()).await;
    Ok(Json(WrittenProbe { probe: w.probe.masked(), push_token: w.push_token, refused }))
}

pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    catalog::delete_probe(&state.pool, &state.scheduler, id).await?;
    actor.audit(&state.pool, "probe.delete", id.to_string(), serde_json::json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    step: Option<String>,
}

fn range(q: &RangeQuery, default_span: Duration) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let now = Utc::now();
    let parse = |field: &'static str, v: &Option<String>| -> Result<Option<DateTime<Utc>>, ApiError> {
        v.as_deref()
            .map(|s| {
                series::parse_time(s, now).ok_or_else(|| {
                    ApiError::bad(field, "use RFC 3339 (2026-11-23T10:00:00Z) or now-15m, now-24h, now-7d")
                })
            })
            .transpose()
    };
    let to = parse("to", &q.to)?.unwrap_or(now);
    let from = parse("from", &q.from)?.unwrap_or(to - default_span);
    if from >= to {
        return Err(ApiError::bad("from", "must be before `to`"));
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::bad("from", format!("the range may span at most {MAX_RANGE_DAYS} days")));
    }
    Ok((from, to))
}

fn number(field: &'static str, v: &Option<String>, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| ApiError::bad(field, format!("must be a whole number from {min} to {max}")))
        })
        .transpose()
}

async fn existing(state: &AppState, id: &str) -> Result<uuid::Uuid, ApiError> {
    let id = parse_id(id)?;
    store::get_probe(&state.pool, id).await?.ok_or(ApiError::NotFound("probe"))?;
    Ok(id)
}

pub async fn results(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Vec<ProbeResult>>, ApiError> {
    let id = existing(&state, &id).await?;
    let (from, to) = range(&q, Duration::hours(1))?;
    let limit = number("limit", &q.limit, 1, 1000)?.unwrap_or(100);
    Ok(Json(results::list_results(&state.pool, &[id], from, to, limit).await?))
}

pub async fn series(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Series>, ApiError> {
    let id = existing(&state, &id).await?;
    let (from, to) = range(&q, Duration::hours(1))?;
    let step = number("step", &q.step, 60, 30 * 86_400)?;
    Ok(Json(series::series(state.reads.pool(), id, from, to, step).await?))
}

pub async fn state_changes(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Vec<StateChange>>, ApiError> {
    let id = existing(&state, &id).await?;
    let limit = number("limit", &q.limit, 1, 1000)?.unwrap_or(100);
    Ok(Json(results::list_state_changes(&state.pool, &[id], limit).await?))
}
