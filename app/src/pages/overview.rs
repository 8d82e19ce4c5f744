//! The overview: problems first, counts by state and tag, and one page of tiles. Everything the
//! view depends on is in the URL (`/?q=shop&state=problems&tag=edge&sort=name&page=2`), so a link
//! reproduces it.
//!
//! The server renders the body (counts, tiles, pager) into the page it serves, and the open page
//! refreshes it from `GET /api/v1/overview.html`, swapping the HTML in. The browser never decodes
//! the overview: that kept a JSON decoder and the views of every count and tile in the first-load
//! bundle, and the page stays one page of tiles whatever the fleet's size.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::components::dom;
use crate::components::live::{LiveBadge, use_live_refetch};
use crate::model::{FIRST_RUN_MARK, OverviewBody, OverviewQuery, OverviewSort};

/// The body is refreshed when live events arrive; this poll is only a safety net (and keeps the
/// "checked … ago" ages moving on a quiet system).
const REFRESH_MS: u64 = 30_000;
/// Results arrive by the thousand on a busy system: at most one refresh per this many ms.
const COALESCE_MS: u64 = 2_000;
const BODY_ID: &str = "overview-body";

#[component]
pub fn Overview() -> impl IntoView {
    let params = use_query_map();
    let state = Memo::new(move |_| params.with(|p| OverviewQuery::from_query(|k| p.get(k))));
    let tick = RwSignal::new(0u64);
    // On the server: the body it rendered for this request. In the browser the server's HTML is
    // already in the page (hydration leaves inner HTML alone), so it starts empty.
    let served = use_context::<OverviewBody>();
    let body = RwSignal::new(served.map(|b| b.html).unwrap_or_default());
    // The first-run panel comes after hydration (the server's page and the hydrated one agree),
    // when the server's body asks for it.
    let first_run = RwSignal::new(false);
    Effect::new(move |_| {
        if dom::exists("#overview-meta[data-first-run]") {
            first_run.set(true);
        }
    });
    let failed = RwSignal::new(None::<String>);
    let link = use_live_refetch("/api/v1/events".into(), tick, COALESCE_MS, Signal::stored(true));
    // Effects run only in the browser: the server renders once, the open page keeps refreshing.
    Effect::new(move |_| {
        let every = std::time::Duration::from_millis(REFRESH_MS);
        if let Ok(handle) = set_interval_with_handle(move || tick.update(|n| *n += 1), every) {
            on_cleanup(move || handle.clear());
        }
    });
    let latest = StoredValue::new(0u64);
    Effect::new(move |before: Option<()>| {
        let (_, query) = (tick.get(), state.get());
        // Just hydrated: the server's body is in the page.
        if before.is_none() && dom::has_children(BODY_ID) {
            return;
        }
        latest.update_value(|n| *n += 1);
        let mine = latest.get_value();
        leptos::task::spawn_local(async move {
            let result =
                crate::components::fetch::text(&format!("/api/v1/overview.html{}", query.query_string())).await;
            // A slower answer to an older view state must not replace a newer one, and a page
            // left meanwhile (its values disposed) takes none.
            if latest.try_get_value() != Some(mine) {
                return;
            }
            match result {
                Ok(html) => {
                    first_run.set(html.contains(FIRST_RUN_MARK));
                    body.set(html);
                    failed.set(None);
                }
                Err(e) => failed.set(Some(e)),
            }
        });
    });
    let is_admin =
        use_context::<crate::model::CurrentUser>().and_then(|c| c.0).is_some_and(|m| m.may(crate::model::Role::Admin));
    use_page_keys(state);
    let navigate = use_navigate();
    let go = move |q: OverviewQuery| {
        navigate(&q.href(), NavigateOptions { replace: true, scroll: false, ..Default::default() });
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
            {move || first_run.get().then(|| view! {
                <Suspense>{Suspend::new(crate::components::first_run::first_run(is_admin))}</Suspense>
            })}
            {is_admin.then(|| view! {
                <Suspense>{Suspend::new(crate::components::bulk::overview_bulk(tick))}</Suspense>
            })}
            {move || failed.get().map(|e| view! {
                <p class="error" role="alert">"Could not refresh the services: " {e}</p>
            })}
            <div id=BODY_ID inner_html=move || body.get()></div>
        </section>
    }
}

/// The page count the body shows now (for the keys).
fn pages_in_page() -> u32 {
    dom::attribute("overview-meta", "data-pages").and_then(|p| p.parse().ok()).unwrap_or(1)
}

/// `/` focuses the filter; `n` and `p` turn the page (never while typing).
fn use_page_keys(state: Memo<OverviewQuery>) {
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
                "n" | "N" if q.page < pages_in_page() => q.page + 1,
                "p" | "P" if q.page > 1 => q.page - 1,
                _ => return,
            };
            ev.prevent_default();
            navigate(&OverviewQuery { page: to, ..q }.href(), NavigateOptions { scroll: false, ..Default::default() });
        });
        on_cleanup(move || handle.remove());
    });
}
