//! Bulk actions on the overview (admins): pause, resume or delete the probes of the services the
//! filter shows, after a confirmation that names the count. The configuration page has the same
//! actions on single probes, ticked rows and tags.

use leptos::prelude::*;

use crate::api::bulk_probes;
use crate::model::{BulkAction, Selection};

/// `shown`: the services the overview's filter shows now (id, name). Renders only in the browser
/// (after hydration), so the server's page and the hydrated one agree.
#[component]
pub fn OverviewBulk(shown: Signal<Vec<uuid::Uuid>>, refresh: RwSignal<u64>) -> impl IntoView {
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    let message = RwSignal::new(None::<Result<String, String>>);
    let act = move |action: BulkAction| {
        let services = shown.get_untracked();
        if services.is_empty() {
            return;
        }
        let question = format!("{} the probes of the {} service(s) shown?", action.as_str(), services.len());
        let question = question[..1].to_uppercase() + &question[1..];
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
            let count = shown.with(Vec::len);
            view! {
                <details class="bulk">
                    <summary>{format!("Bulk actions on the {count} service(s) shown")}</summary>
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
