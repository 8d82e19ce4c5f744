//! Status pages for admins (`/api/v1/status-pages`), and the public updates commanders post
//! from the room (`/api/v1/incidents/{id}/public-updates`).

use app::model::{PublicUpdate, PublicUpdateInput, StatusPage, StatusPageSpec};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{ApiJson, parse_id};
use crate::access::actor::Actor;
use crate::web::error::ApiError;
use crate::web::state::AppState;

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<StatusPage>>, ApiError> {
    Ok(Json(state.status_pages.list().await?))
}

pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(spec): ApiJson<StatusPageSpec>,
) -> Result<(StatusCode, Json<StatusPage>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.status_pages.save(&actor, None, &spec).await?)))
}

pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<StatusPage>, ApiError> {
    Ok(Json(state.status_pages.get(parse_id(&id)?).await?))
}

pub async fn replace(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<StatusPageSpec>,
) -> Result<Json<StatusPage>, ApiError> {
    Ok(Json(state.status_pages.save(&actor, Some(parse_id(&id)?), &spec).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.status_pages.delete(&actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn post_update(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PublicUpdateInput>,
) -> Result<(StatusCode, Json<PublicUpdate>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.status_pages.post_update(&actor, parse_id(&id)?, &input).await?)))
}

pub async fn updates(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<PublicUpdate>>, ApiError> {
    Ok(Json(state.status_pages.updates(parse_id(&id)?).await?))
}
