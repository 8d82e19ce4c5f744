//! From the live signal to symptoms, checklists, evidence and recovery. Everything here is a pure
//! function of [`ServiceSignals`], so each rule is tested on synthetic series.

use app::model::{
    Binding, ChangeEvent, ChangeKind, ChartKind, Checklist, ComponentState, ErrorClass, Evidence, EvidenceStatus,
    Outcome, PoolReading, ProbeKind, ProbeResult, SeriesPoint, SuggestedHypothesis, Symptom, SymptomKind,
};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// Error rate (percent) that counts as a symptom when there is no baseline to compare with.
pub const ERROR_THRESHOLD_PCT: f64 = 5.0;
/// p95 this many times its baseline (and at least [`SLOW_MIN_MS`] above it) is slow.
pub const SLOW_RATIO: f64 = 2.0;
pub const SLOW_MIN_MS: f64 = 50.0;

/// Where a baseline came from, for the reason's wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaselineSource {
    /// The same hour on the previous days (at least three of the last seven).
    SameHour7d,
    /// The hour before the incident started (too little history for the above).
    BeforeIncident,
    /// The last hour's lower quartile (no data before the incident either).
    PreviousHour,
}

impl BaselineSource {
    fn words(self) -> &'static str {
        match self {
            Self::SameHour7d => "its 7-day baseline",
            Self::BeforeIncident => "the hour before the incident",
            Self::PreviousHour => "the last hour's usual level",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ProbeSignal {
    pub id: Uuid,
    pub name: String,
    pub kind: ProbeKind,
    pub state: Option<Outcome>,
    pub since: Option<DateTime<Utc>>,
    pub last: Option<ProbeResult>,
    /// `incidents.healthy_for_secs`: how long it must be up before recovery is confirmed.
    pub healthy_for_secs: u32,
}

/// What one affected service's data says.
#[derive(Clone, Debug)]
pub struct ServiceSignals {
    pub service_id: Uuid,
    pub service: String,
    /// Latency and errors over the observation window, oldest first.
    pub traffic: Vec<SeriesPoint>,
    pub step_secs: u64,
    /// Pool gauges over the window.
    pub pool: Vec<SeriesPoint>,
    /// From which share of the maximum the pool is saturated (see `PoolReading::saturated`).
    pub pool_saturated_at: f64,
    pub baseline_p95_ms: Option<f64>,
    pub baseline_error_pct: Option<f64>,
    pub baseline_source: BaselineSource,
    pub probes: Vec<ProbeSignal>,
    /// Results in the window, newest first.
    pub recent: Vec<ProbeResult>,
    /// Change events from an hour before the incident's start until now, oldest first.
    pub changes: Vec<ChangeEvent>,
    /// Whether the service has change events at all (in the last 30 days): without any, "no
    /// change" means nobody records them, not that nothing changed.
    pub records_changes: bool,
    /// When the incident started: what a change's lead time is measured to.
    pub incident_start: Option<DateTime<Utc>>,
}

fn hm(t: DateTime<Utc>) -> String {
    t.format("%H:%M").to_string()
}

/// The latest p95: the newest bucket with at least five checks (one slow check is not "slow"),
/// else the median of the last three buckets that have one.
fn current_p95(points: &[SeriesPoint]) -> Option<f64> {
    if let Some(v) = points.iter().rev().find(|p| p.count >= 5).and_then(|p| p.p95_ms) {
        return Some(v);
    }
    let mut last: Vec<f64> = points.iter().rev().filter_map(|p| p.p95_ms).take(3).collect();
    if last.is_empty() {
        return None;
    }
    last.sort_by(f64::total_cmp);
    Some(last[last.len() / 2])
}

/// Failed ÷ checks over the last two buckets with checks (errors that stopped a few minutes ago
/// are history, not a symptom).
fn current_error_pct(points: &[SeriesPoint]) -> Option<f64> {
    let recent: Vec<&SeriesPoint> = points.iter().rev().filter(|p| p.count > 0).take(2).collect();
    let checks: u64 = recent.iter().map(|p| p.count).sum();
    let failed: f64 = recent.iter().map(|p| p.error_pct.unwrap_or(0.0) * p.count as f64 / 100.0).sum();
    (checks > 0).then(|| failed * 100.0 / checks as f64)
}

fn latest_pool(points: &[SeriesPoint]) -> Option<PoolReading> {
    points.iter().rev().find_map(|p| p.pool.filter(|r| r.in_use.is_some() || r.waiting.is_some()))
}

/// When the trailing run of points where `bad` holds began.
fn bad_since(points: &[SeriesPoint], bad: impl Fn(&SeriesPoint) -> Option<bool>) -> Option<DateTime<Utc>> {
    let mut since = None;
    for p in points.iter().rev() {
        match bad(p) {
            Some(true) => since = Some(p.at),
            Some(false) => break,
            None => {}
        }
    }
    since
}

fn is_slow(p95: f64, baseline: f64) -> bool {
    p95 >= baseline * SLOW_RATIO && p95 - baseline >= SLOW_MIN_MS
}

fn is_erroring(pct: f64, baseline: Option<f64>) -> bool {
    pct >= ERROR_THRESHOLD_PCT && baseline.is_none_or(|b| pct >= 2.0 * b)
}

/// Probes that say whether the service answers at all (readiness and pool scrapes say why not).
fn liveness(p: &ProbeSignal) -> bool {
    !matches!(p.kind, ProbeKind::Readiness | ProbeKind::Metrics)
}

/// Kinds that test the network path to a target rather than its application.
fn path_kind(k: ProbeKind) -> bool {
    matches!(k, ProbeKind::Tcp | ProbeKind::Tls | ProbeKind::Dns | ProbeKind::Icmp | ProbeKind::Grpc)
}

/// Failures of the path itself: no name, no connection, no handshake, no answer.
fn path_failure(e: ErrorClass) -> bool {
    matches!(e, ErrorClass::Dns | ErrorClass::Connect | ErrorClass::Tls | ErrorClass::Timeout)
}

/// Everything wrong with one service now, strongest first.
pub fn detect(s: &ServiceSignals) -> Vec<Symptom> {
    let mut out = Vec::new();
    let symptom = |kind, reason: String, strength: f64, since| Symptom {
        kind,
        service: s.service.clone(),
        reason,
        strength: strength.clamp(0.0, 1.0),
        since,
    };
    for p in s.probes.iter().filter(|p| liveness(p) && p.state == Some(Outcome::Down)) {
        let why = p
            .last
            .as_ref()
            .and_then(|r| {
                let class = r.error?;
                Some(format!(
                    " ({}{})",
                    class.as_str(),
                    r.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
                ))
            })
            .unwrap_or_default();
        let since = p.since.map(|t| format!(" since {}", hm(t))).unwrap_or_default();
        out.push(symptom(SymptomKind::Down, format!("{} is down{since}{why}", p.name), 1.0, p.since));
    }
    for p in s.probes.iter().filter(|p| p.kind == ProbeKind::Readiness) {
        let failing: Vec<String> = p
            .last
            .iter()
            .flat_map(|r| r.components.iter())
            .filter(|c| c.state == ComponentState::Down)
            .map(|c| format!("{} down{}", c.name, c.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()))
            .collect();
        if !failing.is_empty() {
            out.push(symptom(SymptomKind::NotReady, format!("readiness: {}", failing.join(", ")), 0.9, p.since));
        } else if p.state == Some(Outcome::Down) {
            out.push(symptom(SymptomKind::NotReady, format!("{} is failing", p.name), 0.8, p.since));
        }
    }
    for p in s.probes.iter().filter(|p| path_kind(p.kind)) {
        let Some(r) = &p.last else { continue };
        let since = p.since.map(|t| format!(" since {}", hm(t))).unwrap_or_default();
        let lost = r.echo.map(|e| e.loss_pct()).filter(|l| *l > 0.0);
        let confirmed_bad = matches!(p.state, Some(Outcome::Down | Outcome::Degraded));
        if p.state == Some(Outcome::Down) && r.error.is_some_and(path_failure) {
            let what = r.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            let class = r.error.map_or("", ErrorClass::as_str);
            out.push(symptom(
                SymptomKind::Unreachable,
                format!("{} fails ({class}{what}){since}", p.name),
                0.9,
                p.since,
            ));
        } else if let (true, Some(loss)) = (confirmed_bad, lost) {
            out.push(symptom(
                SymptomKind::Unreachable,
                format!("{} loses {loss:.0} % of its echoes{since}", p.name),
                0.4 + loss / 200.0,
                p.since,
            ));
        }
    }
    for p in &s.probes {
        let Some(r) = p.last.as_ref().filter(|r| r.error == Some(ErrorClass::CertExpiry)) else { continue };
        let days = r.cert_days_left.map_or_else(|| "soon".to_string(), |d| format!("in {d} days"));
        out.push(symptom(
            SymptomKind::CertExpiring,
            format!("the certificate {} checks expires {days}", p.name),
            0.6,
            None,
        ));
    }
    if let Some(pct) = current_error_pct(&s.traffic)
        && is_erroring(pct, s.baseline_error_pct)
    {
        let base = s.baseline_error_pct.map(|b| format!(" (baseline {b:.1} %)")).unwrap_or_default();
        let status_share =
            five_xx_share(&s.recent).map(|x| format!("; {x:.0} % of failed checks are 5xx")).unwrap_or_default();
        let since = bad_since(&s.traffic, |p| p.error_pct.map(|e| is_erroring(e, s.baseline_error_pct)));
        let since_words = since.map(|t| format!(" since {}", hm(t))).unwrap_or_default();
        out.push(symptom(
            SymptomKind::Errors,
            format!("error rate {pct:.1} % over the last minutes{base}{since_words}{status_share}"),
            0.3 + pct / 40.0,
            since,
        ));
    }
    if let Some(r) = latest_pool(&s.pool)
        && r.saturated(s.pool_saturated_at)
    {
        let since = bad_since(&s.pool, |p| p.pool.map(|r| r.saturated(s.pool_saturated_at)));
        let since_words = since.map(|t| format!(" since {}", hm(t))).unwrap_or_default();
        let queueing = r.waiting.is_some_and(|w| w > 0.0);
        out.push(symptom(
            SymptomKind::PoolSaturated,
            format!("pool {}{since_words}", r.describe()),
            // Requests queueing is the strong sign; nearly full without a queue only a weak one.
            if queueing { 1.0 } else { 0.5 },
            since,
        ));
    }
    if let (Some(p95), Some(base)) = (current_p95(&s.traffic), s.baseline_p95_ms)
        && is_slow(p95, base)
    {
        let ratio = p95 / base.max(0.001);
        let since = bad_since(&s.traffic, |p| p.p95_ms.map(|v| is_slow(v, base)));
        let since_words = since.map(|t| format!(" since {}", hm(t))).unwrap_or_default();
        out.push(symptom(
            SymptomKind::Slow,
            format!("p95 is {ratio:.1}× {} ({p95:.0} ms against {base:.0} ms){since_words}", s.baseline_source.words()),
            0.4 + ratio / 20.0,
            since,
        ));
    }
    out.sort_by(|a, b| b.strength.total_cmp(&a.strength));
    out
}

fn five_xx_share(recent: &[ProbeResult]) -> Option<f64> {
    let failed: Vec<&ProbeResult> = recent.iter().filter(|r| r.outcome != Outcome::Up).collect();
    if failed.is_empty() {
        return None;
    }
    let five = failed.iter().filter(|r| r.status.is_some_and(|s| s >= 500)).count();
    Some(five as f64 * 100.0 / failed.len() as f64)
}

/// How much a symptom says about which checklist fits: specific symptoms more than general ones.
fn specificity(k: SymptomKind) -> f64 {
    match k {
        SymptomKind::PoolSaturated | SymptomKind::NotReady | SymptomKind::Unreachable => 1.2,
        SymptomKind::CertExpiring => 1.2,
        SymptomKind::Down => 1.1,
        SymptomKind::Errors => 1.0,
        SymptomKind::Slow => 0.8,
    }
}

/// Weight of a checklist's n-th listed symptom.
const POSITION: [f64; 4] = [1.0, 0.6, 0.4, 0.3];

/// The checklists that answer the symptoms, most likely first: (id, score, reason). Those that
/// answer none are left out.
pub fn choose(library: &[Checklist], symptoms: &[Symptom]) -> Vec<(String, f64, String)> {
    let mut chosen: Vec<(String, f64, String, i32)> = library
        .iter()
        .filter_map(|c| {
            let mut score = 0.0;
            let mut why = Vec::new();
            for (i, kind) in c.def.symptoms.iter().enumerate() {
                let Some(best) =
                    symptoms.iter().filter(|s| s.kind == *kind).max_by(|a, b| a.strength.total_cmp(&b.strength))
                else {
                    continue;
                };
                score += POSITION.get(i).copied().unwrap_or(0.2) * specificity(*kind) * best.strength;
                why.push(format!("{}: {}", kind.label(), best.reason));
            }
            (score > 0.0).then(|| (c.def.id.clone(), score, why.join("; "), c.def.priority))
        })
        .collect();
    chosen.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.3.cmp(&a.3)).then(a.0.cmp(&b.0)));
    chosen.into_iter().map(|(id, score, why, _)| (id, score, why)).collect()
}

/// Likely causes from the seeds' failure modes, strongest symptom first, at most three.
/// A change shortly before the start is the first suspect: one hypothesis for the newest change
/// of each service.
pub fn suggest_changes(services: &[ServiceSignals]) -> Vec<SuggestedHypothesis> {
    services
        .iter()
        .filter_map(|s| {
            let c = s.changes.iter().rev().find(|c| s.incident_start.is_none_or(|start| c.at <= start))?;
            Some(SuggestedHypothesis {
                text: format!("The {} set it off", change_words(c, s.incident_start)),
                verify: "the charts before and after its marker; the errors of the release; roll it back if the failures started with it".into(),
            })
        })
        .collect()
}

pub fn suggest(symptoms: &[Symptom]) -> Vec<SuggestedHypothesis> {
    let mut out: Vec<SuggestedHypothesis> = Vec::new();
    let h = |t: &str, v: &str| SuggestedHypothesis { text: t.into(), verify: v.into() };
    for s in symptoms {
        let ideas = match s.kind {
            SymptomKind::PoolSaturated => vec![
                h(
                    "Connection pool saturated: requests wait for a database connection",
                    "pool chart: in use at max, waiting > 0; pg_stat_activity against max_connections",
                ),
                h(
                    "Slow queries or lock contention hold connections",
                    "pg_stat_activity ordered by running time; pg_locks where not granted",
                ),
            ],
            SymptomKind::Slow => vec![
                h(
                    "Slow database queries or lock contention",
                    "pg_stat_statements by mean time; EXPLAIN ANALYZE of the slowest",
                ),
                h(
                    "Connection pool saturated: requests wait for a database connection",
                    "pool chart: in use at max, waiting > 0",
                ),
                h(
                    "A downstream dependency is slow, causing timeouts",
                    "traces: which span grew; the dependency's own latency",
                ),
            ],
            SymptomKind::Errors => vec![
                h(
                    "An unhandled error path in recently shipped code",
                    "logs of the failed request ids; the last deploy",
                ),
                h("The database cannot be reached", "readiness components; connect from the service's network"),
                h("The schema is not migrated for the running version", "the migrations table against the release"),
            ],
            SymptomKind::NotReady => vec![
                h("The database cannot be reached", "readiness components; connect from the service's network"),
                h("The schema is not migrated for the running version", "the migrations table against the release"),
            ],
            SymptomKind::Down => vec![
                h(
                    "A recent deploy or configuration change broke start-up",
                    "deploy history; the last log lines before the first failure",
                ),
                h("The process is crashing or killed for memory", "restart count and OOMKilled in the pod's status"),
            ],
            SymptomKind::Unreachable => vec![
                h(
                    "A firewall, route or DNS change cut the path to the target",
                    "the DNS, TCP and ICMP checks' evidence; the infrastructure change log",
                ),
                h("Nothing listens on the port any more", "connection refused in the TCP check; `ss -ltn` on the host"),
            ],
            SymptomKind::CertExpiring => vec![h(
                "Automatic certificate renewal stopped working",
                "the ACME client's log; the TLS check's days left and issuer",
            )],
        };
        for idea in ideas {
            if !out.iter().any(|o| o.text == idea.text) {
                out.push(idea);
            }
        }
    }
    out.truncate(3);
    out
}

/// "deploy v1.4.2 of shop at 14:02 by alice, 3 minutes before the start".
fn change_words(c: &ChangeEvent, start: Option<DateTime<Utc>>) -> String {
    let who = c.author.as_deref().map(|a| format!(" by {a}")).unwrap_or_default();
    let lead = start.map(|s| format!(", {} the start", app::model::lead_time(c.at, s))).unwrap_or_default();
    format!("{} at {}{who}{lead}", c.headline(), hm(c.at))
}

/// Undoing a change, in words, with what it risks: most changes go back cleanly to what worked
/// before; a migration or infrastructure change may not.
fn rollback_words(c: &ChangeEvent, start: Option<DateTime<Utc>>) -> String {
    let how = match c.kind {
        ChangeKind::Deploy => "redeploy the release before it",
        ChangeKind::Config => "restore the previous configuration",
        ChangeKind::FeatureFlag => "turn the flag back",
        ChangeKind::Migration => "high risk: a migration may not reverse cleanly; check that it has a tested down step",
        ChangeKind::Infra => {
            "high risk: undoing infrastructure work can fail in new ways; prefer a fix forward if unsure"
        }
    };
    format!("Roll back {} ({how})", change_words(c, start))
}

/// A step's evidence from every affected service.
pub fn evaluate(binding: Binding, services: &[ServiceSignals], recovery: &app::model::Recovery) -> Evidence {
    let mut status = EvidenceStatus::Unknown;
    let mut details: Vec<String> = Vec::new();
    let mut charts = Vec::new();
    let mut request_ids = Vec::new();
    let worse = |s: &mut EvidenceStatus, now: EvidenceStatus| {
        *s = match (*s, now) {
            (EvidenceStatus::Fail, _) | (_, EvidenceStatus::Fail) => EvidenceStatus::Fail,
            (EvidenceStatus::Pass, _) | (_, EvidenceStatus::Pass) => EvidenceStatus::Pass,
            _ => EvidenceStatus::Unknown,
        }
    };
    for s in services {
        match binding {
            Binding::Liveness => {
                for p in s.probes.iter().filter(|p| liveness(p)) {
                    let last = p.last.as_ref().map(describe_result).unwrap_or_else(|| "no result yet".into());
                    match p.state {
                        Some(Outcome::Down) => worse(&mut status, EvidenceStatus::Fail),
                        Some(_) => worse(&mut status, EvidenceStatus::Pass),
                        None => {}
                    }
                    details.push(format!("{}: {} ({last})", p.name, p.state.map_or("no data", Outcome::as_str)));
                }
            }
            Binding::Readiness => {
                for p in s.probes.iter().filter(|p| p.kind == ProbeKind::Readiness) {
                    let Some(r) = &p.last else { continue };
                    if r.components.is_empty() {
                        let ok = r.outcome != Outcome::Down;
                        worse(&mut status, if ok { EvidenceStatus::Pass } else { EvidenceStatus::Fail });
                        details.push(format!("{}: {}", p.name, describe_result(r)));
                        continue;
                    }
                    let down: Vec<&str> = r
                        .components
                        .iter()
                        .filter(|c| c.state == ComponentState::Down)
                        .map(|c| c.name.as_str())
                        .collect();
                    if down.is_empty() {
                        worse(&mut status, EvidenceStatus::Pass);
                        details.push(format!("{}: all {} components up", p.name, r.components.len()));
                    } else {
                        worse(&mut status, EvidenceStatus::Fail);
                        details.push(format!("{}: {} down", p.name, down.join(", ")));
                    }
                }
            }
            Binding::Pool => {
                if let Some(r) = latest_pool(&s.pool) {
                    let full = r.saturated(s.pool_saturated_at);
                    worse(&mut status, if full { EvidenceStatus::Fail } else { EvidenceStatus::Pass });
                    details.push(format!("{}: {}", s.service, r.describe()));
                    charts.push((s.service_id, ChartKind::Pool));
                }
            }
            Binding::LatencyVsErrors => {
                let p95 = current_p95(&s.traffic);
                let err = current_error_pct(&s.traffic);
                if p95.is_none() && err.is_none() {
                    continue;
                }
                let slow = matches!((p95, s.baseline_p95_ms), (Some(v), Some(b)) if is_slow(v, b));
                let erroring = err.is_some_and(|e| is_erroring(e, s.baseline_error_pct));
                worse(&mut status, if slow || erroring { EvidenceStatus::Fail } else { EvidenceStatus::Pass });
                let lat = match (p95, s.baseline_p95_ms) {
                    (Some(v), Some(b)) => format!("p95 {v:.0} ms ({:.1}× baseline {b:.0} ms)", v / b.max(0.001)),
                    (Some(v), None) => format!("p95 {v:.0} ms (no baseline)"),
                    _ => "no latency data".into(),
                };
                let errors = err.map(|e| format!("errors {e:.1} %")).unwrap_or_else(|| "no error data".into());
                let verdict = match (slow, erroring) {
                    (true, true) => "both",
                    (true, false) => "latency",
                    (false, true) => "errors",
                    (false, false) => "neither",
                };
                details.push(format!("{}: {verdict} — {lat}, {errors}", s.service));
                charts.push((s.service_id, ChartKind::Latency));
                charts.push((s.service_id, ChartKind::Errors));
            }
            Binding::FailedRequests => {
                let failed: Vec<&ProbeResult> = s.recent.iter().filter(|r| r.outcome != Outcome::Up).collect();
                if s.recent.is_empty() {
                    continue;
                }
                worse(&mut status, if failed.is_empty() { EvidenceStatus::Pass } else { EvidenceStatus::Fail });
                details.push(format!("{}: {} of {} recent checks failed", s.service, failed.len(), s.recent.len()));
                request_ids.extend(failed.iter().take(10).map(|r| r.request_id.clone()));
            }
            Binding::Dns | Binding::Icmp | Binding::Tcp | Binding::Tls | Binding::Grpc => {
                let kind = match binding {
                    Binding::Dns => ProbeKind::Dns,
                    Binding::Icmp => ProbeKind::Icmp,
                    Binding::Tcp => ProbeKind::Tcp,
                    Binding::Grpc => ProbeKind::Grpc,
                    _ => ProbeKind::Tls,
                };
                for p in s.probes.iter().filter(|p| p.kind == kind) {
                    let Some(r) = &p.last else {
                        details.push(format!("{}: no result yet", p.name));
                        continue;
                    };
                    // A warning (loss, a certificate close to expiry) is what the step asks about.
                    let ok = r.outcome == Outcome::Up;
                    worse(&mut status, if ok { EvidenceStatus::Pass } else { EvidenceStatus::Fail });
                    details.push(format!("{}: {}", p.name, describe_result(r)));
                    if !ok {
                        request_ids.push(r.request_id.clone());
                    }
                }
                if kind == ProbeKind::Icmp && s.probes.iter().any(|p| p.kind == kind) {
                    charts.push((s.service_id, ChartKind::Loss));
                }
            }
            Binding::Recovery => {}
            Binding::RecentChange => {
                // Changes after the start (the responders' own rollback among them) caused nothing.
                let suspects: Vec<&ChangeEvent> =
                    s.changes.iter().rev().filter(|c| s.incident_start.is_none_or(|st| c.at <= st)).take(3).collect();
                if !suspects.is_empty() {
                    worse(&mut status, EvidenceStatus::Fail);
                    details.extend(suspects.iter().map(|c| change_words(c, s.incident_start)));
                } else if s.records_changes {
                    worse(&mut status, EvidenceStatus::Pass);
                    details.push(format!("{}: no change recorded from an hour before the start", s.service));
                } else {
                    details.push(format!(
                        "{}: no change events are recorded for it; check its deploy history by hand (CI can record them with `triage change add`)",
                        s.service
                    ));
                }
            }
            Binding::Rollback => {
                let before = |c: &&ChangeEvent| s.incident_start.is_none_or(|start| c.at <= start);
                match s.changes.iter().rev().find(before) {
                    Some(c) => {
                        worse(&mut status, EvidenceStatus::Fail);
                        details.push(rollback_words(c, s.incident_start));
                    }
                    None => details
                        .push(format!("{}: no change recorded before the start; nothing to roll back", s.service)),
                }
            }
        }
    }
    if binding == Binding::Recovery {
        status = match (recovery.confirmed, recovery.healthy) {
            (true, _) => EvidenceStatus::Pass,
            (false, false) => EvidenceStatus::Fail,
            (false, true) => EvidenceStatus::Unknown,
        };
        details.push(recovery.detail.clone());
    }
    let detail = if details.is_empty() { "no data for this check yet".to_string() } else { details.join("; ") };
    Evidence { status, detail, charts, request_ids }
}

fn describe_result(r: &ProbeResult) -> String {
    let what = match (r.status, r.error) {
        (_, Some(ErrorClass::Status)) | (Some(_), None) => r.status.map(|s| format!("HTTP {s}")).unwrap_or_default(),
        (_, Some(e)) => e.as_str().to_string(),
        (None, None) => r.outcome.as_str().to_string(),
    };
    // Checks without an HTTP status say what they saw in their detail: the answers and rcode,
    // the echoes, the serving status, the certificate.
    let seen = match (r.status, r.detail.as_deref()) {
        (None, Some(d)) if !d.is_empty() => format!(" ({d})"),
        _ => String::new(),
    };
    let says_expiry = seen.contains("expires");
    let days = r
        .cert_days_left
        .filter(|_| r.status.is_none() && !says_expiry)
        .map(|d| format!(", certificate {d} days left"))
        .unwrap_or_default();
    format!("{what}{seen}{days} in {:.0} ms at {}", r.phases.total_us as f64 / 1000.0, r.at.format("%H:%M:%S"))
}

/// Whether every service is back to normal and since when; confirmed once that has held for the
/// longest `healthy_for_secs` of the affected probes.
pub fn recovery(services: &[ServiceSignals], symptoms: &[Symptom], now: DateTime<Utc>) -> app::model::Recovery {
    let needed = services.iter().flat_map(|s| s.probes.iter()).map(|p| p.healthy_for_secs).max().unwrap_or(300);
    if !symptoms.is_empty() || services.is_empty() {
        let detail = if services.is_empty() {
            "no affected services to judge by".into()
        } else {
            format!("not yet: {}", symptoms.iter().map(|s| s.kind.label()).collect::<Vec<_>>().join(", "))
        };
        return app::model::Recovery { healthy: false, since: None, needed_secs: needed, confirmed: false, detail };
    }
    // Healthy since the last moment anything was bad: a probe coming back up, or the end of the
    // last bucket that showed a symptom.
    let mut since: Option<DateTime<Utc>> = None;
    let mut later = |t: DateTime<Utc>| since = Some(since.map_or(t, |s: DateTime<Utc>| s.max(t)));
    for s in services {
        let step = Duration::seconds(i64::try_from(s.step_secs).unwrap_or(60));
        for p in &s.probes {
            if let Some(t) = p.since {
                later(t);
            }
        }
        for p in &s.traffic {
            let slow = matches!((p.p95_ms, s.baseline_p95_ms), (Some(v), Some(b)) if is_slow(v, b));
            let erroring = p.error_pct.is_some_and(|e| is_erroring(e, s.baseline_error_pct));
            if slow || erroring {
                later(p.at + step);
            }
        }
        for p in &s.pool {
            if p.pool.is_some_and(|r| r.saturated(s.pool_saturated_at)) {
                later(p.at + step);
            }
        }
    }
    let since = since.map(|t| t.min(now));
    let held = since.map_or(i64::MAX, |t| (now - t).num_seconds());
    let confirmed = held >= i64::from(needed);
    let detail = match since {
        Some(t) if confirmed => format!("back to normal since {} ({held} s, {needed} s needed)", t.format("%H:%M:%S")),
        Some(t) => format!("normal since {} — {held} s of the {needed} s needed", t.format("%H:%M:%S")),
        None => "normal throughout the window".into(),
    };
    app::model::Recovery { healthy: true, since, needed_secs: needed, confirmed, detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::Component;

    fn at(m: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::hours(14) + Duration::minutes(m)
    }

    fn point(m: i64, p95: f64, failed: u64) -> SeriesPoint {
        SeriesPoint {
            at: at(m),
            count: 60,
            up: 60 - failed,
            down: failed,
            p95_ms: Some(p95),
            error_pct: Some(failed as f64 * 100.0 / 60.0),
            ..SeriesPoint::default()
        }
    }

    fn pool_point(m: i64, in_use: f64, waiting: f64) -> SeriesPoint {
        SeriesPoint {
            at: at(m),
            pool: Some(PoolReading {
                in_use: Some(in_use),
                max: Some(10.0),
                waiting: Some(waiting),
                ..Default::default()
            }),
            ..SeriesPoint::default()
        }
    }

    fn healthy() -> ServiceSignals {
        ServiceSignals {
            service_id: Uuid::nil(),
            service: "shop".into(),
            traffic: (0..15).map(|m| point(m, 20.0, 0)).collect(),
            step_secs: 60,
            pool: (0..15).map(|m| pool_point(m, 3.0, 0.0)).collect(),
            baseline_p95_ms: Some(20.0),
            baseline_error_pct: Some(0.0),
            baseline_source: BaselineSource::SameHour7d,
            pool_saturated_at: app::model::POOL_SATURATED_AT,
            probes: vec![ProbeSignal {
                id: Uuid::nil(),
                name: "shop-api".into(),
                kind: ProbeKind::Http,
                state: Some(Outcome::Up),
                since: Some(at(-60)),
                last: None,
                healthy_for_secs: 300,
            }],
            recent: vec![],
            changes: vec![],
            records_changes: false,
            incident_start: Some(at(0)),
        }
    }

    fn kinds(s: &ServiceSignals) -> Vec<SymptomKind> {
        detect(s).into_iter().map(|x| x.kind).collect()
    }

    fn library() -> Vec<Checklist> {
        super::super::library::FILES
            .iter()
            .map(|(n, t)| Checklist {
                version: 1,
                created_by: "file".into(),
                created_at: at(0),
                def: super::super::library::parse(n, t).unwrap_or_else(|e| panic!("{e}")),
            })
            .collect()
    }

    fn first_choice(s: &ServiceSignals) -> Option<String> {
        choose(&library(), &detect(s)).into_iter().next().map(|c| c.0)
    }

    #[test]
    fn healthy_and_empty_signals_have_no_symptoms() {
        assert!(kinds(&healthy()).is_empty());
        let mut empty = healthy();
        empty.traffic.clear();
        empty.pool.clear();
        empty.probes.clear();
        empty.baseline_p95_ms = None;
        assert!(kinds(&empty).is_empty(), "no data: nothing claimed");
        assert!(choose(&library(), &[]).is_empty());
        assert!(suggest(&[]).is_empty());
    }

    #[test]
    fn slow_alone_names_the_ratio_and_the_start() {
        let mut s = healthy();
        for m in 10..15 {
            s.traffic[m as usize] = point(m, 82.0, 0);
        }
        let found = detect(&s);
        assert_eq!(found.iter().map(|x| x.kind).collect::<Vec<_>>(), vec![SymptomKind::Slow]);
        assert_eq!(found[0].reason, "p95 is 4.1× its 7-day baseline (82 ms against 20 ms) since 14:10");
        assert_eq!(first_choice(&s).as_deref(), Some("service-slow"));
        // Small growth is not slow.
        s.traffic[14] = point(14, 35.0, 0);
        s.traffic[13] = point(13, 35.0, 0);
        assert!(kinds(&s).is_empty(), "35 ms against 20 ms is noise");
    }

    #[test]
    fn errors_alone() {
        let mut s = healthy();
        for m in 11..15 {
            s.traffic[m as usize] = point(m, 20.0, 12);
        }
        assert_eq!(kinds(&s), vec![SymptomKind::Errors]);
        assert_eq!(first_choice(&s).as_deref(), Some("errors-spike"));
        let ideas = suggest(&detect(&s));
        assert_eq!(ideas.len(), 3);
        assert!(ideas[0].text.contains("unhandled error"));
    }

    fn path_probe(kind: ProbeKind, name: &str, state: Outcome, last: ProbeResult) -> ProbeSignal {
        ProbeSignal {
            id: Uuid::nil(),
            name: name.into(),
            kind,
            state: Some(state),
            since: Some(at(12)),
            last: Some(last),
            healthy_for_secs: 300,
        }
    }

    #[test]
    fn a_path_that_fails_picks_the_network_checklist_with_each_kinds_evidence() {
        let mut s = healthy();
        let refused = ProbeResult {
            status: None,
            error: Some(ErrorClass::Connect),
            detail: Some("connection refused".into()),
            ..result(Outcome::Down)
        };
        s.probes.push(path_probe(ProbeKind::Tcp, "shop-port", Outcome::Down, refused));
        let answered = ProbeResult {
            status: None,
            error: None,
            detail: Some("NOERROR: A 10.0.0.7".into()),
            ..result(Outcome::Up)
        };
        s.probes.push(path_probe(ProbeKind::Dns, "shop-name", Outcome::Up, answered));
        let found = detect(&s);
        assert!(
            found.iter().any(|x| x.kind == SymptomKind::Unreachable
                && x.reason == "shop-port fails (connect: connection refused) since 14:12"),
            "{found:?}"
        );
        assert_eq!(first_choice(&s).as_deref(), Some("network-path"), "the path before the process");
        let rec = recovery(std::slice::from_ref(&s), &found, at(15));
        let tcp = evaluate(Binding::Tcp, std::slice::from_ref(&s), &rec);
        assert_eq!(tcp.status, EvidenceStatus::Fail);
        assert!(tcp.detail.starts_with("shop-port: connect (connection refused) in"), "{}", tcp.detail);
        assert_eq!(tcp.request_ids.len(), 1, "the failed check's request id");
        let dns = evaluate(Binding::Dns, std::slice::from_ref(&s), &rec);
        assert_eq!(dns.status, EvidenceStatus::Pass);
        assert!(dns.detail.starts_with("shop-name: up (NOERROR: A 10.0.0.7) in"), "{}", dns.detail);
        let grpc = evaluate(Binding::Grpc, std::slice::from_ref(&s), &rec);
        assert_eq!((grpc.status, grpc.detail.as_str()), (EvidenceStatus::Unknown, "no data for this check yet"));
    }

    #[test]
    fn lost_echoes_are_a_path_symptom_with_the_loss_chart() {
        let mut s = healthy();
        let lossy = ProbeResult {
            status: None,
            error: None,
            echo: Some(app::model::EchoCount { sent: 4, received: 3 }),
            detail: Some("3/4 received, 25 % loss".into()),
            ..result(Outcome::Degraded)
        };
        s.probes.push(path_probe(ProbeKind::Icmp, "edge-ping", Outcome::Degraded, lossy));
        let found = detect(&s);
        assert_eq!(found.iter().map(|x| x.kind).collect::<Vec<_>>(), vec![SymptomKind::Unreachable]);
        assert_eq!(found[0].reason, "edge-ping loses 25 % of its echoes since 14:12");
        let ev = evaluate(Binding::Icmp, std::slice::from_ref(&s), &recovery(std::slice::from_ref(&s), &found, at(15)));
        assert_eq!(ev.status, EvidenceStatus::Fail);
        assert_eq!(ev.charts, vec![(Uuid::nil(), ChartKind::Loss)]);
        // Unconfirmed loss (one lossy check while the state is still up) is not a symptom yet.
        s.probes[1].state = Some(Outcome::Up);
        assert!(kinds(&s).is_empty());
    }

    #[test]
    fn an_expiring_certificate_picks_its_checklist() {
        let mut s = healthy();
        let expiring = ProbeResult {
            status: None,
            error: Some(ErrorClass::CertExpiry),
            cert_days_left: Some(5),
            detail: Some("certificate expires in 5 days (threshold 14)".into()),
            ..result(Outcome::Degraded)
        };
        s.probes.push(path_probe(ProbeKind::Tls, "shop-cert", Outcome::Degraded, expiring));
        let found = detect(&s);
        assert_eq!(found.iter().map(|x| x.kind).collect::<Vec<_>>(), vec![SymptomKind::CertExpiring]);
        assert_eq!(found[0].reason, "the certificate shop-cert checks expires in 5 days");
        assert_eq!(first_choice(&s).as_deref(), Some("certificate-expiry"));
        let ev = evaluate(Binding::Tls, std::slice::from_ref(&s), &recovery(std::slice::from_ref(&s), &found, at(15)));
        assert_eq!(ev.status, EvidenceStatus::Fail);
        assert!(ev.detail.contains("(certificate expires in 5 days (threshold 14))"), "{}", ev.detail);
        assert!(!ev.detail.contains("days left"), "said once: {}", ev.detail);
    }

    #[test]
    fn pool_saturation_comes_before_slow_when_both_show() {
        let mut s = healthy();
        for m in 10..15 {
            s.pool[m as usize] = pool_point(m, 10.0, 4.0);
            s.traffic[m as usize] = point(m, 300.0, 0);
        }
        assert_eq!(kinds(&s), vec![SymptomKind::PoolSaturated, SymptomKind::Slow]);
        assert!(detect(&s)[0].reason.starts_with("pool 10 of 10 in use (100 %), 4 waiting since 14:10"));
        assert_eq!(first_choice(&s).as_deref(), Some("pool-exhaustion"));
        let ev =
            evaluate(Binding::Pool, std::slice::from_ref(&s), &recovery(std::slice::from_ref(&s), &detect(&s), at(15)));
        assert_eq!(ev.status, EvidenceStatus::Fail);
        assert_eq!(ev.charts, vec![(Uuid::nil(), ChartKind::Pool)]);
    }

    #[test]
    fn a_nearly_full_pool_without_a_queue_does_not_outrank_slowness() {
        let mut s = healthy();
        for m in 10..15 {
            s.pool[m as usize] = pool_point(m, 9.0, 0.0);
            s.traffic[m as usize] = point(m, 460.0, 0);
        }
        assert_eq!(kinds(&s), vec![SymptomKind::Slow, SymptomKind::PoolSaturated]);
        assert_eq!(first_choice(&s).as_deref(), Some("service-slow"));
    }

    #[test]
    fn down_and_not_ready_together() {
        let mut s = healthy();
        s.probes[0].state = Some(Outcome::Down);
        s.probes[0].since = Some(at(12));
        let mut ready = s.probes[0].clone();
        ready.name = "shop-ready".into();
        ready.kind = ProbeKind::Readiness;
        ready.state = Some(Outcome::Down);
        ready.last = Some(ProbeResult {
            components: vec![Component { name: "database".into(), state: ComponentState::Down, detail: None }],
            ..result(Outcome::Down)
        });
        s.probes.push(ready);
        assert_eq!(kinds(&s), vec![SymptomKind::Down, SymptomKind::NotReady]);
        let chosen: Vec<String> = choose(&library(), &detect(&s)).into_iter().map(|c| c.0).take(2).collect();
        assert_eq!(chosen, vec!["service-down", "readiness-failing"], "a dead process first, then its dependency");
        let ev = evaluate(
            Binding::Liveness,
            std::slice::from_ref(&s),
            &recovery(std::slice::from_ref(&s), &detect(&s), at(15)),
        );
        assert_eq!(ev.status, EvidenceStatus::Fail);
        let ev = evaluate(
            Binding::Readiness,
            std::slice::from_ref(&s),
            &recovery(std::slice::from_ref(&s), &detect(&s), at(15)),
        );
        assert_eq!((ev.status, ev.detail.as_str()), (EvidenceStatus::Fail, "shop-ready: database down"));
    }

    fn result(outcome: Outcome) -> ProbeResult {
        ProbeResult {
            probe_id: Uuid::nil(),
            at: at(14),
            outcome,
            status: Some(503),
            error: Some(ErrorClass::Status),
            detail: None,
            phases: Default::default(),
            response_bytes: 0,
            request_id: "req-1".into(),
            body_excerpt: None,
            cert_days_left: None,
            components: vec![],
            pool: None,
            echo: None,
            location: None,
        }
    }

    #[test]
    fn each_binding_without_data_is_unknown_and_with_data_judges() {
        let mut bare = healthy();
        bare.traffic.clear();
        bare.pool.clear();
        bare.probes.clear();
        let rec = recovery(std::slice::from_ref(&bare), &[], at(15));
        for b in
            [Binding::Liveness, Binding::Readiness, Binding::Pool, Binding::LatencyVsErrors, Binding::FailedRequests]
        {
            assert_eq!(evaluate(b, std::slice::from_ref(&bare), &rec).status, EvidenceStatus::Unknown, "{b:?}");
        }
        let s = healthy();
        let rec = recovery(std::slice::from_ref(&s), &[], at(15));
        for b in [Binding::Liveness, Binding::Pool, Binding::LatencyVsErrors] {
            assert_eq!(evaluate(b, std::slice::from_ref(&s), &rec).status, EvidenceStatus::Pass, "{b:?}");
        }
        let mut failing = healthy();
        failing.recent = vec![result(Outcome::Down), result(Outcome::Up)];
        let ev = evaluate(Binding::FailedRequests, std::slice::from_ref(&failing), &rec);
        assert_eq!((ev.status, ev.request_ids.clone()), (EvidenceStatus::Fail, vec!["req-1".to_string()]));
        assert_eq!(five_xx_share(&failing.recent), Some(100.0));
    }

    #[test]
    fn recovery_is_confirmed_only_after_it_has_held_long_enough() {
        let mut s = healthy();
        s.probes[0].healthy_for_secs = 120;
        s.pool[12] = pool_point(12, 10.0, 2.0);
        // The last bad bucket ends at 14:13; at 14:14 one minute has held of two.
        let r = recovery(std::slice::from_ref(&s), &[], at(14));
        assert!(r.healthy && !r.confirmed, "{r:?}");
        assert_eq!(r.since, Some(at(13)));
        let ev = evaluate(Binding::Recovery, std::slice::from_ref(&s), &r);
        assert_eq!(ev.status, EvidenceStatus::Unknown);
        let r = recovery(std::slice::from_ref(&s), &[], at(15));
        assert!(r.confirmed, "{r:?}");
        assert_eq!(evaluate(Binding::Recovery, std::slice::from_ref(&s), &r).status, EvidenceStatus::Pass);
        let sym = detect(&{
            let mut bad = s.clone();
            bad.pool[14] = pool_point(14, 10.0, 3.0);
            bad
        });
        let r = recovery(&[s], &sym, at(15));
        assert!(!r.healthy && !r.confirmed);
    }

    fn change(kind: ChangeKind, minute: i64) -> ChangeEvent {
        ChangeEvent {
            id: Uuid::nil(),
            service_id: Uuid::nil(),
            service: "shop".into(),
            kind,
            title: "Release 1.4.2".into(),
            version: (kind == ChangeKind::Deploy).then(|| "v1.4.2".into()),
            link: None,
            author: Some("alice".into()),
            at: at(minute),
            ends_at: None,
            recorded_by: "token:ci".into(),
            recorded_at: at(minute),
        }
    }

    #[test]
    fn a_change_before_the_start_answers_the_step_and_is_proposed_for_rollback_with_its_risk() {
        let mut s = healthy();
        let rec = recovery(std::slice::from_ref(&s), &[], at(15));
        // Nobody records changes for this service: nothing can be said either way.
        let ev = evaluate(Binding::RecentChange, std::slice::from_ref(&s), &rec);
        assert_eq!(ev.status, EvidenceStatus::Unknown);
        assert!(ev.detail.contains("triage change add"), "{}", ev.detail);
        let ev = evaluate(Binding::Rollback, std::slice::from_ref(&s), &rec);
        assert_eq!(
            (ev.status, ev.detail.as_str()),
            (EvidenceStatus::Unknown, "shop: no change recorded before the start; nothing to roll back")
        );
        // Changes are recorded, none lately: the answer is no.
        s.records_changes = true;
        assert_eq!(evaluate(Binding::RecentChange, std::slice::from_ref(&s), &rec).status, EvidenceStatus::Pass);
        // A deploy three minutes before the start.
        s.changes = vec![change(ChangeKind::Deploy, -3)];
        let ev = evaluate(Binding::RecentChange, std::slice::from_ref(&s), &rec);
        assert_eq!(ev.status, EvidenceStatus::Fail);
        assert_eq!(ev.detail, "deploy v1.4.2 of shop at 13:57 by alice, 3 minutes before the start");
        let ev = evaluate(Binding::Rollback, std::slice::from_ref(&s), &rec);
        assert_eq!(
            ev.detail,
            "Roll back deploy v1.4.2 of shop at 13:57 by alice, 3 minutes before the start (redeploy the release before it)"
        );
        let hyp = suggest_changes(std::slice::from_ref(&s));
        assert_eq!(hyp.len(), 1);
        assert!(hyp[0].text.starts_with("The deploy v1.4.2 of shop at 13:57"), "{}", hyp[0].text);
        // A migration is the newest change before the start: undoing it is named a high risk. A
        // change after the start is not proposed for rollback.
        s.changes.push(change(ChangeKind::Migration, -1));
        s.changes.push(change(ChangeKind::Config, 5));
        let ev = evaluate(Binding::Rollback, std::slice::from_ref(&s), &rec);
        assert!(ev.detail.starts_with("Roll back migration “Release 1.4.2” of shop"), "{}", ev.detail);
        assert!(ev.detail.contains("high risk"), "{}", ev.detail);
    }
}
