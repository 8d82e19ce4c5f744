//! Postmortems for the list page and the document page. The server checks roles again whatever
//! the page showed (publishing and overrides need a commander).

use leptos::prelude::*;

use super::ServerError;
use leptos::server_fn::codec::Json;

use crate::model::{NewComment, Postmortem, PostmortemComment, PostmortemPatch, PostmortemSummary};

#[server(endpoint = "get_postmortems", input = Json)]
pub async fn get_postmortems() -> Result<Vec<PostmortemSummary>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.postmortems().await
}

#[server(endpoint = "get_postmortem", input = Json)]
pub async fn get_postmortem(id: uuid::Uuid) -> Result<Option<Postmortem>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.postmortem(super::backend::request_parts()?, id).await
}

/// The incident's postmortem: created and prefilled when it has none, else the existing one.
#[server(endpoint = "create_postmortem", input = Json)]
pub async fn create_postmortem(incident: uuid::Uuid) -> Result<Postmortem, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.create_postmortem(super::backend::request_parts()?, incident).await
}

#[server(endpoint = "update_postmortem", input = Json)]
pub async fn update_postmortem(id: uuid::Uuid, patch: PostmortemPatch) -> Result<Postmortem, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.update_postmortem(super::backend::request_parts()?, id, patch).await
}

#[server(endpoint = "comment_postmortem", input = Json)]
pub async fn comment_postmortem(id: uuid::Uuid, comment: NewComment) -> Result<PostmortemComment, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.comment_postmortem(super::backend::request_parts()?, id, comment).await
}
