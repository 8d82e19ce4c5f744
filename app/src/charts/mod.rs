//! Charts, drawn with plotters. Each chart is one function generic over the plotters backend; the
//! server renders it to SVG for the first paint and the browser renders the same function after
//! hydration, so both produce identical markup.
//!
//! Two rules keep the output identical on both sides: labels are placed with explicit anchors
//! (plotters measures text differently natively and in the browser, so no measured layout), and
//! colours are drawn as sentinel values that [`render_svg`] turns into CSS variables, so one SVG
//! follows the page's light or dark theme.

pub mod budget;
pub mod errors;
#[cfg(test)]
mod fixtures;
pub mod frame;
pub mod latency;
pub mod locations;
pub mod loss;
pub mod phases;
pub mod pool;
pub mod response_times;
pub mod round_trips;
#[cfg(test)]
mod snapshots;
pub mod sparkline;

use plotters::coord::Shift;
use plotters::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChartSize {
    pub width: u32,
    pub height: u32,
}

/// Sentinel colours; each becomes `var(--chart-<name>)` in the SVG. The style sheet defines the
/// variables for both themes.
pub mod palette {
    use plotters::style::RGBColor;
    pub const AXIS: RGBColor = RGBColor(1, 2, 1);
    pub const GRID: RGBColor = RGBColor(1, 2, 2);
    pub const TEXT: RGBColor = RGBColor(1, 2, 3);
    pub const LINE: RGBColor = RGBColor(1, 2, 4);
    pub const BAD: RGBColor = RGBColor(1, 2, 5);
    pub const P50: RGBColor = RGBColor(1, 2, 6);
    pub const P95: RGBColor = RGBColor(1, 2, 7);
    pub const P99: RGBColor = RGBColor(1, 2, 8);
    pub const WARN: RGBColor = RGBColor(1, 2, 9);
    pub const REF: RGBColor = RGBColor(1, 2, 10);
    pub const BAND: RGBColor = RGBColor(1, 2, 11);
    pub const NET: RGBColor = RGBColor(1, 2, 12);

    pub(super) const VARS: [(RGBColor, &str); 12] = [
        (AXIS, "axis"),
        (GRID, "grid"),
        (TEXT, "text"),
        (LINE, "line"),
        (BAD, "bad"),
        (P50, "p50"),
        (P95, "p95"),
        (P99, "p99"),
        (WARN, "warn"),
        (REF, "ref"),
        (BAND, "band"),
        (NET, "net"),
    ];
}

pub const FONT: &str = "sans-serif";

/// Draws with `draw` into an SVG string of the given size, with an accessible title and
/// description, a viewBox for responsive width, and theme variables for colours.
pub fn render_svg<F>(size: ChartSize, title: &str, desc: &str, draw: F) -> String
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), DrawingAreaErrorKind<std::io::Error>>,
{
    let mut raw = String::new();
    {
        let root = SVGBackend::with_string(&mut raw, (size.width, size.height)).into_drawing_area();
        let drawn = draw(&root).and_then(|()| root.present());
        if let Err(e) = drawn {
            return format!(
                "<p class=\"chart-error\">chart unavailable: {}</p>",
                crate::markup::escaped(&e.to_string())
            );
        }
    }
    let svg = themed(&raw);
    let open_end = svg.find('>').map(|i| i + 1).unwrap_or(0);
    let (open, rest) = svg.split_at(open_end);
    let open = open
        .replacen(&format!("width=\"{}\"", size.width), "width=\"100%\"", 1)
        .replacen(&format!(" height=\"{}\"", size.height), "", 1)
        .replacen("<svg ", "<svg role=\"img\" class=\"chart-svg\" ", 1);
    format!("{open}<title>{}</title><desc>{}</desc>{rest}", crate::markup::escaped(title), crate::markup::escaped(desc))
}

/// Every sentinel colour (`#0102xx`) as its theme variable, in one pass: SSR draws a sparkline per
/// tile, and twelve `replace` passes per chart were a tenth of the overview's render time.
fn themed(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len() + svg.len() / 8);
    let mut rest = svg;
    while let Some(i) = rest.find("#0102") {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 5..i + 7).and_then(|c| u8::from_str_radix(c, 16).ok());
        match code.and_then(|b| palette::VARS.iter().find(|(color, _)| color.2 == b)) {
            Some((_, name)) => {
                out.push_str("var(--chart-");
                out.push_str(name);
                out.push(')');
                rest = &rest[i + 7..];
            }
            None => {
                out.push_str("#0102");
                rest = &rest[i + 5..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`.
pub fn nice_ceiling(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|v| *v >= max).unwrap_or(10.0 * magnitude)
}

/// An axis tick without noise: "2", "0.25", "1.5", "1500".
pub fn tick(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" { "0".to_string() } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_drop_trailing_zeros() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(1.5), "1.5");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(1500.0), "1500");
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(1.3), 2.0);
        assert_eq!(nice_ceiling(37.0), 50.0);
        assert_eq!(nice_ceiling(500.0), 500.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
    }
}
