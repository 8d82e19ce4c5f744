//! Signing in and out, the first-run set-up, the caller's identity and own password. Each takes
//! JSON (scripts) or a plain HTML form (the sign-in pages work before any script has loaded):
//! forms are answered with a redirect, JSON with JSON.

use app::model::{Me, Role, Scope};
use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::parse_json;
use crate::access::accounts;
use crate::access::actor::Actor;
use crate::access::{Principal, password, session, sha256};
use crate::storage::auth as store;
use crate::storage::bus::Note;
use crate::web::error::ApiError;
use crate::web::replicas::session_note;
use crate::web::state::AppState;

/// A body sent as JSON or as an HTML form; `form` says which (and so how to answer).
pub struct Input<T> {
    pub body: T,
    pub form: bool,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let limit = req.extensions().get::<crate::web::middleware::BodyLimit>().copied();
        let bytes = bytes::Bytes::from_request(req, state)
            .await
            .map_err(|e| crate::web::middleware::unreadable_body(&e, limit))?;
        if ct.starts_with("application/x-www-form-urlencoded") {
            let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(&bytes));
            let body = serde_path_to_error::deserialize(de).map_err(|e| {
                let inner = e.inner().to_string();
                let field = inner.strip_prefix("missing field `").and_then(|r| r.split('`').next()).map(str::to_string);
                ApiError::BadRequest { field, message: inner }
            })?;
            return Ok(Self { body, form: true });
        }
        if ct.starts_with("application/json") {
            return Ok(Self { body: parse_json(&bytes)?, form: false });
        }
        Err(ApiError::BadRequest {
            field: None,
            message: "send the body as JSON or as a form (application/x-www-form-urlencoded)".into(),
        })
    }
}

/// Only same-site paths: `next` must not send the user to another site after signing in.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    format!("{path}?{q}")
}

/// A refused form goes back to its page with the reason (and what to refill) in the query; a
/// refused JSON request gets the error itself.
fn refused(form: bool, page: &str, pairs: &[(&str, &str)], error: ApiError) -> Response {
    if form { Redirect::to(&with_query(page, pairs)).into_response() } else { error.into_response() }
}

fn already_set_up() -> ApiError {
    ApiError::Conflict { field: None, message: "Triage already has users; sign in".into() }
}

/// A new session for `user_id`, remembering where and with what the browser signed in.
async fn new_session(
    state: &AppState,
    actor: &Actor,
    headers: &HeaderMap,
    user_id: uuid::Uuid,
) -> Result<String, ApiError> {
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    Ok(session::start(&state.pool, &state.auth.settings, user_id, actor.remote_addr.as_deref(), user_agent).await?)
}

fn signed_in(response: impl IntoResponse, cookie: &str, state: &AppState, headers: &HeaderMap) -> Response {
    let mut response = response.into_response();
    let secure = session::secure(&state.auth.settings, headers);
    if let Some(v) = session::set_cookie(cookie, state.auth.settings.session_lifetime.as_secs(), secure) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The longest address RFC 5321 allows.
const MAX_EMAIL_BYTES: usize = 254;
/// Long passphrases, not megabytes for argon2 to chew on: the same bound as a new password.
const MAX_PASSWORD_BYTES: usize = crate::access::password::MAX_LENGTH;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    email: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    input: Input<LoginBody>,
) -> Response {
    let Input { body, form } = input;
    let next = local_path(body.next.as_deref());
    let fail = |error: ApiError, code: &str| {
        refused(form, "/login", &[("error", code), ("next", &next), ("email", &body.email)], error)
    };
    // Sizes first: nothing oversized reaches the limiter's keys, the audit log or argon2.
    if body.email.len() > MAX_EMAIL_BYTES {
        return fail(ApiError::bad("email", format!("must be at most {MAX_EMAIL_BYTES} bytes")), "invalid");
    }
    if body.password.len() > MAX_PASSWORD_BYTES {
        return fail(ApiError::bad("password", format!("must be at most {MAX_PASSWORD_BYTES} bytes")), "invalid");
    }
    let address = actor.remote_addr.clone().unwrap_or_else(|| "-".into());
    let reserved = match state.auth.limiter.reserve(&body.email, &address) {
        Ok(at) => at,
        Err(refused) => {
            if refused.first {
                actor.audit_or_warn(&state.pool, "login.throttled", &body.email).await;
            }
            return fail(ApiError::TooManyRequests { retry_after_secs: refused.wait.as_secs().max(1) }, "throttled");
        }
    };
    let user = match store::user_by_email(&state.pool, &body.email).await {
        Ok(u) => u,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // The hash is verified even when the account is unknown or disabled, so timing tells nothing.
    let phc = user.as_ref().map_or_else(|| password::decoy().to_string(), |u| u.password_hash.clone());
    let matches = password::verify(body.password.clone(), phc).await;
    let user = match user {
        Some(u) if matches && !u.disabled => u,
        _ => {
            // Already counted here when reserved; the other replicas count it now.
            state.bus.note(&Note::LoginFailed { account: body.email.clone(), address: address.clone() });
            actor.audit_or_warn(&state.pool, "login.failed", &body.email).await;
            return fail(ApiError::Unauthorized, "invalid");
        }
    };
    state.auth.limiter.succeeded_after(&body.email, &address, reserved);
    // A new session id at every sign-in; the one this browser had before is ended.
    if let Some(old) = session::from_headers(&headers) {
        let old = sha256(old);
        if let Err(e) = store::delete_session(&state.pool, &old).await {
            return ApiError::from(e).into_response();
        }
        state.forget(session_note(&old));
    }
    let cookie = match new_session(&state, &actor, &headers, user.id).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let who = Actor { principal: principal_of(&user), ..actor };
    if let Err(e) = who.audit(&state.pool, "login", &user.email, serde_json::json!({})).await {
        return ApiError::from(e).into_response();
    }
    let me = me_of(&user);
    if form {
        signed_in(Redirect::to(&next), &cookie, &state, &headers)
    } else {
        signed_in(Json(me), &cookie, &state, &headers)
    }
}

fn me_of(u: &store::UserRecord) -> Me {
    Me { id: u.id, email: u.email.clone(), display_name: u.display_name.clone(), role: u.role }
}

fn principal_of(u: &store::UserRecord) -> Principal {
    Principal::User { me: me_of(u), session: Vec::new() }
}

pub async fn logout(State(state): State<AppState>, actor: Actor, headers: HeaderMap) -> Response {
    if let Some(cookie) = session::from_headers(&headers) {
        let hash = sha256(cookie);
        if let Err(e) = store::delete_session(&state.pool, &hash).await {
            return ApiError::from(e).into_response();
        }
        state.forget(session_note(&hash));
        if matches!(actor.principal, Principal::User { .. }) {
            actor.audit_or_warn(&state.pool, "logout", "").await;
        }
    }
    let wants_json = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("json"));
    let mut response =
        if wants_json { StatusCode::NO_CONTENT.into_response() } else { Redirect::to("/login").into_response() };
    if let Some(v) = session::clear_cookie(session::secure(&state.auth.settings, &headers)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SetupBody {
    setup_token: String,
    email: String,
    #[serde(default)]
    display_name: String,
    password: String,
}

/// Creates the first admin, once, for whoever has the token from the server's log.
pub async fn setup(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    input: Input<SetupBody>,
) -> Response {
    let Input { body, form } = input;
    let fail = |error: ApiError, code: &str| refused(form, "/setup", &[("error", code), ("email", &body.email)], error);
    if state.auth.has_users(&state.pool).await {
        return fail(already_set_up(), "done");
    }
    let address = actor.remote_addr.clone().unwrap_or_else(|| "-".into());
    let reserved = match state.auth.limiter.reserve("setup", &address) {
        Ok(at) => at,
        Err(refused) => {
            return fail(ApiError::TooManyRequests { retry_after_secs: refused.wait.as_secs().max(1) }, "throttled");
        }
    };
    if !state.auth.setup_token_matches(body.setup_token.trim()) {
        state.bus.note(&Note::LoginFailed { account: "setup".into(), address: address.clone() });
        return fail(ApiError::bad("setup_token", "does not match the set-up token in the server's log"), "token");
    }
    state.auth.limiter.succeeded_after("setup", &address, reserved);
    if let Err(e) = accounts::validate_email(&body.email) {
        return fail(e.into(), "email");
    }
    let hash = match accounts::hash_new_password("password", &body.password).await {
        Ok(h) => h,
        Err(e) => return fail(e.into(), "password"),
    };
    let id = uuid::Uuid::new_v4();
    match store::insert_first_user(&state.pool, id, &body.email, &body.display_name, &hash).await {
        Ok(true) => {}
        Ok(false) => {
            return fail(already_set_up(), "done");
        }
        Err(e) => return fail(e.into(), "internal"),
    }
    state.auth.users_exist();
    // The first admin is created by whoever held the set-up token: recorded as "setup".
    let entry = store::AuditEntry {
        actor: "setup".into(),
        action: "user.create".into(),
        target: body.email.clone(),
        detail: serde_json::json!({ "role": Role::Admin, "first_admin": true }),
        remote_addr: actor.remote_addr.clone(),
        request_id: actor.request_id.clone(),
    };
    if let Err(e) = store::insert_audit(&state.pool, &entry).await {
        return ApiError::from(e).into_response();
    }
    let cookie = match new_session(&state, &actor, &headers, id).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    tracing::info!("first admin created; the set-up token is spent");
    let me = Me { id, email: body.email.clone(), display_name: body.display_name.clone(), role: Role::Admin };
    if form {
        signed_in(Redirect::to("/"), &cookie, &state, &headers)
    } else {
        signed_in((StatusCode::CREATED, Json(me)), &cookie, &state, &headers)
    }
}

/// Who `GET /api/v1/auth/me` says is asking: the signed-in user, or the token in use.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Caller {
    User(Me),
    Token { token: TokenInUse },
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenInUse {
    id: uuid::Uuid,
    name: String,
    scope: Scope,
}

/// `GET /api/v1/auth/me`: the signed-in user, or the token in use.
pub async fn me(actor: Actor) -> Result<Json<Caller>, ApiError> {
    match actor.principal {
        Principal::User { me, .. } => Ok(Json(Caller::User(me))),
        Principal::Token { id, name, scope } => Ok(Json(Caller::Token { token: TokenInUse { id, name, scope } })),
        _ => Err(ApiError::Unauthorized),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// Changes the caller's own password; every other session of theirs ends.
pub async fn change_password(State(state): State<AppState>, actor: Actor, input: Input<PasswordBody>) -> Response {
    let Input { body, form } = input;
    let answer = |result: Result<(), (ApiError, &str)>| match (result, form) {
        (Ok(()), true) => Redirect::to("/account?changed=1").into_response(),
        (Ok(()), false) => StatusCode::NO_CONTENT.into_response(),
        (Err((_, code)), true) => Redirect::to(&with_query("/account", &[("error", code)])).into_response(),
        (Err((e, _)), false) => e.into_response(),
    };
    let Principal::User { me, session } = &actor.principal else {
        return answer(Err((ApiError::bad("current_password", "only a signed-in user has a password"), "user")));
    };
    let address = actor.remote_addr.clone().unwrap_or_else(|| "-".into());
    if body.current_password.len() > MAX_PASSWORD_BYTES {
        let error = ApiError::bad("current_password", format!("must be at most {MAX_PASSWORD_BYTES} bytes"));
        return answer(Err((error, "current")));
    }
    // Counted before the hash runs, as at sign-in: parallel guesses cannot outrun the limit.
    let reserved = match state.auth.limiter.reserve(&me.email, &address) {
        Ok(at) => at,
        Err(refused) => {
            let error = ApiError::TooManyRequests { retry_after_secs: refused.wait.as_secs().max(1) };
            return answer(Err((error, "throttled")));
        }
    };
    let user = match store::user_by_id(&state.pool, me.id).await {
        Ok(Some(u)) => u,
        Ok(None) => return answer(Err((ApiError::Unauthorized, "user"))),
        Err(e) => return answer(Err((e.into(), "internal"))),
    };
    if !password::verify(body.current_password, user.password_hash).await {
        state.bus.note(&Note::LoginFailed { account: me.email.clone(), address: address.clone() });
        return answer(Err((ApiError::bad("current_password", "is not your current password"), "current")));
    }
    state.auth.limiter.succeeded_after(&me.email, &address, reserved);
    let hash = match accounts::hash_new_password("new_password", &body.new_password).await {
        Ok(h) => h,
        Err(e) => return answer(Err((e.into(), "new"))),
    };
    if let Err(e) = store::set_password(&state.pool, me.id, &hash, Some(session)).await {
        return answer(Err((e.into(), "internal")));
    }
    state.forget(Note::User { id: me.id });
    if let Err(e) = actor.audit(&state.pool, "password.change", &me.email, serde_json::json!({})).await {
        return answer(Err((e.into(), "internal")));
    }
    answer(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(local_path(Some("/services/x?range=1h")), "/services/x?range=1h");
        for bad in ["https://evil.example", "//evil.example", "/\\evil", "evil"] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_path(None), "/");
    }
}
