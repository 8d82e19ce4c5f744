//! Triage's own health: readiness components, instance facts and recent database round trips.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::get_system_status;
use crate::charts::{self, ChartSize};
use crate::model::{ComponentStatus, DatabaseMode, SystemStatus};

#[component]
pub fn Status() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let status = Resource::new(move || refresh.get(), |_| get_system_status());
    let (pending, set_pending) = signal(false);
    let refreshing = move || pending.get();
    view! {
        <Title text="Status"/>
        <section class="page">
            <div class="page-head">
                <h1>"Triage status"</h1>
                <button type="button" class="btn" on:click=move |_| refresh.update(|n| *n += 1) disabled=refreshing>
                    {move || if refreshing() { "Checking…" } else { "Check now" }}
                </button>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Checking…"</p> } set_pending=set_pending>
                {move || status.get().map(|r| match r {
                    Ok(s) => view! { <StatusBody status=s/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">"Could not load the status: " {e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn StatusBody(status: SystemStatus) -> impl IntoView {
    let ready = status.readiness.is_ready();
    let chart = charts::round_trips::render_svg(&status.recent_checks, ChartSize { width: 640, height: 180 });
    let db_mode = match status.instance.database {
        DatabaseMode::Embedded => "embedded PostgreSQL",
        DatabaseMode::External => "external PostgreSQL (DATABASE_URL)",
    };
    let rows = status
        .readiness
        .checks
        .into_iter()
        .map(|(name, check)| {
            let (class, text) = match check.status {
                ComponentStatus::Up => ("state state-up", "✔ up"),
                ComponentStatus::Down => ("state state-down", "✖ down"),
            };
            let detail = check.latency_ms.map(|ms| format!("{ms:.1} ms")).or(check.error).unwrap_or_default();
            view! {
                <tr>
                    <th scope="row">{name}</th>
                    <td><span class=class>{text}</span></td>
                    <td>{detail}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="summary" data-ready=ready.to_string()>
            {if ready { "Ready: every dependency answers." } else { "Not ready: a dependency is failing." }}
        </p>
        <table class="grid">
            <thead><tr><th>"Component"</th><th>"State"</th><th>"Detail"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <figure class="chart">
            <div inner_html=chart></div>
            <figcaption>"Database round trip of recent readiness checks"</figcaption>
        </figure>
        <dl class="facts">
            <dt>"Version"</dt><dd>{status.instance.version}</dd>
            <dt>"Instance"</dt><dd><code>{status.instance.instance_id.to_string()}</code></dd>
            <dt>"Installed"</dt><dd>{status.instance.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}</dd>
            <dt>"Started"</dt><dd>{status.instance.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</dd>
            <dt>"Database"</dt><dd>{db_mode}</dd>
        </dl>
    }
}
