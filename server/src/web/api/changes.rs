//! Change events: `POST /api/v1/changes` from CI (a `push` or `admin` token) and the list the
//! charts and scripts read.

use app::model::{ChangeEvent, ChangeInput};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};

use super::{ApiJson, parse_id};
use crate::access::actor::Actor;
use crate::respond::incidents::changes::ChangeFilter;
use crate::web::error::ApiError;
use crate::web::state::AppState;

pub async fn record(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<ChangeInput>,
) -> Result<(StatusCode, Json<ChangeEvent>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.incidents.record_change(&actor, &input).await?)))
}

/// `?service_id=&from=&to=` (RFC 3339 times), each bad value named by its parameter.
fn parse_filter(query: Option<&str>) -> Result<ChangeFilter, ApiError> {
    let mut f = ChangeFilter::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if v.is_empty() {
            continue;
        }
        let time = |v: &str| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::bad(k.to_string(), "an RFC 3339 time, e.g. 2026-12-07T14:02:00Z"))
        };
        match k.as_ref() {
            "service_id" => {
                f.service_id = Some(parse_id(&v).map_err(|_| ApiError::bad("service_id", "not a valid id"))?);
            }
            "from" => f.from = Some(time(&v)?),
            "to" => f.to = Some(time(&v)?),
            other => return Err(ApiError::bad(other.to_string(), "unknown parameter")),
        }
    }
    Ok(f)
}

pub async fn list(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Vec<ChangeEvent>>, ApiError> {
    Ok(Json(state.incidents.list_changes(&parse_filter(q.as_deref())?).await?))
}
