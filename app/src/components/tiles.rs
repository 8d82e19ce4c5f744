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
use crate::model::{OVERVIEW_PAGE, Overview, OverviewQuery, OverviewSelection, ServiceTile, StateFilter};

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

/// The overview's body for a view state: counts by state and tag (links that narrow the view),
/// the summary line, one page of tiles and the pager. It is marked for the first-run panel while
/// only Triage itself is watched or the demo runs.
pub fn overview_body(overview: &Overview, query: &OverviewQuery, demo_running: bool) -> String {
    let s = overview.select(query);
    let first_run = s.only_self || demo_running;
    let at = overview.at;
    let mut buf = String::with_capacity(4096 + s.tiles.len() * 1536);
    buf.push_str("<span id=\"overview-meta\" hidden data-page=\"");
    buf.push_str(&s.page.to_string());
    buf.push_str("\" data-pages=\"");
    buf.push_str(&s.pages.to_string());
    buf.push_str(if first_run { "\" data-first-run=\"true\"></span>" } else { "\"></span>" });
    if s.total == 0 {
        buf.push_str(EMPTY);
        return buf;
    }
    push_facets(&mut buf, &s, query);
    let first = (s.page as usize - 1) * OVERVIEW_PAGE;
    buf.push_str("<p class=\"muted summary-line\">");
    buf.push_str(&count(s.matched));
    buf.push_str(" of ");
    buf.push_str(&count(s.total));
    buf.push_str(" services");
    if s.pages > 1 {
        buf.push_str(" · showing ");
        buf.push_str(&count(first as u32 + 1));
        buf.push('–');
        buf.push_str(&count((first + s.tiles.len()) as u32));
    }
    buf.push_str(&format!(
        " · last 5 minutes · updated {:02}:{:02}:{:02} UTC<span class=\"keys\" aria-hidden=\"true\"> · keys: / filter, N next page, P previous</span></p>",
        at.hour(),
        at.minute(),
        at.second()
    ));
    buf.push_str("<ul class=\"tiles\" aria-label=\"Services\">");
    let pages = (s.page, s.pages);
    buf.push_str(&tiles_html(s.tiles, at));
    buf.push_str("</ul>");
    push_pager(&mut buf, pages, query);
    buf
}

const EMPTY: &str = "<div class=\"empty-state\" role=\"status\"><p><strong>No services are probed yet.</strong></p>\
    <p>Create probes through the API (<code>POST /api/v1/probes</code>) or a probe file (<code>--config triage.toml</code>). \
    Triage&#39;s own health is on the <a href=\"/status\">status page</a>.</p></div>";

/// A facet link: `label count`, current when its filter is the one applied (a second click then
/// removes it).
fn push_facet(buf: &mut String, class: &str, href: &str, current: bool, data: (&str, &str), label: &str, n: u32) {
    buf.push_str("<a class=\"");
    buf.push_str(class);
    buf.push_str("\" href=\"");
    push_escaped(buf, href);
    buf.push('"');
    if current {
        buf.push_str(" aria-current=\"true\"");
    }
    buf.push(' ');
    buf.push_str(data.0);
    buf.push_str("=\"");
    push_escaped(buf, data.1);
    buf.push_str("\">");
    push_escaped(buf, label);
    buf.push_str(" <strong>");
    buf.push_str(&count(n));
    buf.push_str("</strong>");
}

fn push_facets(buf: &mut String, s: &OverviewSelection<'_>, query: &OverviewQuery) {
    let c = s.counts;
    buf.push_str("<nav class=\"facets\" aria-label=\"States\">");
    let states = [
        (None, "All", c.total()),
        (Some(StateFilter::Problems), "Problems", c.of(StateFilter::Problems)),
        (Some(StateFilter::Down), "Down", c.down),
        (Some(StateFilter::Degraded), "Degraded", c.degraded),
        (Some(StateFilter::Up), "Up", c.up),
        (Some(StateFilter::NoData), "No data", c.no_data),
    ];
    for (filter, label, n) in states {
        let current = query.state == filter;
        let to = OverviewQuery { state: if current { None } else { filter }, page: 1, ..query.clone() };
        let class = match filter {
            Some(StateFilter::Down) => "facet facet-down",
            Some(StateFilter::Degraded) => "facet facet-degraded",
            Some(StateFilter::Problems) if n > 0 => "facet facet-down",
            _ => "facet",
        };
        push_facet(
            buf,
            class,
            &to.href(),
            current,
            ("data-state", filter.map_or("all", StateFilter::as_str)),
            label,
            n,
        );
        buf.push_str("</a>");
    }
    buf.push_str("</nav>");
    if s.tags.is_empty() {
        return;
    }
    buf.push_str("<nav class=\"facets\" aria-label=\"Tags\">");
    for t in &s.tags {
        let current = query.tag.as_deref() == Some(t.tag.as_str());
        let to = OverviewQuery { tag: if current { None } else { Some(t.tag.clone()) }, page: 1, ..query.clone() };
        let class = if t.down > 0 {
            "facet facet-down"
        } else if t.degraded > 0 {
            "facet facet-degraded"
        } else {
            "facet"
        };
        push_facet(buf, class, &to.href(), current, ("data-tag", &t.tag), &t.tag, t.services);
        match (t.down, t.degraded) {
            (0, 0) => {}
            (0, g) => buf.push_str(&format!(" · {g} degraded")),
            (d, 0) => buf.push_str(&format!(" · {d} down")),
            (d, g) => buf.push_str(&format!(" · {d} down, {g} degraded")),
        }
        buf.push_str("</a>");
    }
    buf.push_str("</nav>");
}

fn push_pager(buf: &mut String, (page, pages): (u32, u32), query: &OverviewQuery) {
    if pages <= 1 {
        return;
    }
    let to = |p: u32| OverviewQuery { page: p, ..query.clone() }.href();
    buf.push_str("<nav class=\"pager\" aria-label=\"Pages\">");
    if page > 1 {
        buf.push_str("<a rel=\"prev\" href=\"");
        push_escaped(buf, &to(page - 1));
        buf.push_str("\">← Previous</a>");
    }
    buf.push_str(&format!("<span>Page {page} of {pages}</span>"));
    if page < pages {
        buf.push_str("<a rel=\"next\" href=\"");
        push_escaped(buf, &to(page + 1));
        buf.push_str("\">Next →</a>");
    }
    buf.push_str("</nav>");
}

/// "1,234": counts in the thousands stay readable.
fn count(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn push_tile(buf: &mut String, tile: &ServiceTile, now: DateTime<Utc>) {
    let (class, label) = state_label(tile.state);
    let state = tile.state.map(|s| s.as_str()).unwrap_or("none");
    buf.push_str("<li class=\"tile\" data-state=\"");
    buf.push_str(state);
    buf.push_str("\" data-id=\"");
    buf.push_str(&tile.id.to_string());
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
    fn counts_group_their_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(20_000), "20,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    fn overview(n: usize) -> Overview {
        let services = (0..n)
            .map(|i| ServiceTile {
                id: uuid::Uuid::from_u128(i as u128 + 1),
                name: format!("svc-{i:03}"),
                tags: vec![if i % 2 == 0 { "<edge>".into() } else { "core".into() }],
                state: Some(if i == 7 { Outcome::Down } else { Outcome::Up }),
                ..tile()
            })
            .collect();
        Overview { at: Utc::now(), services }
    }

    #[test]
    fn the_body_counts_pages_and_links_every_view_it_offers() {
        let o = overview(150);
        let q = OverviewQuery { tag: Some("core".into()), page: 1, ..Default::default() };
        let html = overview_body(&o, &q, false);
        assert!(html.starts_with(r#"<span id="overview-meta" hidden data-page="1" data-pages="1"></span>"#), "{html}");
        assert!(!html.contains(crate::model::FIRST_RUN_MARK));
        // The chosen tag is current and its link widens the view again; the other narrows it.
        assert!(html.contains(r#"<a class="facet facet-down" href="/" aria-current="true" data-tag="core">core <strong>75</strong> · 1 down</a>"#), "{html}");
        assert!(
            html.contains(r#"href="/?tag=%3Cedge%3E" data-tag="&lt;edge&gt;">&lt;edge&gt; <strong>75</strong></a>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/?state=down&amp;tag=core" data-state="down">Down <strong>1</strong></a>"#),
            "{html}"
        );
        assert!(html.contains("75 of 150 services · last 5 minutes"), "{html}");
        assert_eq!(html.matches("<li class=\"tile\"").count(), 75);
        assert!(!html.contains("aria-label=\"Pages\""), "one page needs no pager");

        let all = overview_body(&o, &OverviewQuery { page: 2, ..Default::default() }, true);
        assert!(all.contains(r#"data-page="2" data-pages="2" data-first-run="true""#), "{all}");
        assert!(all.contains("150 of 150 services · showing 101–150"), "{all}");
        assert!(all.contains(r#"<a rel="prev" href="/">← Previous</a><span>Page 2 of 2</span></nav>"#), "{all}");
        assert!(all.contains(&format!("data-id=\"{}\"", uuid::Uuid::from_u128(150))));
        let empty = overview_body(&overview(0), &OverviewQuery::default(), false);
        assert!(empty.contains("No services are probed yet."), "{empty}");
        assert!(empty.contains(crate::model::FIRST_RUN_MARK), "nothing watched yet is a first run: {empty}");
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
        assert!(
            html.starts_with(r#"<li class="tile" data-state="down" data-id="00000000-0000-0000-0000-000000000000" data-service="checkout">"#),
            "{html}"
        );
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
