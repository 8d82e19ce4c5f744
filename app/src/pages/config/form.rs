//! Pieces the configuration forms share: a labelled field with its error beside it, inputs bound
//! to a part of the edited value, and the mapping of a server error onto the field it names.

use std::collections::BTreeMap;

use leptos::prelude::*;

use crate::api::ServerError;

/// What an admin list's edit form shares with the others (notifications' three, status pages):
/// the errors shown next to its fields, the form-wide problem, and closing the form and reloading
/// the list once the server has taken a change. `editing` is the form open: `Some(None)` a new
/// item, `Some(Some(item))` an existing one.
pub(crate) struct Editor<T: Send + Sync + 'static> {
    pub editing: RwSignal<Option<Option<T>>>,
    pub reload: RwSignal<u32>,
    pub errors: RwSignal<Errors>,
    pub problem: RwSignal<Option<String>>,
}

impl<T: Send + Sync + 'static> Clone for Editor<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Editor<T> {}

impl<T: Send + Sync + 'static> Editor<T> {
    pub fn new(editing: RwSignal<Option<Option<T>>>, reload: RwSignal<u32>) -> Self {
        Editor { editing, reload, errors: RwSignal::new(Errors::new()), problem: RwSignal::new(None) }
    }

    pub fn done(self) {
        self.editing.set(None);
        self.reload.update(|n| *n += 1);
    }

    /// Sends a save; a refused field shows its error next to the field.
    pub fn save<R: 'static>(self, call: impl Future<Output = Result<R, ServerError>> + 'static) {
        self.errors.set(Errors::new());
        self.problem.set(None);
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(_) => self.done(),
                Err(e) => self.problem.set(Some(format!("Not saved: {}", show_server_error(self.errors, &e)))),
            }
        });
    }

    pub fn remove(self, call: impl Future<Output = Result<(), ServerError>> + 'static) {
        leptos::task::spawn_local(async move {
            match call.await {
                Ok(()) => self.done(),
                Err(e) => self.problem.set(Some(e.to_string())),
            }
        });
    }
}

/// Errors by field, named as the API names them (`url`, `assert.status`, `incidents.healthy_for_secs`).
pub type Errors = BTreeMap<String, String>;

/// A label, the input(s) it wraps, a hint, and the error of `field` next to it.
#[component]
pub fn Field(
    label: &'static str,
    #[prop(into)] field: String,
    errors: RwSignal<Errors>,
    #[prop(optional)] hint: Option<&'static str>,
    /// Several inputs (a list editor): a labelled group instead of a label, which names one input.
    #[prop(optional)]
    group: bool,
    children: Children,
) -> impl IntoView {
    let key = field.clone();
    let error = Signal::derive(move || errors.with(|e| e.get(&key).cloned()));
    let inner = view! {
        <span class="label">{label}</span>
        {children()}
        {hint.map(|h| view! { <small class="hint">{h}</small> })}
        <small class="field-error" role="alert">{move || error.get()}</small>
    };
    if group {
        view! { <div class="field" role="group" aria-label=label class:invalid=move || error.with(Option::is_some) data-field=field>{inner}</div> }
            .into_any()
    } else {
        view! { <label class="field" class:invalid=move || error.with(Option::is_some) data-field=field>{inner}</label> }
            .into_any()
    }
}

pub fn set_error(errors: RwSignal<Errors>, field: &str, message: Option<String>) {
    errors.update(|e| match message {
        Some(m) => {
            e.insert(field.to_string(), m);
        }
        None => {
            e.remove(field);
        }
    });
}

/// Shows a server error: beside its field when it names one (the API's words), and returns the
/// line for the top of the form.
pub fn show_server_error(errors: RwSignal<Errors>, e: &ServerError) -> String {
    match e {
        ServerError::Invalid { field: Some(f), message } | ServerError::Conflict { field: Some(f), message } => {
            set_error(errors, f, Some(message.clone()));
            format!("{f} — {message}")
        }
        other => other.to_string(),
    }
}

/// A text input bound to part of `value`.
pub fn text<T: Send + Sync + 'static>(
    value: RwSignal<T>,
    get: fn(&T) -> String,
    set: fn(&mut T, String),
) -> impl IntoView {
    view! { <input prop:value=move || value.with(get) on:input=move |ev| value.update(|v| set(v, event_target_value(&ev)))/> }
}

/// A text input for a list (tags, names): it writes the parsed list but is never re-rendered
/// from it, so the separator being typed is not swallowed.
pub fn list_text<T: Send + Sync + 'static>(
    value: RwSignal<T>,
    get: fn(&T) -> String,
    set: fn(&mut T, String),
) -> impl IntoView {
    let initial = value.with_untracked(get);
    view! { <input value=initial on:input=move |ev| value.update(|v| set(v, event_target_value(&ev)))/> }
}

/// A multi-line input bound to part of `value`.
pub fn area<T: Send + Sync + 'static>(
    value: RwSignal<T>,
    rows: u32,
    get: fn(&T) -> String,
    set: fn(&mut T, String),
) -> impl IntoView {
    view! {
        <textarea rows=rows prop:value=move || value.with(get) on:input=move |ev| value.update(|v| set(v, event_target_value(&ev)))></textarea>
    }
}

/// A checkbox bound to part of `value`.
pub fn check<T: Send + Sync + 'static>(
    value: RwSignal<T>,
    get: fn(&T) -> bool,
    set: fn(&mut T, bool),
) -> impl IntoView {
    view! { <input type="checkbox" prop:checked=move || value.with(get) on:change=move |ev| value.update(|v| set(v, event_target_checked(&ev)))/> }
}

/// A whole-number input bound to an optional part of `value` (empty: none, when `optional`);
/// text that is not a number shows an error under `field` and leaves the value as it was.
pub fn number<T: Send + Sync + 'static>(
    value: RwSignal<T>,
    errors: RwSignal<Errors>,
    field: &'static str,
    optional: bool,
    get: fn(&T) -> Option<u32>,
    set: fn(&mut T, Option<u32>),
) -> impl IntoView {
    let initial = value.with_untracked(get).map(|n| n.to_string()).unwrap_or_default();
    view! {
        <input
            inputmode="numeric"
            value=initial
            on:input=move |ev| {
                let raw = event_target_value(&ev);
                let raw = raw.trim();
                if raw.is_empty() && optional {
                    value.update(|v| set(v, None));
                    set_error(errors, field, None);
                    return;
                }
                match raw.replace(['_', ','], "").parse::<u32>() {
                    Ok(n) => {
                        value.update(|v| set(v, Some(n)));
                        set_error(errors, field, None);
                    }
                    Err(_) => set_error(errors, field, Some("a whole number".into())),
                }
            }
        />
    }
}

/// Comma-separated words to a list (blank items dropped).
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// Space-separated tags to a list, for the service form.
pub fn split_tags(s: &str) -> Vec<String> {
    s.split([',', ' ']).map(str::trim).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}
