//! Packet loss of ICMP checks: lost echoes over sent echoes per bucket, as bars, so a path that
//! drops one packet in ten shows apart from a host that stopped answering.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, ChartInput, Frame};
use super::{ChartSize, palette};

pub fn render_svg(input: &ChartInput<'_>, size: ChartSize) -> String {
    let desc = match input.points.iter().rev().find_map(|p| p.loss_pct) {
        Some(pct) => format!("latest packet loss {pct:.1} %"),
        None => "no echoes in this range".into(),
    };
    super::render_svg(size, "Packet loss", &desc, |area| draw(area, input))
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    input: &ChartInput<'_>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if input.points.iter().all(|p| p.loss_pct.is_none()) {
        return frame::empty(area);
    }
    // Loss is a share: the axis reaches at least 10 % so a single lost echo does not fill it.
    let y_max = input.points.iter().filter_map(|p| p.loss_pct).fold(10.0, f64::max).min(100.0);
    let frame = Frame::new(area.dim_in_pixel(), input, y_max);
    frame::axes(area, &frame, input, " %")?;
    let step = chrono::Duration::seconds(i64::try_from(input.step_secs).unwrap_or(60));
    for p in input.points.iter() {
        let Some(loss) = p.loss_pct.filter(|l| *l > 0.0) else { continue };
        let (a, b) = (frame.x(p.at), frame.x(p.at + step).max(frame.x(p.at) + 1));
        let color = if loss >= 100.0 { palette::BAD } else { palette::WARN };
        area.draw(&Rectangle::new([(a, frame.y(loss)), (b, frame.y(0.0))], color.filled()))?;
    }
    frame::legend(area, &frame, &[("some lost", palette::WARN), ("all lost", palette::BAD)], 80)?;
    Ok(())
}
