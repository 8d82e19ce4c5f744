//! `/api/v1/incidents/{id}/guidance`, hypotheses, and the checklist library.

use app::model::{Checklist, ChecklistDef, Guidance, Hypothesis, HypothesisInput, TickInput};
use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;

use super::{ApiJson, parse_id};
use crate::access::actor::Actor;
use crate::respond::guidance::library;
use crate::storage::guidance as store;
use crate::web::error::ApiError;
use crate::web::state::AppState;

pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Guidance>, ApiError> {
    Ok(Json(state.guide.guidance(parse_id(&id)?).await?))
}

pub async fn tick(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TickInput>,
) -> Result<Json<Guidance>, ApiError> {
    Ok(Json(state.guide.tick(&actor, parse_id(&id)?, &input).await?))
}

pub async fn add_hypothesis(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<HypothesisInput>,
) -> Result<(StatusCode, Json<Hypothesis>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.guide.add_hypothesis(&actor, parse_id(&id)?, &input).await?)))
}

pub async fn update_hypothesis(
    State(state): State<AppState>,
    actor: Actor,
    Path(ids): Path<(String, String)>,
    ApiJson(input): ApiJson<HypothesisInput>,
) -> Result<Json<Hypothesis>, ApiError> {
    let hid = ids.1.parse().map_err(|_| ApiError::bad("hypothesis", "not a valid id (UUID)"))?;
    Ok(Json(state.guide.update_hypothesis(&actor, parse_id(&ids.0)?, hid, &input).await?))
}

/// The newest version of every checklist.
pub async fn checklists(State(state): State<AppState>) -> Result<Json<Vec<Checklist>>, ApiError> {
    Ok(Json(store::latest(&state.pool).await?))
}

/// Every version of one checklist, newest first.
pub async fn versions(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Vec<Checklist>>, ApiError> {
    let all = store::versions(&state.pool, &id).await?;
    if all.is_empty() {
        return Err(ApiError::NotFound("checklist"));
    }
    Ok(Json(all))
}

/// Saves a new version (admins). The body is the checklist as JSON; its `id` must match the path.
pub async fn save(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(def): ApiJson<ChecklistDef>,
) -> Result<(StatusCode, Json<Checklist>), ApiError> {
    if def.id != id {
        return Err(ApiError::bad("id", "must match the checklist in the path"));
    }
    let saved = library::save(&state.pool, &actor.principal.actor(), &def).await?;
    actor.audit(&state.pool, "checklist.save", &id, serde_json::json!({ "version": saved.version })).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}
