//! The overview: every service as a tile, worst first. The text filter and the sort order live in
//! the URL (`/?q=shop&sort=name`), so a link reproduces the view.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::get_overview;
use crate::components::live::{LiveBadge, use_live_refetch};
use crate::components::state::state_label;
use crate::model::{Overview, ServiceTile};

/// Figures are refetched when live events arrive; this poll is only a safety net (and keeps the
/// "checked … ago" ages moving on a quiet system).
const REFRESH_MS: u64 = 30_000;
/// Results arrive by the thousand on a busy system: at most one refetch per this many ms.
const COALESCE_MS: u64 = 2_000;

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query(q: &str, sort: &str) -> String {
    let mut parts = Vec::new();
    if !q.is_empty() {
        parts.push(format!("q={}", encode(q)));
    }
    if sort != "worst" {
        parts.push(format!("sort={}", encode(sort)));
    }
    if parts.is_empty() { "/".into() } else { format!("/?{}", parts.join("&")) }
}

#[component]
pub fn Overview() -> impl IntoView {
    let params = use_query_map();
    let filter = Memo::new(move |_| params.read().get("q").unwrap_or_default());
    let sort = Memo::new(move |_| params.read().get("sort").filter(|s| s == "name").unwrap_or_else(|| "worst".into()));
    let tick = RwSignal::new(0u64);
    let overview = Resource::new(move || tick.get(), |_| get_overview());
    let link = use_live_refetch("/api/v1/events".into(), tick, COALESCE_MS, Signal::stored(true));
    // Effects run only in the browser: the server renders once, the open page keeps refreshing.
    Effect::new(move |_| {
        let every = std::time::Duration::from_millis(REFRESH_MS);
        if let Ok(handle) = set_interval_with_handle(move || tick.update(|n| *n += 1), every) {
            on_cleanup(move || handle.clear());
        }
    });
    let navigate = use_navigate();
    let go = move |q: String, s: String| {
        navigate(&query(&q, &s), NavigateOptions { replace: true, scroll: false, ..Default::default() });
    };
    let go_filter = go.clone();
    view! {
        <Title text="Overview"/>
        <section class="page">
            <div class="page-head">
                <h1>"Services"</h1>
                <LiveBadge link=link/>
                <div class="toolbar" role="search">
                    <label class="visually-hidden" for="service-filter">"Filter services"</label>
                    <input
                        id="service-filter"
                        type="search"
                        placeholder="Filter by name or tag"
                        prop:value=move || filter.get()
                        on:input=move |ev| go_filter(event_target_value(&ev), sort.get_untracked())
                    />
                    <label class="visually-hidden" for="service-sort">"Sort"</label>
                    <select id="service-sort" on:change=move |ev| go(filter.get_untracked(), event_target_value(&ev))>
                        <option value="worst" selected=move || sort.get() == "worst">"Worst first"</option>
                        <option value="name" selected=move || sort.get() == "name">"By name"</option>
                    </select>
                </div>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading services…"</p> }>
                {move || overview.get().map(|r| match r {
                    Ok(o) => view! { <Tiles overview=o filter=filter.get() sort=sort.get()/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">"Could not load the services: " {e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Tiles(overview: Overview, filter: String, sort: String) -> impl IntoView {
    if overview.services.is_empty() {
        return view! {
            <div class="empty-state" role="status">
                <p><strong>"No services are probed yet."</strong></p>
                <p>
                    "Create probes through the API (" <code>"POST /api/v1/probes"</code> ") or a probe file ("
                    <code>"--config triage.toml"</code> "). Triage's own health is on the "
                    <a href="/status">"status page"</a> "."
                </p>
            </div>
        }
        .into_any();
    }
    let total = overview.services.len();
    let mut tiles: Vec<ServiceTile> = overview.services.into_iter().filter(|t| t.matches(&filter)).collect();
    if sort == "name" {
        tiles.sort_by(|a, b| a.name.cmp(&b.name));
    } else {
        tiles.sort_by(|a, b| a.severity_rank().cmp(&b.severity_rank()).then_with(|| a.name.cmp(&b.name)));
    }
    let shown = tiles.len();
    let at = overview.at;
    view! {
        <p class="muted summary-line">
            {format!("{shown} of {total} services · last 5 minutes · updated {}", at.format("%H:%M:%S UTC"))}
        </p>
        <ul class="tiles" aria-label="Services">
            {tiles.into_iter().map(|t| view! { <Tile tile=t now=at/> }).collect_view()}
        </ul>
    }
    .into_any()
}

fn age(now: chrono::DateTime<chrono::Utc>, at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    let Some(at) = at else { return "never checked".into() };
    let s = (now - at).num_seconds().max(0);
    match s {
        0..=59 => format!("checked {s} s ago"),
        60..=3599 => format!("checked {} min ago", s / 60),
        _ => format!("checked {} h ago", s / 3600),
    }
}

#[component]
fn Tile(tile: ServiceTile, now: chrono::DateTime<chrono::Utc>) -> impl IntoView {
    let (class, label) = state_label(tile.state);
    let p95 = tile.p95_ms.map(|v| format!("{v:.0} ms")).unwrap_or_else(|| "–".into());
    let errors = tile.error_pct.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "–".into());
    let pool = match (tile.pool_in_use, tile.pool_max) {
        (Some(u), Some(m)) if m > 0.0 => {
            let waiting =
                tile.pool_waiting.filter(|w| *w > 0.0).map(|w| format!(", {w:.0} waiting")).unwrap_or_default();
            format!("{u:.0}/{m:.0}{waiting}")
        }
        _ => "–".into(),
    };
    let saturated = matches!((tile.pool_in_use, tile.pool_max), (Some(u), Some(m)) if m > 0.0 && u >= m);
    let state_attr = tile.state.map(|s| s.as_str()).unwrap_or("none");
    view! {
        <li class="tile" data-state=state_attr data-service=tile.name.clone()>
            <div class="tile-head">
                <h2 class="tile-name"><a href=format!("/services/{}", tile.id)>{tile.name.clone()}</a></h2>
                <span class=class>{label}</span>
            </div>
            <dl class="tile-figures">
                <div><dt>"p95"</dt><dd>{p95}</dd></div>
                <div><dt>"errors"</dt><dd>{errors}</dd></div>
                <div class:warn=saturated><dt>"pool"</dt><dd>{pool}</dd></div>
            </dl>
            <p class="tile-foot muted">
                {format!("{} probes · {}", tile.probes, age(now, tile.last_check))}
                {(!tile.tags.is_empty()).then(|| view! { <span class="tags">{tile.tags.join(", ")}</span> })}
            </p>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_state_round_trips_through_the_url() {
        assert_eq!(query("", "worst"), "/");
        assert_eq!(query("shop api", "name"), "/?q=shop%20api&sort=name");
        assert_eq!(query("a&b=c", "worst"), "/?q=a%26b%3Dc");
    }
}
