//! The service form (`/config/services/new`, `/config/services/{id}`): name, description,
//! criticality and tags; deleting a service removes its probes and their results.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_params_map};
use uuid::Uuid;

use super::form::{Errors, Field, area, list_text, show_server_error, split_tags, text};
use crate::api::{delete_service, get_catalog, save_service};
use crate::model::{CatalogScope, Criticality, ServiceInput};

#[component]
pub fn ServicePage() -> impl IntoView {
    let params = use_params_map();
    let catalog = Resource::new(|| (), |_| get_catalog(Some(CatalogScope::Services)));
    view! {
        <Title text="Service"/>
        <section class="page config">
            <p class="crumbs"><a href="/config">"Configuration"</a> " › service"</p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || catalog.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(c) => {
                        let id = params.read_untracked().get("id").and_then(|s| s.parse::<Uuid>().ok());
                        let existing = id.and_then(|id| c.services.iter().find(|s| s.id == id).cloned());
                        match (id, existing) {
                            (Some(_), None) => view! { <p class="error" role="alert">"No such service."</p> }.into_any(),
                            (_, s) => {
                                let probes = s.as_ref().map_or(0, |s| s.probe_ids.len());
                                view! { <ServiceForm existing=s probes/> }.into_any()
                            }
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn ServiceForm(existing: Option<crate::model::Service>, probes: usize) -> impl IntoView {
    let id = existing.as_ref().map(|s| s.id);
    let input = RwSignal::new(existing.as_ref().map_or_else(ServiceInput::default, |s| ServiceInput {
        name: s.name.clone(),
        description: s.description.clone(),
        tags: s.tags.clone(),
        criticality: s.criticality,
    }));
    let errors = RwSignal::new(Errors::new());
    let problem = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let nav = navigate.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.set(Errors::new());
        problem.set(None);
        let navigate = nav.clone();
        leptos::task::spawn_local(async move {
            match save_service(id, input.get_untracked()).await {
                Ok(s) => {
                    done.set(Some(format!("Saved {}.", s.name)));
                    if id.is_none() {
                        // Next: its first probe.
                        navigate(&format!("/config/probes/new?service={}", s.id), NavigateOptions::default());
                    }
                }
                Err(e) => problem.set(Some(format!("Not saved: {}", show_server_error(errors, &e)))),
            }
        });
    };
    let remove = move |_| {
        let Some(id) = id else { return };
        let question = format!("Delete this service, its {probes} probe(s) and all their results?");
        let confirmed = window().confirm_with_message(&question).unwrap_or(false);
        if !confirmed {
            return;
        }
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match delete_service(id).await {
                Ok(()) => navigate("/config", NavigateOptions::default()),
                Err(e) => problem.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <h1>{existing.as_ref().map_or_else(|| "New service".to_string(), |s| format!("Service {}", s.name))}</h1>
        <form class="form service-form" on:submit=save novalidate>
            <Field label="Name" field="name" errors>{text(input, |s| s.name.clone(), |s, v| s.name = v)}</Field>
            <Field label="Description" field="description" errors hint="Markdown; shown on the service page">
                {area(input, 3, |s| s.description.clone(), |s, v| s.description = v)}
            </Field>
            <Field label="Criticality" field="criticality" errors hint="An incident's severity follows it unless a probe says otherwise">
                <select on:change=move |ev| {
                    if let Some(c) = Criticality::parse(&event_target_value(&ev)) {
                        input.update(|s| s.criticality = c);
                    }
                }>
                    {[Criticality::Critical, Criticality::High, Criticality::Medium, Criticality::Low].map(|c| view! {
                        <option value=c.as_str() selected=move || input.with(|s| s.criticality == c)>{c.as_str()}</option>
                    })}
                </select>
            </Field>
            <Field label="Tags" field="tags" errors hint="separated by spaces or commas">
                {list_text(input, |s| s.tags.join(" "), |s, v| s.tags = split_tags(&v))}
            </Field>
            {move || problem.get().map(|p| view! { <p class="error" role="alert" data-testid="form-error">{p}</p> })}
            {move || done.get().map(|d| view! { <p class="ok" role="status">{d}</p> })}
            <div class="actions">
                <button type="submit" class="btn primary">{if id.is_some() { "Save" } else { "Create and add a probe" }}</button>
                {id.map(|id| view! {
                    <a class="btn" href=format!("/config/probes/new?service={id}")>"Add a probe"</a>
                    <a class="btn" href=format!("/services/{id}")>"Open the service page"</a>
                    <button type="button" class="btn danger" on:click=remove.clone()>"Delete service"</button>
                })}
            </div>
        </form>
    }
}
