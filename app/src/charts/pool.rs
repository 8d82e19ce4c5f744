//! Connection pool: in use and waiting over time, the pool's maximum as the reference line, so
//! saturation (in use at the line, requests waiting) shows at a glance.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, ChartInput, Frame};
use super::{ChartSize, palette};

pub fn render_svg(input: &ChartInput<'_>, size: ChartSize) -> String {
    let last = input.points.iter().rev().find_map(|p| p.pool);
    let desc = match last {
        Some(p) => format!(
            "latest in use {} of {}, {} waiting",
            p.in_use.map_or("?".into(), |v| format!("{v:.0}")),
            p.max.map_or("?".into(), |v| format!("{v:.0}")),
            p.waiting.map_or("?".into(), |v| format!("{v:.0}"))
        ),
        None => "no pool data in this range".into(),
    };
    super::render_svg(size, "Connection pool", &desc, |area| draw(area, input))
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &ChartInput<'_>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if input.points.iter().all(|p| p.pool.is_none()) {
        return frame::empty(area);
    }
    let y_max = input
        .points
        .iter()
        .filter_map(|p| p.pool)
        .flat_map(|p| [p.in_use, p.max, p.waiting])
        .flatten()
        .fold(1.0, f64::max);
    let frame = Frame::new(area.dim_in_pixel(), input, y_max);
    frame::axes(area, &frame, input, "")?;
    frame::line(area, &frame, input, |p| p.pool.and_then(|x| x.max), palette::REF.stroke_width(1))?;
    frame::line(area, &frame, input, |p| p.pool.and_then(|x| x.waiting), palette::WARN.stroke_width(2))?;
    frame::line(area, &frame, input, |p| p.pool.and_then(|x| x.in_use), palette::LINE.stroke_width(2))?;
    let legend = [("in use", palette::LINE), ("waiting", palette::WARN), ("max", palette::REF)];
    frame::legend(area, &frame, &legend, 60)?;
    Ok(())
}
