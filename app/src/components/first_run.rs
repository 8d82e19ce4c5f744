//! The overview's help for a new instance: with nothing watched but Triage itself, an admin is
//! offered the service form or the built-in demo; while the demo runs, a bar switches its
//! scenarios (and removes it).

use leptos::prelude::*;

use crate::api::{control_demo, get_demo};
use crate::model::{DemoCommand, DemoStatus};

/// What each scenario shows, for the buttons' titles.
fn explain(scenario: &str) -> &'static str {
    match scenario {
        "healthy" => "quick answers, everything up",
        "slow" => "latency several times higher, as when queries slow down",
        "errors" => "about a third of API requests fail with 500",
        "pool" => "the connection pool is exhausted: all in use, requests waiting",
        "unready" => "readiness answers 503 with the database down",
        "down" => "the service refuses connections",
        _ => "",
    }
}

/// The panel, loaded apart from the first page (`cargo leptos build --split`) and only when the
/// server says the instance watches nothing but itself or runs the demo.
#[leptos::lazy]
pub fn first_run(admin: bool) -> leptos::tachys::view::any_view::AnyView {
    use leptos::tachys::view::any_view::IntoAny;
    view! { <FirstRun admin/> }.into_any()
}

/// Offers the first steps when only Triage itself is watched, and the demo's scenario bar while
/// the demo runs. Asks for the demo's state once, when the page opens.
#[component]
fn FirstRun(admin: bool) -> impl IntoView {
    let status = RwSignal::new(None::<DemoStatus>);
    let problem = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            if let Ok(s) = get_demo().await {
                status.set(Some(s));
            }
        });
    });
    let send = move |command: DemoCommand| {
        busy.set(true);
        leptos::task::spawn_local(async move {
            match control_demo(command).await {
                Ok(s) => {
                    problem.set(None);
                    status.set(Some(s));
                }
                Err(e) => problem.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };
    let running = move || status.with(|s| s.as_ref().is_some_and(|s| s.running));
    view! {
        // Nothing until the browser has asked for the demo's state: the server's page and the
        // hydrated one agree, and the panel never flashes for an instance that has services.
        {move || (status.with(Option::is_some) && !running()).then(|| view! {
            <section class="first-run" aria-label="Get started" data-testid="first-run">
                <p><strong>"Only Triage itself is watched so far."</strong></p>
                {if admin {
                    view! {
                        <p>"Add the first service you run, or try the built-in demo: a small shop inside Triage whose failures you switch on, with probes already set up."</p>
                        <div class="actions">
                            <a class="btn primary" href="/config/services/new">"Add a service"</a>
                            <button type="button" class="btn" disabled=busy on:click=move |_| send(DemoCommand::Start)>
                                {move || if busy.get() { "Starting the demo…" } else { "Try the demo" }}
                            </button>
                        </div>
                    }.into_any()
                } else {
                    view! { <p>"An admin adds services and probes under Configure."</p> }.into_any()
                }}
            </section>
        })}
        {move || status.get().filter(|s| s.running).map(|s| {
            let current = s.scenario.clone();
            let service = s.service_id.map(|id| format!("/services/{id}")).unwrap_or_else(|| "/".into());
            view! {
                <section class="first-run demo-bar" aria-label="Demo" data-testid="demo-bar">
                    <p>
                        <strong>"The demo runs."</strong> " It plays " <strong data-testid="demo-scenario">{current.clone()}</strong>
                        ". Switch it to a failure and watch " <a href=service>"demo-shop"</a>
                        ": its probes confirm the change within seconds, an incident opens, and its room shows the guidance."
                    </p>
                    {admin.then(|| view! {
                        <div class="actions" role="group" aria-label="Demo scenario">
                            {s.scenarios.into_iter().map(|name| {
                                let pressed = name == current;
                                let title = explain(&name);
                                let chosen = name.clone();
                                view! {
                                    <button type="button" class="btn small" aria-pressed=pressed.to_string() title=title
                                        on:click=move |_| send(DemoCommand::Scenario(chosen.clone()))>{name}</button>
                                }
                            }).collect_view()}
                            <button type="button" class="btn small danger" on:click=move |_| {
                                if window().confirm_with_message("Remove the demo: its service, probes, results and incidents?").unwrap_or(false) {
                                    send(DemoCommand::Remove);
                                }
                            }>"Remove the demo"</button>
                        </div>
                    })}
                </section>
            }
        })}
        {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
    }
}
