//! Bulk actions on the overview (admins): pause, resume or delete the probes of the services the
//! filter shows, after a confirmation that names the count. The configuration page has the same
//! actions on single probes, ticked rows and tags.

use leptos::prelude::*;

use crate::api::bulk_probes;
use crate::model::{BulkAction, Selection};

/// The admin's bulk actions, loaded apart from the first page (`cargo leptos build --split`):
/// only admins use them, and they bring the server-function client with them.
#[leptos::lazy]
pub fn overview_bulk(refresh: RwSignal<u64>) -> leptos::tachys::view::any_view::AnyView {
    use leptos::tachys::view::any_view::IntoAny;
    view! { <OverviewBulk refresh/> }.into_any()
}

/// The services the overview shows now: its tiles carry their ids.
#[cfg(feature = "hydrate")]
fn shown() -> Vec<uuid::Uuid> {
    let Ok(tiles) = document().query_selector_all("#overview-body li.tile[data-id]") else {
        return Vec::new();
    };
    (0..tiles.length())
        .filter_map(|i| tiles.item(i))
        .filter_map(|n| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(n).ok())
        .filter_map(|el| el.get_attribute("data-id")?.parse().ok())
        .collect()
}

#[cfg(not(feature = "hydrate"))]
fn shown() -> Vec<uuid::Uuid> {
    Vec::new()
}

/// Acts on the services the overview shows (its page of tiles). Renders only in the browser
/// (after hydration), so the server's page and the hydrated one agree.
#[component]
fn OverviewBulk(refresh: RwSignal<u64>) -> impl IntoView {
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    let message = RwSignal::new(None::<Result<String, String>>);
    let act = move |action: BulkAction| {
        let services = shown();
        if services.is_empty() {
            return;
        }
        let verb = action.as_str();
        let question = format!(
            "{}{} the probes of the {} service(s) shown?",
            verb[..1].to_ascii_uppercase(),
            &verb[1..],
            services.len()
        );
        if !window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        leptos::task::spawn_local(async move {
            let result = bulk_probes(Selection { services, ..Default::default() }, action).await;
            message.set(Some(match result {
                Ok(o) if o.skipped.is_empty() => Ok(format!("{}: {} probe(s) changed.", action.as_str(), o.changed)),
                Ok(o) => Ok(format!(
                    "{}: {} probe(s) changed; left as they are (managed by file): {}.",
                    action.as_str(),
                    o.changed,
                    o.skipped.join(", ")
                )),
                Err(e) => Err(e.to_string()),
            }));
            refresh.update(|n| *n += 1);
        });
    };
    move || {
        mounted.get().then(|| {
            view! {
                <details class="bulk">
                    <summary>"Bulk actions on the services shown"</summary>
                    <div class="actions">
                        <button type="button" class="btn small" on:click=move |_| act(BulkAction::Pause)>"Pause their probes"</button>
                        <button type="button" class="btn small" on:click=move |_| act(BulkAction::Resume)>"Resume their probes"</button>
                        <button type="button" class="btn small danger" on:click=move |_| act(BulkAction::Delete)>"Delete their probes"</button>
                        <span class="muted">"Filter first to narrow the selection; file-managed probes are left alone."</span>
                    </div>
                    {move || message.get().map(|m| match m {
                        Ok(t) => view! { <p class="ok" role="status">{t}</p> }.into_any(),
                        Err(t) => view! { <p class="error" role="alert">{t}</p> }.into_any(),
                    })}
                </details>
            }
        })
    }
}
