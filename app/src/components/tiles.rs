//! The overview's tiles as one HTML string, built by the same function on the server (first
//! paint) and in the browser (live refreshes), and set as the list's inner HTML.
//!
//! Why not `view!`: tiles have no event handlers or reactive parts (their links are plain anchors
//! the router intercepts), and the overview re-renders every tile on each refresh anyway. Built
//! as text, a tile costs one buffer append per part instead of a tree of view nodes that the
//! server renders and drops per page view. With 20 services that took the overview's SSR from
//! about 7,500 to 11,500 pages/s (`docs/benchmarks.md`). Every user-supplied value goes through
//! [`push_escaped`]; tests below pin that.

use chrono::{DateTime, Timelike, Utc};

use crate::components::state::state_label;
use crate::markup::push_escaped;
use crate::model::{Overview, OverviewPage, OverviewQuery, ServiceTile};

/// A figure with `decimals` digits after the point. Rounds the scaled integer instead of using
/// `{:.N}`: the standard library's exact formatting falls back to big-number arithmetic for many
/// values, and with four figures per tile it was about 5 % of rendering the overview.
fn fixed(v: f64, decimals: u32) -> String {
    let scale = 10u64.pow(decimals.min(6));
    let scaled = (v.abs() * scale as f64).round();
    if !v.is_finite() || scaled >= 1e15 {
        return format!("{v:.*}", decimals as usize);
    }
    let n = scaled as u64;
    let sign = if v < 0.0 && n > 0 { "-" } else { "" };
    if decimals == 0 {
        format!("{sign}{n}")
    } else {
        format!("{sign}{}.{:0width$}", n / scale, n % scale, width = decimals.min(6) as usize)
    }
}

/// The `<li>` of every tile, in the given order.
pub fn tiles_html<'a>(tiles: impl IntoIterator<Item = &'a ServiceTile>, now: DateTime<Utc>) -> String {
    let tiles = tiles.into_iter();
    // About 1.5 KB a tile, most of it the sparkline.
    let mut buf = String::with_capacity(tiles.size_hint().0 * 1536);
    for t in tiles {
        push_tile(&mut buf, t, now);
    }
    buf
}

/// The page of the overview a view state asks for, its tiles rendered (on the server).
pub fn overview_page(overview: &Overview, query: &OverviewQuery) -> OverviewPage {
    let s = overview.select(query);
    let at = overview.at;
    OverviewPage {
        updated: format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second()),
        total: s.total,
        only_self: s.only_self,
        counts: s.counts,
        tags: s.tags,
        matched: s.matched,
        page: s.page,
        pages: s.pages,
        shown: s.tiles.iter().map(|t| t.id).collect(),
        tiles_html: tiles_html(s.tiles, at),
    }
}

fn push_tile(buf: &mut String, tile: &ServiceTile, now: DateTime<Utc>) {
    let (class, label) = state_label(tile.state);
    let state = tile.state.map(|s| s.as_str()).unwrap_or("none");
    buf.push_str("<li class=\"tile\" data-state=\"");
    buf.push_str(state);
    buf.push_str("\" data-service=\"");
    push_escaped(buf, &tile.name);
    buf.push_str("\"><div class=\"tile-head\"><h2 class=\"tile-name\"><a href=\"/services/");
    buf.push_str(&tile.id.to_string());
    buf.push_str("\">");
    push_escaped(buf, &tile.name);
    buf.push_str("</a></h2><span class=\"");
    buf.push_str(class);
    buf.push_str("\">");
    buf.push_str(label);
    buf.push_str("</span></div><div class=\"sparkline\">");
    crate::charts::sparkline::push_svg(buf, &tile.p95_trend);
    buf.push_str("</div><dl class=\"tile-figures\"><div><dt>p95</dt><dd>");
    match tile.p95_ms {
        Some(v) => {
            buf.push_str(&fixed(v, 0));
            buf.push_str(" ms");
        }
        None => buf.push('–'),
    }
    buf.push_str("</dd></div><div><dt>errors</dt><dd>");
    match tile.error_pct {
        Some(v) => {
            buf.push_str(&fixed(v, 1));
            buf.push_str(" %");
        }
        None => buf.push('–'),
    }
    let pool = match (tile.pool_in_use, tile.pool_max) {
        (Some(u), Some(m)) if m > 0.0 => Some((u, m)),
        _ => None,
    };
    buf.push_str(if pool.is_some_and(|(u, m)| u >= m) {
        "</dd></div><div class=\"warn\"><dt>pool</dt><dd>"
    } else {
        "</dd></div><div><dt>pool</dt><dd>"
    });
    match pool {
        Some((u, m)) => {
            buf.push_str(&fixed(u, 0));
            buf.push('/');
            buf.push_str(&fixed(m, 0));
            if let Some(w) = tile.pool_waiting.filter(|w| *w > 0.0) {
                buf.push_str(", ");
                buf.push_str(&fixed(w, 0));
                buf.push_str(" waiting");
            }
        }
        None => buf.push('–'),
    }
    buf.push_str("</dd></div></dl>");
    if let Some(whence) = &tile.locations {
        buf.push_str("<p class=\"tile-locations\">📍 ");
        push_escaped(buf, whence);
        buf.push_str("</p>");
    }
    if let Some(title) = &tile.maintenance {
        // Planned work: failures here open no incident and notify nobody until it ends.
        buf.push_str("<p class=\"tile-maintenance\">🔧 maintenance: ");
        push_escaped(buf, title);
        buf.push_str("</p>");
    }
    if let Some((pct, secs)) = tile.budget {
        buf.push_str(if pct < 0.0 { "<p class=\"tile-budget bad\">" } else { "<p class=\"tile-budget\">" });
        buf.push_str("error budget: ");
        push_escaped(buf, &crate::model::budget_words(Some(secs), Some(pct)));
        buf.push_str("</p>");
    }
    if tile.blocked > 0 {
        // A configuration problem, not an outage: it says what to fix instead of colouring the tile.
        buf.push_str("<p class=\"tile-config\">⚙ ");
        buf.push_str(&tile.blocked.to_string());
        buf.push_str(if tile.blocked == 1 { " probe" } else { " probes" });
        buf.push_str(" blocked by the network policy</p>");
    }
    buf.push_str("<p class=\"tile-foot muted\">");
    buf.push_str(&tile.probes.to_string());
    buf.push_str(" probes · ");
    push_age(buf, now, tile.last_check);
    if !tile.tags.is_empty() {
        buf.push_str("<span class=\"tags\">");
        for (i, tag) in tile.tags.iter().enumerate() {
            if i > 0 {
                buf.push_str(", ");
            }
            push_escaped(buf, tag);
        }
        buf.push_str("</span>");
    }
    buf.push_str("</p></li>");
}

/// "checked 12 s ago", "checked 3 min ago", "never checked".
fn push_age(buf: &mut String, now: DateTime<Utc>, at: Option<DateTime<Utc>>) {
    let Some(at) = at else {
        buf.push_str("never checked");
        return;
    };
    let s = (now - at).num_seconds().max(0);
    let (n, unit) = match s {
        0..=59 => (s, " s ago"),
        60..=3599 => (s / 60, " min ago"),
        _ => (s / 3600, " h ago"),
    };
    buf.push_str("checked ");
    buf.push_str(&n.to_string());
    buf.push_str(unit);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    fn tile() -> ServiceTile {
        ServiceTile {
            id: uuid::Uuid::nil(),
            name: "checkout".into(),
            tags: vec!["payments".into(), "edge".into()],
            criticality: Default::default(),
            state: Some(Outcome::Down),
            probes: 3,
            blocked: 0,
            p95_ms: Some(1234.56),
            error_pct: Some(12.345),
            pool_in_use: Some(20.0),
            pool_max: Some(20.0),
            pool_waiting: Some(4.0),
            last_check: None,
            p95_trend: vec![Some(10.0), None, Some(30.0)],
            maintenance: None,
            budget: None,
            locations: None,
        }
    }

    #[test]
    fn a_service_with_an_objective_shows_its_budget() {
        let html = tiles_html(&[ServiceTile { budget: Some((71.2, 2_580.0)), ..tile() }], Utc::now());
        assert!(html.contains(r#"<p class="tile-budget">error budget: 43 min left (71 %)</p>"#), "{html}");
        let html = tiles_html(&[ServiceTile { budget: Some((-20.0, -720.0)), ..tile() }], Utc::now());
        assert!(html.contains(r#"<p class="tile-budget bad">error budget: overspent by 12 min</p>"#), "{html}");
        assert!(!tiles_html(&[tile()], Utc::now()).contains("tile-budget"));
    }

    #[test]
    fn figures_read_as_the_standard_formatting_would() {
        for (v, d) in [(0.0, 1), (3.24159, 1), (12.96, 1), (99.99, 1), (250.4, 0), (1234.6, 0), (0.04, 1), (7.0, 0)] {
            assert_eq!(fixed(v, d), format!("{v:.*}", d as usize), "{v} to {d}");
        }
        assert_eq!(fixed(-2.26, 1), "-2.3");
        assert_eq!(fixed(-0.01, 1), "0.0");
        assert_eq!(fixed(f64::NAN, 0), "NaN");
    }

    #[test]
    fn a_tile_says_its_state_in_words_and_its_figures() {
        let now = Utc::now();
        let mut t = tile();
        t.last_check = Some(now - chrono::Duration::seconds(75));
        let html = tiles_html(&[t], now);
        assert!(html.starts_with(r#"<li class="tile" data-state="down" data-service="checkout">"#), "{html}");
        assert!(html.contains(r#"<a href="/services/00000000-0000-0000-0000-000000000000">checkout</a>"#));
        assert!(html.contains(r#"<span class="state state-down">✖ down</span>"#));
        assert!(html.contains("<dt>p95</dt><dd>1235 ms</dd>"));
        assert!(html.contains("<dt>errors</dt><dd>12.3 %</dd>"));
        assert!(html.contains(r#"<div class="warn"><dt>pool</dt><dd>20/20, 4 waiting</dd>"#), "saturated pool");
        assert!(html.contains("3 probes · checked 1 min ago<span class=\"tags\">payments, edge</span>"));
        assert!(html.contains("<svg"), "the sparkline");
        assert!(html.ends_with("</p></li>"));
    }

    #[test]
    fn missing_figures_read_as_dashes() {
        let t = ServiceTile {
            state: None,
            p95_ms: None,
            error_pct: None,
            pool_in_use: None,
            pool_max: None,
            pool_waiting: None,
            tags: Vec::new(),
            p95_trend: Vec::new(),
            ..tile()
        };
        let html = tiles_html(&[t], Utc::now());
        assert!(html.contains(r#"data-state="none""#));
        assert!(html.contains("○ no data"));
        assert!(html.contains("<dd>–</dd></div><div><dt>errors</dt><dd>–</dd></div><div><dt>pool</dt><dd>–</dd>"));
        assert!(html.contains("never checked</p>"), "no tags span without tags");
    }

    #[test]
    fn a_service_down_from_some_locations_names_them() {
        let tile = ServiceTile { locations: Some("down from 1 of 3 locations: eu-west".into()), ..tile() };
        let html = tiles_html(&[tile], Utc::now());
        assert!(html.contains(r#"<p class="tile-locations">📍 down from 1 of 3 locations: eu-west</p>"#), "{html}");
        assert!(!tiles_html(&[self::tile()], Utc::now()).contains("tile-locations"));
    }

    #[test]
    fn a_service_under_maintenance_says_so() {
        let html = tiles_html(&[ServiceTile { maintenance: Some("DB <upgrade>".into()), ..tile() }], Utc::now());
        assert!(html.contains(r#"<p class="tile-maintenance">🔧 maintenance: DB &lt;upgrade&gt;</p>"#), "{html}");
        assert!(!tiles_html(&[tile()], Utc::now()).contains("tile-maintenance"));
    }

    #[test]
    fn probes_blocked_by_policy_read_as_a_configuration_problem() {
        let html = tiles_html(&[tile()], Utc::now());
        assert!(!html.contains("tile-config"), "nothing blocked, nothing said");
        let html = tiles_html(&[ServiceTile { blocked: 2, ..tile() }], Utc::now());
        assert!(html.contains(r#"<p class="tile-config">⚙ 2 probes blocked by the network policy</p>"#), "{html}");
        let html = tiles_html(&[ServiceTile { blocked: 1, ..tile() }], Utc::now());
        assert!(html.contains("⚙ 1 probe blocked"), "{html}");
    }

    #[test]
    fn names_and_tags_cannot_inject_markup() {
        let t = ServiceTile {
            name: r#""><script>alert(1)</script>"#.into(),
            tags: vec!["<img src=x onerror=alert(1)>".into()],
            ..tile()
        };
        let html = tiles_html(&[t], Utc::now());
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains(r#"data-service="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;""#));
    }
}
