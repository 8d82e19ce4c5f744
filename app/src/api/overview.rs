use leptos::prelude::*;

use crate::model::{Overview, ServiceView};

/// Every service as a tile for the overview page.
#[server(endpoint = "get_overview")]
pub async fn get_overview() -> Result<Overview, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.overview().await.map_err(|e| ServerFnError::new(e.0))
}

/// One service with its charts over the range preset `range` (`15m` … `30d`).
#[server(endpoint = "get_service_view")]
pub async fn get_service_view(id: uuid::Uuid, range: String) -> Result<Option<ServiceView>, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.service_view(id, range).await.map_err(|e| ServerFnError::new(e.0))
}
