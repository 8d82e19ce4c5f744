//! One scheduled run of a probe of any kind, turned into the result that is stored: an HTTP check
//! as is, a readiness check with its components judged, a metrics scrape with its pool gauges and
//! counter rates; TCP, TLS, DNS, ICMP and gRPC health checks as their modules report them.

use std::time::Instant;

use app::model::{ComponentState, ErrorClass, Outcome, PoolReading, ProbeKind, ProbeResult};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::http::{self, CheckResult};
use super::policy::NetworkPolicy;
use super::scrape::{self, PoolMapping, PoolSample, counter_rate};
use super::spec::Check;
use super::{dns, grpc, icmp, readiness, tcp};

/// What a metrics probe remembers between scrapes to turn counters into rates.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScrapeMemory {
    previous: Option<(Instant, PoolSample)>,
}

fn base(probe_id: Uuid, at: DateTime<Utc>, r: CheckResult) -> ProbeResult {
    ProbeResult {
        probe_id,
        at,
        outcome: r.outcome,
        status: r.status,
        error: r.error,
        detail: r.detail,
        phases: r.phases,
        response_bytes: r.response_bytes,
        request_id: r.request_id,
        body_excerpt: r.body_excerpt,
        cert_days_left: r.cert_days_left,
        components: Vec::new(),
        pool: None,
        echo: r.echo,
        location: None,
    }
}

pub async fn run(
    probe_id: Uuid,
    kind: ProbeKind,
    check: &Check,
    mapping: &PoolMapping,
    policy: &NetworkPolicy,
    memory: &mut ScrapeMemory,
) -> ProbeResult {
    run_keeping_body(probe_id, kind, check, mapping, policy, memory).await.0
}

/// [`run`], also answering the (decompressed) body an HTTP-based check received: "Run now" shows
/// it as a sample for trying JSONPath assertions.
pub async fn run_keeping_body(
    probe_id: Uuid,
    kind: ProbeKind,
    check: &Check,
    mapping: &PoolMapping,
    policy: &NetworkPolicy,
    memory: &mut ScrapeMemory,
) -> (ProbeResult, Option<bytes::Bytes>) {
    let at = Utc::now();
    let check = match check {
        Check::Http(c) => c,
        Check::Tcp(c) => return (base(probe_id, at, tcp::run_tcp(c, policy).await), None),
        Check::Tls(c) => return (base(probe_id, at, tcp::run_cert(c, policy).await), None),
        Check::Dns(c) => return (base(probe_id, at, dns::run(c, policy).await), None),
        Check::Icmp(c) => return (base(probe_id, at, icmp::run(c, policy).await), None),
        Check::Grpc(c) => return (base(probe_id, at, grpc::run(c, policy).await), None),
    };
    let checked = http::run(check, policy).await;
    let body = checked.body.clone();
    let answered = checked.status.is_some();
    let mut result = base(probe_id, at, checked);
    match kind {
        ProbeKind::Readiness if answered => judge_readiness(&mut result, &body),
        ProbeKind::Metrics if result.outcome != Outcome::Down => {
            let text = String::from_utf8_lossy(&body);
            match scrape::extract(&text, mapping) {
                Ok(sample) => {
                    let pool = reading(sample, memory);
                    result.pool = Some(pool);
                    if pool.saturated(mapping.saturated_at) {
                        // The service answers, but its requests queue for connections: not healthy.
                        result.outcome = Outcome::Degraded;
                        result.error = Some(ErrorClass::PoolSaturated);
                        result.detail = Some(format!("pool saturated: {}", pool.describe()));
                    }
                }
                Err(e) => {
                    result.outcome = Outcome::Down;
                    result.error = Some(ErrorClass::Parse);
                    result.detail = Some(e.to_string());
                    result.body_excerpt = Some(http::excerpt(&body));
                }
            }
        }
        _ => {}
    }
    (result, answered.then_some(body))
}

/// A readiness body can report a dependency down while answering 200: the components decide.
fn judge_readiness(result: &mut ProbeResult, body: &[u8]) {
    let report = readiness::parse(body);
    result.components = report.components.clone();
    if result.outcome == Outcome::Down {
        return;
    }
    let worst_component = report.components.iter().map(|c| c.state).filter(|s| *s != ComponentState::Unknown).max();
    let overall = report.overall.filter(|s| *s != ComponentState::Unknown);
    let worst = worst_component.max(overall);
    match worst {
        Some(ComponentState::Down) => {
            let names: Vec<&str> =
                report.components.iter().filter(|c| c.state == ComponentState::Down).map(|c| c.name.as_str()).collect();
            result.outcome = Outcome::Down;
            result.error = Some(ErrorClass::Assertion);
            // The first few by name; a body with thousands down still gives a short line.
            let shown = names.iter().take(10).copied().collect::<Vec<_>>().join(", ");
            let more = names.len().saturating_sub(10);
            result.detail = Some(match (names.is_empty(), more) {
                (true, _) => "readiness reports not ready".into(),
                (false, 0) => format!("not ready: {shown} down"),
                (false, more) => format!("not ready: {shown} and {more} more down"),
            });
            if report.omitted > 0
                && let Some(detail) = &mut result.detail
            {
                detail.push_str(&format!(
                    " ({} components beyond the first {} not kept)",
                    report.omitted,
                    readiness::MAX_COMPONENTS
                ));
            }
            result.body_excerpt = Some(http::excerpt(body));
        }
        Some(ComponentState::Degraded) if result.outcome == Outcome::Up => {
            result.outcome = Outcome::Degraded;
            result.detail = Some("a readiness component reports degraded".into());
        }
        _ => {}
    }
}

fn reading(sample: PoolSample, memory: &mut ScrapeMemory) -> PoolReading {
    let now = Instant::now();
    let mut r = PoolReading {
        in_use: sample.in_use,
        idle: sample.idle,
        max: sample.max,
        waiting: sample.waiting,
        requests_per_s: None,
        errors_per_s: None,
    };
    if let Some((then, prev)) = memory.previous {
        let secs = now.duration_since(then).as_secs_f64();
        r.requests_per_s = prev.requests_total.zip(sample.requests_total).and_then(|(a, b)| counter_rate(a, b, secs));
        let errors = |s: &PoolSample| s.errors_total.or(s.server_errors_total);
        r.errors_per_s = errors(&prev).zip(errors(&sample)).and_then(|(a, b)| counter_rate(a, b, secs));
    }
    memory.previous = Some((now, sample));
    r
}

/// The result recorded when a push probe's agent stayed silent for a whole interval.
pub fn missed_heartbeat(probe_id: Uuid, silent_for_s: u64) -> ProbeResult {
    ProbeResult {
        error: Some(ErrorClass::MissedHeartbeat),
        detail: Some(format!("no push for {silent_for_s} s")),
        ..ProbeResult::bare(probe_id, Utc::now(), Outcome::Down, uuid::Uuid::new_v4().simple().to_string())
    }
}
