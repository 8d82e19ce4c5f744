//! The events Triage announces, written by the code that makes the change, in its transaction:
//! if the change commits, so does its announcement, and if it rolls back, nobody hears of it.
//! Links are stored as paths; the sender puts `--public-url` in front when it sends.

use app::model::{
    EventIncident, EventKind, EventProbe, EventService, EventSubject, IncidentStatus, Notification, Outcome, Severity,
    WEBHOOK_VERSION,
};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::storage::notify::{self as store, NewEvent};

/// An incident as its events describe it.
pub struct IncidentFacts {
    pub id: Uuid,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub commander: Option<String>,
}

/// The probe change behind an event, with the service it belongs to.
pub struct ProbeFacts {
    pub service_id: Uuid,
    pub service: String,
    pub probe: EventProbe,
}

fn service_ref(id: Uuid, name: &str) -> EventService {
    EventService { id, name: name.to_string(), url: format!("/services/{id}") }
}

fn notification(kind: EventKind, at: DateTime<Utc>, url: String, summary: String) -> Notification {
    Notification {
        version: WEBHOOK_VERSION,
        id: Uuid::new_v4(),
        event: kind,
        at,
        url,
        summary,
        severity: None,
        incident: None,
        service: None,
        probe: None,
        subject: None,
        covers: None,
        covers_since: None,
    }
}

async fn write(
    conn: &mut PgConnection,
    n: &Notification,
    ids: (Option<Uuid>, Option<Uuid>, Option<Uuid>),
    dedup_key: Option<&str>,
    channel: Option<Uuid>,
) -> Result<bool, sqlx::Error> {
    let payload = serde_json::to_value(n).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let (service_id, probe_id, incident_id) = ids;
    store::insert_event(
        conn,
        &NewEvent {
            id: n.id,
            kind: n.event,
            at: n.at,
            payload: &payload,
            service_id,
            probe_id,
            incident_id,
            severity: n.severity.map(Severity::as_str),
            dedup_key,
            channel_id: channel,
        },
    )
    .await
}

/// `incident.opened` (or reopened), `incident.updated`, `incident.resolved`. `changes` says what
/// changed, in plain words; `cause` is the probe change that opened it, if one did.
pub async fn incident(
    conn: &mut PgConnection,
    kind: EventKind,
    f: &IncidentFacts,
    changes: Vec<String>,
    reopened: bool,
    cause: Option<ProbeFacts>,
) -> Result<(), sqlx::Error> {
    let verb = match kind {
        EventKind::IncidentOpened if reopened => "reopened",
        EventKind::IncidentOpened => "opened",
        EventKind::IncidentResolved => "resolved",
        _ => "updated",
    };
    let mut summary = format!("Incident {verb} [{}]: {}", f.severity.as_str(), f.title);
    if kind == EventKind::IncidentUpdated && !changes.is_empty() {
        summary.push_str(&format!(" ({})", changes.join(", ")));
    }
    let url = format!("/incidents/{}", f.id);
    let mut n = notification(kind, Utc::now(), url.clone(), summary);
    n.severity = Some(f.severity);
    n.incident = Some(EventIncident {
        id: f.id,
        title: f.title.clone(),
        severity: f.severity,
        status: f.status,
        commander: f.commander.clone(),
        changes,
        reopened,
        url,
    });
    let mut service_id = None;
    if let Some(c) = cause {
        service_id = Some(c.service_id);
        n.service = Some(service_ref(c.service_id, &c.service));
        n.probe = Some(c.probe);
    }
    write(conn, &n, (service_id, None, Some(f.id)), None, None).await.map(|_| ())
}

/// `probe.down` / `probe.degraded` / `probe.up`, for a service without an open incident.
pub async fn probe_state(
    conn: &mut PgConnection,
    facts: ProbeFacts,
    severity: Severity,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let p = &facts.probe;
    let summary = match (p.previous, p.state) {
        (Some(prev), Outcome::Up) => format!("{} / {} recovered: up (was {})", facts.service, p.name, prev.as_str()),
        (Some(prev), s) => format!("{} / {} is {} (was {})", facts.service, p.name, s.as_str(), prev.as_str()),
        (None, s) => format!("{} / {} is {}", facts.service, p.name, s.as_str()),
    };
    let url = format!("/services/{}", facts.service_id);
    let mut n = notification(EventKind::for_outcome(p.state), at, url, summary);
    n.severity = Some(severity);
    let probe_id = p.id;
    n.service = Some(service_ref(facts.service_id, &facts.service));
    n.probe = Some(facts.probe);
    write(conn, &n, (Some(facts.service_id), Some(probe_id), None), None, None).await.map(|_| ())
}

/// `channel.failing`, once per failing streak (the streak's start is in the dedup key).
pub async fn channel_failing(
    conn: &mut PgConnection,
    channel: Uuid,
    name: &str,
    since: DateTime<Utc>,
    last_error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let minutes = (Utc::now() - since).num_minutes().max(1);
    let mut summary = format!("Notification channel “{name}” has been failing for {minutes} min");
    if let Some(e) = last_error {
        summary.push_str(&format!(": {e}"));
    }
    let mut n = notification(EventKind::ChannelFailing, Utc::now(), "/admin#channels".into(), summary);
    n.subject = Some(EventSubject {
        kind: "channel".into(),
        id: channel,
        name: name.to_string(),
        url: Some("/admin#channels".into()),
    });
    let key = format!("channel.failing:{channel}:{}", since.timestamp_micros());
    write(conn, &n, (None, None, None), Some(&key), None).await
}

/// A test message for one channel ("Send test"); returns the event id.
pub async fn test(conn: &mut PgConnection, channel: Uuid, name: &str, by: &str) -> Result<Uuid, sqlx::Error> {
    let summary = format!("Test message for channel “{name}”, sent by {by}. If you can read this, it works.");
    let n = notification(EventKind::Test, Utc::now(), "/admin#channels".into(), summary);
    write(conn, &n, (None, None, None), None, Some(channel)).await?;
    Ok(n.id)
}

/// `certificate.expiring`, once per certificate (its expiry date is in the dedup key, so a
/// renewed one that is again close to expiry is announced again).
pub async fn certificate_expiring(
    conn: &mut PgConnection,
    c: &crate::storage::notify::ExpiringCertificate,
) -> Result<bool, sqlx::Error> {
    let expires = (c.at + chrono::Duration::days(i64::from(c.days_left))).date_naive();
    let summary = format!(
        "{} / {}: the certificate expires in {} day{} ({expires})",
        c.service,
        c.probe,
        c.days_left,
        if c.days_left == 1 { "" } else { "s" }
    );
    let url = format!("/services/{}", c.service_id);
    let mut n = notification(EventKind::CertificateExpiring, Utc::now(), url, summary);
    n.severity = Some(if c.days_left <= 3 { Severity::Sev2 } else { Severity::Sev3 });
    n.service = Some(service_ref(c.service_id, &c.service));
    n.subject = Some(EventSubject {
        kind: "certificate".into(),
        id: c.probe_id,
        name: format!("{} (expires {expires})", c.probe),
        url: None,
    });
    let key = format!("certificate.expiring:{}:{expires}", c.probe_id);
    write(conn, &n, (Some(c.service_id), Some(c.probe_id), None), Some(&key), None).await
}

/// `slo.burn`, once per alert (its firing time is in the dedup key).
pub async fn slo_burn(
    conn: &mut PgConnection,
    service_id: Uuid,
    service: &str,
    alert: &app::model::BurnAlert,
    severity: Severity,
) -> Result<(), sqlx::Error> {
    let summary = format!("{service}: {}", alert.describe());
    let url = format!("/services/{service_id}#slo");
    let mut n = notification(EventKind::SloBurn, alert.fired_at, url.clone(), summary);
    n.severity = Some(severity);
    n.service = Some(service_ref(service_id, service));
    n.subject = Some(EventSubject {
        kind: "slo".into(),
        id: service_id,
        name: format!("{service} {} objective", alert.objective.as_str()),
        url: Some(url),
    });
    let key = format!(
        "slo.burn:{service_id}:{}:{}:{}",
        alert.objective.as_str(),
        alert.speed.as_str(),
        alert.fired_at.timestamp_micros()
    );
    write(conn, &n, (Some(service_id), None, None), Some(&key), None).await.map(|_| ())
}

/// `action_item.overdue`, once per item and due date.
pub async fn action_item_overdue(
    conn: &mut PgConnection,
    item: &crate::storage::notify::OverdueItem,
) -> Result<bool, sqlx::Error> {
    let owner = if item.owner.is_empty() { "no owner".to_string() } else { item.owner.clone() };
    let summary = format!("Action item overdue since {} ({owner}): {}", item.due, item.title);
    let url = format!("/postmortems/{}", item.postmortem_id);
    let mut n = notification(EventKind::ActionItemOverdue, Utc::now(), url.clone(), summary);
    n.severity = Severity::parse(&item.severity);
    n.subject = Some(EventSubject {
        kind: "action_item".into(),
        id: item.item_id,
        name: format!("{} (postmortem of “{}”)", item.title, item.incident_title),
        url: Some(url),
    });
    let key = format!("action_item.overdue:{}:{}", item.item_id, item.due);
    write(conn, &n, (None, None, Some(item.incident_id)), Some(&key), None).await
}

/// `postmortem.published`.
pub async fn postmortem_published(
    conn: &mut PgConnection,
    postmortem: Uuid,
    incident: &IncidentFacts,
    by: &str,
) -> Result<(), sqlx::Error> {
    let summary = format!("Postmortem published by {by}: {}", incident.title);
    let url = format!("/postmortems/{postmortem}");
    let mut n = notification(EventKind::PostmortemPublished, Utc::now(), url.clone(), summary);
    n.severity = Some(incident.severity);
    n.subject =
        Some(EventSubject { kind: "postmortem".into(), id: postmortem, name: incident.title.clone(), url: Some(url) });
    write(conn, &n, (None, None, Some(incident.id)), None, None).await.map(|_| ())
}
