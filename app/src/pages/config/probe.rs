//! The probe form (`/config/probes/new?service=…`, `/config/probes/{id}`, `?from={id}` to clone):
//! every option the API has, shown for the kinds it applies to; an assertion builder with a
//! JSONPath tester on a real sample body; "Run now" with the result as it would be stored.
//! File-managed probes are shown read-only.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use serde_json::Value;
use uuid::Uuid;

use super::form::{Errors, Field, area, check, list_text, number, set_error, show_server_error, split_list, text};
use crate::api::{get_catalog, run_probe, save_probe, test_json_path};
use crate::model::{
    Catalog, CatalogScope, CompareOp, Criticality, HeaderAssertion, JsonPathAssertion, JsonPathTest, Outcome,
    ProbeKind, ProbeSpec, ProbeTrial, SECRET_MASK, SavedProbe, StatusSpec,
};

const OPS: [(CompareOp, &str); 9] = [
    (CompareOp::Eq, "equals"),
    (CompareOp::Ne, "differs from"),
    (CompareOp::Contains, "contains"),
    (CompareOp::Lt, "<"),
    (CompareOp::Le, "≤"),
    (CompareOp::Gt, ">"),
    (CompareOp::Ge, "≥"),
    (CompareOp::Exists, "exists"),
    (CompareOp::Matches, "matches regex"),
];

fn op_name(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "eq",
        CompareOp::Ne => "ne",
        CompareOp::Contains => "contains",
        CompareOp::Lt => "lt",
        CompareOp::Le => "le",
        CompareOp::Gt => "gt",
        CompareOp::Ge => "ge",
        CompareOp::Exists => "exists",
        CompareOp::Matches => "matches",
    }
}

fn op_parse(s: &str) -> CompareOp {
    OPS.iter().map(|(op, _)| *op).find(|op| op_name(*op) == s).unwrap_or(CompareOp::Eq)
}

/// The URL each kind takes, as a placeholder.
fn url_example(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Http => "https://shop.internal/healthz",
        ProbeKind::Readiness => "https://shop.internal/readyz",
        ProbeKind::Metrics => "http://shop.internal:9100/metrics",
        ProbeKind::Push => "(none: an agent pushes results)",
        ProbeKind::Tcp => "tcp://db.internal:5432",
        ProbeKind::Tls => "tls://shop.example:443",
        ProbeKind::Dns => "dns://10.0.0.2/shop.internal?type=A (no resolver: the system's)",
        ProbeKind::Icmp => "icmp://gateway.internal",
        ProbeKind::Grpc => "grpc://api.internal:50051/shop.Api (grpcs:// over TLS)",
    }
}

/// One row of a list editor: a stable key (for the view) and its texts.
#[derive(Clone, Debug, Default, PartialEq)]
struct Row {
    key: u32,
    name: String,
    op: String,
    value: String,
}

impl Row {
    /// A JSONPath row as an assertion; `None` while its path is empty.
    fn json_path(&self) -> Option<JsonPathAssertion> {
        let path = self.name.trim();
        if path.is_empty() {
            return None;
        }
        let op = op_parse(&self.op);
        Some(JsonPathAssertion {
            path: path.to_string(),
            op,
            value: (op != CompareOp::Exists).then(|| typed_value(&self.value)),
        })
    }
}

/// The form's lists, kept apart from the spec while edited so rows keep their identity.
#[derive(Clone, Copy)]
struct Lists {
    headers: RwSignal<Vec<Row>>,
    json_paths: RwSignal<Vec<Row>>,
    header_checks: RwSignal<Vec<Row>>,
    next: StoredValue<u32>,
}

impl Lists {
    fn from_spec(spec: &ProbeSpec) -> Self {
        let mut key = 0;
        let mut row = |name: &str, op: &str, value: String| {
            key += 1;
            Row { key, name: name.to_string(), op: op.to_string(), value }
        };
        let headers = spec.headers.iter().map(|(n, v)| row(n, "", v.clone())).collect();
        let json_paths = spec
            .assertions
            .json_path
            .iter()
            .map(|a| row(&a.path, op_name(a.op), a.value.as_ref().map(value_text).unwrap_or_default()))
            .collect();
        let header_checks = spec
            .assertions
            .header
            .iter()
            .map(|a| row(&a.name, op_name(a.op), a.value.clone().unwrap_or_default()))
            .collect();
        Self {
            headers: RwSignal::new(headers),
            json_paths: RwSignal::new(json_paths),
            header_checks: RwSignal::new(header_checks),
            next: StoredValue::new(key + 1),
        }
    }

    /// The JSONPath rows with a path, as the assertions the spec stores.
    fn json_path_assertions(&self) -> Vec<JsonPathAssertion> {
        self.json_paths.get_untracked().iter().filter_map(Row::json_path).collect()
    }

    fn add(&self, list: RwSignal<Vec<Row>>) {
        let key = self.next.get_value();
        self.next.set_value(key + 1);
        list.update(|l| l.push(Row { key, op: "eq".into(), ..Row::default() }));
    }
}

/// A JSONPath value as typed: JSON when it parses (`12`, `true`, `"UP"`), else the text itself.
fn typed_value(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn status_text(s: &Option<StatusSpec>) -> String {
    match s {
        None => String::new(),
        Some(StatusSpec::Range { min, max }) => format!("{min}-{max}"),
        Some(StatusSpec::OneOf(codes)) => codes.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
    }
}

/// "200-299" or "200, 204"; empty: the default (200–399).
fn parse_status(s: &str) -> Result<Option<StatusSpec>, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let code = |t: &str| t.trim().parse::<u16>().ok().filter(|c| (100..=599).contains(c));
    if let Some((a, b)) = s.split_once('-') {
        return match (code(a), code(b)) {
            (Some(min), Some(max)) if min <= max => Ok(Some(StatusSpec::Range { min, max })),
            _ => Err("a range like 200-299, or codes like 200, 204"),
        };
    }
    s.split(',')
        .map(code)
        .collect::<Option<Vec<u16>>>()
        .map(|c| Some(StatusSpec::OneOf(c)))
        .ok_or("a range like 200-299, or codes like 200, 204")
}

/// The spec the form describes: the scalar fields, the lists and the status text put together.
fn assemble(spec: &ProbeSpec, lists: Lists, status: &str, errors: RwSignal<Errors>) -> Option<ProbeSpec> {
    let mut s = spec.clone();
    s.headers = lists
        .headers
        .get_untracked()
        .into_iter()
        .filter(|r| !r.name.trim().is_empty())
        .map(|r| (r.name.trim().to_string(), r.value))
        .collect::<BTreeMap<_, _>>();
    s.assertions.json_path = lists.json_path_assertions();
    s.assertions.header = lists
        .header_checks
        .get_untracked()
        .into_iter()
        .filter(|r| !r.name.trim().is_empty())
        .map(|r| {
            let op = op_parse(&r.op);
            HeaderAssertion { name: r.name.trim().to_string(), op, value: (op != CompareOp::Exists).then_some(r.value) }
        })
        .collect();
    match parse_status(status) {
        Ok(st) => s.assertions.status = st,
        Err(why) => {
            set_error(errors, "assert.status", Some(why.into()));
            return None;
        }
    }
    if s.kind == ProbeKind::Push {
        s.url = None;
    }
    if errors.with_untracked(|e| !e.is_empty()) {
        return None;
    }
    Some(s)
}

/// What the page edits: a new probe, a copy of one, or one that exists.
struct Start {
    spec: ProbeSpec,
    id: Option<Uuid>,
    from: Option<Uuid>,
    file_managed: bool,
}

fn start(catalog: &Catalog, id: Option<&str>, service: Option<&str>, from: Option<&str>) -> Option<Start> {
    let find = |id: &str| {
        let id = id.parse::<Uuid>().ok()?;
        catalog.probes.iter().find(|p| p.id == id)
    };
    let as_form =
        |p: &crate::model::Probe| ProbeSpec { service: None, service_id: Some(p.service_id), ..p.spec.clone() };
    match (id, from) {
        (Some(id), _) if id != "new" => {
            let p = find(id)?;
            Some(Start {
                spec: ProbeSpec { id: Some(p.id), ..as_form(p) },
                id: Some(p.id),
                from: Some(p.id),
                file_managed: p.file_managed,
            })
        }
        (_, Some(from)) => {
            let p = find(from)?;
            let spec = ProbeSpec { id: None, name: format!("{} (copy)", p.spec.name), ..as_form(p) };
            Some(Start { spec, id: None, from: Some(p.id), file_managed: false })
        }
        _ => {
            let mut spec = ProbeSpec::new("", "", ProbeKind::Http, None);
            spec.service = None;
            spec.service_id = service.and_then(|s| s.parse().ok()).or_else(|| catalog.services.first().map(|s| s.id));
            Some(Start { spec, id: None, from: None, file_managed: false })
        }
    }
}

#[component]
pub fn ProbePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    // The probe edited or cloned, not every probe: the form needs one, and the services.
    let scope = {
        let (p, q) = (params.read_untracked(), query.read_untracked());
        let target = p.get_str("id").or(q.get_str("from")).and_then(|s| s.parse().ok());
        target.map_or(CatalogScope::Services, CatalogScope::Probe)
    };
    let catalog = Resource::new(move || scope, |scope| get_catalog(Some(scope)));
    view! {
        <Title text="Probe"/>
        <section class="page config">
            <p class="crumbs"><a href="/config">"Configuration"</a> " › probe"</p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || catalog.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(c) => {
                        let (id, q) = (params.read_untracked(), query.read_untracked());
                        match start(&c, id.get_str("id"), q.get_str("service"), q.get_str("from")) {
                            None => view! { <p class="error" role="alert">"No such probe."</p> }.into_any(),
                            Some(s) => view! { <ProbeForm start=s catalog=c/> }.into_any(),
                        }
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn ProbeForm(start: Start, catalog: Catalog) -> impl IntoView {
    let Start { spec: initial, id, from, file_managed } = start;
    let heading = match (id, from) {
        (Some(_), _) => format!("Probe {}", initial.name),
        (None, Some(_)) => "New probe (a copy)".to_string(),
        (None, None) => "New probe".to_string(),
    };
    let lists = Lists::from_spec(&initial);
    let body_masked = initial.body.as_deref() == Some(SECRET_MASK);
    let clear_body = RwSignal::new(false);
    let status = RwSignal::new(status_text(&initial.assertions.status));
    let new_service = RwSignal::new(if catalog.services.is_empty() { Some(String::new()) } else { None });
    let spec = RwSignal::new(initial);
    let errors = RwSignal::new(Errors::new());
    let problem = RwSignal::new(None::<String>);
    let trial = RwSignal::new(None::<ProbeTrial>);
    let sample = RwSignal::new(String::new());
    let saved = RwSignal::new(None::<SavedProbe>);
    let busy = RwSignal::new(None::<&'static str>);
    // A new probe becomes the one edited once saved (the URL follows; the form stays).
    let (current, source) = (RwSignal::new(id), RwSignal::new(from));
    let kind = Memo::new(move |_| spec.with(|s| s.kind));
    let is_http = move || kind.get().is_http();
    let navigate = use_navigate();

    let gather = move || -> Option<ProbeSpec> {
        problem.set(None);
        let mut s = assemble(&spec.get_untracked(), lists, &status.get_untracked(), errors)?;
        if let Some(name) = new_service.get_untracked() {
            s.service = Some(name.trim().to_string());
            s.service_id = None;
        }
        Some(s)
    };
    let run_now = move |_| {
        let Some(s) = gather() else {
            problem.set(Some("Fix the marked fields first.".into()));
            return;
        };
        busy.set(Some("Running…"));
        leptos::task::spawn_local(async move {
            match run_probe(source.get_untracked(), s).await {
                Ok(t) => {
                    if let Some(body) = &t.sample {
                        sample.set(body.clone());
                    }
                    trial.set(Some(t));
                }
                Err(e) => problem.set(Some(format!("Not run: {}", show_server_error(errors, &e)))),
            }
            busy.set(None);
        });
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(s) = gather() else {
            problem.set(Some("Not saved: fix the marked fields.".into()));
            return;
        };
        busy.set(Some("Saving…"));
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let editing = current.get_untracked();
            match save_probe(editing, source.get_untracked(), s).await {
                Ok(written) => {
                    let new_id = written.probe.id;
                    errors.set(Errors::new());
                    saved.set(Some(written));
                    if editing.is_none() {
                        current.set(Some(new_id));
                        source.set(Some(new_id));
                        spec.update(|s| s.id = Some(new_id));
                        navigate(
                            &format!("/config/probes/{new_id}?saved=1"),
                            NavigateOptions { replace: true, ..Default::default() },
                        );
                    }
                }
                Err(e) => problem.set(Some(format!("Not saved: {}", show_server_error(errors, &e)))),
            }
            busy.set(None);
        });
    };

    let services = catalog.services.clone();
    let service_select = move || {
        let chosen = spec.with(|s| s.service_id);
        let options = services
            .iter()
            .map(|s| view! { <option value=s.id.to_string() selected=chosen == Some(s.id)>{s.name.clone()}</option> })
            .collect_view();
        view! {
            <select on:change=move |ev| {
                let v = event_target_value(&ev);
                if v == "+new" {
                    new_service.set(Some(String::new()));
                } else {
                    new_service.set(None);
                    spec.update(|s| s.service_id = v.parse().ok());
                }
            }>
                {options}
                <option value="+new" selected=move || new_service.with(Option::is_some)>"New service…"</option>
            </select>
        }
    };

    view! {
        <h1>{heading}</h1>
        {file_managed.then(|| view! {
            <p class="notice" role="status" data-testid="file-managed">
                "Managed by file: this probe comes from the server's probe file (" <code>"--config"</code>
                "). Change it there; the UI shows it read-only."
            </p>
        })}
        {move || saved.get().map(|w| view! {
            <div class="ok" role="status" data-testid="saved">
                <p>
                    "Saved and scheduled: it runs every " {w.probe.spec.interval_secs} " s. "
                    <a href=format!("/services/{}", w.probe.service_id)>"Open " {w.probe.service.clone()}</a> " · "
                    <a href="/">"Overview"</a> " · "
                    // A fresh page: this form stays bound to the probe it saved.
                    <a href=format!("/config/probes/new?from={}", w.probe.id) rel="external">"Clone"</a>
                </p>
                {w.push_token.map(|t| view! {
                    <p>"Push token (copy it now, it is not shown again): " <code class="secret">{t}</code></p>
                })}
                {w.refused.map(|r| view! {
                    <p class="warn">"The network policy refuses its target (" {r.address} ", " {r.rule} "): "
                        {r.allow} ". Until then every check is blocked."</p>
                })}
            </div>
        })}
        <form class="form probe-form" on:submit=save novalidate>
            <fieldset disabled=file_managed>
                <legend>"What to check"</legend>
                <div class="grid2">
                    <Field label="Name" field="name" errors>{text(spec, |s| s.name.clone(), |s, v| s.name = v)}</Field>
                    <Field label="Service" field="service" errors>
                        {service_select}
                        {move || new_service.get().is_some().then(|| view! {
                            <input aria-label="New service name" placeholder="name of the new service"
                                on:input=move |ev| new_service.set(Some(event_target_value(&ev)))/>
                        })}
                    </Field>
                    <Field label="Kind" field="kind" errors>
                        <select on:change=move |ev| {
                            if let Some(k) = ProbeKind::parse(&event_target_value(&ev)) {
                                spec.update(|s| s.kind = k);
                            }
                        }>
                            {ProbeKind::ALL.map(|k| view! { <option value=k.as_str() selected=move || kind.get() == k>{k.as_str()}</option> })}
                        </select>
                    </Field>
                    <Field label="URL" field="url" errors>
                        <input
                            prop:value=move || spec.with(|s| s.url.clone().unwrap_or_default())
                            placeholder=move || url_example(kind.get())
                            disabled=move || kind.get() == ProbeKind::Push
                            on:input=move |ev| {
                                let v = event_target_value(&ev);
                                spec.update(|s| s.url = (!v.trim().is_empty()).then(|| v.trim().to_string()));
                            }
                        />
                    </Field>
                </div>
                <div class="grid4">
                    <Field label="Interval (s)" field="interval_secs" errors>
                        {number(spec, errors, "interval_secs", false, |s| Some(s.interval_secs), |s, v| s.interval_secs = v.unwrap_or(30))}
                    </Field>
                    <Field label="Timeout (ms)" field="timeout_ms" errors>
                        {number(spec, errors, "timeout_ms", false, |s| Some(s.timeout_ms), |s, v| s.timeout_ms = v.unwrap_or(5000))}
                    </Field>
                    <Field label="Failures to confirm down" field="failures_to_down" errors>
                        {number(spec, errors, "failures_to_down", false, |s| Some(s.failures_to_down), |s, v| s.failures_to_down = v.unwrap_or(3))}
                    </Field>
                    <Field label="Successes to confirm up" field="successes_to_up" errors>
                        {number(spec, errors, "successes_to_up", false, |s| Some(s.successes_to_up), |s, v| s.successes_to_up = v.unwrap_or(2))}
                    </Field>
                    <Field label="Degraded when slower than (ms)" field="degraded_after_ms" errors hint="empty: never">
                        {number(spec, errors, "degraded_after_ms", true, |s| s.degraded_after_ms, |s, v| s.degraded_after_ms = v)}
                    </Field>
                    <label class="check">{check(spec, |s| s.enabled, |s, v| s.enabled = v)} " Enabled (unchecked: paused)"</label>
                </div>
            </fieldset>

            <fieldset disabled=file_managed hidden=move || !is_http()>
                <legend>"Request"</legend>
                <div class="grid4">
                    <Field label="Method" field="method" errors>
                        <select on:change=move |ev| spec.update(|s| s.method = event_target_value(&ev))>
                            {["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].map(|m| view! {
                                <option value=m selected=move || spec.with(|s| s.method == m)>{m}</option>
                            })}
                        </select>
                    </Field>
                    <label class="check">{check(spec, |s| s.follow_redirects, |s, v| s.follow_redirects = v)} " Follow redirects"</label>
                    <Field label="At most redirects" field="max_redirects" errors>
                        {number(spec, errors, "max_redirects", false, |s| Some(s.max_redirects), |s, v| s.max_redirects = v.unwrap_or(5))}
                    </Field>
                    <Field label="Body read at most (bytes)" field="body_cap_bytes" errors hint="empty: 1 MiB">
                        {number(spec, errors, "body_cap_bytes", true, |s| s.body_cap_bytes, |s, v| s.body_cap_bytes = v)}
                    </Field>
                </div>
                <Field label="Headers" field="headers" errors group=true hint="Values are write-only: stored values show masked and are kept unless you type a new one.">
                    <RowList list=lists.headers lists with_op=false name_label="Header name" value_label="Header value" secret=true/>
                </Field>
                <Field label="Request body" field="body" errors hint="Write-only, like header values.">
                    <textarea
                        rows="3"
                        placeholder=if body_masked { "hidden: type to replace" } else { "" }
                        prop:value=if body_masked { String::new() } else { spec.with_untracked(|s| s.body.clone().unwrap_or_default()) }
                        prop:disabled=move || clear_body.get()
                        on:input=move |ev| {
                            let v = event_target_value(&ev);
                            spec.update(|s| s.body = if v.is_empty() && body_masked { Some(SECRET_MASK.into()) } else { (!v.is_empty()).then_some(v) });
                        }
                    ></textarea>
                    // An empty box keeps a hidden body; removing it is its own, explicit choice.
                    {body_masked.then(|| view! {
                        <label class="check"><input type="checkbox" prop:checked=move || clear_body.get()
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                clear_body.set(on);
                                spec.update(|s| s.body = if on { None } else { Some(SECRET_MASK.into()) });
                            }/>" Remove the stored body"</label>
                    })}
                </Field>
            </fieldset>

            <fieldset disabled=file_managed hidden=move || !matches!(kind.get(), ProbeKind::Http | ProbeKind::Readiness | ProbeKind::Metrics | ProbeKind::Tcp | ProbeKind::Tls | ProbeKind::Grpc)>
                <legend>"TLS"</legend>
                <label class="check" hidden=move || kind.get() != ProbeKind::Tcp>{check(spec, |s| s.tcp_tls, |s, v| s.tcp_tls = v)} " TLS handshake after connecting"</label>
                <label class="check">{check(spec, |s| s.tls.insecure_skip_verify, |s, v| s.tls.insecure_skip_verify = v)} " Accept any certificate (tests only; expiry is still measured)"</label>
                <Field label="Extra trusted CA (PEM)" field="tls" errors hint="For internal CAs and self-signed targets.">
                    {area(spec, 3, |s| s.tls.ca_pem.clone().unwrap_or_default(), |s, v| s.tls.ca_pem = (!v.trim().is_empty()).then_some(v))}
                </Field>
            </fieldset>

            <fieldset disabled=file_managed hidden=move || kind.get() != ProbeKind::Tcp>
                <legend>"TCP conversation"</legend>
                <div class="grid2">
                    <Field label="Send" field="send" errors hint="\\r \\n \\t are unescaped">{text(spec, |s| s.send.clone().unwrap_or_default(), |s, v| s.send = (!v.is_empty()).then_some(v))}</Field>
                    <Field label="Expect in the answer" field="expect" errors>{text(spec, |s| s.expect.clone().unwrap_or_default(), |s, v| s.expect = (!v.is_empty()).then_some(v))}</Field>
                </div>
            </fieldset>

            <fieldset disabled=file_managed hidden=move || kind.get() != ProbeKind::Dns>
                <legend>"DNS answer"</legend>
                <div class="grid2">
                    <Field label="Expected answers" field="answers" errors hint="comma-separated; all must be present; empty: any">
                        {list_text(spec, |s| s.answers.join(", "), |s, v| s.answers = split_list(&v))}
                    </Field>
                    <Field label="Response code" field="rcode" errors hint="empty: NOERROR">
                        {text(spec, |s| s.rcode.clone().unwrap_or_default(), |s, v| s.rcode = (!v.trim().is_empty()).then(|| v.trim().to_uppercase()))}
                    </Field>
                </div>
            </fieldset>

            <fieldset disabled=file_managed hidden=move || kind.get() != ProbeKind::Icmp>
                <legend>"Echo"</legend>
                <Field label="Packets per check" field="packets" errors hint="default 3, at most 20">
                    {number(spec, errors, "packets", true, |s| s.packets, |s, v| s.packets = v)}
                </Field>
            </fieldset>

            <fieldset disabled=file_managed hidden=move || !matches!(kind.get(), ProbeKind::Http | ProbeKind::Readiness | ProbeKind::Metrics | ProbeKind::Tcp | ProbeKind::Tls)>
                <legend>"Assertions"</legend>
                <div class="grid4">
                    <Field label="Accepted status" field="assert.status" errors hint="200-299 or 200, 204; empty: 200–399">
                        <input prop:value=move || status.get() on:input=move |ev| {
                            set_error(errors, "assert.status", None);
                            status.set(event_target_value(&ev));
                        }/>
                    </Field>
                    <Field label="Body contains" field="assert.body_contains" errors>
                        {text(spec, |s| s.assertions.body_contains.clone().unwrap_or_default(), |s, v| s.assertions.body_contains = (!v.is_empty()).then_some(v))}
                    </Field>
                    <Field label="Body matches (regex)" field="assert.body_regex" errors>
                        {text(spec, |s| s.assertions.body_regex.clone().unwrap_or_default(), |s, v| s.assertions.body_regex = (!v.is_empty()).then_some(v))}
                    </Field>
                    <Field label="Certificate valid at least (days)" field="assert.cert_min_days" errors hint="fewer: degraded">
                        {number(spec, errors, "assert.cert_min_days", true, |s| s.assertions.cert_min_days, |s, v| s.assertions.cert_min_days = v)}
                    </Field>
                </div>
                <Field label="JSONPath" field="assert.json_path" errors group=true hint="RFC 9535, e.g. $.status or $.checks[?@.status != 'UP']; the first node found is compared">
                    <RowList list=lists.json_paths lists with_op=true name_label="JSONPath" value_label="Expected value" secret=false/>
                </Field>
                <Field label="Response headers" field="assert.header" errors group=true>
                    <RowList list=lists.header_checks lists with_op=true name_label="Response header" value_label="Expected header value" secret=false/>
                </Field>
                <JsonPathTester sample lists/>
            </fieldset>

            <fieldset disabled=file_managed hidden=move || kind.get() != ProbeKind::Metrics>
                <legend>"Pool gauges"</legend>
                <p class="muted">"Metric names (or selectors such as " <code>"name{pool=\"main\"}"</code> ") for each gauge, comma-separated, first present wins; empty: Triage's defaults for the common exporters. Run now shows the reading they find."</p>
                <div class="grid4">
                    <Field label="In use" field="pool_mapping" errors>{list_text(spec, |s| s.pool_mapping.in_use.join(", "), |s, v| s.pool_mapping.in_use = split_list(&v))}</Field>
                    <Field label="Idle" field="pool_mapping.idle" errors>{list_text(spec, |s| s.pool_mapping.idle.join(", "), |s, v| s.pool_mapping.idle = split_list(&v))}</Field>
                    <Field label="Maximum" field="pool_mapping.max" errors>{list_text(spec, |s| s.pool_mapping.max.join(", "), |s, v| s.pool_mapping.max = split_list(&v))}</Field>
                    <Field label="Waiting" field="pool_mapping.waiting" errors>{list_text(spec, |s| s.pool_mapping.waiting.join(", "), |s, v| s.pool_mapping.waiting = split_list(&v))}</Field>
                    <Field label="Total" field="pool_mapping.total" errors>{list_text(spec, |s| s.pool_mapping.total.join(", "), |s, v| s.pool_mapping.total = split_list(&v))}</Field>
                    <Field label="Requests counter" field="pool_mapping.requests" errors>{list_text(spec, |s| s.pool_mapping.requests.join(", "), |s, v| s.pool_mapping.requests = split_list(&v))}</Field>
                    <Field label="Errors counter" field="pool_mapping.errors" errors>{list_text(spec, |s| s.pool_mapping.errors.join(", "), |s, v| s.pool_mapping.errors = split_list(&v))}</Field>
                    <Field label="Saturated from (share in use)" field="pool_saturated_at" errors hint="0–1; empty: 0.9">
                        <input inputmode="decimal" value=spec.with_untracked(|s| s.pool_saturated_at.map(|v| v.to_string()).unwrap_or_default())
                            on:input=move |ev| {
                                let raw = event_target_value(&ev);
                                match raw.trim() {
                                    "" => { spec.update(|s| s.pool_saturated_at = None); set_error(errors, "pool_saturated_at", None); }
                                    t => match t.parse::<f64>() {
                                        Ok(v) => { spec.update(|s| s.pool_saturated_at = Some(v)); set_error(errors, "pool_saturated_at", None); }
                                        Err(_) => set_error(errors, "pool_saturated_at", Some("a number from 0 to 1".into())),
                                    },
                                }
                            }/>
                    </Field>
                </div>
            </fieldset>

            <fieldset disabled=file_managed>
                <legend>"Incidents"</legend>
                <div class="grid4">
                    <label class="check">{check(spec, |s| s.incidents.auto_open, |s, v| s.incidents.auto_open = v)} " Open an incident when confirmed down"</label>
                    <Field label="Also after degraded for (s)" field="incidents.degraded_for_secs" errors hint="empty: degraded never opens one">
                        {number(spec, errors, "incidents.degraded_for_secs", true, |s| s.incidents.degraded_for_secs, |s, v| s.incidents.degraded_for_secs = v)}
                    </Field>
                    <Field label="Severity follows" field="incidents.criticality" errors>
                        <select on:change=move |ev| spec.update(|s| s.incidents.criticality = Criticality::parse(&event_target_value(&ev)))>
                            <option value="" selected=move || spec.with(|s| s.incidents.criticality.is_none())>"the service's criticality"</option>
                            {[Criticality::Critical, Criticality::High, Criticality::Medium, Criticality::Low].map(|c| view! {
                                <option value=c.as_str() selected=move || spec.with(|s| s.incidents.criticality == Some(c))>{c.as_str()}</option>
                            })}
                        </select>
                    </Field>
                    <Field label="Healthy for (s) before resolving is suggested" field="incidents.healthy_for_secs" errors>
                        {number(spec, errors, "incidents.healthy_for_secs", false, |s| Some(s.incidents.healthy_for_secs), |s, v| s.incidents.healthy_for_secs = v.unwrap_or(300))}
                    </Field>
                </div>
            </fieldset>

            {move || problem.get().map(|p| view! { <p class="error" role="alert" data-testid="form-error">{p}</p> })}
            <div class="actions">
                <button type="button" class="btn" on:click=run_now disabled=move || busy.with(Option::is_some) || kind.get() == ProbeKind::Push
                    title="Run the check once with these values; nothing is stored">"Run now"</button>
                {(!file_managed).then(|| view! {
                    <button type="submit" class="btn primary" disabled=move || busy.with(Option::is_some)>"Save"</button>
                })}
                <span class="muted" role="status">{move || busy.get()}</span>
            </div>
        </form>
        {move || trial.get().map(|t| view! { <TrialView trial=t/> })}
    }
}

/// A list editor: one row per entry (name, operator, value), rows added and removed.
#[component]
fn RowList(
    list: RwSignal<Vec<Row>>,
    lists: Lists,
    with_op: bool,
    name_label: &'static str,
    value_label: &'static str,
    secret: bool,
) -> impl IntoView {
    let edit = move |key: u32, f: fn(&mut Row, String), v: String| {
        list.update(|l| {
            if let Some(r) = l.iter_mut().find(|r| r.key == key) {
                f(r, v);
            }
        })
    };
    view! {
        <div class="rows">
            <For each=move || list.get() key=|r| r.key let:row>
                {
                    let key = row.key;
                    let masked = secret && row.value == SECRET_MASK;
                    view! {
                        <div class="row-edit">
                            <input aria-label=name_label value=row.name.clone()
                                on:input=move |ev| edit(key, |r, v| r.name = v, event_target_value(&ev))/>
                            {with_op.then(|| view! {
                                <select aria-label=format!("{name_label} operator") on:change=move |ev| edit(key, |r, v| r.op = v, event_target_value(&ev))>
                                    {OPS.map(|(op, label)| view! { <option value=op_name(op) selected=row.op == op_name(op)>{label}</option> })}
                                </select>
                            })}
                            // A hidden value shows empty and is kept until something is typed;
                            // emptied again, it is the stored value once more.
                            <input aria-label=value_label value=if masked { String::new() } else { row.value.clone() }
                                placeholder=if masked { "hidden: type to replace" } else { "" }
                                on:input=move |ev| {
                                    let v = event_target_value(&ev);
                                    let v = if masked && v.is_empty() { SECRET_MASK.to_string() } else { v };
                                    edit(key, |r, v| r.value = v, v)
                                }/>
                            <button type="button" class="btn small" aria-label=format!("Remove {name_label}")
                                on:click=move |_| list.update(|l| l.retain(|r| r.key != key))>"×"</button>
                        </div>
                    }
                }
            </For>
            <button type="button" class="btn small" on:click=move |_| lists.add(list)>"+ " {name_label}</button>
        </div>
    }
}

/// The JSONPath tester: each JSONPath assertion tried on a sample body (the last "Run now"
/// answer, or one pasted), with the nodes found and the verdict a check would give.
#[component]
fn JsonPathTester(sample: RwSignal<String>, lists: Lists) -> impl IntoView {
    let results = RwSignal::new(Vec::<(String, Result<JsonPathTest, String>)>::new());
    let try_all = move |_| {
        let body = sample.get_untracked();
        let assertions = lists.json_path_assertions();
        leptos::task::spawn_local(async move {
            let mut out = Vec::new();
            for a in assertions {
                let path = a.path.clone();
                let verdict = test_json_path(a, body.clone()).await.map_err(|e| e.to_string());
                out.push((path, verdict));
            }
            results.set(out);
        });
    };
    view! {
        <details class="tester" open=move || !sample.with(String::is_empty)>
            <summary>"JSONPath tester"</summary>
            <label class="field"><span class="label">"Sample body (filled by Run now, or paste one)"</span>
                <textarea rows="6" aria-label="Sample body" prop:value=move || sample.get() on:input=move |ev| sample.set(event_target_value(&ev))></textarea>
            </label>
            <button type="button" class="btn" on:click=try_all>"Try the JSONPath assertions on the sample"</button>
            <ul class="tester-results" data-testid="jsonpath-results">
                {move || results.get().into_iter().map(|(path, r)| match r {
                    Ok(t) => view! {
                        <li class=if t.passed { "pass" } else { "fail" }>
                            <code>{path}</code> " → " {if t.nodes.is_empty() { "nothing".to_string() } else { t.nodes.join(", ") }}
                            " · " <strong>{if t.passed { "passes" } else { "fails" }}</strong>
                            {t.reason.map(|why| view! { ": " {why} })}
                        </li>
                    }.into_any(),
                    Err(e) => view! { <li class="fail"><code>{path}</code> " · " {e}</li> }.into_any(),
                }).collect_view()}
            </ul>
        </details>
    }
}

fn ms(us: Option<u64>) -> String {
    us.map(|u| format!("{:.1} ms", u as f64 / 1000.0)).unwrap_or_else(|| "—".into())
}

/// A "Run now" result, as it would be stored.
#[component]
fn TrialView(trial: ProbeTrial) -> impl IntoView {
    let r = trial.result;
    let (class, label) = crate::components::state::state_label(Some(r.outcome));
    let p = r.phases;
    view! {
        <section class="trial" aria-label="Run now result" data-testid="trial" data-outcome=r.outcome.as_str()>
            <h2>"Run now: " <span class=class>{label}</span></h2>
            {trial.refused.map(|x| view! {
                <p class="warn" role="alert">"Refused by the network policy: " {x.address} " is a " {x.rule} ". " {x.allow} "."</p>
            })}
            {(r.outcome != Outcome::Up || r.error.is_some()).then(|| view! {
                <p class="why" data-testid="trial-reason">
                    <strong>{r.error.map(|e| e.as_str()).unwrap_or("")}</strong> " " {r.detail.clone().unwrap_or_default()}
                </p>
            })}
            <dl class="facts">
                <dt>"Status"</dt><dd>{r.status.map(|s| s.to_string()).unwrap_or_else(|| "—".into())}</dd>
                <dt>"Request id"</dt><dd><code>{r.request_id.clone()}</code></dd>
                <dt>"Bytes"</dt><dd>{r.response_bytes}</dd>
                {r.cert_days_left.map(|d| view! { <dt>"Certificate"</dt><dd>{d} " days left"</dd> })}
                {r.pool.map(|pool| view! { <dt>"Pool"</dt><dd data-testid="trial-pool">{pool.describe()}</dd> })}
            </dl>
            <table class="grid phases" aria-label="Phases">
                <thead><tr><th>"DNS"</th><th>"Connect"</th><th>"TLS"</th><th>"First byte"</th><th>"Transfer"</th><th>"Total"</th></tr></thead>
                <tbody><tr>
                    <td>{ms(p.dns_us)}</td><td>{ms(p.connect_us)}</td><td>{ms(p.tls_us)}</td>
                    <td>{ms(p.ttfb_us)}</td><td>{ms(p.transfer_us)}</td><td>{ms(Some(p.total_us))}</td>
                </tr></tbody>
            </table>
            {(!r.components.is_empty()).then(|| view! {
                <table class="grid" aria-label="Components">
                    <thead><tr><th>"Component"</th><th>"State"</th><th>"Detail"</th></tr></thead>
                    <tbody>{r.components.into_iter().map(|c| view! {
                        <tr><td>{c.name}</td><td>{format!("{:?}", c.state).to_lowercase()}</td><td>{c.detail.unwrap_or_default()}</td></tr>
                    }).collect_view()}</tbody>
                </table>
            })}
            {r.body_excerpt.map(|b| view! { <details><summary>"Body excerpt"</summary><pre>{b}</pre></details> })}
        </section>
    }
}
