//! Fixed chart data shared by the chart tests: fifteen minutes with a five-minute gap.

use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeMap;

use super::ChartSize;
use super::frame::ChartInput;
use crate::model::{ErrorClass, PoolReading, SeriesPoint};

pub const SIZE: ChartSize = ChartSize { width: 600, height: 160 };

pub fn at(min: u32) -> DateTime<Utc> {
    // invariant: test-only module (charts/mod.rs compiles it under #[cfg(test)]); a fixed valid
    // date, so it cannot fail.
    Utc.with_ymd_and_hms(2026, 11, 23, 3, min, 0).single().expect("valid")
}

pub fn point(min: u32, p95: f64, down: u64) -> SeriesPoint {
    SeriesPoint {
        at: at(min),
        count: 10,
        up: 10 - down,
        degraded: 0,
        down,
        error_pct: Some(down as f64 * 10.0),
        errors: if down > 0 { BTreeMap::from([(ErrorClass::Timeout, down)]) } else { BTreeMap::new() },
        p50_ms: Some(p95 / 2.0),
        p95_ms: Some(p95),
        p99_ms: Some(p95 * 1.5),
        phases_ms: Some(crate::model::PhaseMeans {
            dns: 1.0,
            connect: 2.0,
            tls: 0.0,
            ttfb: p95 / 2.0 - 4.0,
            transfer: 1.0,
        }),
        pool: Some(PoolReading {
            in_use: Some(8.0),
            idle: Some(2.0),
            max: Some(10.0),
            waiting: Some(down as f64),
            ..Default::default()
        }),
        // One echo lost in five on every failing minute, all of them at minute 12.
        loss_pct: Some(if min == 12 { 100.0 } else { down as f64 * 20.0 }),
    }
}

/// Minutes 0–4 with data, 5–9 missing (a gap), 10–14 with data.
pub fn points() -> Vec<SeriesPoint> {
    (0..15).filter(|m| !(5..10).contains(m)).map(|m| point(m, 40.0 + f64::from(m), u64::from(m % 3 == 0))).collect()
}

pub fn input(points: &[SeriesPoint]) -> ChartInput<'_> {
    ChartInput { from: at(0), to: at(15), step_secs: 60, points, bands: &[], markers: &[], changes: &[] }
}
