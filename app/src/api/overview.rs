use leptos::prelude::*;

use super::ServerError;

use crate::model::{OverviewPage, OverviewQuery, ServiceView, Window};

/// One page of the overview's tiles, with the counts by state and tag, for a view state.
#[server(endpoint = "get_overview")]
pub async fn get_overview(query: OverviewQuery) -> Result<OverviewPage, ServerError> {
    let backend = super::backend::backend()?;
    let overview = backend.0.overview().await?;
    Ok(crate::components::tiles::overview_page(&overview, &query))
}

/// One service with its charts over `window` (a preset ending now, or a fixed range).
#[server(endpoint = "get_service_view")]
pub async fn get_service_view(id: uuid::Uuid, window: Window) -> Result<Option<ServiceView>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.service_view(id, window).await
}
