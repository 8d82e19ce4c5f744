//! The text of an automatic timeline entry: what changed, and the evidence a responder would
//! otherwise dig for (status code, error class, the phase that grew, the request id, pool
//! saturation, the readiness component that failed).

use app::model::{Attachment, ComponentState, Outcome, Phases, ProbeResult};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub struct Evidence {
    pub text: String,
    pub attachments: Vec<Attachment>,
}

/// What the probe saw; `baseline` are recent healthy results of the same probe (for "which phase
/// grew").
pub struct Change<'a> {
    pub service_id: Uuid,
    pub service: &'a str,
    pub probe_id: Uuid,
    pub probe: &'a str,
    /// `None` for a probe's first confirmed state.
    pub from: Option<Outcome>,
    pub to: Outcome,
    pub at: DateTime<Utc>,
    pub request_id: &'a str,
    pub result: Option<&'a ProbeResult>,
    pub baseline: &'a [ProbeResult],
    /// A probe run from several locations: which of them the state stands on.
    pub locations: Option<&'a str>,
}

/// Markdown-safe inline code: backticks inside would end the span.
fn code(s: &str) -> String {
    let one_line: String = s.chars().filter(|c| !c.is_control()).take(200).collect();
    format!("`{}`", one_line.replace('`', "'"))
}

pub fn ms(us: u64) -> String {
    if us >= 10_000_000 {
        format!("{:.0} s", us as f64 / 1e6)
    } else if us >= 1_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else {
        format!("{:.0} ms", us as f64 / 1e3)
    }
}

/// Reads one phase's duration.
type PhaseOf = fn(&Phases) -> Option<u64>;

const PHASES: [(&str, PhaseOf); 5] = [
    ("DNS", |p| p.dns_us),
    ("connect", |p| p.connect_us),
    ("TLS", |p| p.tls_us),
    ("TTFB", |p| p.ttfb_us),
    ("transfer", |p| p.transfer_us),
];

fn median(mut v: Vec<u64>) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

/// The phase that grew most against the healthy baseline: (name, before, now), when it grew by
/// at least half and by at least 5 ms.
pub fn grown_phase(now: &Phases, baseline: &[ProbeResult]) -> Option<(&'static str, u64, u64)> {
    PHASES
        .iter()
        .filter_map(|(name, get)| {
            let current = get(now)?;
            let before = median(baseline.iter().filter_map(|r| get(&r.phases)).collect())?;
            let grew = current.saturating_sub(before);
            (grew >= 5_000 && current * 2 >= before * 3).then_some((*name, before, current, grew))
        })
        .max_by_key(|(_, _, _, grew)| *grew)
        .map(|(name, before, current, _)| (name, before, current))
}

fn state_word(c: ComponentState) -> &'static str {
    match c {
        ComponentState::Up => "up",
        ComponentState::Degraded => "degraded",
        ComponentState::Down => "down",
        ComponentState::Unknown => "unknown",
    }
}

pub fn describe(c: &Change<'_>) -> Evidence {
    let mut facts: Vec<String> = Vec::new();
    let headline = match c.from {
        // A new probe: nothing to compare with, and calling it a recovery or a fall would be untrue.
        None => format!("**{} / {}** is **{}** (its first confirmed state)", c.service, c.probe, c.to.as_str()),
        Some(from) if c.to == Outcome::Up => {
            format!("**{} / {}** recovered: **up** (was {})", c.service, c.probe, from.as_str())
        }
        Some(from) => format!("**{} / {}** is **{}** (was {})", c.service, c.probe, c.to.as_str(), from.as_str()),
    };
    if let Some(l) = c.locations {
        facts.push(l.to_string());
    }
    if let Some(r) = c.result {
        if let Some(status) = r.status {
            facts.push(format!("HTTP {status}"));
        }
        if let Some(e) = r.error {
            let mut f = format!("error {}", code(e.as_str()));
            if let Some(d) = &r.detail {
                f.push_str(&format!(": {}", code(d)));
            }
            facts.push(f);
        }
        if c.to != Outcome::Up
            && let Some((name, before, now)) = grown_phase(&r.phases, c.baseline)
        {
            facts.push(format!("{name} grew {} → {}", ms(before), ms(now)));
        }
        if let Some(pool) = &r.pool
            && let (Some(in_use), Some(max)) = (pool.in_use, pool.max)
            && max > 0.0
        {
            let mut f = format!("pool {in_use:.0}/{max:.0} in use ({:.0}%)", in_use / max * 100.0);
            if let Some(w) = pool.waiting.filter(|w| *w > 0.0) {
                f.push_str(&format!(", {w:.0} waiting"));
            }
            facts.push(f);
        }
        for comp in r.components.iter().filter(|k| matches!(k.state, ComponentState::Down | ComponentState::Degraded)) {
            let mut f = format!("readiness {} {}", code(&comp.name), state_word(comp.state));
            if let Some(d) = &comp.detail {
                f.push_str(&format!(" ({})", code(d)));
            }
            facts.push(f);
        }
    }
    facts.push(format!("request id {}", code(c.request_id)));
    let text = format!("{headline}\n\n{}", facts.join(" · "));
    let mut attachments = vec![
        Attachment::ProbeResult { probe_id: c.probe_id, at: c.at, request_id: Some(c.request_id.to_string()) },
        Attachment::ChartRange {
            service_id: c.service_id,
            from: c.at - chrono::Duration::minutes(30),
            to: c.at + chrono::Duration::minutes(5),
        },
    ];
    if !c.request_id.is_empty() {
        attachments.push(Attachment::RequestIds { ids: vec![c.request_id.to_string()] });
    }
    Evidence { text, attachments }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::{Component, ErrorClass, PoolReading};

    fn result(outcome: Outcome, ttfb_ms: u64) -> ProbeResult {
        ProbeResult {
            probe_id: Uuid::nil(),
            at: DateTime::<Utc>::UNIX_EPOCH,
            outcome,
            status: Some(200),
            error: None,
            detail: None,
            phases: Phases { connect_us: Some(1_000), ttfb_us: Some(ttfb_ms * 1000), total_us: 0, ..Phases::default() },
            response_bytes: 0,
            request_id: "r".into(),
            body_excerpt: None,
            cert_days_left: None,
            components: vec![],
            pool: None,
            echo: None,
            location: None,
        }
    }

    #[test]
    fn names_the_evidence_of_a_failure() {
        let baseline: Vec<ProbeResult> = (0..5).map(|_| result(Outcome::Up, 20)).collect();
        let mut bad = result(Outcome::Down, 2300);
        bad.status = Some(503);
        bad.error = Some(ErrorClass::Status);
        bad.pool = Some(PoolReading { in_use: Some(48.0), max: Some(50.0), waiting: Some(7.0), ..Default::default() });
        bad.components =
            vec![Component { name: "db".into(), state: ComponentState::Down, detail: Some("timeout `x`".into()) }];
        let e = describe(&Change {
            service_id: Uuid::nil(),
            service: "checkout",
            probe_id: Uuid::nil(),
            probe: "health",
            from: Some(Outcome::Up),
            to: Outcome::Down,
            at: DateTime::<Utc>::UNIX_EPOCH,
            request_id: "req-42",
            result: Some(&bad),
            locations: None,
            baseline: &baseline,
        });
        for needle in [
            "**checkout / health** is **down** (was up)",
            "HTTP 503",
            "error `status`",
            "TTFB grew 20 ms → 2.3 s",
            "pool 48/50 in use (96%), 7 waiting",
            "readiness `db` down (`timeout 'x'`)",
            "request id `req-42`",
        ] {
            assert!(e.text.contains(needle), "missing {needle:?} in {}", e.text);
        }
        assert!(!e.text.contains("connect grew"), "an unchanged phase is not blamed");
        assert!(e.attachments.iter().any(|a| matches!(a, Attachment::RequestIds { ids } if ids == &["req-42"])));
    }

    #[test]
    fn a_first_confirmed_state_is_not_called_a_change_from_up() {
        let e = describe(&Change {
            service_id: Uuid::nil(),
            service: "checkout",
            probe_id: Uuid::nil(),
            probe: "health",
            from: None,
            to: Outcome::Down,
            at: DateTime::<Utc>::UNIX_EPOCH,
            request_id: "req-1",
            result: None,
            locations: None,
            baseline: &[],
        });
        assert!(e.text.starts_with("**checkout / health** is **down** (its first confirmed state)"), "{}", e.text);
        assert!(!e.text.contains("was up"), "{}", e.text);
    }

    #[test]
    fn small_changes_are_not_growth() {
        let baseline = vec![result(Outcome::Up, 20)];
        assert_eq!(grown_phase(&result(Outcome::Down, 24).phases, &baseline), None, "4 ms is noise");
        assert_eq!(grown_phase(&result(Outcome::Down, 200).phases, &[]), None, "no baseline, no claim");
        assert_eq!(grown_phase(&result(Outcome::Down, 200).phases, &baseline), Some(("TTFB", 20_000, 200_000)));
    }
}
