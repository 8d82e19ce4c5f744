//! One service: latency, error-rate and pool charts stacked on one time axis, its probes, recent
//! results (with the request id to search the target's logs for) and state changes. The range is
//! in the URL (`/services/{id}?range=6h`); the page follows live events for this service.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::get_service_view;
use crate::charts::timeline::ChartInput;
use crate::charts::{self, ChartSize};
use crate::components::live::{LiveBadge, use_live_refetch};
use crate::components::state::state_label;
use crate::model::{DEFAULT_RANGE, RANGES, ServiceView};

const CHART: ChartSize = ChartSize { width: 960, height: 200 };
const COALESCE_MS: u64 = 2_000;

#[component]
pub fn Service() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<uuid::Uuid>().ok()));
    let range = Memo::new(move |_| query.read().get("range").unwrap_or_else(|| DEFAULT_RANGE.to_string()));
    let tick = RwSignal::new(0u64);
    let view = Resource::new(
        move || (id.get(), range.get(), tick.get()),
        |(id, range, _)| async move {
            match id {
                Some(id) => get_service_view(id, range).await,
                None => Ok(None),
            }
        },
    );
    let url = match id.get_untracked() {
        Some(id) => format!("/api/v1/events?service_id={id}"),
        None => "/api/v1/events".into(),
    };
    let link = use_live_refetch(url, tick, COALESCE_MS);
    view! {
        <section class="page">
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || view.get().map(|r| match r {
                    Ok(Some(v)) => view! { <ServiceBody view=v range=range.get() link=link/> }.into_any(),
                    Ok(None) => view! {
                        <Title text="Service not found"/>
                        <h1>"Service not found"</h1>
                        <p>"No service has this id. " <a href="/">"Back to the overview"</a></p>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">"Could not load the service: " {e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn ServiceBody(view: ServiceView, range: String, link: ReadSignal<crate::components::live::Link>) -> impl IntoView {
    let id = view.service.id;
    let (class, label) = state_label(view.service.state);
    let traffic =
        ChartInput { from: view.from, to: view.to, step_secs: view.step_secs, points: &view.traffic, bands: &[] };
    let pool = ChartInput { points: &view.pool, ..traffic };
    let latency_svg = charts::latency::render_svg(&traffic, CHART);
    let errors_svg = charts::errors::render_svg(&traffic, CHART);
    let pool_svg = charts::pool::render_svg(&pool, CHART);
    let ranges = RANGES
        .iter()
        .map(|(name, _)| {
            let current = (*name == range).to_string();
            view! { <a href=format!("/services/{id}?range={name}") aria-current=current>{*name}</a> }
        })
        .collect_view();
    let probes = view
        .probes
        .iter()
        .map(|p| {
            let (class, label) = state_label(p.status.as_ref().map(|s| s.state));
            view! {
                <tr>
                    <th scope="row">{p.spec.name.clone()}</th>
                    <td>{p.spec.kind.as_str()}</td>
                    <td><span class=class>{label}</span></td>
                    <td>{p.spec.url.clone().unwrap_or_else(|| "(push)".into())}</td>
                    <td>{format!("every {} s", p.spec.interval_secs)}</td>
                </tr>
            }
        })
        .collect_view();
    let recent = view
        .recent
        .iter()
        .map(|r| {
            let (class, label) = state_label(Some(r.outcome));
            view! {
                <tr>
                    <td>{r.at.format("%H:%M:%S").to_string()}</td>
                    <td><span class=class>{label}</span></td>
                    <td>{r.status.map(|s| s.to_string()).unwrap_or_else(|| "–".into())}</td>
                    <td>{r.error.map(|e| e.as_str()).unwrap_or("")}</td>
                    <td>{format!("{:.1} ms", r.phases.total_us as f64 / 1000.0)}</td>
                    <td><code title="x-request-id sent with this check: search the target's logs for it">{r.request_id.clone()}</code></td>
                </tr>
            }
        })
        .collect_view();
    let changes = view
        .changes
        .iter()
        .map(|c| {
            view! {
                <tr>
                    <td>{c.at.format("%Y-%m-%d %H:%M:%S").to_string()}</td>
                    <td>{format!("{} → {}", c.from.as_str(), c.to.as_str())}</td>
                    <td>{c.error.map(|e| e.as_str()).unwrap_or("")}</td>
                    <td><code>{c.request_id.clone()}</code></td>
                </tr>
            }
        })
        .collect_view();
    let has_changes = !view.changes.is_empty();
    // The newest readiness body that named its components says which dependency is failing.
    let readiness = view.recent.iter().find(|r| !r.components.is_empty()).map(|r| {
        let rows = r
            .components
            .iter()
            .map(|c| {
                let (class, label) = match c.state {
                    crate::model::ComponentState::Up => ("state state-up", "✔ up"),
                    crate::model::ComponentState::Degraded => ("state state-degraded", "▲ degraded"),
                    crate::model::ComponentState::Down => ("state state-down", "✖ down"),
                    crate::model::ComponentState::Unknown => ("state state-none", "? unknown"),
                };
                view! {
                    <tr>
                        <th scope="row">{c.name.clone()}</th>
                        <td><span class=class>{label}</span></td>
                        <td>{c.detail.clone().unwrap_or_default()}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h2>"Readiness components"</h2>
            <p class="muted">{format!("From the readiness check at {} UTC", r.at.format("%H:%M:%S"))}</p>
            <table class="grid" aria-label="Readiness components">
                <thead><tr><th>"Component"</th><th>"State"</th><th>"Detail"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
    });
    view! {
        <Title text=view.service.name.clone()/>
        <div class="page-head">
            <h1>{view.service.name.clone()} " " <span class=class>{label}</span></h1>
            <LiveBadge link=link/>
            <nav class="ranges" aria-label="Time range">{ranges}</nav>
        </div>
        <div class="stack">
            <figure class="chart"><div inner_html=latency_svg></div></figure>
            <figure class="chart"><div inner_html=errors_svg></div></figure>
            <figure class="chart"><div inner_html=pool_svg></div></figure>
        </div>
        {readiness}
        <h2>"Probes"</h2>
        <table class="grid">
            <thead><tr><th>"Probe"</th><th>"Kind"</th><th>"State"</th><th>"Target"</th><th>"Interval"</th></tr></thead>
            <tbody>{probes}</tbody>
        </table>
        <h2>"Recent results"</h2>
        <table class="grid">
            <thead><tr><th>"Time (UTC)"</th><th>"Outcome"</th><th>"Status"</th><th>"Error"</th><th>"Total"</th><th>"Request id"</th></tr></thead>
            <tbody>{recent}</tbody>
        </table>
        <h2>"State changes"</h2>
        {if has_changes {
            view! {
                <table class="grid">
                    <thead><tr><th>"Time (UTC)"</th><th>"Change"</th><th>"Error"</th><th>"Request id"</th></tr></thead>
                    <tbody>{changes}</tbody>
                </table>
            }.into_any()
        } else {
            view! { <p class="muted">"No state changes yet."</p> }.into_any()
        }}
    }
}
