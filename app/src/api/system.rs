use leptos::prelude::*;

use crate::model::SystemStatus;

/// Triage's own health and identity, for the status page.
#[server(endpoint = "get_system_status")]
pub async fn get_system_status() -> Result<SystemStatus, ServerFnError> {
    let backend = super::backend::backend()?;
    backend.0.system_status().await.map_err(|e| ServerFnError::new(e.0))
}
