//! Status pages and public updates from the browser. The server checks the role (admins build
//! pages, commanders post updates) whatever the page showed.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use super::ServerError;

use crate::model::{PublicUpdate, PublicUpdateInput, StatusPage, StatusPageSpec};

#[server(endpoint = "get_status_pages", input = Json)]
pub async fn get_status_pages() -> Result<Vec<StatusPage>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.status_pages().await
}

/// Creates a page (`id` none) or replaces it.
#[server(endpoint = "save_status_page", input = Json)]
pub async fn save_status_page(id: Option<uuid::Uuid>, spec: StatusPageSpec) -> Result<StatusPage, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.save_status_page(super::backend::request_parts()?, id, spec).await
}

#[server(endpoint = "delete_status_page", input = Json)]
pub async fn delete_status_page(id: uuid::Uuid) -> Result<(), ServerError> {
    let backend = super::backend::backend()?;
    backend.0.delete_status_page(super::backend::request_parts()?, id).await
}

/// An incident's public updates, newest first.
#[server(endpoint = "get_public_updates", input = Json)]
pub async fn get_public_updates(incident: uuid::Uuid) -> Result<Vec<PublicUpdate>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.public_updates(incident).await
}

#[server(endpoint = "post_public_update", input = Json)]
pub async fn post_public_update(incident: uuid::Uuid, input: PublicUpdateInput) -> Result<PublicUpdate, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.post_public_update(super::backend::request_parts()?, incident, input).await
}
