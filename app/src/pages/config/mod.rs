//! Configuration (admins): every service with its probes, with edit, clone, pause/resume and
//! delete; bulk actions on a selection or a tag (`/config?tag=checkout&q=api` in the URL); and
//! the probe file's export and import. The forms live in the submodules.

pub(crate) mod form;
pub mod import;
mod network;
pub mod probe;
pub mod service;

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};
use uuid::Uuid;

use crate::api::{bulk_probes, export_probe_file, get_catalog};
use crate::components::state::probe_state_label;
use crate::markup::query_value;
use crate::model::{BulkAction, Catalog, Probe, Selection};

/// The probes the filters show: by tag of their service, and by text in the probe's or the
/// service's name.
fn shown(c: &Catalog, tag: &str, q: &str) -> Vec<Probe> {
    let q = q.to_lowercase();
    c.probes
        .iter()
        .filter(|p| {
            let service = c.services.iter().find(|s| s.id == p.service_id);
            let tagged = tag.is_empty() || service.is_some_and(|s| s.tags.iter().any(|t| t == tag));
            let named =
                q.is_empty() || p.spec.name.to_lowercase().contains(&q) || p.service.to_lowercase().contains(&q);
            tagged && named
        })
        .cloned()
        .collect()
}

/// Every configuration page behind one route: the page follows the path. Only a change of page
/// re-renders (a saved probe's new URL keeps its form, with what it just said).
#[component]
pub fn ConfigSection() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let page = Memo::new(move |_| {
        let path = location.pathname.get();
        if path.starts_with("/config/probes/") {
            "probe"
        } else if path.starts_with("/config/services/") {
            "service"
        } else if path == "/config/import" {
            "import"
        } else {
            "list"
        }
    });
    move || match page.get() {
        "probe" => view! { <probe::ProbePage/> }.into_any(),
        "service" => view! { <service::ServicePage/> }.into_any(),
        "import" => view! { <import::ImportPage/> }.into_any(),
        _ => view! { <Config/> }.into_any(),
    }
}

#[component]
pub fn Config() -> impl IntoView {
    let query = use_query_map();
    let tag = Memo::new(move |_| query.read().get("tag").unwrap_or_default());
    let q = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let version = RwSignal::new(0u32);
    let catalog = Resource::new(move || version.get(), |_| get_catalog(None));
    let chosen = RwSignal::new(BTreeSet::<Uuid>::new());
    let message = RwSignal::new(None::<Result<String, String>>);
    let navigate = use_navigate();
    let go = move |tag: String, q: String| {
        let mut parts = Vec::new();
        if !tag.is_empty() {
            parts.push(format!("tag={}", query_value(&tag)));
        }
        if !q.is_empty() {
            parts.push(format!("q={}", query_value(&q)));
        }
        let url = if parts.is_empty() { "/config".to_string() } else { format!("/config?{}", parts.join("&")) };
        navigate(&url, NavigateOptions { replace: true, scroll: false, ..Default::default() });
    };
    let go_q = go.clone();
    let act = move |action: BulkAction, probes: Vec<Probe>, by_tag: Option<String>| {
        let count = probes.len();
        if count == 0 {
            message.set(Some(Err("Select probes first (or filter by a tag).".into())));
            return;
        }
        let what = match &by_tag {
            Some(t) => format!("the {count} probe(s) shown of the services tagged {t}"),
            None => format!("{count} selected probe(s)"),
        };
        if action == BulkAction::Delete {
            let question = format!("Delete {what} and all their results?");
            if !window().confirm_with_message(&question).unwrap_or(false) {
                return;
            }
        }
        // The probes counted in the question, exactly: with a text filter on top of the tag, the
        // tag alone would reach more than the admin confirmed.
        let selection = Selection { probes: probes.iter().map(|p| p.id).collect(), ..Default::default() };
        leptos::task::spawn_local(async move {
            match bulk_probes(selection, action).await {
                Ok(o) => {
                    let mut text = format!("{}: {} probe(s) changed.", action.as_str(), o.changed);
                    if !o.skipped.is_empty() {
                        text.push_str(&format!(" Left as they are (managed by file): {}.", o.skipped.join(", ")));
                    }
                    message.set(Some(Ok(text)));
                    chosen.set(BTreeSet::new());
                    version.update(|v| *v += 1);
                }
                Err(e) => message.set(Some(Err(e.to_string()))),
            }
        });
    };
    view! {
        <Title text="Configuration"/>
        <section class="page config">
            <div class="page-head">
                <h1>"Configuration"</h1>
                <div class="toolbar">
                    <a class="btn primary" href="/config/services/new">"Add a service"</a>
                    <a class="btn" href="/config/probes/new">"Add a probe"</a>
                    <a class="btn" href="/config/import">"Import"</a>
                    <ExportButton/>
                </div>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || catalog.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(c) => {
                        let tags: BTreeSet<String> = c.services.iter().flat_map(|s| s.tags.clone()).collect();
                        let probes = shown(&c, &tag.get(), &q.get());
                        let visible = probes.clone();
                        let empty_services: Vec<_> = c.services.iter().filter(|s| !c.probes.iter().any(|p| p.service_id == s.id)).cloned().collect();
                        let (go_tag, go_text) = (go.clone(), go_q.clone());
                        let (a1, a2, a3) = (act, act, act);
                        let (v1, v2, v3) = (visible.clone(), visible.clone(), visible.clone());
                        let selected = move |all: &Vec<Probe>| {
                            let chosen = chosen.get_untracked();
                            all.iter().filter(|p| chosen.contains(&p.id)).cloned().collect::<Vec<_>>()
                        };
                        view! {
                            <div class="toolbar" role="search">
                                <label>"Tag "
                                    <select on:change=move |ev| go_tag(event_target_value(&ev), q.get_untracked())>
                                        <option value="" selected=move || tag.get().is_empty()>"any"</option>
                                        {tags.into_iter().map(|t| {
                                            let (v, shown) = (t.clone(), t.clone());
                                            view! { <option value=t selected=move || tag.get() == v>{shown}</option> }
                                        }).collect_view()}
                                    </select>
                                </label>
                                <input type="search" aria-label="Filter probes" placeholder="Filter by probe or service name"
                                    prop:value=move || q.get() on:input=move |ev| go_text(tag.get_untracked(), event_target_value(&ev))/>
                                <span class="muted">{move || format!("{} selected", chosen.with(BTreeSet::len))}</span>
                                <button type="button" class="btn" on:click=move |_| a1(BulkAction::Pause, selected(&v1), None)>"Pause selected"</button>
                                <button type="button" class="btn" on:click=move |_| a2(BulkAction::Resume, selected(&v2), None)>"Resume selected"</button>
                                <button type="button" class="btn danger" on:click=move |_| a3(BulkAction::Delete, selected(&v3), None)>"Delete selected"</button>
                                {move || (!tag.get().is_empty()).then(|| {
                                    let t = tag.get();
                                    let all = visible.clone();
                                    let (b1, b2, b3) = (all.clone(), all.clone(), all);
                                    let (t1, t2, t3) = (t.clone(), t.clone(), t.clone());
                                    view! {
                                        <span class="tag-actions">"All tagged " <strong>{t}</strong> ": "
                                            <button type="button" class="btn" on:click=move |_| act(BulkAction::Pause, b1.clone(), Some(t1.clone()))>"Pause"</button>
                                            <button type="button" class="btn" on:click=move |_| act(BulkAction::Resume, b2.clone(), Some(t2.clone()))>"Resume"</button>
                                            <button type="button" class="btn danger" on:click=move |_| act(BulkAction::Delete, b3.clone(), Some(t3.clone()))>"Delete"</button>
                                        </span>
                                    }
                                })}
                            </div>
                            {move || message.get().map(|m| match m {
                                Ok(t) => view! { <p class="ok" role="status">{t}</p> }.into_any(),
                                Err(t) => view! { <p class="error" role="alert">{t}</p> }.into_any(),
                            })}
                            <ProbeTable probes chosen version message/>
                            {(!empty_services.is_empty()).then(|| view! {
                                <h2>"Services without probes"</h2>
                                <ul>{empty_services.into_iter().map(|s| view! {
                                    <li><a href=format!("/config/services/{}", s.id)>{s.name.clone()}</a> " · "
                                        <a href=format!("/config/probes/new?service={}", s.id)>"add a probe"</a></li>
                                }).collect_view()}</ul>
                            })}
                        }.into_any()
                    }
                })}
            </Transition>
            <network::Allowlist/>
        </section>
    }
}

#[component]
fn ProbeTable(
    probes: Vec<Probe>,
    chosen: RwSignal<BTreeSet<Uuid>>,
    version: RwSignal<u32>,
    message: RwSignal<Option<Result<String, String>>>,
) -> impl IntoView {
    if probes.is_empty() {
        return view! { <p class="muted" role="status">"No probes match."</p> }.into_any();
    }
    let ids: Vec<Uuid> = probes.iter().filter(|p| !p.file_managed).map(|p| p.id).collect();
    let toggle_one = move |action: BulkAction, id: Uuid| {
        leptos::task::spawn_local(async move {
            let selection = Selection { probes: vec![id], ..Default::default() };
            match bulk_probes(selection, action).await {
                Ok(_) => version.update(|v| *v += 1),
                Err(e) => message.set(Some(Err(e.to_string()))),
            }
        });
    };
    view! {
        <table class="grid config-table" aria-label="Probes">
            <thead><tr>
                <th><input type="checkbox" aria-label="Select all shown"
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        let ids = ids.clone();
                        chosen.update(|c| for id in ids { if on { c.insert(id); } else { c.remove(&id); } });
                    }/></th>
                <th>"Probe"</th><th>"Service"</th><th>"Kind"</th><th>"Target"</th><th>"Every"</th><th>"State"</th><th></th>
            </tr></thead>
            <tbody>
                {probes.into_iter().map(|p| {
                    let id = p.id;
                    let (class, label) = probe_state_label(p.status.as_ref());
                    let enabled = p.spec.enabled;
                    view! {
                        <tr data-probe=p.spec.name.clone() class:paused=!enabled>
                            <td><input type="checkbox" aria-label=format!("Select {}", p.spec.name) disabled=p.file_managed
                                prop:checked=move || chosen.with(|c| c.contains(&id))
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    chosen.update(|c| { if on { c.insert(id); } else { c.remove(&id); } });
                                }/></td>
                            <td><a href=format!("/config/probes/{id}")>{p.spec.name.clone()}</a>
                                {p.file_managed.then(|| view! { " " <span class="badge" title="Defined in the server's probe file; read-only here">"managed by file"</span> })}</td>
                            <td><a href=format!("/config/services/{}", p.service_id)>{p.service.clone()}</a></td>
                            <td>{p.spec.kind.as_str()}</td>
                            <td class="target"><code>{p.spec.url.clone().unwrap_or_else(|| "(pushed)".into())}</code></td>
                            <td>{p.spec.interval_secs} " s"</td>
                            <td>{if enabled { view! { <span class=class>{label}</span> }.into_any() } else { view! { <span class="muted">"paused"</span> }.into_any() }}</td>
                            <td class="row-actions">
                                <a class="btn small" href=format!("/config/probes/new?from={id}")>"Clone"</a>
                                {(!p.file_managed).then(|| if enabled {
                                    view! { <button type="button" class="btn small" on:click=move |_| toggle_one(BulkAction::Pause, id)>"Pause"</button> }.into_any()
                                } else {
                                    view! { <button type="button" class="btn small" on:click=move |_| toggle_one(BulkAction::Resume, id)>"Resume"</button> }.into_any()
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// Fetches the probe file (secrets masked) and offers it as a download.
#[component]
fn ExportButton() -> impl IntoView {
    let file = RwSignal::new(None::<Result<String, String>>);
    let fetch = move |_| {
        leptos::task::spawn_local(async move {
            file.set(Some(export_probe_file().await.map_err(|e| e.to_string())));
        });
    };
    view! {
        <button type="button" class="btn" on:click=fetch>"Export probe file"</button>
        {move || file.get().map(|f| match f {
            Ok(text) => view! {
                <a class="btn primary" download="triage-probes.toml" data-testid="export-download"
                    href=format!("data:application/toml;charset=utf-8,{}", query_value(&text))>"Download triage-probes.toml"</a>
                <span class="muted">" (secret values are masked: fill them in before applying it)"</span>
            }.into_any(),
            Err(e) => view! { <span class="error" role="alert">{e}</span> }.into_any(),
        })}
    }
}
