//! Incidents for the list page and the incident room. The bodies are JSON (the inputs nest);
//! the server checks roles again whatever the page showed.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::{
    EntryPatch, Incident, IncidentFilter, IncidentList, IncidentPatch, IncidentRoom, NewEntry, NewIncident,
    TimelineEntry,
};

#[server(endpoint = "get_incidents", input = Json)]
pub async fn get_incidents(filter: IncidentFilter) -> Result<IncidentList, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.incidents(filter).await.map_err(|e| ServerFnError::new(e.0))
}

#[server(endpoint = "get_incident_room", input = Json)]
pub async fn get_incident_room(id: uuid::Uuid) -> Result<Option<IncidentRoom>, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.incident_room(super::backend::request_parts()?, id).await.map_err(|e| ServerFnError::new(e.0))
}

#[server(endpoint = "post_incident", input = Json)]
pub async fn post_incident(input: NewIncident) -> Result<Incident, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.declare_incident(super::backend::request_parts()?, input).await.map_err(|e| ServerFnError::new(e.0))
}

#[server(endpoint = "update_incident", input = Json)]
pub async fn update_incident(id: uuid::Uuid, patch: IncidentPatch) -> Result<Incident, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.update_incident(super::backend::request_parts()?, id, patch).await.map_err(|e| ServerFnError::new(e.0))
}

/// Posts an entry; a retry with the same `idempotency_key` returns the stored one.
#[server(endpoint = "post_entry", input = Json)]
pub async fn post_entry(id: uuid::Uuid, entry: NewEntry) -> Result<TimelineEntry, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.post_entry(super::backend::request_parts()?, id, entry).await.map_err(|e| ServerFnError::new(e.0))
}

/// Edits an entry (its author or a commander); the previous version is kept.
#[server(endpoint = "edit_entry", input = Json)]
pub async fn edit_entry(id: uuid::Uuid, entry: uuid::Uuid, patch: EntryPatch) -> Result<TimelineEntry, ServerFnError> {
    let backend = super::backend::backend()?;
    backend
        .0
        .edit_entry(super::backend::request_parts()?, id, entry, Some(patch))
        .await
        .map_err(|e| ServerFnError::new(e.0))
}

/// Deletes an entry softly (its author or a commander); commanders still see it.
#[server(endpoint = "delete_entry", input = Json)]
pub async fn delete_entry(id: uuid::Uuid, entry: uuid::Uuid) -> Result<TimelineEntry, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.edit_entry(super::backend::request_parts()?, id, entry, None).await.map_err(|e| ServerFnError::new(e.0))
}
