//! Sign-in, sessions, passwords, tokens, cross-site checks, rate limits, the audit trail and the
//! admin command line, over HTTP against the real application and PostgreSQL.

use std::io::Write;
use std::process::Stdio;

use app::model::{Role, Scope};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    PASSWORD, Proc, TestApp, create_token, fresh_db, spawn_app, spawn_app_with, test_settings, triage,
};
use server::web::access::Secured;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Signs in over the API; returns the new session cookie value.
async fn login(app: &TestApp, email: &str, password: &str, old_cookie: Option<&str>) -> reqwest::Response {
    let mut req =
        no_redirects().post(app.url("/api/v1/auth/login")).json(&json!({"email": email, "password": password}));
    if let Some(c) = old_cookie {
        req = req.header("cookie", format!("triage_session={c}")).header("origin", app.url.as_str());
    }
    req.send().await.expect("login")
}

fn cookie_of(res: &reqwest::Response) -> String {
    let set = res.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("set-cookie").to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(flag), "{set} lacks {flag}");
    }
    set.split(';').next().and_then(|kv| kv.split_once('=')).expect("name=value").1.to_string()
}

async fn me_status(app: &TestApp, cookie: &str) -> StatusCode {
    app.browser(cookie).get(app.url("/api/v1/auth/me")).send().await.expect("me").status()
}

#[tokio::test]
async fn the_session_id_changes_at_login_and_the_old_one_ends() {
    let app = spawn_app().await;
    let (email, _) = app.session_of(Role::Viewer).await;
    let first = login(&app, &email, PASSWORD, None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let a = cookie_of(&first);
    let me: Value =
        app.browser(&a).get(app.url("/api/v1/auth/me")).send().await.expect("me").json().await.expect("json");
    assert_eq!(me["email"], email.as_str());
    assert_eq!(me["role"], "viewer");

    let second = login(&app, &email, PASSWORD, Some(&a)).await;
    let b = cookie_of(&second);
    assert_ne!(a, b, "a new session id at every sign-in");
    assert_eq!(me_status(&app, &a).await, StatusCode::UNAUTHORIZED, "the session presented at sign-in ended");
    assert_eq!(me_status(&app, &b).await, StatusCode::OK);

    let out = app.browser(&b).post(app.url("/api/v1/auth/logout")).header("accept", "application/json").send().await;
    assert_eq!(out.expect("logout").status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &b).await, StatusCode::UNAUTHORIZED, "signed out");
}

#[tokio::test]
async fn sessions_end_when_idle_or_past_their_lifetime_and_cookies_are_secure_over_https() {
    let app = spawn_app().await;
    let (email, idle) = app.session_of(Role::Viewer).await;
    let (_, old) = app.session_of(Role::Viewer).await;
    assert_eq!(me_status(&app, &idle).await, StatusCode::OK);
    let hash = |c: &str| server::access::sha256(c);
    sqlx::query("update sessions set last_seen_at = now() - interval '13 hours' where session_hash = $1")
        .bind(hash(&idle))
        .execute(&app.pool)
        .await
        .expect("age it");
    sqlx::query("update sessions set expires_at = now() - interval '1 second' where session_hash = $1")
        .bind(hash(&old))
        .execute(&app.pool)
        .await
        .expect("expire it");
    // Resolved sessions are reused for a few seconds; skip that wait.
    app.state.auth.sessions.forget(&hash(&idle));
    let res = app.browser(&idle).get(app.url("/api/v1/auth/me")).send().await.expect("me");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "idle for longer than 12 h");
    let cleared = res.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(cleared.starts_with("triage_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(me_status(&app, &old).await, StatusCode::UNAUTHORIZED, "past its absolute lifetime");
    let purged = server::storage::auth::purge_sessions(&app.pool, app.state.auth.settings.session_idle).await;
    assert!(purged.expect("purge") >= 1);

    let https = no_redirects()
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    let set = https.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("cookie").to_string();
    assert!(set.contains("; Secure"), "{set}");
    let plain = login(&app, &email, PASSWORD, None).await;
    let set = plain.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("cookie").to_string();
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
}

#[tokio::test]
async fn an_open_live_stream_ends_when_its_session_does() {
    let mut settings = crate::common::test_settings();
    settings.auth.live_recheck = std::time::Duration::from_millis(100);
    let app = crate::common::spawn_app_with(
        crate::common::fresh_db().await,
        settings,
        server::web::access::Secured::default(),
    )
    .await;
    let (_, cookie) = app.session_of(Role::Viewer).await;
    let browser = app.browser(&cookie);
    let mut stream = browser.get(app.url("/api/v1/events")).send().await.expect("events");
    assert_eq!(stream.status(), StatusCode::OK);
    let first = stream.chunk().await.expect("read").expect("the ready event");
    assert!(String::from_utf8_lossy(&first).contains("event: ready"));
    let out = browser.post(app.url("/api/v1/auth/logout")).header("accept", "application/json").send().await;
    assert_eq!(out.expect("logout").status(), StatusCode::NO_CONTENT);
    // The stream says `signed_out` and ends by itself (keep-alive comments may come first).
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut said = String::new();
        while let Some(chunk) = stream.chunk().await.expect("read") {
            said.push_str(&String::from_utf8_lossy(&chunk));
        }
        said
    })
    .await;
    let said = ended.expect("the stream outlived the session");
    assert!(said.contains("event: signed_out"), "{said}");
    let again = browser.get(app.url("/api/v1/events")).send().await.expect("events");
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "and reconnecting is refused");
}

#[tokio::test]
async fn a_password_change_ends_every_other_session() {
    let app = spawn_app().await;
    let (email, here) = app.session_of(Role::Responder).await;
    let elsewhere = cookie_of(&login(&app, &email, PASSWORD, None).await);
    let new_password = "a brand new password!";
    let res = app
        .browser(&here)
        .post(app.url("/api/v1/auth/password"))
        .json(&json!({"current_password": "wrong guess at it", "new_password": new_password}))
        .send()
        .await
        .expect("change");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.expect("json")["field"], "current_password");
    let short = app
        .browser(&here)
        .post(app.url("/api/v1/auth/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": "short"}))
        .send()
        .await
        .expect("change");
    assert_eq!(short.json::<Value>().await.expect("json")["field"], "new_password");
    let ok = app
        .browser(&here)
        .post(app.url("/api/v1/auth/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": new_password}))
        .send()
        .await
        .expect("change");
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &elsewhere).await, StatusCode::UNAUTHORIZED, "other sessions end");
    assert_eq!(me_status(&app, &here).await, StatusCode::OK, "the session that changed it stays");
    assert_eq!(login(&app, &email, PASSWORD, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, &email, new_password, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_sign_in() {
    let app = spawn_app().await;
    let (email, cookie) = app.session_of(Role::Commander).await;
    let users: Vec<Value> = app.get_json("/api/v1/users").await;
    let id =
        users.iter().find(|u| u["email"] == email.as_str()).expect("listed")["id"].as_str().expect("id").to_string();
    assert!(users.iter().all(|u| u.get("password_hash").is_none()), "hashes never leave the server");
    let res = app.client.patch(app.url(&format!("/api/v1/users/{id}"))).json(&json!({"disabled": true})).send().await;
    assert_eq!(res.expect("patch").status(), StatusCode::OK);
    assert_eq!(me_status(&app, &cookie).await, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, &email, PASSWORD, None).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_role_change_applies_to_open_sessions_at_once() {
    let app = spawn_app().await;
    let (email, cookie) = app.session_of(Role::Viewer).await;
    let browser = app.browser(&cookie);
    let users_url = app.url("/api/v1/users");
    assert_eq!(browser.get(&users_url).send().await.expect("get").status(), StatusCode::FORBIDDEN);
    let list: Vec<Value> = app.get_json("/api/v1/users").await;
    let id =
        list.iter().find(|u| u["email"] == email.as_str()).expect("listed")["id"].as_str().expect("id").to_string();
    let res = app.client.patch(app.url(&format!("/api/v1/users/{id}"))).json(&json!({"role": "admin"})).send().await;
    assert_eq!(res.expect("patch").status(), StatusCode::OK);
    let after = browser.get(&users_url).send().await.expect("get").status();
    assert_eq!(after, StatusCode::OK, "no stale role from the session cache");
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_disabled() {
    let app = spawn_app().await;
    let (email, _) = app.session_of(Role::Admin).await;
    let users: Vec<Value> = app.get_json("/api/v1/users").await;
    let id =
        users.iter().find(|u| u["email"] == email.as_str()).expect("listed")["id"].as_str().expect("id").to_string();
    for (patch, field) in [(json!({"role": "viewer"}), "role"), (json!({"disabled": true}), "disabled")] {
        let res = app.client.patch(app.url(&format!("/api/v1/users/{id}"))).json(&patch).send().await.expect("patch");
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert_eq!(res.json::<Value>().await.expect("json")["field"], field);
    }
}

#[tokio::test]
async fn writes_from_another_site_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let (_, cookie) = app.session_of(Role::Admin).await;
    let service = json!({"name": "csrf-target"});
    let foreign = app
        .browser(&cookie)
        .post(app.url("/api/v1/services"))
        .header("origin", "http://evil.example")
        .json(&service)
        .send()
        .await
        .expect("post");
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let fetch_cross_site = app
        .anonymous
        .post(app.url("/api/v1/services"))
        .header("cookie", format!("triage_session={cookie}"))
        .header("sec-fetch-site", "cross-site")
        .json(&service)
        .send()
        .await
        .expect("post");
    assert_eq!(fetch_cross_site.status(), StatusCode::FORBIDDEN);
    let no_origin = app
        .anonymous
        .post(app.url("/api/v1/services"))
        .header("cookie", format!("triage_session={cookie}"))
        .json(&service)
        .send()
        .await
        .expect("post");
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN, "a cookie-borne write must say where it comes from");
    let server_fn = app
        .browser(&cookie)
        .post(app.url("/api/admin_create_token"))
        .header("origin", "http://evil.example")
        .form(&[("name", "x"), ("scope", "admin"), ("expires_in_days", "")])
        .send()
        .await
        .expect("post");
    assert_eq!(server_fn.status(), StatusCode::FORBIDDEN, "server functions too");
    let live = app
        .browser(&cookie)
        .get(app.url("/api/v1/events"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("get");
    assert_eq!(live.status(), StatusCode::FORBIDDEN, "live push from another site");
    let services: Vec<Value> = app.get_json("/api/v1/services").await;
    assert!(services.is_empty(), "nothing was created: {services:?}");
    let tokens: Vec<Value> = app.get_json("/api/v1/tokens").await;
    assert_eq!(tokens.len(), 1, "only the test's own token: {tokens:?}");

    // The same write from this site, and a token-authenticated one without any Origin, pass.
    let same = app.browser(&cookie).post(app.url("/api/v1/services")).json(&service).send().await.expect("post");
    assert_eq!(same.status(), StatusCode::CREATED);
    let scripted =
        app.client.post(app.url("/api/v1/services")).json(&json!({"name": "scripted"})).send().await.expect("post");
    assert_eq!(scripted.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_account_and_per_address() {
    let app = spawn_app().await;
    let (email, _) = app.session_of(Role::Viewer).await;
    for _ in 0..5 {
        assert_eq!(login(&app, &email, "not the password at all", None).await.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = login(&app, &email, PASSWORD, None).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(blocked.headers().get("retry-after").is_some());
    // Per address: guessing across many accounts from one place is stopped too.
    for i in 0..15 {
        login(&app, &format!("nobody-{i}@example.com"), "guess guess guess", None).await;
    }
    let (other, _) = app.session_of(Role::Viewer).await;
    assert_eq!(login(&app, &other, PASSWORD, None).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let audit: Vec<Value> = app.get_json("/api/v1/audit?limit=100").await;
    assert!(audit.iter().any(|a| a["action"] == "login.failed"));
    assert!(audit.iter().any(|a| a["action"] == "login.throttled"));
}

/// A parallel burst cannot outrun the limit while the hashes run: each attempt is counted before
/// its password is checked. Oversized fields are refused before anything else.
#[tokio::test]
async fn a_parallel_burst_of_guesses_is_held_to_the_limit() {
    let app = spawn_app().await;
    let (email, _) = app.session_of(Role::Viewer).await;
    let guesses = (0..12).map(|i| {
        let (app, email) = (&app, email.clone());
        async move { login(app, &email, &format!("wrong guess number {i}"), None).await.status() }
    });
    let statuses = futures::future::join_all(guesses).await;
    let tried = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let held = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((tried, held), (5, 7), "{statuses:?}");

    let huge = "x".repeat(300) + "@example.com";
    let res = login(&app, &huge, "whatever password", None).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["field"], "email", "{body}");
    let res = login(&app, "someone@example.com", &"p".repeat(2000), None).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tokens_work_only_in_scope_until_revoked_or_expired() {
    let app = spawn_app().await;
    let read = create_token(&app.pool, Scope::Read, "reader").await;
    let push = create_token(&app.pool, Scope::Push, "agent").await;
    assert!(read.starts_with("tri_") && read.len() == 4 + 64, "256 bits, hex, with a prefix");
    let get = |t: &str| app.anonymous.get(app.url("/api/v1/services")).bearer_auth(t.to_string()).send();
    assert_eq!(get(&read).await.expect("get").status(), StatusCode::OK);
    assert_eq!(get(&push).await.expect("get").status(), StatusCode::FORBIDDEN);
    let write = app
        .anonymous
        .post(app.url("/api/v1/services"))
        .bearer_auth(&read)
        .json(&json!({"name": "nope"}))
        .send()
        .await
        .expect("post");
    assert_eq!(write.status(), StatusCode::FORBIDDEN);
    let page = app.anonymous.get(app.url("/")).bearer_auth(&read).send().await.expect("page");
    assert_eq!(page.status(), StatusCode::SEE_OTHER, "tokens are for the API, not for pages");

    let tokens: Vec<Value> = app.get_json("/api/v1/tokens").await;
    let reader = tokens.iter().find(|t| t["name"] == "reader").expect("listed");
    assert!(reader["last_used_at"].is_string(), "use is recorded: {reader}");
    let listed = serde_json::to_string(&tokens).expect("json");
    assert!(!listed.contains(&read[4..]) && !listed.contains(&push[4..]), "secrets are never listed");

    let id = reader["id"].as_str().expect("id");
    let res = app.client.delete(app.url(&format!("/api/v1/tokens/{id}"))).send().await.expect("revoke");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(get(&read).await.expect("get").status(), StatusCode::UNAUTHORIZED);

    let expiring = app
        .client
        .post(app.url("/api/v1/tokens"))
        .json(&json!({"name": "short-lived", "scope": "read", "expires_in_days": 1}))
        .send()
        .await
        .expect("create");
    assert_eq!(expiring.status(), StatusCode::CREATED);
    let created: Value = expiring.json().await.expect("json");
    let secret = created["token"].as_str().expect("shown once").to_string();
    assert_eq!(get(&secret).await.expect("get").status(), StatusCode::OK);
    sqlx::query("update api_tokens set expires_at = now() - interval '1 second' where name = 'short-lived'")
        .execute(&app.pool)
        .await
        .expect("expire it");
    assert_eq!(get(&secret).await.expect("get").status(), StatusCode::UNAUTHORIZED);
    let bad = app.client.post(app.url("/api/v1/tokens")).json(&json!({"name": "x", "scope": "root"})).send().await;
    let bad = bad.expect("create");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.json::<Value>().await.expect("json")["field"], "scope");
}

#[tokio::test]
async fn every_write_is_in_the_audit_trail_with_who_and_where() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/api/v1/services"))
        .header("x-request-id", "audit-me-1")
        .json(&json!({"name": "audited"}))
        .send()
        .await;
    assert_eq!(res.expect("post").status(), StatusCode::CREATED);
    let (_, cookie) = app.session_of(Role::Admin).await;
    let res = app
        .browser(&cookie)
        .post(app.url("/api/v1/users"))
        .json(&json!({"email": "new@example.com", "role": "responder", "password": "long enough password"}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::CREATED);
    type AuditLine = (String, String, String, Option<String>, Option<String>);
    let rows: Vec<AuditLine> =
        sqlx::query_as("select actor, action, target, remote_addr, request_id from audit_log order by audit_id")
            .fetch_all(&app.pool)
            .await
            .expect("audit");
    let service = rows.iter().find(|r| r.1 == "service.create").expect("service write audited");
    assert_eq!(service.0, "token:tests");
    assert_eq!(service.3.as_deref(), Some("127.0.0.1"));
    assert_eq!(service.4.as_deref(), Some("audit-me-1"));
    let user = rows.iter().find(|r| r.1 == "user.create" && r.2 == "new@example.com").expect("user write audited");
    assert!(user.0.starts_with("user:admin-"), "{user:?}");
    let text = format!("{rows:?}");
    assert!(!text.contains("long enough password"), "no secrets in the audit trail");
}

#[tokio::test]
async fn first_run_setup_needs_the_token_and_happens_once() {
    let app = spawn_app().await;
    let anonymous_page = app.anonymous.get(app.url("/")).send().await.expect("page");
    assert_eq!(anonymous_page.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous_page.headers()["location"], "/setup", "no users yet: to set-up");
    let token = app.state.auth.setup_token().expect("a fresh instance has a set-up token");
    let body = |t: &str| json!({"setup_token": t, "email": "first@example.com", "password": "first admin password"});
    let wrong = no_redirects().post(app.url("/api/v1/auth/setup")).json(&body("guess")).send().await.expect("setup");
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(wrong.json::<Value>().await.expect("json")["field"], "setup_token");
    let ok = no_redirects().post(app.url("/api/v1/auth/setup")).json(&body(&token)).send().await.expect("setup");
    assert_eq!(ok.status(), StatusCode::CREATED);
    let cookie = cookie_of(&ok);
    let me: Value =
        app.browser(&cookie).get(app.url("/api/v1/auth/me")).send().await.expect("me").json().await.expect("json");
    assert_eq!(me["role"], "admin");
    let again = no_redirects().post(app.url("/api/v1/auth/setup")).json(&body(&token)).send().await.expect("setup");
    assert_eq!(again.status(), StatusCode::CONFLICT, "once only");
    let page = app.anonymous.get(app.url("/status")).send().await.expect("page");
    assert_eq!(page.headers()["location"], "/login?next=%2Fstatus", "users exist: to sign-in, then back");
}

/// The admin CLI works on the data directory of a running server (attaching to its cluster),
/// and no secret reaches the server's log.
#[test]
fn the_cli_adds_users_and_tokens_next_to_a_running_server_and_secrets_stay_out_of_logs() {
    let data = tempfile::tempdir().expect("tempdir");
    // With no server running, the command starts the data directory's cluster itself.
    let mut first = triage()
        .args(["user", "add", "--email", "first@example.com", "--role", "admin", "--data-dir"])
        .arg(data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    first.stdin.take().expect("stdin").write_all(b"first admin password\n").expect("write");
    let out = first.wait_with_output().expect("wait");
    assert!(out.status.success(), "user add without a server: {}", String::from_utf8_lossy(&out.stderr));
    let mut server = Proc::start(data.path(), &["--self-watch", "false"]);
    assert!(
        !server.seen.iter().any(|l| l.contains("setup_token")),
        "a user exists already: no set-up token is printed"
    );
    let password = "cli chosen password 42";
    let mut add = triage()
        .args(["user", "add", "--email", "ops@example.com", "--role", "commander", "--data-dir"])
        .arg(data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    add.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write");
    let out = add.wait_with_output().expect("wait");
    assert!(out.status.success(), "user add: {}", String::from_utf8_lossy(&out.stderr));
    let out = triage()
        .args(["token", "create", "--scope", "admin", "--name", "script", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("token create");
    assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("tri_"), "only the token on stdout: {token}");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let url = server.url.clone();
    let pushed_token = rt.block_on(async {
        let client = no_redirects();
        let services = client.get(format!("{url}/api/v1/services")).bearer_auth(&token).send().await.expect("get");
        assert_eq!(services.status(), StatusCode::OK, "the CLI's token works on the running server");
        let bad = client
            .post(format!("{url}/api/v1/auth/login"))
            .json(&json!({"email": "ops@example.com", "password": "the wrong one, quite long"}))
            .send()
            .await
            .expect("login");
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
        let body = bad.text().await.expect("body");
        assert!(!body.contains("the wrong one"), "the password is not echoed");
        let ok = client
            .post(format!("{url}/api/v1/auth/login"))
            .json(&json!({"email": "ops@example.com", "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(ok.status(), StatusCode::OK, "the CLI's user signs in on the running server");
        let me: Value = ok.json().await.expect("json");
        assert_eq!(me["role"], "commander");
        let created = client
            .post(format!("{url}/api/v1/tokens"))
            .bearer_auth(&token)
            .json(&json!({"name": "via-api", "scope": "push"}))
            .send()
            .await
            .expect("create");
        let created: Value = created.json().await.expect("json");
        created["token"].as_str().expect("token").to_string()
    });
    // A request after the others, so every earlier line has been logged when it shows up.
    rt.block_on(async { no_redirects().get(format!("{url}/healthz")).header("x-request-id", "last-one").send().await })
        .expect("healthz");
    server.wait_for(|l| l.contains("last-one"), std::time::Duration::from_secs(10)).expect("logged");
    let log = server.seen.join("\n");
    for secret in [password, "the wrong one, quite long", &token, &token[4..], &pushed_token, &pushed_token[4..]] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    assert!(server.terminate().success());
}

async fn login_from(app: &TestApp, forwarded_for: &str, email: &str) -> StatusCode {
    no_redirects()
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": email, "password": "a wrong guess"}))
        .send()
        .await
        .expect("login")
        .status()
}

/// Behind a proxy the admin trusts, each client behind it has its own address limit and appears in
/// the audit log by its own address; from anyone else `X-Forwarded-For` changes nothing. Refused
/// guesses write one audit row per block, not one each.
#[tokio::test]
async fn the_client_behind_a_trusted_proxy_is_throttled_and_audited_by_its_own_address() {
    use server::access::limiter::Limits;
    let limits = Limits { per_account: 100, per_address: 3, window: std::time::Duration::from_secs(600) };
    for trusted in [true, false] {
        let mut settings = test_settings();
        settings.auth.limits = limits;
        if trusted {
            settings.trusted_proxies = vec!["127.0.0.1".parse().expect("cidr")];
        }
        let app = spawn_app_with(fresh_db().await, settings, Secured::default()).await;
        for i in 0..3 {
            let status = login_from(&app, "203.0.113.50, 198.51.100.1", &format!("a{i}@example.com")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        for _ in 0..4 {
            let status = login_from(&app, "198.51.100.1", "more@example.com").await;
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the address is at its limit");
        }
        let other = login_from(&app, "198.51.100.2", "b@example.com").await;
        let expected = if trusted { StatusCode::UNAUTHORIZED } else { StatusCode::TOO_MANY_REQUESTS };
        assert_eq!(other, expected, "trusted proxies: {trusted}");
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("select action, remote_addr from audit_log where action like 'login.%' order by audit_id")
                .fetch_all(&app.pool)
                .await
                .expect("audit");
        let want = if trusted { "198.51.100.1" } else { "127.0.0.1" };
        assert!(rows.iter().take(3).all(|r| r.0 == "login.failed" && r.1.as_deref() == Some(want)), "{rows:?}");
        let throttled = rows.iter().filter(|r| r.0 == "login.throttled").count();
        assert_eq!(throttled, if trusted { 1 } else { 2 }, "one row per blocked account and address: {rows:?}");
    }
}

/// The audit log is held to its age and size by the hourly housekeeping.
#[tokio::test]
async fn the_audit_log_is_trimmed_by_age_and_by_count() {
    let app = spawn_app().await;
    sqlx::query(
        "insert into audit_log (at, actor, action) \
         select now() - (case when i <= 300 then interval '500 days' else interval '1 minute' end), 'cli', 'old.' || i \
         from generate_series(1, 1500) as i",
    )
    .execute(&app.pool)
    .await
    .expect("seed");
    let before: i64 = sqlx::query_scalar("select count(*) from audit_log").fetch_one(&app.pool).await.expect("count");
    let newest: i64 =
        sqlx::query_scalar("select max(audit_id) from audit_log").fetch_one(&app.pool).await.expect("max");
    let keep = std::time::Duration::from_secs(400 * 86_400);
    // The app's own hourly housekeeping may already have removed the 300 old rows (its first
    // run can land after the seed): at most the surplus goes, and a second run finds nothing.
    let removed = server::storage::auth::prune_audit(&app.pool, keep, 1000).await.expect("prune");
    assert!(removed <= u64::try_from(before - 1000).expect("count"), "{removed}");
    assert_eq!(server::storage::auth::prune_audit(&app.pool, keep, 1000).await.expect("again"), 0);
    let (count, oldest_id, old): (i64, i64, i64) = sqlx::query_as(
        "select count(*), min(audit_id), count(*) filter (where at < now() - interval '400 days') from audit_log",
    )
    .fetch_one(&app.pool)
    .await
    .expect("after");
    assert_eq!((count, old), (1000, 0), "the newest 1000 stay, none past retention");
    assert_eq!(oldest_id, newest - 999, "the oldest went first");
}
