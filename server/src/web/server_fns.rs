//! The backend of the UI's server functions: each call of [`app::api::backend::Backend`] reaches
//! the domain through the shared state, and its failure becomes what the page shows.

use app::api::backend::{Backend, BoxFuture, RequestParts, ServerError};
use app::model::{
    AuditRow, CreatedToken, EntryPatch, Guidance, Hypothesis, HypothesisInput, Incident, IncidentFilter, IncidentList,
    IncidentPatch, IncidentRoom, Me, NewEntry, NewIncident, NewToken, NewUser, ServiceView, SystemStatus, TickInput,
    TimelineEntry, TokenSummary, UserPatch, UserSummary, Window,
};

mod catalog;
mod notify;
mod public;

use crate::access::Principal;
use crate::access::accounts;
use crate::error::Error;
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// What server functions reach through [`app::api::backend::Backend`].
pub struct PgBackend {
    state: AppState,
}

impl PgBackend {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A server function's failure: the same status as the REST API would answer (set on the
/// response), and the kind the page matches on. Our own failures are logged, not shown.
fn shown(e: impl Into<ApiError>) -> ServerError {
    let e = e.into();
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(e.status());
    }
    e.into_server_error()
}

impl Backend for PgBackend {
    fn me(&self, req: &RequestParts) -> Option<Me> {
        req.extensions.get::<Principal>().and_then(Principal::user).cloned()
    }

    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserSummary>, ServerError>> {
        Box::pin(async move { crate::storage::auth::list_users(&self.state.pool).await.map_err(shown) })
    }

    fn create_user(&self, req: RequestParts, input: NewUser) -> BoxFuture<'_, Result<UserSummary, ServerError>> {
        Box::pin(async move {
            let user = accounts::create_user(&self.state.pool, &crate::web::access::actor_of(&req), &input)
                .await
                .map_err(shown)?;
            self.state.auth.users_exist();
            Ok(user)
        })
    }

    fn update_user(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        patch: UserPatch,
    ) -> BoxFuture<'_, Result<UserSummary, ServerError>> {
        Box::pin(async move {
            let user = accounts::update_user(&self.state.pool, &crate::web::access::actor_of(&req), id, &patch)
                .await
                .map_err(shown)?;
            self.state.forget(crate::storage::bus::Note::User { id });
            Ok(user)
        })
    }

    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenSummary>, ServerError>> {
        Box::pin(async move { accounts::list_tokens(&self.state.pool).await.map_err(shown) })
    }

    fn create_token(&self, req: RequestParts, input: NewToken) -> BoxFuture<'_, Result<CreatedToken, ServerError>> {
        Box::pin(async move {
            accounts::create_token(&self.state.pool, &crate::web::access::actor_of(&req), &input).await.map_err(shown)
        })
    }

    fn revoke_token(&self, req: RequestParts, id: uuid::Uuid) -> BoxFuture<'_, Result<(), ServerError>> {
        Box::pin(async move {
            accounts::revoke_token(&self.state.pool, &crate::web::access::actor_of(&req), id).await.map_err(shown)
        })
    }

    fn list_agents(&self) -> BoxFuture<'_, Result<Vec<app::model::Agent>, ServerError>> {
        Box::pin(async move { crate::storage::agents::list(&self.state.pool).await.map_err(shown) })
    }

    fn audit(&self) -> BoxFuture<'_, Result<Vec<AuditRow>, ServerError>> {
        Box::pin(async move { accounts::audit_trail(&self.state.pool, 200).await.map_err(shown) })
    }

    fn incidents(&self, filter: IncidentFilter) -> BoxFuture<'_, Result<IncidentList, ServerError>> {
        Box::pin(async move {
            let incidents = self.state.incidents.list(&filter).await.map_err(shown)?;
            let services = crate::storage::catalog::list_services(&self.state.pool)
                .await
                .map_err(shown)?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect();
            Ok(IncidentList { incidents, services, now: chrono::Utc::now() })
        })
    }

    fn incident_room(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
    ) -> BoxFuture<'_, Result<Option<IncidentRoom>, ServerError>> {
        Box::pin(async move {
            match self.state.incidents.room(&crate::web::access::actor_of(&req), id).await {
                Ok(room) => Ok(Some(room)),
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(shown(e)),
            }
        })
    }

    fn record_change(
        &self,
        req: RequestParts,
        input: app::model::ChangeInput,
    ) -> BoxFuture<'_, Result<app::model::ChangeEvent, ServerError>> {
        Box::pin(async move {
            self.state.incidents.record_change(&crate::web::access::actor_of(&req), &input).await.map_err(shown)
        })
    }

    fn declare_incident(&self, req: RequestParts, input: NewIncident) -> BoxFuture<'_, Result<Incident, ServerError>> {
        Box::pin(async move {
            self.state.incidents.create(&crate::web::access::actor_of(&req), &input).await.map_err(shown)
        })
    }

    fn update_incident(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        patch: IncidentPatch,
    ) -> BoxFuture<'_, Result<Incident, ServerError>> {
        Box::pin(async move {
            self.state.incidents.update(&crate::web::access::actor_of(&req), id, &patch).await.map_err(shown)
        })
    }

    fn post_entry(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        entry: NewEntry,
    ) -> BoxFuture<'_, Result<TimelineEntry, ServerError>> {
        Box::pin(async move {
            let (e, _) = self
                .state
                .incidents
                .post_entry(&crate::web::access::actor_of(&req), id, &entry, None)
                .await
                .map_err(shown)?;
            Ok(e)
        })
    }

    fn checklist_texts(&self) -> BoxFuture<'_, Result<Vec<app::model::ChecklistText>, ServerError>> {
        Box::pin(async move {
            let all = crate::storage::guidance::latest(&self.state.pool).await.map_err(shown)?;
            Ok(all
                .into_iter()
                .map(|c| app::model::ChecklistText {
                    toml: toml::to_string(&c.def).unwrap_or_default(),
                    id: c.def.id,
                    version: c.version,
                    title: c.def.title,
                    created_by: c.created_by,
                })
                .collect())
        })
    }

    fn save_checklist(&self, req: RequestParts, text: String) -> BoxFuture<'_, Result<i32, ServerError>> {
        Box::pin(async move {
            let def: app::model::ChecklistDef = toml::from_str(&text).map_err(|e| {
                let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
                shown(ApiError::BadRequest {
                    field: None,
                    message: format!("line {}: {}", line.unwrap_or(1), e.message()),
                })
            })?;
            let actor = crate::web::access::actor_of(&req);
            let saved = crate::respond::guidance::library::save(&self.state.pool, &actor.principal.actor(), &def)
                .await
                .map_err(shown)?;
            actor
                .audit(&self.state.pool, "checklist.save", &def.id, serde_json::json!({ "version": saved.version }))
                .await
                .map_err(shown)?;
            Ok(saved.version)
        })
    }

    fn guidance(&self, id: uuid::Uuid) -> BoxFuture<'_, Result<Guidance, ServerError>> {
        Box::pin(async move { self.state.guide.guidance(id).await.map_err(shown) })
    }

    fn tick(&self, req: RequestParts, id: uuid::Uuid, tick: TickInput) -> BoxFuture<'_, Result<Guidance, ServerError>> {
        Box::pin(
            async move { self.state.guide.tick(&crate::web::access::actor_of(&req), id, &tick).await.map_err(shown) },
        )
    }

    fn hypothesis(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        hypothesis: Option<uuid::Uuid>,
        input: HypothesisInput,
    ) -> BoxFuture<'_, Result<Hypothesis, ServerError>> {
        Box::pin(async move {
            let actor = crate::web::access::actor_of(&req);
            let done = match hypothesis {
                Some(h) => self.state.guide.update_hypothesis(&actor, id, h, &input).await,
                None => self.state.guide.add_hypothesis(&actor, id, &input).await,
            };
            done.map_err(shown)
        })
    }

    fn edit_entry(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        entry: uuid::Uuid,
        patch: Option<EntryPatch>,
    ) -> BoxFuture<'_, Result<TimelineEntry, ServerError>> {
        Box::pin(async move {
            let actor = crate::web::access::actor_of(&req);
            let done = match patch {
                Some(p) => self.state.incidents.edit_entry(&actor, id, entry, &p).await,
                None => self.state.incidents.delete_entry(&actor, id, entry).await,
            };
            done.map_err(shown)
        })
    }

    fn system_status(&self) -> BoxFuture<'_, Result<SystemStatus, ServerError>> {
        Box::pin(async move {
            let readiness = self.state.readiness.check().await;
            Ok(SystemStatus {
                instance: (*self.state.instance).clone(),
                readiness,
                recent_checks: self.state.readiness.history(),
            })
        })
    }

    fn service_view(&self, id: uuid::Uuid, window: Window) -> BoxFuture<'_, Result<Option<ServiceView>, ServerError>> {
        Box::pin(async move {
            let Some(mut view) =
                crate::monitor::overview::service_view(self.state.reads.pool(), id, &window).await.map_err(shown)?
            else {
                return Ok(None);
            };
            view.slo = self.state.slos.for_page(id).await.map_err(shown)?;
            Ok(Some(view))
        })
    }

    fn entry_history(
        &self,
        id: uuid::Uuid,
        entry: uuid::Uuid,
    ) -> BoxFuture<'_, Result<Vec<app::model::EntryRevision>, ServerError>> {
        Box::pin(async move { self.state.incidents.history(id, entry).await.map_err(shown) })
    }

    fn postmortems(&self) -> BoxFuture<'_, Result<Vec<app::model::PostmortemSummary>, ServerError>> {
        Box::pin(async move { self.state.postmortems.list().await.map_err(shown) })
    }

    fn postmortem(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
    ) -> BoxFuture<'_, Result<Option<app::model::Postmortem>, ServerError>> {
        Box::pin(async move {
            match self.state.postmortems.get(&crate::web::access::actor_of(&req), id).await {
                Ok(p) => Ok(Some(p)),
                Err(Error::NotFound(_)) => Ok(None),
                Err(e) => Err(shown(e)),
            }
        })
    }

    fn create_postmortem(
        &self,
        req: RequestParts,
        incident: uuid::Uuid,
    ) -> BoxFuture<'_, Result<app::model::Postmortem, ServerError>> {
        Box::pin(async move {
            self.state
                .postmortems
                .create(&crate::web::access::actor_of(&req), incident)
                .await
                .map(|(p, _)| p)
                .map_err(shown)
        })
    }

    fn update_postmortem(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        patch: app::model::PostmortemPatch,
    ) -> BoxFuture<'_, Result<app::model::Postmortem, ServerError>> {
        Box::pin(async move {
            self.state.postmortems.update(&crate::web::access::actor_of(&req), id, patch).await.map_err(shown)
        })
    }

    fn comment_postmortem(
        &self,
        req: RequestParts,
        id: uuid::Uuid,
        comment: app::model::NewComment,
    ) -> BoxFuture<'_, Result<app::model::PostmortemComment, ServerError>> {
        Box::pin(async move {
            self.state.postmortems.comment(&crate::web::access::actor_of(&req), id, &comment).await.map_err(shown)
        })
    }
}
