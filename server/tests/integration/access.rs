//! Authorization: the route × role matrix, generated from the access table that builds the
//! router, the server-function registry and the page list, checked cell by cell over HTTP.

use app::model::{Role, Scope};
use leptos_axum::generate_route_list;
use reqwest::{Method, StatusCode};
use server::web::access::{Kind, Need, Rule, Secured};

use crate::common::{TestApp, create_token, spawn_app};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    User(Role),
    PushToken,
    ReadToken,
    RevokedToken,
    AdminToken,
    /// A push probe's own token (on the push path, its own probe's id).
    ProbeToken,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Allowed,
    Unauthenticated,
    Forbidden,
}

/// What each route should need, from the role definitions (viewer reads everything;
/// admin manages users, probes, settings and tokens; agents push), written apart from the table
/// so a wrong rule there shows up as a mismatch here.
fn intended(method: &Method, path: &str) -> Need {
    let viewer = Need::Role(Role::Viewer);
    let admin = Need::Role(Role::Admin);
    // CI records change events with the token it pushes results with.
    if path.starts_with("/api/v1/push/") || (path == "/api/v1/changes" && method == Method::POST) {
        return Need::Push;
    }
    // Remote agents fetch their assignments and deliver results with their own token scope.
    if path.starts_with("/api/v1/agent/") {
        return Need::Agent;
    }
    // The API's own description: anyone with credentials of any kind.
    if path == "/api/v1/openapi.json" {
        return Need::SignedIn;
    }
    if ["/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/auth/setup", "/api/get_me", "/login", "/setup"]
        .contains(&path)
    {
        return Need::Public;
    }
    if ["/healthz", "/readyz", "/metrics", "/favicon.ico"].contains(&path) || path.starts_with("/pkg/") {
        return Need::Public;
    }
    // Setting up services and probes in the browser, like the API's writes, is the admin's;
    // the configuration listing carries every probe's definition; the replica list names hosts.
    if path.starts_with("/api/admin_")
        || path == "/admin"
        || path.starts_with("/config")
        || path == "/api/get_catalog"
        || ["/api/v1/users", "/api/v1/tokens", "/api/v1/audit", "/api/v1/replicas", "/api/v1/agents"]
            .iter()
            .any(|p| path.starts_with(p))
        || (path.starts_with("/api/v1/probes/") && path.ends_with("/replica"))
    {
        return admin;
    }
    // Notification channels hold endpoints and secrets, and rules and the delivery log say where
    // they go: the admin's, even to read. Maintenance windows: anyone reads, admins write.
    if path.starts_with("/api/v1/channels")
        || path.starts_with("/api/v1/notification-rules")
        || path == "/notifications"
        || ["/api/get_channels", "/api/save_channel", "/api/delete_channel", "/api/test_channel"].contains(&path)
        || ["/api/get_deliveries", "/api/get_rules", "/api/save_rule", "/api/delete_rule"].contains(&path)
        || ["/api/save_maintenance", "/api/end_maintenance", "/api/delete_maintenance"].contains(&path)
    {
        return admin;
    }
    // Status pages are the admin's to build; what the outside is told about an incident is the
    // commander's to say.
    if path.starts_with("/api/v1/status-pages")
        || path == "/status-pages"
        || ["/api/get_status_pages", "/api/save_status_page", "/api/delete_status_page"].contains(&path)
    {
        return admin;
    }
    if (path.ends_with("/public-updates") && *method == Method::POST) || path == "/api/post_public_update" {
        return Need::Role(Role::Commander);
    }
    // Incidents: anyone reads; responders declare and write the timeline; commanders change
    // the incident itself.
    if path.starts_with("/api/v1/incidents") && *method != Method::GET {
        let only_incident = path.trim_start_matches("/api/v1/incidents/").split('/').count() == 1;
        return if *method == Method::PATCH && path != "/api/v1/incidents" && only_incident {
            Need::Role(Role::Commander)
        } else {
            Need::Role(Role::Responder)
        };
    }
    if [
        "/api/post_incident",
        "/api/record_change",
        "/api/post_entry",
        "/api/edit_entry",
        "/api/delete_entry",
        "/api/tick_step",
        "/api/save_hypothesis",
        "/api/create_postmortem",
        "/api/update_postmortem",
        "/api/comment_postmortem",
    ]
    .contains(&path)
    {
        return Need::Role(Role::Responder);
    }
    // Postmortems: responders write and comment (publishing is checked inside, for commanders).
    if path.starts_with("/api/v1/postmortems") && *method != Method::GET {
        return Need::Role(Role::Responder);
    }
    if path.starts_with("/api/update_incident") {
        return Need::Role(Role::Commander);
    }
    if path == "/api/v1/auth/password" || *method == Method::GET || path.starts_with("/api/get_") {
        return viewer;
    }
    // Changing services and probes is the admin's.
    admin
}

/// The policy as the issue states it, written independently of the middleware.
fn expected(who: Who, rule: &Rule) -> Seen {
    use Seen::*;
    if rule.kind == Kind::Open {
        return Allowed;
    }
    let rule = &Rule { need: intended(&rule.method, rule.path), ..rule.clone() };
    let api = rule.kind == Kind::Api;
    let reading = rule.method == Method::GET;
    match who {
        // Tokens count on the REST API only; elsewhere the caller is anonymous.
        Who::PushToken | Who::ReadToken | Who::RevokedToken | Who::AdminToken | Who::ProbeToken if !api => {
            if rule.need == Need::Public { Allowed } else { Unauthenticated }
        }
        Who::RevokedToken => Unauthenticated,
        Who::AdminToken => Allowed,
        // Good on its own probe's push path only; anywhere else on the API it is a credential
        // that does not hold (401, like a revoked token).
        Who::ProbeToken => {
            if rule.need == Need::Push && rule.path.starts_with("/api/v1/push/") {
                Allowed
            } else {
                Unauthenticated
            }
        }
        Who::PushToken => match rule.need {
            Need::Public | Need::Push | Need::SignedIn => Allowed,
            Need::Role(_) | Need::Agent => Forbidden,
        },
        Who::ReadToken => match rule.need {
            Need::Public | Need::SignedIn => Allowed,
            Need::Role(Role::Viewer) if reading => Allowed,
            _ => Forbidden,
        },
        Who::Anonymous => {
            if rule.need == Need::Public {
                Allowed
            } else {
                Unauthenticated
            }
        }
        Who::User(role) => match rule.need {
            Need::Public | Need::SignedIn => Allowed,
            Need::Role(r) if role >= r => Allowed,
            _ => Forbidden,
        },
    }
}

fn concrete(path: &str) -> String {
    let any_id = uuid::Uuid::new_v4().to_string();
    let path = path.replace("/*", "/triage.css");
    path.split('/').map(|seg| if seg.starts_with('{') { any_id.as_str() } else { seg }).collect::<Vec<_>>().join("/")
}

struct Callers {
    push: String,
    read: String,
    revoked: String,
    admin: String,
    /// A push probe and its own token.
    probe: (String, String),
    users: Vec<(Role, uuid::Uuid)>,
}

async fn callers(app: &TestApp) -> Callers {
    let push = create_token(&app.pool, Scope::Push, "matrix-push").await;
    let read = create_token(&app.pool, Scope::Read, "matrix-read").await;
    let revoked = create_token(&app.pool, Scope::Admin, "matrix-revoked").await;
    let admin = create_token(&app.pool, Scope::Admin, "matrix-admin").await;
    let service = app.client.post(app.url("/api/v1/services")).json(&serde_json::json!({"name": "matrix"})).send();
    assert_eq!(service.await.expect("service").status(), StatusCode::CREATED);
    let created: serde_json::Value = app
        .client
        .post(app.url("/api/v1/probes"))
        .json(&serde_json::json!({"name": "matrix-agent", "service": "matrix", "kind": "push", "interval_secs": 3600}))
        .send()
        .await
        .expect("probe")
        .json()
        .await
        .expect("json");
    let probe = (
        created["id"].as_str().expect("id").to_string(),
        created["push_token"].as_str().expect("push token").to_string(),
    );
    let res = app
        .client
        .get(app.url("/api/v1/tokens"))
        .send()
        .await
        .expect("tokens")
        .json::<Vec<serde_json::Value>>()
        .await
        .expect("json");
    let id =
        res.iter().find(|t| t["name"] == "matrix-revoked").expect("listed")["id"].as_str().expect("id").to_string();
    let revoked_status =
        app.client.delete(app.url(&format!("/api/v1/tokens/{id}"))).send().await.expect("revoke").status();
    assert_eq!(revoked_status, StatusCode::NO_CONTENT);
    let mut users = Vec::new();
    for role in Role::ALL {
        let (email, _) = app.session_of(role).await;
        let id = server::storage::auth::user_by_email(&app.pool, &email).await.expect("query").expect("user").id;
        users.push((role, id));
    }
    Callers { push, read, revoked, admin, probe, users }
}

async fn call(app: &TestApp, c: &Callers, who: Who, rule: &Rule) -> Seen {
    let path = match who {
        Who::ProbeToken => concrete(&rule.path.replace("/api/v1/push/{id}", &format!("/api/v1/push/{}", c.probe.0))),
        _ => concrete(rule.path),
    };
    call_path(app, c, who, rule, &path).await.0
}

/// Calls `path` (the rule's, or a variant of it) as `who`; what the caller saw, and the status.
async fn call_path(app: &TestApp, c: &Callers, who: Who, rule: &Rule, path: &str) -> (Seen, StatusCode) {
    let url = app.url(path);
    let client = match who {
        // A fresh session per cell: a cell may be "sign out".
        Who::User(role) => {
            let user = c.users.iter().find(|(r, _)| *r == role).expect("user of role").1;
            let cookie = server::access::session::start(&app.pool, &app.state.auth.settings, user, None, None)
                .await
                .expect("session");
            app.browser(&cookie)
        }
        _ => app.anonymous.clone(),
    };
    let mut req = client.request(rule.method.clone(), &url);
    req = match who {
        Who::PushToken => req.bearer_auth(&c.push),
        Who::ReadToken => req.bearer_auth(&c.read),
        Who::RevokedToken => req.bearer_auth(&c.revoked),
        Who::AdminToken => req.bearer_auth(&c.admin),
        Who::ProbeToken => req.bearer_auth(&c.probe.1),
        _ => req,
    };
    if rule.method != Method::GET {
        req = if rule.kind == Kind::ServerFn {
            req.header("content-type", "application/x-www-form-urlencoded").body("")
        } else {
            req.header("content-type", "application/json").body("{}")
        };
    }
    // Only the status matters: the body of a live stream never ends, so it is not read.
    let res = req.send().await.unwrap_or_else(|e| panic!("{} {url}: {e}", rule.method));
    let to_sign_in = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|l| l.starts_with("/login") || l.starts_with("/setup"));
    let seen = match res.status() {
        StatusCode::UNAUTHORIZED => Seen::Unauthenticated,
        StatusCode::SEE_OTHER if to_sign_in && rule.kind == Kind::Page => Seen::Unauthenticated,
        StatusCode::FORBIDDEN => Seen::Forbidden,
        _ => Seen::Allowed,
    };
    (seen, res.status())
}

#[tokio::test]
async fn every_route_server_function_and_page_is_in_the_access_table() {
    let (_, table) = server::web::http_server::access_table(Secured::default());
    let has = |method: &Method, path: &str| table.rules.iter().any(|r| r.method == method && r.path == path);
    let fns: Vec<(String, Method)> =
        leptos::server_fn::axum::server_fn_paths().map(|(p, m)| (p.to_string(), m)).collect();
    assert!(fns.len() >= 11, "the registry lists the server functions: {fns:?}");
    for (path, method) in &fns {
        assert!(has(method, path), "server function {method} {path} has no rule");
    }
    for rule in table.rules.iter().filter(|r| r.kind == Kind::ServerFn) {
        assert!(fns.iter().any(|(p, m)| *m == rule.method && p == rule.path), "rule for a missing server fn: {rule:?}");
    }
    let pages: Vec<String> = generate_route_list(app::App)
        .iter()
        .map(|r| {
            r.path()
                .split('/')
                .map(|s| match s.strip_prefix(':') {
                    Some(name) => format!("{{{name}}}"),
                    None => s.to_string(),
                })
                .collect::<Vec<_>>()
                .join("/")
        })
        .map(|p| if p.is_empty() { "/".to_string() } else { p })
        .collect();
    for page in &pages {
        assert!(has(&Method::GET, page), "page {page} has no rule");
    }
    for rule in table.rules.iter().filter(|r| r.kind == Kind::Page) {
        assert!(pages.iter().any(|p| p == rule.path), "rule for a missing page: {rule:?}");
    }
}

#[tokio::test]
async fn the_route_by_role_matrix_has_no_mismatch() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let (_, table) = server::web::http_server::access_table(Secured::default());
    let whos = [
        Who::Anonymous,
        Who::User(Role::Viewer),
        Who::User(Role::Responder),
        Who::User(Role::Commander),
        Who::User(Role::Admin),
        Who::PushToken,
        Who::ReadToken,
        Who::RevokedToken,
        Who::AdminToken,
        Who::ProbeToken,
    ];
    let mut cells = 0;
    let mut mismatches = Vec::new();
    for rule in &table.rules {
        for who in whos {
            let seen = call(&app, &c, who, rule).await;
            let want = expected(who, rule);
            cells += 1;
            if seen != want {
                mismatches.push(format!("{} {} as {who:?}: expected {want:?}, got {seen:?}", rule.method, rule.path));
            }
        }
    }
    println!(
        "access matrix: {} rules × {} callers = {cells} cells, {} mismatches",
        table.rules.len(),
        whos.len(),
        mismatches.len()
    );
    assert!(cells >= 10 * 40, "the table covers the application: {cells} cells");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test]
async fn routes_without_a_rule_are_unreachable_for_everyone() {
    let app = spawn_app().await;
    let admin = app.browser_of(Role::Admin).await;
    for (method, path) in
        [(Method::POST, "/api/v1/nothing"), (Method::POST, "/api/not_a_server_fn"), (Method::DELETE, "/")]
    {
        let res = admin.request(method.clone(), app.url(path)).send().await.expect("request");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let with_token = app.client.request(method.clone(), app.url(path)).send().await.expect("request");
        assert_eq!(with_token.status(), StatusCode::NOT_FOUND, "{method} {path} with an admin token");
    }
}

/// The same path spelled differently (a trailing slash, a doubled slash, other case, a
/// percent-encoded letter) must never get past the gate where the plain path is refused: each
/// variant is refused, or matches nothing (404/405). A 2xx, or a 400 from a handler reading the
/// body, would mean a handler ran for a caller the table refuses.
#[tokio::test]
async fn path_variants_never_open_a_refused_route() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let (_, table) = server::web::http_server::access_table(Secured::default());
    let variants = |path: &str| -> Vec<String> {
        let mut out = vec![format!("{path}/"), path.replacen('/', "//", 2), path.to_uppercase()];
        // Percent-encode the first letter after the last slash.
        if let Some(i) =
            path.rfind('/').and_then(|s| path[s..].find(|ch: char| ch.is_ascii_alphabetic()).map(|j| s + j))
        {
            out.push(format!("{}%{:02X}{}", &path[..i], path.as_bytes()[i], &path[i + 1..]));
        }
        out
    };
    let mut tried = 0;
    let mut opened = Vec::new();
    for rule in table.rules.iter().filter(|r| r.kind != Kind::Open) {
        for who in [Who::Anonymous, Who::User(Role::Viewer), Who::ReadToken, Who::ProbeToken] {
            if expected(who, rule) == Seen::Allowed {
                continue;
            }
            for path in variants(&concrete(rule.path)) {
                let (_, status) = call_path(&app, &c, who, rule, &path).await;
                tried += 1;
                let refused = matches!(status.as_u16(), 401 | 403 | 404 | 405 | 303 | 308);
                if !refused {
                    opened.push(format!("{} {path} as {who:?}: {status}", rule.method));
                }
            }
        }
    }
    println!("path variants: {tried} refused cells tried, {} opened", opened.len());
    assert!(tried > 200, "{tried}");
    assert!(opened.is_empty(), "{}", opened.join("\n"));
}
