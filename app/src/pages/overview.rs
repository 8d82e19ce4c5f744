//! The overview: every service as a tile, worst first, optionally grouped by tag. The text filter,
//! the sort order and the grouping live in the URL (`/?q=shop&sort=name&group=tag`), so a link
//! reproduces the view.

use chrono::Timelike;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::get_overview;
use crate::components::live::{LiveBadge, use_live_refetch};
use crate::markup::query_value;
use crate::model::{Overview, ServiceTile};

use crate::components::bulk::OverviewBulk;
use crate::components::first_run::FirstRun;
use crate::components::tiles::tiles_html;

/// The service Triage watches itself through (`--self-watch`).
const SELF_SERVICE: &str = "triage";

/// Figures are refetched when live events arrive; this poll is only a safety net (and keeps the
/// "checked … ago" ages moving on a quiet system).
const REFRESH_MS: u64 = 30_000;
/// Results arrive by the thousand on a busy system: at most one refetch per this many ms.
const COALESCE_MS: u64 = 2_000;

fn query(q: &str, sort: &str, group: bool) -> String {
    let mut parts = Vec::new();
    if !q.is_empty() {
        parts.push(format!("q={}", query_value(q)));
    }
    if sort != "worst" {
        parts.push(format!("sort={}", query_value(sort)));
    }
    if group {
        parts.push("group=tag".into());
    }
    if parts.is_empty() { "/".into() } else { format!("/?{}", parts.join("&")) }
}

#[component]
pub fn Overview() -> impl IntoView {
    let params = use_query_map();
    let filter = Memo::new(move |_| params.read().get("q").unwrap_or_default());
    let sort = Memo::new(move |_| params.read().get("sort").filter(|s| s == "name").unwrap_or_else(|| "worst".into()));
    let grouped = Memo::new(move |_| params.read().get_str("group") == Some("tag"));
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
    let is_admin =
        use_context::<crate::model::CurrentUser>().and_then(|c| c.0).is_some_and(|m| m.may(crate::model::Role::Admin));
    let only_self = Signal::derive(move || {
        overview.get().and_then(Result::ok).is_some_and(|o| o.services.iter().all(|s| s.name == SELF_SERVICE))
    });
    let shown = Signal::derive(move || {
        let f = filter.get();
        overview
            .get()
            .and_then(Result::ok)
            .map(|o| o.services.iter().filter(|t| t.matches(&f)).map(|t| t.id).collect())
            .unwrap_or_default()
    });
    let navigate = use_navigate();
    let go = move |q: String, s: String, g: bool| {
        navigate(&query(&q, &s, g), NavigateOptions { replace: true, scroll: false, ..Default::default() });
    };
    let (go_filter, go_group) = (go.clone(), go.clone());
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
                        on:input=move |ev| go_filter(event_target_value(&ev), sort.get_untracked(), grouped.get_untracked())
                    />
                    <label class="visually-hidden" for="service-sort">"Sort"</label>
                    <select id="service-sort" on:change=move |ev| go(filter.get_untracked(), event_target_value(&ev), grouped.get_untracked())>
                        <option value="worst" selected=move || sort.get() == "worst">"Worst first"</option>
                        <option value="name" selected=move || sort.get() == "name">"By name"</option>
                    </select>
                    <label class="check">
                        <input
                            type="checkbox"
                            prop:checked=move || grouped.get()
                            on:change=move |ev| go_group(filter.get_untracked(), sort.get_untracked(), event_target_checked(&ev))
                        />
                        " Group by tag"
                    </label>
                </div>
            </div>
            <FirstRun only_self admin=is_admin/>
            {is_admin.then(|| view! { <OverviewBulk shown refresh=tick/> })}
            <Transition fallback=|| view! { <p class="muted">"Loading services…"</p> }>
                {move || overview.get().map(|r| match r {
                    Ok(o) => view! {
                        <Tiles overview=o filter=filter.get() sort=sort.get() grouped=grouped.get()/>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">"Could not load the services: " {e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Tiles(overview: Overview, filter: String, sort: String, grouped: bool) -> impl IntoView {
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
    // Formatted by hand: chrono's strftime machinery would weigh on the first-load bundle.
    let (h, m, sec) = (at.hour(), at.minute(), at.second());
    let summary = format!("{shown} of {total} services · last 5 minutes · updated {h:02}:{m:02}:{sec:02} UTC");
    if !grouped {
        return view! {
            <p class="muted summary-line">{summary}</p>
            <ul class="tiles" aria-label="Services" inner_html=tiles_html(&tiles, at)></ul>
        }
        .into_any();
    }
    let groups = group_by_tag(tiles)
        .into_iter()
        .map(|(tag, tiles)| {
            let counts = group_counts(&tiles);
            let label = format!("Services tagged {tag}");
            view! {
                <section class="tile-group" data-tag=tag.clone()>
                    <h2 class="group-head">{tag.clone()} <span class="muted">{counts}</span></h2>
                    <ul class="tiles" aria-label=label inner_html=tiles_html(&tiles, at)></ul>
                </section>
            }
        })
        .collect_view();
    view! {
        <p class="muted summary-line">{summary}</p>
        {groups}
    }
    .into_any()
}

/// Tiles under each of their tags (a service with two tags shows in both; untagged ones last),
/// the groups worst first by their worst tile, then by name; tiles keep their order.
fn group_by_tag(tiles: Vec<ServiceTile>) -> Vec<(String, Vec<ServiceTile>)> {
    let mut groups: std::collections::BTreeMap<String, Vec<ServiceTile>> = Default::default();
    let mut untagged = Vec::new();
    for t in tiles {
        if t.tags.is_empty() {
            untagged.push(t);
            continue;
        }
        for tag in &t.tags {
            groups.entry(tag.clone()).or_default().push(t.clone());
        }
    }
    let worst = |ts: &[ServiceTile]| ts.iter().map(ServiceTile::severity_rank).min().unwrap_or(u8::MAX);
    let mut out: Vec<(String, Vec<ServiceTile>)> = groups.into_iter().collect();
    out.sort_by(|a, b| worst(&a.1).cmp(&worst(&b.1)).then_with(|| a.0.cmp(&b.0)));
    if !untagged.is_empty() {
        out.push(("untagged".into(), untagged));
    }
    out
}

/// "12 services · 1 down · 2 degraded".
fn group_counts(tiles: &[ServiceTile]) -> String {
    use crate::model::Outcome;
    let n = |o| tiles.iter().filter(|t| t.state == Some(o)).count();
    let plural = if tiles.len() == 1 { "" } else { "s" };
    let mut parts = vec![format!("{} service{plural}", tiles.len())];
    for (o, word) in [(Outcome::Down, "down"), (Outcome::Degraded, "degraded")] {
        if n(o) > 0 {
            parts.push(format!("{} {word}", n(o)));
        }
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_state_round_trips_through_the_url() {
        assert_eq!(query("", "worst", false), "/");
        assert_eq!(query("shop api", "name", false), "/?q=shop%20api&sort=name");
        assert_eq!(query("a&b=c", "worst", true), "/?q=a%26b%3Dc&group=tag");
    }

    fn tile(name: &str, tags: &[&str], state: Option<crate::model::Outcome>) -> ServiceTile {
        ServiceTile {
            id: uuid::Uuid::nil(),
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            criticality: Default::default(),
            state,
            probes: 1,
            blocked: 0,
            p95_ms: None,
            error_pct: None,
            pool_in_use: None,
            pool_max: None,
            pool_waiting: None,
            last_check: None,
            p95_trend: Vec::new(),
            maintenance: None,
            budget: None,
            locations: None,
        }
    }

    #[test]
    fn groups_put_the_worst_first_and_untagged_last() {
        use crate::model::Outcome::{Degraded, Down, Up};
        let groups = group_by_tag(vec![
            tile("api", &["payments", "edge"], Some(Down)),
            tile("db", &[], Some(Up)),
            tile("cdn", &["edge"], Some(Up)),
            tile("ledger", &["payments"], Some(Degraded)),
            tile("search", &["search"], Some(Up)),
        ]);
        let shape: Vec<(String, Vec<String>)> =
            groups.iter().map(|(g, ts)| (g.clone(), ts.iter().map(|t| t.name.clone()).collect())).collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shape,
            vec![
                ("edge".into(), s(&["api", "cdn"])),
                ("payments".into(), s(&["api", "ledger"])),
                ("search".into(), s(&["search"])),
                ("untagged".into(), s(&["db"])),
            ]
        );
        assert_eq!(group_counts(&groups[1].1), "2 services · 1 down · 1 degraded");
    }
}
