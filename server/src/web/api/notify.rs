//! `/api/v1/channels…` and `/api/v1/notification-rules…`: where notifications go, which events
//! go where, the delivery log, "Send test", and `/api/v1/maintenance…` (the windows that keep
//! planned work quiet). Writes are for admins (the access table says so).

use app::model::{Channel, ChannelSpec, Delivery, MaintenanceSpec, MaintenanceWindow, Rule, RuleSpec};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use http::StatusCode;

use super::{ApiJson, parse_id, parse_json};
use crate::access::actor::Actor;
use crate::respond::notify::check_fields;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// A channel body: fields that do not belong to its kind are named, then the usual parse.
fn channel_spec(raw: &serde_json::Value) -> Result<ChannelSpec, ApiError> {
    check_fields(raw)?;
    let bytes = serde_json::to_vec(raw).map_err(|e| ApiError::bad("body", e.to_string()))?;
    parse_json(&bytes)
}

pub async fn list_channels(State(state): State<AppState>) -> Result<Json<Vec<Channel>>, ApiError> {
    Ok(Json(state.notifier.channels().await?))
}

pub async fn show_channel(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Channel>, ApiError> {
    Ok(Json(state.notifier.channel(parse_id(&id)?).await?))
}

pub async fn create_channel(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(raw): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<Channel>), ApiError> {
    let spec = channel_spec(&raw)?;
    Ok((StatusCode::CREATED, Json(state.notifier.create_channel(&actor, spec).await?)))
}

pub async fn replace_channel(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(raw): ApiJson<serde_json::Value>,
) -> Result<Json<Channel>, ApiError> {
    let id = parse_id(&id)?;
    let spec = channel_spec(&raw)?;
    Ok(Json(state.notifier.update_channel(&actor, id, spec).await?))
}

pub async fn delete_channel(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.notifier.delete_channel(&actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn test_channel(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Delivery>, ApiError> {
    Ok(Json(state.notifier.test_channel(&actor, parse_id(&id)?).await?))
}

/// `?limit=N` (1–500, default 100), newest first.
pub async fn deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let mut limit = 100;
    for (k, v) in url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| ApiError::bad("limit", "a number from 1 to 500"))?;
            }
            other => return Err(ApiError::bad(other.to_string(), "unknown parameter")),
        }
    }
    Ok(Json(state.notifier.deliveries(parse_id(&id)?, limit).await?))
}

pub async fn list_rules(State(state): State<AppState>) -> Result<Json<Vec<Rule>>, ApiError> {
    Ok(Json(state.notifier.rules().await?))
}

pub async fn show_rule(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Rule>, ApiError> {
    Ok(Json(state.notifier.rule(parse_id(&id)?).await?))
}

pub async fn create_rule(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> Result<(StatusCode, Json<Rule>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.notifier.create_rule(&actor, spec).await?)))
}

pub async fn replace_rule(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> Result<Json<Rule>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(state.notifier.update_rule(&actor, id, spec).await?))
}

pub async fn delete_rule(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.notifier.delete_rule(&actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_maintenance(State(state): State<AppState>) -> Result<Json<Vec<MaintenanceWindow>>, ApiError> {
    Ok(Json(state.maintenance.list().await?))
}

pub async fn show_maintenance(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MaintenanceWindow>, ApiError> {
    Ok(Json(state.maintenance.get(parse_id(&id)?).await?))
}

pub async fn create_maintenance(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(spec): ApiJson<MaintenanceSpec>,
) -> Result<(StatusCode, Json<MaintenanceWindow>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.maintenance.create(&actor, spec).await?)))
}

pub async fn replace_maintenance(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<MaintenanceSpec>,
) -> Result<Json<MaintenanceWindow>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(state.maintenance.update(&actor, id, spec).await?))
}

pub async fn end_maintenance(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<MaintenanceWindow>, ApiError> {
    Ok(Json(state.maintenance.end(&actor, parse_id(&id)?).await?))
}

pub async fn delete_maintenance(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.maintenance.delete(&actor, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
