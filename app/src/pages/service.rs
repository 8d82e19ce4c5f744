//! One service: latency, error-rate and pool charts stacked on one time axis, its probes, recent
//! results (with the request id to search the target's logs for) and state changes.
//!
//! The window is in the URL: a preset (`?range=6h`) follows live events; a custom range or a
//! drag-zoom (`?from=…&to=…`, RFC 3339) is a fixed window and the page says it is paused.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use super::changes::{ChangeForm, ChangeList};
use super::slo::{SloForm, SloSummary};
use crate::api::get_service_view;
use crate::charts::frame::{Band, ChangeMark, ChartInput};
use crate::charts::locations::LocationLine;
use crate::charts::{self, ChartSize};
use crate::components::live::{Link, LiveBadge, use_live_refetch};
use crate::components::state::{probe_state_label, state_label};
use crate::model::{RANGES, SeriesPoint, ServiceView, Window, WindowError, bucket_at, local_input, parse_time};

const CHART: ChartSize = ChartSize { width: 960, height: 200 };
/// A service's results refetch its page at most ten times a second (the first one at once): a
/// new point shows within a fifth of a second even while thousands of checks a second run
/// elsewhere, and one open page asks for at most ten small views a second.
const COALESCE_MS: u64 = 100;

#[component]
pub fn Service() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<uuid::Uuid>().ok()));
    let window = Memo::new(move |_| {
        let q = query.read();
        Window::from_query(q.get_str("range"), q.get_str("from"), q.get_str("to"))
    });
    // The latency chart's view: percentiles (default) or mean time per phase (`?lat=phases`).
    // The view within the window, in the URL too: `?lat=phases`, and `?location=eu-west` for one
    // location of probes run from several.
    let lens = Memo::new(move |_| {
        let q = query.read();
        Lens { phases: q.get_str("lat") == Some("phases"), location: q.get_str("location").map(str::to_owned) }
    });
    let tick = RwSignal::new(0u64);
    let view = Resource::new(
        move || (id.get(), window.get(), tick.get()),
        |(id, window, _)| async move {
            match (id, window) {
                (Some(id), Ok(window)) => get_service_view(id, window).await.map(Some),
                _ => Ok(None),
            }
        },
    );
    let url = match id.get_untracked() {
        Some(id) => format!("/api/v1/events?service_id={id}"),
        None => "/api/v1/events".into(),
    };
    let following = Signal::derive(move || window.read().as_ref().is_ok_and(Window::is_live));
    let link = use_live_refetch(url, tick, COALESCE_MS, following);
    let (pending, set_pending) = signal(false);
    // Outside the refetched body: a live refetch in the middle of a drag must not drop it.
    let pointer = Pointer::default();
    let copied = RwSignal::new(None::<String>);
    let me = use_context::<crate::model::CurrentUser>().and_then(|c| c.0);
    let may_record = me.as_ref().is_some_and(|m| m.may(crate::model::Role::Responder));
    let may_set_slo = me.as_ref().is_some_and(|m| m.may(crate::model::Role::Admin));
    view! {
        <section class="page" aria-busy=move || pending.get().to_string()>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> } set_pending>
                {move || view.get().map(|r| match (r, window.get()) {
                    (Ok(Some(Some(v))), Ok(w)) => view! { <ServiceBody view=v window=w link=link pending pointer copied lens=lens.get()/> }.into_any(),
                    (_, Err(problem)) => view! {
                        <Title text="Bad time range"/>
                        <h1>"This link's time range is not valid"</h1>
                        <p class="error" role="alert">{problem.to_string()}</p>
                        <p>{id.get().map(|id| view! { <a href=format!("/services/{id}")>"Show the last hour instead"</a> })}</p>
                    }.into_any(),
                    (Ok(_), _) => view! {
                        <Title text="Service not found"/>
                        <h1>"Service not found"</h1>
                        <p>"No service has this id. " <a href="/">"Back to the overview"</a></p>
                    }.into_any(),
                    (Err(e), _) => view! { <p class="error" role="alert">"Could not load the service: " {e.to_string()}</p> }.into_any(),
                })}
            </Transition>
            // Outside the refetched body, so a live refetch does not clear what is being typed.
            {move || id.get().map(|service| view! {
                {may_record.then(|| view! { <ChangeForm service=service.to_string() saved=tick/> })}
                {may_set_slo.then(|| view! { <SloForm service saved=tick/> })}
            }.into_any())}
        </section>
    }
}

/// How the window is shown: the latency view and the location picked, if any.
#[derive(Clone, Debug, Default, PartialEq)]
struct Lens {
    phases: bool,
    location: Option<String>,
}

impl Lens {
    fn query(&self) -> String {
        let mut q = String::new();
        if self.phases {
            q.push_str("&lat=phases");
        }
        if let Some(l) = &self.location {
            q.push_str("&location=");
            q.push_str(&crate::markup::query_value(l));
        }
        q
    }

    fn with_phases(&self, phases: bool) -> Self {
        Self { phases, ..self.clone() }
    }

    fn at(&self, location: Option<&str>) -> Self {
        Self { location: location.map(str::to_owned), ..self.clone() }
    }
}

/// The service page's URL for `window`, keeping the view (`?lat=phases`, `?location=`).
fn page_href(id: uuid::Uuid, window: &Window, lens: &Lens) -> String {
    format!("/services/{id}?{}{}", window.query(), lens.query())
}

fn preset(name: &str) -> Window {
    Window::Preset { name: name.to_string() }
}

/// "● live" while a preset follows new results; "paused" with the way back for a fixed window.
#[component]
fn WindowState(window: Window, link: ReadSignal<Link>, live_href: String) -> impl IntoView {
    if window.is_live() {
        view! { <LiveBadge link=link/> }.into_any()
    } else {
        view! {
            <span class="live live-paused" role="status">"❚❚ paused · fixed range"</span>
            <a class="button" href=live_href>"Back to live"</a>
        }
        .into_any()
    }
}

/// The custom range: two UTC times. A plain GET form, so it works before hydration too; once
/// hydrated it navigates in place.
#[component]
fn CustomRange(
    id: uuid::Uuid,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    lens: Lens,
) -> impl IntoView {
    let from_input = NodeRef::<leptos::html::Input>::new();
    let to_input = NodeRef::<leptos::html::Input>::new();
    let (problem, set_problem) = signal(None::<String>);
    let (phases, location) = (lens.phases, lens.location.clone());
    let navigate = use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = |r: NodeRef<leptos::html::Input>| r.get().map(|i| i.value()).unwrap_or_default();
        let (f, t) = (value(from_input), value(to_input));
        let window = match (parse_time(&f), parse_time(&t)) {
            (Some(f), Some(t)) => Window::fixed(f, t),
            (None, _) => Err(WindowError { field: "from", message: "not a time".into() }),
            (_, None) => Err(WindowError { field: "to", message: "not a time".into() }),
        };
        match window {
            Ok(w) => {
                set_problem.set(None);
                navigate(&page_href(id, &w, &lens), NavigateOptions { scroll: false, ..Default::default() });
            }
            Err(e) => set_problem.set(Some(e.to_string())),
        }
    };
    view! {
        <details class="custom-range">
            <summary>"Custom"</summary>
            <form method="get" action=format!("/services/{id}") on:submit=submit>
                {phases.then(|| view! { <input type="hidden" name="lat" value="phases"/> })}
                {location.map(|l| view! { <input type="hidden" name="location" value=l/> })}
                <label>"From (UTC) " <input node_ref=from_input type="datetime-local" name="from" step="60" value=local_input(from) required/></label>
                <label>"To (UTC) " <input node_ref=to_input type="datetime-local" name="to" step="60" value=local_input(to) required/></label>
                <button type="submit">"Apply"</button>
                {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
            </form>
        </details>
    }
}

#[component]
fn ServiceBody(
    mut view: ServiceView,
    window: Window,
    link: ReadSignal<Link>,
    pending: ReadSignal<bool>,
    pointer: Pointer,
    copied: RwSignal<Option<String>>,
    lens: Lens,
) -> impl IntoView {
    let id = view.service.id;
    let phases = lens.phases;
    let (class, label) = state_label(view.service.state);
    let mut bands = incident_bands(&view.incidents, view.to);
    bands.extend(view.maintenance.iter().map(|m| Band {
        from: m.from,
        to: m.to,
        label: format!("maintenance: {}", m.title),
    }));
    let change_marks = ChangeMark::of(&view.change_events);
    let traffic = ChartInput {
        from: view.from,
        to: view.to,
        step_secs: view.step_secs,
        points: &view.traffic,
        bands: &bands,
        markers: &[],
        changes: &change_marks,
    };
    let pool = ChartInput { points: &view.pool, ..traffic };
    let mut svgs = vec![
        if phases { charts::phases::render_svg(&traffic, CHART) } else { charts::latency::render_svg(&traffic, CHART) },
        charts::errors::render_svg(&traffic, CHART),
        charts::pool::render_svg(&pool, CHART),
    ];
    let picked = lens.location.clone();
    let located = |l: &str| picked.as_deref().is_none_or(|p| p == l);
    let several = view.locations.iter().map(|l| l.probe_id).collect::<std::collections::HashSet<_>>().len() > 1;
    let lines: Vec<LocationLine> = view
        .locations
        .iter()
        .filter(|l| located(&l.location))
        .map(|l| LocationLine {
            name: if several { format!("{} · {}", l.probe, l.location) } else { l.location.clone() },
            points: l.points.clone(),
        })
        .collect();
    let by_location = (!view.locations.is_empty()).then(|| {
        let svg = charts::locations::render_svg(&ChartInput { points: &[], ..traffic }, &lines, CHART);
        let mut names: Vec<String> = view.locations.iter().map(|l| l.location.clone()).collect();
        names.dedup();
        let all_href = page_href(id, &window, &lens.at(None));
        let picks = names
            .into_iter()
            .map(|n| {
                let href = page_href(id, &window, &lens.at(Some(&n)));
                let current = (picked.as_deref() == Some(n.as_str())).to_string();
                view! { <a href=href aria-current=current>{n}</a> }
            })
            .collect_view();
        let rows = view
            .locations
            .iter()
            .filter(|l| located(&l.location))
            .map(|l| {
                let (class, label) = state_label(l.state);
                view! {
                    <tr data-location=l.location.clone()>
                        <th scope="row">{l.probe.clone()}</th>
                        <td>{l.location.clone()}</td>
                        <td><span class=class>{label}</span></td>
                        <td>{l.p95_ms.map(|ms| format!("{ms:.1} ms")).unwrap_or_else(|| "–".into())}</td>
                        <td>{l.checks}</td>
                        <td>{l.failed}</td>
                        <td>{l.last_check.map(|t| t.format("%H:%M:%S").to_string()).unwrap_or_else(|| "never".into())}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h2 id="locations">"Locations"</h2>
            <nav class="ranges" aria-label="Location">
                <a href=all_href aria-current=picked.is_none().to_string()>"all"</a>
                {picks}
            </nav>
            <figure class="chart" data-testid="location-chart"><div inner_html=svg></div></figure>
            <table class="grid" aria-labelledby="locations">
                <thead><tr><th>"Probe"</th><th>"Location"</th><th>"State"</th><th>"p95"</th><th>"Checks"</th><th>"Failed"</th><th>"Last check (UTC)"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
    });
    // Only services with ICMP checks have echoes to lose.
    if view.traffic.iter().any(|p| p.loss_pct.is_some()) {
        svgs.push(charts::loss::render_svg(&traffic, CHART));
    }
    let ranges = RANGES
        .iter()
        .map(|(name, _)| {
            let current = (window.preset() == Some(*name)).to_string();
            view! { <a href=page_href(id, &preset(name), &lens) aria-current=current>{*name}</a> }
        })
        .collect_view();
    // Every link keeps the latency view.
    let zoom_out = page_href(id, &Window::zoom_out(view.from, view.to, view.now), &lens);
    let live_href = page_href(id, &Window::default(), &lens);
    let lat_link = |to_phases: bool, label: &'static str| {
        let href = page_href(id, &window, &lens.with_phases(to_phases));
        view! { <a href=href aria-current=(phases == to_phases).to_string()>{label}</a> }
    };
    // Keys for the common moves, so an engineer at 3 a.m. need not aim: 1–6 pick a range,
    // - (or o) zooms out, l goes back to live, p switches the latency view.
    let keys = KeyTargets {
        ranges: RANGES.iter().map(|(name, _)| page_href(id, &preset(name), &lens)).collect(),
        zoom_out: zoom_out.clone(),
        live: live_href.clone(),
        toggle: page_href(id, &window, &lens.with_phases(!phases)),
    };
    use_keys(keys);
    let lat_switch = view! {
        <nav class="ranges lat-switch" aria-label="Latency view">
            {lat_link(false, "percentiles")}
            {lat_link(true, "phases")}
        </nav>
    };
    let span = match &window {
        Window::Preset { name } => format!("last {name}"),
        Window::Fixed { from, to } => {
            format!("{} → {} UTC", from.format("%Y-%m-%d %H:%M"), to.format("%Y-%m-%d %H:%M"))
        }
    };
    let stack = StackData {
        id,
        from: view.from,
        to: view.to,
        step_secs: view.step_secs,
        // The charts are drawn: the cursor's data can take the series rather than copy them.
        traffic: std::mem::take(&mut view.traffic),
        pool: std::mem::take(&mut view.pool),
        changes: view.change_events.clone(),
    };
    let probes = view
        .probes
        .iter()
        .map(|p| {
            let (class, label) = probe_state_label(p.status.as_ref());
            let blocked = p.status.as_ref().is_some_and(|s| s.blocked());
            view! {
                <tr>
                    <th scope="row">{p.spec.name.clone()}</th>
                    <td>{p.spec.kind.as_str()}</td>
                    <td><span class=class>{label}</span>
                        {blocked.then(|| view! {
                            <span class="muted">" — no incident is opened; an admin allows the target in "
                                <a href="/config#allowlist">"Configure → Network allowlist"</a></span>
                        })}</td>
                    <td>{p.spec.url.clone().unwrap_or_else(|| "(push)".into())}</td>
                    <td>{format!("every {} s", p.spec.interval_secs)}</td>
                </tr>
            }
        })
        .collect_view();
    let with_location = !view.locations.is_empty();
    let recent = view
        .recent
        .iter()
        .filter(|r| located(r.location.as_deref().unwrap_or(crate::model::LOCAL)))
        .take(20)
        .map(|r| {
            let (class, label) = state_label(Some(r.outcome));
            view! {
                <tr>
                    <td>{r.at.format("%H:%M:%S").to_string()}</td>
                    {with_location.then(|| view! { <td>{r.location.clone().unwrap_or_else(|| crate::model::LOCAL.into())}</td> })}
                    <td><span class=class>{label}</span></td>
                    <td>{r.status.map(|s| s.to_string()).unwrap_or_else(|| "–".into())}</td>
                    <td>{r.error.map(|e| e.as_str()).unwrap_or("")}</td>
                    // What the check saw: DNS answers, echoes, serving status, the certificate.
                    <td class="detail">{r.detail.clone().unwrap_or_default()}</td>
                    <td>{format!("{:.1} ms", r.phases.total_us as f64 / 1000.0)}</td>
                    <td class="request-id"><CopyId id=r.request_id.clone() copied/></td>
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
                    <td>{format!("{} → {}", crate::model::unknown_state::as_str(c.from), c.to.as_str())}</td>
                    <td>{c.error.map(|e| e.as_str()).unwrap_or("")}</td>
                    <td class="request-id"><CopyId id=c.request_id.clone() copied/></td>
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
            <WindowState window=window.clone() link=link live_href/>
            <nav class="ranges" aria-label="Time range">{ranges}</nav>
            <a class="button" href=zoom_out title="Show twice the time around this window">"Zoom out"</a>
            <CustomRange id from=view.from to=view.to lens=lens.clone()/>
        </div>
        <p class="muted summary-line">
            {span} {format!(" · {} s per point · drag across a chart to zoom", view.step_secs)}
            // Always in the markup, shown by a class: a text node that exists on one side of
            // hydration only (the browser may already be refetching) shifted the nodes after it.
            <span class="updating" class:on=move || pending.get()>" · updating…"</span>
            <span class="keys" aria-hidden="true">" · keys: 1–6 range, − zoom out, L live, P phases"</span>
        </p>
        <div class="chart-options">"Latency: " {lat_switch}</div>
        <ChartStack svgs data=stack pointer lens=lens.clone()/>
        {by_location}
        <SloSummary slo=view.slo.clone()/>
        <h2>"Changes"</h2>
        <ChangeList events=view.change_events.clone()/>
        {readiness}
        <h2>"Probes"</h2>
        <table class="grid" aria-label="Probes">
            <thead><tr><th>"Probe"</th><th>"Kind"</th><th>"State"</th><th>"Target"</th><th>"Interval"</th></tr></thead>
            <tbody>{probes}</tbody>
        </table>
        <h2>"Recent results"</h2>
        <table class="grid" aria-label="Recent results">
            <thead><tr><th>"Time (UTC)"</th>{with_location.then(|| view! { <th>"Location"</th> })}<th>"Outcome"</th><th>"Status"</th><th>"Error"</th><th>"Detail"</th><th>"Total"</th><th>"Request id"</th></tr></thead>
            <tbody>{recent}</tbody>
        </table>
        <h2>"State changes"</h2>
        {if has_changes {
            view! {
                <table class="grid" aria-label="State changes">
                    <thead><tr><th>"Time (UTC)"</th><th>"Change"</th><th>"Error"</th><th>"Request id"</th></tr></thead>
                    <tbody>{changes}</tbody>
                </table>
            }.into_any()
        } else {
            view! { <p class="muted">"No state changes yet."</p> }.into_any()
        }}
    }
}

/// Where each key of the service page leads.
#[derive(Clone)]
struct KeyTargets {
    ranges: Vec<String>,
    zoom_out: String,
    live: String,
    toggle: String,
}

impl KeyTargets {
    fn target(&self, key: &str) -> Option<&str> {
        match key {
            "1" | "2" | "3" | "4" | "5" | "6" => {
                key.parse::<usize>().ok().and_then(|n| self.ranges.get(n - 1)).map(String::as_str)
            }
            "-" | "o" | "O" => Some(&self.zoom_out),
            "l" | "L" => Some(&self.live),
            "p" | "P" => Some(&self.toggle),
            _ => None,
        }
    }
}

/// Listens for the page's keys while the component lives (browser only; never while typing).
fn use_keys(keys: KeyTargets) {
    let navigate = use_navigate();
    Effect::new(move |_| {
        let (keys, navigate) = (keys.clone(), navigate.clone());
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.ctrl_key() || ev.meta_key() || ev.alt_key() || crate::components::keys::typing(&ev) {
                return;
            }
            if let Some(href) = keys.target(&ev.key()) {
                ev.prevent_default();
                navigate(href, NavigateOptions { scroll: false, ..Default::default() });
            }
        });
        on_cleanup(move || handle.remove());
    });
}

/// What the shared cursor needs to say what is under it.
#[derive(Clone)]
struct StackData {
    id: uuid::Uuid,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    step_secs: u64,
    traffic: Vec<SeriesPoint>,
    pool: Vec<SeriesPoint>,
    changes: Vec<crate::model::ChangeEvent>,
}

impl StackData {
    fn time_at(&self, fraction: f64) -> chrono::DateTime<chrono::Utc> {
        let span_ms = (self.to - self.from).num_milliseconds() as f64;
        self.from + chrono::Duration::milliseconds((span_ms * fraction.clamp(0.0, 1.0)) as i64)
    }

    /// The tooltip's lines for the time at `fraction` of the width.
    fn describe(&self, fraction: f64) -> Vec<String> {
        let at = self.time_at(fraction);
        let mut lines = vec![format!("{} UTC", at.format("%Y-%m-%d %H:%M:%S"))];
        let ms = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
        match bucket_at(&self.traffic, self.step_secs, at) {
            Some(p) if p.count > 0 => {
                lines.push(format!("p50 {} · p95 {} · p99 {} ms", ms(p.p50_ms), ms(p.p95_ms), ms(p.p99_ms)));
                lines.push(format!("errors {:.1} % ({} of {} checks)", p.error_pct.unwrap_or(0.0), p.down, p.count));
                if let Some(ph) = p.phases_ms {
                    lines.push(format!(
                        "mean DNS {:.1} · connect {:.1} · TLS {:.1} · TTFB {:.1} · transfer {:.1} ms",
                        ph.dns, ph.connect, ph.tls, ph.ttfb, ph.transfer
                    ));
                }
                if let Some(loss) = p.loss_pct {
                    lines.push(format!("packet loss {loss:.1} %"));
                }
            }
            _ => lines.push("no checks in this bucket".into()),
        }
        if let Some(pool) = bucket_at(&self.pool, self.step_secs, at).and_then(|p| p.pool.as_ref()) {
            let n = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
            lines.push(format!("pool {} of {} in use, {} waiting", n(pool.in_use), n(pool.max), n(pool.waiting)));
        }
        // A change marker is a 1-pixel line: the pointer counts as on it within a bucket.
        let near = chrono::Duration::seconds(i64::try_from(self.step_secs).unwrap_or(60));
        for c in self.changes.iter().filter(|c| (c.at - at).abs() <= near) {
            lines.push(format!("{} {}", c.kind.letter(), c.hover()));
        }
        lines
    }
}

/// Where a pointer at `client_x` is: its offset in the stack (px) and its position across the
/// plot area (0 = left edge of the time axis, 1 = right edge). Browser only.
#[cfg(feature = "hydrate")]
fn locate(stack: &web_sys::HtmlDivElement, client_x: f64) -> Option<(f64, f64)> {
    use crate::charts::frame::{LEFT, RIGHT};
    let svg = stack.query_selector(".chart-svg").ok().flatten()?;
    let (outer, rect) = (stack.get_bounding_client_rect(), svg.get_bounding_client_rect());
    if rect.width() <= 0.0 {
        return None;
    }
    let scale = rect.width() / f64::from(CHART.width);
    let plot = f64::from(CHART.width as i32 - LEFT - RIGHT) * scale;
    let fraction = (client_x - rect.left() - f64::from(LEFT) * scale) / plot;
    Some((client_x - outer.left(), fraction))
}

#[cfg(not(feature = "hydrate"))]
fn locate(_: &leptos::web_sys::HtmlDivElement, _: f64) -> Option<(f64, f64)> {
    None
}

/// Where the pointer is over the charts (offset in px, fraction of the time axis) and where a
/// drag started.
#[derive(Clone, Copy)]
struct Pointer {
    cursor: RwSignal<Option<(f64, f64)>>,
    drag: RwSignal<Option<(f64, f64)>>,
}

impl Default for Pointer {
    fn default() -> Self {
        Self { cursor: RwSignal::new(None), drag: RwSignal::new(None) }
    }
}

/// The three charts with one cursor line across them, a tooltip of the values under it, and
/// drag-to-zoom (the selection becomes `?from=…&to=…`).
#[component]
fn ChartStack(svgs: Vec<String>, data: StackData, pointer: Pointer, lens: Lens) -> impl IntoView {
    let stack = NodeRef::<leptos::html::Div>::new();
    let Pointer { cursor, drag } = pointer;
    // The window the charts show, which a drag zooms within (it trails the URL until the new
    // range's data is in): on the element, so a test or a script can wait for it.
    let (shown_from, shown_to) = (data.from.timestamp_millis(), data.to.timestamp_millis());
    let data = StoredValue::new(data);
    let navigate = use_navigate();
    let at = move |x: i32| stack.get().and_then(|s| locate(&s, f64::from(x)));
    let down = move |ev: leptos::ev::PointerEvent| {
        if ev.button() == 0
            && let Some(pos) = at(ev.client_x()).filter(|(_, f)| (0.0..=1.0).contains(f))
        {
            drag.set(Some(pos));
        }
    };
    let moved = move |ev: leptos::ev::PointerEvent| {
        cursor.set(at(ev.client_x()).filter(|(_, f)| (0.0..=1.0).contains(f)));
    };
    let up = move |ev: leptos::ev::PointerEvent| {
        let (Some((x0, f0)), Some((x1, f1))) = (drag.get_untracked(), at(ev.client_x())) else { return };
        drag.set(None);
        // A click (or a twitch) is not a zoom.
        if (x1 - x0).abs() < 6.0 {
            return;
        }
        let (id, from, to) = data.with_value(|d| (d.id, d.from, d.to));
        let w = Window::zoom(from, to, f0, f1);
        navigate(&page_href(id, &w, &lens), NavigateOptions { scroll: false, ..Default::default() });
    };
    let leave = move |_| {
        cursor.set(None);
        drag.set(None);
    };
    let selection = move || {
        let ((x0, _), (x1, _)) = (drag.get()?, cursor.get()?);
        Some(
            view! { <div class="zoom-selection" style:left=format!("{}px", x0.min(x1)) style:width=format!("{}px", (x1 - x0).abs())></div> },
        )
    };
    let tooltip = move || {
        let (x, fraction) = cursor.get()?;
        let lines = data.with_value(|d| d.describe(fraction));
        let flip = fraction > 0.6;
        Some(view! {
            <div class="cursor-line" style:left=format!("{x}px")></div>
            <div class="chart-tip" class:flip=flip style:left=format!("{x}px") role="tooltip">
                {lines.into_iter().map(|l| view! { <div>{l}</div> }).collect_view()}
            </div>
        })
    };
    view! {
        <div class="stack" data-from-ms=shown_from data-to-ms=shown_to node_ref=stack on:pointerdown=down on:pointermove=moved on:pointerup=up on:pointerleave=leave>
            {svgs.into_iter().map(|svg| view! { <figure class="chart"><div inner_html=svg></div></figure> }).collect_view()}
            {selection}
            {tooltip}
        </div>
    }
}

/// A request id with a button that copies it (for searching the target's logs).
#[component]
pub(crate) fn CopyId(id: String, copied: RwSignal<Option<String>>) -> impl IntoView {
    let mine = id.clone();
    let is_copied = {
        let id = id.clone();
        move || copied.read().as_deref() == Some(id.as_str())
    };
    let copy = move |_| {
        copy_text(&mine);
        copied.set(Some(mine.clone()));
    };
    let trace = use_context::<crate::model::TraceUrl>().and_then(|t| t.link(&id));
    view! {
        <code title="x-request-id sent with this check (also its trace id): search the target's logs for it">{id.clone()}</code>
        <button type="button" class="copy" on:click=copy aria-label=format!("Copy request id {id}")>
            {move || if is_copied() { "copied ✓" } else { "copy" }}
        </button>
        {trace.map(|href| view! { <a class="trace-link" href=href target="_blank" rel="noopener noreferrer">"trace"</a> })}
    }
}

#[cfg(feature = "hydrate")]
fn copy_text(text: &str) {
    if let Some(w) = web_sys::window() {
        // The promise only fails without permission; the button then shows the id selected anyway.
        let _ = w.navigator().clipboard().write_text(text);
    }
}

#[cfg(not(feature = "hydrate"))]
fn copy_text(_: &str) {}

/// Incidents as chart bands, an open one reaching the window's end.
pub fn incident_bands(incidents: &[crate::model::IncidentBand], end: chrono::DateTime<chrono::Utc>) -> Vec<Band> {
    incidents
        .iter()
        .map(|i| {
            let mut label = String::from("#");
            label.push_str(&i.number.to_string());
            Band { from: i.from, to: i.to.unwrap_or(end), label }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_lead_where_the_buttons_do() {
        let keys = KeyTargets {
            ranges: RANGES.iter().map(|(n, _)| format!("/s?range={n}")).collect(),
            zoom_out: "/s?zoom".into(),
            live: "/s?range=1h".into(),
            toggle: "/s?range=1h&lat=phases".into(),
        };
        assert_eq!(keys.target("1"), Some("/s?range=15m"));
        assert_eq!(keys.target("6"), Some("/s?range=30d"));
        assert_eq!(keys.target("7"), None);
        assert_eq!(keys.target("-"), Some("/s?zoom"));
        assert_eq!(keys.target("L"), Some("/s?range=1h"));
        assert_eq!(keys.target("p"), Some("/s?range=1h&lat=phases"));
        assert_eq!(keys.target("x"), None);
    }

    #[test]
    fn the_tooltip_reads_the_buckets_under_the_cursor() {
        let at = |m| chrono::Utc.with_ymd_and_hms(2026, 11, 23, 10, m, 0).single().expect("valid");
        let point = SeriesPoint {
            at: at(30),
            count: 20,
            down: 1,
            up: 19,
            error_pct: Some(5.0),
            p50_ms: Some(10.0),
            p95_ms: Some(42.4),
            p99_ms: Some(90.0),
            ..Default::default()
        };
        let data = StackData {
            id: uuid::Uuid::nil(),
            from: at(0),
            to: at(0) + chrono::Duration::hours(1),
            step_secs: 60,
            traffic: vec![point],
            pool: vec![],
            changes: vec![crate::model::ChangeEvent {
                id: uuid::Uuid::nil(),
                service_id: uuid::Uuid::nil(),
                service: "shop".into(),
                kind: crate::model::ChangeKind::Deploy,
                title: "Release 1.4.2".into(),
                version: Some("v1.4.2".into()),
                link: None,
                author: Some("alice".into()),
                at: at(30),
                ends_at: None,
                recorded_by: "token:ci".into(),
                recorded_at: at(30),
            }],
        };
        let lines = data.describe(0.505);
        assert_eq!(lines[0], "2026-11-23 10:30:18 UTC");
        assert_eq!(lines[1], "p50 10 · p95 42 · p99 90 ms");
        assert_eq!(lines[2], "errors 5.0 % (1 of 20 checks)");
        // The pointer near a change's marker names it.
        assert_eq!(lines[3], "D deploy v1.4.2 of shop at 2026-11-23 10:30 UTC by alice: Release 1.4.2");
        assert_eq!(data.describe(0.1)[1], "no checks in this bucket");
        assert_eq!(data.describe(0.1).len(), 2, "no change near 10:06");
    }
}
