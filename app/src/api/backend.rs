//! The seam between server functions (compiled in `app`) and the server (`server` crate, which
//! depends on `app`): `app` states what its server functions need, `server` implements it and
//! provides it as Leptos context. All SQL stays in `server::storage`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::model::{
    AllowChange, AllowEntry, BulkAction, BulkOutcome, Catalog, DemoCommand, DemoStatus, ImportSummary,
    JsonPathAssertion, JsonPathTest, ProbeSpec, ProbeTrial, SavedProbe, Selection, Service, ServiceInput,
};
use crate::model::{
    AuditRow, CreatedToken, EntryPatch, EntryRevision, Guidance, Hypothesis, HypothesisInput, Incident, IncidentFilter,
    IncidentList, IncidentPatch, IncidentRoom, Me, NewComment, NewEntry, NewIncident, NewToken, NewUser, Postmortem,
    PostmortemComment, PostmortemPatch, PostmortemSummary, ServiceView, SystemStatus, TickInput, TimelineEntry,
    TokenSummary, UserPatch, UserSummary, Window,
};

/// The request a server function serves (who asks, from where): the server reads the caller
/// that its access middleware attached.
pub type RequestParts = http::request::Parts;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub use super::ServerError;

pub trait Backend: CatalogBackend + NotifyBackend + PublicBackend + Send + Sync + 'static {
    fn system_status(&self) -> BoxFuture<'_, Result<SystemStatus, ServerError>>;
    /// The service page over `window`; `None` when no such service exists.
    fn service_view(&self, id: uuid::Uuid, window: Window) -> BoxFuture<'_, Result<Option<ServiceView>, ServerError>>;
    /// The signed-in user making this request, if any.
    fn me(&self, req: &RequestParts) -> Option<Me>;
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserSummary>, ServerError>>;
    fn create_user(&self, req: RequestParts, input: NewUser) -> BoxFuture<'_, Result<UserSummary, ServerError>>;
    fn update_user(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        patch: UserPatch,
    ) -> BoxFuture<'_, Result<UserSummary, ServerError>>;
    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenSummary>, ServerError>>;
    fn create_token(&self, req: RequestParts, input: NewToken) -> BoxFuture<'_, Result<CreatedToken, ServerError>>;
    fn revoke_token(&self, req: RequestParts, id: uuid::Uuid) -> BoxFuture<'_, Result<(), ServerError>>;
    fn audit(&self) -> BoxFuture<'_, Result<Vec<AuditRow>, ServerError>>;
    /// Remote agents as they last reported.
    fn list_agents(&self) -> BoxFuture<'_, Result<Vec<crate::model::Agent>, ServerError>>;
    /// Incidents matching `filter`, with the services one can filter by.
    fn incidents(&self, filter: IncidentFilter) -> BoxFuture<'_, Result<IncidentList, ServerError>>;
    /// The incident with its timeline; `None` when no such incident exists.
    fn incident_room(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
    ) -> BoxFuture<'_, Result<Option<IncidentRoom>, ServerError>>;
    fn declare_incident(&self, req: RequestParts, input: NewIncident) -> BoxFuture<'_, Result<Incident, ServerError>>;
    /// Records a change event (responders, from the service page).
    fn record_change(
        &self,
        req: RequestParts,
        input: crate::model::ChangeInput,
    ) -> BoxFuture<'_, Result<crate::model::ChangeEvent, ServerError>>;
    fn update_incident(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        patch: IncidentPatch,
    ) -> BoxFuture<'_, Result<Incident, ServerError>>;
    fn post_entry(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        entry: NewEntry,
    ) -> BoxFuture<'_, Result<TimelineEntry, ServerError>>;
    fn checklist_texts(&self) -> BoxFuture<'_, Result<Vec<crate::model::ChecklistText>, ServerError>>;
    fn save_checklist(&self, req: RequestParts, toml: String) -> BoxFuture<'_, Result<i32, ServerError>>;
    fn guidance(&self, id: uuid::Uuid) -> BoxFuture<'_, Result<Guidance, ServerError>>;
    fn tick(&self, req: RequestParts, id: uuid::Uuid, tick: TickInput) -> BoxFuture<'_, Result<Guidance, ServerError>>;
    /// Adds a hypothesis (`hypothesis` none) or changes it.
    fn hypothesis(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        hypothesis: Option<uuid::Uuid>,
        input: HypothesisInput,
    ) -> BoxFuture<'_, Result<Hypothesis, ServerError>>;
    /// Applies `patch` to the entry, or deletes it (softly) when there is none.
    fn edit_entry(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        entry: uuid::Uuid,
        patch: Option<EntryPatch>,
    ) -> BoxFuture<'_, Result<TimelineEntry, ServerError>>;
    /// Earlier versions of an edited timeline entry.
    fn entry_history(
        &self,
        id: uuid::Uuid,
        entry: uuid::Uuid,
    ) -> BoxFuture<'_, Result<Vec<EntryRevision>, ServerError>>;
    /// Every postmortem with its headline metrics.
    fn postmortems(&self) -> BoxFuture<'_, Result<Vec<PostmortemSummary>, ServerError>>;
    /// `None` when no such postmortem exists.
    fn postmortem(&self, req: RequestParts, id: uuid::Uuid) -> BoxFuture<'_, Result<Option<Postmortem>, ServerError>>;
    /// The incident's postmortem, created (prefilled) when it has none.
    fn create_postmortem(
        &self,
        req: RequestParts,
        incident: uuid::Uuid,
    ) -> BoxFuture<'_, Result<Postmortem, ServerError>>;
    fn update_postmortem(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        patch: PostmortemPatch,
    ) -> BoxFuture<'_, Result<Postmortem, ServerError>>;
    fn comment_postmortem(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        comment: NewComment,
    ) -> BoxFuture<'_, Result<PostmortemComment, ServerError>>;
}

/// Setting up services and probes (admins; secrets answered masked).
pub trait CatalogBackend: Send + Sync + 'static {
    fn catalog(&self, scope: crate::model::CatalogScope) -> BoxFuture<'_, Result<Catalog, ServerError>>;
    fn save_service(
        &self,
        req: RequestParts,
        id: Option<uuid::Uuid>,
        input: ServiceInput,
    ) -> BoxFuture<'_, Result<Service, ServerError>>;
    fn delete_service(&self, req: RequestParts, id: uuid::Uuid) -> BoxFuture<'_, Result<(), ServerError>>;
    fn save_probe(
        &self,
        req: RequestParts,
        id: Option<uuid::Uuid>,
        from: Option<uuid::Uuid>,
        spec: ProbeSpec,
    ) -> BoxFuture<'_, Result<SavedProbe, ServerError>>;
    fn run_probe(&self, from: Option<uuid::Uuid>, spec: ProbeSpec) -> BoxFuture<'_, Result<ProbeTrial, ServerError>>;
    fn test_json_path(
        &self,
        assertion: JsonPathAssertion,
        body: String,
    ) -> BoxFuture<'_, Result<JsonPathTest, ServerError>>;
    fn bulk(
        &self,
        req: RequestParts,
        selection: Selection,
        action: BulkAction,
    ) -> BoxFuture<'_, Result<BulkOutcome, ServerError>>;
    fn export_file(&self) -> BoxFuture<'_, Result<String, ServerError>>;
    fn demo(&self, req: RequestParts, command: DemoCommand) -> BoxFuture<'_, Result<DemoStatus, ServerError>>;
    fn allowlist(&self, req: RequestParts, change: AllowChange) -> BoxFuture<'_, Result<Vec<AllowEntry>, ServerError>>;
    fn import(
        &self,
        req: RequestParts,
        source: String,
        files: Vec<String>,
        dry_run: bool,
    ) -> BoxFuture<'_, Result<ImportSummary, ServerError>>;
    /// The service's objective and how it stands; `None` when it has none.
    fn slo(&self, service: uuid::Uuid) -> BoxFuture<'_, Result<Option<crate::model::SloStatus>, ServerError>>;
    /// Sets the objective, or removes it (`spec` none).
    fn save_slo(
        &self,
        req: RequestParts,
        service: uuid::Uuid,
        spec: Option<crate::model::SloSpec>,
    ) -> BoxFuture<'_, Result<Option<crate::model::SloStatus>, ServerError>>;
}

/// Notification channels, rules and maintenance windows (admins write; secrets answered masked).
pub trait NotifyBackend: Send + Sync + 'static {
    fn channels(&self) -> BoxFuture<'_, Result<Vec<crate::model::Channel>, ServerError>>;
    fn save_channel(
        &self,
        req: RequestParts,
        id: Option<uuid::Uuid>,
        spec: crate::model::ChannelSpec,
    ) -> BoxFuture<'_, Result<crate::model::Channel, ServerError>>;
    fn delete_channel(&self, req: RequestParts, id: uuid::Uuid) -> BoxFuture<'_, Result<(), ServerError>>;
    fn test_channel(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
    ) -> BoxFuture<'_, Result<crate::model::Delivery, ServerError>>;
    fn deliveries(&self, id: uuid::Uuid) -> BoxFuture<'_, Result<Vec<crate::model::Delivery>, ServerError>>;
    fn rules(&self) -> BoxFuture<'_, Result<Vec<crate::model::Rule>, ServerError>>;
    fn save_rule(
        &self,
        req: RequestParts,
        id: Option<uuid::Uuid>,
        spec: crate::model::RuleSpec,
    ) -> BoxFuture<'_, Result<crate::model::Rule, ServerError>>;
    fn delete_rule(&self, req: RequestParts, id: uuid::Uuid) -> BoxFuture<'_, Result<(), ServerError>>;
    fn maintenance(&self) -> BoxFuture<'_, Result<Vec<crate::model::MaintenanceWindow>, ServerError>>;
    fn save_maintenance(
        &self,
        req: RequestParts,
        id: Option<uuid::Uuid>,
        spec: crate::model::MaintenanceSpec,
    ) -> BoxFuture<'_, Result<crate::model::MaintenanceWindow, ServerError>>;
    fn end_maintenance(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
    ) -> BoxFuture<'_, Result<crate::model::MaintenanceWindow, ServerError>>;
    fn delete_maintenance(&self, req: RequestParts, id: uuid::Uuid) -> BoxFuture<'_, Result<(), ServerError>>;
}

/// Status pages (admins) and the public updates commanders post from the room.
pub trait PublicBackend: Send + Sync + 'static {
    fn status_pages(&self) -> BoxFuture<'_, Result<Vec<crate::model::StatusPage>, ServerError>>;
    fn save_status_page(
        &self,
        req: RequestParts,
        id: Option<uuid::Uuid>,
        spec: crate::model::StatusPageSpec,
    ) -> BoxFuture<'_, Result<crate::model::StatusPage, ServerError>>;
    fn delete_status_page(&self, req: RequestParts, id: uuid::Uuid) -> BoxFuture<'_, Result<(), ServerError>>;
    fn public_updates(
        &self,
        incident: uuid::Uuid,
    ) -> BoxFuture<'_, Result<Vec<crate::model::PublicUpdate>, ServerError>>;
    fn post_public_update(
        &self,
        req: RequestParts,
        incident: uuid::Uuid,
        input: crate::model::PublicUpdateInput,
    ) -> BoxFuture<'_, Result<crate::model::PublicUpdate, ServerError>>;
}

/// The backend as Leptos context.
#[derive(Clone)]
pub struct SharedBackend(pub Arc<dyn Backend>);

/// The request being served, from Leptos context.
pub fn request_parts() -> Result<RequestParts, ServerError> {
    leptos::prelude::use_context::<RequestParts>().ok_or(ServerError::Internal)
}

/// The backend from context; an error (not a panic) if the server forgot to provide it.
pub fn backend() -> Result<SharedBackend, ServerError> {
    leptos::prelude::use_context::<SharedBackend>().ok_or(ServerError::Internal)
}

/// Refuses a server function's input before it reaches the backend, with the status the REST
/// API gives bad input (400).
pub fn refuse(field: &str, message: &str) -> ServerError {
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::BAD_REQUEST);
    }
    ServerError::invalid(field, message)
}
