//! Setting up services and probes from the browser (admins): the configuration page, the forms,
//! "Run now", the JSONPath tester, bulk actions, and the probe file's export and import. Inputs
//! are JSON (specs nest); the server checks the admin role whatever the page showed, and secrets
//! come back masked.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use super::ServerError;

use crate::model::{
    AllowChange, AllowEntry, BulkAction, BulkOutcome, Catalog, CatalogScope, DemoCommand, DemoStatus, ImportSummary,
    JsonPathAssertion, JsonPathTest, ProbeSpec, ProbeTrial, SavedProbe, Selection, Service, ServiceInput,
};

/// The services and the probes `scope` asks for (all of them when it is left out).
#[server(endpoint = "get_catalog", input = Json)]
pub async fn get_catalog(scope: Option<CatalogScope>) -> Result<Catalog, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.catalog(scope.unwrap_or_default()).await
}

/// Creates a service (`id` none) or changes it.
#[server(endpoint = "save_service", input = Json)]
pub async fn save_service(id: Option<uuid::Uuid>, input: ServiceInput) -> Result<Service, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.save_service(super::backend::request_parts()?, id, input).await
}

/// Deletes a service with its probes and their results.
#[server(endpoint = "delete_service", input = Json)]
pub async fn delete_service(id: uuid::Uuid) -> Result<(), ServerError> {
    let backend = super::backend::backend()?;
    backend.0.delete_service(super::backend::request_parts()?, id).await
}

/// Creates a probe (`id` none) or replaces it; masked secrets are taken from probe `from` (the
/// one edited or cloned).
#[server(endpoint = "save_probe", input = Json)]
pub async fn save_probe(
    id: Option<uuid::Uuid>,
    from: Option<uuid::Uuid>,
    spec: ProbeSpec,
) -> Result<SavedProbe, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.save_probe(super::backend::request_parts()?, id, from, spec).await
}

/// "Run now": the form's probe run once, nothing stored.
#[server(endpoint = "run_probe", input = Json)]
pub async fn run_probe(from: Option<uuid::Uuid>, spec: ProbeSpec) -> Result<ProbeTrial, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.run_probe(from, spec).await
}

/// Tries a JSONPath assertion on a sample body.
#[server(endpoint = "test_json_path", input = Json)]
pub async fn test_json_path(assertion: JsonPathAssertion, body: String) -> Result<JsonPathTest, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.test_json_path(assertion, body).await
}

/// Pauses, resumes or deletes the selected probes.
#[server(endpoint = "bulk_probes", input = Json)]
pub async fn bulk_probes(selection: Selection, action: BulkAction) -> Result<BulkOutcome, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.bulk(super::backend::request_parts()?, selection, action).await
}

/// Every service and probe as a probe file (TOML), secrets masked.
#[server(endpoint = "export_probe_file", input = Json)]
pub async fn export_probe_file() -> Result<String, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.export_file().await
}

/// Imports `files` (a Triage probe file; a Kuma backup; a Gatus configuration; for blackbox the
/// Prometheus configuration and the modules file). A dry run only says what would happen.
#[server(endpoint = "import_config", input = Json)]
pub async fn import_config(source: String, files: Vec<String>, dry_run: bool) -> Result<ImportSummary, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.import(super::backend::request_parts()?, source, files, dry_run).await
}

/// The built-in demo's state (any signed-in user: the overview shows it).
#[server(endpoint = "get_demo", input = Json)]
pub async fn get_demo() -> Result<DemoStatus, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.demo(super::backend::request_parts()?, DemoCommand::Show).await
}

/// Starts the built-in demo, switches its scenario, or removes all of it (admins).
#[server(endpoint = "control_demo", input = Json)]
pub async fn control_demo(command: DemoCommand) -> Result<DemoStatus, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.demo(super::backend::request_parts()?, command).await
}

/// The probes' network allowlist, after `change` (admins; every change is audited).
#[server(endpoint = "network_allowlist", input = Json)]
pub async fn network_allowlist(change: AllowChange) -> Result<Vec<AllowEntry>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.allowlist(super::backend::request_parts()?, change).await
}

/// A service's objective with its budget, burn and alerts; `None` when it has none.
#[server(endpoint = "get_slo", input = Json)]
pub async fn get_slo(service: uuid::Uuid) -> Result<Option<crate::model::SloStatus>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.slo(service).await
}

/// Sets a service's objective (admins), or removes it when `spec` is left out.
#[server(endpoint = "save_slo", input = Json)]
pub async fn save_slo(
    service: uuid::Uuid,
    spec: Option<crate::model::SloSpec>,
) -> Result<Option<crate::model::SloStatus>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.save_slo(super::backend::request_parts()?, service, spec).await
}
