//! The service page's objective: attainment, the error budget left (time and share), the burn
//! of the last hour, the budget chart over the window and the burn-rate alerts; and the form
//! admins set the objective with.

use leptos::prelude::*;

use super::config::form::{Errors, Field, set_error, show_server_error};
use crate::api::{ServerError, get_slo, save_slo};
use crate::charts::{self, ChartSize};
use crate::model::{ObjectiveStatus, SLO_WINDOW_DAYS, SloSpec, SloStatus, budget_words};

const CHART: ChartSize = ChartSize { width: 960, height: 160 };

fn pct(v: Option<f64>, places: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.places$} %"))
}

fn burn(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}×"))
}

/// One objective's row of figures.
fn figures(name: &'static str, o: &ObjectiveStatus) -> impl IntoView {
    let over = o.budget_remaining_pct.is_some_and(|p| p < 0.0);
    let burning = o.burn_rate_1h.is_some_and(|b| b >= 1.0);
    view! {
        <tr>
            <th scope="row">{name}</th>
            <td>{format!("{} %", o.target)}</td>
            <td>{pct(o.attainment, 3)}</td>
            <td class:bad=over>{budget_words(o.budget_remaining_secs, o.budget_remaining_pct)}</td>
            <td class:bad=burning title="1 means on pace to spend exactly the budget by the window's end">{burn(o.burn_rate_1h)}</td>
            <td>{format!("{:.0} of {:.0}", o.bad_checks, o.checks)}</td>
        </tr>
    }
}

/// The objective as the service page shows it (server-rendered with the page).
#[component]
pub fn SloSummary(slo: Option<SloStatus>) -> impl IntoView {
    let Some(s) = slo else {
        return view! {
            <h2 id="slo">"Service level objective"</h2>
            <p class="muted">"No objective set. Admins set one below: an availability target, and a latency one if it matters."</p>
        }
        .into_any();
    };
    let availability = ObjectiveStatus {
        target: s.availability_target,
        attainment: s.attainment,
        budget_remaining_pct: s.budget_remaining_pct,
        budget_remaining_secs: s.budget_remaining_secs,
        burn_rate_1h: s.burn_rate_1h,
        checks: s.checks,
        bad_checks: s.bad_checks,
    };
    let latency_name = s.latency_ms.map(|ms| format!("≤ {ms} ms")).unwrap_or_default();
    let latency = s.latency.as_ref().map(|l| {
        view! { {figures("Latency", l)} <tr class="muted"><td colspan="6">{format!("Latency: share of timed checks {latency_name}")}</td></tr> }
    });
    let alerts = s
        .alerts
        .iter()
        .map(|a| {
            let state = if a.cleared_at.is_some() { "cleared" } else { "firing" };
            let incident = a.incident_id.map(|id| view! { " · " <a href=format!("/incidents/{id}")>"incident"</a> });
            view! {
                <li class=format!("burn-alert burn-{state}")>
                    <strong>{state}</strong> " " {a.describe()}
                    {format!(" · since {} UTC", a.fired_at.format("%Y-%m-%d %H:%M"))}
                    {a.cleared_at.map(|c| format!(", cleared {} UTC", c.format("%Y-%m-%d %H:%M")))}
                    {incident}
                </li>
            }
        })
        .collect_view();
    let has_alerts = !s.alerts.is_empty();
    let svg = charts::budget::render_svg(&s, CHART);
    view! {
        <h2 id="slo">"Service level objective"</h2>
        <p class="muted summary-line">{format!(
            "Rolling {} days: {} → {} UTC, counted from the rollups",
            s.window_days,
            s.window_from.format("%Y-%m-%d %H:%M"),
            s.window_to.format("%Y-%m-%d %H:%M"),
        )}</p>
        <table class="grid slo" aria-label="Service level objective">
            <thead><tr><th>"Objective"</th><th>"Target"</th><th>"Attainment"</th><th>"Budget left"</th><th>"Burn (1 h)"</th><th>"Bad checks"</th></tr></thead>
            <tbody>{figures("Availability", &availability)} {latency}</tbody>
        </table>
        <div class="chart budget-chart" inner_html=svg></div>
        {if has_alerts {
            view! { <ul class="burn-alerts" aria-label="Burn-rate alerts">{alerts}</ul> }.into_any()
        } else {
            view! { <p class="muted">"No burn-rate alert in the last 30 days."</p> }.into_any()
        }}
    }
    .into_any()
}

/// What the form holds: the numbers as typed, parsed on submit.
#[derive(Clone, Debug, PartialEq)]
struct Draft {
    availability: String,
    latency_ms: String,
    latency_target: String,
    window_days: u16,
    open_incidents: bool,
    probes: Option<Vec<uuid::Uuid>>,
}

impl Draft {
    fn of(spec: Option<SloSpec>) -> Self {
        let s = spec.unwrap_or(SloSpec {
            availability_target: 99.9,
            latency_ms: None,
            latency_target: None,
            window_days: 28,
            probes: None,
            open_incidents: true,
        });
        Self {
            availability: s.availability_target.to_string(),
            latency_ms: s.latency_ms.map(|v| v.to_string()).unwrap_or_default(),
            latency_target: s.latency_target.map(|v| v.to_string()).unwrap_or_default(),
            window_days: s.window_days,
            open_incidents: s.open_incidents,
            probes: s.probes,
        }
    }

    /// The spec, or the first field that does not parse.
    fn spec(&self) -> Result<SloSpec, (&'static str, &'static str)> {
        let number = |field: &'static str, v: &str| -> Result<Option<f64>, (&'static str, &'static str)> {
            let v = v.trim().trim_end_matches('%').trim();
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<f64>().map(Some).map_err(|_| (field, "a number, e.g. 99.9"))
        };
        let availability =
            number("availability_target", &self.availability)?.ok_or(("availability_target", "needed, e.g. 99.9"))?;
        let latency_ms = match number("latency_ms", &self.latency_ms)? {
            Some(v) if v >= 0.0 && v.fract() == 0.0 => Some(v as u32),
            Some(_) => return Err(("latency_ms", "whole milliseconds")),
            None => None,
        };
        Ok(SloSpec {
            availability_target: availability,
            latency_ms,
            latency_target: number("latency_target", &self.latency_target)?,
            window_days: self.window_days,
            probes: self.probes.clone(),
            open_incidents: self.open_incidents,
        })
    }
}

/// Sets, changes or removes the objective (admins). It reads the current one when opened;
/// `saved` is bumped after a change so the page shows the new figures.
#[component]
pub fn SloForm(service: uuid::Uuid, saved: RwSignal<u64>) -> impl IntoView {
    let draft = RwSignal::new(Draft::of(None));
    let exists = RwSignal::new(false);
    let errors = RwSignal::new(Errors::new());
    let problem = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    // Read when first opened (toggle fires on opening), not with every page load; saving waits
    // for it, so defaults never overwrite an objective that was not read yet.
    let loading = RwSignal::new(false);
    let loaded = RwSignal::new(false);
    let load = move |_| {
        if loaded.get_untracked() || loading.get_untracked() {
            return;
        }
        loading.set(true);
        leptos::task::spawn_local(async move {
            match get_slo(service).await {
                Ok(current) => {
                    exists.set(current.is_some());
                    draft.set(Draft::of(current.map(|s| s.spec())));
                    loaded.set(true);
                    problem.set(None);
                }
                Err(e) => {
                    problem.set(Some(format!("Could not read the objective (close and open again to retry): {e}")))
                }
            }
            loading.set(false);
        });
    };
    let send = move |spec: Option<SloSpec>| {
        errors.set(Errors::new());
        problem.set(None);
        done.set(None);
        leptos::task::spawn_local(async move {
            match save_slo(service, spec).await {
                Ok(s) => {
                    exists.set(s.is_some());
                    done.set(Some(if s.is_some() { "Saved." } else { "Removed." }.into()));
                    saved.update(|n| *n += 1);
                }
                Err(e @ (ServerError::Invalid { .. } | ServerError::Conflict { .. })) => {
                    problem.set(Some(show_server_error(errors, &e)))
                }
                Err(e) => problem.set(Some(e.to_string())),
            }
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !loaded.get_untracked() {
            return;
        }
        match draft.with_untracked(Draft::spec) {
            Ok(spec) => send(Some(spec)),
            Err((field, message)) => {
                errors.set(Errors::new());
                set_error(errors, field, Some(message.into()));
            }
        }
    };
    let input = move |get: fn(&Draft) -> String, set: fn(&mut Draft, String)| {
        view! {
            <input inputmode="decimal" prop:value=move || draft.with(get)
                on:input=move |ev| { let v = event_target_value(&ev); draft.update(|d| set(d, v)); }/>
        }
    };
    view! {
        <details class="slo-form" on:toggle=load>
            <summary>"Set the objective"</summary>
            <form class="form" on:submit=submit novalidate aria-label="Service level objective">
                // Nothing can be typed before the current objective is read: it would be overwritten.
                <fieldset class="plain" disabled=move || !loaded.get()>
                <Field label="Availability target (%)" field="availability_target" errors hint="checks not down ÷ all checks, e.g. 99.9">
                    {input(|d| d.availability.clone(), |d, v| d.availability = v)}
                </Field>
                <Field label="Latency threshold (ms)" field="latency_ms" errors hint="empty: no latency objective">
                    {input(|d| d.latency_ms.clone(), |d, v| d.latency_ms = v)}
                </Field>
                <Field label="Latency target (%)" field="latency_target" errors hint="timed checks at or under the threshold, e.g. 99">
                    {input(|d| d.latency_target.clone(), |d, v| d.latency_target = v)}
                </Field>
                <Field label="Window" field="window_days" errors>
                    <select on:change=move |ev| {
                        if let Ok(days) = event_target_value(&ev).parse::<u16>() {
                            draft.update(|d| d.window_days = days);
                        }
                    }>
                        {SLO_WINDOW_DAYS.into_iter().map(|days| view! {
                            <option value=days.to_string() selected=move || draft.with(|d| d.window_days == days)>{format!("{days} days")}</option>
                        }).collect_view()}
                    </select>
                </Field>
                <Field label="A fast burn opens an incident" field="open_incidents" errors hint="off: it only notifies">
                    <input type="checkbox" prop:checked=move || draft.with(|d| d.open_incidents)
                        on:change=move |ev| { let on = event_target_checked(&ev); draft.update(|d| d.open_incidents = on); }/>
                </Field>
                </fieldset>
                <div class="actions">
                    <button type="submit" class="btn primary" disabled=move || !loaded.get()>"Save objective"</button>
                    {move || exists.get().then(|| view! {
                        <button type="button" class="btn" on:click=move |_| send(None)>"Remove"</button>
                    })}
                </div>
                {move || problem.get().map(|p| view! { <p class="error" role="alert">{p}</p> })}
                {move || done.get().map(|d| view! { <p class="ok" role="status">{d}</p> })}
            </form>
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_parses_to_the_spec_or_names_the_field() {
        let mut d = Draft::of(None);
        assert_eq!(d.spec().map(|s| (s.availability_target, s.window_days, s.latency_ms)), Ok((99.9, 28, None)));
        d.latency_ms = "300".into();
        d.latency_target = "99 %".into();
        assert_eq!(d.spec().map(|s| (s.latency_ms, s.latency_target)), Ok((Some(300), Some(99.0))));
        d.latency_ms = "3.5".into();
        assert_eq!(d.spec().err().map(|e| e.0), Some("latency_ms"));
        d.availability = "lots".into();
        assert_eq!(d.spec().err().map(|e| e.0), Some("availability_target"));
    }
}
