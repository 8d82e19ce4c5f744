//! The postmortem list: every postmortem with its incident's time to detect and to resolve, and
//! a chart of both across incidents. The status filter lives in the URL (`?status=published`).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::incidents::severity_badge;
use crate::api::get_postmortems;
use crate::charts::ChartSize;
use crate::charts::response_times::{self, ResponseTimes};
use crate::model::{PostmortemStatus, PostmortemSummary, human_secs};

const CHART: ChartSize = ChartSize { width: 960, height: 200 };

pub fn postmortem_badge(s: PostmortemStatus) -> impl IntoView {
    view! { <span class="status-badge" data-status=s.as_str()>{s.label()}</span> }
}

fn secs(v: Option<i64>) -> String {
    v.map(human_secs).unwrap_or_else(|| "—".into())
}

#[component]
pub fn Postmortems() -> impl IntoView {
    let query = use_query_map();
    let status = Memo::new(move |_| query.read().get_str("status").and_then(PostmortemStatus::parse));
    let list = Resource::new(|| (), |_| get_postmortems());
    view! {
        <Title text="Postmortems"/>
        <section class="page">
            <div class="page-head"><h1>"Postmortems"</h1></div>
            <form class="toolbar filters" method="get" action="/postmortems">
                <label>"Status "
                    <select name="status" aria-label="Status">
                        <option value="">"any"</option>
                        {PostmortemStatus::ALL.map(|s| view! {
                            <option value=s.as_str() selected=move || status.get() == Some(s)>{s.label()}</option>
                        }).into_iter().collect_view()}
                    </select>
                </label>
                <button type="submit" class="btn">"Filter"</button>
            </form>
            <Transition fallback=|| view! { <p class="muted">"Loading postmortems…"</p> }>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">"Could not load postmortems: " {e.to_string()}</p> }.into_any(),
                    Ok(all) => {
                        let points: Vec<ResponseTimes> = all
                            .iter()
                            .map(|p| ResponseTimes { at: p.started_at, detect_secs: p.time_to_detect_secs, resolve_secs: p.time_to_resolve_secs })
                            .collect();
                        let shown: Vec<PostmortemSummary> =
                            all.into_iter().filter(|p| status.get().is_none_or(|s| p.status == s)).collect();
                        view! {
                            <figure class="chart response-times">
                                <figcaption>"MTTD and MTTR over incidents: dots are incidents, lines the mean of the last five (all postmortems)"</figcaption>
                                <div inner_html=response_times::render_svg(&points, CHART)></div>
                            </figure>
                            <Table rows=shown/>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Table(rows: Vec<PostmortemSummary>) -> impl IntoView {
    if rows.is_empty() {
        return view! {
            <p class="empty-state">"No postmortems here. Write one from an incident's room: “Write the postmortem”."</p>
        }
        .into_any();
    }
    view! {
        <table class="dense postmortems">
            <thead><tr>
                <th scope="col">"Incident"</th><th scope="col">"Severity"</th><th scope="col">"Status"</th>
                <th scope="col">"Started"</th><th scope="col">"TTD"</th><th scope="col">"TTR"</th><th scope="col">"Updated"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|p| view! {
                    <tr data-status=p.status.as_str()>
                        <td><a href=format!("/postmortems/{}", p.id)>"#" {p.incident.number} " " {p.incident.title.clone()}</a></td>
                        <td>{severity_badge(p.incident.severity)}</td>
                        <td>{postmortem_badge(p.status)} {(p.revision > 1).then(|| format!(" rev {}", p.revision))}</td>
                        <td>{p.started_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                        <td>{secs(p.time_to_detect_secs)}</td>
                        <td>{secs(p.time_to_resolve_secs)}</td>
                        <td>{p.updated_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
