//! Status pages (admins): the public pages at `/s/{slug}`, each a title, a description and the
//! chosen services in groups. Nothing else of Triage is shown there.

use leptos::prelude::*;
use leptos_meta::Title;
use uuid::Uuid;

use super::config::form::{Editor, Field, set_error, text};
use crate::api::{ServerError, delete_status_page, get_catalog, get_status_pages, save_status_page};
use crate::model::{CatalogScope, Service, StatusGroup, StatusPage, StatusPageSpec};

/// The groups as the form edits them: one line per group, "Name: Service, Service".
fn groups_text(groups: &[StatusGroup], services: &[Service]) -> String {
    groups
        .iter()
        .map(|g| {
            let names: Vec<String> = g
                .services
                .iter()
                .map(|id| services.iter().find(|s| s.id == *id).map_or_else(|| id.to_string(), |s| s.name.clone()))
                .collect();
            format!("{}: {}", g.name, names.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the groups back; an unknown service name is the error, naming it.
fn parse_groups(text: &str, services: &[Service]) -> Result<Vec<StatusGroup>, String> {
    let mut groups = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, list) = line.split_once(':').ok_or_else(|| format!("“{line}”: write “Group: Service, Service”"))?;
        let mut ids = Vec::new();
        for n in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let s = services
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(n))
                .ok_or_else(|| format!("no service named {n}"))?;
            ids.push(s.id);
        }
        groups.push(StatusGroup { name: name.trim().to_string(), services: ids });
    }
    Ok(groups)
}

#[component]
pub fn StatusPages() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let data = Resource::new(
        move || reload.get(),
        |_| async move {
            let pages = get_status_pages().await?;
            let services = get_catalog(Some(CatalogScope::Services)).await?.services;
            Ok::<_, ServerError>((pages, services))
        },
    );
    let editing = RwSignal::new(None::<Option<StatusPage>>);
    view! {
        <Title text="Status pages"/>
        <section class="page status-pages">
            <h1>"Status pages"</h1>
            <p class="muted">"Public pages anyone can read without signing in: the chosen services' state, 90 days of uptime, and the public updates commanders post from the incident room. Nothing else is shown."</p>
            <div class="actions">
                <button type="button" class="btn primary" on:click=move |_| editing.set(Some(None))>"Add a status page"</button>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading status pages…"</p> }>
                {move || data.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok((pages, services)) => {
                        let form = {
                            let services = services.clone();
                            move || editing.get().map(|existing| view! { <PageForm existing editing reload services=services.clone()/> })
                        };
                        view! {
                            {form}
                            <table class="grid" aria-label="Status pages">
                                <thead><tr><th>"Title"</th><th>"Address"</th><th>"Services"</th><th></th></tr></thead>
                                <tbody>
                                    {pages.into_iter().map(|p| {
                                        let count: usize = p.spec.groups.iter().map(|g| g.services.len()).sum();
                                        let href = format!("/s/{}", p.spec.slug);
                                        let edit = p.clone();
                                        view! {
                                            <tr data-slug=p.spec.slug.clone()>
                                                <td>{p.spec.title.clone()}</td>
                                                <td><a href=href.clone() rel="external">{href.clone()}</a></td>
                                                <td>{count}</td>
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
        </section>
    }
}

#[component]
fn PageForm(
    existing: Option<StatusPage>,
    editing: RwSignal<Option<Option<StatusPage>>>,
    reload: RwSignal<u32>,
    services: Vec<Service>,
) -> impl IntoView {
    let id: Option<Uuid> = existing.as_ref().map(|p| p.id);
    let spec = RwSignal::new(existing.as_ref().map(|p| p.spec.clone()).unwrap_or_default());
    let groups = RwSignal::new(spec.with_untracked(|s| groups_text(&s.groups, &services)));
    let editor = Editor::new(editing, reload);
    let Editor { errors, problem, .. } = editor;
    let services = StoredValue::new(services);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let parsed = services.with_value(|s| parse_groups(&groups.get_untracked(), s));
        let chosen = match parsed {
            Ok(g) => g,
            Err(e) => {
                errors.set(Default::default());
                problem.set(None);
                set_error(errors, "groups", Some(e));
                return;
            }
        };
        editor.save(save_status_page(id, StatusPageSpec { groups: chosen, ..spec.get_untracked() }));
    };
    let remove = move |_| {
        if let Some(id) = id {
            editor.remove(delete_status_page(id));
        }
    };
    view! {
        <form class="form" on:submit=save novalidate aria-label="Status page">
            <h2>{if id.is_some() { "Edit status page" } else { "New status page" }}</h2>
            <Field label="Title" field="title" errors>{text(spec, |s| s.title.clone(), |s, v| s.title = v)}</Field>
            <Field label="Address" field="slug" errors hint="the page is /s/<address>: lower-case letters, digits and dashes">
                {text(spec, |s| s.slug.clone(), |s, v| s.slug = v)}
            </Field>
            <Field label="Description" field="description" errors>{text(spec, |s| s.description.clone(), |s, v| s.description = v)}</Field>
            <Field label="Groups" field="groups" errors hint="one group per line: “Storefront: Shop, Billing”">
                <textarea rows=4 prop:value=move || groups.get() on:input=move |ev| groups.set(event_target_value(&ev))></textarea>
            </Field>
            <div class="actions">
                <button type="submit" class="btn primary">"Save"</button>
                <button type="button" class="btn" on:click=move |_| editing.set(None)>"Cancel"</button>
                {id.map(|_| view! { <button type="button" class="btn danger" on:click=remove>"Delete"</button> })}
            </div>
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_read_back_as_written() {
        let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let svc = |n: u128, name: &str| Service {
            id: Uuid::from_u128(n),
            name: name.into(),
            description: String::new(),
            tags: vec![],
            criticality: Default::default(),
            state: None,
            probe_ids: vec![],
            blocked: 0,
            created_at: at,
            updated_at: at,
        };
        let services = vec![svc(1, "Shop"), svc(2, "Billing")];
        let groups = parse_groups("Storefront: shop, Billing\n\nBack office:", &services).expect("groups");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].services, vec![services[0].id, services[1].id]);
        assert_eq!(groups_text(&groups, &services), "Storefront: Shop, Billing\nBack office: ");
        assert_eq!(parse_groups("Storefront: Ledger", &services), Err("no service named Ledger".into()));
        assert!(parse_groups("no colon", &services).is_err());
    }
}
