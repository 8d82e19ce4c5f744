//! The REST API under `/api/v1`: services, probes, their results and series, and pushed results.
//! JSON in and out; every error is the JSON body of [`ApiError`], naming the field at fault.

mod agents;
mod auth;
mod changes;
mod guidance;
mod import;
mod incidents;
mod notify;
pub mod openapi;
pub mod overview;
mod postmortems;
mod probes;
mod push;
mod services;
mod status_pages;
mod stream;
mod users;

use app::model::{
    Agent, AgentBatch, AgentBatchAnswer, AuditRow, ChangeEvent, ChangeInput, Channel, ChannelSpec, Checklist,
    ChecklistDef, CreatedToken, Delivery, EntryPatch, EntryRevision, Guidance, Hypothesis, HypothesisInput, Incident,
    IncidentPatch, MaintenanceSpec, MaintenanceWindow, Me, NewComment, NewEntry, NewIncident, NewToken, NewUser,
    Postmortem, PostmortemComment, PostmortemPatch, PostmortemSummary, Probe, ProbeResult, ProbeSpec, ProbeTrial,
    PublicUpdate, PublicUpdateInput, Replica, Role, Rule, RuleSpec, Series, Service, ServiceInput, SloSpec, SloStatus,
    StateChange, StatusPage, StatusPageSpec, TickInput, TimelineEntry, TokenSummary, UserPatch, UserSummary,
};
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::web::access::{Need, Secured};
use crate::web::error::ApiError;
use openapi::{any_json, json, list, other};

/// Every REST route with what it needs (the access table is built from these calls).
pub fn routes() -> Secured {
    let viewer = Need::Role(Role::Viewer);
    let admin = Need::Role(Role::Admin);
    let responder = Need::Role(Role::Responder);
    let commander = Need::Role(Role::Commander);
    Secured::default()
        .get("/api/v1/openapi.json", Need::SignedIn, openapi::serve)
        .returns(200, any_json())
        .get("/api/v1/overview.html", viewer, overview::fragment)
        .returns(200, other("text/html"))
        .get("/api/v1/services", viewer, services::list)
        .returns(200, list::<Service>())
        .post("/api/v1/services", admin, services::create)
        .takes(json::<ServiceInput>())
        .returns(201, json::<Service>())
        .get("/api/v1/services/{id}", viewer, services::show)
        .returns(200, json::<Service>())
        .put("/api/v1/services/{id}", admin, services::replace)
        .takes(json::<ServiceInput>())
        .returns(200, json::<Service>())
        .delete("/api/v1/services/{id}", admin, services::delete)
        .returns(204, None)
        .get("/api/v1/services/{id}/slo", viewer, services::slo)
        .returns(200, json::<SloStatus>())
        .put("/api/v1/services/{id}/slo", admin, services::set_slo)
        .takes(json::<SloSpec>())
        .returns(200, json::<SloStatus>())
        .delete("/api/v1/services/{id}/slo", admin, services::delete_slo)
        .returns(204, None)
        .get("/api/v1/probes", viewer, probes::list)
        .returns(200, list::<Probe>())
        .post("/api/v1/probes", admin, probes::create)
        .takes(json::<ProbeSpec>())
        .returns(201, json::<probes::WrittenProbe>())
        .post("/api/v1/import/{source}", admin, import::import)
        .takes(other("text/plain"))
        .returns(200, json::<crate::monitor::import::write::ImportReport>())
        .post("/api/v1/probes/apply", admin, probes::apply_file)
        .returns(200, json::<crate::monitor::probe_file::FileDiff>())
        .post("/api/v1/probes/test", admin, probes::test)
        .takes(json::<ProbeSpec>())
        .returns(200, json::<ProbeTrial>())
        .get("/api/v1/probes/{id}", viewer, probes::show)
        .returns(200, json::<Probe>())
        .put("/api/v1/probes/{id}", admin, probes::replace)
        .takes(json::<ProbeSpec>())
        .returns(200, json::<probes::WrittenProbe>())
        .delete("/api/v1/probes/{id}", admin, probes::delete)
        .returns(204, None)
        .get("/api/v1/probes/{id}/results", viewer, probes::results)
        .returns(200, list::<ProbeResult>())
        .get("/api/v1/probes/{id}/series", viewer, probes::series)
        .returns(200, json::<Series>())
        .get("/api/v1/probes/{id}/locations", viewer, probes::locations)
        .returns(200, list::<app::model::LocationState>())
        .get("/api/v1/probes/{id}/state-changes", viewer, probes::state_changes)
        .returns(200, list::<StateChange>())
        .post("/api/v1/changes", Need::Push, changes::record)
        .takes(json::<ChangeInput>())
        .returns(201, json::<ChangeEvent>())
        .get("/api/v1/changes", viewer, changes::list)
        .returns(200, list::<ChangeEvent>())
        .post("/api/v1/push/{id}", Need::Push, push::push)
        .takes(json::<push::PushBody>())
        .returns(201, json::<push::PushAnswer>())
        .returns(200, json::<push::PushAnswer>())
        .get("/api/v1/agent/stream", Need::Agent, agents::stream)
        .returns(200, other("text/event-stream"))
        .post("/api/v1/agent/results", Need::Agent, agents::results)
        .takes(json::<AgentBatch>())
        .returns(200, json::<AgentBatchAnswer>())
        .get("/api/v1/agents", admin, agents::list)
        .returns(200, list::<Agent>())
        .post("/api/v1/agents/{id}/revoke", admin, agents::revoke)
        .returns(204, None)
        .get("/api/v1/events", viewer, stream::events)
        .returns(200, other("text/event-stream"))
        .post("/api/v1/auth/login", Need::Public, auth::login)
        .takes(json::<auth::LoginBody>())
        .returns(200, json::<Me>())
        .returns(303, None)
        .post("/api/v1/auth/logout", Need::Public, auth::logout)
        .returns(204, None)
        .returns(303, None)
        .post("/api/v1/auth/setup", Need::Public, auth::setup)
        .takes(json::<auth::SetupBody>())
        .returns(201, json::<Me>())
        .returns(303, None)
        .get("/api/v1/auth/me", viewer, auth::me)
        .returns(200, json::<auth::Caller>())
        .post("/api/v1/auth/password", viewer, auth::change_password)
        .takes(json::<auth::PasswordBody>())
        .returns(204, None)
        .returns(303, None)
        .get("/api/v1/users", admin, users::list)
        .returns(200, list::<UserSummary>())
        .post("/api/v1/users", admin, users::create)
        .takes(json::<NewUser>())
        .returns(201, json::<UserSummary>())
        .patch("/api/v1/users/{id}", admin, users::update)
        .takes(json::<UserPatch>())
        .returns(200, json::<UserSummary>())
        .get("/api/v1/tokens", admin, users::tokens)
        .returns(200, list::<TokenSummary>())
        .post("/api/v1/tokens", admin, users::create_token)
        .takes(json::<NewToken>())
        .returns(201, json::<CreatedToken>())
        .delete("/api/v1/tokens/{id}", admin, users::revoke_token)
        .returns(204, None)
        .get("/api/v1/audit", admin, users::audit)
        .returns(200, list::<AuditRow>())
        .get("/api/v1/incidents", viewer, incidents::list)
        .returns(200, list::<Incident>())
        .post("/api/v1/incidents", responder, incidents::create)
        .takes(json::<NewIncident>())
        .returns(201, json::<Incident>())
        .get("/api/v1/incidents/{id}", viewer, incidents::show)
        .returns(200, json::<Incident>())
        .patch("/api/v1/incidents/{id}", commander, incidents::update)
        .takes(json::<IncidentPatch>())
        .returns(200, json::<Incident>())
        .get("/api/v1/incidents/{id}/events", viewer, incidents::events)
        .returns(200, other("text/event-stream"))
        .get("/api/v1/incidents/{id}/timeline", viewer, incidents::timeline)
        .returns(200, list::<TimelineEntry>())
        .post("/api/v1/incidents/{id}/timeline", responder, incidents::post_entry)
        .takes(json::<NewEntry>())
        .returns(201, json::<TimelineEntry>())
        .returns(200, json::<TimelineEntry>())
        .patch("/api/v1/incidents/{id}/timeline/{entry}", responder, incidents::edit_entry)
        .takes(json::<EntryPatch>())
        .returns(200, json::<TimelineEntry>())
        .delete("/api/v1/incidents/{id}/timeline/{entry}", responder, incidents::delete_entry)
        .returns(200, json::<TimelineEntry>())
        .get("/api/v1/incidents/{id}/timeline/{entry}/history", viewer, incidents::history)
        .returns(200, list::<EntryRevision>())
        .get("/api/v1/incidents/{id}/guidance", viewer, guidance::show)
        .returns(200, json::<Guidance>())
        .post("/api/v1/incidents/{id}/guidance/ticks", responder, guidance::tick)
        .takes(json::<TickInput>())
        .returns(200, json::<Guidance>())
        .post("/api/v1/incidents/{id}/hypotheses", responder, guidance::add_hypothesis)
        .takes(json::<HypothesisInput>())
        .returns(201, json::<Hypothesis>())
        .patch("/api/v1/incidents/{id}/hypotheses/{hypothesis}", responder, guidance::update_hypothesis)
        .takes(json::<HypothesisInput>())
        .returns(200, json::<Hypothesis>())
        .get("/api/v1/checklists", viewer, guidance::checklists)
        .returns(200, list::<Checklist>())
        .get("/api/v1/checklists/{id}", viewer, guidance::versions)
        .returns(200, list::<Checklist>())
        .put("/api/v1/checklists/{id}", admin, guidance::save)
        .takes(json::<ChecklistDef>())
        .returns(201, json::<Checklist>())
        .post("/api/v1/incidents/{id}/postmortem", responder, postmortems::create)
        .returns(201, json::<Postmortem>())
        .returns(200, json::<Postmortem>())
        .get("/api/v1/postmortems", viewer, postmortems::list)
        .returns(200, list::<PostmortemSummary>())
        .get("/api/v1/postmortems/{id}", viewer, postmortems::show)
        .returns(200, json::<Postmortem>())
        .patch("/api/v1/postmortems/{id}", responder, postmortems::update)
        .takes(json::<PostmortemPatch>())
        .returns(200, json::<Postmortem>())
        .post("/api/v1/postmortems/{id}/comments", responder, postmortems::comment)
        .takes(json::<NewComment>())
        .returns(201, json::<PostmortemComment>())
        .get("/api/v1/postmortems/{id}/export.md", viewer, postmortems::export)
        .returns(200, other("text/markdown"))
        .get("/api/v1/postmortems/{id}/charts/{file}", viewer, postmortems::chart)
        .returns(200, other("image/svg+xml"))
        .get("/api/v1/replicas", admin, services::replicas)
        .returns(200, list::<Replica>())
        .get("/api/v1/probes/{id}/replica", admin, services::probe_replica)
        .returns(200, json::<Replica>())
        .get("/api/v1/channels", admin, notify::list_channels)
        .returns(200, list::<Channel>())
        .post("/api/v1/channels", admin, notify::create_channel)
        .takes(json::<ChannelSpec>())
        .returns(201, json::<Channel>())
        .get("/api/v1/channels/{id}", admin, notify::show_channel)
        .returns(200, json::<Channel>())
        .put("/api/v1/channels/{id}", admin, notify::replace_channel)
        .takes(json::<ChannelSpec>())
        .returns(200, json::<Channel>())
        .delete("/api/v1/channels/{id}", admin, notify::delete_channel)
        .returns(204, None)
        .post("/api/v1/channels/{id}/test", admin, notify::test_channel)
        .returns(200, json::<Delivery>())
        .get("/api/v1/channels/{id}/deliveries", admin, notify::deliveries)
        .returns(200, list::<Delivery>())
        .get("/api/v1/notification-rules", admin, notify::list_rules)
        .returns(200, list::<Rule>())
        .post("/api/v1/notification-rules", admin, notify::create_rule)
        .takes(json::<RuleSpec>())
        .returns(201, json::<Rule>())
        .get("/api/v1/notification-rules/{id}", admin, notify::show_rule)
        .returns(200, json::<Rule>())
        .put("/api/v1/notification-rules/{id}", admin, notify::replace_rule)
        .takes(json::<RuleSpec>())
        .returns(200, json::<Rule>())
        .delete("/api/v1/notification-rules/{id}", admin, notify::delete_rule)
        .returns(204, None)
        .get("/api/v1/status-pages", admin, status_pages::list)
        .returns(200, list::<StatusPage>())
        .post("/api/v1/status-pages", admin, status_pages::create)
        .takes(json::<StatusPageSpec>())
        .returns(201, json::<StatusPage>())
        .get("/api/v1/status-pages/{id}", admin, status_pages::show)
        .returns(200, json::<StatusPage>())
        .put("/api/v1/status-pages/{id}", admin, status_pages::replace)
        .takes(json::<StatusPageSpec>())
        .returns(200, json::<StatusPage>())
        .delete("/api/v1/status-pages/{id}", admin, status_pages::delete)
        .returns(204, None)
        .get("/api/v1/incidents/{id}/public-updates", viewer, status_pages::updates)
        .returns(200, list::<PublicUpdate>())
        .post("/api/v1/incidents/{id}/public-updates", commander, status_pages::post_update)
        .takes(json::<PublicUpdateInput>())
        .returns(201, json::<PublicUpdate>())
        .get("/api/v1/maintenance", viewer, notify::list_maintenance)
        .returns(200, list::<MaintenanceWindow>())
        .post("/api/v1/maintenance", admin, notify::create_maintenance)
        .takes(json::<MaintenanceSpec>())
        .returns(201, json::<MaintenanceWindow>())
        .get("/api/v1/maintenance/{id}", viewer, notify::show_maintenance)
        .returns(200, json::<MaintenanceWindow>())
        .put("/api/v1/maintenance/{id}", admin, notify::replace_maintenance)
        .takes(json::<MaintenanceSpec>())
        .returns(200, json::<MaintenanceWindow>())
        .post("/api/v1/maintenance/{id}/end", admin, notify::end_maintenance)
        .returns(200, json::<MaintenanceWindow>())
        .delete("/api/v1/maintenance/{id}", admin, notify::delete_maintenance)
        .returns(204, None)
}

/// A JSON body whose errors name the offending field (`assert.status`, `interval_secs`, …).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        if !json {
            return Err(ApiError::BadRequest {
                field: None,
                message: "send the body as JSON (Content-Type: application/json)".into(),
            });
        }
        let limit = req.extensions().get::<crate::web::middleware::BodyLimit>().copied();
        let bytes =
            Bytes::from_request(req, state).await.map_err(|e| crate::web::middleware::unreadable_body(&e, limit))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, naming the field on failure: the path where it failed, or the missing/unknown field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut path = e.path().to_string();
        let inner = e.inner().to_string();
        // A bad map key fails at an unnamed segment (`sections.?`): name it by the key.
        if let (Some(stem), Some(key)) =
            (path.strip_suffix('?'), inner.strip_prefix("unknown variant `").and_then(|r| r.split('`').next()))
        {
            path = format!("{stem}{key}");
        }
        // A missing field fails at its parent: take its name from the message.
        let missing = inner.strip_prefix("missing field `").and_then(|r| r.split('`').next()).map(str::to_string);
        let field = match (path.as_str(), missing) {
            (".", Some(n)) => Some(n),
            (".", None) => None,
            (p, Some(n)) => Some(format!("{p}.{n}")),
            (p, None) => Some(p.to_string()),
        };
        let message = inner.split(" at line ").next().unwrap_or(&inner).to_string();
        ApiError::BadRequest { field, message }
    })
}

/// Path ids are UUIDs; anything else is a 400 naming `id`, not a bare 400 from the router.
pub fn parse_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::bad("id", "not a valid id (UUID)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::ProbeSpec;

    fn field(json: &str) -> Option<String> {
        match parse_json::<ProbeSpec>(json.as_bytes()) {
            Err(ApiError::BadRequest { field, .. }) => field,
            _ => panic!("must fail: {json}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(field(r#"{"kind":"http"}"#).as_deref(), Some("name"));
        assert_eq!(field(r#"{"name":"a","kind":"htp"}"#).as_deref(), Some("kind"));
        assert_eq!(field(r#"{"name":"a","kind":"http","interval_secs":"x"}"#).as_deref(), Some("interval_secs"));
        assert_eq!(field(r#"{"name":"a","kind":"http","typo":1}"#).as_deref(), Some("typo"));
        assert_eq!(field(r#"{"name":"a","kind":"http","assert":{"status":"ok"}}"#).as_deref(), Some("assert.status"));
        assert_eq!(field(r#"{"name":"a","kind":"http","assert":{"bogus":1}}"#).as_deref(), Some("assert.bogus"));
        assert_eq!(field("not json"), None);
    }
}
