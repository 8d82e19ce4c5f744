use leptos::prelude::*;

use crate::model::Overview;

/// Every service as a tile for the overview page.
#[server(endpoint = "get_overview")]
pub async fn get_overview() -> Result<Overview, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.overview().await.map_err(|e| ServerFnError::new(e.0))
}
