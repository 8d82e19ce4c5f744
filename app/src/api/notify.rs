//! Notifications from the browser: channels with "Send test" and their delivery logs, routing
//! rules, and maintenance windows. Inputs are JSON (specs nest); the server checks the role
//! whatever the page showed, and secrets come back masked.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use super::ServerError;

use crate::model::{Channel, ChannelSpec, Delivery, MaintenanceSpec, MaintenanceWindow, Rule, RuleSpec};

#[server(endpoint = "get_channels", input = Json)]
pub async fn get_channels() -> Result<Vec<Channel>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.channels().await
}

/// Creates a channel (`id` none) or changes it; a secret sent back masked keeps its stored value.
#[server(endpoint = "save_channel", input = Json)]
pub async fn save_channel(id: Option<uuid::Uuid>, spec: ChannelSpec) -> Result<Channel, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.save_channel(super::backend::request_parts()?, id, spec).await
}

#[server(endpoint = "delete_channel", input = Json)]
pub async fn delete_channel(id: uuid::Uuid) -> Result<(), ServerError> {
    let backend = super::backend::backend()?;
    backend.0.delete_channel(super::backend::request_parts()?, id).await
}

/// "Send test": one message now; the answer says how it went.
#[server(endpoint = "test_channel", input = Json)]
pub async fn test_channel(id: uuid::Uuid) -> Result<Delivery, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.test_channel(super::backend::request_parts()?, id).await
}

/// A channel's delivery log, newest first.
#[server(endpoint = "get_deliveries", input = Json)]
pub async fn get_deliveries(id: uuid::Uuid) -> Result<Vec<Delivery>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.deliveries(id).await
}

#[server(endpoint = "get_rules", input = Json)]
pub async fn get_rules() -> Result<Vec<Rule>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.rules().await
}

#[server(endpoint = "save_rule", input = Json)]
pub async fn save_rule(id: Option<uuid::Uuid>, spec: RuleSpec) -> Result<Rule, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.save_rule(super::backend::request_parts()?, id, spec).await
}

#[server(endpoint = "delete_rule", input = Json)]
pub async fn delete_rule(id: uuid::Uuid) -> Result<(), ServerError> {
    let backend = super::backend::backend()?;
    backend.0.delete_rule(super::backend::request_parts()?, id).await
}

#[server(endpoint = "get_maintenance", input = Json)]
pub async fn get_maintenance() -> Result<Vec<MaintenanceWindow>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.maintenance().await
}

#[server(endpoint = "save_maintenance", input = Json)]
pub async fn save_maintenance(id: Option<uuid::Uuid>, spec: MaintenanceSpec) -> Result<MaintenanceWindow, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.save_maintenance(super::backend::request_parts()?, id, spec).await
}

/// Ends the window's occurrence under way now (a recurring one comes back next time).
#[server(endpoint = "end_maintenance", input = Json)]
pub async fn end_maintenance(id: uuid::Uuid) -> Result<MaintenanceWindow, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.end_maintenance(super::backend::request_parts()?, id).await
}

#[server(endpoint = "delete_maintenance", input = Json)]
pub async fn delete_maintenance(id: uuid::Uuid) -> Result<(), ServerError> {
    let backend = super::backend::backend()?;
    backend.0.delete_maintenance(super::backend::request_parts()?, id).await
}
