//! Notifications (admins): channels with "Send test" and each one's delivery log, the rules that
//! route events to channels, and maintenance windows. The tab and the channel whose log is open
//! are in the URL (`/notifications?tab=channels&channel=…`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};
use uuid::Uuid;

use super::config::form::{Editor, Errors, Field, check, list_text, split_list, split_tags, text};
use crate::api::{
    ServerError, delete_channel, delete_maintenance, delete_rule, end_maintenance, get_catalog, get_channels,
    get_deliveries, get_maintenance, get_rules, save_channel, save_maintenance, save_rule, test_channel,
};
use crate::model::{
    CatalogScope, Channel, ChannelKind, ChannelSpec, Delivery, DeliveryState, EventKind, Every, MaintenanceSpec,
    MaintenanceWindow, Recurrence, Rule, RuleSpec, Service, Severity, SmtpSecurity,
};

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[component]
pub fn Notifications() -> impl IntoView {
    let query = use_query_map();
    let tab = Memo::new(move |_| query.read().get("tab").unwrap_or_else(|| "channels".into()));
    let link = move |id: &'static str, label: &'static str| {
        view! {
            <a href=format!("/notifications?tab={id}") aria-current=move || (tab.get() == id).then_some("page")>{label}</a>
        }
    };
    view! {
        <Title text="Notifications"/>
        <section class="page notifications">
            <h1>"Notifications"</h1>
            <nav class="tabs" aria-label="Notification settings">
                {link("channels", "Channels")} {link("rules", "Rules")} {link("maintenance", "Maintenance windows")}
            </nav>
            {move || match tab.get().as_str() {
                "rules" => view! { <Rules/> }.into_any(),
                "maintenance" => view! { <Maintenance/> }.into_any(),
                _ => view! { <Channels/> }.into_any(),
            }}
        </section>
    }
}

/// Where a channel sends, as the list shows it (secrets are masked by the server already).
fn endpoint(s: &ChannelSpec) -> String {
    match s.kind {
        ChannelKind::Email => format!("{} → {}", s.host.clone().unwrap_or_default(), s.to.join(", ")),
        _ => s.url.clone().unwrap_or_else(|| "PagerDuty Events API".into()),
    }
}

#[component]
fn Channels() -> impl IntoView {
    let query = use_query_map();
    let navigate = use_navigate();
    let reload = RwSignal::new(0u32);
    let list = Resource::new(move || reload.get(), |_| get_channels());
    let editing = RwSignal::new(None::<Option<Channel>>);
    let tested = RwSignal::new(None::<Result<(String, Delivery), String>>);
    let open_log = Memo::new(move |_| query.read().get("channel").and_then(|s| s.parse::<Uuid>().ok()));
    let send_test = move |c: Channel| {
        let navigate = navigate.clone();
        tested.set(None);
        leptos::task::spawn_local(async move {
            match test_channel(c.id).await {
                Ok(d) => tested.set(Some(Ok((c.spec.name.clone(), d)))),
                Err(e) => tested.set(Some(Err(e.to_string()))),
            }
            reload.update(|n| *n += 1);
            navigate(&format!("/notifications?tab=channels&channel={}", c.id), NavigateOptions::default());
        });
    };
    view! {
        <p class="muted">"Where messages go. Each channel's endpoint passes the same network policy as probes; secrets are write-only."</p>
        <div class="actions">
            <button type="button" class="btn primary" on:click=move |_| editing.set(Some(None))>"Add a channel"</button>
        </div>
        {move || editing.get().map(|existing| view! { <ChannelForm existing editing reload/> })}
        {move || tested.get().map(|r| match r {
            Ok((name, d)) if d.state == DeliveryState::Delivered => view! {
                <p class="ok" role="status" data-testid="test-result">{format!("Test to {name} delivered: {}", d.last_answer.unwrap_or_default())}</p>
            }.into_any(),
            Ok((name, d)) => view! {
                <p class="error" role="alert" data-testid="test-result">{format!("Test to {name} failed: {}", d.last_answer.unwrap_or_default())}</p>
            }.into_any(),
            Err(e) => view! { <p class="error" role="alert" data-testid="test-result">{e}</p> }.into_any(),
        })}
        <Transition fallback=|| view! { <p class="muted">"Loading channels…"</p> }>
            {move || list.get().map(|r| match r {
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(list) if list.is_empty() => view! { <p class="muted">"No channels yet: nobody is told when something breaks."</p> }.into_any(),
                Ok(list) => view! {
                    <table class="grid" aria-label="Channels">
                        <thead><tr><th>"Name"</th><th>"Kind"</th><th>"Endpoint"</th><th>"State"</th><th>"Last delivered"</th><th>"Waiting"</th><th></th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|c| {
                                let state = match (&c.health.failing_since, c.spec.enabled) {
                                    (_, false) => "disabled".to_string(),
                                    (Some(since), true) => format!("failing since {}: {}", when(*since), c.health.last_error.clone().unwrap_or_default()),
                                    (None, true) => "ok".to_string(),
                                };
                                let failing = c.health.failing_since.is_some();
                                let (edit, test) = (c.clone(), c.clone());
                                let send_test = send_test.clone();
                                view! {
                                    <tr data-channel=c.spec.name.clone()>
                                        <td>{c.spec.name.clone()}</td>
                                        <td>{c.spec.kind.label()}</td>
                                        <td><code>{endpoint(&c.spec)}</code></td>
                                        <td class:error=failing>{state}</td>
                                        <td>{c.health.last_delivered_at.map(when).unwrap_or_else(|| "never".into())}</td>
                                        <td>{format!("{} pending · {} failed", c.health.pending, c.health.failed)}</td>
                                        <td class="row-actions">
                                            <button type="button" class="btn" on:click=move |_| editing.set(Some(Some(edit.clone())))>"Edit"</button>
                                            <button type="button" class="btn" on:click=move |_| send_test(test.clone())>"Send test"</button>
                                            <a class="btn" href=format!("/notifications?tab=channels&channel={}", c.id)>"Delivery log"</a>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
        {move || open_log.get().map(|id| view! { <DeliveryLog id reload/> })}
    }
}

#[component]
fn DeliveryLog(id: Uuid, reload: RwSignal<u32>) -> impl IntoView {
    let log = Resource::new(move || (id, reload.get()), |(id, _)| get_deliveries(id));
    view! {
        <h2 id="delivery-log">"Delivery log"</h2>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || log.get().map(|r| match r {
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(rows) if rows.is_empty() => view! { <p class="muted">"Nothing sent yet."</p> }.into_any(),
                Ok(rows) => view! {
                    <table class="grid" aria-labelledby="delivery-log" data-testid="delivery-log">
                        <thead><tr><th>"When"</th><th>"Event"</th><th>"What"</th><th>"State"</th><th>"Tries"</th><th>"Last answer"</th></tr></thead>
                        <tbody>
                            {rows.into_iter().map(|d| {
                                let state = match (d.state, d.next_attempt_at) {
                                    (DeliveryState::Pending, Some(next)) => format!("pending (next try {})", when(next)),
                                    (s, _) => s.as_str().to_string(),
                                };
                                let what = if d.covers > 1 { format!("{} (+{} grouped)", d.summary, d.covers - 1) } else { d.summary.clone() };
                                view! {
                                    <tr data-state=d.state.as_str()>
                                        <td>{when(d.created_at)}</td>
                                        <td><code>{d.event.as_str()}</code></td>
                                        <td>{what}</td>
                                        <td>{state}</td>
                                        <td>{d.attempts}</td>
                                        <td>{d.last_answer.unwrap_or_default()}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
    }
}

/// `Name: value` per line, as the headers box shows and reads them.
fn headers_text(s: &ChannelSpec) -> String {
    s.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n")
}

fn parse_headers(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn opt(v: String) -> Option<String> {
    let v = v.trim().to_string();
    (!v.is_empty()).then_some(v)
}

#[component]
fn ChannelForm(
    existing: Option<Channel>,
    editing: RwSignal<Option<Option<Channel>>>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let id = existing.as_ref().map(|c| c.id);
    let spec = RwSignal::new(
        existing.as_ref().map_or_else(|| ChannelSpec { enabled: true, ..ChannelSpec::default() }, |c| c.spec.clone()),
    );
    let editor = Editor::new(editing, reload);
    let Editor { errors, problem, .. } = editor;
    let kind = Memo::new(move |_| spec.with(|s| s.kind));
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        editor.save(save_channel(id, spec.get_untracked()));
    };
    let remove = move |_| {
        let Some(id) = id else { return };
        if !window().confirm_with_message("Delete this channel and its delivery log?").unwrap_or(false) {
            return;
        }
        editor.remove(delete_channel(id));
    };
    let url_hint = move || match kind.get() {
        ChannelKind::Slack => "the incoming webhook URL (Slack, Mattermost, Rocket.Chat)",
        ChannelKind::Discord => "the channel's webhook URL",
        ChannelKind::Teams => "the workflow's webhook URL",
        ChannelKind::Ntfy => "the server and topic: https://ntfy.sh/my-topic",
        ChannelKind::Pagerduty => "empty for PagerDuty's Events API v2; or your proxy",
        _ => "where the JSON is POSTed",
    };
    view! {
        <form class="form channel-form" on:submit=save novalidate aria-label="Channel">
            <h2>{if id.is_some() { "Edit channel" } else { "New channel" }}</h2>
            <Field label="Name" field="name" errors>{text(spec, |s| s.name.clone(), |s, v| s.name = v)}</Field>
            <Field label="Kind" field="kind" errors>
                <select on:change=move |ev| {
                    if let Some(k) = ChannelKind::parse(&event_target_value(&ev)) {
                        spec.update(|s| s.kind = k);
                    }
                }>
                    {ChannelKind::ALL.map(|k| view! {
                        <option value=k.as_str() selected=move || kind.get() == k>{k.label()}</option>
                    })}
                </select>
            </Field>
            <Field label="Enabled" field="enabled" errors>{check(spec, |s| s.enabled, |s, v| s.enabled = v)}</Field>
            {move || (kind.get() != ChannelKind::Email).then(|| view! {
                <Field label="URL" field="url" errors>
                    <input type="url" prop:value=move || spec.with(|s| s.url.clone().unwrap_or_default())
                        on:input=move |ev| spec.update(|s| s.url = opt(event_target_value(&ev)))/>
                    <small class="hint">{url_hint}</small>
                </Field>
            })}
            {move || (kind.get() == ChannelKind::Webhook).then(|| view! {
                <Field label="Signing secret" field="secret" errors hint="X-Triage-Signature: HMAC-SHA256 of the timestamp and body">
                    <input type="password" autocomplete="new-password" prop:value=move || spec.with(|s| s.secret.clone().unwrap_or_default())
                        on:input=move |ev| spec.update(|s| s.secret = opt(event_target_value(&ev)))/>
                </Field>
                <Field label="Extra headers" field="headers" errors hint="Name: value, one per line (values are write-only)">
                    <textarea rows="3" prop:value=move || spec.with(headers_text)
                        on:change=move |ev| spec.update(|s| s.headers = parse_headers(&event_target_value(&ev)))></textarea>
                </Field>
            })}
            {move || (kind.get() == ChannelKind::Ntfy).then(|| view! {
                <Field label="Access token" field="token" errors>
                    <input type="password" autocomplete="new-password" prop:value=move || spec.with(|s| s.token.clone().unwrap_or_default())
                        on:input=move |ev| spec.update(|s| s.token = opt(event_target_value(&ev)))/>
                </Field>
                <Field label="Priority of outages" field="priority" errors hint="1 (min) to 5 (max); recoveries are sent at 3">
                    <input inputmode="numeric" prop:value=move || spec.with(|s| s.priority.map(|p| p.to_string()).unwrap_or_default())
                        on:input=move |ev| spec.update(|s| s.priority = event_target_value(&ev).trim().parse().ok())/>
                </Field>
            })}
            {move || (kind.get() == ChannelKind::Pagerduty).then(|| view! {
                <Field label="Routing key" field="routing_key" errors hint="the Events API v2 integration key">
                    <input type="password" autocomplete="new-password" prop:value=move || spec.with(|s| s.routing_key.clone().unwrap_or_default())
                        on:input=move |ev| spec.update(|s| s.routing_key = opt(event_target_value(&ev)))/>
                </Field>
            })}
            {move || (kind.get() == ChannelKind::Email).then(|| view! {
                <Field label="SMTP server" field="host" errors>
                    <input prop:value=move || spec.with(|s| s.host.clone().unwrap_or_default())
                        on:input=move |ev| spec.update(|s| s.host = opt(event_target_value(&ev)))/>
                </Field>
                <Field label="Port" field="port" errors hint="empty: 587 for STARTTLS, 465 for TLS, 25 for none">
                    <input inputmode="numeric" prop:value=move || spec.with(|s| s.port.map(|p| p.to_string()).unwrap_or_default())
                        on:input=move |ev| spec.update(|s| s.port = event_target_value(&ev).trim().parse().ok())/>
                </Field>
                <Field label="Security" field="security" errors>
                    <select on:change=move |ev| {
                        let v = match event_target_value(&ev).as_str() { "tls" => SmtpSecurity::Tls, "none" => SmtpSecurity::None, _ => SmtpSecurity::Starttls };
                        spec.update(|s| s.security = Some(v));
                    }>
                        {[(SmtpSecurity::Starttls, "starttls", "STARTTLS (required)"), (SmtpSecurity::Tls, "tls", "TLS from the start"), (SmtpSecurity::None, "none", "none (local relay)")]
                            .map(|(v, value, label)| view! { <option value=value selected=move || spec.with(|s| s.security.unwrap_or_default() == v)>{label}</option> })}
                    </select>
                </Field>
                <Field label="Username" field="username" errors>
                    <input autocomplete="off" prop:value=move || spec.with(|s| s.username.clone().unwrap_or_default())
                        on:input=move |ev| spec.update(|s| s.username = opt(event_target_value(&ev)))/>
                </Field>
                <Field label="Password" field="password" errors>
                    <input type="password" autocomplete="new-password" prop:value=move || spec.with(|s| s.password.clone().unwrap_or_default())
                        on:input=move |ev| spec.update(|s| s.password = opt(event_target_value(&ev)))/>
                </Field>
                <Field label="From" field="from" errors hint="Triage <triage@example.com>">
                    <input prop:value=move || spec.with(|s| s.from.clone().unwrap_or_default())
                        on:input=move |ev| spec.update(|s| s.from = opt(event_target_value(&ev)))/>
                </Field>
                <Field label="To" field="to" errors hint="addresses separated by commas">
                    {list_text(spec, |s| s.to.join(", "), |s, v| s.to = split_list(&v))}
                </Field>
                <Field label="Accept an unverified certificate" field="accept_invalid_certs" errors>
                    {check(spec, |s| s.accept_invalid_certs, |s, v| s.accept_invalid_certs = v)}
                </Field>
            })}
            {move || problem.get().map(|p| view! { <p class="error" role="alert" data-testid="form-error">{p}</p> })}
            <div class="actions">
                <button type="submit" class="btn primary">"Save channel"</button>
                <button type="button" class="btn" on:click=move |_| editing.set(None)>"Cancel"</button>
                {id.map(|_| view! { <button type="button" class="btn danger" on:click=remove>"Delete"</button> })}
            </div>
        </form>
    }
}

/// Services typed by name (a list of thousands does not fit a select); an unknown name is shown
/// beside the field and changes nothing.
fn service_names(
    services: Vec<Service>,
    errors: RwSignal<Errors>,
    get: impl Fn() -> Vec<Uuid> + Send + Sync + 'static,
    set: impl Fn(Vec<Uuid>) + Send + Sync + 'static,
) -> impl IntoView {
    let initial = scope_text(&get(), &[], &services);
    view! {
        <input list="service-names" value=initial on:change=move |ev| {
            let mut ids = Vec::new();
            for name in split_list(&event_target_value(&ev)) {
                match services.iter().find(|s| s.name.eq_ignore_ascii_case(&name)) {
                    Some(s) => ids.push(s.id),
                    None => {
                        super::config::form::set_error(errors, "services", Some(format!("no service named {name}")));
                        return;
                    }
                }
            }
            super::config::form::set_error(errors, "services", None);
            set(ids);
        }/>
    }
}

/// The services (by name) and tags a rule or a window names, as its row shows them.
fn scope_text(ids: &[Uuid], tags: &[String], services: &[Service]) -> String {
    let named = ids
        .iter()
        .map(|id| services.iter().find(|s| s.id == *id).map_or_else(|| id.to_string(), |s| s.name.clone()))
        .collect::<Vec<_>>()
        .join(", ");
    let tags = tags.iter().map(|t| format!("#{t}")).collect::<Vec<_>>().join(" ");
    [named, tags].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" · ")
}

#[component]
fn Rules() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let data = Resource::new(
        move || reload.get(),
        |_| async move {
            let rules = get_rules().await?;
            let channels = get_channels().await?;
            let services = get_catalog(Some(CatalogScope::Services)).await?.services;
            Ok::<_, ServerError>((rules, channels, services))
        },
    );
    let editing = RwSignal::new(None::<Option<Rule>>);
    view! {
        <p class="muted">"Which events go to which channels. A rule without services or tags takes every service; SEV1 is the most severe."</p>
        <div class="actions">
            <button type="button" class="btn primary" on:click=move |_| editing.set(Some(None))>"Add a rule"</button>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading rules…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok((rules, channels, services)) => {
                    let form = {
                        let (channels, services) = (channels.clone(), services.clone());
                        move || editing.get().map(|existing| view! { <RuleForm existing editing reload channels=channels.clone() services=services.clone()/> })
                    };
                    view! {
                        {form}
                        <table class="grid" aria-label="Rules">
                            <thead><tr><th>"Name"</th><th>"Events"</th><th>"For"</th><th>"Severity"</th><th>"Channels"</th><th></th></tr></thead>
                            <tbody>
                                {rules.into_iter().map(|r| {
                                    let scope = if r.spec.services.is_empty() && r.spec.tags.is_empty() {
                                        "every service".to_string()
                                    } else {
                                        scope_text(&r.spec.services, &r.spec.tags, &services)
                                    };
                                    let to = if r.spec.all_channels { "every channel".to_string() } else {
                                        r.spec.channels.iter().map(|id| channels.iter().find(|c| c.id == *id).map_or_else(|| id.to_string(), |c| c.spec.name.clone())).collect::<Vec<_>>().join(", ")
                                    };
                                    let edit = r.clone();
                                    view! {
                                        <tr class:muted=!r.spec.enabled>
                                            <td>{r.spec.name.clone()}</td>
                                            <td>{r.spec.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")}</td>
                                            <td>{scope}</td>
                                            <td>{r.spec.min_severity.map_or("any", Severity::as_str)}</td>
                                            <td>{to}</td>
                                            <td><button type="button" class="btn" on:click=move |_| editing.set(Some(Some(edit.clone())))>"Edit"</button></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
fn RuleForm(
    existing: Option<Rule>,
    editing: RwSignal<Option<Option<Rule>>>,
    reload: RwSignal<u32>,
    channels: Vec<Channel>,
    services: Vec<Service>,
) -> impl IntoView {
    let id = existing.as_ref().map(|r| r.id);
    let spec = RwSignal::new(existing.map_or_else(
        || RuleSpec {
            name: String::new(),
            enabled: true,
            events: vec![EventKind::IncidentOpened, EventKind::IncidentResolved],
            services: vec![],
            tags: vec![],
            min_severity: None,
            channels: vec![],
            all_channels: false,
        },
        |r| r.spec,
    ));
    let editor = Editor::new(editing, reload);
    let Editor { errors, problem, .. } = editor;
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        editor.save(save_rule(id, spec.get_untracked()));
    };
    let remove = move |_| {
        let Some(id) = id else { return };
        editor.remove(delete_rule(id));
    };
    let events = EventKind::ALL
        .into_iter()
        .filter(|e| *e != EventKind::Test)
        .map(|e| {
            view! {
                <label class="inline">
                    <input type="checkbox" prop:checked=move || spec.with(|s| s.events.contains(&e))
                        on:change=move |ev| spec.update(|s| {
                            s.events.retain(|x| *x != e);
                            if event_target_checked(&ev) { s.events.push(e); }
                        })/>
                    <code>{e.as_str()}</code>
                </label>
            }
        })
        .collect_view();
    let channel_boxes = channels
        .into_iter()
        .map(|c| {
            let cid = c.id;
            view! {
                <label class="inline">
                    <input type="checkbox" prop:checked=move || spec.with(|s| s.channels.contains(&cid))
                        on:change=move |ev| spec.update(|s| {
                            s.channels.retain(|x| *x != cid);
                            if event_target_checked(&ev) { s.channels.push(cid); }
                        })/>
                    {c.spec.name.clone()}
                </label>
            }
        })
        .collect_view();
    view! {
            <form class="form rule-form" on:submit=save novalidate aria-label="Rule">
                <h2>{if id.is_some() { "Edit rule" } else { "New rule" }}</h2>
                <Field label="Name" field="name" errors>{text(spec, |s| s.name.clone(), |s, v| s.name = v)}</Field>
                <Field label="Enabled" field="enabled" errors>{check(spec, |s| s.enabled, |s, v| s.enabled = v)}</Field>
                <Field label="Events" field="events" errors group=true>{events}</Field>
                <Field label="Services" field="services" errors hint="names separated by commas; none: every service (or only the tags below)">
    {service_names(services.clone(), errors, move || spec.with(|s| s.services.clone()), move |ids| spec.update(|s| s.services = ids))}
                </Field>
                <Field label="Tags" field="tags" errors hint="separated by spaces or commas">
                    {list_text(spec, |s| s.tags.join(" "), |s, v| s.tags = split_tags(&v))}
                </Field>
                <Field label="At least" field="min_severity" errors>
                    <select on:change=move |ev| spec.update(|s| s.min_severity = Severity::parse(&event_target_value(&ev)))>
                        <option value="" selected=move || spec.with(|s| s.min_severity.is_none())>"any severity"</option>
                        {Severity::ALL.map(|v| view! { <option value=v.as_str() selected=move || spec.with(|s| s.min_severity == Some(v))>{v.as_str()}</option> })}
                    </select>
                </Field>
                <Field label="Every channel" field="all_channels" errors hint="including channels added later">
                    {check(spec, |s| s.all_channels, |s, v| s.all_channels = v)}
                </Field>
                <Field label="Channels" field="channels" errors group=true>{channel_boxes}</Field>
                {move || problem.get().map(|p| view! { <p class="error" role="alert" data-testid="form-error">{p}</p> })}
                <div class="actions">
                    <button type="submit" class="btn primary">"Save rule"</button>
                    <button type="button" class="btn" on:click=move |_| editing.set(None)>"Cancel"</button>
                    {id.map(|_| view! { <button type="button" class="btn danger" on:click=remove>"Delete"</button> })}
                </div>
            </form>
        }
}

/// `YYYY-MM-DDTHH:MM` (a datetime-local input), read as UTC.
fn parse_local(v: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M").ok().map(|t| t.and_utc())
}

fn local(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

fn schedule(w: &MaintenanceWindow) -> String {
    match &w.spec.recurrence {
        None => format!("{} → {}", when(w.spec.starts_at), when(w.spec.ends_at)),
        Some(r) => {
            let every = match (r.every, r.interval) {
                (Every::Week, 1) => "every week".to_string(),
                (Every::Month, 1) => "every month".to_string(),
                (Every::Week, n) => format!("every {n} weeks"),
                (Every::Month, n) => format!("every {n} months"),
            };
            let length = (w.spec.ends_at - w.spec.starts_at).num_minutes();
            format!("{every} ({}), {length} min from {}", r.time_zone, when(w.spec.starts_at))
        }
    }
}

#[component]
fn Maintenance() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let data = Resource::new(
        move || reload.get(),
        |_| async move {
            let windows = get_maintenance().await?;
            let services = get_catalog(Some(CatalogScope::Services)).await?.services;
            Ok::<_, ServerError>((windows, services))
        },
    );
    let editing = RwSignal::new(None::<Option<MaintenanceWindow>>);
    let problem = RwSignal::new(None::<String>);
    let end = move |id: Uuid| {
        leptos::task::spawn_local(async move {
            match end_maintenance(id).await {
                Ok(_) => reload.update(|n| *n += 1),
                Err(e) => problem.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <p class="muted">"Planned work: probes keep running, but nothing opens an incident or notifies for the services covered. An outage still on when the window ends opens its incident then."</p>
        <div class="actions">
            <button type="button" class="btn primary" on:click=move |_| editing.set(Some(None))>"Add a window"</button>
        </div>
        {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
        <Transition fallback=|| view! { <p class="muted">"Loading windows…"</p> }>
            {move || data.get().map(|r| match r {
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok((windows, services)) => {
                    let form = {
                        let services = services.clone();
                        move || editing.get().map(|existing| view! { <WindowForm existing editing reload services=services.clone()/> })
                    };
                    view! {
                        {form}
                        <table class="grid" aria-label="Maintenance windows">
                            <thead><tr><th>"Title"</th><th>"For"</th><th>"When"</th><th>"Now"</th><th></th></tr></thead>
                            <tbody>
                                {windows.into_iter().map(|w| {
                                    let scope = scope_text(&w.spec.services, &w.spec.tags, &services);
                                    let now = match (w.active, w.current) {
                                        (true, Some(o)) => format!("under way until {}", when(o.ends_at)),
                                        (false, Some(o)) => format!("next {}", when(o.starts_at)),
                                        _ => "over".to_string(),
                                    };
                                    let (id, active, edit) = (w.id, w.active, w.clone());
                                    view! {
                                        <tr class:active=active>
                                            <td>{w.spec.title.clone()}</td>
                                            <td>{scope}</td>
                                            <td>{schedule(&w)}</td>
                                            <td>{now}</td>
                                            <td class="row-actions">
                                                <button type="button" class="btn" on:click=move |_| editing.set(Some(Some(edit.clone())))>"Edit"</button>
                                                {active.then(|| view! { <button type="button" class="btn" on:click=move |_| end(id)>"End now"</button> })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
fn WindowForm(
    existing: Option<MaintenanceWindow>,
    editing: RwSignal<Option<Option<MaintenanceWindow>>>,
    reload: RwSignal<u32>,
    services: Vec<Service>,
) -> impl IntoView {
    let id = existing.as_ref().map(|w| w.id);
    let now = chrono::Utc::now();
    let spec = RwSignal::new(existing.map_or_else(
        || MaintenanceSpec {
            title: String::new(),
            services: vec![],
            tags: vec![],
            starts_at: now,
            ends_at: now + chrono::Duration::hours(1),
            recurrence: None,
        },
        |w| w.spec,
    ));
    let editor = Editor::new(editing, reload);
    let Editor { errors, problem, .. } = editor;
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        editor.save(save_maintenance(id, spec.get_untracked()));
    };
    let remove = move |_| {
        let Some(id) = id else { return };
        editor.remove(delete_maintenance(id));
    };
    let time_input = move |get: fn(&MaintenanceSpec) -> chrono::DateTime<chrono::Utc>,
                           set: fn(&mut MaintenanceSpec, chrono::DateTime<chrono::Utc>),
                           field: &'static str| {
        view! {
            <input type="datetime-local" prop:value=move || spec.with(|s| local(get(s)))
                on:change=move |ev| match parse_local(&event_target_value(&ev)) {
                    Some(t) => spec.update(|s| set(s, t)),
                    None => super::config::form::set_error(errors, field, Some("a date and time".into())),
                }/>
        }
    };
    let every = move || spec.with(|s| s.recurrence.as_ref().map(|r| r.every));
    view! {
            <form class="form window-form" on:submit=save novalidate aria-label="Maintenance window">
                <h2>{if id.is_some() { "Edit maintenance window" } else { "New maintenance window" }}</h2>
                <Field label="Title" field="title" errors>{text(spec, |s| s.title.clone(), |s, v| s.title = v)}</Field>
                <Field label="Services" field="services" errors>
    {service_names(services.clone(), errors, move || spec.with(|s| s.services.clone()), move |ids| spec.update(|s| s.services = ids))}
                </Field>
                <Field label="Tags" field="tags" errors hint="services with any of these tags are covered too">
                    {list_text(spec, |s| s.tags.join(" "), |s, v| s.tags = split_tags(&v))}
                </Field>
                <Field label="Starts (UTC)" field="starts_at" errors>{time_input(|s| s.starts_at, |s, t| s.starts_at = t, "starts_at")}</Field>
                <Field label="Ends (UTC)" field="ends_at" errors>{time_input(|s| s.ends_at, |s, t| s.ends_at = t, "ends_at")}</Field>
                <Field label="Repeats" field="recurrence" errors>
                    <select on:change=move |ev| {
                        let every = match event_target_value(&ev).as_str() { "week" => Some(Every::Week), "month" => Some(Every::Month), _ => None };
                        spec.update(|s| s.recurrence = every.map(|every| Recurrence {
                            every,
                            interval: 1,
                            time_zone: s.recurrence.as_ref().map_or_else(|| "UTC".into(), |r| r.time_zone.clone()),
                            until: None,
                        }));
                    }>
                        <option value="" selected=move || every().is_none()>"never (one-off)"</option>
                        <option value="week" selected=move || every() == Some(Every::Week)>"every week"</option>
                        <option value="month" selected=move || every() == Some(Every::Month)>"every month"</option>
                    </select>
                </Field>
                {move || every().is_some().then(|| view! {
                    <Field label="Time zone" field="recurrence.time_zone" errors hint="IANA name: Europe/Berlin, America/New_York, UTC — the window keeps its local time">
                        <input prop:value=move || spec.with(|s| s.recurrence.as_ref().map(|r| r.time_zone.clone()).unwrap_or_default())
                            on:input=move |ev| spec.update(|s| if let Some(r) = &mut s.recurrence { r.time_zone = event_target_value(&ev).trim().to_string(); })/>
                    </Field>
                })}
                {move || problem.get().map(|p| view! { <p class="error" role="alert" data-testid="form-error">{p}</p> })}
                <div class="actions">
                    <button type="submit" class="btn primary">"Save window"</button>
                    <button type="button" class="btn" on:click=move |_| editing.set(None)>"Cancel"</button>
                    {id.map(|_| view! { <button type="button" class="btn danger" on:click=remove>"Delete"</button> })}
                </div>
            </form>
        }
}
