//! SVG snapshot tests: each chart drawn from fixed data (a full range with a gap, an empty range)
//! compared byte for byte with the files in `app/src/charts/snapshots/`. A change to a chart shows
//! up as a diff of those files; after checking the new drawing, regenerate them with
//! `UPDATE_SNAPSHOTS=1 cargo test -p app --features ssr charts::snapshots`.
//!
//! The SVGs carry no colours of their own, only `var(--chart-…)`: one snapshot serves both
//! themes, and the last test checks every variable a chart uses is defined for light and dark.

use std::path::PathBuf;

use super::fixtures::{SIZE, input, points};
use super::frame::Band;
use super::{ChartSize, errors, latency, loss, phases, pool, sparkline};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/charts/snapshots")
}

/// Four incidents over a week: one not yet resolved, one without any figure.
fn response_times() -> Vec<super::response_times::ResponseTimes> {
    use super::response_times::ResponseTimes;
    let day = |d: i64| super::fixtures::at(0) + chrono::Duration::days(d);
    vec![
        ResponseTimes { at: day(0), detect_secs: Some(240), resolve_secs: Some(3600) },
        ResponseTimes { at: day(2), detect_secs: Some(90), resolve_secs: Some(1500) },
        ResponseTimes { at: day(3), detect_secs: None, resolve_secs: None },
        ResponseTimes { at: day(6), detect_secs: Some(60), resolve_secs: None },
    ]
}

/// A 28-day objective spending its budget in two outages, the latency one more slowly.
fn slo(hours: i64) -> crate::model::SloStatus {
    let from = super::fixtures::at(0);
    let budget = (1..=hours)
        .map(|h| {
            let spent = if h > 200 { 30.0 } else { 0.0 } + if h > 500 { 85.0 } else { 0.0 };
            crate::model::BudgetPoint {
                at: from + chrono::Duration::hours(h),
                availability_pct: 100.0 - spent - h as f64 * 0.01,
                latency_pct: Some(100.0 - h as f64 * 0.05),
            }
        })
        .collect();
    crate::model::SloStatus {
        service_id: uuid::Uuid::nil(),
        availability_target: 99.9,
        latency_ms: Some(300),
        latency_target: Some(99.0),
        window_days: 28,
        probes: None,
        open_incidents: true,
        attainment: Some(99.88),
        budget_remaining_pct: Some(-22.0),
        budget_remaining_secs: Some(-532.0),
        burn_rate_1h: Some(0.4),
        checks: 80_640.0,
        bad_checks: 98.0,
        latency: Some(crate::model::ObjectiveStatus::new(
            99.0,
            crate::model::Tally { good: 79_900.0, total: 80_000.0 },
            crate::model::Tally::default(),
            28.0 * 86_400.0,
        )),
        window_from: from,
        window_to: from + chrono::Duration::days(28),
        budget,
        alerts: Vec::new(),
    }
}

/// Every snapshot: (file name, the SVG drawn now).
fn drawings() -> Vec<(&'static str, String)> {
    let pts = points();
    let bands = [Band { from: super::fixtures::at(11), to: super::fixtures::at(13), label: "INC-7".into() }];
    let banded = super::frame::ChartInput { bands: &bands, ..input(&pts) };
    let wide = ChartSize { width: 960, height: 200 };
    let changes = [
        super::frame::ChangeMark { at: super::fixtures::at(4), letter: "D" },
        super::frame::ChangeMark { at: super::fixtures::at(10), letter: "F" },
    ];
    let changed = super::frame::ChartInput { changes: &changes, ..input(&pts) };
    vec![
        ("latency.svg", latency::render_svg(&input(&pts), SIZE)),
        ("latency-band-wide.svg", latency::render_svg(&banded, wide)),
        ("latency-empty.svg", latency::render_svg(&input(&[]), SIZE)),
        ("latency-changes.svg", latency::render_svg(&changed, SIZE)),
        ("errors-changes.svg", errors::render_svg(&changed, SIZE)),
        ("phases.svg", phases::render_svg(&input(&pts), SIZE)),
        ("phases-empty.svg", phases::render_svg(&input(&[]), SIZE)),
        ("errors.svg", errors::render_svg(&input(&pts), SIZE)),
        ("errors-empty.svg", errors::render_svg(&input(&[]), SIZE)),
        ("pool.svg", pool::render_svg(&input(&pts), SIZE)),
        ("pool-empty.svg", pool::render_svg(&input(&[]), SIZE)),
        ("loss.svg", loss::render_svg(&input(&pts), SIZE)),
        ("loss-empty.svg", loss::render_svg(&input(&[]), SIZE)),
        ("sparkline.svg", sparkline::render_svg(&[Some(12.0), Some(14.0), None, Some(48.0), Some(13.0), Some(12.5)])),
        ("sparkline-empty.svg", sparkline::render_svg(&[None; 12])),
        ("response-times.svg", super::response_times::render_svg(&response_times(), SIZE)),
        ("response-times-empty.svg", super::response_times::render_svg(&[], SIZE)),
        ("budget.svg", super::budget::render_svg(&slo(672), SIZE)),
        ("budget-empty.svg", super::budget::render_svg(&slo(0), SIZE)),
    ]
}

#[test]
fn charts_match_their_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for (name, svg) in drawings() {
        let path = dir().join(name);
        if update {
            // invariant: test-only module (charts/mod.rs compiles it under #[cfg(test)]); a
            // snapshot that cannot be written must fail the run.
            std::fs::create_dir_all(dir()).expect("snapshot dir");
            std::fs::write(&path, &svg).expect("write snapshot");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == svg => {}
            Ok(_) => stale.push(format!("{name}: differs from the snapshot")),
            Err(e) => stale.push(format!("{name}: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:#?}\nif the new drawings are right: UPDATE_SNAPSHOTS=1 cargo test -p app --features ssr charts::snapshots"
    );
}

#[test]
fn every_colour_a_chart_uses_is_defined_in_both_themes() {
    // invariant: a test; the style sheet is part of the repository.
    let css = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../style/main.css"))
        .expect("style sheet");
    // The light theme is the first block defining chart colours; the dark one is the block
    // selected by `data-theme="dark"` (the system-dark block repeats it).
    let block = |start: &str| -> String {
        let from = css.find(start).unwrap_or_else(|| panic!("no {start} block"));
        let end = css[from..].find('}').map_or(css.len(), |i| from + i);
        css[from..end].to_string()
    };
    let (light, dark) = (block(":root {"), block(":root[data-theme=\"dark\"] {"));
    let mut used: Vec<String> = Vec::new();
    for (_, svg) in drawings() {
        for part in svg.split("var(--chart-").skip(1) {
            let name = part.split(')').next().unwrap_or_default().to_string();
            if !used.contains(&name) {
                used.push(name);
            }
        }
    }
    assert!(used.len() >= 8, "the charts use their palette: {used:?}");
    for name in &used {
        let decl = format!("--chart-{name}:");
        assert!(light.contains(&decl), "--chart-{name} missing from the light theme");
        assert!(dark.contains(&decl), "--chart-{name} missing from the dark theme");
    }
}
