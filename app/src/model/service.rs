//! The service page: the service, its probes, chart series over the chosen window, recent
//! results and state changes; and the window itself as it appears in the page's URL.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::{Probe, ProbeResult, SeriesPoint, Service, StateChange};

/// Range presets of the service page, as they appear in its URL (`?range=6h`).
pub const RANGES: [(&str, i64); 6] =
    [("15m", 900), ("1h", 3_600), ("6h", 21_600), ("24h", 86_400), ("7d", 604_800), ("30d", 2_592_000)];

pub const DEFAULT_RANGE: &str = "1h";

/// The shortest window a chart zooms to: below a minute there is at most one check per probe.
pub const MIN_WINDOW_SECS: i64 = 60;
/// The longest custom window (a year); rollups older than that are pruned anyway.
pub const MAX_WINDOW_SECS: i64 = 366 * 86_400;

/// The preset's length in seconds; unknown names fall back to the default.
pub fn range_secs(name: &str) -> (&'static str, i64) {
    RANGES.iter().copied().find(|(n, _)| *n == name).unwrap_or(("1h", 3_600))
}

/// What the charts show: a preset ending now (followed live), or a fixed window from a custom
/// range or a drag-zoom (paused: nothing moves under the reader's cursor).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Window {
    Preset { name: String },
    Fixed { from: DateTime<Utc>, to: DateTime<Utc> },
}

impl Default for Window {
    fn default() -> Self {
        Window::Preset { name: DEFAULT_RANGE.into() }
    }
}

/// A custom window that cannot be shown: the query field at fault and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct WindowError {
    pub field: &'static str,
    pub message: String,
}

impl WindowError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

impl Window {
    /// Reads `range`, `from` and `to` query values. `from`/`to` (RFC 3339) win over `range`; a
    /// fixed window that is malformed, reversed or shorter than a minute is reported, so the page
    /// can say what was wrong instead of silently showing something else.
    pub fn from_query(range: Option<&str>, from: Option<&str>, to: Option<&str>) -> Result<Window, WindowError> {
        match (from, to) {
            (None, None) => Ok(Window::Preset { name: range_secs(range.unwrap_or(DEFAULT_RANGE)).0.to_string() }),
            (Some(f), Some(t)) => {
                let parse = |field: &'static str, v: &str| {
                    parse_time(v).ok_or_else(|| WindowError::new(field, "not a time (e.g. 2026-11-23T14:00:00Z)"))
                };
                Window::fixed(parse("from", f)?, parse("to", t)?)
            }
            (Some(_), None) => Err(WindowError::new("to", "missing (a custom range needs both from and to)")),
            (None, Some(_)) => Err(WindowError::new("from", "missing (a custom range needs both from and to)")),
        }
    }

    pub fn fixed(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Window, WindowError> {
        let span = (to - from).num_seconds();
        if span < MIN_WINDOW_SECS {
            return Err(WindowError::new("to", format!("must be at least {MIN_WINDOW_SECS} s after from")));
        }
        if span > MAX_WINDOW_SECS {
            return Err(WindowError::new("from", "a custom range spans at most 366 days"));
        }
        Ok(Window::Fixed { from, to })
    }

    /// The window's bounds at `now`.
    pub fn bounds(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            Window::Preset { name } => (now - Duration::seconds(range_secs(name).1), now),
            Window::Fixed { from, to } => (*from, (*to).min(now.max(*from + Duration::seconds(MIN_WINDOW_SECS)))),
        }
    }

    /// Whether the charts follow new results.
    pub fn is_live(&self) -> bool {
        matches!(self, Window::Preset { .. })
    }

    pub fn preset(&self) -> Option<&str> {
        match self {
            Window::Preset { name } => Some(name),
            Window::Fixed { .. } => None,
        }
    }

    /// The query string that reproduces this window (without `?`).
    pub fn query(&self) -> String {
        match self {
            Window::Preset { name } => format!("range={name}"),
            Window::Fixed { from, to } => format!("from={}&to={}", stamp(*from), stamp(*to)),
        }
    }

    /// The part `[a, b]` (fractions of the width, in either order) of the window shown from
    /// `from` to `to`: the drag-zoom target. Too narrow a selection widens to the minimum.
    pub fn zoom(from: DateTime<Utc>, to: DateTime<Utc>, a: f64, b: f64) -> Window {
        let span_ms = (to - from).num_milliseconds() as f64;
        let (lo, hi) = (a.min(b).clamp(0.0, 1.0), a.max(b).clamp(0.0, 1.0));
        let at = |f: f64| from + Duration::milliseconds((span_ms * f) as i64);
        let (mut start, mut end) = (at(lo), at(hi));
        if (end - start).num_seconds() < MIN_WINDOW_SECS {
            let mid = start + (end - start) / 2;
            start = mid - Duration::seconds(MIN_WINDOW_SECS / 2);
            end = mid + Duration::seconds(MIN_WINDOW_SECS / 2);
        }
        Window::Fixed { from: trunc(start), to: trunc(end) }
    }

    /// Twice as wide around the same centre; a window reaching past `now` becomes the smallest
    /// preset that covers it, so zooming out near the present returns to live.
    pub fn zoom_out(from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Window {
        let span = to - from;
        let (start, end) = (from - span / 2, to + span / 2);
        if end >= now {
            let need = (now - start).num_seconds();
            let name = RANGES.iter().find(|(_, s)| *s >= need).map_or(RANGES[RANGES.len() - 1].0, |(n, _)| n);
            return Window::Preset { name: name.to_string() };
        }
        Window::Fixed { from: trunc(start), to: trunc(end) }
    }
}

/// RFC 3339, or a browser's `datetime-local` value (`2026-11-23T14:00`) read as UTC, so the
/// custom-range form works without JavaScript too.
pub fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(v) {
        return Some(d.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(v, f).ok())
        .map(|n| n.and_utc())
}

/// The value of a `datetime-local` input for `t` (UTC).
pub fn local_input(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceView {
    pub service: Service,
    pub probes: Vec<Probe>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub step_secs: u64,
    /// The server's time when it answered: what "now" is for this view on both sides of
    /// hydration (the browser's clock may differ, and must not change the markup).
    pub now: DateTime<Utc>,
    /// Latency and errors of its HTTP, readiness and push probes, merged per bucket.
    pub traffic: Vec<SeriesPoint>,
    /// Pool gauges of its metrics probes.
    pub pool: Vec<SeriesPoint>,
    /// Newest results of all its probes in the window, newest first.
    pub recent: Vec<ProbeResult>,
    pub changes: Vec<StateChange>,
    /// Incidents of this service overlapping the window (drawn as bands on its charts).
    #[serde(default)]
    pub incidents: Vec<IncidentBand>,
    /// Maintenance windows of this service overlapping the window (drawn as bands too).
    #[serde(default)]
    pub maintenance: Vec<MaintenanceBand>,
    /// Deploys and other changes of this service in the window, oldest first (chart markers).
    #[serde(default)]
    pub change_events: Vec<crate::model::ChangeEvent>,
    /// The service's objective and how it stands, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<crate::model::SloStatus>,
    /// Its probes run from several locations, location by location (from raw results: empty
    /// for a window older than the raw retention).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<crate::model::LocationSummary>,
}

/// An occurrence of a maintenance window on a service's charts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceBand {
    pub title: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// An incident's window on a service's charts; `to` is none while it is open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentBand {
    pub number: i64,
    pub title: String,
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
}

/// The bucket of `points` (sorted, each `step_secs` wide) that contains `at`: what the shared
/// cursor's tooltip shows.
pub fn bucket_at(points: &[SeriesPoint], step_secs: u64, at: DateTime<Utc>) -> Option<&SeriesPoint> {
    let step = Duration::seconds(i64::try_from(step_secs).unwrap_or(60));
    let i = points.partition_point(|p| p.at <= at).checked_sub(1)?;
    (at < points[i].at + step).then(|| &points[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0).single().expect("valid")
    }

    #[test]
    fn presets_and_fallback() {
        assert_eq!(range_secs("7d"), ("7d", 604_800));
        assert_eq!(range_secs("2y"), ("1h", 3_600), "unknown presets fall back to the default");
        assert!(RANGES.windows(2).all(|w| w[0].1 < w[1].1));
    }

    #[test]
    fn windows_round_trip_through_the_query() {
        for w in
            [Window::default(), Window::Preset { name: "7d".into() }, Window::Fixed { from: t(10, 0), to: t(11, 30) }]
        {
            let q = w.query();
            let get = |k: &str| q.split('&').find_map(|kv| kv.strip_prefix(&format!("{k}=")));
            assert_eq!(Window::from_query(get("range"), get("from"), get("to")), Ok(w.clone()), "{q}");
        }
        assert_eq!(
            Window::Fixed { from: t(10, 0), to: t(11, 30) }.query(),
            "from=2026-11-23T10:00:00Z&to=2026-11-23T11:30:00Z"
        );
        assert_eq!(Window::from_query(Some("2y"), None, None), Ok(Window::default()));
        // What the custom-range form submits without JavaScript: datetime-local values, in UTC.
        let form = Window::from_query(None, Some(&local_input(t(10, 0))), Some("2026-11-23T11:30"));
        assert_eq!(form, Ok(Window::Fixed { from: t(10, 0), to: t(11, 30) }));
    }

    #[test]
    fn bad_custom_windows_name_the_field() {
        let e = |f, to| Window::from_query(None, f, to).expect_err("rejected").to_string();
        assert!(e(Some("yesterday"), Some("2026-11-23T10:00:00Z")).starts_with("from:"));
        assert!(e(Some("2026-11-23T10:00:00Z"), Some("2026-11-23T09:00:00Z")).starts_with("to:"));
        assert!(e(Some("2026-11-23T10:00:00Z"), Some("2026-11-23T10:00:30Z")).starts_with("to:"));
        assert!(e(Some("2026-11-23T10:00:00Z"), None).starts_with("to:"));
        assert!(e(None, Some("2026-11-23T10:00:00Z")).starts_with("from:"));
        assert!(e(Some("2020-01-01T00:00:00Z"), Some("2026-11-23T10:00:00Z")).starts_with("from:"));
    }

    #[test]
    fn zooming_selects_the_dragged_part_and_zooming_out_returns_to_live() {
        let (from, to) = (t(10, 0), t(11, 0));
        assert_eq!(Window::zoom(from, to, 0.75, 0.25), Window::Fixed { from: t(10, 15), to: t(10, 45) });
        let narrow = Window::zoom(from, to, 0.5, 0.5);
        assert_eq!(
            narrow,
            Window::Fixed {
                from: Utc.with_ymd_and_hms(2026, 11, 23, 10, 29, 30).unwrap(),
                to: Utc.with_ymd_and_hms(2026, 11, 23, 10, 30, 30).unwrap()
            }
        );
        assert!(!narrow.is_live());
        assert_eq!(Window::zoom_out(t(10, 15), t(10, 45), t(12, 0)), Window::Fixed { from: t(10, 0), to: t(11, 0) });
        // Near the present: the smallest preset covering 10:00 → now (2 h) is 6h, and it is live.
        let out = Window::zoom_out(t(10, 30), t(11, 30), t(12, 0));
        assert_eq!(out, Window::Preset { name: "6h".into() });
        assert!(out.is_live());
    }

    #[test]
    fn the_cursor_finds_the_bucket_it_is_in() {
        let point = |m| SeriesPoint { at: t(10, m), count: u64::from(m), ..Default::default() };
        let points = [point(0), point(5), point(20)];
        let count = |at| bucket_at(&points, 300, at).map(|p| p.count);
        assert_eq!(count(t(9, 59)), None, "before the first bucket");
        assert_eq!(count(t(10, 0)), Some(0));
        assert_eq!(count(t(10, 9)), Some(5));
        assert_eq!(count(t(10, 10)), None, "a missing bucket stays empty");
        assert_eq!(count(t(10, 24)), Some(20));
        assert_eq!(count(t(10, 25)), None);
    }

    #[test]
    fn a_fixed_window_ending_in_the_future_stops_at_now() {
        let w = Window::Fixed { from: t(10, 0), to: t(13, 0) };
        assert_eq!(w.bounds(t(12, 0)), (t(10, 0), t(12, 0)));
        assert_eq!(Window::default().bounds(t(12, 0)), (t(11, 0), t(12, 0)));
    }
}
