//! Postmortems for the list page and the document page. The server checks roles again whatever
//! the page showed (publishing and overrides need a commander).

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::{NewComment, Postmortem, PostmortemComment, PostmortemPatch, PostmortemSummary};

#[server(endpoint = "get_postmortems", input = Json)]
pub async fn get_postmortems() -> Result<Vec<PostmortemSummary>, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.postmortems().await.map_err(|e| ServerFnError::new(e.0))
}

#[server(endpoint = "get_postmortem", input = Json)]
pub async fn get_postmortem(id: uuid::Uuid) -> Result<Option<Postmortem>, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.postmortem(super::backend::request_parts()?, id).await.map_err(|e| ServerFnError::new(e.0))
}

/// The incident's postmortem: created and prefilled when it has none, else the existing one.
#[server(endpoint = "create_postmortem", input = Json)]
pub async fn create_postmortem(incident: uuid::Uuid) -> Result<Postmortem, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.create_postmortem(super::backend::request_parts()?, incident).await.map_err(|e| ServerFnError::new(e.0))
}

#[server(endpoint = "update_postmortem", input = Json)]
pub async fn update_postmortem(id: uuid::Uuid, patch: PostmortemPatch) -> Result<Postmortem, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.update_postmortem(super::backend::request_parts()?, id, patch).await.map_err(|e| ServerFnError::new(e.0))
}

#[server(endpoint = "comment_postmortem", input = Json)]
pub async fn comment_postmortem(id: uuid::Uuid, comment: NewComment) -> Result<PostmortemComment, ServerFnError> {
    let backend = super::backend::backend()?;
    backend
        .0
        .comment_postmortem(super::backend::request_parts()?, id, comment)
        .await
        .map_err(|e| ServerFnError::new(e.0))
}
