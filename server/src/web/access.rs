//! The access table and the one middleware that enforces it. Every route — REST, pages, server
//! functions, health, static files — has a rule naming what it needs; a request matching no
//! rule is refused (404) before any handler runs, so a route added without a rule is unreachable.
//! The same middleware resolves who is asking (session cookie or bearer token) and refuses
//! cross-site writes and live-push connections.

use std::sync::Arc;

use app::model::{Me, Role, Scope};
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::handler::Handler;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use chrono::Utc;
use http::{HeaderMap, Method, header};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::access::actor::Actor;
use crate::access::{Auth, PREFIX_HEX, Principal, TOKEN_PREFIX, session, sha256};
use crate::storage::auth as store;
use crate::web::api::openapi::{Body, RouteDoc};
use crate::web::error::ApiError;
use crate::web::state::AppState;

/// What a route needs from the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Anyone, signed in or not.
    Public,
    /// A signed-in user with at least this role. On the REST API an `admin` token counts as an
    /// admin and a `read` token as a viewer for reading.
    Role(Role),
    /// Pushing results: a `push` or `admin` token, or the probe's own push token.
    Push,
    /// Anyone who presents valid credentials: a session, a token of any scope, a probe's token.
    SignedIn,
    /// Remote agents: an `agent` (or `admin`) token.
    Agent,
}

/// Which kind of route a rule covers: decides how an anonymous caller is answered (pages
/// redirect to sign-in, the rest get 401) and where API tokens count (the REST API only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Page,
    Api,
    ServerFn,
    /// Health and metrics, static files: no credentials looked at.
    Open,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub method: Method,
    /// `{name}` matches one path segment; a trailing `/*` matches any rest.
    pub path: &'static str,
    pub need: Need,
    pub kind: Kind,
}

const fn rule(path: &'static str, need: Need, kind: Kind) -> (&'static str, Need, Kind) {
    (path, need, kind)
}

/// The pages (GET). Admin pages are refused to other roles here, not only hidden.
pub const PAGES: [(&str, Need, Kind); 17] = [
    rule("/config", Need::Role(Role::Admin), Kind::Page),
    rule("/config/services/{id}", Need::Role(Role::Admin), Kind::Page),
    rule("/config/probes/{id}", Need::Role(Role::Admin), Kind::Page),
    rule("/config/import", Need::Role(Role::Admin), Kind::Page),
    rule("/postmortems", Need::Role(Role::Viewer), Kind::Page),
    rule("/postmortems/{id}", Need::Role(Role::Viewer), Kind::Page),
    rule("/incidents", Need::Role(Role::Viewer), Kind::Page),
    rule("/incidents/{id}", Need::Role(Role::Viewer), Kind::Page),
    rule("/", Need::Role(Role::Viewer), Kind::Page),
    rule("/status", Need::Role(Role::Viewer), Kind::Page),
    rule("/services/{id}", Need::Role(Role::Viewer), Kind::Page),
    rule("/account", Need::Role(Role::Viewer), Kind::Page),
    rule("/admin", Need::Role(Role::Admin), Kind::Page),
    rule("/notifications", Need::Role(Role::Admin), Kind::Page),
    rule("/status-pages", Need::Role(Role::Admin), Kind::Page),
    rule("/login", Need::Public, Kind::Page),
    rule("/setup", Need::Public, Kind::Page),
];

/// Server functions (POST), by endpoint; one the table does not name cannot be called.
pub const SERVER_FNS: [(&str, Need); 61] = [
    ("/api/get_channels", Need::Role(Role::Admin)),
    ("/api/save_channel", Need::Role(Role::Admin)),
    ("/api/delete_channel", Need::Role(Role::Admin)),
    ("/api/test_channel", Need::Role(Role::Admin)),
    ("/api/get_deliveries", Need::Role(Role::Admin)),
    ("/api/get_rules", Need::Role(Role::Admin)),
    ("/api/save_rule", Need::Role(Role::Admin)),
    ("/api/delete_rule", Need::Role(Role::Admin)),
    ("/api/get_maintenance", Need::Role(Role::Viewer)),
    ("/api/save_maintenance", Need::Role(Role::Admin)),
    ("/api/end_maintenance", Need::Role(Role::Admin)),
    ("/api/delete_maintenance", Need::Role(Role::Admin)),
    ("/api/network_allowlist", Need::Role(Role::Admin)),
    ("/api/get_demo", Need::Role(Role::Viewer)),
    ("/api/control_demo", Need::Role(Role::Admin)),
    ("/api/get_catalog", Need::Role(Role::Admin)),
    ("/api/save_service", Need::Role(Role::Admin)),
    ("/api/delete_service", Need::Role(Role::Admin)),
    ("/api/get_slo", Need::Role(Role::Viewer)),
    ("/api/save_slo", Need::Role(Role::Admin)),
    ("/api/save_probe", Need::Role(Role::Admin)),
    ("/api/run_probe", Need::Role(Role::Admin)),
    ("/api/test_json_path", Need::Role(Role::Admin)),
    ("/api/bulk_probes", Need::Role(Role::Admin)),
    ("/api/export_probe_file", Need::Role(Role::Admin)),
    ("/api/import_config", Need::Role(Role::Admin)),
    ("/api/get_entry_history", Need::Role(Role::Viewer)),
    ("/api/get_postmortems", Need::Role(Role::Viewer)),
    ("/api/get_postmortem", Need::Role(Role::Viewer)),
    ("/api/create_postmortem", Need::Role(Role::Responder)),
    ("/api/update_postmortem", Need::Role(Role::Responder)),
    ("/api/comment_postmortem", Need::Role(Role::Responder)),
    ("/api/admin_list_checklists", Need::Role(Role::Admin)),
    ("/api/admin_save_checklist", Need::Role(Role::Admin)),
    ("/api/get_guidance", Need::Role(Role::Viewer)),
    ("/api/tick_step", Need::Role(Role::Responder)),
    ("/api/save_hypothesis", Need::Role(Role::Responder)),
    ("/api/edit_entry", Need::Role(Role::Responder)),
    ("/api/delete_entry", Need::Role(Role::Responder)),
    ("/api/get_incidents", Need::Role(Role::Viewer)),
    ("/api/get_incident_room", Need::Role(Role::Viewer)),
    ("/api/post_incident", Need::Role(Role::Responder)),
    ("/api/record_change", Need::Role(Role::Responder)),
    ("/api/get_status_pages", Need::Role(Role::Admin)),
    ("/api/save_status_page", Need::Role(Role::Admin)),
    ("/api/delete_status_page", Need::Role(Role::Admin)),
    ("/api/get_public_updates", Need::Role(Role::Viewer)),
    ("/api/post_public_update", Need::Role(Role::Commander)),
    ("/api/post_entry", Need::Role(Role::Responder)),
    ("/api/update_incident", Need::Role(Role::Commander)),
    ("/api/get_me", Need::Public),
    ("/api/get_service_view", Need::Role(Role::Viewer)),
    ("/api/get_system_status", Need::Role(Role::Viewer)),
    ("/api/admin_list_users", Need::Role(Role::Admin)),
    ("/api/admin_create_user", Need::Role(Role::Admin)),
    ("/api/admin_update_user", Need::Role(Role::Admin)),
    ("/api/admin_list_tokens", Need::Role(Role::Admin)),
    ("/api/admin_create_token", Need::Role(Role::Admin)),
    ("/api/admin_revoke_token", Need::Role(Role::Admin)),
    ("/api/admin_audit", Need::Role(Role::Admin)),
    ("/api/admin_list_agents", Need::Role(Role::Admin)),
];

/// Static files built by cargo-leptos and the public directory.
const STATIC: [&str; 2] = ["/pkg/*", "/favicon.ico"];

/// A router that records the rule of every route it adds: the REST API and health routes are
/// built through it, so the table cannot miss one of them.
#[derive(Default)]
pub struct Secured {
    router: Router<AppState>,
    rules: Vec<Rule>,
    /// The REST routes' documentation, in the order they were added (`web::api::openapi`).
    docs: Vec<RouteDoc>,
}

impl Secured {
    fn add(mut self, method: Method, path: &'static str, need: Need, kind: Kind, mr: MethodRouter<AppState>) -> Self {
        if kind == Kind::Api {
            self.docs.push(RouteDoc { method: method.clone(), path, need, body: None, answers: Vec::new() });
        }
        self.rules.push(Rule { method, path, need, kind });
        self.router = self.router.route(path, mr);
        self
    }

    /// The request body of the REST route added last.
    pub fn takes(mut self, body: Body) -> Self {
        if let Some(doc) = self.docs.last_mut() {
            doc.body = Some(body);
        }
        self
    }

    /// A success answer of the REST route added last (`None`: no body).
    pub fn returns(mut self, status: u16, body: impl Into<Option<Body>>) -> Self {
        if let Some(doc) = self.docs.last_mut() {
            doc.answers.push((status, body.into()));
        }
        self
    }

    /// What each REST route takes and answers, for the OpenAPI document.
    pub fn docs(&self) -> Vec<RouteDoc> {
        self.docs.clone()
    }

    pub fn open<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::GET, path, Need::Public, Kind::Open, get(h))
    }
    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, need: Need, h: H) -> Self {
        self.add(Method::GET, path, need, Kind::Api, get(h))
    }
    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, need: Need, h: H) -> Self {
        self.add(Method::POST, path, need, Kind::Api, post(h))
    }
    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, need: Need, h: H) -> Self {
        self.add(Method::PUT, path, need, Kind::Api, put(h))
    }
    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, need: Need, h: H) -> Self {
        self.add(Method::PATCH, path, need, Kind::Api, patch(h))
    }
    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, need: Need, h: H) -> Self {
        self.add(Method::DELETE, path, need, Kind::Api, delete(h))
    }

    /// A route anyone may use without credentials (tests mount theirs this way).
    pub fn public(self, method: Method, path: &'static str, mr: MethodRouter<AppState>) -> Self {
        self.add(method, path, Need::Public, Kind::Open, mr)
    }

    pub fn merge(mut self, other: Secured) -> Self {
        self.rules.extend(other.rules);
        self.docs.extend(other.docs);
        self.router = self.router.merge(other.router);
        self
    }

    /// The routes and the full access table (these routes, pages, server functions, static files).
    pub fn finish(self) -> (Router<AppState>, Table) {
        let mut rules = self.rules;
        rules.extend(PAGES.iter().map(|(path, need, kind)| Rule {
            method: Method::GET,
            path,
            need: *need,
            kind: *kind,
        }));
        rules.extend(SERVER_FNS.iter().map(|(path, need)| Rule {
            method: Method::POST,
            path,
            need: *need,
            kind: Kind::ServerFn,
        }));
        rules.extend(STATIC.iter().map(|path| Rule {
            method: Method::GET,
            path,
            need: Need::Public,
            kind: Kind::Open,
        }));
        (self.router, Table::new(rules))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Table {
    pub rules: Vec<Rule>,
    /// Rules without parameters, by method and path: most requests are found in one lookup.
    exact: std::collections::HashMap<(Method, &'static str), usize>,
}

fn matches(pattern: &str, path: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix("/*") {
        return path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
    }
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.starts_with('{') && a.ends_with('}') && !b.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

impl Table {
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut exact = std::collections::HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            if !r.path.contains('{') && !r.path.ends_with("/*") {
                exact.entry((r.method.clone(), r.path)).or_insert(i);
            }
        }
        Self { rules, exact }
    }

    /// The rule for this request. A GET outside `/api/` that no rule names (a file of the public
    /// directory, or the not-found page) needs a viewer; anything else unnamed has no rule.
    pub fn find(&self, method: &Method, path: &str) -> Option<Rule> {
        let method = if method == Method::HEAD { &Method::GET } else { method };
        let found = match self.exact.get(&(method.clone(), path)) {
            Some(&i) => self.rules.get(i).cloned(),
            None => self.rules.iter().find(|r| r.method == method && matches(r.path, path)).cloned(),
        };
        found.or_else(|| {
            (method == Method::GET && !path.starts_with("/api/")).then_some(Rule {
                method: Method::GET,
                path: "/{unlisted}",
                need: Need::Role(Role::Viewer),
                kind: Kind::Page,
            })
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No (valid) credentials: 401, or a redirect to sign-in for pages.
    Unauthenticated,
    /// Valid credentials without the right: 403.
    Forbidden,
}

/// The whole policy: may `who` use a route with `rule`? `probe` is the probe id in a push path.
pub fn decide(who: &Principal, rule: &Rule, method: &Method, probe: Option<Uuid>) -> Decision {
    let reading = method == Method::GET || method == Method::HEAD;
    match (rule.need, who) {
        (Need::Public, _) => Decision::Allow,
        (_, Principal::Anonymous) => Decision::Unauthenticated,
        (Need::SignedIn, _) => Decision::Allow,
        (Need::Role(need), Principal::User { me, .. }) if me.role >= need => Decision::Allow,
        (Need::Role(_), Principal::Token { scope: Scope::Admin, .. }) if rule.kind == Kind::Api => Decision::Allow,
        (Need::Role(Role::Viewer), Principal::Token { scope: Scope::Read, .. })
            if rule.kind == Kind::Api && reading =>
        {
            Decision::Allow
        }
        (Need::Push, Principal::Token { scope: Scope::Push | Scope::Admin, .. }) => Decision::Allow,
        (Need::Push, Principal::Agent { probe_id }) if Some(*probe_id) == probe => Decision::Allow,
        (Need::Agent, Principal::Token { scope: Scope::Agent | Scope::Admin, .. }) => Decision::Allow,
        _ => Decision::Forbidden,
    }
}

/// What the middleware needs.
pub struct Gate {
    pub pool: PgPool,
    pub auth: Arc<Auth>,
    pub table: Table,
    /// The stylesheet's URL, for the pages the gate answers itself.
    pub stylesheet: String,
}

/// Writes that came from another site (or a sandboxed frame) are refused, whoever sent them.
/// Returns whether the request said where it came from at all.
fn check_origin(headers: &HeaderMap, gate: &Gate) -> Result<bool, ApiError> {
    let foreign = || ApiError::Forbidden("cross-site request refused".into());
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Err(foreign());
    }
    let origin = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(o) => o.to_string(),
        None => {
            match headers.get(header::REFERER).and_then(|v| v.to_str().ok()).and_then(|r| url::Url::parse(r).ok()) {
                Some(r) => r.origin().ascii_serialization(),
                None => return Ok(false),
            }
        }
    };
    let same = match &gate.auth.settings.public_url {
        Some(site) => origin == site.origin().ascii_serialization(),
        None => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            !host.is_empty()
                && (origin.strip_prefix("http://") == Some(host) || origin.strip_prefix("https://") == Some(host))
        }
    };
    if same { Ok(true) } else { Err(foreign()) }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The probe id of a push path.
fn push_probe(path: &str) -> Option<Uuid> {
    path.strip_prefix("/api/v1/push/")?.parse().ok()
}

/// How long a session or token use is not re-recorded (saves a write per request).
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

enum Resolved {
    Who(Principal),
    /// A session cookie that is no longer valid: treat as anonymous and clear it.
    StaleCookie,
}

async fn resolve(gate: &Gate, rule: &Rule, path: &str, headers: &HeaderMap) -> Result<Resolved, ApiError> {
    if rule.kind == Kind::Api
        && let Some(token) = bearer(headers)
    {
        let hash = sha256(token);
        if token.starts_with(TOKEN_PREFIX) {
            // Found by its visible prefix, then the secret's hash compared in constant time.
            let prefix = token.get(..TOKEN_PREFIX.len() + PREFIX_HEX).ok_or(ApiError::Unauthorized)?;
            let candidates = store::tokens_by_prefix(&gate.pool, prefix).await?;
            let found = candidates
                .into_iter()
                .find(|(_, stored)| bool::from(hash.ct_eq(stored)))
                .map(|(t, _)| t)
                .ok_or(ApiError::Unauthorized)?;
            let now = Utc::now();
            if found.revoked || found.expires_at.is_some_and(|e| e <= now) {
                return Err(ApiError::Unauthorized);
            }
            if found.last_used_at.is_none_or(|t| now - t > TOUCH_EVERY) {
                store::touch_token(&gate.pool, found.id).await?;
            }
            return Ok(Resolved::Who(Principal::Token { id: found.id, name: found.name, scope: found.scope }));
        }
        // Not an API token: a probe's own push token, good on its own push path only.
        let probe_id = push_probe(path).ok_or(ApiError::Unauthorized)?;
        let stored =
            crate::storage::catalog::push_token_hash(&gate.pool, probe_id).await?.ok_or(ApiError::Unauthorized)?;
        if bool::from(hash.ct_eq(&stored)) {
            return Ok(Resolved::Who(Principal::Agent { probe_id }));
        }
        return Err(ApiError::Unauthorized);
    }
    let Some(cookie) = session::from_headers(headers) else {
        return Ok(Resolved::Who(Principal::Anonymous));
    };
    let hash = sha256(cookie);
    let now = Utc::now();
    let idle = chrono::Duration::from_std(gate.auth.settings.session_idle).unwrap_or(chrono::Duration::hours(12));
    if let Some(hit) = gate.auth.sessions.get(&hash)
        && now - hit.last_seen_at <= idle
    {
        return Ok(Resolved::Who(Principal::User { me: hit.me, session: hash }));
    }
    let Some(found) = store::session(&gate.pool, &hash).await? else {
        gate.auth.sessions.forget(&hash);
        return Ok(Resolved::StaleCookie);
    };
    if now - found.last_seen_at > idle {
        store::delete_session(&gate.pool, &hash).await?;
        gate.auth.sessions.forget(&hash);
        return Ok(Resolved::StaleCookie);
    }
    let mut last_seen_at = found.last_seen_at;
    if now - found.last_seen_at > TOUCH_EVERY {
        store::touch_session(&gate.pool, &hash).await?;
        last_seen_at = now;
    }
    let u = found.user;
    let me = Me { id: u.id, email: u.email, display_name: u.display_name, role: u.role };
    gate.auth.sessions.put(hash.clone(), crate::access::session_cache::CachedSession { me: me.clone(), last_seen_at });
    Ok(Resolved::Who(Principal::User { me, session: hash }))
}

/// Where an anonymous visitor of a page is sent: set-up while there are no users, else sign-in
/// (coming back here afterwards).
async fn to_sign_in(gate: &Gate, back: &str) -> Response {
    if !gate.auth.has_users(&gate.pool).await {
        return Redirect::to("/setup").into_response();
    }
    let next: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// The middleware: find the rule, check the origin, resolve the caller, decide.
pub async fn enforce(State(gate): State<Arc<Gate>>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let Some(rule) = gate.table.find(&method, &path) else {
        return ApiError::NotFound("route").into_response();
    };
    if rule.kind == Kind::Open {
        return next.run(req).await;
    }
    let unsafe_method = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let live_push = path == "/api/v1/events";
    let said_origin = match check_origin(req.headers(), &gate) {
        Ok(said) => said,
        Err(e) if unsafe_method || live_push => return e.into_response(),
        Err(_) => false,
    };
    let (who, clear_cookie) = match resolve(&gate, &rule, &path, req.headers()).await {
        Ok(Resolved::Who(p)) => (p, false),
        Ok(Resolved::StaleCookie) => (Principal::Anonymous, true),
        Err(e) => return e.into_response(),
    };
    // A browser always names the origin of a write; a cookie-borne write that does not could
    // come from anywhere.
    if unsafe_method && matches!(who, Principal::User { .. }) && !said_origin {
        return ApiError::Forbidden("writes from a browser must carry an Origin header".into()).into_response();
    }
    let secure = session::secure(&gate.auth.settings, req.headers());
    let mut response = match decide(&who, &rule, &method, push_probe(&path)) {
        Decision::Allow => {
            req.extensions_mut().insert(who);
            next.run(req).await
        }
        Decision::Unauthenticated if rule.kind == Kind::Page => {
            let back = req.uri().path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
            to_sign_in(&gate, &back).await
        }
        Decision::Unauthenticated => ApiError::Unauthorized.into_response(),
        Decision::Forbidden => {
            let need = match rule.need {
                Need::Role(r) => format!("the {} role", r.as_str()),
                Need::Push => "a push token".into(),
                Need::Agent => "an agent token".into(),
                Need::Public => "nothing".into(),
                Need::SignedIn => "credentials".into(),
            };
            if rule.kind == Kind::Page {
                forbidden_page(&need, &gate.stylesheet)
            } else {
                ApiError::Forbidden(format!("this needs {need}")).into_response()
            }
        }
    };
    if clear_cookie && let Some(v) = session::clear_cookie(secure) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// A person who followed a link to a page their role may not see gets a page, not JSON.
fn forbidden_page(need: &str, stylesheet: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not allowed · Triage</title>\
         <link rel=\"stylesheet\" href=\"{stylesheet}\"></head><body><main class=\"page narrow\">\
         <h1>Not allowed</h1><p>This page needs {need}. Ask an admin if you need it.</p>\
         <p><a href=\"/\">Back to the overview</a></p></main></body></html>"
    );
    (http::StatusCode::FORBIDDEN, axum::response::Html(body)).into_response()
}

/// Who is asking, from the request's extensions (set by [`enforce`] and the request-id layer).
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(actor_of(parts))
    }
}

/// The actor of a request (for handlers that hold the parts rather than extract).
pub fn actor_of(parts: &http::request::Parts) -> Actor {
    Actor {
        principal: parts.extensions.get::<Principal>().cloned().unwrap_or(Principal::Anonymous),
        // The client behind trusted proxies, else the peer (routers served without the accept
        // loop, as some tests do, have only the peer).
        remote_addr: parts
            .extensions
            .get::<crate::web::connection::ClientAddr>()
            .map(|c| c.0)
            .or_else(|| parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip()))
            .map(|ip| ip.to_string()),
        request_id: parts.extensions.get::<crate::web::middleware::RequestId>().map(|r| r.0.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        assert!(matches("/services/{id}", "/services/abc"));
        assert!(!matches("/services/{id}", "/services/"));
        assert!(!matches("/services/{id}", "/services/abc/x"));
        assert!(matches("/pkg/*", "/pkg/triage.wasm"));
        assert!(!matches("/pkg/*", "/pkgx/a"));
        assert!(matches("/", "/"));
        assert!(!matches("/", "/x"));
    }

    #[test]
    fn unnamed_routes_have_no_rule_except_pages() {
        let (_, table) = Secured::default().finish();
        assert!(table.find(&Method::POST, "/api/v1/anything").is_none());
        assert!(table.find(&Method::POST, "/api/new_server_fn").is_none());
        assert!(table.find(&Method::DELETE, "/").is_none());
        let page = table.find(&Method::GET, "/robots.txt").expect("page fallback");
        assert_eq!(page.need, Need::Role(Role::Viewer));
        assert_eq!(table.find(&Method::HEAD, "/login").map(|r| r.need), Some(Need::Public));
    }

    #[test]
    fn tokens_count_only_on_the_rest_api_and_within_scope() {
        let api = Rule { method: Method::GET, path: "/x", need: Need::Role(Role::Viewer), kind: Kind::Api };
        let fun = Rule { kind: Kind::ServerFn, ..api.clone() };
        let read = Principal::Token { id: Uuid::nil(), name: "r".into(), scope: Scope::Read };
        let push = Principal::Token { id: Uuid::nil(), name: "p".into(), scope: Scope::Push };
        assert_eq!(decide(&read, &api, &Method::GET, None), Decision::Allow);
        assert_eq!(decide(&read, &api, &Method::POST, None), Decision::Forbidden);
        assert_eq!(decide(&read, &fun, &Method::GET, None), Decision::Forbidden);
        assert_eq!(decide(&push, &api, &Method::GET, None), Decision::Forbidden);
        let p = Uuid::new_v4();
        let push_rule = Rule { need: Need::Push, method: Method::POST, ..api };
        assert_eq!(decide(&Principal::Agent { probe_id: p }, &push_rule, &Method::POST, Some(p)), Decision::Allow);
        assert_eq!(
            decide(&Principal::Agent { probe_id: p }, &push_rule, &Method::POST, Some(Uuid::new_v4())),
            Decision::Forbidden
        );
        assert_eq!(decide(&Principal::Anonymous, &push_rule, &Method::POST, Some(p)), Decision::Unauthenticated);
    }
}
