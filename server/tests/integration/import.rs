//! Moving over from another tool: the importers through the API (a dry run writes nothing, a real
//! one creates and schedules, a malformed file is one 400 naming its position) and through the
//! command line (`triage import … --dry-run`, and exit code 2 on a malformed file). Fixtures that
//! name hosts outside this machine are only ever imported as a dry run or paused.

use std::time::Duration;

use app::model::{Outcome, Probe};
use serde_json::Value;
use server::monitor::hub::ProbeEvent;

use crate::common::{health_target, spawn_app, triage, wait_events};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/import");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test]
async fn a_gatus_file_is_imported_through_the_api_dry_run_first() {
    let app = spawn_app().await;
    let (target, _status) = health_target(200).await;
    // A label too long for a service tag: dropped and listed, not a failed import.
    let long = "x".repeat(70);
    let config = format!(
        "endpoints:\n  - name: shop health\n    group: shop\n    url: http://{target}/health\n    interval: 1s\n    \
         extra-labels:\n      owner: {long}\n    \
         conditions:\n      - \"[STATUS] == 200\"\n    alerts:\n      - type: slack\n"
    );
    let post = |dry: bool| {
        app.client
            .post(app.url(&format!("/api/v1/import/gatus?dry_run={dry}")))
            .header("content-type", "text/plain")
            .body(config.clone())
            .send()
    };
    let dry: Value = post(true).await.expect("import").json().await.expect("report");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["services_created"], serde_json::json!(["shop"]));
    assert_eq!(dry["probes"][0]["outcome"], "would_create");
    assert!(dry["unmapped"].as_array().is_some_and(|u| u.iter().any(|x| x["place"] == "endpoints[0].alerts")), "{dry}");
    let dropped = dry["unmapped"].as_array().and_then(|u| u.iter().find(|x| x["place"] == "service \"shop\"")).cloned();
    assert!(dropped.is_some_and(|x| x["what"].as_str().is_some_and(|w| w.contains("tag(s) dropped"))), "{dry}");
    let stored: Vec<Probe> = app.get_json("/api/v1/probes").await;
    assert!(stored.is_empty(), "a dry run writes nothing");

    let mut hub = app.state.hub.subscribe();
    let res = post(false).await.expect("import");
    assert_eq!(res.status().as_u16(), 200);
    let report: Value = res.json().await.expect("report");
    assert_eq!(report["probes"][0]["outcome"], "created");
    let stored: Vec<Probe> = app.get_json("/api/v1/probes").await;
    assert_eq!(stored.len(), 1);
    let probe = &stored[0];
    assert_eq!((probe.spec.name.as_str(), probe.service.as_str()), ("shop health", "shop"));
    // Scheduled at once: its first result arrives.
    let id = probe.id;
    let got = wait_events(
        &mut hub,
        1,
        Duration::from_secs(20),
        move |e| matches!(e, ProbeEvent::Result(result) if result.probe_id == id),
    )
    .await;
    let ProbeEvent::Result(result) = &got[0] else { unreachable!("filtered above") };
    assert_eq!(result.outcome, Outcome::Up);

    // Importing again leaves the existing probe alone.
    let again: Value = post(false).await.expect("import").json().await.expect("report");
    assert_eq!(again["probes"][0]["outcome"], "exists");
    assert_eq!(app.get_json::<Vec<Probe>>("/api/v1/probes").await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn malformed_files_get_one_line_naming_the_position_and_write_nothing() {
    let app = spawn_app().await;
    for (source, file) in [("kuma", "kuma-malformed.json"), ("gatus", "gatus-malformed.yaml")] {
        let res = app
            .client
            .post(app.url(&format!("/api/v1/import/{source}")))
            .body(fixture(file))
            .send()
            .await
            .expect("import");
        assert_eq!(res.status().as_u16(), 400, "{source}");
        let body: Value = res.json().await.expect("error body");
        assert_eq!(body["field"], "file");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("line ") && !message.contains('\n'), "{source}: {message}");
    }
    let unknown = app.client.post(app.url("/api/v1/import/nagios")).body("x").send().await.expect("import");
    assert_eq!(unknown.status().as_u16(), 400);
    assert!(app.get_json::<Vec<Probe>>("/api/v1/probes").await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_blackbox_import_takes_both_files_as_a_form() {
    let app = spawn_app().await;
    let form = reqwest::multipart::Form::new()
        .part(
            "prometheus",
            reqwest::multipart::Part::text(fixture("blackbox-prometheus.yml")).file_name("prometheus.yml"),
        )
        .part("modules", reqwest::multipart::Part::text(fixture("blackbox-modules.yml")).file_name("blackbox.yml"));
    // The fixture names hosts outside this machine: a dry run only.
    let res =
        app.client.post(app.url("/api/v1/import/blackbox?dry_run=true")).multipart(form).send().await.expect("import");
    assert_eq!(res.status().as_u16(), 200);
    let report: Value = res.json().await.expect("report");
    let plan = server::monitor::import::blackbox::plan(
        "prometheus.yml",
        &fixture("blackbox-prometheus.yml"),
        "blackbox.yml",
        &fixture("blackbox-modules.yml"),
    )
    .expect("plan");
    assert_eq!(report["probes"].as_array().map(Vec::len), Some(plan.probes.len()));
    assert_eq!(report["unmapped"].as_array().map(Vec::len), Some(plan.unmapped.len()));
    let only_one =
        reqwest::multipart::Form::new().part("prometheus", reqwest::multipart::Part::text("scrape_configs: []"));
    let res = app.client.post(app.url("/api/v1/import/blackbox")).multipart(only_one).send().await.expect("import");
    assert_eq!(res.status().as_u16(), 400);
    assert!(app.get_json::<Vec<Probe>>("/api/v1/probes").await.is_empty());
    app.stop().await;
}

#[test]
fn the_command_line_import_prints_the_plan_and_refuses_a_malformed_file_with_exit_code_2() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = triage()
        .args(["import", "kuma", &format!("{FIXTURES}/kuma-backup.json"), "--dry-run", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("run import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan = server::monitor::import::kuma::plan("kuma-backup.json", &fixture("kuma-backup.json")).expect("plan");
    assert_eq!(stdout.matches("probe would create: ").count(), plan.probes.len(), "{stdout}");
    assert!(stdout.contains(&format!("not imported ({}):", plan.unmapped.len())), "{stdout}");

    let out = triage()
        .args(["import", "gatus", &format!("{FIXTURES}/gatus-malformed.yaml"), "--data-dir"])
        .arg(data.path())
        .output()
        .expect("run import");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("gatus-malformed.yaml: line "), "{stderr}");
}
