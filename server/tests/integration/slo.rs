//! Service level objectives against the real application and PostgreSQL: attainment, budget and
//! burn computed from the rollups agree with an exact count over the raw results, bad objectives
//! are refused by field, and a burn-rate alert fires for an outage of the size that must fire it
//! and not for one a check smaller.

use app::model::{BurnSpeed, ErrorClass, Objective, ProbeKind, ProbeResult, ProbeSpec, SloStatus};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::monitor::pipeline;
use server::respond::incidents::engine::{Engine, EngineSettings};
use server::storage::{results, rollups};
use uuid::Uuid;

use crate::common::{TestApp, spawn_app};

async fn send(app: &TestApp, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
    let res = app.client.request(method, app.url(path)).json(&body).send().await.expect("request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A service with one probe that never runs (the test writes its results itself).
async fn service_with_probe(app: &TestApp, name: &str) -> (Uuid, Uuid) {
    let (status, v) = send(app, reqwest::Method::POST, "/api/v1/services", json!({"name": name})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let service = v["id"].as_str().and_then(|s| s.parse().ok()).expect("id");
    let mut spec = ProbeSpec::new(&format!("{name}-probe"), name, ProbeKind::Http, Some("http://127.0.0.1:9/"));
    spec.enabled = false;
    let (status, v) =
        send(app, reqwest::Method::POST, "/api/v1/probes", serde_json::to_value(&spec).expect("spec")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let probe = v["probe"]["id"].as_str().or(v["id"].as_str()).and_then(|s| s.parse().ok()).expect("probe id");
    (service, probe)
}

fn check(probe: Uuid, at: DateTime<Utc>, us: u64, down: bool) -> ProbeResult {
    let mut r = server::cli::bench::sample(probe, at, us);
    if down {
        r.outcome = app::model::Outcome::Down;
        r.status = None;
        r.error = Some(ErrorClass::Connect);
    }
    r
}

async fn store(pool: &sqlx::PgPool, rows: &[ProbeResult]) {
    for day in rows.iter().map(|r| r.at.date_naive()).collect::<std::collections::BTreeSet<_>>() {
        results::ensure_partition(pool, day).await.expect("partition");
    }
    for chunk in rows.chunks(5_000) {
        results::write_batch(pool, Uuid::new_v4(), chunk, &[], &[]).await.expect("write");
    }
}

/// (all, down, timed, timed and at most `threshold_us`, timed within the threshold's histogram
/// bucket) over [from, to), counted on the raw rows.
async fn exact(
    pool: &sqlx::PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    threshold_us: i64,
) -> [f64; 5] {
    let timeout = ErrorClass::ALL.iter().position(|c| *c == ErrorClass::Timeout).expect("timeout") as i16;
    let bucket = rollups::histogram::bucket_of(threshold_us as u64);
    let (lo, hi) = (rollups::histogram::lower_bound(bucket), rollups::histogram::upper_bound(bucket));
    let row: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "with r as (select outcome, total_us, (status is not null or error_class is null or error_class = $5) as timed
                      from results where probe_id = any($1) and at >= $2 and at < $3)
         select count(*), count(*) filter (where outcome = 2), count(*) filter (where timed),
                count(*) filter (where timed and total_us <= $4),
                count(*) filter (where timed and total_us >= $6 and total_us < $7)
           from r",
    )
    .bind(probes)
    .bind(from)
    .bind(to)
    .bind(threshold_us)
    .bind(timeout)
    .bind(lo.ceil() as i64)
    .bind(hi.ceil() as i64)
    .fetch_one(pool)
    .await
    .expect("exact counts");
    [row.0 as f64, row.1 as f64, row.2 as f64, row.3 as f64, row.4 as f64]
}

#[tokio::test]
async fn attainment_budget_and_burn_match_an_exact_count_of_the_raw_results() {
    let app = spawn_app().await;
    let (shop, p1) = service_with_probe(&app, "shop").await;
    let (other, foreign) = service_with_probe(&app, "other").await;
    let p2 = {
        let mut spec = ProbeSpec::new("shop-second", "shop", ProbeKind::Http, Some("http://127.0.0.1:9/"));
        spec.enabled = false;
        let (status, v) =
            send(&app, reqwest::Method::POST, "/api/v1/probes", serde_json::to_value(&spec).expect("spec")).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["probe"]["id"].as_str().or(v["id"].as_str()).and_then(|s| s.parse::<Uuid>().ok()).expect("probe id")
    };
    let path = format!("/api/v1/services/{shop}/slo");
    let res = app.client.get(app.url(&path)).send().await.expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "no objective yet");

    // Refused by field, nothing stored.
    let base = json!({"availability_target": 99.5, "window_days": 28});
    for (patch, field) in [
        (json!({"availability_target": 100}), "availability_target"),
        (json!({"availability_target": "high"}), "availability_target"),
        (json!({"window_days": 7}), "window_days"),
        (json!({"latency_ms": 300}), "latency_target"),
        (json!({"latency_ms": 0, "latency_target": 99}), "latency_ms"),
        (json!({"probes": [foreign]}), "probes"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let mut body = base.clone();
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, v) = send(&app, reqwest::Method::PUT, &path, body.clone()).await;
        assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{body} → {v}");
    }
    let res = app.client.get(app.url(&path)).send().await.expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "nothing stored by a refused objective");
    let (status, _) =
        send(&app, reqwest::Method::PUT, &format!("/api/v1/services/{}/slo", Uuid::new_v4()), base.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no such service");

    // 30 hours of checks every 20 s from two probes (and a third, of another service, that must
    // not count): latency spread evenly over 50–600 ms, scattered failures and one outage.
    let now = Utc::now();
    let start = rollups::Level::Hour.truncate(now) - Duration::hours(30);
    rollups::set_watermark(&app.pool, start).await.expect("watermark");
    let mut rng = server::cli::bench::Rng(2026);
    let mut rows = Vec::new();
    let mut at = start;
    while at < now - Duration::minutes(2) {
        for probe in [p1, p2, foreign] {
            let us = 50_000 + (rng.unit() * 550_000.0) as u64;
            let outage = at > start + Duration::hours(20) && at < start + Duration::hours(20) + Duration::minutes(9);
            let down = rng.unit() < 0.003 || (outage && probe == p1);
            rows.push(check(probe, at, us, down));
        }
        at += Duration::seconds(20);
    }
    store(&app.pool, &rows).await;
    pipeline::roll_up_to(&app.pool, now).await.expect("rollup");

    let spec = json!({"availability_target": 99.5, "latency_ms": 300, "latency_target": 40, "window_days": 28});
    let (status, put) = send(&app, reqwest::Method::PUT, &path, spec).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    let (status, v) = send(&app, reqwest::Method::GET, &path, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let s: SloStatus = serde_json::from_value(v.clone()).expect("status");
    for field in [
        "attainment",
        "budget_remaining_pct",
        "budget_remaining_secs",
        "burn_rate_1h",
        "availability_target",
        "window_days",
    ] {
        assert!(v.get(field).is_some_and(|f| !f.is_null()), "{field} in {v}");
    }
    assert_eq!(s.window_from, rollups::Level::Hour.truncate(s.window_to - Duration::days(28)));

    let [all, down, timed, fast, in_bucket] = exact(&app.pool, &[p1, p2], s.window_from, s.window_to, 300_000).await;
    assert!(all > 10_000.0 && down > 20.0, "the data is there: {all} checks, {down} down");
    let want_attainment = 100.0 * (all - down) / all;
    let want_budget = 100.0 * (1.0 - (down / all) / 0.005);
    let want_secs = (0.005 - down / all) * (s.window_to - s.window_from).num_seconds() as f64;
    let got = (s.attainment.expect("attainment"), s.budget_remaining_pct.expect("budget"));
    println!(
        "availability: {:.6} % vs exact {want_attainment:.6} %; budget {:.6} % vs {want_budget:.6} %",
        got.0, got.1
    );
    assert!((got.0 - want_attainment).abs() <= 0.01, "attainment {} vs exact {want_attainment}", got.0);
    assert!((got.1 - want_budget).abs() <= 0.01, "budget {} vs exact {want_budget}", got.1);
    assert!((s.budget_remaining_secs.expect("secs") - want_secs).abs() <= 1.0, "budget seconds vs {want_secs}");
    assert_eq!((s.checks, s.bad_checks), (all, down), "every check counted once");
    let last = s.budget.last().expect("budget points");
    assert!((last.availability_pct - got.1).abs() < 1e-6, "the chart ends at the budget left");
    assert!(s.budget.windows(2).all(|w| w[0].availability_pct >= w[1].availability_pct), "a budget only shrinks");

    // Latency: exact except for the checks in the one bucket holding the threshold.
    let latency = s.latency.as_ref().expect("latency objective");
    let want = 100.0 * fast / timed;
    let got = latency.attainment.expect("latency attainment");
    let bound = 100.0 * in_bucket / timed;
    println!("latency: {got:.4} % vs exact {want:.4} % (bound {bound:.4} %: checks in the threshold's 2 % bucket)");
    assert!((got - want).abs() <= bound.max(0.01), "latency {got} vs exact {want}, bound {bound}");
    assert!((latency.checks - timed).abs() < 0.5);

    // The last hour's burn.
    let [h_all, h_down, ..] = exact(&app.pool, &[p1, p2], s.window_to - Duration::hours(1), s.window_to, 300_000).await;
    let want_burn = (h_down / h_all) / 0.005;
    assert!((s.burn_rate_1h.expect("burn") - want_burn).abs() <= 1e-9, "burn {:?} vs {want_burn}", s.burn_rate_1h);

    // Choosing probes counts only those.
    let (status, v) = send(
        &app,
        reqwest::Method::PUT,
        &path,
        json!({"availability_target": 99.5, "window_days": 30, "probes": [p2]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let s: SloStatus = serde_json::from_value(v).expect("status");
    let [all2, down2, ..] = exact(&app.pool, &[p2], s.window_from, s.window_to, 300_000).await;
    assert_eq!((s.checks, s.bad_checks), (all2, down2));
    assert!(s.latency.is_none());
    let res = app.client.get(app.url(&format!("/api/v1/services/{other}/slo"))).send().await.expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "other services have none");
    let res = app.anonymous.get(app.url(&path)).send().await.expect("get");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "signed-in users only");
    let res = app.client.delete(app.url(&path)).send().await.expect("delete");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.client.get(app.url(&path)).send().await.expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// The firing alerts in the database: (service, objective, speed, incident).
async fn firing(pool: &sqlx::PgPool) -> Vec<(Uuid, String, String, Option<Uuid>)> {
    sqlx::query_as(
        "select service_id, objective, speed, incident_id from slo_alerts where cleared_at is null order by speed",
    )
    .fetch_all(pool)
    .await
    .expect("alerts")
}

#[tokio::test]
async fn a_fast_burn_fires_for_an_outage_big_enough_and_not_for_one_check_less() {
    let app = spawn_app().await;
    let (big, p_big) = service_with_probe(&app, "big").await;
    let (small, p_small) = service_with_probe(&app, "small").await;
    let (slow, p_slow) = service_with_probe(&app, "slow").await;
    let (blip, p_blip) = service_with_probe(&app, "blip").await;
    let (planned, p_planned) = service_with_probe(&app, "planned").await;
    for s in [big, small, slow, blip, planned] {
        let (status, v) = send(
            &app,
            reqwest::Method::PUT,
            &format!("/api/v1/services/{s}/slo"),
            json!({"availability_target": 99.9, "window_days": 28}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    // Seven hours of checks every 10 s (360 an hour). At 99.9 % a fast alert needs 1.44 % of an
    // hour's checks bad: 6 of 360 fire it, 5 do not (1.39 %). The slow one needs 0.6 % of six
    // hours (13 of 2,160) and a bad check in the last 30 min; "slow" has 14, only 3 in the last hour.
    let to = rollups::Level::Minute.truncate(Utc::now());
    rollups::set_watermark(&app.pool, to - Duration::hours(8)).await.expect("watermark");
    let mut rows = Vec::new();
    for k in 1..=2_520i64 {
        let at = to - Duration::seconds(10 * k);
        rows.push(check(p_big, at, 20_000, k <= 6));
        rows.push(check(p_small, at, 20_000, k <= 5));
        let slow_bad = [10, 20, 30].contains(&k) || (400..=2_000).step_by(150).any(|b| b == k);
        rows.push(check(p_slow, at, 20_000, slow_bad));
        // One check a minute and one failed check: 1.7 % of its hour, over the fast threshold,
        // yet a single failure is no outage.
        if k % 6 == 0 {
            rows.push(check(p_blip, at, 20_000, k == 6));
        }
        // The same outage as "big", but inside a maintenance window that ended a minute ago.
        rows.push(check(p_planned, at, 20_000, (7..=12).contains(&k)));
    }
    let window = json!({
        "title": "db upgrade",
        "services": [planned],
        "starts_at": (to - Duration::minutes(5)).to_rfc3339(),
        "ends_at": (to - Duration::minutes(1)).to_rfc3339(),
    });
    let (status, v) = send(&app, reqwest::Method::POST, "/api/v1/maintenance", window).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(rows.iter().filter(|r| r.probe_id == p_slow && r.outcome == app::model::Outcome::Down).count(), 14);
    store(&app.pool, &rows).await;
    pipeline::roll_up_to(&app.pool, Utc::now()).await.expect("rollup");

    let engine = Engine {
        pool: app.pool.clone(),
        rooms: app.state.incidents.rooms.clone(),
        settings: EngineSettings::default(),
    };
    engine.judge_burn_rates().await.expect("judged");
    engine.judge_burn_rates().await.expect("judged again: nothing doubles");
    let alerts = firing(&app.pool).await;
    let of = |s: Uuid| alerts.iter().filter(|a| a.0 == s).map(|a| (a.1.as_str(), a.2.as_str())).collect::<Vec<_>>();
    assert_eq!(of(big), [("availability", "fast")], "{alerts:?}");
    assert_eq!(of(small), Vec::<(&str, &str)>::new(), "one check less does not fire");
    assert_eq!(of(slow), [("availability", "slow")], "{alerts:?}");
    assert_eq!(of(blip), Vec::<(&str, &str)>::new(), "one failed check of a quiet probe pages nobody");
    assert_eq!(of(planned), Vec::<(&str, &str)>::new(), "planned downtime pages nobody once the window is over");

    // The fast burn opened one incident for its service; the slow one only notifies.
    let incident = alerts.iter().find(|a| a.0 == big).and_then(|a| a.3).expect("an incident for the fast burn");
    let (title, automatic): (String, bool) =
        sqlx::query_as("select title, automatic from incidents where incident_id = $1")
            .bind(incident)
            .fetch_one(&app.pool)
            .await
            .expect("incident");
    assert_eq!((title.as_str(), automatic), ("big: availability error budget burning fast", true));
    let incidents: i64 =
        sqlx::query_scalar("select count(*) from incidents").fetch_one(&app.pool).await.expect("count");
    assert_eq!(incidents, 1, "neither the smaller outage nor the slow burn opened one");
    let events: Vec<(String, Option<Uuid>)> = sqlx::query_as(
        "select kind, service_id from notification_events where kind in ('slo.burn', 'incident.opened') order by kind",
    )
    .fetch_all(&app.pool)
    .await
    .expect("events");
    assert_eq!(events, [("incident.opened".to_string(), None), ("slo.burn".to_string(), Some(slow))], "{events:?}");

    let s: SloStatus = app.get_json(&format!("/api/v1/services/{big}/slo")).await;
    let alert = s.alerts.first().expect("the alert on the SLO view");
    assert_eq!(
        (alert.objective, alert.speed, alert.incident_id),
        (Objective::Availability, BurnSpeed::Fast, Some(incident))
    );
    assert!(alert.long_burn >= 14.4 && alert.short_burn >= 14.4 && alert.cleared_at.is_none(), "{alert:?}");

    // A looser objective (1 % allowed) no longer burns that fast: the alert clears.
    let (status, _) = send(
        &app,
        reqwest::Method::PUT,
        &format!("/api/v1/services/{big}/slo"),
        json!({"availability_target": 99.0, "window_days": 28}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    engine.judge_burn_rates().await.expect("judged");
    let alerts = firing(&app.pool).await;
    assert!(alerts.iter().all(|a| a.0 != big), "cleared: {alerts:?}");
    let s: SloStatus = app.get_json(&format!("/api/v1/services/{big}/slo")).await;
    assert!(s.alerts.first().is_some_and(|a| a.cleared_at.is_some()), "kept as past");
}
