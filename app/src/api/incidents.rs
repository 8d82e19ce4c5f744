//! Incidents for the list page and the incident room. The bodies are JSON (the inputs nest);
//! the server checks roles again whatever the page showed.

use leptos::prelude::*;

use super::ServerError;
use leptos::server_fn::codec::Json;

use crate::model::{
    EntryPatch, EntryRevision, Guidance, Hypothesis, HypothesisInput, Incident, IncidentFilter, IncidentList,
    IncidentPatch, IncidentRoom, NewEntry, NewIncident, TickInput, TimelineEntry,
};

#[server(endpoint = "get_incidents", input = Json)]
pub async fn get_incidents(filter: IncidentFilter) -> Result<IncidentList, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.incidents(filter).await
}

#[server(endpoint = "get_incident_room", input = Json)]
pub async fn get_incident_room(id: uuid::Uuid) -> Result<Option<IncidentRoom>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.incident_room(super::backend::request_parts()?, id).await
}

#[server(endpoint = "post_incident", input = Json)]
pub async fn post_incident(input: NewIncident) -> Result<Incident, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.declare_incident(super::backend::request_parts()?, input).await
}

/// Records a change event (a deploy, a config change, …) from the service page.
#[server(endpoint = "record_change", input = Json)]
pub async fn record_change(input: crate::model::ChangeInput) -> Result<crate::model::ChangeEvent, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.record_change(super::backend::request_parts()?, input).await
}

#[server(endpoint = "update_incident", input = Json)]
pub async fn update_incident(id: uuid::Uuid, patch: IncidentPatch) -> Result<Incident, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.update_incident(super::backend::request_parts()?, id, patch).await
}

/// Posts an entry; a retry with the same `idempotency_key` returns the stored one.
#[server(endpoint = "post_entry", input = Json)]
pub async fn post_entry(id: uuid::Uuid, entry: NewEntry) -> Result<TimelineEntry, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.post_entry(super::backend::request_parts()?, id, entry).await
}

/// Edits an entry (its author or a commander); the previous version is kept.
#[server(endpoint = "edit_entry", input = Json)]
pub async fn edit_entry(id: uuid::Uuid, entry: uuid::Uuid, patch: EntryPatch) -> Result<TimelineEntry, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.edit_entry(super::backend::request_parts()?, id, entry, Some(patch)).await
}

/// Earlier versions of an edited entry, oldest first.
#[server(endpoint = "get_entry_history", input = Json)]
pub async fn get_entry_history(id: uuid::Uuid, entry: uuid::Uuid) -> Result<Vec<EntryRevision>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.entry_history(id, entry).await
}

/// Deletes an entry softly (its author or a commander); commanders still see it.
#[server(endpoint = "delete_entry", input = Json)]
pub async fn delete_entry(id: uuid::Uuid, entry: uuid::Uuid) -> Result<TimelineEntry, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.edit_entry(super::backend::request_parts()?, id, entry, None).await
}

/// The room's guidance: symptoms, proposed checklists with live evidence, hypotheses, recovery.
#[server(endpoint = "get_guidance", input = Json)]
pub async fn get_guidance(id: uuid::Uuid) -> Result<Guidance, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.guidance(id).await
}

/// Ticks a step with a finding; returns the guidance after it.
#[server(endpoint = "tick_step", input = Json)]
pub async fn tick_step(id: uuid::Uuid, tick: TickInput) -> Result<Guidance, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.tick(super::backend::request_parts()?, id, tick).await
}

/// Adds a hypothesis (`hypothesis: None`) or changes one.
#[server(endpoint = "save_hypothesis", input = Json)]
pub async fn save_hypothesis(
    id: uuid::Uuid,
    hypothesis: Option<uuid::Uuid>,
    input: HypothesisInput,
) -> Result<Hypothesis, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.hypothesis(super::backend::request_parts()?, id, hypothesis, input).await
}
