//! Users, API tokens and the audit trail (admins only; the access table says so).

use app::model::{AuditRow, CreatedToken, NewToken, NewUser, TokenSummary, UserPatch, UserSummary};
use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use serde::Deserialize;

use super::{ApiJson, parse_id};
use crate::access::accounts;
use crate::access::actor::Actor;
use crate::storage::auth as store;
use crate::web::error::ApiError;
use crate::web::state::AppState;

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<UserSummary>>, ApiError> {
    Ok(Json(store::list_users(&state.pool).await?))
}

pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserSummary>), ApiError> {
    let user = accounts::create_user(&state.pool, &actor, &input).await?;
    state.auth.users_exist();
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<UserSummary>, ApiError> {
    let id = parse_id(&id)?;
    let user = accounts::update_user(&state.pool, &actor, id, &patch).await?;
    state.forget(crate::storage::bus::Note::User { id });
    Ok(Json(user))
}

pub async fn tokens(State(state): State<AppState>) -> Result<Json<Vec<TokenSummary>>, ApiError> {
    Ok(Json(accounts::list_tokens(&state.pool).await?))
}

pub async fn create_token(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    Ok((StatusCode::CREATED, Json(accounts::create_token(&state.pool, &actor, &input).await?)))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    accounts::revoke_token(&state.pool, &actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
}

pub async fn audit(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    let limit = q.limit.unwrap_or(200);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad("limit", "must be between 1 and 10,000"));
    }
    Ok(Json(accounts::audit_trail(&state.pool, limit).await?))
}
