//! The service page: the service, its probes, chart series over the chosen range, recent
//! results and state changes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Probe, ProbeResult, SeriesPoint, Service, StateChange};

/// Range presets of the service page, as they appear in its URL (`?range=6h`).
pub const RANGES: [(&str, i64); 6] =
    [("15m", 900), ("1h", 3_600), ("6h", 21_600), ("24h", 86_400), ("7d", 604_800), ("30d", 2_592_000)];

pub const DEFAULT_RANGE: &str = "1h";

/// The preset's length in seconds; unknown names fall back to the default.
pub fn range_secs(name: &str) -> (&'static str, i64) {
    RANGES.iter().copied().find(|(n, _)| *n == name).unwrap_or(("1h", 3_600))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    pub service: Service,
    pub probes: Vec<Probe>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub step_secs: u64,
    /// Latency and errors of its HTTP, readiness and push probes, merged per bucket.
    pub traffic: Vec<SeriesPoint>,
    /// Pool gauges of its metrics probes.
    pub pool: Vec<SeriesPoint>,
    /// Newest results of all its probes, newest first.
    pub recent: Vec<ProbeResult>,
    pub changes: Vec<StateChange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_fallback() {
        assert_eq!(range_secs("7d"), ("7d", 604_800));
        assert_eq!(range_secs("2y"), ("1h", 3_600), "unknown presets fall back to the default");
        assert!(RANGES.windows(2).all(|w| w[0].1 < w[1].1));
    }
}
