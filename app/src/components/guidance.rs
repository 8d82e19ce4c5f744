//! The room's guided debugging panel: the production loop. Observe (symptoms from the signal),
//! hypothesise (suggested and added causes, each open / confirmed / ruled out), verify (checklist
//! steps with live evidence beside them), act (actions with their risk), confirm (recovery
//! against baseline). Every tick and hypothesis change goes to the timeline.

use leptos::prelude::*;

use crate::api::{get_guidance, get_service_view, save_hypothesis, tick_step};
use crate::charts::frame::{ChangeMark, ChartInput};
use crate::charts::{self, ChartSize};
use crate::model::{
    ChartKind, EvidenceStatus, Guidance, GuidedStep, Hypothesis, HypothesisInput, HypothesisStatus, Risk, StepDef,
    StepKind, TickInput, Window,
};

const SMALL: ChartSize = ChartSize { width: 480, height: 130 };

/// `refresh` changes whenever the room's data may have (live results, new entries). The panel's
/// structure (checklists, steps, forms) stays put while the evidence beside it updates, so a
/// finding being typed is never wiped by a refresh.
#[component]
pub fn GuidancePanel(
    id: uuid::Uuid,
    refresh: Signal<u64>,
    may_write: bool,
    window: Signal<Option<Window>>,
) -> impl IntoView {
    // Fetched by the browser only: the panel is live data, the server renders it empty.
    let guidance = LocalResource::new(move || {
        refresh.track();
        get_guidance(id)
    });
    let current = RwSignal::new(None::<Guidance>);
    let (problem, set_problem) = signal(None::<String>);
    Effect::new(move |_| match guidance.get() {
        Some(Ok(g)) => {
            set_problem.set(None);
            current.set(Some(g));
        }
        Some(Err(e)) => set_problem.set(Some(e.to_string())),
        None => {}
    });
    let observe = move || {
        current.with(|g| {
            let g = g.as_ref()?;
            let symptoms = if g.symptoms.is_empty() {
                view! { <p class="muted">"No symptom in the signal right now."</p> }.into_any()
            } else {
                g.symptoms
                    .iter()
                    .map(|s| {
                        view! {
                            <li class="symptom" data-kind=s.kind.as_str()>
                                <strong>{s.kind.label()}</strong> " · " {s.service.clone()} ": " {s.reason.clone()}
                            </li>
                        }
                    })
                    .collect_view()
                    .into_any()
            };
            let r = &g.recovery;
            let (class, mark) = if r.confirmed {
                ("recovery ok", "✔")
            } else if r.healthy {
                ("recovery waiting", "◌")
            } else {
                ("recovery bad", "✖")
            };
            Some(view! {
                <ul class="symptoms">{symptoms}</ul>
                <p class=class data-confirmed=r.confirmed.to_string()>{mark} " Confirm recovery: " {r.detail.clone()}</p>
            })
        })
    };
    let checklists = move || {
        current
            .with(|g| {
                g.as_ref().map(|g| {
                    g.checklists.iter().map(|c| (c.id.clone(), c.version, c.steps.clone())).collect::<Vec<_>>()
                })
            })
            .unwrap_or_default()
    };
    view! {
        <section class="guidance" aria-label="Guided debugging">
            <h2>"Guided debugging"</h2>
            {move || current.with(|g| g.is_none()).then(|| view! { <p class="muted">"Reading the signal…"</p> })}
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
            <div class="loop">
                <div class="loop-observe">
                    <h3>"Observe"</h3>
                    {observe}
                </div>
                <Hypotheses id current may_write/>
            </div>
            <h3>"Verify and act"</h3>
            {move || current.with(|g| g.as_ref().is_some_and(|g| g.checklists.is_empty())).then(|| view! {
                <p class="muted">"No checklist matches the signal yet. They are proposed as symptoms appear."</p>
            })}
            <For each=checklists key=|c| (c.0.clone(), c.1) let:c>
                <ChecklistView id=c.0 steps=c.2 incident=id may_write current window refresh/>
            </For>
        </section>
    }
    .into_any()
}

#[component]
fn Hypotheses(id: uuid::Uuid, current: RwSignal<Option<Guidance>>, may_write: bool) -> impl IntoView {
    let (problem, set_problem) = signal(None::<String>);
    let save = move |hid: Option<uuid::Uuid>, input: HypothesisInput| {
        leptos::task::spawn_local(async move {
            if let Err(e) = save_hypothesis(id, hid, input).await {
                set_problem.set(Some(e.to_string()));
            }
        });
    };
    let rows = move || {
        let list: Vec<Hypothesis> = current.with(|g| g.as_ref().map(|g| g.hypotheses.clone()).unwrap_or_default());
        list.into_iter()
            .map(|h| {
                let buttons = may_write.then(|| {
                    [HypothesisStatus::Open, HypothesisStatus::Confirmed, HypothesisStatus::RuledOut]
                        .map(|s| {
                            let label = match s {
                                HypothesisStatus::Open => "open",
                                HypothesisStatus::Confirmed => "confirmed",
                                HypothesisStatus::RuledOut => "ruled out",
                            };
                            view! {
                                <button type="button" class="btn small" aria-pressed=(h.status == s).to_string()
                                    on:click=move |_| save(Some(h.id), HypothesisInput { status: Some(s), ..Default::default() })>{label}</button>
                            }
                        })
                        .into_iter()
                        .collect_view()
                });
                view! {
                    <li class="hypothesis" data-status=h.status.as_str()>
                        <span>{h.text.clone()}</span>
                        {(!h.evidence.is_empty()).then(|| view! { <span class="muted">" — " {h.evidence.clone()}</span> })}
                        <span class="hyp-buttons">{buttons}</span>
                    </li>
                }
            })
            .collect_view()
    };
    let ideas = move || {
        let list = current.with(|g| g.as_ref().map(|g| g.suggested_hypotheses.clone()).unwrap_or_default());
        list.into_iter()
            .map(|s| {
                let text = s.text.clone();
                view! {
                    <li class="suggested">
                        <span title=format!("How to check: {}", s.verify)>{s.text.clone()}</span>
                        {may_write.then(|| view! {
                            <button type="button" class="btn small" on:click=move |_| save(None, HypothesisInput { text: Some(text.clone()), ..Default::default() })>"+ add"</button>
                        })}
                    </li>
                }
            })
            .collect_view()
    };
    let open = move || {
        current.with(|g| {
            g.as_ref().map_or(0, |g| g.hypotheses.iter().filter(|h| h.status == HypothesisStatus::Open).count())
        })
    };
    let own = NodeRef::<leptos::html::Input>::new();
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(input) = own.get() else { return };
        let text = input.value();
        if text.trim().is_empty() {
            return;
        }
        input.set_value("");
        save(None, HypothesisInput { text: Some(text), ..Default::default() });
    };
    view! {
        <div class="loop-hypotheses">
            <h3>"Hypotheses"</h3>
            {move || (open() > MAX_OPEN).then(|| view! { <p class="warn" role="status">{format!("{} open hypotheses: the loop works best with two or three. Rule some out first.", open())}</p> })}
            <ul class="hypotheses">{rows}</ul>
            <p class="muted small-print">"Likely from the symptoms:"</p>
            <ul class="suggestions">{ideas}</ul>
            {may_write.then(|| view! {
                <form class="inline-form" on:submit=add>
                    <input node_ref=own aria-label="New hypothesis" placeholder="Your hypothesis"/>
                    <button class="btn" type="submit">"Add"</button>
                </form>
            })}
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
        </div>
    }
}

/// Past this many open hypotheses the panel says so (the loop wants two or three).
const MAX_OPEN: usize = 3;

#[component]
fn ChecklistView(
    id: String,
    steps: Vec<GuidedStep>,
    incident: uuid::Uuid,
    may_write: bool,
    current: RwSignal<Option<Guidance>>,
    window: Signal<Option<Window>>,
    refresh: Signal<u64>,
) -> impl IntoView {
    let cid = id.clone();
    let info = Memo::new(move |_| {
        current.with(|g| {
            g.as_ref()
                .and_then(|g| g.checklists.iter().find(|c| c.id == cid))
                .map(|c| (c.title.clone(), c.version, c.reason.clone(), c.summary.clone()))
        })
    });
    let first = current.with_untracked(|g| g.as_ref().and_then(|g| g.checklists.first()).is_some_and(|c| c.id == id));
    let steps = steps
        .into_iter()
        .map(|s| {
            view! { <StepView def=s.def checklist=id.clone() id=incident may_write current window refresh/> }.into_any()
        })
        .collect_view();
    view! {
        <details class="checklist" open=first data-checklist=id.clone()>
            <summary>
                {move || info.get().map(|(title, version, reason, _)| view! {
                    <strong>{title}</strong>
                    <span class="muted">{format!(" v{version}")}</span>
                    <span class="why">" — " {reason}</span>
                })}
            </summary>
            <p class="muted">{move || info.get().map(|i| i.3)}</p>
            <ol class="steps">{steps}</ol>
        </details>
    }
    .into_any()
}

fn status_word(s: EvidenceStatus) -> &'static str {
    match s {
        EvidenceStatus::Pass => "pass",
        EvidenceStatus::Fail => "fail",
        EvidenceStatus::Unknown => "unknown",
    }
}

#[component]
fn StepView(
    def: StepDef,
    checklist: String,
    id: uuid::Uuid,
    may_write: bool,
    current: RwSignal<Option<Guidance>>,
    window: Signal<Option<Window>>,
    refresh: Signal<u64>,
) -> impl IntoView {
    let finding = NodeRef::<leptos::html::Input>::new();
    let accept = NodeRef::<leptos::html::Input>::new();
    let (problem, set_problem) = signal(None::<String>);
    let high = def.risk == Some(Risk::High);
    let live = {
        let (checklist, step) = (checklist.clone(), def.id.clone());
        Memo::new(move |_| {
            current.with(|g| {
                g.as_ref()
                    .and_then(|g| g.checklists.iter().find(|c| c.id == checklist))
                    .and_then(|c| c.steps.iter().find(|s| s.def.id == step))
                    .map(|s| (s.live.clone(), s.tick.clone()))
                    .unwrap_or((None, None))
            })
        })
    };
    let done = move || live.with(|l| l.1.as_ref().is_some_and(|t| t.done));
    let step_id = def.id.clone();
    let record = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let tick = TickInput {
            checklist: checklist.clone(),
            step: step_id.clone(),
            done: !done(),
            finding: finding.get().map(|f| f.value()).unwrap_or_default(),
            accept_risk: accept.get().is_some_and(|a| a.checked()),
        };
        leptos::task::spawn_local(async move {
            match tick_step(id, tick).await {
                Ok(g) => {
                    set_problem.set(None);
                    if let Some(f) = finding.get_untracked() {
                        f.set_value("");
                    }
                    current.set(Some(g));
                }
                Err(e) => set_problem.set(Some(e.to_string())),
            }
        });
    };
    // The charts beside a step: which ones depends only on the binding, so they are made once.
    let charts = live
        .with_untracked(|l| l.0.as_ref().map(|e| e.charts.clone()))
        .unwrap_or_default()
        .into_iter()
        .map(|(service, kind)| view! { <StepChart service kind window refresh/> })
        .collect_view();
    let evidence = move || {
        live.with(|l| l.0.clone()).map(|e| {
            let ids = (!e.request_ids.is_empty()).then(|| {
                view! { <p class="request-ids">"Request ids: " {e.request_ids.iter().map(|r| {
                    let trace = use_context::<crate::model::TraceUrl>().and_then(|t| t.link(r));
                    view! {
                        <code>{r.clone()}</code>
                        {trace.map(|href| view! { " " <a class="trace-link" href=href target="_blank" rel="noopener noreferrer">"trace"</a> })}
                        " "
                    }
                }).collect_view()}</p> }
            });
            view! {
                <div class="evidence" data-status=status_word(e.status)>
                    <span class="evidence-badge">{status_word(e.status)}</span> " " {e.detail.clone()}
                    {ids}
                </div>
            }
        })
    };
    let kind = match (def.kind, def.risk) {
        (StepKind::Action, Some(Risk::High)) => "action · high risk",
        (StepKind::Action, _) => "action · low risk",
        _ => "check",
    };
    let tick = move || {
        live.with(|l| l.1.clone()).map(|t| {
            view! {
                <p class="ticked">{if t.done { "✔ " } else { "○ " }} {t.by.clone()} " at " {t.at.format("%H:%M:%S").to_string()}
                    {(!t.finding.is_empty()).then(|| view! { ": " <em>{t.finding.clone()}</em> })}</p>
            }
        })
    };
    view! {
        <li class="step" class:done=done data-step=def.id.clone()>
            <div class="step-head">
                <strong>{def.question.clone()}</strong>
                " " <span class="step-kind" class:risky=high>{kind}</span>
            </div>
            <p class="muted">{def.why.clone()}</p>
            <p class="verify">"Verify: " {def.verify.clone()}</p>
            {evidence}
            <div class="evidence-charts">{charts}</div>
            {tick}
            {may_write.then(|| view! {
                <form class="inline-form tick-form" on:submit=record>
                    {high.then(|| view! {
                        <p class="warn">"⚠ " {def.warning.clone().unwrap_or_default()}</p>
                        <label><input node_ref=accept type="checkbox"/> " I accept the risk"</label>
                    })}
                    <input node_ref=finding aria-label="Finding" placeholder="What did you find?"/>
                    <button class="btn" type="submit">{move || if done() { "Uncheck" } else { "Done" }}</button>
                </form>
            })}
            {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
        </li>
    }
    .into_any()
}

/// One chart of one service beside a step, over the room's window.
#[component]
fn StepChart(
    service: uuid::Uuid,
    kind: ChartKind,
    window: Signal<Option<Window>>,
    refresh: Signal<u64>,
) -> impl IntoView {
    let view = Resource::new(
        move || (window.get(), refresh.get()),
        move |(w, _)| async move {
            match w {
                Some(w) => get_service_view(service, w).await,
                None => Ok(None),
            }
        },
    );
    view! {
        <Transition fallback=|| ()>
            {move || view.get().and_then(|r| r.ok()).flatten().map(|v| {
                let changes = ChangeMark::of(&v.change_events);
                let input = ChartInput {
                    from: v.from,
                    to: v.to,
                    step_secs: v.step_secs,
                    points: if kind == ChartKind::Pool { &v.pool } else { &v.traffic },
                    bands: &[],
                    markers: &[],
                    changes: &changes,
                };
                let svg = match kind {
                    ChartKind::Latency => charts::latency::render_svg(&input, SMALL),
                    ChartKind::Errors => charts::errors::render_svg(&input, SMALL),
                    ChartKind::Pool => charts::pool::render_svg(&input, SMALL),
                    ChartKind::Loss => charts::loss::render_svg(&input, SMALL),
                };
                view! { <figure class="chart step-chart"><div inner_html=svg></div></figure> }
            })}
        </Transition>
    }
}
