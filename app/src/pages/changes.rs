//! Change events on the service page: the ones in the charts' window, and a form to record one
//! by hand (CI scripts use `triage change add` instead).

use leptos::prelude::*;

use super::config::form::{Errors, Field, show_server_error, text};
use crate::api::{ServerError, record_change};
use crate::model::{ChangeEvent, ChangeInput, ChangeKind};

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The changes in the window, newest first.
#[component]
pub fn ChangeList(events: Vec<ChangeEvent>) -> impl IntoView {
    if events.is_empty() {
        return view! { <p class="muted">"No changes recorded in this window."</p> }.into_any();
    }
    let rows = events
        .into_iter()
        .rev()
        .map(|c| {
            let link = c.link.clone().map(|href| view! { <a href=href rel="noopener noreferrer">"link"</a> });
            view! {
                <tr data-change=c.kind.as_str()>
                    <td>{when(c.at)}</td>
                    <td><span class="change-kind">{c.kind.letter()}</span> " " {c.kind.label()}</td>
                    <td>{c.version.clone().unwrap_or_default()}</td>
                    <td>{c.title.clone()}</td>
                    <td>{c.author.clone().unwrap_or_default()}</td>
                    <td>{link}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid" aria-label="Changes">
            <thead><tr><th>"Time"</th><th>"Kind"</th><th>"Version"</th><th>"Title"</th><th>"By"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

/// An empty box is no value.
fn optional(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn parse_local(v: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M").ok().map(|t| t.and_utc())
}

/// Records a change by hand for `service` (a name or id); `saved` is bumped once the server has it (the page refetches and
/// the marker appears on the charts).
#[component]
pub fn ChangeForm(service: String, saved: RwSignal<u64>) -> impl IntoView {
    let input = RwSignal::new(ChangeInput {
        service,
        kind: ChangeKind::Deploy,
        title: String::new(),
        version: None,
        link: None,
        author: None,
        at: None,
        ends_at: None,
    });
    let errors = RwSignal::new(Errors::new());
    let problem = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.set(Errors::new());
        problem.set(None);
        done.set(None);
        leptos::task::spawn_local(async move {
            match record_change(input.get_untracked()).await {
                Ok(c) => {
                    done.set(Some(format!("Recorded: {}", c.headline())));
                    input.update(|i| {
                        i.title.clear();
                        i.version = None;
                        i.link = None;
                    });
                    saved.update(|n| *n += 1);
                }
                Err(e @ ServerError::Invalid { .. }) => problem.set(Some(show_server_error(errors, &e))),
                Err(e) => problem.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <details class="change-form">
            <summary>"Record a change"</summary>
            <form class="form" on:submit=submit novalidate aria-label="Record a change">
                <Field label="Kind" field="kind" errors>
                    <select on:change=move |ev| {
                        if let Some(k) = ChangeKind::parse(&event_target_value(&ev)) {
                            input.update(|i| i.kind = k);
                        }
                    }>
                        {ChangeKind::ALL.into_iter().map(|k| view! {
                            <option value=k.as_str() selected=move || input.with(|i| i.kind == k)>{k.label()}</option>
                        }).collect_view()}
                    </select>
                </Field>
                <Field label="Title" field="title" errors>{text(input, |i| i.title.clone(), |i, v| i.title = v)}</Field>
                <Field label="Version" field="version" errors>
                    {text(input, |i| i.version.clone().unwrap_or_default(), |i, v| i.version = optional(&v))}
                </Field>
                <Field label="By" field="author" errors>
                    {text(input, |i| i.author.clone().unwrap_or_default(), |i, v| i.author = optional(&v))}
                </Field>
                <Field label="Link" field="link" errors hint="the pipeline run, pull request or release notes">
                    {text(input, |i| i.link.clone().unwrap_or_default(), |i, v| i.link = optional(&v))}
                </Field>
                <Field label="When (UTC)" field="at" errors hint="empty: now">
                    <input type="datetime-local" on:change=move |ev| {
                        let v = event_target_value(&ev);
                        input.update(|i| i.at = parse_local(&v));
                    }/>
                </Field>
                <div class="actions"><button type="submit" class="btn primary">"Record"</button></div>
                {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
                {move || done.get().map(|d| view! { <p class="ok" role="status">{d}</p> })}
            </form>
        </details>
    }
}
