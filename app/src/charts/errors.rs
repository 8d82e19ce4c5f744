//! Error rate over time, each bucket's bar split by error class.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, ChartInput, Frame};
use super::{ChartSize, palette};
use crate::model::ErrorClass;

/// Classes grouped by what an on-call engineer does next: answers that were wrong, answers that
/// never came, and the network path in between.
fn group(class: ErrorClass) -> usize {
    match class {
        ErrorClass::Status
        | ErrorClass::Assertion
        | ErrorClass::Parse
        | ErrorClass::BodyTooLarge
        | ErrorClass::PoolSaturated => 0,
        ErrorClass::Timeout | ErrorClass::MissedHeartbeat => 1,
        _ => 2,
    }
}

const GROUPS: [(&str, RGBColor); 3] =
    [("status / assertion", palette::BAD), ("timeout", palette::WARN), ("network / TLS", palette::NET)];

pub fn render_svg(input: &ChartInput<'_>, size: ChartSize) -> String {
    let desc = match input.points.iter().rev().find_map(|p| p.error_pct) {
        Some(pct) => format!("latest error rate {pct:.1} %"),
        None => "no checks in this range".into(),
    };
    super::render_svg(size, "Error rate", &desc, |area| draw(area, input))
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &ChartInput<'_>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if input.points.iter().all(|p| p.count == 0) {
        return frame::empty(area);
    }
    let y_max = input.points.iter().filter_map(|p| p.error_pct).fold(1.0, f64::max);
    let frame = Frame::new(area.dim_in_pixel(), input, y_max);
    frame::axes(area, &frame, input, " %")?;
    let step = chrono::Duration::seconds(i64::try_from(input.step_secs).unwrap_or(60));
    for p in input.points.iter().filter(|p| p.count > 0 && p.down > 0) {
        let mut shares = [0.0f64; 3];
        for (class, n) in &p.errors {
            shares[group(*class)] += *n as f64 * 100.0 / p.count as f64;
        }
        let (a, b) = (frame.x(p.at), frame.x(p.at + step).max(frame.x(p.at) + 1));
        let mut base = 0.0;
        for (i, share) in shares.iter().enumerate() {
            if *share <= 0.0 {
                continue;
            }
            let (top, bottom) = (frame.y(base + share), frame.y(base));
            area.draw(&Rectangle::new([(a, top), (b, bottom)], GROUPS[i].1.filled()))?;
            base += share;
        }
    }
    frame::legend(area, &frame, &GROUPS, 110)?;
    Ok(())
}
