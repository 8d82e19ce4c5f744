//! Time to detect and time to resolve across incidents, one point per postmortem at the
//! incident's start: whether the team is getting faster shows as the lines' trend.

use chrono::{DateTime, Duration, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::timeline::{self, ChartInput, Frame};
use super::{ChartSize, palette};

/// One incident's figures, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseTimes {
    pub at: DateTime<Utc>,
    pub detect_secs: Option<i64>,
    pub resolve_secs: Option<i64>,
}

fn minutes(secs: Option<i64>) -> Option<f64> {
    secs.map(|s| s as f64 / 60.0)
}

fn mean(values: impl Iterator<Item = Option<i64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().map(|s| s as f64 / 60.0).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

pub fn render_svg(points: &[ResponseTimes], size: ChartSize) -> String {
    let desc = match (mean(points.iter().map(|p| p.detect_secs)), mean(points.iter().map(|p| p.resolve_secs))) {
        (Some(d), Some(r)) => {
            format!("{} incidents: mean time to detect {d:.1} min, to resolve {r:.1} min", points.len())
        }
        (Some(d), None) => format!("{} incidents: mean time to detect {d:.1} min, none resolved", points.len()),
        _ => "no incident has response times yet".into(),
    };
    super::render_svg(size, "Time to detect and to resolve, per incident", &desc, |area| draw(area, points))
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[ResponseTimes],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut sorted: Vec<&ResponseTimes> =
        points.iter().filter(|p| p.detect_secs.is_some() || p.resolve_secs.is_some()).collect();
    if sorted.is_empty() {
        return timeline::empty(area);
    }
    sorted.sort_by_key(|p| p.at);
    let (first, last) = (sorted[0].at, sorted[sorted.len() - 1].at);
    // A margin either side keeps the first and last points off the axes.
    let pad = ((last - first) / 20).max(Duration::hours(1));
    let input = ChartInput { from: first - pad, to: last + pad, step_secs: 60, points: &[], bands: &[], markers: &[] };
    let y_max = sorted.iter().filter_map(|p| minutes(p.resolve_secs).or(minutes(p.detect_secs))).fold(0.0, f64::max);
    let frame = Frame::new(area.dim_in_pixel(), &input, y_max.max(1.0));
    timeline::axes(area, &frame, &input, " min")?;
    for (value, color) in [
        (&(|p: &ResponseTimes| minutes(p.resolve_secs)) as &dyn Fn(&ResponseTimes) -> Option<f64>, palette::P95),
        (&|p: &ResponseTimes| minutes(p.detect_secs), palette::P50),
    ] {
        let xy: Vec<(i32, i32)> = sorted.iter().filter_map(|p| value(p).map(|v| (frame.x(p.at), frame.y(v)))).collect();
        if xy.len() > 1 {
            area.draw(&PathElement::new(xy.clone(), color.stroke_width(2)))?;
        }
        for point in xy {
            area.draw(&Circle::new(point, 3, color.filled()))?;
        }
    }
    timeline::legend(area, &frame, &[("detect", palette::P50), ("resolve", palette::P95)], 64)?;
    Ok(())
}
