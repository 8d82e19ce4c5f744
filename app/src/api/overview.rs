use leptos::prelude::*;

use super::ServerError;

use crate::model::{ServiceView, Window};

/// One service with its charts over `window` (a preset ending now, or a fixed range).
#[server(endpoint = "get_service_view")]
pub async fn get_service_view(id: uuid::Uuid, window: Window) -> Result<Option<ServiceView>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.service_view(id, window).await
}
