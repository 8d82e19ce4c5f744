//! The REST API under `/api/v1`: services, probes, their results and series, and pushed results.
//! JSON in and out; every error is the JSON body of [`ApiError`], naming the field at fault.

mod auth;
mod guidance;
mod incidents;
mod postmortems;
mod probes;
mod push;
mod services;
mod stream;
pub mod users;

use app::model::Role;
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::web::access::{Need, Secured};
use crate::web::error::ApiError;

/// Every REST route with what it needs (the access table is built from these calls).
pub fn routes() -> Secured {
    let viewer = Need::Role(Role::Viewer);
    let admin = Need::Role(Role::Admin);
    let responder = Need::Role(Role::Responder);
    let commander = Need::Role(Role::Commander);
    Secured::default()
        .get("/api/v1/services", viewer, services::list)
        .post("/api/v1/services", admin, services::create)
        .get("/api/v1/services/{id}", viewer, services::show)
        .put("/api/v1/services/{id}", admin, services::replace)
        .delete("/api/v1/services/{id}", admin, services::delete)
        .get("/api/v1/probes", viewer, probes::list)
        .post("/api/v1/probes", admin, probes::create)
        .get("/api/v1/probes/{id}", viewer, probes::show)
        .put("/api/v1/probes/{id}", admin, probes::replace)
        .delete("/api/v1/probes/{id}", admin, probes::delete)
        .get("/api/v1/probes/{id}/results", viewer, probes::results)
        .get("/api/v1/probes/{id}/series", viewer, probes::series)
        .get("/api/v1/probes/{id}/state-changes", viewer, probes::state_changes)
        .post("/api/v1/push/{id}", Need::Push, push::push)
        .get("/api/v1/events", viewer, stream::events)
        .post("/api/v1/auth/login", Need::Public, auth::login)
        .post("/api/v1/auth/logout", Need::Public, auth::logout)
        .post("/api/v1/auth/setup", Need::Public, auth::setup)
        .get("/api/v1/auth/me", viewer, auth::me)
        .post("/api/v1/auth/password", viewer, auth::change_password)
        .get("/api/v1/users", admin, users::list)
        .post("/api/v1/users", admin, users::create)
        .patch("/api/v1/users/{id}", admin, users::update)
        .get("/api/v1/tokens", admin, users::tokens)
        .post("/api/v1/tokens", admin, users::create_token)
        .delete("/api/v1/tokens/{id}", admin, users::revoke_token)
        .get("/api/v1/audit", admin, users::audit)
        .get("/api/v1/incidents", viewer, incidents::list)
        .post("/api/v1/incidents", responder, incidents::create)
        .get("/api/v1/incidents/{id}", viewer, incidents::show)
        .patch("/api/v1/incidents/{id}", commander, incidents::update)
        .get("/api/v1/incidents/{id}/events", viewer, incidents::events)
        .get("/api/v1/incidents/{id}/timeline", viewer, incidents::timeline)
        .post("/api/v1/incidents/{id}/timeline", responder, incidents::post_entry)
        .patch("/api/v1/incidents/{id}/timeline/{entry}", responder, incidents::edit_entry)
        .delete("/api/v1/incidents/{id}/timeline/{entry}", responder, incidents::delete_entry)
        .get("/api/v1/incidents/{id}/timeline/{entry}/history", viewer, incidents::history)
        .get("/api/v1/incidents/{id}/guidance", viewer, guidance::show)
        .post("/api/v1/incidents/{id}/guidance/ticks", responder, guidance::tick)
        .post("/api/v1/incidents/{id}/hypotheses", responder, guidance::add_hypothesis)
        .patch("/api/v1/incidents/{id}/hypotheses/{hypothesis}", responder, guidance::update_hypothesis)
        .get("/api/v1/checklists", viewer, guidance::checklists)
        .get("/api/v1/checklists/{id}", viewer, guidance::versions)
        .put("/api/v1/checklists/{id}", admin, guidance::save)
        .post("/api/v1/incidents/{id}/postmortem", responder, postmortems::create)
        .get("/api/v1/postmortems", viewer, postmortems::list)
        .get("/api/v1/postmortems/{id}", viewer, postmortems::show)
        .patch("/api/v1/postmortems/{id}", responder, postmortems::update)
        .post("/api/v1/postmortems/{id}/comments", responder, postmortems::comment)
        .get("/api/v1/postmortems/{id}/export.md", viewer, postmortems::export)
        .get("/api/v1/postmortems/{id}/charts/{file}", viewer, postmortems::chart)
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
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::BadRequest { field: None, message: "could not read the request body".into() })?;
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
