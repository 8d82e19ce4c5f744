use leptos::prelude::*;

use super::ServerError;

use crate::model::SystemStatus;

/// Triage's own health and identity, for the status page.
#[server(endpoint = "get_system_status")]
pub async fn get_system_status() -> Result<SystemStatus, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.system_status().await
}
