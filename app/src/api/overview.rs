use leptos::prelude::*;

use super::ServerError;

use crate::model::{Overview, ServiceView, Window};

/// Every service as a tile for the overview page.
#[server(endpoint = "get_overview")]
pub async fn get_overview() -> Result<Overview, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.overview().await
}

/// One service with its charts over `window` (a preset ending now, or a fixed range).
#[server(endpoint = "get_service_view")]
pub async fn get_service_view(id: uuid::Uuid, window: Window) -> Result<Option<ServiceView>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.service_view(id, window).await
}
