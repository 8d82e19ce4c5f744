//! Where the time of a check goes: the mean DNS, connect, TLS, time-to-first-byte and transfer
//! time per bucket, stacked. The alternative view of the latency chart (`?lat=phases`): a grown
//! TTFB points at the service, a grown connect or TLS at the network or the load balancer.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, ChartInput, Frame};
use super::{ChartSize, palette};
use crate::model::PhaseMeans;

/// A phase: its legend name, colour and value.
type Phase = (&'static str, RGBColor, fn(&PhaseMeans) -> f64);

const PHASES: [Phase; 5] = [
    ("DNS", palette::NET, |p| p.dns),
    ("connect", palette::P50, |p| p.connect),
    ("TLS", palette::WARN, |p| p.tls),
    ("TTFB", palette::P95, |p| p.ttfb),
    ("transfer", palette::P99, |p| p.transfer),
];

pub fn render_svg(input: &ChartInput<'_>, size: ChartSize) -> String {
    let desc = match input.points.iter().rev().find_map(|p| p.phases_ms) {
        Some(p) => format!(
            "latest means: DNS {:.1}, connect {:.1}, TLS {:.1}, TTFB {:.1}, transfer {:.1} ms",
            p.dns, p.connect, p.tls, p.ttfb, p.transfer
        ),
        None => "no timed checks with phases in this range".into(),
    };
    super::render_svg(size, "Latency by phase (mean)", &desc, |area| draw(area, input))
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &ChartInput<'_>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let total = |p: &PhaseMeans| PHASES.iter().map(|(_, _, f)| f(p)).sum::<f64>();
    let y_max = input.points.iter().filter_map(|p| p.phases_ms.as_ref()).map(total).fold(0.0, f64::max);
    if y_max <= 0.0 {
        return frame::empty(area);
    }
    let frame = Frame::new(area.dim_in_pixel(), input, y_max);
    frame::axes(area, &frame, input, " ms")?;
    let step = chrono::Duration::seconds(i64::try_from(input.step_secs).unwrap_or(60));
    for p in input.points {
        let Some(phases) = &p.phases_ms else { continue };
        let (a, b) = (frame.x(p.at), frame.x(p.at + step).max(frame.x(p.at) + 1));
        let mut base = 0.0;
        for (_, color, value) in PHASES {
            let v = value(phases);
            if v <= 0.0 {
                continue;
            }
            area.draw(&Rectangle::new([(a, frame.y(base + v)), (b, frame.y(base))], color.filled()))?;
            base += v;
        }
    }
    let legend: Vec<(&str, RGBColor)> = PHASES.iter().map(|(name, color, _)| (*name, *color)).collect();
    frame::legend(area, &frame, &legend, 62)?;
    Ok(())
}
