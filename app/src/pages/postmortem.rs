//! A postmortem: computed metrics (with commanders' overrides beside them), the charts frozen at
//! creation, the Markdown sections with the four questions, comments per section, action items,
//! the timeline filterable by kind (`?kinds=action,decision` in the URL), review controls and
//! earlier revisions. Prints as a document (the print style sheet hides the controls).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use super::incidents::severity_badge;
use super::postmortems::postmortem_badge;
use crate::api::{comment_postmortem, get_postmortem, update_postmortem};
use crate::model::{
    ActionItem, ActionStatus, CurrentUser, EntryKind, Me, Metric, NewComment, OverrideInput, Postmortem,
    PostmortemComment, PostmortemPatch, PostmortemStatus, Role, Section, human_secs,
};

/// Where the page's changes go, and what went wrong with the last one.
#[derive(Clone, Copy)]
struct Doc {
    id: uuid::Uuid,
    current: RwSignal<Option<Postmortem>>,
    problem: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
}

impl Doc {
    fn apply(self, patch: PostmortemPatch) {
        self.busy.set(true);
        leptos::task::spawn_local(async move {
            match update_postmortem(self.id, patch).await {
                Ok(p) => {
                    self.problem.set(None);
                    self.current.set(Some(p));
                }
                Err(e) => self.problem.set(Some(clean(&e.to_string()))),
            }
            self.busy.set(false);
        });
    }
}

/// Server errors arrive as "error running server function: …"; people need only the reason.
fn clean(e: &str) -> String {
    e.rsplit(": ").next().map(str::to_string).unwrap_or_else(|| e.to_string())
}

fn kinds_from(q: &leptos_router::params::ParamsMap) -> Vec<EntryKind> {
    q.get_str("kinds").map(|k| k.split(',').filter_map(EntryKind::parse).collect()).unwrap_or_default()
}

#[component]
pub fn PostmortemPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<uuid::Uuid>().ok()));
    let fetched = Resource::new(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_postmortem(id).await,
                None => Ok(None),
            }
        },
    );
    let current = RwSignal::new(None::<Postmortem>);
    let problem = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let me = use_context::<CurrentUser>().and_then(|c| c.0);
    view! {
        <section class="page postmortem">
            <Transition fallback=|| view! { <p class="muted">"Loading the postmortem…"</p> }>
                {move || fetched.get().map(|r| match r {
                    Ok(Some(p)) => {
                        let doc = Doc { id: p.id, current, problem, busy };
                        current.set(Some(p));
                        let me = me.clone();
                        view! { {move || current.get().map(|p| view! { <Document p doc me=me.clone()/> })} }.into_any()
                    }
                    Ok(None) => view! {
                        <Title text="Postmortem not found"/>
                        <h1>"Postmortem not found"</h1>
                        <p><a href="/postmortems">"All postmortems"</a></p>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">"Could not load the postmortem: " {e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Document(p: Postmortem, doc: Doc, me: Option<Me>) -> impl IntoView {
    let responder = me.as_ref().is_some_and(|m| m.may(Role::Responder));
    let commander = me.as_ref().is_some_and(|m| m.may(Role::Commander));
    let published = p.status == PostmortemStatus::Published;
    let editable = responder && !published;
    let title = format!("Postmortem #{} {}", p.incident.number, p.incident.title);
    let sections = Section::ALL
        .into_iter()
        .filter(|s| !Section::QUESTIONS.contains(s) && !matches!(s, Section::Hypotheses | Section::ChecklistSteps))
        .collect::<Vec<_>>();
    let section_view = |s: Section| {
        let comments: Vec<PostmortemComment> = p.comments.iter().filter(|c| c.section == s).cloned().collect();
        view! {
            <SectionView section=s markdown=p.doc.section(s).to_string() html=p.html.get(&s).cloned().unwrap_or_default()
                comments editable may_comment=responder doc/>
        }
    };
    view! {
        <Title text=title.clone()/>
        <div class="page-head">
            <h1>{title}</h1>
            <p class="meta">
                {postmortem_badge(p.status)} " revision " {p.revision} " · " {severity_badge(p.incident.severity)}
                " · incident " <a href=format!("/incidents/{}", p.incident.id)>{format!("#{}", p.incident.number)}</a>
                " (" {p.incident.status.as_str()} ")"
                {p.published_at.map(|at| format!(" · published {} by {}", at.format("%Y-%m-%d %H:%M UTC"), p.published_by.clone().unwrap_or_default()))}
            </p>
        </div>
        <Review p=p.clone() doc responder commander/>
        <h2>"Metrics"</h2>
        <Metrics metrics=p.metrics.clone() doc may_override=commander && !published/>
        <h2>"Charts"</h2>
        <p class="muted">
            "Drawn when the postmortem was written, over "
            {p.window_from.format("%Y-%m-%d %H:%M").to_string()} " – " {p.window_to.format("%H:%M UTC").to_string()}
            "; the shaded band is the incident, the thin lines its timeline entries."
        </p>
        {p.charts.is_empty().then(|| view! { <p class="empty-state">"The affected services had no probes to chart."</p> })}
        <div class="frozen-charts">
            {p.charts.iter().map(|c| view! {
                <figure class="chart" data-kind=c.kind.as_str()>
                    <figcaption>{c.service.clone()} " · " {c.kind.as_str()}</figcaption>
                    <div inner_html=c.svg.clone()></div>
                </figure>
            }).collect_view()}
        </div>
        {sections.iter().take(2).map(|s| section_view(*s)).collect_view()}
        <h2>"The four questions"</h2>
        {Section::QUESTIONS.iter().map(|s| section_view(*s)).collect_view()}
        {sections.iter().skip(2).map(|s| section_view(*s)).collect_view()}
        <h2>"Action items"</h2>
        <ActionItems items=p.doc.action_items.clone() editable doc/>
        {section_view(Section::Hypotheses)}
        {section_view(Section::ChecklistSteps)}
        <Timeline p=p.clone()/>
        <Revisions p/>
    }
}

/// Status, the review steps the reader may take, export and print.
#[component]
fn Review(p: Postmortem, doc: Doc, responder: bool, commander: bool) -> impl IntoView {
    let status = p.status;
    let to = move |s: PostmortemStatus| doc.apply(PostmortemPatch { status: Some(s), ..Default::default() });
    let reason = RwSignal::new(String::new());
    let amend = move |_| doc.apply(PostmortemPatch { amend: Some(reason.get_untracked()), ..Default::default() });
    let print = move |_| {
        let _ = window().print();
    };
    view! {
        <div class="toolbar review no-print" role="group" aria-label="Review">
            {(responder && status == PostmortemStatus::Draft).then(|| view! {
                <button type="button" class="btn" disabled=move || doc.busy.get() on:click=move |_| to(PostmortemStatus::InReview)>"Send for review"</button>
            })}
            {(responder && status == PostmortemStatus::InReview).then(|| view! {
                <button type="button" class="btn" disabled=move || doc.busy.get() on:click=move |_| to(PostmortemStatus::Draft)>"Back to draft"</button>
            })}
            {(commander && status == PostmortemStatus::InReview).then(|| view! {
                <button type="button" class="btn primary" disabled=move || doc.busy.get() on:click=move |_| to(PostmortemStatus::Published)>"Publish"</button>
            })}
            {(commander && status == PostmortemStatus::Published).then(|| view! {
                <label>"Amendment reason " <input type="text" bind:value=reason aria-label="Amendment reason"/></label>
                <button type="button" class="btn" disabled=move || doc.busy.get() on:click=amend>"Amend"</button>
            })}
            <a class="btn" href=format!("/api/v1/postmortems/{}/export.md", p.id) download>"Export Markdown"</a>
            <button type="button" class="btn" on:click=print>"Print"</button>
            {(status == PostmortemStatus::Published).then(|| view! { <span class="muted">"Published: read-only. An amendment starts the next revision."</span> })}
        </div>
        <p class="error no-print" role="alert">{move || doc.problem.get()}</p>
    }
}

#[component]
fn Metrics(metrics: Vec<Metric>, doc: Doc, may_override: bool) -> impl IntoView {
    let mark = |m: &Option<crate::model::Mark>| {
        m.as_ref()
            .map(|m| format!("{} {} ({})", m.what, m.at.format("%H:%M:%S"), m.source))
            .unwrap_or_else(|| "—".into())
    };
    view! {
        <table class="dense metrics">
            <thead><tr>
                <th scope="col">"Metric"</th><th scope="col">"Value"</th><th scope="col">"Computed"</th>
                <th scope="col">"From"</th><th scope="col">"To"</th><th scope="col">"Note"</th>
            </tr></thead>
            <tbody>
                {metrics.into_iter().map(|m| {
                    let kind = m.kind;
                    let minutes = RwSignal::new(String::new());
                    let reason = RwSignal::new(String::new());
                    let save = move |_| {
                        let secs = minutes.get_untracked().trim().parse::<f64>().map(|v| (v * 60.0).round() as i64).unwrap_or(-1);
                        let patch = PostmortemPatch {
                            overrides: Some([(kind, Some(OverrideInput { secs, reason: reason.get_untracked() }))].into()),
                            ..Default::default()
                        };
                        doc.apply(patch);
                    };
                    let remove = move |_| doc.apply(PostmortemPatch { overrides: Some([(kind, None)].into()), ..Default::default() });
                    let overridden = m.overridden.clone();
                    view! {
                        <tr data-metric=kind.as_str()>
                            <th scope="row">{kind.label()} " (" {kind.short()} ")"</th>
                            <td class="value">{m.value_secs().map(human_secs).unwrap_or_else(|| "—".into())}</td>
                            <td>{m.computed_secs.map(human_secs).unwrap_or_else(|| "—".into())}</td>
                            <td>{mark(&m.from)}</td>
                            <td>{mark(&m.to)}</td>
                            <td>
                                {m.note.clone()}
                                {overridden.as_ref().map(|o| view! {
                                    <span class="override">"overridden by " {o.by.clone()} ": " {o.reason.clone()}</span>
                                })}
                                {may_override.then(|| view! {
                                    <details class="no-print">
                                        <summary>"Override"</summary>
                                        <label>"Minutes " <input type="number" min="0" step="0.1" bind:value=minutes aria-label=format!("{} minutes", kind.short())/></label>
                                        <label>"Reason " <input type="text" bind:value=reason aria-label=format!("{} reason", kind.short())/></label>
                                        <button type="button" class="btn" on:click=save>"Save override"</button>
                                        {overridden.is_some().then(|| view! { <button type="button" class="btn" on:click=remove>"Remove override"</button> })}
                                    </details>
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
fn SectionView(
    section: Section,
    markdown: String,
    html: String,
    comments: Vec<PostmortemComment>,
    editable: bool,
    may_comment: bool,
    doc: Doc,
) -> impl IntoView {
    let editing = RwSignal::new(false);
    let draft = RwSignal::new(markdown.clone());
    let comment = RwSignal::new(String::new());
    let empty = markdown.trim().is_empty();
    let save = move |_| {
        let patch = PostmortemPatch { sections: Some([(section, draft.get_untracked())].into()), ..Default::default() };
        doc.apply(patch);
    };
    let post = move |_| {
        let text = comment.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        leptos::task::spawn_local(async move {
            match comment_postmortem(doc.id, NewComment { section, text }).await {
                Ok(c) => {
                    comment.set(String::new());
                    doc.current.update(|p| {
                        if let Some(p) = p {
                            p.comments.push(c);
                        }
                    });
                }
                Err(e) => doc.problem.set(Some(clean(&e.to_string()))),
            }
        });
    };
    view! {
        <section class="pm-section" data-section=section.as_str()>
            <h3>{section.title()}</h3>
            {move || if editing.get() {
                view! {
                    <div class="no-print">
                        <textarea rows="6" bind:value=draft aria-label=section.title()></textarea>
                        <button type="button" class="btn primary" on:click=save>"Save"</button>
                        <button type="button" class="btn" on:click=move |_| editing.set(false)>"Cancel"</button>
                    </div>
                }.into_any()
            } else if empty {
                view! { <p class="muted hint">{section.hint()}</p> }.into_any()
            } else {
                view! { <div class="md" inner_html=html.clone()></div> }.into_any()
            }}
            {editable.then(|| view! {
                <button type="button" class="btn small no-print" on:click=move |_| editing.set(true) hidden=move || editing.get()>"Edit"</button>
            })}
            <ul class="comments">
                {comments.into_iter().map(|c| view! {
                    <li class="comment">
                        <span class="who">{c.author.clone()}</span> " "
                        <time>{c.created_at.format("%Y-%m-%d %H:%M").to_string()}</time>
                        {(c.revision > 1).then(|| format!(" · rev {}", c.revision))}
                        <div class="md" inner_html=c.html></div>
                    </li>
                }).collect_view()}
            </ul>
            {may_comment.then(|| view! {
                <div class="comment-form no-print">
                    <input type="text" placeholder="Comment on this section" bind:value=comment aria-label=format!("Comment on {}", section.title())/>
                    <button type="button" class="btn small" on:click=post>"Comment"</button>
                </div>
            })}
        </section>
    }
}

#[component]
fn ActionItems(items: Vec<ActionItem>, editable: bool, doc: Doc) -> impl IntoView {
    let list = StoredValue::new(items.clone());
    let save =
        move |items: Vec<ActionItem>| doc.apply(PostmortemPatch { action_items: Some(items), ..Default::default() });
    let (title, owner, due, link) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let add = move |_| {
        let mut items = list.get_value();
        items.push(ActionItem {
            id: None,
            title: title.get_untracked(),
            owner: owner.get_untracked(),
            due: chrono::NaiveDate::parse_from_str(&due.get_untracked(), "%Y-%m-%d").ok(),
            status: ActionStatus::Open,
            link: Some(link.get_untracked()).filter(|l| !l.trim().is_empty()),
        });
        save(items);
    };
    let none = items.is_empty();
    view! {
        {none.then(|| view! { <p class="muted">"No action items yet."</p> })}
        <table class="dense action-items" hidden=none>
            <thead><tr>
                <th scope="col">"Action"</th><th scope="col">"Owner"</th><th scope="col">"Due"</th>
                <th scope="col">"Status"</th><th scope="col">"Link"</th>
            </tr></thead>
            <tbody>
                {items.into_iter().enumerate().map(|(i, a)| {
                    let set_status = move |ev: leptos::ev::Event| {
                        let mut items = list.get_value();
                        if let (Some(item), Some(s)) = (items.get_mut(i), ActionStatus::parse(&event_target_value(&ev))) {
                            item.status = s;
                            save(items);
                        }
                    };
                    let remove = move |_| {
                        let mut items = list.get_value();
                        if i < items.len() {
                            items.remove(i);
                        }
                        save(items);
                    };
                    view! {
                        <tr>
                            <td>{a.title.clone()}</td>
                            <td>{a.owner.clone()}</td>
                            <td>{a.due.map(|d| d.to_string())}</td>
                            <td>
                                {if editable {
                                    view! {
                                        <select on:change=set_status aria-label=format!("Status of {}", a.title)>
                                            {ActionStatus::ALL.map(|s| view! { <option value=s.as_str() selected=s == a.status>{s.as_str().replace('_', " ")}</option> }).into_iter().collect_view()}
                                        </select>
                                        <button type="button" class="btn small no-print" on:click=remove>"Remove"</button>
                                    }.into_any()
                                } else {
                                    a.status.as_str().replace('_', " ").into_any()
                                }}
                            </td>
                            <td>{a.link.clone().map(|l| view! { <a href=l.clone() rel="noopener noreferrer nofollow">{l.clone()}</a> })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        {editable.then(|| view! {
            <div class="toolbar add-action no-print" role="group" aria-label="Add an action item">
                <input type="text" placeholder="Action" bind:value=title aria-label="Action"/>
                <input type="text" placeholder="Owner" bind:value=owner aria-label="Owner"/>
                <input type="date" bind:value=due aria-label="Due"/>
                <input type="url" placeholder="https://…" bind:value=link aria-label="Link"/>
                <button type="button" class="btn" on:click=add>"Add action item"</button>
            </div>
        })}
    }
}

/// The incident's timeline (as published, once published), filtered by kind from the URL.
#[component]
fn Timeline(p: Postmortem) -> impl IntoView {
    let query = use_query_map();
    let kinds = Memo::new(move |_| kinds_from(&query.read()));
    let navigate = use_navigate();
    let id = p.id;
    let toggle = move |k: EntryKind| {
        let mut now = kinds.get_untracked();
        if now.contains(&k) {
            now.retain(|x| *x != k);
        } else {
            now.push(k);
        }
        let q = now.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",");
        let href = if q.is_empty() { format!("/postmortems/{id}") } else { format!("/postmortems/{id}?kinds={q}") };
        navigate(&href, NavigateOptions { scroll: false, ..Default::default() });
    };
    let entries = StoredValue::new(p.timeline.clone());
    view! {
        <h2>"Timeline"</h2>
        <p class="muted">
            {if p.timeline_frozen { "As published." } else { "The incident's timeline as it is now; it is frozen when the postmortem is published." }}
        </p>
        <div class="toolbar kinds no-print" role="group" aria-label="Show kinds">
            {EntryKind::ALL.map(|k| {
                let toggle = toggle.clone();
                view! {
                    <label class="check">
                        <input type="checkbox" prop:checked=move || kinds.get().contains(&k) on:change=move |_| toggle(k)/>
                        {k.label()}
                    </label>
                }
            }).into_iter().collect_view()}
        </div>
        <ol class="timeline pm-timeline">
            {move || {
                let shown = kinds.get();
                entries.get_value().into_iter()
                    .filter(|e| e.deleted.is_none() && (shown.is_empty() || shown.contains(&e.kind)))
                    .map(|e| view! {
                        <li class="entry" data-kind=e.kind.as_str()>
                            <time>{e.happened_at.format("%H:%M:%S").to_string()}</time> " "
                            <span class="kind">{e.kind.label()}</span> " "
                            <span class="who">{e.author.clone()}</span>
                            <div class="entry-text" inner_html=e.html></div>
                        </li>
                    })
                    .collect_view()
            }}
        </ol>
    }
}

#[component]
fn Revisions(p: Postmortem) -> impl IntoView {
    (!p.revisions.is_empty()).then(|| {
        view! {
            <h2>"Earlier revisions"</h2>
            <ul class="revisions">
                {p.revisions.into_iter().map(|r| view! {
                    <li>
                        <details>
                            <summary>
                                "Revision " {r.revision}
                                {r.published_at.map(|at| format!(", published {}", at.format("%Y-%m-%d %H:%M UTC")))}
                                "; amended by " {r.amended_by.clone()} " on " {r.amended_at.format("%Y-%m-%d %H:%M UTC").to_string()}
                                ": " {r.reason.clone()}
                            </summary>
                            {Section::ALL.into_iter().filter(|s| !r.doc.section(*s).trim().is_empty()).map(|s| view! {
                                <h4>{s.title()}</h4>
                                <pre class="md-source">{r.doc.section(s).to_string()}</pre>
                            }).collect_view()}
                        </details>
                    </li>
                }).collect_view()}
            </ul>
        }
    })
}
