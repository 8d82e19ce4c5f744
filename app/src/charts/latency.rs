//! Latency percentiles (p50, p95, p99) of a service's checks over time.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, ChartInput, Frame};
use super::{ChartSize, palette};

pub fn render_svg(input: &ChartInput<'_>, size: ChartSize) -> String {
    let desc = match input.points.iter().rev().find_map(|p| p.p95_ms) {
        Some(ms) => format!("latest p95 {ms:.0} ms"),
        None => "no latency data in this range".into(),
    };
    super::render_svg(size, "Latency p50 / p95 / p99", &desc, |area| draw(area, input))
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &ChartInput<'_>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let y_max = input.points.iter().filter_map(|p| p.p99_ms.or(p.p95_ms)).fold(0.0, f64::max);
    if input.points.iter().all(|p| p.p50_ms.is_none()) {
        return frame::empty(area);
    }
    let frame = Frame::new(area.dim_in_pixel(), input, y_max);
    frame::axes(area, &frame, input, " ms")?;
    frame::line(area, &frame, input, |p| p.p99_ms, palette::P99.stroke_width(1))?;
    frame::line(area, &frame, input, |p| p.p95_ms, palette::P95.stroke_width(2))?;
    frame::line(area, &frame, input, |p| p.p50_ms, palette::P50.stroke_width(2))?;
    let legend = [("p50", palette::P50), ("p95", palette::P95), ("p99", palette::P99)];
    frame::legend(area, &frame, &legend, 40)?;
    Ok(())
}
