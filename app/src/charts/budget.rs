//! Error budget over an objective's window: the share of the window's budget not yet spent,
//! hour by hour, for availability and (if set) latency. A line that reaches the bottom is a
//! budget spent; its slope is the burn.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, ChartInput, Frame};
use super::{ChartSize, palette};
use crate::model::SloStatus;

pub fn render_svg(slo: &SloStatus, size: ChartSize) -> String {
    let desc = match slo.budget.last() {
        Some(p) if p.availability_pct < 0.0 => {
            format!("the availability budget is overspent by {:.1} %", -p.availability_pct)
        }
        Some(p) => format!("{:.1} % of the availability budget left", p.availability_pct),
        None => "no checks in the window yet".into(),
    };
    super::render_svg(size, "Error budget left", &desc, |area| draw(area, slo))
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    slo: &SloStatus,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if slo.budget.is_empty() {
        return frame::empty(area);
    }
    let input = ChartInput {
        from: slo.window_from,
        to: slo.window_to,
        step_secs: 3600,
        points: &[],
        bands: &[],
        markers: &[],
        changes: &[],
    };
    let frame = Frame::new(area.dim_in_pixel(), &input, 100.0);
    frame::axes(area, &frame, &input, "%")?;
    // Overspent hours sit on the floor: how far below zero shows in the figures beside it.
    let path = |value: &dyn Fn(&crate::model::BudgetPoint) -> Option<f64>| -> Vec<(i32, i32)> {
        let mut points = vec![(frame.x(slo.window_from), frame.y(100.0))];
        points.extend(slo.budget.iter().filter_map(|p| Some((frame.x(p.at), frame.y(value(p)?.max(0.0))))));
        points
    };
    area.draw(&PathElement::new(path(&|p| Some(p.availability_pct)), palette::LINE.stroke_width(2)))?;
    let mut legend = vec![("availability", palette::LINE)];
    if slo.latency.is_some() {
        area.draw(&PathElement::new(path(&|p| p.latency_pct), palette::P95.stroke_width(2)))?;
        legend.push(("latency", palette::P95));
    }
    frame::legend(area, &frame, &legend, 84)?;
    Ok(())
}
