//! `/api/v1/postmortems…` and `POST /api/v1/incidents/{id}/postmortem`.

use app::model::{NewComment, Postmortem, PostmortemComment, PostmortemPatch, PostmortemSummary};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use super::{ApiJson, parse_id};
use crate::access::actor::Actor;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// 201 with the new postmortem; 200 with the incident's existing one.
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Postmortem>), ApiError> {
    let (p, created) = state.postmortems.create(&actor, parse_id(&id)?).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(p)))
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<PostmortemSummary>>, ApiError> {
    Ok(Json(state.postmortems.list().await?))
}

pub async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Postmortem>, ApiError> {
    Ok(Json(state.postmortems.get(&actor, parse_id(&id)?).await?))
}

pub async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<PostmortemPatch>,
) -> Result<Json<Postmortem>, ApiError> {
    Ok(Json(state.postmortems.update(&actor, parse_id(&id)?, patch).await?))
}

pub async fn comment(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<NewComment>,
) -> Result<(StatusCode, Json<PostmortemComment>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.postmortems.comment(&actor, parse_id(&id)?, &input).await?)))
}

/// `GET …/export.md`: the document as Markdown, charts referenced as `charts/{n}.svg` beside it,
/// or with `?charts=inline` embedded as SVG.
pub async fn export(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    use crate::respond::postmortems::export::Charts;
    let id = parse_id(&id)?;
    let mut charts = Charts::Files;
    for (k, v) in url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        charts = match (k.as_ref(), v.as_ref()) {
            ("charts", "files") => Charts::Files,
            ("charts", "inline") => Charts::Inline,
            ("charts", _) => return Err(ApiError::bad("charts", "files or inline")),
            (other, _) => return Err(ApiError::bad(other.to_string(), "unknown parameter")),
        };
    }
    let p = state.postmortems.get(&actor, id).await?;
    let name = format!("attachment; filename=\"postmortem-incident-{}.md\"", p.incident.number);
    let body = crate::respond::postmortems::export::markdown(&p, charts);
    Ok((
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, name)],
        body,
    )
        .into_response())
}

/// `GET …/charts/{n}.svg`: one frozen chart.
pub async fn chart(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let position = file
        .strip_suffix(".svg")
        .and_then(|n| n.parse::<i32>().ok())
        .ok_or_else(|| ApiError::bad("chart", "expected {number}.svg"))?;
    let svg = state.postmortems.chart_svg(id, position).await?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}
