//! Mean time to detect and to resolve across incidents over time: each incident is a dot at its
//! start, and the lines are the mean of the last few incidents (up to [`WINDOW`]), so one bad
//! incident does not hide the trend and one good one does not fake it.

use chrono::{DateTime, Duration, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::frame::{self, ChartInput, Frame};
use super::{ChartSize, palette};

/// One incident's figures, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseTimes {
    pub at: DateTime<Utc>,
    pub detect_secs: Option<i64>,
    pub resolve_secs: Option<i64>,
}

/// How many incidents each point of a mean line covers.
pub const WINDOW: usize = 5;

/// The mean of each value and the up to `WINDOW - 1` values before it.
pub fn running_mean(values: &[f64]) -> Vec<f64> {
    (0..values.len())
        .map(|i| {
            let part = &values[i.saturating_sub(WINDOW - 1)..=i];
            part.iter().sum::<f64>() / part.len() as f64
        })
        .collect()
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
    super::render_svg(size, "Mean time to detect and to resolve (MTTD / MTTR), over incidents", &desc, |area| {
        draw(area, points)
    })
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[ResponseTimes],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut sorted: Vec<&ResponseTimes> =
        points.iter().filter(|p| p.detect_secs.is_some() || p.resolve_secs.is_some()).collect();
    if sorted.is_empty() {
        return frame::empty(area);
    }
    sorted.sort_by_key(|p| p.at);
    let (first, last) = (sorted[0].at, sorted[sorted.len() - 1].at);
    // A margin either side keeps the first and last points off the axes.
    let pad = ((last - first) / 20).max(Duration::hours(1));
    let input = ChartInput {
        from: first - pad,
        to: last + pad,
        step_secs: 60,
        points: &[],
        bands: &[],
        markers: &[],
        changes: &[],
    };
    let y_max = sorted.iter().filter_map(|p| minutes(p.resolve_secs).or(minutes(p.detect_secs))).fold(0.0, f64::max);
    let frame = Frame::new(area.dim_in_pixel(), &input, y_max.max(1.0));
    frame::axes(area, &frame, &input, " min")?;
    for (value, color) in [
        (&(|p: &ResponseTimes| minutes(p.resolve_secs)) as &dyn Fn(&ResponseTimes) -> Option<f64>, palette::P95),
        (&|p: &ResponseTimes| minutes(p.detect_secs), palette::P50),
    ] {
        let known: Vec<(DateTime<Utc>, f64)> = sorted.iter().filter_map(|p| value(p).map(|v| (p.at, v))).collect();
        let values: Vec<f64> = known.iter().map(|(_, v)| *v).collect();
        let mean: Vec<(i32, i32)> =
            known.iter().zip(running_mean(&values)).map(|((at, _), m)| (frame.x(*at), frame.y(m))).collect();
        if mean.len() > 1 {
            area.draw(&PathElement::new(mean, color.stroke_width(2)))?;
        }
        for (at, v) in &known {
            area.draw(&Circle::new((frame.x(*at), frame.y(*v)), 3, color.filled()))?;
        }
    }
    frame::legend(area, &frame, &[("MTTD", palette::P50), ("MTTR", palette::P95)], 56)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_covers_the_last_few_incidents() {
        let v = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0];
        assert_eq!(running_mean(&v), vec![10.0, 15.0, 20.0, 25.0, 30.0, 40.0]);
        assert!(running_mean(&[]).is_empty());
    }
}
