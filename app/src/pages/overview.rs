//! The overview: problems first, counts by state and tag, and one page of tiles. Everything the
//! view depends on is in the URL (`/?q=shop&state=problems&tag=edge&sort=name&page=2`), so a link
//! reproduces it. The server filters, counts and pages (`Overview::page`), so what a browser
//! receives and hydrates is one page whatever the fleet's size.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::get_overview;
use crate::components::live::{LiveBadge, use_live_refetch};
use crate::markup::query_value;
use crate::model::{OverviewPage, OverviewQuery, OverviewSort, StateFilter};

use crate::components::bulk::OverviewBulk;
use crate::components::first_run::FirstRun;

/// Figures are refetched when live events arrive; this poll is only a safety net (and keeps the
/// "checked … ago" ages moving on a quiet system).
const REFRESH_MS: u64 = 30_000;
/// Results arrive by the thousand on a busy system: at most one refetch per this many ms.
const COALESCE_MS: u64 = 2_000;

/// The URL of a view state; defaults are left out.
fn href(q: &OverviewQuery) -> String {
    let mut parts = Vec::new();
    if !q.q.is_empty() {
        parts.push(format!("q={}", query_value(&q.q)));
    }
    if let Some(state) = q.state {
        parts.push(format!("state={}", state.as_str()));
    }
    if let Some(tag) = &q.tag {
        parts.push(format!("tag={}", query_value(tag)));
    }
    if q.sort == OverviewSort::Name {
        parts.push("sort=name".into());
    }
    if q.page > 1 {
        parts.push(format!("page={}", q.page));
    }
    if parts.is_empty() { "/".into() } else { format!("/?{}", parts.join("&")) }
}

/// The view state a URL's query holds; anything unknown falls back to the default.
fn view_state(get: impl Fn(&str) -> Option<String>) -> OverviewQuery {
    OverviewQuery {
        q: get("q").unwrap_or_default(),
        sort: if get("sort").as_deref() == Some("name") { OverviewSort::Name } else { OverviewSort::Worst },
        state: get("state").as_deref().and_then(StateFilter::parse),
        tag: get("tag").filter(|t| !t.is_empty()),
        page: get("page").and_then(|p| p.parse().ok()).filter(|p| *p >= 1).unwrap_or(1),
    }
}

#[component]
pub fn Overview() -> impl IntoView {
    let params = use_query_map();
    let state = Memo::new(move |_| params.with(|p| view_state(|k| p.get(k))));
    let tick = RwSignal::new(0u64);
    let overview = Resource::new(move || (tick.get(), state.get()), |(_, q)| get_overview(q));
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
    let loaded = move || overview.get().and_then(Result::ok);
    let only_self = Signal::derive(move || loaded().is_some_and(|o| o.only_self));
    let shown = Signal::derive(move || loaded().map(|o| o.shown).unwrap_or_default());
    let pages = Signal::derive(move || loaded().map_or(1, |o| o.pages));
    use_page_keys(state, pages);
    let navigate = use_navigate();
    let go = move |q: OverviewQuery| {
        navigate(&href(&q), NavigateOptions { replace: true, scroll: false, ..Default::default() });
    };
    let go_sort = go.clone();
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
                        placeholder="Filter by name or tag  ( / )"
                        prop:value=move || state.with(|s| s.q.clone())
                        on:input=move |ev| go(OverviewQuery { q: event_target_value(&ev), page: 1, ..state.get_untracked() })
                    />
                    <label class="visually-hidden" for="service-sort">"Sort"</label>
                    <select id="service-sort" on:change=move |ev| {
                        let sort = if event_target_value(&ev) == "name" { OverviewSort::Name } else { OverviewSort::Worst };
                        go_sort(OverviewQuery { sort, page: 1, ..state.get_untracked() })
                    }>
                        <option value="worst" selected=move || state.with(|s| s.sort == OverviewSort::Worst)>"Worst first"</option>
                        <option value="name" selected=move || state.with(|s| s.sort == OverviewSort::Name)>"By name"</option>
                    </select>
                </div>
            </div>
            <FirstRun only_self admin=is_admin/>
            {is_admin.then(|| view! { <OverviewBulk shown refresh=tick/> })}
            <Transition fallback=|| view! { <p class="muted">"Loading services…"</p> }>
                {move || overview.get().map(|r| match r {
                    Ok(o) => view! { <Tiles page=o query=state.get()/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">"Could not load the services: " {e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// `/` focuses the filter; `n` and `p` turn the page (never while typing).
fn use_page_keys(state: Memo<OverviewQuery>, pages: Signal<u32>) {
    let navigate = use_navigate();
    Effect::new(move |_| {
        let navigate = navigate.clone();
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.ctrl_key() || ev.meta_key() || ev.alt_key() || crate::components::keys::typing(&ev) {
                return;
            }
            let q = state.get_untracked();
            let to = match ev.key().as_str() {
                "/" => {
                    ev.prevent_default();
                    crate::components::keys::focus("service-filter");
                    return;
                }
                "n" | "N" if q.page < pages.get_untracked() => q.page + 1,
                "p" | "P" if q.page > 1 => q.page - 1,
                _ => return,
            };
            ev.prevent_default();
            navigate(&href(&OverviewQuery { page: to, ..q }), NavigateOptions { scroll: false, ..Default::default() });
        });
        on_cleanup(move || handle.remove());
    });
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

#[component]
fn Tiles(page: OverviewPage, query: OverviewQuery) -> impl IntoView {
    if page.total == 0 {
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
    let first = (page.page as usize - 1) * crate::model::OVERVIEW_PAGE;
    let range = if page.pages > 1 {
        format!(" · showing {}–{}", count(first as u32 + 1), count((first + page.shown.len()) as u32))
    } else {
        String::new()
    };
    let summary = format!(
        "{} of {} services{range} · last 5 minutes · updated {} UTC",
        count(page.matched),
        count(page.total),
        page.updated
    );
    view! {
        <Facets page=page.clone() query=query.clone()/>
        <p class="muted summary-line">{summary}<span class="keys" aria-hidden="true">" · keys: / filter, N next page, P previous"</span></p>
        <ul class="tiles" aria-label="Services" inner_html=page.tiles_html></ul>
        <Pager page=page.page pages=page.pages query/>
    }
    .into_any()
}

/// Counts by state and by tag, each a link that narrows the view (and a second click widens it).
#[component]
fn Facets(page: OverviewPage, query: OverviewQuery) -> impl IntoView {
    let c = page.counts;
    let state_link = |filter: Option<StateFilter>, label: &'static str, n: u32| {
        let current = query.state == filter;
        let to = OverviewQuery { state: if current { None } else { filter }, page: 1, ..query.clone() };
        let class = filter.map_or("facet", |f| match f {
            StateFilter::Down => "facet facet-down",
            StateFilter::Degraded => "facet facet-degraded",
            StateFilter::Problems if n > 0 => "facet facet-down",
            _ => "facet",
        });
        view! {
            <a class=class href=href(&to) aria-current=current.then_some("true") data-state=filter.map(|f| f.as_str())>
                {label} " " <strong>{count(n)}</strong>
            </a>
        }
    };
    let states = [
        state_link(None, "All", c.total()),
        state_link(Some(StateFilter::Problems), "Problems", c.of(StateFilter::Problems)),
        state_link(Some(StateFilter::Down), "Down", c.down),
        state_link(Some(StateFilter::Degraded), "Degraded", c.degraded),
        state_link(Some(StateFilter::Up), "Up", c.up),
        state_link(Some(StateFilter::NoData), "No data", c.no_data),
    ];
    let tags = page
        .tags
        .iter()
        .map(|t| {
            let current = query.tag.as_deref() == Some(t.tag.as_str());
            let to = OverviewQuery { tag: if current { None } else { Some(t.tag.clone()) }, page: 1, ..query.clone() };
            let trouble = match (t.down, t.degraded) {
                (0, 0) => String::new(),
                (0, d) => format!(" · {d} degraded"),
                (d, 0) => format!(" · {d} down"),
                (d, g) => format!(" · {d} down, {g} degraded"),
            };
            let class = if t.down > 0 {
                "facet facet-down"
            } else if t.degraded > 0 {
                "facet facet-degraded"
            } else {
                "facet"
            };
            view! {
                <a class=class href=href(&to) aria-current=current.then_some("true") data-tag=t.tag.clone()>
                    {t.tag.clone()} " " <strong>{count(t.services)}</strong> {trouble}
                </a>
            }
        })
        .collect_view();
    view! {
        <nav class="facets" aria-label="States">{states}</nav>
        {(!page.tags.is_empty()).then(|| view! { <nav class="facets" aria-label="Tags">{tags}</nav> })}
    }
}

#[component]
fn Pager(page: u32, pages: u32, query: OverviewQuery) -> impl IntoView {
    (pages > 1).then(|| {
        let to = |p: u32| href(&OverviewQuery { page: p, ..query.clone() });
        view! {
            <nav class="pager" aria-label="Pages">
                {(page > 1).then(|| view! { <a href=to(page - 1) rel="prev">"← Previous"</a> })}
                <span>{format!("Page {page} of {pages}")}</span>
                {(page < pages).then(|| view! { <a href=to(page + 1) rel="next">"Next →"</a> })}
            </nav>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_state_round_trips_through_the_url() {
        assert_eq!(href(&OverviewQuery { page: 1, ..Default::default() }), "/");
        let q = OverviewQuery {
            q: "shop api".into(),
            sort: OverviewSort::Name,
            state: Some(StateFilter::NoData),
            tag: Some("a&b=c".into()),
            page: 3,
        };
        let url = href(&q);
        assert_eq!(url, "/?q=shop%20api&state=no_data&tag=a%26b%3Dc&sort=name&page=3");
        let decoded: std::collections::HashMap<String, String> = url[2..]
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace("%20", " ").replace("%26", "&").replace("%3D", "=")))
            .collect();
        assert_eq!(view_state(|k| decoded.get(k).cloned()), q);
        let junk = view_state(|k| Some(if k == "page" { "0".into() } else { "nonsense".into() }));
        assert_eq!((junk.sort, junk.state, junk.page), (OverviewSort::Worst, None, 1));
    }

    #[test]
    fn counts_group_their_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(20_000), "20,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
