//! Import (`/config/import`): a Triage probe file, an Uptime Kuma backup, a Gatus configuration,
//! or a Prometheus configuration with its blackbox modules file. A dry run lists what would be
//! created and what could not be mapped; importing writes it (existing probes are left alone).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::import_config;
use crate::model::ImportSummary;

const SOURCES: [(&str, &str, &str); 4] = [
    ("triage", "Triage probe file (TOML)", ""),
    ("kuma", "Uptime Kuma backup (JSON)", ""),
    ("gatus", "Gatus configuration (YAML)", ""),
    ("blackbox", "Prometheus configuration (YAML)", "blackbox_exporter modules (YAML)"),
];

/// The text of the file chosen in a file input.
async fn read_file(ev: leptos::ev::Event) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let input: web_sys::HtmlInputElement = ev.target()?.dyn_into().ok()?;
        let file = input.files()?.get(0)?;
        wasm_bindgen_futures::JsFuture::from(file.text()).await.ok()?.as_string()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ev;
        None
    }
}

#[component]
fn FileField(label: Signal<&'static str>, text: RwSignal<String>) -> impl IntoView {
    view! {
        <div class="field">
            <span class="label">{label}</span>
            <input type="file" aria-label=move || format!("{} file", label.get())
                on:change=move |ev| leptos::task::spawn_local(async move {
                    if let Some(t) = read_file(ev).await { text.set(t); }
                })/>
            <textarea rows="8" aria-label=move || label.get() placeholder="…or paste it here"
                prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
        </div>
    }
}

#[component]
pub fn ImportPage() -> impl IntoView {
    let source = RwSignal::new("kuma");
    let first = RwSignal::new(String::new());
    let second = RwSignal::new(String::new());
    let outcome = RwSignal::new(None::<Result<ImportSummary, String>>);
    let busy = RwSignal::new(false);
    let labels = move || SOURCES.iter().find(|s| s.0 == source.get()).map_or(("", ""), |s| (s.1, s.2));
    let run = move |dry_run: bool| {
        let mut files = vec![first.get_untracked()];
        if source.get_untracked() == "blackbox" {
            files.push(second.get_untracked());
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            outcome.set(Some(
                import_config(source.get_untracked().to_string(), files, dry_run).await.map_err(|e| e.to_string()),
            ));
            busy.set(false);
        });
    };
    view! {
        <Title text="Import"/>
        <section class="page config">
            <p class="crumbs"><a href="/config">"Configuration"</a> " › import"</p>
            <h1>"Import services and probes"</h1>
            <p class="muted">"Probes whose name exists are left as they are. Check with a dry run first: it lists what would be created and every setting that has no counterpart, with its place in the file."</p>
            <div class="form">
                <label class="field"><span class="label">"From"</span>
                    <select on:change=move |ev| {
                        let v = event_target_value(&ev);
                        if let Some(s) = SOURCES.iter().find(|s| s.0 == v) { source.set(s.0); }
                    }>
                        {SOURCES.map(|(v, label, _)| view! { <option value=v selected=move || source.get() == v>{label}</option> })}
                    </select>
                </label>
                <FileField label=Signal::derive(move || labels().0) text=first/>
                <Show when=move || source.get() == "blackbox">
                    <FileField label=Signal::derive(move || labels().1) text=second/>
                </Show>
                <div class="actions">
                    <button type="button" class="btn" disabled=busy on:click=move |_| run(true)>"Dry run"</button>
                    <button type="button" class="btn primary" disabled=busy on:click=move |_| run(false)>"Import"</button>
                </div>
            </div>
            {move || outcome.get().map(|o| match o {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(s) => view! {
                    <section data-testid="import-summary">
                        <h2>{if s.dry_run { "Would create" } else { "Created" }}</h2>
                        <p>{format!("{} service(s): {}", s.services.len(), s.services.join(", "))}</p>
                        <p>{format!("{} probe(s): {}", s.probes.len(), s.probes.join(", "))}</p>
                        {(!s.existing.is_empty()).then(|| view! { <p class="muted">"Left as they are (the name exists): " {s.existing.join(", ")}</p> })}
                        {(!s.unmapped.is_empty()).then(|| view! {
                            <h3>"Not mapped"</h3>
                            <ul>{s.unmapped.into_iter().map(|u| view! { <li>{u}</li> }).collect_view()}</ul>
                        })}
                    </section>
                }.into_any(),
            })}
        </section>
    }
}
