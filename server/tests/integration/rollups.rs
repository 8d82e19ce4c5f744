//! Results → rollups → percentiles, against PostgreSQL's exact `percentile_cont` on the raw rows;
//! late results; and a database restart in the middle of probing.

use std::time::Duration;

use app::model::ProbeResult;
use axum::Router;
use axum::routing::get;
use chrono::Utc;
use serde_json::json;
use server::monitor::{pipeline, series};
use server::storage;
use server::storage::cluster::{EmbeddedPg, EmbeddedPgConfig};
use server::storage::pool::{self, PoolSettings};
use server::storage::{results, rollups};
use uuid::Uuid;

use crate::common::{self, result_of, serve_target, wait_events};

async fn store(pool: &sqlx::PgPool, rows: &[ProbeResult]) {
    for day in rows.iter().map(|r| r.at.date_naive()).collect::<std::collections::BTreeSet<_>>() {
        results::ensure_partition(pool, day).await.expect("partition");
    }
    for chunk in rows.chunks(5_000) {
        results::write_batch(pool, uuid::Uuid::new_v4(), chunk, &[], &[]).await.expect("write");
    }
}

async fn exact(pool: &sqlx::PgPool, probe: Uuid) -> Vec<f64> {
    sqlx::query_scalar(
        "select unnest(percentile_cont(array[0.5, 0.95, 0.99]) within group (order by total_us))
           from results where probe_id = $1",
    )
    .bind(probe)
    .fetch_all(pool)
    .await
    .expect("exact percentiles")
}

#[tokio::test]
async fn percentiles_from_rollups_are_within_one_percent_of_exact_and_late_results_count() {
    let pool = common::fresh_db().await;
    let now = Utc::now();
    let start = rollups::Level::Hour.truncate(now) - chrono::Duration::hours(3);
    rollups::set_watermark(&pool, start).await.expect("watermark");
    let probe = Uuid::new_v4();
    let mut rng = server::cli::bench::Rng(42);
    let n = 30_000;
    let span_ms = (now - chrono::Duration::minutes(2) - start).num_milliseconds();
    let rows: Vec<ProbeResult> = (0..n)
        .map(|i| {
            server::cli::bench::sample(probe, start + chrono::Duration::milliseconds(span_ms * i / n), rng.latency_us())
        })
        .collect();
    store(&pool, &rows).await;
    pipeline::roll_up_to(&pool, now).await.expect("rollup");

    let summary = series::summaries(&pool, &[probe], start, now).await.expect("summaries");
    let got = &summary[&probe];
    assert_eq!(got.count(), n as u64);
    let want = exact(&pool, probe).await;
    for (q, exact) in [0.5, 0.95, 0.99].into_iter().zip(want) {
        let approx = got.latency.percentile(q).expect("percentile");
        let err = (approx - exact).abs() / exact;
        assert!(err <= 0.01, "p{}: {approx} vs exact {exact} ({:.3}%)", q * 100.0, err * 100.0);
    }

    // Hour rows and minute rows agree.
    let minutes = series::series(&pool, probe, start, now, Some(60)).await.expect("minutes");
    let hours = series::series(&pool, probe, start, now, Some(3600)).await.expect("hours");
    let count = |s: &app::model::Series| s.points.iter().map(|p| p.count).sum::<u64>();
    assert_eq!((count(&minutes), count(&hours)), (n as u64, n as u64));
    assert!(hours.points.len() <= 4);
    // Asked again, the closed hours come from the cache of closed buckets: the same answer.
    let cached = series::series(&pool, probe, start, now, Some(3600)).await.expect("hours");
    assert_eq!(cached, hours);
    let later_start = series::series(&pool, probe, start + chrono::Duration::hours(1), now, Some(3600)).await;
    assert_eq!(later_start.expect("hours").points[..], hours.points[1..], "a shorter range from the same cache");

    // A result arriving late (an agent's, or one buffered through an outage) is rolled up too.
    let late_at = start + chrono::Duration::minutes(30);
    store(&pool, &[server::cli::bench::sample(probe, late_at, 5_000_000)]).await;
    pipeline::roll_up_to(&pool, Utc::now()).await.expect("rollup");
    let again = series::summaries(&pool, &[probe], start, now).await.expect("summaries");
    assert_eq!(again[&probe].count(), n as u64 + 1);
    let hours = series::series(&pool, probe, start, now, Some(3600)).await.expect("hours");
    assert_eq!(count(&hours), n as u64 + 1, "the hour row was recomputed");
    let weeks = series::series(&pool, probe, start, now, Some(604_800)).await.expect("weeks");
    assert_eq!(count(&weeks), n as u64 + 1, "and the week row");
    assert_eq!(again[&probe].latency.max_us(), 5_000_000);
}

/// The incident room reads a window ending in the past (the hour before the incident) between
/// reads of the live window, with the same probes and step: the first must not make the cache
/// claim buckets it never read, or the live window loses everything in between.
#[tokio::test]
async fn a_range_ending_in_the_past_leaves_the_later_buckets_to_be_read() {
    let pool = common::fresh_db().await;
    let now = Utc::now();
    let start = rollups::Level::Hour.truncate(now) - chrono::Duration::hours(3);
    rollups::set_watermark(&pool, start).await.expect("watermark");
    let probe = Uuid::new_v4();
    let rows: Vec<ProbeResult> = (0..)
        .map(|i| start + chrono::Duration::seconds(10 * i))
        .take_while(|at| *at < now - chrono::Duration::minutes(2))
        .map(|at| server::cli::bench::sample(probe, at, 20_000))
        .collect();
    store(&pool, &rows).await;
    pipeline::roll_up_to(&pool, now).await.expect("rollup");
    let count = |s: &app::model::Series| s.points.iter().map(|p| p.count).sum::<u64>();
    let rows_in = |from, to| rows.iter().filter(|r| r.at >= from && r.at < to).count() as u64;

    let before_to = start + chrono::Duration::hours(1);
    let before = series::series(&pool, probe, start, before_to, Some(60)).await.expect("before");
    assert_eq!(count(&before), rows_in(start, before_to));
    let window_from = start + chrono::Duration::minutes(30);
    let window = series::series(&pool, probe, window_from, now, Some(60)).await.expect("window");
    assert_eq!(count(&window), rows_in(window_from, now), "no bucket after the earlier range's end is lost");
    // And again, now that the window's buckets are cached.
    let again = series::series(&pool, probe, window_from, now, Some(60)).await.expect("window");
    assert_eq!(again, window);
}

#[tokio::test]
async fn no_scheduled_result_is_lost_while_postgresql_restarts() {
    let dir = tempfile::Builder::new().prefix("triage-outage-").tempdir().expect("tempdir");
    let mut config = EmbeddedPgConfig::new(dir.path());
    config.durable = false;
    let start = config.clone();
    let pg = tokio::task::spawn_blocking(move || EmbeddedPg::start(&start)).await.expect("join").expect("pg starts");
    let admin = pool::connect(pg.connect_options("postgres"), PoolSettings { max_connections: 1, min_connections: 0 })
        .await
        .expect("admin");
    storage::create_database_if_missing(&admin, "triage").await.expect("create db");
    admin.close().await;
    let pool = pool::connect(pg.connect_options("triage"), PoolSettings { max_connections: 4, min_connections: 0 })
        .await
        .expect("pool");
    pool::migrate(&pool).await.expect("migrate");
    let target = serve_target(Router::new().route("/", get(|| async { "ok" }))).await;
    let app =
        common::spawn_app_with(pool.clone(), common::test_settings(), server::web::access::Secured::default()).await;
    let mut events = app.state.hub.subscribe();
    let created: serde_json::Value = app
        .client
        .post(app.url("/api/v1/probes"))
        .json(&json!({"name": "p", "service": "s", "kind": "http", "url": format!("http://{target}/"),
                      "interval_secs": 1, "timeout_ms": 500}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let probe: Uuid = created["id"].as_str().expect("id").parse().expect("uuid");
    wait_events(&mut events, 2, Duration::from_secs(20), result_of(probe)).await;

    let stats = app.state.scheduler.ingest().stats.clone();
    let before = stats.accepted.load(std::sync::atomic::Ordering::Relaxed);
    let mut pg = pg;
    tokio::task::spawn_blocking(move || {
        pg.stop(Duration::from_secs(30)).expect("stop");
        drop(pg);
    })
    .await
    .expect("join");
    // The outage lasts until three more checks have finished and a write has failed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stats.accepted.load(std::sync::atomic::Ordering::Relaxed) < before + 3
        || stats.failed_writes.load(std::sync::atomic::Ordering::Relaxed) == 0
    {
        assert!(tokio::time::Instant::now() < deadline, "checks kept running during the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let restart = config.clone();
    let pg = tokio::task::spawn_blocking(move || EmbeddedPg::start(&restart)).await.expect("join").expect("restarts");
    app.state.scheduler.stop();
    tokio::time::timeout(Duration::from_secs(60), app.flush()).await.expect("buffered results written after restart");

    let accepted = stats.accepted.load(std::sync::atomic::Ordering::Relaxed);
    let written = stats.written.load(std::sync::atomic::Ordering::Relaxed);
    let stored = results::count_results(&pool, Some(probe)).await.expect("count");
    assert_eq!(stats.dropped.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(written, accepted, "every accepted result written");
    assert_eq!(stored as u64, accepted, "and stored exactly once");
    assert!(accepted >= before + 3);
    app.stop().await;
    pool.close().await;
    drop(pg);
}

/// A run that claimed its window and died before rolling it up: readers still see every result
/// (from raw rows), results written into the window meanwhile count, and the next run finishes it.
#[tokio::test]
async fn a_window_left_pending_is_read_from_raw_and_finished_by_the_next_run() {
    let pool = common::fresh_db().await;
    let now = Utc::now();
    let start = rollups::Level::Hour.truncate(now) - chrono::Duration::hours(2);
    rollups::set_watermark(&pool, start).await.expect("watermark");
    let probe = Uuid::new_v4();
    let at = |m: i64| start + chrono::Duration::minutes(m) + chrono::Duration::seconds(5);
    store(&pool, &(0..90).map(|m| server::cli::bench::sample(probe, at(m), 1_000)).collect::<Vec<_>>()).await;
    pipeline::roll_up_to(&pool, start + chrono::Duration::minutes(60)).await.expect("first hour");
    // The claim of the next window, as a run does it, then nothing: the run "died".
    let claimed_to = start + chrono::Duration::minutes(80);
    sqlx::query("update rollup_watermark set watermark = $1, pending_from = $2, pending_to = $1")
        .bind(claimed_to)
        .bind(start + chrono::Duration::minutes(60))
        .execute(&pool)
        .await
        .expect("claim");
    // A result written into the claimed window afterwards is late: queued as dirty.
    store(&pool, &[server::cli::bench::sample(probe, at(70), 2_000)]).await;
    let count = |s: &app::model::Series| s.points.iter().map(|p| p.count).sum::<u64>();
    let end = start + chrono::Duration::minutes(100);
    let during = series::series(&pool, probe, start, end, Some(3600)).await.expect("series");
    assert_eq!(count(&during), 91, "the pending window is read from raw rows");
    assert_eq!(rollups::watermark(&pool).await.expect("watermark"), start + chrono::Duration::minutes(60));
    pipeline::roll_up_to(&pool, end).await.expect("the next runs");
    let after = series::series(&pool, probe, start, end, Some(3600)).await.expect("series");
    assert_eq!(count(&after), 91, "finished: nothing lost, nothing counted twice");
    let (from, to): (Option<chrono::DateTime<Utc>>, Option<chrono::DateTime<Utc>>) =
        sqlx::query_as("select pending_from, pending_to from rollup_watermark").fetch_one(&pool).await.expect("row");
    assert!(from.is_none() && to.is_none());
    assert_eq!(
        rollups::watermark(&pool).await.expect("watermark"),
        rollups::Level::Minute.truncate(end),
        "and went on"
    );
    let summary = series::summaries(&pool, &[probe], start, end).await.expect("summaries");
    assert_eq!(summary[&probe].count(), 91);
}
