use app::model::{Replica, Service, ServiceInput, SloSpec, SloStatus};
use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;

use super::{ApiJson, parse_id};
use crate::access::actor::Actor;
use crate::monitor::catalog;
use crate::storage::catalog as store;
use crate::web::error::ApiError;
use crate::web::state::AppState;

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Service>>, ApiError> {
    Ok(Json(store::list_services(&state.pool).await?))
}

/// Every `triage serve` process sharing the database, alive first.
pub async fn replicas(State(state): State<AppState>) -> Result<Json<Vec<Replica>>, ApiError> {
    let dead_after = state.replicas.settings.dead_after.as_secs_f64();
    Ok(Json(crate::storage::replicas::list_from(&state.pool, dead_after).await?))
}

/// The replica that runs this probe now (every replica computes the same from the membership).
pub async fn probe_replica(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Replica>, ApiError> {
    let id = parse_id(&id)?;
    store::get_probe(&state.pool, id).await?.ok_or(ApiError::NotFound("probe"))?;
    let owner = state.replicas.view().owner(id).ok_or(ApiError::NotFound("replica"))?;
    let dead_after = state.replicas.settings.dead_after.as_secs_f64();
    let all = crate::storage::replicas::list_from(&state.pool, dead_after).await?;
    all.into_iter().find(|r| r.id == owner).map(Json).ok_or(ApiError::NotFound("replica"))
}

pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Service>, ApiError> {
    let id = parse_id(&id)?;
    store::get_service(&state.pool, id).await?.map(Json).ok_or(ApiError::NotFound("service"))
}

pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<ServiceInput>,
) -> Result<(StatusCode, Json<Service>), ApiError> {
    let service = catalog::create_service(&state.pool, &input).await?;
    actor
        .audit(&state.pool, "service.create", service.id.to_string(), serde_json::json!({ "name": service.name }))
        .await?;
    Ok((StatusCode::CREATED, Json(service)))
}

pub async fn replace(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ServiceInput>,
) -> Result<Json<Service>, ApiError> {
    let id = parse_id(&id)?;
    let service = catalog::update_service(&state.pool, id, &input).await?;
    actor.audit(&state.pool, "service.update", id.to_string(), serde_json::json!({ "name": service.name })).await?;
    Ok(Json(service))
}

pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    catalog::delete_service(&state.pool, &state.scheduler, id).await?;
    actor.audit(&state.pool, "service.delete", id.to_string(), serde_json::json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/services/{id}/slo`: the objective and how the service stands against it.
pub async fn slo(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<SloStatus>, ApiError> {
    Ok(Json(state.slos.status(parse_id(&id)?).await?))
}

pub async fn set_slo(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<SloSpec>,
) -> Result<Json<SloStatus>, ApiError> {
    let status = state.slos.put(&actor, parse_id(&id)?, &spec).await?;
    state.forget(crate::storage::bus::Note::Overview);
    Ok(Json(status))
}

pub async fn delete_slo(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.slos.delete(&actor, parse_id(&id)?).await?;
    state.forget(crate::storage::bus::Note::Overview);
    Ok(StatusCode::NO_CONTENT)
}
