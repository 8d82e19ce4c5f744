//! Routing: each new event becomes one delivery per channel its rules choose, in one transaction
//! that also marks the event routed, so an event is routed once however many routers run and
//! whenever one dies. Flap control happens here: a probe's state changes reach a channel at most
//! once per window, plus one held summary at the window's end that says how many it covers.

use std::collections::BTreeSet;

use app::model::{DeliveryState, EventKind, Rule, Severity};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::NotifySettings;
use crate::storage::notify::{self as store, NewDelivery, UnroutedEvent};

/// What rules look at in an event.
pub struct Scope<'a> {
    pub kind: EventKind,
    pub severity: Option<Severity>,
    pub services: &'a [Uuid],
    pub tags: &'a [String],
}

/// Whether `rule` sends this event. Services and tags widen each other (a rule for service A and
/// tag `payments` takes both); a rule with neither takes every event, and only such a rule takes
/// events that concern no service.
pub fn matches(rule: &Rule, e: &Scope<'_>) -> bool {
    let r = &rule.spec;
    if !r.enabled || !r.events.contains(&e.kind) {
        return false;
    }
    let scoped = !r.services.is_empty() || !r.tags.is_empty();
    let in_scope = !scoped
        || e.services.iter().any(|s| r.services.contains(s))
        || e.tags.iter().any(|t| r.tags.iter().any(|rt| rt.eq_ignore_ascii_case(t)));
    // SEV1 is the most severe and sorts first.
    let severe_enough = match (r.min_severity, e.severity) {
        (Some(min), Some(sev)) => sev <= min,
        _ => true,
    };
    in_scope && severe_enough
}

/// Routes up to one batch of events; returns how many were routed.
pub async fn route_batch(pool: &PgPool, settings: &NotifySettings) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let events = store::claim_unrouted(&mut tx, 100).await?;
    if events.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let rules = store::list_rules(&mut tx).await?;
    let channels: Vec<Uuid> = store::enabled_channels(&mut tx).await?.into_iter().map(|(id, _)| id).collect();
    let now = Utc::now();
    for e in &events {
        let (targets, window) = targets(&mut tx, e, &rules, &channels).await?;
        let kind = EventKind::parse(&e.kind);
        for channel in targets {
            if let Some(title) = &window {
                // Recorded, so the log shows what planned work kept quiet.
                store::insert_delivery(
                    &mut tx,
                    &NewDelivery {
                        event_id: e.event_id,
                        channel_id: channel,
                        state: DeliveryState::Suppressed,
                        next_at: now,
                        probe_id: e.probe_id,
                        held: false,
                        last_answer: Some(format!("suppressed: maintenance window “{title}”")),
                    },
                )
                .await?;
                continue;
            }
            match (kind, e.probe_id) {
                (Some(k), Some(probe)) if k.is_probe_state() => {
                    flap_gate(&mut tx, e.event_id, probe, channel, now, settings).await?;
                }
                _ => {
                    store::insert_delivery(
                        &mut tx,
                        &NewDelivery {
                            event_id: e.event_id,
                            channel_id: channel,
                            state: DeliveryState::Pending,
                            next_at: now,
                            probe_id: None,
                            held: false,
                            last_answer: None,
                        },
                    )
                    .await?;
                }
            }
        }
        store::mark_routed(&mut tx, e.event_id).await?;
    }
    tx.commit().await?;
    Ok(events.len())
}

/// The channels an event goes to, and the maintenance window that silences it, if one does
/// (only what probes raise is silenced: people's own incident updates still go out).
async fn targets(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    e: &UnroutedEvent,
    rules: &[Rule],
    channels: &[Uuid],
) -> Result<(BTreeSet<Uuid>, Option<String>), sqlx::Error> {
    if let Some(only) = e.channel_id {
        return Ok((BTreeSet::from([only]), None));
    }
    let Some(kind) = EventKind::parse(&e.kind) else {
        tracing::warn!(kind = e.kind, "notification event of an unknown kind: not routed");
        return Ok((BTreeSet::new(), None));
    };
    let (services, tags) = store::event_scope(tx, e.service_id, e.incident_id).await?;
    let mut window = None;
    if kind.is_probe_state() || matches!(kind, EventKind::CertificateExpiring | EventKind::SloBurn) {
        let under_way = crate::monitor::maintenance::under_way(tx, e.at).await?;
        window = under_way.into_iter().find(|w| services.iter().any(|s| w.covers(*s, &tags))).map(|w| w.title);
    }
    let scope =
        Scope { kind, severity: e.severity.as_deref().and_then(Severity::parse), services: &services, tags: &tags };
    let mut out = BTreeSet::new();
    for rule in rules.iter().filter(|r| matches(r, &scope)) {
        if rule.spec.all_channels {
            out.extend(channels.iter().copied());
        } else {
            out.extend(rule.spec.channels.iter().filter(|c| channels.contains(c)).copied());
        }
    }
    // A failing channel is told to the others: it would not get through itself.
    if kind == EventKind::ChannelFailing
        && let Some(failing) = e.subject_channel
    {
        out.remove(&failing);
    }
    Ok((out, window))
}

/// The first change in a window goes out at once; later ones join one held summary, sent when
/// the window since the last message ends.
async fn flap_gate(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    event: Uuid,
    probe: Uuid,
    channel: Uuid,
    now: DateTime<Utc>,
    settings: &NotifySettings,
) -> Result<(), sqlx::Error> {
    let window = chrono::Duration::from_std(settings.flap_window).unwrap_or(chrono::Duration::minutes(10));
    let state = store::flap_state(tx, probe, channel, now - window - window).await?;
    if let Some(held) = state.held {
        return store::join_held(tx, held, event).await;
    }
    let (held, next_at) = match state.last_sent_at {
        Some(last) if last + window > now => (true, last + window),
        _ => (false, now),
    };
    store::insert_delivery(
        tx,
        &NewDelivery {
            event_id: event,
            channel_id: channel,
            state: DeliveryState::Pending,
            next_at,
            probe_id: Some(probe),
            held,
            last_answer: held.then(|| "held by flap control until the window ends".to_string()),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::RuleSpec;

    fn rule(spec: RuleSpec) -> Rule {
        Rule { id: Uuid::nil(), spec, created_at: Utc::now(), updated_at: Utc::now() }
    }

    fn spec() -> RuleSpec {
        RuleSpec {
            name: "r".into(),
            enabled: true,
            events: vec![EventKind::IncidentOpened, EventKind::ProbeDown],
            services: vec![],
            tags: vec![],
            min_severity: None,
            channels: vec![],
            all_channels: true,
        }
    }

    #[test]
    fn rules_filter_by_event_scope_and_severity() {
        let shop = Uuid::new_v4();
        let tags = vec!["payments".to_string()];
        let e =
            Scope { kind: EventKind::IncidentOpened, severity: Some(Severity::Sev3), services: &[shop], tags: &tags };
        assert!(matches(&rule(spec()), &e));
        assert!(!matches(&rule(RuleSpec { events: vec![EventKind::ProbeUp], ..spec() }), &e));
        assert!(!matches(&rule(RuleSpec { enabled: false, ..spec() }), &e));
        assert!(matches(&rule(RuleSpec { min_severity: Some(Severity::Sev3), ..spec() }), &e));
        assert!(!matches(&rule(RuleSpec { min_severity: Some(Severity::Sev2), ..spec() }), &e));
        assert!(matches(&rule(RuleSpec { services: vec![shop], ..spec() }), &e));
        assert!(!matches(&rule(RuleSpec { services: vec![Uuid::new_v4()], ..spec() }), &e));
        assert!(matches(
            &rule(RuleSpec { services: vec![Uuid::new_v4()], tags: vec!["Payments".into()], ..spec() }),
            &e
        ));
        let unscoped = Scope { kind: EventKind::IncidentOpened, severity: None, services: &[], tags: &[] };
        assert!(!matches(&rule(RuleSpec { tags: vec!["payments".into()], ..spec() }), &unscoped));
        assert!(matches(&rule(RuleSpec { min_severity: Some(Severity::Sev1), ..spec() }), &unscoped));
    }
}
