//! `/api/v1/incidents…`: incidents, their timelines, and the room's live stream.

use std::convert::Infallible;

use app::model::{
    EntryPatch, EntryRevision, Incident, IncidentFilter, IncidentPatch, IncidentStatus, NewEntry, NewIncident, Role,
    RoomEvent, Severity, TimelineEntry,
};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, Sse};
use futures::Stream;
use http::{HeaderMap, StatusCode};

use super::{ApiJson, parse_id};
use crate::access::actor::Actor;
use crate::respond::incidents::Author;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// The list's filters from the query string, each bad value named by its parameter.
pub fn parse_filter(query: Option<&str>) -> Result<IncidentFilter, ApiError> {
    let mut f = IncidentFilter::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if v.is_empty() {
            continue;
        }
        let day = |v: &str| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| ApiError::bad(k.to_string(), "a date, YYYY-MM-DD"))
        };
        match k.as_ref() {
            "status" => {
                f.status = Some(IncidentStatus::parse(&v).ok_or_else(|| {
                    ApiError::bad("status", "one of investigating, identified, monitoring, resolved")
                })?);
            }
            "severity" => {
                f.severity = Some(Severity::parse(&v).ok_or_else(|| ApiError::bad("severity", "one of SEV1–SEV4"))?);
            }
            "service" => f.service = Some(parse_id(&v).map_err(|_| ApiError::bad("service", "not a valid id"))?),
            "from" => f.from = Some(day(&v)?),
            "to" => f.to = Some(day(&v)?),
            "q" => f.q = Some(v.chars().take(200).collect()),
            other => return Err(ApiError::bad(other.to_string(), "unknown filter")),
        }
    }
    Ok(f)
}

pub async fn list(State(state): State<AppState>, RawQuery(q): RawQuery) -> Result<Json<Vec<Incident>>, ApiError> {
    let filter = parse_filter(q.as_deref())?;
    Ok(Json(state.incidents.list(&filter).await?))
}

pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<NewIncident>,
) -> Result<(StatusCode, Json<Incident>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.incidents.create(&actor, &input).await?)))
}

pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Incident>, ApiError> {
    Ok(Json(state.incidents.get(parse_id(&id)?).await?))
}

pub async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<IncidentPatch>,
) -> Result<Json<Incident>, ApiError> {
    Ok(Json(state.incidents.update(&actor, parse_id(&id)?, &patch).await?))
}

pub async fn timeline(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Vec<TimelineEntry>>, ApiError> {
    let id = parse_id(&id)?;
    state.incidents.get(id).await?;
    Ok(Json(state.incidents.timeline(&actor, id).await?))
}

/// 201 with the new entry; 200 with the stored one when the idempotency key was seen before.
pub async fn post_entry(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<NewEntry>,
) -> Result<(StatusCode, Json<TimelineEntry>), ApiError> {
    let key =
        headers.get("idempotency-key").map(|v| v.to_str().map_err(|_| ApiError::bad("Idempotency-Key", "not text")));
    let key = key.transpose()?;
    let (entry, created) = state.incidents.post_entry(&actor, parse_id(&id)?, &input, key).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(entry)))
}

fn entry_path(ids: &(String, String)) -> Result<(uuid::Uuid, uuid::Uuid), ApiError> {
    Ok((parse_id(&ids.0)?, ids.1.parse().map_err(|_| ApiError::bad("entry", "not a valid id (UUID)"))?))
}

pub async fn edit_entry(
    State(state): State<AppState>,
    actor: Actor,
    Path(ids): Path<(String, String)>,
    ApiJson(patch): ApiJson<EntryPatch>,
) -> Result<Json<TimelineEntry>, ApiError> {
    let (id, entry) = entry_path(&ids)?;
    Ok(Json(state.incidents.edit_entry(&actor, id, entry, &patch).await?))
}

pub async fn delete_entry(
    State(state): State<AppState>,
    actor: Actor,
    Path(ids): Path<(String, String)>,
) -> Result<Json<TimelineEntry>, ApiError> {
    let (id, entry) = entry_path(&ids)?;
    Ok(Json(state.incidents.delete_entry(&actor, id, entry).await?))
}

pub async fn history(
    State(state): State<AppState>,
    Path(ids): Path<(String, String)>,
) -> Result<Json<Vec<EntryRevision>>, ApiError> {
    let (id, entry) = entry_path(&ids)?;
    Ok(Json(state.incidents.history(id, entry).await?))
}

/// What a viewer of the room may see of an event: a deleted entry's content only for commanders.
fn visible(event: &RoomEvent, commander: bool) -> RoomEvent {
    match event {
        RoomEvent::Entry(e) if e.deleted.is_some() && !commander => {
            let mut e = e.clone();
            e.text.clear();
            e.html.clear();
            e.attachments.clear();
            RoomEvent::Entry(e)
        }
        other => other.clone(),
    }
}

fn sse(event: &RoomEvent) -> Event {
    Event::default().event(event.name()).data(serde_json::to_string(event).unwrap_or_default())
}

/// `since` of the room stream: the `now` of the room the page shows.
fn since_param(query: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let mut since = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "since" => {
                let at = chrono::DateTime::parse_from_rfc3339(&v)
                    .map_err(|_| ApiError::bad("since", "use RFC 3339, e.g. 2026-11-23T10:00:00Z"))?;
                since = Some(at.with_timezone(&chrono::Utc));
            }
            other => return Err(ApiError::bad(other, "unknown parameter (since is the only one)")),
        }
    }
    Ok(since)
}

/// `GET /api/v1/incidents/{id}/events[?since=…]`: the room live. It opens with the incident as it
/// is now and, given `since` (when the page's copy was read), the entries changed after it, so
/// nothing between reading the page and connecting is lost. The viewer counts as present while
/// the stream is open. Ends with the session (`signed_out`), on shutdown, or when it falls behind
/// (the page reconnects and refetches).
pub async fn events(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = parse_id(&id)?;
    let since = since_param(query.as_deref())?;
    let author = Author::of(&actor.principal)?;
    let commander = author.role >= Role::Commander;
    let rx = state.incidents.rooms.subscribe();
    // Read after subscribing: a change is then either in this snapshot or on the stream. An
    // unknown incident ends here with a 404.
    let (incident, entries) = state.incidents.changes_since(id, since).await?;
    let first = std::iter::once(RoomEvent::Incident(Box::new(incident)))
        .chain(entries.into_iter().map(RoomEvent::Entry))
        .map(|e| sse(&visible(&e, commander)))
        .collect();
    // Subscribed first: the viewer's own arrival is the stream's first presence event.
    let presence = state.incidents.rooms.enter(id, author.name);
    Ok(super::stream::guarded(&state, &actor.principal, rx, presence, first, move |(room, event)| {
        (*room == id).then(|| sse(&visible(event, commander)))
    }))
}
