//! The incident list: open incidents first, filters in the URL (`?status=…&severity=…&service=…
//! &from=…&to=…&q=…`), and the form to declare a new one.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::{get_incidents, post_incident};
use crate::model::{CurrentUser, Incident, IncidentFilter, IncidentStatus, NewIncident, Role, Severity};

/// The filter as the URL gives it; values that do not parse are ignored (and left in the form).
fn filter_from_query(q: &leptos_router::params::ParamsMap) -> IncidentFilter {
    let day = |k: &str| q.get_str(k).and_then(|v| chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok());
    IncidentFilter {
        status: q.get_str("status").and_then(IncidentStatus::parse),
        severity: q.get_str("severity").and_then(Severity::parse),
        service: q.get_str("service").and_then(|s| s.parse().ok()),
        from: day("from"),
        to: day("to"),
        q: q.get_str("q").filter(|s| !s.trim().is_empty()).map(str::to_string),
    }
}

/// "3h 12m", "41m", "2d 4h".
pub fn elapsed(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{secs}s")
    }
}

pub fn severity_badge(s: Severity) -> impl IntoView {
    view! { <span class="sev" data-sev=s.as_str() title=s.meaning()>{s.as_str()}</span> }
}

pub fn status_badge(s: IncidentStatus) -> impl IntoView {
    view! { <span class="status-badge" data-status=s.as_str()>{s.as_str()}</span> }
}

#[component]
pub fn Incidents() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| filter_from_query(&query.read()));
    let list = Resource::new(move || filter.get(), get_incidents);
    let me = use_context::<CurrentUser>().and_then(|c| c.0);
    let may_declare = me.as_ref().is_some_and(|m| m.may(Role::Responder));
    view! {
        <Title text="Incidents"/>
        <section class="page">
            <div class="page-head"><h1>"Incidents"</h1></div>
            <Transition fallback=|| view! { <p class="muted">"Loading incidents…"</p> }>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">"Could not load incidents: " {e.to_string()}</p> }.into_any(),
                    Ok(l) => {
                        let services = l.services.clone();
                        view! {
                            <Filters filter=filter.get_untracked() services=services.clone()/>
                            <IncidentTable incidents=l.incidents now=l.now/>
                            {may_declare.then(|| view! { <Declare services/> })}
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}

/// A plain GET form: the filters become the URL, so a link reproduces the list.
#[component]
fn Filters(filter: IncidentFilter, services: Vec<(uuid::Uuid, String)>) -> impl IntoView {
    let option =
        |value: String, label: String, selected: bool| view! { <option value=value selected=selected>{label}</option> };
    let statuses = IncidentStatus::ALL
        .map(|s| option(s.as_str().into(), s.as_str().into(), filter.status == Some(s)))
        .into_iter()
        .collect_view();
    let severities = Severity::ALL
        .map(|s| option(s.as_str().into(), s.as_str().into(), filter.severity == Some(s)))
        .into_iter()
        .collect_view();
    let services =
        services.into_iter().map(|(id, name)| option(id.to_string(), name, filter.service == Some(id))).collect_view();
    let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    view! {
        <form class="toolbar filters" method="get" action="/incidents" role="search" aria-label="Filter incidents">
            <label>"Status " <select name="status"><option value="">"any"</option>{statuses}</select></label>
            <label>"Severity " <select name="severity"><option value="">"any"</option>{severities}</select></label>
            <label>"Service " <select name="service"><option value="">"any"</option>{services}</select></label>
            <label>"From " <input type="date" name="from" value=day(filter.from)/></label>
            <label>"To " <input type="date" name="to" value=day(filter.to)/></label>
            <label>"Search " <input type="search" name="q" value=filter.q.unwrap_or_default() placeholder="title, summary, timeline"/></label>
            <button class="btn" type="submit">"Apply"</button>
            <a href="/incidents">"Clear"</a>
        </form>
    }
}

#[component]
fn IncidentTable(incidents: Vec<Incident>, now: chrono::DateTime<chrono::Utc>) -> impl IntoView {
    if incidents.is_empty() {
        return view! { <p class="empty-state">"No incidents match. Calm seas."</p> }.into_any();
    }
    let rows = incidents
        .into_iter()
        .map(|i| {
            let started = i.times.started.as_ref().map(|s| s.at).unwrap_or(i.created_at);
            let end = i.times.resolved.as_ref().map(|s| s.at).unwrap_or(now);
            let services = i.services.iter().map(|s| s.name.clone()).collect::<Vec<_>>().join(", ");
            view! {
                <tr class:resolved=!i.status.is_open()>
                    <td>{format!("#{}", i.number)}</td>
                    <td>{severity_badge(i.severity)}</td>
                    <td>{status_badge(i.status)}</td>
                    <td><a href=format!("/incidents/{}", i.id)>{i.title.clone()}</a>
                        {i.automatic.then(|| view! { " " <span class="muted" title="Opened by Triage from a failing probe">"auto"</span> })}
                    </td>
                    <td>{services}</td>
                    <td>{i.commander.as_ref().map(|c| c.email.clone()).unwrap_or_else(|| "–".into())}</td>
                    <td>{started.format("%Y-%m-%d %H:%M").to_string()}</td>
                    <td>{elapsed((end - started).num_seconds())}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid incidents" aria-label="Incidents">
            <thead><tr><th>"#"</th><th>"Sev"</th><th>"Status"</th><th>"Title"</th><th>"Services"</th><th>"Commander"</th><th>"Started (UTC)"</th><th>"Duration"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

/// Declaring an incident: title, severity (with what each means), affected services, summary.
#[component]
fn Declare(services: Vec<(uuid::Uuid, String)>) -> impl IntoView {
    let title = NodeRef::<leptos::html::Input>::new();
    let summary = NodeRef::<leptos::html::Textarea>::new();
    let severity = RwSignal::new(Severity::Sev3);
    let chosen = RwSignal::new(Vec::<uuid::Uuid>::new());
    let (problem, set_problem) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let navigate = use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = NewIncident {
            title: title.get().map(|i| i.value()).unwrap_or_default(),
            severity: severity.get_untracked(),
            summary: summary.get().map(|t| t.value()).unwrap_or_default(),
            services: chosen.get_untracked(),
            commander: None,
            started_at: None,
        };
        let navigate = navigate.clone();
        set_busy.set(true);
        leptos::task::spawn_local(async move {
            match post_incident(input).await {
                Ok(i) => navigate(&format!("/incidents/{}", i.id), Default::default()),
                Err(e) => set_problem.set(Some(e.to_string())),
            }
            set_busy.set(false);
        });
    };
    let sev_options = Severity::ALL
        .map(|s| {
            view! {
                <label class="sev-choice">
                    <input type="radio" name="severity" value=s.as_str() checked=s == Severity::Sev3
                        on:change=move |_| severity.set(s)/>
                    {severity_badge(s)} " " <span class="muted">{s.meaning()}</span>
                </label>
            }
        })
        .into_iter()
        .collect_view();
    let service_boxes = services
        .into_iter()
        .map(|(id, name)| {
            let toggle = move |_| chosen.update(|c| if c.contains(&id) { c.retain(|x| *x != id) } else { c.push(id) });
            view! { <label class="check"><input type="checkbox" on:change=toggle/> {name}</label> }
        })
        .collect_view();
    view! {
        <details class="declare">
            <summary>"Declare an incident"</summary>
            <form class="form" on:submit=submit>
                <label>"Title " <input node_ref=title name="title" required maxlength="200" placeholder="Checkout returns 500s"/></label>
                <fieldset><legend>"Severity"</legend>{sev_options}</fieldset>
                <fieldset class="services"><legend>"Affected services"</legend>{service_boxes}</fieldset>
                <label>"Summary " <textarea node_ref=summary name="summary" rows="2"></textarea></label>
                <button class="btn primary" type="submit" disabled=move || busy.get()>"Declare"</button>
                {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
            </form>
        </details>
    }
}
