//! The embedded cluster: first start, restart with data kept, a second owner refused, stale
//! state after a crash, missing binaries, and readiness when the database goes away.

use std::time::Duration;

use crate::common::{spawn_app_with, start_private_cluster, test_settings};
use server::storage;
use server::storage::cluster::{EmbeddedPg, EmbeddedPgConfig, EmbeddedPgError};
use server::storage::pool::{self, PoolSettings};
use server::web::access::Secured;
use sqlx::PgPool;

async fn connect(pg: &EmbeddedPg, database: &str) -> PgPool {
    pool::connect(pg.connect_options(database), PoolSettings { max_connections: 2, min_connections: 0 })
        .await
        .expect("connect")
}

fn config(dir: &std::path::Path) -> EmbeddedPgConfig {
    let mut c = EmbeddedPgConfig::new(dir);
    c.durable = false;
    c
}

#[tokio::test]
async fn data_survives_a_stop_and_a_restart() {
    let (dir, mut pg) = start_private_cluster();
    let pool = connect(&pg, "postgres").await;
    sqlx::query("create table kept (v text)").execute(&pool).await.expect("create");
    sqlx::query("insert into kept values ('still here')").execute(&pool).await.expect("insert");
    pool.close().await;
    pg.stop(Duration::from_secs(30)).expect("clean stop");
    assert!(pg.exit_status().is_some(), "server process has exited");
    drop(pg);

    let pg = EmbeddedPg::start(&config(dir.path())).expect("restart");
    let pool = connect(&pg, "postgres").await;
    let v: String = sqlx::query_scalar("select v from kept").fetch_one(&pool).await.expect("select");
    assert_eq!(v, "still here");
}

#[tokio::test]
async fn the_cluster_listens_on_a_socket_in_the_data_directory_only() {
    let (dir, pg) = start_private_cluster();
    assert!(dir.path().join("run/.s.PGSQL.5432").exists(), "socket inside the data directory");
    let pool = connect(&pg, "postgres").await;
    let addrs: String = sqlx::query_scalar("show listen_addresses").fetch_one(&pool).await.expect("show");
    assert_eq!(addrs, "", "no TCP listener");
}

#[tokio::test]
async fn a_second_owner_of_the_data_directory_is_refused_and_the_first_keeps_working() {
    let (dir, pg) = start_private_cluster();
    let err = EmbeddedPg::start(&config(dir.path())).expect_err("second start must fail");
    assert!(matches!(err, EmbeddedPgError::InUse { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("in use by another triage process") && msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    let pool = connect(&pg, "postgres").await;
    let one: i32 = sqlx::query_scalar("select 1").fetch_one(&pool).await.expect("first still serves");
    assert_eq!(one, 1);
}

#[tokio::test]
async fn a_stale_postmaster_pid_from_a_crash_is_cleared() {
    let (dir, mut pg) = start_private_cluster();
    pg.stop(Duration::from_secs(30)).expect("stop");
    drop(pg);
    // A pid that is certainly not a running postgres: a child that has already been reaped.
    let mut gone = std::process::Command::new("true").spawn().expect("spawn");
    let dead_pid = gone.id();
    gone.wait().expect("wait");
    let pid_file = dir.path().join("pg/postmaster.pid");
    std::fs::write(&pid_file, format!("{dead_pid}\n{}\n0\n5432\n\n\n0 0\nready\n", dir.path().display()))
        .expect("write stale pid file");
    let pg = EmbeddedPg::start(&config(dir.path())).expect("starts despite the stale file");
    let pool = connect(&pg, "postgres").await;
    let one: i32 = sqlx::query_scalar("select 1").fetch_one(&pool).await.expect("query");
    assert_eq!(one, 1);
}

#[test]
fn missing_binaries_are_a_clear_configuration_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.bin_dir = Some(empty.path().to_path_buf());
    let err = EmbeddedPg::start(&cfg).expect_err("no binaries");
    assert!(matches!(err, EmbeddedPgError::BinariesNotFound { .. }));
    assert!(err.is_config_error());
    assert!(err.to_string().contains("apt-get install -y postgresql"));
}

#[tokio::test]
async fn readyz_turns_503_when_the_database_stops_and_caches_within_its_window() {
    let (_dir, mut pg) = start_private_cluster();
    let admin = connect(&pg, "postgres").await;
    storage::create_database_if_missing(&admin, "triage").await.expect("create db");
    admin.close().await;
    let pool = connect(&pg, "triage").await;
    pool::migrate(&pool).await.expect("migrate");

    let mut uncached = test_settings();
    uncached.readiness_cache = Duration::ZERO;
    let live = spawn_app_with(pool.clone(), uncached, Secured::default()).await;
    let mut cached = test_settings();
    cached.readiness_cache = Duration::from_secs(3600);
    let cached = spawn_app_with(pool.clone(), cached, Secured::default()).await;

    for app in [&live, &cached] {
        let res = app.client.get(app.url("/readyz")).send().await.expect("request");
        assert_eq!(res.status(), 200);
    }

    let stopper = tokio::task::spawn_blocking(move || {
        pg.stop(Duration::from_secs(30)).expect("stop");
        pg
    });
    let _pg = stopper.await.expect("stopped");

    let res = live.client.get(live.url("/readyz")).send().await.expect("request");
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["failing"], serde_json::json!(["database"]));
    assert!(body["checks"]["database"]["error"].as_str().is_some_and(|e| !e.is_empty()));

    let res = cached.client.get(cached.url("/readyz")).send().await.expect("request");
    assert_eq!(res.status(), 200, "within the cache window the last result is reused, not recomputed");
    let health = live.client.get(live.url("/healthz")).send().await.expect("request");
    assert_eq!(health.status(), 200, "liveness does not depend on the database");
}

/// The embedded cluster is supervised: killed for real, it is started again (with backoff),
/// `/readyz` names it while it is down, and the pool works again once it is back.
#[tokio::test]
async fn a_killed_cluster_is_restarted_and_readyz_names_it_meanwhile() {
    use server::storage::supervisor::{Backoff, ClusterState, Supervisor};
    let (dir, pg) = start_private_cluster();
    let admin = connect(&pg, "postgres").await;
    storage::create_database_if_missing(&admin, "triage").await.expect("create db");
    admin.close().await;
    let pool = connect(&pg, "triage").await;
    pool::migrate(&pool).await.expect("migrate");
    let first = pg.pid();
    // The first retry waits long enough for the test to see the "restarting" state.
    let backoff = Backoff { first: Duration::from_secs(2), max: Duration::from_secs(4) };
    let supervisor = Supervisor::start(pg, config(dir.path()), backoff);
    let mut settings = test_settings();
    settings.readiness_cache = Duration::ZERO;
    let app = spawn_app_with(pool.clone(), settings, Secured::default()).await;
    app.state.readiness.attach_cluster(supervisor.state(), dir.path().to_path_buf());
    let ready: serde_json::Value = app.get_json("/readyz").await;
    assert_eq!(ready["checks"]["postgres"]["status"], "up", "{ready}");
    assert_eq!(ready["checks"]["disk"]["status"], "up", "{ready}");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first as i32), nix::sys::signal::Signal::SIGKILL)
        .expect("kill -9 the postmaster");
    let mut state = supervisor.state();
    state.wait_for(|s| matches!(s, ClusterState::Restarting { .. })).await.expect("seen exiting");
    let res = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.expect("json");
    assert!(body["failing"].as_array().expect("failing").contains(&"postgres".into()), "{body}");
    assert!(body["checks"]["postgres"]["error"].as_str().expect("why").contains("restarting"), "{body}");

    let running = state.wait_for(|s| matches!(s, ClusterState::Running { .. })).await.expect("running again").clone();
    let ClusterState::Running { pid, restarts, .. } = running else { unreachable!() };
    assert_ne!(pid, first, "a new server process");
    assert_eq!(restarts, 1);
    let one: i32 = sqlx::query_scalar("select 1").fetch_one(&pool).await.expect("the pool reconnects");
    assert_eq!(one, 1);
    let res = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
    supervisor.stop(Duration::from_secs(30)).await.expect("clean stop");
}
