//! The room's public updates: what the outside is told on status pages, kept apart from the
//! internal timeline. Commanders post them; everyone in the room sees what was said.

use leptos::prelude::*;

use crate::api::{get_public_updates, post_public_update};
use crate::model::{IncidentStatus, PublicUpdateInput};

#[component]
pub fn PublicUpdates(incident: uuid::Uuid, may_post: bool) -> impl IntoView {
    let posted = RwSignal::new(0u32);
    // Read in the browser only: the room's server-rendered resources stay as they were, so
    // hydration pairs them the same way with or without this panel.
    let list = LocalResource::new(move || {
        posted.track();
        get_public_updates(incident)
    });
    let status = RwSignal::new(IncidentStatus::Investigating);
    let text = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let post = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        problem.set(None);
        let input = PublicUpdateInput { status: status.get_untracked(), text: text.get_untracked() };
        leptos::task::spawn_local(async move {
            match post_public_update(incident, input).await {
                Ok(_) => {
                    text.set(String::new());
                    posted.update(|n| *n += 1);
                }
                Err(e) => problem.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <section class="public-updates" aria-label="Public updates">
            <h2>"Public updates"</h2>
            <p class="muted">"Shown on the status pages of the affected services. Write for customers: no host names, request ids or internal detail."</p>
            {may_post.then(|| view! {
                <form class="form public-composer" on:submit=post aria-label="Post a public update">
                    <label class="field"><span class="label">"Status"</span>
                        <select on:change=move |ev| if let Some(s) = IncidentStatus::parse(&event_target_value(&ev)) { status.set(s) }>
                            {IncidentStatus::ALL.into_iter().map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label class="field"><span class="label">"Update (Markdown)"</span>
                        <textarea rows=3 prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                    </label>
                    <div class="actions"><button type="submit" class="btn primary">"Post public update"</button></div>
                    {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
                </form>
            })}
            <Transition fallback=|| ()>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    Ok(l) if l.is_empty() => view! { <p class="muted">"Nothing said publicly yet."</p> }.into_any(),
                    Ok(l) => view! {
                        <ol class="public-update-list">
                            {l.into_iter().map(|u| view! {
                                <li><strong>{u.status.as_str()}</strong> " · " {u.at.format("%Y-%m-%d %H:%M UTC").to_string()}
                                    <div class="markdown" inner_html=u.html></div></li>
                            }).collect_view()}
                        </ol>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}
