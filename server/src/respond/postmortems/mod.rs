//! Postmortems: written from an incident's data, reviewed, published, amended. Creating one
//! prefills it from the incident (impact, the first signal, actions, hypotheses, checklist steps),
//! computes its response times and freezes the affected services' charts as SVG, so the document
//! outlives the raw results.

pub mod export;
pub mod timings;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use app::charts::ChartSize;
use app::charts::frame::{Band, ChangeMark, ChartInput, Marker};
use app::model::{
    ActionItem, ChangeEvent, EntryKind, FrozenChart, FrozenChartKind, Impact, Incident, IncidentRef, Metric,
    MetricKind, MetricOverride, NewComment, Postmortem, PostmortemComment, PostmortemDoc, PostmortemPatch,
    PostmortemStatus, PostmortemSummary, Role, Section, ServiceImpact, TimelineEntry, human_secs,
};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use sqlx::types::Json;
use uuid::Uuid;

use crate::access::actor::Actor;
use crate::error::Error;
use crate::monitor::series::split_probes;
use crate::respond::incidents::Author;
use crate::storage::postmortems::{self as store, PostmortemRow};
use crate::storage::{catalog, changes as changes_store, guidance as guidance_store, incidents as incidents_store};
use timings::Facts;

/// How far before the first signal a change is still offered as the trigger.
const TRIGGER_LOOKBACK: Duration = Duration::hours(24);
/// Frozen charts span the incident with this much on either side at least (a tenth of its
/// length when that is more), so the normal before and after shows.
const MIN_PAD: Duration = Duration::minutes(5);
/// The first failing check is looked for this far before the started time.
const FAILURE_LOOKBACK: Duration = Duration::minutes(30);
const CHART: ChartSize = ChartSize { width: 960, height: 180 };
const MAX_SECTION: usize = 20_000;
const MAX_COMMENT: usize = 10_000;
const MAX_ACTION_ITEMS: usize = 100;
/// A ten-year override is a typo.
const MAX_OVERRIDE_SECS: i64 = 10 * 365 * 86_400;

#[derive(Clone)]
pub struct Postmortems {
    pub pool: PgPool,
}

/// The incident's start and end for metrics, impact and charts.
fn span(incident: &Incident, metrics: &[Metric], now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = metrics
        .iter()
        .find_map(|m| m.from.as_ref().map(|f| f.at))
        .or(incident.times.started.as_ref().map(|s| s.at))
        .unwrap_or(incident.created_at);
    let end = incident.times.resolved.as_ref().map(|s| s.at).unwrap_or(now).max(start);
    (start, end)
}

/// A frozen chart's input: the series up to the window's end, the incident band, the markers.
fn frozen_input<'a>(
    s: &'a app::model::Series,
    to: DateTime<Utc>,
    bands: &'a [Band],
    markers: &'a [Marker],
    changes: &'a [ChangeMark],
) -> ChartInput<'a> {
    ChartInput { from: s.from, to, step_secs: s.step_secs, points: &s.points, bands, markers, changes }
}

fn padded(start: DateTime<Utc>, end: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let pad = ((end - start) / 10).max(MIN_PAD);
    (start - pad, end + pad)
}

/// When every probe that changed state in the window ended it up: the last of those recoveries.
/// `None` while any of them is still failing, or when none changed at all.
pub fn recovered_at(changes: &[(Uuid, DateTime<Utc>, String)]) -> Option<DateTime<Utc>> {
    let mut last: HashMap<Uuid, (DateTime<Utc>, &str)> = HashMap::new();
    for (probe, at, to) in changes {
        last.insert(*probe, (*at, to.as_str()));
    }
    if last.is_empty() || last.values().any(|(_, to)| *to != "up") {
        return None;
    }
    last.values().map(|(at, _)| *at).max()
}

fn hm(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") }
}

/// What the document says before anyone writes: the facts the data holds.
fn prefill(
    incident: &Incident,
    impact: &Impact,
    metrics: &[Metric],
    timeline: &[TimelineEntry],
    hypotheses: &[app::model::Hypothesis],
    steps: &[(String, String, app::model::Tick)],
    trigger: Option<(&ChangeEvent, DateTime<Utc>)>,
) -> PostmortemDoc {
    let mut s = BTreeMap::new();
    s.insert(Section::Summary, incident.summary.clone());
    if let Some((c, signal)) = trigger {
        let who = c.author.as_deref().map(|a| format!(" by {a}")).unwrap_or_default();
        let link = c.link.as_deref().map(|l| format!(" (<{l}>)")).unwrap_or_default();
        // Without a version the headline already quotes the title.
        let title = if c.version.is_some() { format!(" — {}", c.title) } else { String::new() };
        s.insert(
            Section::Trigger,
            format!(
                "The nearest recorded change before the first signal: **{}**{who} at {} UTC, {} it{title}{link}. \
                 Confirm that it set the incident off, or replace this.",
                c.headline(),
                hm(c.at),
                app::model::lead_time(c.at, signal),
            ),
        );
    }
    let mut text = String::new();
    if let Some(d) = impact.duration_secs {
        let _ = writeln!(text, "- **Duration:** {}", human_secs(d));
    }
    for svc in &impact.services {
        let pct = svc.error_pct.map(|p| format!(" ({p:.1} %)")).unwrap_or_default();
        let _ = writeln!(text, "- **{}:** {} of {} failed{pct}", svc.name, svc.failed, plural(svc.checks, "check"));
    }
    s.insert(Section::Impact, text);
    if let Some(from) = metrics.first().and_then(|m| m.from.as_ref()) {
        let mut text = format!("The {} at {} UTC ({}).", from.what, hm(from.at), from.source);
        if let Some(to) = metrics.first().and_then(|m| m.to.as_ref()) {
            let _ = write!(text, " Detected at {} UTC ({}).", hm(to.at), to.source);
        }
        s.insert(Section::Detection, text);
    }
    let actions: Vec<String> = timeline
        .iter()
        .filter(|e| e.kind == EntryKind::Action && e.deleted.is_none())
        .map(|e| format!("- {} UTC, {}: {}", hm(e.happened_at), e.author, e.text.replace('\n', " ")))
        .collect();
    if !actions.is_empty() {
        s.insert(Section::Mitigation, format!("Actions taken:\n\n{}\n", actions.join("\n")));
    }
    let hyp: Vec<String> = hypotheses
        .iter()
        .map(|h| {
            let evidence = if h.evidence.is_empty() { String::new() } else { format!(" ({})", h.evidence) };
            format!("- **{}:** {}{evidence}", h.status.as_str().replace('_', " "), h.text)
        })
        .collect();
    s.insert(Section::Hypotheses, hyp.join("\n"));
    let ticked: Vec<String> = steps
        .iter()
        .filter(|(_, _, t)| t.done)
        .map(|(checklist, step, t)| {
            let finding = if t.finding.is_empty() { String::new() } else { format!(": {}", t.finding) };
            format!("- **{checklist}** › {step}, by {} at {} UTC{finding}", t.by, hm(t.at))
        })
        .collect();
    s.insert(Section::ChecklistSteps, ticked.join("\n"));
    s.retain(|_, v| !v.trim().is_empty());
    PostmortemDoc { sections: s, action_items: Vec::new() }
}

fn incident_ref(i: &Incident) -> IncidentRef {
    IncidentRef {
        id: i.id,
        number: i.number,
        title: i.title.clone(),
        severity: i.severity,
        status: i.status,
        commander: i.commander.as_ref().map(|c| c.email.clone()),
    }
}

fn check_action_items(items: &mut [ActionItem]) -> Result<(), Error> {
    if items.len() > MAX_ACTION_ITEMS {
        return Err(Error::invalid("action_items", format!("at most {MAX_ACTION_ITEMS}")));
    }
    for (i, item) in items.iter_mut().enumerate() {
        let title = item.title.trim();
        if title.is_empty() || title.chars().count() > 300 || title.chars().any(char::is_control) {
            return Err(Error::invalid(format!("action_items[{i}].title"), "must be 1–300 characters on one line"));
        }
        item.title = title.to_string();
        if item.owner.chars().count() > 200 {
            return Err(Error::invalid(format!("action_items[{i}].owner"), "must be at most 200 characters"));
        }
        if let Some(link) = &item.link {
            let ok = url::Url::parse(link).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) && link.len() <= 2000;
            if !ok {
                return Err(Error::invalid(format!("action_items[{i}].link"), "must be an http or https URL"));
            }
        }
        item.id.get_or_insert_with(Uuid::new_v4);
    }
    Ok(())
}

impl Postmortems {
    /// The facts the metrics are computed from.
    async fn facts(&self, incident: &Incident) -> Result<Facts, Error> {
        let probes: Vec<Uuid> =
            store::incident_probes(&self.pool, incident.id).await?.into_iter().map(|(id, _)| id).collect();
        let now = Utc::now();
        let started = incident.times.started.as_ref().map(|s| s.at).unwrap_or(incident.created_at);
        let until = incident.times.resolved.as_ref().or(incident.times.detected.as_ref()).map(|s| s.at).unwrap_or(now);
        let first_failure = if probes.is_empty() {
            None
        } else {
            store::first_failure(&self.pool, &probes, started - FAILURE_LOOKBACK, until.max(started)).await?
        };
        let from = first_failure.as_ref().map(|(at, _)| *at).unwrap_or(started).min(started);
        let end = incident.times.resolved.as_ref().map(|s| s.at).unwrap_or(now);
        let changes = store::changes_between(&self.pool, &probes, from, end).await?;
        let reopened = store::reopen_count(&self.pool, incident.id).await?;
        Ok(Facts {
            times: incident.times.clone(),
            first_failure,
            recovered: recovered_at(&changes),
            reopened: u32::try_from(reopened).unwrap_or(u32::MAX),
        })
    }

    /// Checks and failures of each affected service between start and end.
    async fn impact(&self, incident: &Incident, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Impact, Error> {
        let mut services = Vec::new();
        for svc in &incident.services {
            let (traffic, _) = split_probes(&catalog::list_probes(&self.pool, Some(svc.id)).await?);
            let (mut checks, mut failed) = (0u64, 0f64);
            if !traffic.is_empty() && end > start {
                let s = crate::monitor::series::series_of(&self.pool, &traffic, start, end, None).await?;
                for p in &s.points {
                    checks += p.count;
                    failed += p.error_pct.unwrap_or(0.0) * p.count as f64 / 100.0;
                }
            }
            let failed = failed.round() as u64;
            services.push(ServiceImpact {
                id: svc.id,
                name: svc.name.clone(),
                checks,
                failed,
                error_pct: (checks > 0).then(|| failed as f64 * 100.0 / checks as f64),
            });
        }
        Ok(Impact { duration_secs: Some((end - start).num_seconds()), services })
    }

    /// The affected services' charts over the window, with the incident as a band and the
    /// timeline as markers, drawn by the dashboard's chart functions.
    async fn freeze(
        &self,
        incident: &Incident,
        window: (DateTime<Utc>, DateTime<Utc>),
        span: (DateTime<Utc>, DateTime<Utc>),
        timeline: &[TimelineEntry],
    ) -> Result<Vec<FrozenChart>, Error> {
        let bands = [Band { from: span.0, to: span.1, label: format!("#{}", incident.number) }];
        let markers: Vec<Marker> = timeline
            .iter()
            .filter(|e| e.deleted.is_none() && e.happened_at >= window.0 && e.happened_at <= window.1)
            .map(|e| Marker { at: e.happened_at })
            .collect();
        let mut charts = Vec::new();
        for svc in &incident.services {
            let (traffic, gauges) = split_probes(&catalog::list_probes(&self.pool, Some(svc.id)).await?);
            let mut add = |kind: FrozenChartKind, svg: String| {
                let position = charts.len() as i32;
                charts.push(FrozenChart { position, service_id: svc.id, service: svc.name.clone(), kind, svg });
            };
            let events = changes_store::list(&self.pool, Some(&[svc.id]), window.0, window.1, 200).await?;
            let changes = ChangeMark::of(&events);
            if !traffic.is_empty() {
                let s = crate::monitor::series::series_of(&self.pool, &traffic, window.0, window.1, None).await?;
                let input = frozen_input(&s, window.1, &bands, &markers, &changes);
                add(FrozenChartKind::Latency, app::charts::latency::render_svg(&input, CHART));
                add(FrozenChartKind::Errors, app::charts::errors::render_svg(&input, CHART));
            }
            if !gauges.is_empty() {
                let s = crate::monitor::series::series_of(&self.pool, &gauges, window.0, window.1, None).await?;
                let input = frozen_input(&s, window.1, &bands, &markers, &changes);
                add(FrozenChartKind::Pool, app::charts::pool::render_svg(&input, CHART));
            }
        }
        Ok(charts)
    }

    /// Metrics as of now, keeping the overrides already made.
    async fn current_metrics(&self, incident: &Incident, stored: &[Metric]) -> Result<Vec<Metric>, Error> {
        let mut fresh = timings::compute(&self.facts(incident).await?);
        for m in &mut fresh {
            m.overridden = stored.iter().find(|s| s.kind == m.kind).and_then(|s| s.overridden.clone());
        }
        Ok(fresh)
    }

    async fn incident(&self, id: Uuid) -> Result<Incident, Error> {
        incidents_store::get_incident(&self.pool, id).await?.ok_or(Error::NotFound("incident"))
    }

    pub async fn for_incident(&self, incident: Uuid) -> Result<Option<Uuid>, Error> {
        Ok(store::id_for_incident(&self.pool, incident).await?)
    }

    /// Creates the incident's postmortem, or returns the one it has (`false`).
    pub async fn create(&self, actor: &Actor, incident_id: Uuid) -> Result<(Postmortem, bool), Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Responder, "writing a postmortem")?;
        if let Some(id) = store::id_for_incident(&self.pool, incident_id).await? {
            return Ok((self.get(actor, id).await?, false));
        }
        let incident = self.incident(incident_id).await?;
        let metrics = timings::compute(&self.facts(&incident).await?);
        let now = Utc::now();
        let (start, end) = span(&incident, &metrics, now);
        let window = padded(start, end);
        let timeline = incidents_store::list_entries(&self.pool, incident.id, false).await?;
        let impact = self.impact(&incident, start, end).await?;
        let charts = self.freeze(&incident, window, (start, end), &timeline).await?;
        let hypotheses = guidance_store::hypotheses(&self.pool, incident.id).await?;
        let checklists = guidance_store::pin(&self.pool, incident.id, &[]).await?;
        let steps: Vec<(String, String, app::model::Tick)> = guidance_store::ticks(&self.pool, incident.id)
            .await?
            .into_iter()
            .map(|(c, s, t)| {
                let list = checklists.iter().find(|l| l.def.id == c);
                let title = list.map(|l| l.def.title.clone()).unwrap_or_else(|| c.clone());
                let question = list
                    .and_then(|l| l.def.steps.iter().find(|st| st.id == s))
                    .map(|st| st.question.clone())
                    .unwrap_or(s);
                (title, question, t)
            })
            .collect();
        // The nearest change in the day before the first signal is the first suspect.
        let services: Vec<Uuid> = incident.services.iter().map(|s| s.id).collect();
        let nearest = changes_store::list(&self.pool, Some(&services), start - TRIGGER_LOOKBACK, start, 1).await?;
        let trigger = nearest.first().map(|c| (c, start));
        let doc = prefill(&incident, &impact, &metrics, &timeline, &hypotheses, &steps, trigger);
        let id = Uuid::new_v4();
        let row = PostmortemRow {
            postmortem_id: id,
            incident_id: incident.id,
            status: PostmortemStatus::Draft.as_str().into(),
            revision: 1,
            doc: Json(doc),
            metrics: Json(metrics),
            impact: Json(impact),
            window_from: window.0,
            window_to: window.1,
            timeline: None,
            created_by: author.name.clone(),
            created_at: now,
            updated_by: author.name.clone(),
            updated_at: now,
            published_by: None,
            published_at: None,
        };
        let mut tx = self.pool.begin().await?;
        if !store::insert(&mut tx, &row, &charts).await? {
            // Someone else created it meanwhile: theirs stands.
            tx.rollback().await?;
            let existing =
                store::id_for_incident(&self.pool, incident_id).await?.ok_or(Error::NotFound("postmortem"))?;
            return Ok((self.get(actor, existing).await?, false));
        }
        actor
            .audit(&mut *tx, "postmortem.create", id.to_string(), serde_json::json!({ "incident": incident.id }))
            .await?;
        tx.commit().await?;
        Ok((self.get(actor, id).await?, true))
    }

    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<Postmortem, Error> {
        let row = store::get(&self.pool, id).await?.ok_or(Error::NotFound("postmortem"))?;
        self.assemble(actor, row).await
    }

    async fn assemble(&self, actor: &Actor, row: PostmortemRow) -> Result<Postmortem, Error> {
        let incident = self.incident(row.incident_id).await?;
        let status = row.status();
        // A published document is as it was published; a draft follows the incident.
        let (metrics, impact) = if status == PostmortemStatus::Published {
            (row.metrics.0.clone(), row.impact.0.clone())
        } else {
            let metrics = self.current_metrics(&incident, &row.metrics.0).await?;
            let (start, end) = span(&incident, &metrics, Utc::now());
            let impact = self.impact(&incident, start, end).await?;
            (metrics, impact)
        };
        let (timeline, timeline_frozen) = match &row.timeline {
            Some(t) => (t.0.clone(), true),
            None => {
                let sees_deleted = Author::of(&actor.principal).is_ok_and(|a| a.role >= Role::Commander);
                (incidents_store::list_entries(&self.pool, row.incident_id, sees_deleted).await?, false)
            }
        };
        let mut comments = store::comments(&self.pool, row.postmortem_id).await?;
        for c in &mut comments {
            c.html = app::markdown::render(&c.text);
        }
        let html = Section::ALL.iter().map(|s| (*s, app::markdown::render(row.doc.0.section(*s)))).collect();
        Ok(Postmortem {
            id: row.postmortem_id,
            incident: incident_ref(&incident),
            status,
            revision: row.revision,
            html,
            metrics,
            impact,
            window_from: row.window_from,
            window_to: row.window_to,
            charts: store::charts(&self.pool, row.postmortem_id).await?,
            timeline,
            timeline_frozen,
            comments,
            revisions: store::revisions(&self.pool, row.postmortem_id).await?,
            doc: row.doc.0,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_by: row.updated_by,
            updated_at: row.updated_at,
            published_by: row.published_by,
            published_at: row.published_at,
        })
    }

    pub async fn list(&self) -> Result<Vec<PostmortemSummary>, Error> {
        let rows = store::list(&self.pool).await?;
        let incidents: HashMap<Uuid, Incident> =
            incidents_store::list_incidents(&self.pool, &app::model::IncidentFilter::default(), 5000)
                .await?
                .into_iter()
                .map(|i| (i.id, i))
                .collect();
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let incident = incidents.get(&r.incident_id)?;
                let value = |k: MetricKind| r.metrics.0.iter().find(|m| m.kind == k).and_then(Metric::value_secs);
                let started_at =
                    r.metrics.0.iter().find_map(|m| m.from.as_ref().map(|f| f.at)).unwrap_or_else(|| {
                        incident.times.started.as_ref().map(|s| s.at).unwrap_or(incident.created_at)
                    });
                Some(PostmortemSummary {
                    id: r.postmortem_id,
                    incident: incident_ref(incident),
                    status: r.status(),
                    revision: r.revision,
                    started_at,
                    time_to_detect_secs: value(MetricKind::TimeToDetect),
                    time_to_resolve_secs: value(MetricKind::TimeToResolve),
                    updated_at: r.updated_at,
                    published_at: r.published_at,
                })
            })
            .collect())
    }

    /// Edits, moves through review, overrides metrics, publishes or amends.
    pub async fn update(&self, actor: &Actor, id: Uuid, patch: PostmortemPatch) -> Result<Postmortem, Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Responder, "editing a postmortem")?;
        let mut patch = patch;
        let mut tx = self.pool.begin().await?;
        let mut row = store::lock(&mut tx, id).await?.ok_or(Error::NotFound("postmortem"))?;
        let incident = self.incident(row.incident_id).await?;
        let mut changes: Vec<String> = Vec::new();
        let mut published = false;

        if let Some(reason) = patch.amend.take() {
            author.require(Role::Commander, "amending a published postmortem")?;
            if row.status() != PostmortemStatus::Published {
                return Err(Error::Conflict {
                    field: Some("amend".into()),
                    message: "only a published postmortem is amended; a draft is edited directly".into(),
                });
            }
            let reason = reason.trim();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(Error::invalid("amend", "give the reason for the amendment (1–500 characters)"));
            }
            store::insert_revision(&mut tx, &row, &author.name, reason).await?;
            row.revision += 1;
            row.status = PostmortemStatus::Draft.as_str().into();
            row.timeline = None;
            row.published_by = None;
            row.published_at = None;
            changes.push(format!("amended: revision {}", row.revision));
        }
        let edits = patch.sections.is_some() || patch.action_items.is_some() || patch.overrides.is_some();
        if row.status() == PostmortemStatus::Published && (edits || patch.status.is_some()) {
            return Err(Error::Conflict {
                field: None,
                message: format!(
                    "a published postmortem is read-only: amend it (\"amend\": the reason) to start revision {}",
                    row.revision + 1
                ),
            });
        }
        if let Some(sections) = patch.sections.take() {
            for (section, text) in sections {
                if text.chars().count() > MAX_SECTION {
                    return Err(Error::invalid(
                        format!("sections.{}", section.as_str()),
                        format!("must be at most {MAX_SECTION} characters"),
                    ));
                }
                if text.trim().is_empty() {
                    row.doc.0.sections.remove(&section);
                } else {
                    row.doc.0.sections.insert(section, text);
                }
                changes.push(format!("section {}", section.as_str()));
            }
        }
        if let Some(mut items) = patch.action_items.take() {
            check_action_items(&mut items)?;
            row.doc.0.action_items = items;
            changes.push("action items".into());
        }
        if let Some(overrides) = patch.overrides.take() {
            author.require(Role::Commander, "overriding a metric")?;
            let mut metrics = self.current_metrics(&incident, &row.metrics.0).await?;
            for (kind, o) in overrides {
                let field = format!("overrides.{}", kind.as_str());
                let Some(m) = metrics.iter_mut().find(|m| m.kind == kind) else { continue };
                m.overridden = match o {
                    None => None,
                    Some(o) => {
                        if !(0..=MAX_OVERRIDE_SECS).contains(&o.secs) {
                            return Err(Error::invalid(format!("{field}.secs"), "must be 0 or more seconds"));
                        }
                        let reason = o.reason.trim();
                        if reason.is_empty() || reason.chars().count() > 500 {
                            return Err(Error::invalid(
                                format!("{field}.reason"),
                                "say why the computed value is wrong (1–500 characters)",
                            ));
                        }
                        Some(MetricOverride {
                            secs: o.secs,
                            reason: reason.into(),
                            by: author.name.clone(),
                            at: Utc::now(),
                        })
                    }
                };
                changes.push(format!("override {}", kind.as_str()));
            }
            row.metrics = Json(metrics);
        }
        if let Some(next) = patch.status.take() {
            let now_status = row.status();
            match (now_status, next) {
                (a, b) if a == b => {}
                (PostmortemStatus::Draft, PostmortemStatus::InReview)
                | (PostmortemStatus::InReview, PostmortemStatus::Draft) => {}
                (PostmortemStatus::InReview, PostmortemStatus::Published) => {
                    author.require(Role::Commander, "publishing a postmortem")?;
                    if incident.status.is_open() {
                        return Err(Error::Conflict {
                            field: Some("status".into()),
                            message: format!("resolve incident #{} before publishing its postmortem", incident.number),
                        });
                    }
                    // Published is final: the metrics, impact and timeline as they are now.
                    let metrics = self.current_metrics(&incident, &row.metrics.0).await?;
                    let (start, end) = span(&incident, &metrics, Utc::now());
                    row.impact = Json(self.impact(&incident, start, end).await?);
                    // Written while the incident was still open, the charts stop before its end:
                    // drawn again now, while the results are still kept.
                    let window = padded(start, end);
                    if row.window_to < window.1 {
                        let timeline = incidents_store::list_entries(&self.pool, incident.id, false).await?;
                        let charts = self.freeze(&incident, window, (start, end), &timeline).await?;
                        store::replace_charts(&mut tx, id, window, &charts).await?;
                        changes.push("charts redrawn to the resolution".into());
                    }
                    row.metrics = Json(metrics);
                    row.timeline = Some(Json(incidents_store::list_entries(&self.pool, incident.id, false).await?));
                    row.published_by = Some(author.name.clone());
                    row.published_at = Some(Utc::now());
                    published = true;
                }
                (PostmortemStatus::Draft, PostmortemStatus::Published) => {
                    return Err(Error::Conflict {
                        field: Some("status".into()),
                        message: "send the postmortem for review (in_review) before publishing it".into(),
                    });
                }
                (a, b) => {
                    return Err(Error::Conflict {
                        field: Some("status".into()),
                        message: format!("a postmortem cannot go from {} to {}", a.as_str(), b.as_str()),
                    });
                }
            }
            if now_status != next {
                row.status = next.as_str().into();
                changes.push(format!("status {}", next.as_str()));
            }
        }
        if changes.is_empty() {
            tx.rollback().await?;
            return self.get(actor, id).await;
        }
        row.updated_by = author.name.clone();
        store::save(&mut tx, &row).await?;
        actor.audit(&mut *tx, "postmortem.update", id.to_string(), serde_json::json!({ "changes": changes })).await?;
        if published {
            let facts = crate::respond::notify::events::IncidentFacts {
                id: incident.id,
                title: incident.title.clone(),
                severity: incident.severity,
                status: incident.status,
                commander: incident.commander.as_ref().map(|c| c.email.clone()),
            };
            crate::respond::notify::events::postmortem_published(&mut tx, id, &facts, &author.name).await?;
        }
        tx.commit().await?;
        self.get(actor, id).await
    }

    pub async fn comment(&self, actor: &Actor, id: Uuid, input: &NewComment) -> Result<PostmortemComment, Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Responder, "commenting on a postmortem")?;
        let text = input.text.trim();
        if text.is_empty() || text.chars().count() > MAX_COMMENT {
            return Err(Error::invalid("text", format!("must be 1–{MAX_COMMENT} characters")));
        }
        let row = store::get(&self.pool, id).await?.ok_or(Error::NotFound("postmortem"))?;
        let comment = PostmortemComment {
            id: Uuid::new_v4(),
            revision: row.revision,
            section: input.section,
            text: text.to_string(),
            html: app::markdown::render(text),
            author: author.name,
            created_at: Utc::now(),
        };
        store::insert_comment(&self.pool, id, &comment).await?;
        Ok(comment)
    }

    /// One frozen chart as a standalone SVG file (light theme colours inlined).
    pub async fn chart_svg(&self, id: Uuid, position: i32) -> Result<String, Error> {
        store::get(&self.pool, id).await?.ok_or(Error::NotFound("postmortem"))?;
        let chart = store::charts(&self.pool, id)
            .await?
            .into_iter()
            .find(|c| c.position == position)
            .ok_or(Error::NotFound("chart"))?;
        Ok(export::standalone_svg(&chart.svg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 14, 0, 0).single().unwrap() + Duration::minutes(min)
    }

    #[test]
    fn recovery_is_the_last_probe_back_up_and_only_when_all_are() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut changes =
            vec![(a, at(1), "down".to_string()), (b, at(2), "degraded".to_string()), (a, at(10), "up".to_string())];
        assert_eq!(recovered_at(&changes), None, "b is still degraded");
        changes.push((b, at(12), "up".into()));
        assert_eq!(recovered_at(&changes), Some(at(12)));
        changes.push((a, at(15), "down".into()));
        assert_eq!(recovered_at(&changes), None, "a failed again");
        assert_eq!(recovered_at(&[]), None);
    }

    #[test]
    fn charts_are_padded_by_a_tenth_or_five_minutes() {
        assert_eq!(padded(at(0), at(10)), (at(-5), at(15)));
        assert_eq!(padded(at(0), at(100)), (at(-10), at(110)));
    }

    #[test]
    fn bad_action_items_name_the_field() {
        let item = |title: &str, link: Option<&str>| ActionItem {
            id: None,
            title: title.into(),
            owner: String::new(),
            due: None,
            status: Default::default(),
            link: link.map(str::to_string),
        };
        let field = |mut items: Vec<ActionItem>| match check_action_items(&mut items) {
            Err(Error::Invalid { field, .. }) => field,
            _ => None,
        };
        assert_eq!(field(vec![item("ok", None), item(" ", None)]).as_deref(), Some("action_items[1].title"));
        assert_eq!(field(vec![item("ok", Some("javascript:alert(1)"))]).as_deref(), Some("action_items[0].link"));
        let mut good = vec![item("Alert on pool waiting", Some("https://tracker.example/T-1"))];
        assert!(check_action_items(&mut good).is_ok());
        assert!(good[0].id.is_some(), "ids are assigned");
    }
}
