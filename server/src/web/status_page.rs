//! The public side of status pages, readable without signing in: the page itself as plain
//! server-rendered HTML with one small style sheet (no WASM, no script), its JSON summary, an
//! Atom feed of the public updates, and SVG badges for READMEs. Everything comes from the
//! page's cached [`Published`] copy, so public traffic never reaches the database more than
//! once per refresh interval and page.

use std::fmt::Write as _;
use std::sync::Arc;

use app::model::{PublicState, StatusSummary};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};

use super::access::Secured;
use super::error::ApiError;
use super::state::AppState;
use crate::respond::status_pages::Published;

/// The stylesheet every status page links (light and dark by the reader's preference).
const CSS: &str = include_str!("../../../style/status.css");
/// The optional script that keeps an open page current (the page works without it).
const LIVE_JS: &str = include_str!("status-live.js");
/// Pages and summaries may be cached as long as Triage's own copy lives; badges a minute.
const PAGE_CACHE: &str = "public, max-age=5";
const BADGE_CACHE: &str = "public, max-age=60";

pub fn routes() -> Secured {
    Secured::default()
        .open("/s/-/status.css", css)
        .open("/s/-/live.js", live_js)
        .open("/s/{slug}", page)
        .open("/s/{slug}/summary.json", summary)
        .open("/s/{slug}/feed.atom", feed)
        .open("/badge/services/{id}/status.svg", status_badge)
        .open("/badge/services/{id}/uptime.svg", uptime_badge)
        .open("/badge/services/{id}/p95.svg", p95_badge)
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn with(body: String, content_type: &'static str, cache: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}

fn not_found() -> Response {
    ApiError::from(crate::error::Error::NotFound("status page")).into_response()
}

async fn published(state: &AppState, slug: &str) -> Result<Option<Arc<Published>>, ApiError> {
    Ok(state.status_pages.published(slug).await?)
}

async fn css() -> Response {
    with(CSS.to_string(), "text/css; charset=utf-8", "public, max-age=3600")
}

async fn live_js() -> Response {
    with(LIVE_JS.to_string(), "text/javascript; charset=utf-8", "public, max-age=3600")
}

async fn page(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, ApiError> {
    Ok(match published(&state, &slug).await? {
        Some(p) => with(p.html.get_or_init(|| render_html(&p.summary)).clone(), "text/html; charset=utf-8", PAGE_CACHE),
        None => not_found(),
    })
}

async fn summary(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, ApiError> {
    Ok(match published(&state, &slug).await? {
        Some(p) => with(p.json.clone(), "application/json", PAGE_CACHE),
        None => not_found(),
    })
}

async fn feed(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, ApiError> {
    Ok(match published(&state, &slug).await? {
        Some(p) => with(
            p.atom.get_or_init(|| render_atom(&p.summary)).clone(),
            "application/atom+xml; charset=utf-8",
            PAGE_CACHE,
        ),
        None => not_found(),
    })
}

fn when(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The page: banner, maintenance, incidents with their public updates, then each group's
/// services with 90 daily bars.
pub fn render_html(s: &StatusSummary) -> String {
    let mut h = String::with_capacity(32 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/s/-/status.css\">\
         <link rel=\"alternate\" type=\"application/atom+xml\" title=\"{title}\" href=\"/s/{slug}/feed.atom\">\
         <script src=\"/s/-/live.js\" defer></script></head><body><main class=\"status-page\"><h1>{title}</h1>",
        title = esc(&s.title),
        slug = esc(&s.slug),
    );
    if !s.description.is_empty() {
        let _ = write!(h, "<p class=\"description\">{}</p>", esc(&s.description));
    }
    let _ = write!(h, "<p class=\"banner state-{}\" role=\"status\">{}</p>", s.status.as_str(), esc(&s.status_text));
    if !s.maintenance.is_empty() {
        h.push_str("<section class=\"maintenance\"><h2>Scheduled maintenance</h2><ul>");
        for m in &s.maintenance {
            let _ = write!(
                h,
                "<li><strong>{}</strong>{} {} → {} · {}</li>",
                esc(&m.title),
                if m.active { " (under way)" } else { "" },
                when(m.starts_at),
                when(m.ends_at),
                esc(&m.services.join(", "))
            );
        }
        h.push_str("</ul></section>");
    }
    if !s.incidents.is_empty() {
        h.push_str("<section class=\"incidents\"><h2>Incidents</h2>");
        for i in &s.incidents {
            let _ = write!(
                h,
                "<article class=\"incident\" id=\"incident-{}\"><h3>{} <span class=\"incident-status\">{}</span></h3>",
                i.id,
                esc(&i.heading),
                i.status.as_str()
            );
            for u in &i.updates {
                // `html` is the update's Markdown rendered and sanitised on the server.
                let _ = write!(
                    h,
                    "<div class=\"update\"><p class=\"update-head\"><strong>{}</strong> · {}</p>{}</div>",
                    u.status.as_str(),
                    when(u.at),
                    u.html
                );
            }
            h.push_str("</article>");
        }
        h.push_str("</section>");
    }
    for g in &s.groups {
        let _ = write!(h, "<section class=\"group\"><h2>{}</h2>", esc(&g.name));
        for svc in &g.services {
            let uptime = svc.uptime_pct.map_or("no data".to_string(), |u| format!("{u:.2} % uptime"));
            let _ = write!(
                h,
                "<div class=\"service\" data-service=\"{id}\"><p class=\"service-head\"><span class=\"name\">{name}</span>\
                 <span class=\"state state-{state}\">{label}</span><span class=\"uptime\">{uptime}</span></p>\
                 <div class=\"bars\" role=\"img\" aria-label=\"{name}: {uptime} over {days} days\">",
                id = svc.id,
                name = esc(&svc.name),
                state = svc.state.as_str(),
                label = svc.state.label(),
                days = svc.days.len(),
            );
            for d in &svc.days {
                let pct = d.uptime_pct.map_or("no data".to_string(), |u| format!("{u:.2} %"));
                let mut tip = format!("{}: {pct}", d.date);
                for i in &d.incidents {
                    let _ = write!(tip, " · {i}");
                }
                let _ = write!(h, "<span class=\"bar state-{}\" title=\"{}\"></span>", d.worst.as_str(), esc(&tip));
            }
            h.push_str("</div></div>");
        }
        h.push_str("</section>");
    }
    let _ = write!(
        h,
        "<footer>Updated {} · <a href=\"/s/{slug}/summary.json\">JSON</a> · <a href=\"/s/{slug}/feed.atom\">Atom feed</a></footer>\
         </main></body></html>",
        when(s.generated_at),
        slug = esc(&s.slug)
    );
    h
}

/// The public updates as an Atom feed, newest first.
pub fn render_atom(s: &StatusSummary) -> String {
    let mut updates: Vec<(&app::model::PublicIncident, &app::model::PublicUpdate)> =
        s.incidents.iter().flat_map(|i| i.updates.iter().map(move |u| (i, u))).collect();
    updates.sort_by_key(|u| std::cmp::Reverse(u.1.at));
    let newest = updates.first().map_or(s.generated_at, |(_, u)| u.at);
    let mut x = String::with_capacity(8 * 1024);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <id>urn:triage:status:{slug}</id><title>{title}</title><updated>{updated}</updated>\
         <link rel=\"alternate\" href=\"/s/{slug}\"/>",
        slug = esc(&s.slug),
        title = esc(&s.title),
        updated = newest.to_rfc3339(),
    );
    for (i, u) in updates {
        let _ = write!(
            x,
            "<entry><id>urn:uuid:{id}</id><title>{heading}: {status}</title><updated>{at}</updated>\
             <link rel=\"alternate\" href=\"/s/{slug}#incident-{incident}\"/><content type=\"html\">{html}</content></entry>",
            id = u.id,
            heading = esc(&i.heading),
            status = u.status.as_str(),
            at = u.at.to_rfc3339(),
            slug = esc(&s.slug),
            incident = i.id,
            html = esc(&u.html),
        );
    }
    x.push_str("</feed>");
    x
}

/// A flat two-part badge, sized from the text (about 6.5 px a character at 11 px).
pub fn badge(label: &str, value: &str, colour: &str) -> String {
    let width = |s: &str| 10 + (s.chars().count() as u32 * 13).div_ceil(2);
    let (lw, vw) = (width(label), width(value));
    let total = lw + vw;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total}\" height=\"20\" role=\"img\" aria-label=\"{l}: {v}\">\
         <title>{l}: {v}</title><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/>\
         <rect x=\"{lw}\" width=\"{vw}\" height=\"20\" fill=\"{colour}\"/>\
         <g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\">\
         <text x=\"{lx}\" y=\"14\">{l}</text><text x=\"{vx}\" y=\"14\">{v}</text></g></svg>",
        l = esc(label),
        v = esc(value),
        lx = lw / 2,
        vx = lw + vw / 2,
    )
}

fn colour(state: PublicState) -> &'static str {
    match state {
        PublicState::Operational => "#2da44e",
        PublicState::Degraded | PublicState::Maintenance => "#bf8700",
        PublicState::Outage => "#cf222e",
        PublicState::Unknown => "#6e7781",
    }
}

/// The service's overview tile, if a status page shows it (badges exist only for those).
async fn public_tile(state: &AppState, id: &str) -> Result<Option<app::model::ServiceTile>, ApiError> {
    let Ok(id) = id.parse::<uuid::Uuid>() else { return Ok(None) };
    if !state.status_pages.is_public(id).await? {
        return Ok(None);
    }
    let overview = state.overview.get(state.reads.pool()).await?;
    Ok(overview.services.iter().find(|t| t.id == id).cloned())
}

fn svg(body: String) -> Response {
    with(body, "image/svg+xml", BADGE_CACHE)
}

async fn status_badge(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let Some(tile) = public_tile(&state, &id).await? else { return Ok(not_found()) };
    let s = match tile.state {
        _ if tile.maintenance.is_some() => PublicState::Maintenance,
        Some(app::model::Outcome::Up) => PublicState::Operational,
        Some(app::model::Outcome::Degraded) => PublicState::Degraded,
        Some(app::model::Outcome::Down) => PublicState::Outage,
        None => PublicState::Unknown,
    };
    let word = match s {
        PublicState::Operational => "up",
        PublicState::Degraded => "degraded",
        PublicState::Outage => "down",
        PublicState::Maintenance => "maintenance",
        PublicState::Unknown => "unknown",
    };
    Ok(svg(badge(&tile.name, word, colour(s))))
}

#[derive(serde::Deserialize)]
struct UptimeQuery {
    window: Option<String>,
}

async fn uptime_badge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<UptimeQuery>,
) -> Result<Response, ApiError> {
    let window = q.window.unwrap_or_else(|| "30d".into());
    let span = match window.as_str() {
        "24h" => Duration::hours(24),
        "7d" => Duration::days(7),
        "30d" => Duration::days(30),
        _ => return Err(ApiError::bad("window", "one of 24h, 7d, 30d")),
    };
    let Some(tile) = public_tile(&state, &id).await? else { return Ok(not_found()) };
    let (value, s) = match state.status_pages.uptime(tile.id, span).await? {
        None => ("no data".to_string(), PublicState::Unknown),
        Some(pct) => {
            let s = if pct >= 99.9 {
                PublicState::Operational
            } else if pct >= 99.0 {
                PublicState::Degraded
            } else {
                PublicState::Outage
            };
            (format!("{pct:.2} %"), s)
        }
    };
    Ok(svg(badge(&format!("uptime {window}"), &value, colour(s))))
}

async fn p95_badge(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let Some(tile) = public_tile(&state, &id).await? else { return Ok(not_found()) };
    let (value, s) = match tile.p95_ms {
        Some(ms) => (format!("{ms:.0} ms"), PublicState::Operational),
        None => ("no data".to_string(), PublicState::Unknown),
    };
    Ok(svg(badge("p95", &value, colour(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        assert_eq!(esc("<b a=\"1\">'&"), "&lt;b a=&quot;1&quot;&gt;&#39;&amp;");
        let b = badge("<x>", "up", "#2da44e");
        assert!(b.contains("&lt;x&gt;: up") && !b.contains("<x>"), "{b}");
    }
}
