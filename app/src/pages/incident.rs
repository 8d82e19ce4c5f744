//! The incident room: header (status, severity, commander, elapsed time, affected services live),
//! the affected services' charts over the incident window with the incident band and timeline
//! markers, the live timeline, who else is here, and the composer.
//!
//! Live: the room's stream (`/api/v1/incidents/{id}/events`) sends new and changed entries,
//! incident changes and presence. A post is retried with its idempotency key until the server
//! has it, so a connection blip neither loses nor doubles it.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::incidents::{elapsed, severity_badge, status_badge};
use super::service::{CopyId, incident_bands};
use crate::api::{delete_entry, edit_entry, get_incident_room, get_service_view, post_entry, update_incident};
use crate::charts::frame::{ChangeMark, ChartInput, Marker};
use crate::charts::{self, ChartSize};
use crate::components::guidance::GuidancePanel;
use crate::components::live::{Link, LiveBadge, use_live_refetch, use_live_stream};
use crate::components::public_updates::PublicUpdates;
use crate::components::state::state_label;
use crate::model::{
    AffectedService, Attachment, CurrentUser, EntryKind, EntryPatch, Incident, IncidentPatch, IncidentRoom,
    IncidentStatus, Me, NewEntry, Role, RoomEvent, Severity, TimelineEntry, Window,
};

const CHART: ChartSize = ChartSize { width: 960, height: 160 };
/// Charts start this long before the incident did, so the change is visible.
const LEAD_MINUTES: i64 = 15;

/// What the room shows, kept outside the fetched body so the composer and live updates share it.
#[derive(Clone, Copy)]
struct RoomState {
    incident: RwSignal<Option<Incident>>,
    entries: RwSignal<Vec<TimelineEntry>>,
    presence: RwSignal<Vec<String>>,
    /// A chart range the next post will carry.
    attach: RwSignal<Option<Attachment>>,
    /// Bumped by live results of the affected services: charts and guidance refetch on it.
    data_tick: RwSignal<u64>,
    /// The incident window the charts show.
    window: Memo<Window>,
}

impl RoomState {
    fn upsert(&self, e: TimelineEntry) {
        self.entries.update(|list| {
            match list.iter_mut().find(|x| x.id == e.id) {
                Some(x) => *x = e,
                None => list.push(e),
            }
            list.sort_by_key(|a| (a.happened_at, a.recorded_at));
        });
    }
}

#[component]
pub fn IncidentRoomPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<uuid::Uuid>().ok()));
    let tick = RwSignal::new(0u64);
    let room = Resource::new(
        move || (id.get(), tick.get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_incident_room(id).await,
                None => Ok(None),
            }
        },
    );
    let incident = RwSignal::new(None::<Incident>);
    let state = RoomState {
        incident,
        entries: RwSignal::new(Vec::new()),
        presence: RwSignal::new(Vec::new()),
        attach: RwSignal::new(None),
        data_tick: RwSignal::new(0),
        window: Memo::new(move |_| incident_window(incident.get().as_ref())),
    };
    let me = use_context::<CurrentUser>().and_then(|c| c.0);
    // Asked when the stream opens (after hydration): it starts with what changed since the room
    // on the page was read, which a stream opened later would otherwise never send.
    let url = move || {
        let base = format!("/api/v1/incidents/{}/events", id.get_untracked().unwrap_or_default());
        let read_at = room.get_untracked().and_then(|r| r.ok().flatten()).map(|r| r.now);
        // The JSON form of the time is RFC 3339 in UTC ("…Z"): nothing in it needs escaping.
        match read_at.and_then(|t| serde_json::to_string(&t).ok()) {
            Some(t) => format!("{base}?since={}", t.trim_matches('"')),
            None => base,
        }
    };
    let link = use_live_stream(url, &["entry", "incident", "presence"], move |name, data| {
        if name == "reconnected" {
            // Events sent while the stream was down are lost: take the room afresh.
            tick.update(|t| *t += 1);
            return;
        }
        match serde_json::from_str::<RoomEvent>(&data) {
            Ok(RoomEvent::Entry(e)) => state.upsert(e),
            // The stream opens with the incident as it is: re-rendering the header when nothing
            // changed would reset what someone is in the middle of choosing there.
            Ok(RoomEvent::Incident(i)) => {
                if state.incident.with_untracked(|cur| cur.as_ref() != Some(&*i)) {
                    state.incident.set(Some(*i));
                }
            }
            Ok(RoomEvent::Presence(p)) => state.presence.set(p),
            Err(_) => {}
        }
    });
    let may_write = me.as_ref().is_some_and(|m| m.may(Role::Responder));
    view! {
        <section class="page room">
            <Transition fallback=|| view! { <p class="muted">"Loading the incident…"</p> }>
                {move || room.get().map(|r| match r {
                    Ok(Some(r)) => view! { <RoomBody room=r state link me=me.clone()/> }.into_any(),
                    Ok(None) => view! {
                        <Title text="Incident not found"/>
                        <h1>"Incident not found"</h1>
                        <p><a href="/incidents">"All incidents"</a></p>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">"Could not load the incident: " {e.to_string()}</p> }.into_any(),
                })}
            </Transition>
            // Outside the fetched body: what is typed here survives a refetch of the room.
            {move || id.get().map(|id| {
                // Live results come by the second; the guidance (heavier) follows every fifth refetch.
                let refresh = Signal::derive(move || state.data_tick.get() / 5 + state.entries.with(|e| e.len() as u64));
                let window = Signal::derive(move || state.incident.with(|i| i.is_some()).then(|| state.window.get()));
                view! { <GuidancePanel id refresh may_write window/> }.into_any()
            })}
            {move || (may_write && id.get().is_some()).then(|| view! { <Composer id=id.get().unwrap_or_default() state/> }.into_any())}
        </section>
    }
}

#[component]
fn RoomBody(room: IncidentRoom, state: RoomState, link: ReadSignal<Link>, me: Option<Me>) -> impl IntoView {
    let IncidentRoom { incident, timeline, now, services: all_services, postmortem, commanders } = room;
    let responder = me.as_ref().is_some_and(|m| m.may(Role::Responder));
    state.incident.set(Some(incident.clone()));
    state.entries.set(timeline);
    let title = format!("#{} {}", incident.number, incident.title);
    let commander = me.as_ref().is_some_and(|m| m.may(Role::Commander));
    // Seconds since the page's data was taken, counted by the browser (never its clock: the
    // server's `now` is the reference, so both sides of hydration draw the same).
    let ticks = RwSignal::new(0i64);
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(move || ticks.update(|t| *t += 1), std::time::Duration::from_secs(1));
        if let Ok(h) = handle {
            on_cleanup(move || h.clear());
        }
    }
    let services = incident.services.clone();
    let incident_id = incident.id;
    let open_at_load = incident.status.is_open();
    view! {
        <Title text=title/>
        <Header state now ticks link commander me=me.clone() all_services commanders/>
        <PostmortemLink incident=incident.id existing=postmortem responder/>
        <p class="presence" aria-live="polite">
            {move || {
                let who = state.presence.get();
                if who.is_empty() { String::new() } else { format!("Here now: {}", who.join(", ")) }
            }}
        </p>
        <div class="room-grid">
            <div class="room-charts">
                {services.is_empty().then(|| view! {
                    <p class="empty-state">"No affected services yet. A commander adds them under Affected services; their charts then show here."</p>
                })}
                {services.into_iter().map(|s| view! { <ServiceCharts service=s state open=open_at_load/> }).collect_view()}
            </div>
            <Timeline state commander me=me.as_ref().map(|m| m.email.clone())/>
        </div>
        <PublicUpdates incident=incident_id may_post=commander/>
    }
}

/// A commander's form for the key times, in UTC: a changed field is sent, an emptied one clears
/// that time (the server checks the order and names the field it refuses).
fn key_times_editor(times: &crate::model::KeyTimes, change: impl Fn(IncidentPatch) + Copy + 'static) -> impl IntoView {
    use crate::model::KeyTime;
    let shown: Vec<(KeyTime, String)> = KeyTime::ALL
        .iter()
        .map(|k| (*k, times.get(*k).map(|s| s.at.format("%Y-%m-%dT%H:%M:%S").to_string()).unwrap_or_default()))
        .collect();
    let fields: Vec<(KeyTime, String, NodeRef<leptos::html::Input>)> =
        shown.into_iter().map(|(k, v)| (k, v, NodeRef::new())).collect();
    let inputs = fields
        .iter()
        .map(|(k, v, node)| {
            view! { <label>{k.as_str()} " " <input node_ref=*node type="datetime-local" step="1" value=v.clone() aria-label=format!("{} (UTC)", k.as_str())/></label> }
        })
        .collect_view();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut patch = IncidentPatch::default();
        for (k, before, node) in &fields {
            let Some(now) = node.get().map(|n| n.value()) else { continue };
            if now == *before {
                continue;
            }
            *patch.time_mut(*k) = Some(if now.is_empty() { None } else { crate::model::parse_time(&now) });
        }
        if !patch.is_empty() {
            change(patch);
        }
    };
    view! {
        <details class="times-edit">
            <summary>"Key times"</summary>
            <form on:submit=save>
                {inputs}
                <span class="muted">"UTC"</span>
                <button type="submit" class="btn">"Save times"</button>
            </form>
        </details>
    }
}

/// The incident's postmortem: a link once it exists, else a button that writes it (prefilled).
#[component]
fn PostmortemLink(incident: uuid::Uuid, existing: Option<uuid::Uuid>, responder: bool) -> impl IntoView {
    let (problem, set_problem) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let navigate = leptos_router::hooks::use_navigate();
    let create = move |_| {
        set_busy.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match crate::api::create_postmortem(incident).await {
                Ok(p) => {
                    navigate(&format!("/postmortems/{}", p.id), Default::default());
                }
                Err(e) => {
                    set_busy.set(false);
                    set_problem.set(Some(e.to_string()));
                }
            }
        });
    };
    view! {
        <p class="postmortem-link">
            {match existing {
                Some(id) => view! { <a class="btn" href=format!("/postmortems/{id}")>"Postmortem"</a> }.into_any(),
                None if responder => view! {
                    <button type="button" class="btn" on:click=create disabled=busy>
                        {move || if busy.get() { "Writing the postmortem…" } else { "Write the postmortem" }}
                    </button>
                }.into_any(),
                None => ().into_any(),
            }}
            {move || problem.get().map(|p| view! { <span class="error" role="alert">" " {p}</span> })}
        </p>
    }
}

#[component]
fn Header(
    state: RoomState,
    now: chrono::DateTime<chrono::Utc>,
    ticks: RwSignal<i64>,
    link: ReadSignal<Link>,
    commander: bool,
    me: Option<Me>,
    all_services: Vec<(uuid::Uuid, String)>,
    commanders: Vec<crate::model::UserRef>,
) -> impl IntoView {
    let me_id = me.map(|m| m.id);
    let (problem, set_problem) = signal(None::<String>);
    let change = move |patch: IncidentPatch| {
        let Some(id) = state.incident.with_untracked(|i| i.as_ref().map(|i| i.id)) else { return };
        leptos::task::spawn_local(async move {
            match update_incident(id, patch).await {
                Ok(i) => {
                    set_problem.set(None);
                    state.incident.set(Some(i));
                }
                Err(e) => set_problem.set(Some(e.to_string())),
            }
        });
    };
    move || {
        let Some(i) = state.incident.get() else { return view! { <p></p> }.into_any() };
        let started = i.times.started.as_ref().map(|s| s.at).unwrap_or(i.created_at);
        let end = i.times.resolved.as_ref().map(|s| s.at);
        let running = end.is_none();
        let for_secs = move || {
            let until = end.unwrap_or(now + chrono::Duration::seconds(ticks.get()));
            elapsed((until - started).num_seconds())
        };
        let services = i
            .services
            .iter()
            .map(|s| {
                let (class, label) = state_label(s.state);
                view! { <a href=format!("/services/{}", s.id)>{s.name.clone()}</a> " " <span class=class>{label}</span> " " }
            })
            .collect_view();
        let times = crate::model::KeyTime::ALL
            .iter()
            .filter_map(|k| {
                let s = i.times.get(*k)?;
                Some(view! {
                    <span class="key-time" title=format!("set by {}", s.source)>
                        {k.as_str()} " " {s.at.format("%H:%M:%S").to_string()}
                        {(s.source != crate::model::AUTOMATIC).then_some(" ✎")}
                    </span>
                })
            })
            .collect_view();
        let controls = commander.then(|| {
            let statuses = IncidentStatus::ALL
                .map(|s| {
                    let current = s == i.status;
                    view! {
                        <button type="button" class="btn" aria-pressed=current.to_string() disabled=current
                            on:click=move |_| change(IncidentPatch { status: Some(s), ..Default::default() })>
                            {s.as_str()}
                        </button>
                    }
                })
                .into_iter()
                .collect_view();
            let severities = Severity::ALL
                .map(|s| view! { <option value=s.as_str() selected=s == i.severity title=s.meaning()>{s.as_str()}</option> })
                .into_iter()
                .collect_view();
            let pick = move |ev: leptos::ev::Event| {
                if let Some(s) = Severity::parse(&event_target_value(&ev)) {
                    change(IncidentPatch { severity: Some(s), ..Default::default() });
                }
            };
            let take = me_id.filter(|id| i.commander.as_ref().map(|c| c.id) != Some(*id)).map(|id| {
                view! { <button type="button" class="btn" on:click=move |_| change(IncidentPatch { commander: Some(id), ..Default::default() })>"Take command"</button> }
            });
            let chosen = RwSignal::new(i.services.iter().map(|s| s.id).collect::<Vec<_>>());
            let boxes = all_services
                .iter()
                .map(|(id, name)| {
                    let id = *id;
                    let on = chosen.with_untracked(|c| c.contains(&id));
                    let toggle = move |_| chosen.update(|c| if c.contains(&id) { c.retain(|x| *x != id) } else { c.push(id) });
                    view! { <label class="check"><input type="checkbox" checked=on on:change=toggle/> {name.clone()}</label> }
                })
                .collect_view();
            let save = move |_| change(IncidentPatch { services: Some(chosen.get_untracked()), ..Default::default() });
            let current = i.commander.as_ref().map(|c| c.id);
            let people = commanders
                .iter()
                .map(|u| view! { <option value=u.id.to_string() selected=Some(u.id) == current>{u.email.clone()}</option> })
                .collect_view();
            let assign = move |ev: leptos::ev::Event| {
                if let Ok(id) = event_target_value(&ev).parse::<uuid::Uuid>() {
                    change(IncidentPatch { commander: Some(id), ..Default::default() });
                }
            };
            let times_form = key_times_editor(&i.times, change);
            view! {
                <div class="toolbar controls" role="group" aria-label="Incident controls">
                    {statuses}
                    <label>"Severity " <select on:change=pick aria-label="Severity">{severities}</select></label>
                    {take}
                    <label>"Commander "
                        <select on:change=assign aria-label="Commander">
                            <option value="" selected=current.is_none() disabled=true>"none"</option>
                            {people}
                        </select>
                    </label>
                    {times_form}
                    <details class="services-edit">
                        <summary>"Affected services"</summary>
                        {boxes}
                        <button type="button" class="btn" on:click=save>"Save services"</button>
                    </details>
                </div>
            }
        });
        let suggestion = (i.resolve_suggested_at.is_some() && i.status.is_open()).then(|| {
            view! {
                <div class="suggestion" role="status">
                    "✔ Every affected probe has been healthy long enough. "
                    {if commander {
                        view! { <button type="button" class="btn primary" on:click=move |_| change(IncidentPatch { status: Some(IncidentStatus::Resolved), ..Default::default() })>"Resolve"</button> }.into_any()
                    } else {
                        view! { <span>"A commander can resolve it."</span> }.into_any()
                    }}
                </div>
            }
        });
        view! {
            <div class="page-head room-head">
                <h1>{format!("#{} ", i.number)} {i.title.clone()}</h1>
                {status_badge(i.status)}
                {severity_badge(i.severity)}
                <span class="muted sev-meaning">{i.severity.meaning()}</span>
                <LiveBadge link=link/>
            </div>
            <p class="room-facts">
                <span>"Commander: " <strong>{i.commander.as_ref().map(|c| c.email.clone()).unwrap_or_else(|| "none yet".into())}</strong></span>
                " · " <span class="elapsed" title="since it started">{move || for_secs()} {(!running).then_some(" (resolved)")}</span>
                " · " {services}
            </p>
            <p class="room-facts key-times">{times}</p>
            {(!i.participants.is_empty()).then(|| view! {
                <p class="room-facts participants">"Participants: " {i.participants.iter().map(|p| p.email.clone()).collect::<Vec<_>>().join(", ")}</p>
            })}
            {suggestion}
            {controls}
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
        }
        .into_any()
    }
}

/// One affected service's three charts over the incident window, live while the incident is open.
#[component]
fn ServiceCharts(service: AffectedService, state: RoomState, open: bool) -> impl IntoView {
    let tick = state.data_tick;
    let window = state.window;
    let id = service.id;
    let view = Resource::new(move || (window.get(), tick.get()), move |(w, _)| get_service_view(id, w));
    let _ = use_live_refetch(format!("/api/v1/events?service_id={id}"), tick, 1000, Signal::derive(move || open));
    view! {
        <section class="room-service" aria-label=format!("{} charts", service.name)>
            <h2><a href=format!("/services/{id}")>{service.name.clone()}</a></h2>
            <Transition fallback=|| view! { <p class="muted">"Loading charts…"</p> }>
                {move || view.get().map(|r| match r {
                    Ok(Some(v)) => {
                        let bands = incident_bands(&v.incidents, v.to);
                        let markers: Vec<Marker> = state.entries.with_untracked(|e| e.iter().filter(|x| x.deleted.is_none()).map(|x| Marker { at: x.happened_at }).collect());
                        let changes = ChangeMark::of(&v.change_events);
                        let traffic = ChartInput { from: v.from, to: v.to, step_secs: v.step_secs, points: &v.traffic, bands: &bands, markers: &markers, changes: &changes };
                        let pool = ChartInput { points: &v.pool, ..traffic };
                        let (from, to) = (v.from, v.to);
                        let attach = move |_| state.attach.set(Some(Attachment::ChartRange { service_id: id, from, to }));
                        view! {
                            <figure class="chart"><div inner_html=charts::latency::render_svg(&traffic, CHART)></div></figure>
                            <figure class="chart"><div inner_html=charts::errors::render_svg(&traffic, CHART)></div></figure>
                            <figure class="chart"><div inner_html=charts::pool::render_svg(&pool, CHART)></div></figure>
                            <button type="button" class="btn attach" on:click=attach title="The next timeline entry links to this chart range">"Attach this chart range to the next entry"</button>
                        }.into_any()
                    }
                    Ok(None) => view! { <p class="muted">"This service no longer exists."</p> }.into_any(),
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Timeline(state: RoomState, commander: bool, me: Option<String>) -> impl IntoView {
    let copied = RwSignal::new(None::<String>);
    view! {
        <section class="timeline" aria-label="Timeline">
            <h2>"Timeline"</h2>
            <ol class="entries">
                <For each=move || state.entries.get() key=|e| (e.id, e.revision, e.deleted.is_some()) let:e>
                    <EntryView e commander copied state me=me.clone()/>
                </For>
            </ol>
        </section>
    }
}

#[component]
fn EntryView(
    e: TimelineEntry,
    commander: bool,
    copied: RwSignal<Option<String>>,
    state: RoomState,
    me: Option<String>,
) -> impl IntoView {
    if e.deleted.is_some() && !commander {
        return view! { <li class="entry deleted-hidden" hidden=true></li> }.into_any();
    }
    // People's own entries (or any, for commanders) can be corrected; Triage's are records.
    let changeable = e.deleted.is_none()
        && EntryKind::WRITABLE.contains(&e.kind)
        && (commander || me.as_deref() == Some(e.author.as_str()));
    let editing = RwSignal::new(false);
    let (problem, set_problem) = signal(None::<String>);
    let (incident, entry_id) = (e.incident_id, e.id);
    let text_ref = NodeRef::<leptos::html::Textarea>::new();
    let at_ref = NodeRef::<leptos::html::Input>::new();
    let local_at = e.happened_at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let shown_at = local_at.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = text_ref.get().map(|t| t.value());
        // Only a time the user changed: the field has whole seconds, the entry may not.
        let at = at_ref.get().map(|i| i.value()).filter(|v| *v != shown_at).and_then(|v| crate::model::parse_time(&v));
        let patch = EntryPatch { text, happened_at: at, ..Default::default() };
        leptos::task::spawn_local(async move {
            match edit_entry(incident, entry_id, patch).await {
                Ok(saved) => {
                    editing.set(false);
                    state.upsert(saved);
                }
                Err(err) => set_problem.set(Some(err.to_string())),
            }
        });
    };
    let remove = move |_| {
        if !confirm("Delete this entry? Commanders will still see it, struck through.") {
            return;
        }
        leptos::task::spawn_local(async move {
            match delete_entry(incident, entry_id).await {
                Ok(gone) => state.upsert(gone),
                Err(err) => set_problem.set(Some(err.to_string())),
            }
        });
    };
    let history = RwSignal::new(None::<Vec<crate::model::EntryRevision>>);
    let show_history = move |_| {
        if history.with_untracked(|h| h.is_some()) {
            history.set(None);
            return;
        }
        leptos::task::spawn_local(async move {
            match crate::api::get_entry_history(incident, entry_id).await {
                Ok(v) => history.set(Some(v)),
                Err(err) => set_problem.set(Some(err.to_string())),
            }
        });
    };
    let source = e.text.clone();
    let tools = changeable.then(|| {
        view! {
            <span class="entry-tools">
                <button type="button" class="link" on:click=move |_| editing.update(|v| *v = !*v)>"edit"</button>
                <button type="button" class="link" on:click=remove>"delete"</button>
            </span>
        }
    });
    let editor = move || {
        editing.get().then(|| {
            view! {
                <form class="entry-edit" on:submit=save.clone()>
                    <textarea node_ref=text_ref rows="3" aria-label="Entry text">{source.clone()}</textarea>
                    <label>"Happened at (UTC) " <input node_ref=at_ref type="datetime-local" step="1" value=local_at.clone()/></label>
                    <button class="btn primary" type="submit">"Save"</button>
                    <button class="btn" type="button" on:click=move |_| editing.set(false)>"Cancel"</button>
                </form>
            }
        })
    };
    let attachments = e
        .attachments
        .iter()
        .map(|a| match a {
            Attachment::ChartRange { service_id, from, to } => view! {
                <a class="attachment" href=format!("/services/{service_id}?from={}&to={}", from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))>
                    {format!("chart {}–{} UTC", from.format("%H:%M"), to.format("%H:%M"))}
                </a>
            }.into_any(),
            Attachment::RequestIds { ids } => ids.iter().map(|id| view! { <span class="attachment request-id"><CopyId id=id.clone() copied/></span> }).collect_view().into_any(),
            Attachment::ProbeResult { probe_id, at, .. } => view! {
                <span class="attachment muted" title=probe_id.to_string()>{format!("result at {}", at.format("%H:%M:%S"))}</span>
            }.into_any(),
        })
        .collect_view();
    let deleted = e.deleted.as_ref().map(|d| format!(" · deleted by {} at {}", d.by, d.at.format("%H:%M:%S")));
    view! {
        <li class="entry" data-kind=e.kind.as_str() class:deleted=e.deleted.is_some()>
            <div class="entry-head">
                <time datetime=e.happened_at.to_rfc3339()>{e.happened_at.format("%H:%M:%S").to_string()}</time>
                <span class="kind">{e.kind.label()}</span>
                <span class="author">{e.author.clone()}</span>
                {(e.revision > 1).then(|| view! {
                    <button type="button" class="link muted" title="edited; earlier versions are kept" on:click=show_history
                        aria-expanded=move || history.with(|h| h.is_some()).to_string()>"edited · history"</button>
                })}
                {deleted.map(|d| view! { <span class="muted">{d}</span> })}
                {tools}
            </div>
            {editor}
            {move || history.get().map(|versions| view! {
                <ol class="history" aria-label="Earlier versions">
                    {versions.into_iter().map(|v| view! {
                        <li>
                            <span class="muted">
                                {format!("version {}: {} at {} UTC, replaced by {} at {}", v.revision, v.kind.label(),
                                    v.happened_at.format("%H:%M:%S"), v.replaced_by, v.replaced_at.format("%H:%M:%S"))}
                            </span>
                            <pre class="md-source">{v.text}</pre>
                        </li>
                    }).collect_view()}
                </ol>
            })}
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
            <div class="entry-text" inner_html=e.html.clone()></div>
            {(!e.attachments.is_empty()).then(|| view! { <div class="attachments">{attachments}</div> })}
        </li>
    }
    .into_any()
}

/// A post not yet confirmed by the server, retried with its key.
#[derive(Clone, Debug, PartialEq)]
struct Pending {
    key: String,
    text: String,
    status: String,
}

#[component]
fn Composer(id: uuid::Uuid, state: RoomState) -> impl IntoView {
    let kind = RwSignal::new(EntryKind::Observation);
    let text = NodeRef::<leptos::html::Textarea>::new();
    let request_ids = NodeRef::<leptos::html::Input>::new();
    let pending = RwSignal::new(Vec::<Pending>::new());
    let send = move || {
        let Some(area) = text.get() else { return };
        let raw = area.value();
        let (command, rest) = EntryKind::from_command(&raw);
        if rest.trim().is_empty() {
            return;
        }
        let mut attachments: Vec<Attachment> = state.attach.get_untracked().into_iter().collect();
        let ids: Vec<String> = request_ids
            .get()
            .map(|i| i.value())
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            attachments.push(Attachment::RequestIds { ids });
        }
        let entry = NewEntry {
            kind: command.unwrap_or(kind.get_untracked()),
            text: rest.to_string(),
            happened_at: client_now(),
            attachments,
            idempotency_key: Some(new_key()),
        };
        area.set_value("");
        if let Some(i) = request_ids.get() {
            i.set_value("");
        }
        state.attach.set(None);
        submit(id, entry, state, pending, 0);
    };
    let keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() {
            ev.prevent_default();
            send();
        }
    };
    let kinds = EntryKind::WRITABLE
        .map(|k| {
            view! {
                <button type="button" class="btn kind-choice" aria-pressed=move || (kind.get() == k).to_string()
                    on:click=move |_| kind.set(k)>{k.label()}</button>
            }
        })
        .into_iter()
        .collect_view();
    view! {
        <form class="composer" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); send(); }>
            <div class="toolbar" role="group" aria-label="Entry kind">{kinds}</div>
            <input node_ref=request_ids type="text" class="request-ids" aria-label="Request ids to attach"
                placeholder="Request ids to attach (optional, space- or comma-separated)"/>
            <textarea node_ref=text rows="2" aria-label="New timeline entry"
                placeholder="What do you see? Enter posts, Shift+Enter for a new line. /obs /hyp /act /dec /note set the kind."
                on:keydown=keydown></textarea>
            {move || state.attach.get().map(|a| match a {
                Attachment::ChartRange { from, to, .. } => view! {
                    <p class="attached">{format!("Attached: chart range {}–{} UTC ", from.format("%H:%M"), to.format("%H:%M"))}
                        <button type="button" class="btn" on:click=move |_| state.attach.set(None) aria-label="Remove the attachment">"✕"</button>
                    </p>
                }.into_any(),
                _ => view! { <span></span> }.into_any(),
            })}
            <button class="btn primary" type="submit">"Post"</button>
            <ul class="pending" aria-live="polite">
                <For each=move || pending.get() key=|p| (p.key.clone(), p.status.clone()) let:p>
                    <li>{p.status.clone()} ": " {p.text.clone()}</li>
                </For>
            </ul>
        </form>
    }
}

/// Sends `entry`; on a failure that may be the connection, tries again with the same key after
/// 1, 2, 4 … 30 s. A refusal (the server answered with a reason) is shown and not retried.
fn submit(id: uuid::Uuid, entry: NewEntry, state: RoomState, pending: RwSignal<Vec<Pending>>, attempt: u32) {
    let key = entry.idempotency_key.clone().unwrap_or_default();
    let shown = |status: String| {
        let key = key.clone();
        let text = entry.text.clone();
        pending.update(move |list| match list.iter_mut().find(|p| p.key == key) {
            Some(p) => p.status = status,
            None => list.push(Pending { key, text, status }),
        });
    };
    shown(if attempt == 0 { "sending".into() } else { format!("retrying (attempt {})", attempt + 1) });
    leptos::task::spawn_local(async move {
        match post_entry(id, entry.clone()).await {
            Ok(e) => {
                pending.update(|list| list.retain(|p| p.key != key));
                state.upsert(e);
            }
            Err(reason) if reason.is_refusal() => {
                pending.update(|list| {
                    if let Some(p) = list.iter_mut().find(|p| p.key == key) {
                        p.status = format!("not posted: {reason}");
                    }
                });
            }
            Err(_) => {
                let wait = 1u64 << attempt.min(5);
                pending.update(|list| {
                    if let Some(p) = list.iter_mut().find(|p| p.key == key) {
                        p.status = format!("connection lost, retrying in {} s", wait.min(30));
                    }
                });
                set_timeout(
                    move || submit(id, entry, state, pending, attempt + 1),
                    std::time::Duration::from_secs(wait.min(30)),
                );
            }
        }
    });
}

#[cfg(feature = "hydrate")]
fn new_key() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        .unwrap_or_else(|| format!("k{}", js_sys::Date::now()))
}

#[cfg(not(feature = "hydrate"))]
fn new_key() -> String {
    uuid::Uuid::nil().to_string()
}

/// When the user pressed Enter, by the browser's clock: a retried post keeps that time.
#[cfg(feature = "hydrate")]
fn client_now() -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(js_sys::Date::now() as i64)
}

#[cfg(not(feature = "hydrate"))]
fn client_now() -> Option<chrono::DateTime<chrono::Utc>> {
    None
}

#[cfg(feature = "hydrate")]
fn confirm(question: &str) -> bool {
    web_sys::window().and_then(|w| w.confirm_with_message(question).ok()).unwrap_or(false)
}

#[cfg(not(feature = "hydrate"))]
fn confirm(_: &str) -> bool {
    false
}

/// From 15 minutes before the incident started to 15 minutes after it was resolved; an open
/// incident's window reaches into the future and the server stops it at its now.
fn incident_window(i: Option<&Incident>) -> Window {
    let Some(i) = i else { return Window::default() };
    let started = i.times.started.as_ref().map(|s| s.at).unwrap_or(i.created_at);
    let resolved = i.times.resolved.as_ref().map(|s| s.at);
    let from = started - chrono::Duration::minutes(LEAD_MINUTES);
    let to = resolved.map_or(from + chrono::Duration::days(365), |r| r + chrono::Duration::minutes(LEAD_MINUTES));
    Window::fixed(from, to.max(from + chrono::Duration::minutes(1))).unwrap_or_default()
}
