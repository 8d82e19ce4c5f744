//! A tile's p95 sparkline: the last hour in five-minute steps, no axes, broken where a step had
//! no timed check. Its own scale (the tile's p95 figure says the level; the line says the trend),
//! with the highest value marked so a spike reads as one.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{ChartSize, palette};

pub const SIZE: ChartSize = ChartSize { width: 120, height: 26 };

pub fn render_svg(values: &[Option<f64>]) -> String {
    let mut out = String::new();
    push_svg(&mut out, values);
    out
}

/// Appends the sparkline's SVG to `buf`.
pub fn push_svg(buf: &mut String, values: &[Option<f64>]) {
    #[cfg(feature = "ssr")]
    {
        rendered::push(buf, values, render_uncached)
    }
    #[cfg(not(feature = "ssr"))]
    {
        buf.push_str(&render_uncached(values))
    }
}

/// On the server the same sparklines are drawn for every page view until their trend changes
/// (at most once a minute): drawn SVGs are kept by their input values.
#[cfg(feature = "ssr")]
mod rendered {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex};

    const MAX_ENTRIES: usize = 20_000;

    type Key = Vec<Option<u64>>;
    static DRAWN: LazyLock<Mutex<HashMap<Key, Arc<str>>>> = LazyLock::new(Mutex::default);

    pub fn push(buf: &mut String, values: &[Option<f64>], render: fn(&[Option<f64>]) -> String) {
        let key: Key = values.iter().map(|v| v.map(f64::to_bits)).collect();
        if let Some(svg) = DRAWN.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            buf.push_str(svg);
            return;
        }
        // Drawn outside the lock: two threads may both draw a new trend once, which is harmless.
        let svg: Arc<str> = render(values).into();
        buf.push_str(&svg);
        let mut drawn = DRAWN.lock().unwrap_or_else(|p| p.into_inner());
        if drawn.len() >= MAX_ENTRIES {
            drawn.clear();
        }
        drawn.insert(key, svg);
    }
}

fn render_uncached(values: &[Option<f64>]) -> String {
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let desc = match (known.iter().copied().reduce(f64::min), known.iter().copied().reduce(f64::max)) {
        (Some(lo), Some(hi)) => format!("p95 over the last hour, between {lo:.0} and {hi:.0} ms"),
        _ => "no timed checks in the last hour".into(),
    };
    // Stretched to the tile's width: a trend line tolerates it, and tiles vary in width.
    super::render_svg(SIZE, "p95 trend", &desc, |area| draw(area, values)).replacen(
        "<svg ",
        "<svg preserveAspectRatio=\"none\" ",
        1,
    )
}

pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    values: &[Option<f64>],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let max = values.iter().flatten().copied().fold(0.0, f64::max);
    if values.len() < 2 || max <= 0.0 {
        return area.draw(&PathElement::new(vec![(1, h - 2), (w - 1, h - 2)], palette::GRID.stroke_width(1)));
    }
    let x = |i: usize| 2 + (i as i32 * (w - 4)) / (values.len() as i32 - 1);
    let y = |v: f64| (h - 3) - ((v / max) * f64::from(h - 6)) as i32;
    let style = palette::P95.stroke_width(1);
    let mut run: Vec<(i32, i32)> = Vec::new();
    let mut peak: Option<(i32, i32)> = None;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                run.push((x(i), y(*v)));
                if *v >= max && peak.is_none() {
                    peak = Some((x(i), y(*v)));
                }
            }
            None => draw_run(area, &mut run, style)?,
        }
    }
    draw_run(area, &mut run, style)?;
    if let Some(p) = peak {
        area.draw(&Circle::new(p, 2, palette::P95.filled()))?;
    }
    Ok(())
}

fn draw_run<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    run: &mut Vec<(i32, i32)>,
    style: ShapeStyle,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    match run.len() {
        0 => Ok(()),
        1 => area.draw(&Circle::new(run.remove(0), 1, style.filled())),
        _ => area.draw(&PathElement::new(std::mem::take(run), style)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_break_the_line_and_the_peak_is_marked() {
        let svg = render_svg(&[Some(10.0), Some(12.0), None, Some(40.0), Some(11.0)]);
        assert!(svg.contains("<title>p95 trend</title>"));
        assert!(svg.contains("between 10 and 40 ms"));
        assert_eq!(svg.matches("<polyline").count() + svg.matches("<path").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 1, "the peak");
        assert!(!svg.contains("#0102"));
    }

    #[test]
    fn no_data_is_a_flat_baseline() {
        let svg = render_svg(&[None, None, None]);
        assert!(svg.contains("no timed checks in the last hour"));
        assert!(svg.contains("var(--chart-grid)"));
        assert!(!svg.contains("<circle"));
    }
}

#[cfg(all(test, feature = "ssr"))]
mod cache_tests {
    #[test]
    fn a_kept_sparkline_is_the_one_that_would_be_drawn() {
        let values = [Some(12.0), None, Some(15.5), Some(9.25)];
        let first = super::render_svg(&values);
        assert_eq!(first, super::render_uncached(&values));
        assert_eq!(super::render_svg(&values), first, "the second answer comes from the cache");
        let other = [Some(12.0), None, Some(15.5), Some(90.25)];
        assert_ne!(super::render_svg(&other), first, "another trend is drawn anew");
    }
}
