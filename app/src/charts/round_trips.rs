//! Database round-trip time of recent readiness checks (the status page).

use chrono::{DateTime, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{ChartSize, FONT, nice_ceiling, palette};
use crate::model::LatencySample;

const LEFT: i32 = 52;
const RIGHT: i32 = 12;
const TOP: i32 = 10;
const BOTTOM: i32 = 22;

pub fn render_svg(samples: &[LatencySample], size: ChartSize) -> String {
    let desc = match samples.last() {
        Some(LatencySample { latency_ms: Some(ms), .. }) => format!("{} checks; latest {ms:.1} ms", samples.len()),
        Some(_) => format!("{} checks; the latest failed", samples.len()),
        None => "no checks yet".to_string(),
    };
    super::render_svg(size, "Database round trip", &desc, |area| draw(area, samples))
}

/// Draws the round trips as a line (gaps where a check failed, marked below the axis).
pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    samples: &[LatencySample],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let (x0, x1, y0, y1) = (LEFT, w - RIGHT, TOP, h - BOTTOM);
    let label = |anchor: Pos| TextStyle::from((FONT, 11).into_font()).color(&palette::TEXT).pos(anchor);

    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return area.draw(&Text::new("No checks yet", (w / 2, h / 2), label(Pos::new(HPos::Center, VPos::Center))));
    };
    let y_max = nice_ceiling(samples.iter().filter_map(|s| s.latency_ms).fold(0.0, f64::max));
    let t0 = first.at;
    let span_ms = (last.at - t0).num_milliseconds().max(1) as f64;
    let x_of = |at: DateTime<Utc>| x0 + (((at - t0).num_milliseconds() as f64 / span_ms) * f64::from(x1 - x0)) as i32;
    let y_of = |ms: f64| y1 - ((ms / y_max).clamp(0.0, 1.0) * f64::from(y1 - y0)) as i32;

    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let y = y_of(v);
        let style = if i == 0 { palette::AXIS.stroke_width(1) } else { palette::GRID.stroke_width(1) };
        area.draw(&PathElement::new(vec![(x0, y), (x1, y)], style))?;
        area.draw(&Text::new(
            format!("{} ms", super::tick(v)),
            (x0 - 6, y),
            label(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    area.draw(&Text::new(t0.format("%H:%M:%S").to_string(), (x0, y1 + 6), label(Pos::new(HPos::Left, VPos::Top))))?;
    area.draw(&Text::new(
        last.at.format("%H:%M:%S UTC").to_string(),
        (x1, y1 + 6),
        label(Pos::new(HPos::Right, VPos::Top)),
    ))?;

    let mut segment: Vec<(i32, i32)> = Vec::new();
    let line = palette::LINE.stroke_width(2);
    for s in samples {
        match s.latency_ms {
            Some(ms) => segment.push((x_of(s.at), y_of(ms))),
            None => {
                if !segment.is_empty() {
                    area.draw(&PathElement::new(std::mem::take(&mut segment), line))?;
                }
                let x = x_of(s.at);
                area.draw(&Rectangle::new([(x - 2, y1 - 6), (x + 2, y1)], palette::BAD.filled()))?;
            }
        }
    }
    if segment.len() == 1 {
        area.draw(&Circle::new(segment[0], 3, palette::LINE.filled()))?;
    } else if !segment.is_empty() {
        area.draw(&PathElement::new(segment, line))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(sec: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, sec).single().expect("valid")
    }

    #[test]
    fn svg_is_accessible_themed_and_deterministic() {
        let samples = vec![
            LatencySample { at: at(0), latency_ms: Some(0.4) },
            LatencySample { at: at(10), latency_ms: None },
            LatencySample { at: at(20), latency_ms: Some(1.7) },
            LatencySample { at: at(30), latency_ms: Some(0.9) },
        ];
        let size = ChartSize { width: 400, height: 120 };
        let svg = render_svg(&samples, size);
        assert_eq!(svg, render_svg(&samples, size), "same input, same bytes");
        assert!(svg.contains("<title>Database round trip</title>"));
        assert!(svg.contains("<desc>4 checks; latest 0.9 ms</desc>"));
        assert!(svg.contains("var(--chart-line)") && svg.contains("var(--chart-bad)"));
        assert!(!svg.contains("#010204"), "sentinel colours are all replaced");
        let labels = texts(&svg);
        for tick in ["0 ms", "0.5 ms", "1 ms", "1.5 ms", "2 ms"] {
            assert!(labels.iter().any(|l| l == tick), "tick {tick} in {labels:?} (ceiling of 1.7 is 2)");
        }
        assert!(svg.contains("03:00:00") && svg.contains("03:00:30 UTC"));
        assert!(svg.contains("width=\"100%\"") && svg.contains("viewBox=\"0 0 400 120\""));
    }

    /// The text content of every `<text>` element.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let start = t.find('>')? + 1;
                let end = t.find("</text>")?;
                Some(t[start..end].trim().to_string())
            })
            .collect()
    }

    #[test]
    fn empty_history_says_so() {
        let svg = render_svg(&[], ChartSize { width: 300, height: 100 });
        assert!(svg.contains("No checks yet") && svg.contains("<desc>no checks yet</desc>"));
    }
}
