//! The `triage` binary as a user runs it: configuration errors, start-up on the embedded cluster,
//! restart with data kept, crash recovery, a second instance, logs carrying request ids.

use std::time::Duration;

use crate::common::{Proc, triage};
use nix::sys::signal::Signal;

fn run_expecting_failure(args: &[&str]) -> (i32, String) {
    let out = triage().args(args).output().expect("run triage");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out.status.code().expect("exit code"), stderr)
}

#[test]
fn configuration_errors_are_one_line_with_exit_code_2() {
    for (args, needle) in [
        (vec!["--addr", "not-an-address"], "--addr"),
        (vec!["--log-level", "info,[[["], "--log-level"),
        (vec!["--db-min-connections", "50"], "--db-min-connections"),
        (vec!["--request-timeout", "soon"], "--request-timeout"),
        (vec!["--database-url", "mysql://u:hunter2@h/db"], "--database-url"),
        (vec!["--trace-url", "https://jaeger.internal/trace/"], "--trace-url"),
        (vec!["--trace-url", "javascript:alert({trace_id})"], "--trace-url"),
    ] {
        let (code, stderr) = run_expecting_failure(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?} one line: {stderr}");
        assert!(stderr.contains(needle), "{args:?} names {needle}: {stderr}");
        assert!(!stderr.contains("hunter2"), "secrets never echoed");
    }
}

#[test]
fn missing_postgres_binaries_say_how_to_fix_it_with_exit_code_2() {
    let data = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    let (code, stderr) = run_expecting_failure(&[
        "--data-dir",
        data.path().to_str().expect("utf8"),
        "--pg-bin-dir",
        empty.path().to_str().expect("utf8"),
        "--addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("apt-get install -y postgresql") && stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn help_documents_every_option_with_its_environment_variable() {
    let out = triage().arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for env in
        ["TRIAGE_ADDR", "TRIAGE_DATA_DIR", "DATABASE_URL", "TRIAGE_LOG", "TRIAGE_LOG_FORMAT", "TRIAGE_BODY_LIMIT"]
    {
        assert!(help.contains(env), "--help mentions {env}");
    }
}

const ADMIN_EMAIL: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "a long enough test password";

/// The set-up token a fresh instance printed in its (JSON) log, if it printed one.
fn setup_token_in(log: &[String]) -> Option<String> {
    log.iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["setup_token"].as_str().map(str::to_string))
}

/// Signs in as the admin: on a fresh instance by creating it with the set-up token from the
/// log, later with its password. Returns the session cookie (`name=value`).
async fn admin_cookie(url: &str, log: &[String]) -> String {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let res = match setup_token_in(log) {
        Some(token) => client
            .post(format!("{url}/api/v1/auth/setup"))
            .json(&serde_json::json!({"setup_token": token, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("setup"),
        None => client
            .post(format!("{url}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("login"),
    };
    assert!(res.status().is_success(), "signing in: {}", res.status());
    let set = res.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("a session cookie").to_string();
    set.split(';').next().expect("name=value").to_string()
}

/// Calls the status server function of a running instance as its admin (blocking, so these
/// tests stay sync).
fn status_json(url: &str, log: &[String]) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let cookie = admin_cookie(url, log).await;
        let res = reqwest::Client::new()
            .post(format!("{url}/api/get_system_status"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .header("origin", url)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
        res.json::<serde_json::Value>().await.expect("json")
    })
}

fn instance_id(proc: &Proc) -> String {
    status_json(&proc.url, &proc.seen)["instance"]["instance_id"].as_str().expect("instance id").to_string()
}

#[test]
fn serves_on_the_embedded_cluster_and_keeps_data_across_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let first = Proc::start(data.path(), &[]);
    let id = instance_id(&first);
    let status = first.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(!data.path().join("pg/postmaster.pid").exists(), "PostgreSQL was stopped cleanly");

    let second = Proc::start(data.path(), &[]);
    assert_eq!(instance_id(&second), id, "same installation after restart");
    assert!(second.terminate().success());
}

#[test]
fn a_second_triage_on_the_same_data_directory_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let first = Proc::start(data.path(), &[]);
    let (code, stderr) =
        run_expecting_failure(&["--data-dir", data.path().to_str().expect("utf8"), "--addr", "127.0.0.1:0"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("in use by another triage process"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.child.id())), "{stderr}");
    // The first instance is unharmed.
    instance_id(&first);
    assert!(first.terminate().success());
}

#[test]
fn after_a_crash_the_next_start_recovers_and_keeps_the_data() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut first = Proc::start(data.path(), &[]);
    let id = instance_id(&first);
    first.signal(Signal::SIGKILL);
    first.child.wait().expect("reaped");

    let second = Proc::start(data.path(), &[]);
    assert_eq!(instance_id(&second), id);
    assert!(second.terminate().success());
}

#[test]
fn every_log_line_of_a_request_carries_its_request_id() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut proc = Proc::start(data.path(), &[]);
    let url = proc.url.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let res = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{url}/readyz"))
            .header("x-request-id", "trace-me-42")
            .send()
            .await
            .expect("request")
    });
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    let served = proc
        .wait_for(|l| l.contains("\"served\"") && l.contains("/readyz"), Duration::from_secs(10))
        .expect("a log line for the request");
    let lines: Vec<serde_json::Value> = proc
        .seen
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["span"]["route"] == "/readyz")
        .collect();
    assert!(!lines.is_empty(), "{served}");
    for line in &lines {
        assert_eq!(line["span"]["request_id"], "trace-me-42", "{line}");
    }
    assert!(proc.terminate().success());
}

#[test]
fn with_database_url_it_uses_that_server_and_migrates_it() {
    // An "external" server: a cluster this test starts itself, reached through DATABASE_URL.
    let (cluster_dir, pg) = crate::common::start_private_cluster();
    let socket_dir = cluster_dir.path().join("run");
    let url = format!("postgres://triage@localhost/postgres?host={}&port=5432", socket_dir.display());
    let data = tempfile::tempdir().expect("tempdir");
    let mut child = triage()
        .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(data.path())
        .env("DATABASE_URL", &url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut up = None;
    let mut log = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
        if line.contains("Triage is up") {
            up = Some(line);
            break;
        }
        log.push(line);
    }
    let up: serde_json::Value = serde_json::from_str(&up.expect("came up")).expect("json");
    let base = up["url"].as_str().expect("url").to_string();
    let status = status_json(&base, &log);
    assert_eq!(status["instance"]["database"], "external");
    assert!(!data.path().join("pg").exists(), "DATABASE_URL wins: no embedded cluster in --data-dir");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal");
    assert!(child.wait().expect("wait").success());

    // The migrations ran on that server.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let applied: i64 = rt.block_on(async {
        let pool = server::storage::pool::connect(
            pg.connect_options("postgres"),
            server::storage::pool::PoolSettings::default(),
        )
        .await
        .expect("connect");
        sqlx::query_scalar("select count(*) from _sqlx_migrations").fetch_one(&pool).await.expect("migrations table")
    });
    assert!(applied >= 1);
}

const PROBE_FILE: &str = r#"
[[service]]
name = "shop"
criticality = "high"

[[probe]]
name = "shop-health"
service = "shop"
kind = "http"
url = "http://127.0.0.1:9/healthz"
interval_secs = 60
"#;

#[test]
fn the_probe_file_is_applied_at_start_and_exported_while_the_server_runs() {
    let data = tempfile::tempdir().expect("tempdir");
    let file = data.path().join("triage.toml");
    std::fs::write(&file, PROBE_FILE).expect("write probe file");
    let file_arg = file.to_str().expect("utf-8 path");
    let server = Proc::start(data.path(), &["--config", file_arg, "--self-watch", "false"]);
    // The export attaches to the running instance's cluster instead of starting a second one.
    let out = triage().args(["probes", "export", "--data-dir"]).arg(data.path()).output().expect("run export");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "export: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("name = \"shop-health\"") && stdout.contains("criticality = \"high\""), "{stdout}");
    let exported = server::monitor::probe_file::parse(&stdout).expect("the export is a valid probe file");
    assert_eq!(exported.probes.len(), 1);
    assert!(server.terminate().success());
}

#[test]
fn an_invalid_probe_file_stops_start_up_with_one_line_and_exit_code_2() {
    let data = tempfile::tempdir().expect("tempdir");
    let file = data.path().join("triage.toml");
    std::fs::write(&file, PROBE_FILE.replace("interval_secs = 60", "interval_secs = 60\ntimeout_ms = 90000"))
        .expect("write");
    let out = triage()
        .args(["serve", "--addr", "127.0.0.1:0", "--self-watch", "false", "--data-dir"])
        .arg(data.path())
        .arg("--config")
        .arg(&file)
        .output()
        .expect("run triage");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.contains("shop-health") && last.contains("timeout_ms"), "{stderr}");
}

/// SIGHUP makes a running server re-read its probe file; `triage probes apply --dry-run` prints
/// the difference a file would make and changes nothing.
#[test]
fn sighup_reapplies_the_probe_file_and_the_command_line_prints_the_difference() {
    let data = tempfile::tempdir().expect("tempdir");
    let file = data.path().join("triage.toml");
    std::fs::write(&file, PROBE_FILE).expect("write probe file");
    let file_arg = file.to_str().expect("utf-8 path");
    let mut server = Proc::start(data.path(), &["--config", file_arg, "--self-watch", "false"]);
    let second = PROBE_FILE.replace("shop-health", "shop-ready");
    let next = data.path().join("next.toml");
    std::fs::write(&next, &second).expect("write");
    let out = triage()
        .args(["probes", "apply", next.to_str().expect("utf-8"), "--dry-run", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("run apply");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("+ probe shop-ready") && stdout.contains("- probe shop-health"), "{stdout}");
    assert!(stdout.contains("dry run: nothing changed"), "{stdout}");

    std::fs::write(&file, &second).expect("rewrite the server's file");
    server.signal(Signal::SIGHUP);
    let applied = server.wait_for(|l| l.contains("SIGHUP: probe file applied"), Duration::from_secs(30));
    let applied = applied.expect("the server re-read its file");
    assert!(applied.contains("+ probe shop-ready") && applied.contains("- probe shop-health"), "{applied}");
    let out = triage().args(["probes", "export", "--data-dir"]).arg(data.path()).output().expect("run export");
    let exported = String::from_utf8_lossy(&out.stdout);
    assert!(exported.contains("shop-ready") && !exported.contains("shop-health"), "{exported}");
    assert!(server.terminate().success());
}

/// Without a probe file, SIGHUP (a service manager's "reload") is logged and Triage keeps running.
#[test]
fn sighup_without_a_probe_file_does_not_stop_triage() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut server = Proc::start(data.path(), &["--self-watch", "false"]);
    server.signal(Signal::SIGHUP);
    let said = server.wait_for(|l| l.contains("SIGHUP: no probe file"), Duration::from_secs(30));
    assert!(said.is_some(), "the hangup is acknowledged");
    assert!(server.terminate().success(), "still running, and it stops cleanly");
}
