//! The probes' network allowlist on the configuration page: the command line's entries (read-only)
//! and those admins add here (kept in the database, audited). Probes reach loopback, private and
//! link-local addresses only through an entry.

use leptos::prelude::*;

use super::form::{Errors, Field, set_error, show_server_error};
use crate::api::network_allowlist;
use crate::model::{AllowChange, AllowEntry};

#[component]
pub fn Allowlist() -> impl IntoView {
    let entries = RwSignal::new(None::<Vec<AllowEntry>>);
    let errors = RwSignal::new(Errors::new());
    let problem = RwSignal::new(None::<String>);
    let (cidr, note) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let send = move |change: AllowChange| {
        let added = matches!(change, AllowChange::Add { .. });
        leptos::task::spawn_local(async move {
            match network_allowlist(change).await {
                Ok(list) => {
                    errors.set(Errors::new());
                    problem.set(None);
                    entries.set(Some(list));
                    // Cleared only once stored: a refused entry stays to be corrected.
                    if added {
                        cidr.set(String::new());
                        note.set(String::new());
                    }
                }
                Err(e) => problem.set(Some(show_server_error(errors, &e))),
            }
        });
    };
    Effect::new(move |_| send(AllowChange::List));
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if cidr.with_untracked(|c| c.trim().is_empty()) {
            set_error(errors, "cidr", Some("an address or a range, e.g. 10.0.0.0/8".into()));
            return;
        }
        send(AllowChange::Add { cidr: cidr.get_untracked(), note: note.get_untracked() });
    };
    view! {
        <section aria-labelledby="allowlist">
            <h2 id="allowlist">"Network allowlist"</h2>
            <p class="muted">"Probes never reach loopback, private, link-local or cloud metadata addresses unless an entry here allows them. A metadata address needs an exact single-address entry."</p>
            {move || entries.get().map(|list| view! {
                <table class="grid" aria-label="Allowed networks">
                    <thead><tr><th>"Network"</th><th>"Note"</th><th>"Added"</th><th></th></tr></thead>
                    <tbody>
                        {list.into_iter().map(|e| {
                            let cidr = e.cidr.clone();
                            view! {
                                <tr data-cidr=e.cidr.clone()>
                                    <td><code>{e.cidr.clone()}</code></td>
                                    <td>{e.note.clone()}</td>
                                    <td>{if e.from_command_line {
                                        "--probe-allow (command line)".to_string()
                                    } else {
                                        format!("{} by {}", e.created_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default(), e.created_by.unwrap_or_default())
                                    }}</td>
                                    <td>{(!e.from_command_line).then(|| view! {
                                        <button type="button" class="btn small" on:click=move |_| send(AllowChange::Remove { cidr: cidr.clone() })>"Remove"</button>
                                    })}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            })}
            <form class="form row" on:submit=add novalidate>
                <Field label="Address or range" field="cidr" errors hint="e.g. 127.0.0.1/32 or 10.20.0.0/16">
                    <input prop:value=move || cidr.get() on:input=move |ev| cidr.set(event_target_value(&ev))/>
                </Field>
                <Field label="Why" field="note" errors>
                    <input prop:value=move || note.get() on:input=move |ev| note.set(event_target_value(&ev))/>
                </Field>
                <button type="submit" class="btn primary">"Allow"</button>
            </form>
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
        </section>
    }
}
