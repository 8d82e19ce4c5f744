//! What the service charts share: one time axis (so the three stack and line up), value axes with
//! round ticks, and the input every chart takes. `bands` are shaded time ranges (incidents) drawn
//! behind the data; `markers` (timeline entries) and `changes` (change events) are lines across it.

use chrono::{DateTime, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FONT, nice_ceiling, palette, tick};
use crate::model::{ChangeEvent, SeriesPoint};

pub const LEFT: i32 = 56;
pub const RIGHT: i32 = 12;
pub const TOP: i32 = 10;
pub const BOTTOM: i32 = 22;

/// A shaded time range with a label, drawn behind a chart's data.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub label: String,
}

/// A moment marked on the time axis (a timeline entry), drawn as a thin line behind the data.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub at: DateTime<Utc>,
}

/// A change event on the time axis (a deploy, a config change, …): a line in the warning colour
/// with the kind's letter at the top, so "what changed just before this?" is answered by looking.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeMark {
    pub at: DateTime<Utc>,
    pub letter: &'static str,
}

impl ChangeMark {
    pub fn of(events: &[ChangeEvent]) -> Vec<ChangeMark> {
        events.iter().map(|c| ChangeMark { at: c.at, letter: c.kind.letter() }).collect()
    }
}

/// Everything a service chart draws from.
#[derive(Clone, Copy, Debug)]
pub struct ChartInput<'a> {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub step_secs: u64,
    pub points: &'a [SeriesPoint],
    pub bands: &'a [Band],
    pub markers: &'a [Marker],
    pub changes: &'a [ChangeMark],
}

/// Pixel geometry of the plot area and the mapping of time and value into it.
pub struct Frame {
    pub x0: i32,
    pub x1: i32,
    pub y0: i32,
    pub y1: i32,
    from: DateTime<Utc>,
    span_ms: f64,
    pub y_max: f64,
}

impl Frame {
    pub fn new(dim: (u32, u32), input: &ChartInput<'_>, y_max: f64) -> Self {
        let (w, h) = (dim.0 as i32, dim.1 as i32);
        Self {
            x0: LEFT,
            x1: w - RIGHT,
            y0: TOP,
            y1: h - BOTTOM,
            from: input.from,
            span_ms: (input.to - input.from).num_milliseconds().max(1) as f64,
            y_max: nice_ceiling(y_max),
        }
    }

    pub fn x(&self, at: DateTime<Utc>) -> i32 {
        let f = ((at - self.from).num_milliseconds() as f64 / self.span_ms).clamp(0.0, 1.0);
        self.x0 + (f * f64::from(self.x1 - self.x0)) as i32
    }

    pub fn y(&self, v: f64) -> i32 {
        self.y1 - ((v / self.y_max).clamp(0.0, 1.0) * f64::from(self.y1 - self.y0)) as i32
    }
}

pub fn label(anchor: Pos) -> TextStyle<'static> {
    TextStyle::from((FONT, 11).into_font()).color(&palette::TEXT).pos(anchor)
}

/// Grid, value ticks with `unit`, the time labels at both ends, and the bands.
pub fn axes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    frame: &Frame,
    input: &ChartInput<'_>,
    unit: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for band in input.bands {
        let (a, b) = (frame.x(band.from), frame.x(band.to).max(frame.x(band.from) + 2));
        area.draw(&Rectangle::new([(a, frame.y0), (b, frame.y1)], palette::BAND.filled()))?;
        area.draw(&Text::new(band.label.clone(), (a + 3, frame.y0 + 2), label(Pos::new(HPos::Left, VPos::Top))))?;
    }
    for m in input.markers {
        let x = frame.x(m.at);
        area.draw(&PathElement::new(vec![(x, frame.y0), (x, frame.y1)], palette::REF.stroke_width(1)))?;
    }
    for c in input.changes {
        let x = frame.x(c.at);
        area.draw(&PathElement::new(vec![(x, frame.y0), (x, frame.y1)], palette::WARN.stroke_width(1)))?;
        let style = TextStyle::from((FONT, 10).into_font()).color(&palette::WARN).pos(Pos::new(HPos::Left, VPos::Top));
        area.draw(&Text::new(c.letter, (x + 2, frame.y0), style))?;
    }
    for i in 0..=4 {
        let v = frame.y_max * f64::from(i) / 4.0;
        let y = frame.y(v);
        let style = if i == 0 { palette::AXIS.stroke_width(1) } else { palette::GRID.stroke_width(1) };
        area.draw(&PathElement::new(vec![(frame.x0, y), (frame.x1, y)], style))?;
        area.draw(&Text::new(
            format!("{}{unit}", tick(v)),
            (frame.x0 - 6, y),
            label(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    let fmt = if (input.to - input.from).num_hours() >= 24 { "%m-%d %H:%M" } else { "%H:%M" };
    area.draw(&Text::new(
        input.from.format(fmt).to_string(),
        (frame.x0, frame.y1 + 6),
        label(Pos::new(HPos::Left, VPos::Top)),
    ))?;
    area.draw(&Text::new(
        format!("{} UTC", input.to.format(fmt)),
        (frame.x1, frame.y1 + 6),
        label(Pos::new(HPos::Right, VPos::Top)),
    ))?;
    Ok(())
}

/// Draws `values` as a line, broken where a bucket has no value or buckets are missing.
pub fn line<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    frame: &Frame,
    input: &ChartInput<'_>,
    value: impl Fn(&SeriesPoint) -> Option<f64>,
    style: ShapeStyle,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let gap = chrono::Duration::seconds(i64::try_from(input.step_secs).unwrap_or(60) * 3 / 2);
    let mut segment: Vec<(i32, i32)> = Vec::new();
    let mut previous: Option<DateTime<Utc>> = None;
    let flush = |segment: &mut Vec<(i32, i32)>| -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        match segment.len() {
            0 => {}
            1 => area.draw(&Circle::new(segment[0], 2, style.filled()))?,
            _ => area.draw(&PathElement::new(std::mem::take(segment), style))?,
        }
        segment.clear();
        Ok(())
    };
    for p in input.points {
        let centre = p.at + chrono::Duration::seconds(i64::try_from(input.step_secs / 2).unwrap_or(30));
        if previous.is_some_and(|prev| p.at - prev > gap) {
            flush(&mut segment)?;
        }
        previous = Some(p.at);
        match value(p) {
            Some(v) => segment.push((frame.x(centre), frame.y(v))),
            None => flush(&mut segment)?,
        }
    }
    flush(&mut segment)
}

/// A row of colour keys in the top-right corner, `spacing` pixels apart.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    frame: &Frame,
    items: &[(&str, RGBColor)],
    spacing: i32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let start = frame.x1 - spacing * items.len() as i32;
    for (i, (name, color)) in items.iter().enumerate() {
        let x = start + spacing * i as i32;
        area.draw(&Rectangle::new([(x, frame.y0 + 2), (x + 8, frame.y0 + 10)], color.filled()))?;
        area.draw(&Text::new(*name, (x + 11, frame.y0 + 6), label(Pos::new(HPos::Left, VPos::Center))))?;
    }
    Ok(())
}

/// "No data in this range", centred.
pub fn empty<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        "No data in this range",
        (w as i32 / 2, h as i32 / 2),
        label(Pos::new(HPos::Center, VPos::Center)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::fixtures::{SIZE, at, input, point, points};
    use crate::charts::{ChartSize, errors, latency, pool};

    fn paths(svg: &str) -> usize {
        svg.matches("<polyline").count() + svg.matches("<path").count()
    }

    #[test]
    fn each_chart_is_deterministic_accessible_and_themed() {
        let pts = points();
        for (name, render) in [
            ("Latency p50 / p95 / p99", latency::render_svg as fn(&ChartInput<'_>, ChartSize) -> String),
            ("Error rate", errors::render_svg),
            ("Connection pool", pool::render_svg),
        ] {
            let svg = render(&input(&pts), SIZE);
            assert_eq!(svg, render(&input(&pts), SIZE), "{name}: same input, same bytes");
            assert!(svg.contains(&format!("<title>{name}</title>")), "{name}");
            assert!(svg.contains("<desc>"), "{name}");
            assert!(!svg.contains("#0102"), "{name}: every sentinel colour became a theme variable");
            assert!(svg.contains("03:00") && svg.contains("03:15 UTC"), "{name}: shared time axis");
        }
    }

    #[test]
    fn a_gap_in_the_data_breaks_the_line() {
        let pts = points();
        let svg = latency::render_svg(&input(&pts), SIZE);
        // Three percentiles, each drawn as two runs around the five missing minutes.
        let with_gap = paths(&svg);
        let full: Vec<SeriesPoint> = (0..15).map(|m| point(m, 40.0, 0)).collect();
        let without = paths(&latency::render_svg(&input(&full), SIZE));
        assert_eq!(with_gap, without + 3, "one extra run per percentile line");
        assert!(svg.contains("latest p95 54 ms"));
    }

    #[test]
    fn errors_are_stacked_bars_and_the_pool_shows_its_limit() {
        let pts = points();
        let svg = errors::render_svg(&input(&pts), SIZE);
        assert!(svg.contains("var(--chart-warn)"), "timeouts drawn in their colour");
        assert!(svg.contains("latest error rate 0.0 %"));
        let pool_svg = pool::render_svg(&input(&pts), SIZE);
        assert!(pool_svg.contains("var(--chart-ref)") && pool_svg.contains("latest in use 8 of 10, 0 waiting"));
    }

    #[test]
    fn empty_ranges_say_so() {
        for svg in [
            latency::render_svg(&input(&[]), SIZE),
            errors::render_svg(&input(&[]), SIZE),
            pool::render_svg(&input(&[]), SIZE),
        ] {
            assert!(svg.contains("No data in this range"), "{svg}");
        }
    }

    #[test]
    fn markers_are_lines_at_their_time() {
        let pts = points();
        let markers = [Marker { at: at(5) }];
        let plain = latency::render_svg(&input(&pts), SIZE);
        let marked = latency::render_svg(&ChartInput { markers: &markers, ..input(&pts) }, SIZE);
        assert_eq!(marked.matches("var(--chart-ref)").count(), plain.matches("var(--chart-ref)").count() + 1);
    }

    #[test]
    fn bands_are_drawn_behind_the_data() {
        let pts = points();
        let bands = [Band { from: at(2), to: at(6), label: "INC-7".into() }];
        let svg = latency::render_svg(&ChartInput { bands: &bands, ..input(&pts) }, SIZE);
        let band = svg.find("var(--chart-band)").expect("band drawn");
        let line = svg.find("var(--chart-p50)").expect("line drawn");
        assert!(band < line, "the band is under the lines");
        assert!(svg.contains("INC-7"));
    }
}
