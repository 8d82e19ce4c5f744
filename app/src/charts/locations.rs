//! Latency by location: one p95 line per location of a probe run from several, on the service
//! page's time axis, so "slow from eu-west only" shows as one line leaving the others.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, ChartInput, Frame};
use super::{ChartSize, palette};
use crate::model::SeriesPoint;

/// One location's line: its name and its buckets (`p95_ms`).
#[derive(Clone, Debug, PartialEq)]
pub struct LocationLine {
    pub name: String,
    pub points: Vec<SeriesPoint>,
}

/// Line colours in turn; more locations than colours repeat them (the legend still names each).
const COLORS: [RGBColor; 6] = [palette::P50, palette::P95, palette::P99, palette::NET, palette::WARN, palette::REF];

pub fn render_svg(input: &ChartInput<'_>, lines: &[LocationLine], size: ChartSize) -> String {
    let latest: Vec<String> = lines
        .iter()
        .filter_map(|l| l.points.iter().rev().find_map(|p| p.p95_ms).map(|ms| format!("{} {ms:.0} ms", l.name)))
        .collect();
    let desc = if latest.is_empty() {
        "no latency data in this range".into()
    } else {
        format!("latest p95: {}", latest.join(", "))
    };
    super::render_svg(size, "Latency p95 by location", &desc, |area| draw(area, input, lines))
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &ChartInput<'_>,
    lines: &[LocationLine],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let y_max = lines.iter().flat_map(|l| l.points.iter().filter_map(|p| p.p95_ms)).fold(0.0, f64::max);
    if lines.iter().all(|l| l.points.iter().all(|p| p.p95_ms.is_none())) {
        return frame::empty(area);
    }
    let frame = Frame::new(area.dim_in_pixel(), input, y_max);
    frame::axes(area, &frame, input, " ms")?;
    for (i, line) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let own = ChartInput { points: &line.points, ..*input };
        frame::line(area, &frame, &own, |p| p.p95_ms, color.stroke_width(2))?;
    }
    let legend: Vec<(&str, RGBColor)> =
        lines.iter().enumerate().map(|(i, l)| (l.name.as_str(), COLORS[i % COLORS.len()])).collect();
    frame::legend(area, &frame, &legend, 70)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn each_location_gets_a_line_and_a_key() {
        let from = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).single().unwrap_or_default();
        let line = |name: &str, ms: f64| LocationLine {
            name: name.into(),
            points: (0..10)
                .map(|i| SeriesPoint {
                    at: from + Duration::minutes(i),
                    count: 1,
                    p95_ms: Some(ms),
                    ..Default::default()
                })
                .collect(),
        };
        let input = ChartInput {
            from,
            to: from + Duration::minutes(10),
            step_secs: 60,
            points: &[],
            bands: &[],
            markers: &[],
            changes: &[],
        };
        let svg =
            render_svg(&input, &[line("local", 20.0), line("eu-west", 180.0)], ChartSize { width: 600, height: 160 });
        assert!(svg.contains("eu-west 180 ms"), "the description gives each latest p95: {svg}");
        let legend = svg.split("</desc>").nth(1).unwrap_or_default();
        assert!(legend.contains("local") && legend.contains("eu-west"), "both named in the legend: {svg}");
        let lines = |color: &str| svg.matches(&format!("stroke=\"var(--chart-{color})\" stroke-width=\"2\"")).count();
        assert_eq!((lines("p50"), lines("p95")), (1, 1), "one line per location, each its colour");
        let none = render_svg(&input, &[], ChartSize { width: 600, height: 160 });
        assert!(none.contains("No data in this range"));
    }
}
