//! Notifications as the API and the pages see them: channels (where messages go), rules (which
//! events go where), the events themselves (the webhook body, `"version": 1`) and the delivery
//! log. Field names and values are part of the REST API and pinned by tests.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{IncidentStatus, Outcome, SECRET_MASK, Severity};

/// The version of the webhook body; a change that breaks receivers gets a new number.
pub const WEBHOOK_VERSION: u32 = 1;

/// Where a channel's messages go and in which format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Triage's own JSON body, signed.
    #[default]
    Webhook,
    /// A Slack incoming webhook (Mattermost and Rocket.Chat accept the same).
    Slack,
    Discord,
    /// A Microsoft Teams workflow webhook, given an Adaptive Card.
    Teams,
    Ntfy,
    /// PagerDuty's Events API v2.
    Pagerduty,
    Email,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 7] =
        [Self::Webhook, Self::Slack, Self::Discord, Self::Teams, Self::Ntfy, Self::Pagerduty, Self::Email];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Teams => "teams",
            Self::Ntfy => "ntfy",
            Self::Pagerduty => "pagerduty",
            Self::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Webhook => "Webhook",
            Self::Slack => "Slack-compatible",
            Self::Discord => "Discord",
            Self::Teams => "Microsoft Teams",
            Self::Ntfy => "ntfy",
            Self::Pagerduty => "PagerDuty",
            Self::Email => "Email (SMTP)",
        }
    }

    /// Whether the whole endpoint URL is a credential (a chat webhook's URL carries its token).
    pub fn url_is_secret(self) -> bool {
        matches!(self, Self::Slack | Self::Discord | Self::Teams)
    }

    /// The fields a channel of this kind may carry besides `name`, `kind` and `enabled`.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Webhook => &["url", "secret", "headers"],
            Self::Slack | Self::Discord | Self::Teams => &["url"],
            Self::Ntfy => &["url", "token", "priority"],
            Self::Pagerduty => &["url", "routing_key"],
            Self::Email => &["host", "port", "security", "username", "password", "from", "to", "accept_invalid_certs"],
        }
    }
}

/// How an SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required: never falls back to plain text).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: only for a relay on this machine or a trusted network.
    None,
}

/// A channel as written (POST/PUT) and as read (GET, with secrets masked). One flat object:
/// `{"name", "kind", "url", …kind-specific fields}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelSpec {
    pub name: String,
    pub kind: ChannelKind,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The endpoint (every kind but email). PagerDuty defaults to its public Events API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Webhook: the HMAC-SHA256 key of `X-Triage-Signature` (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Webhook: extra request headers (values write-only: they often hold credentials).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// ntfy: an access token, sent as a bearer token (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// ntfy: the message priority for incidents and outages (1–5; recoveries are sent at 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// PagerDuty: the integration's routing key (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    /// Email: the SMTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SmtpSecurity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Email: the SMTP password (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// Email: accept a certificate that does not verify (a relay with a self-signed one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_invalid_certs: bool,
}

fn yes() -> bool {
    true
}

/// The part of a URL that must not be shown: for chat webhooks everything after the host, for
/// other URLs the password and the query string (tokens are often passed there).
fn mask_url(url: &str, whole_path: bool) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return SECRET_MASK.to_string() };
    let rest = &url[scheme_end..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let host = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:{SECRET_MASK}@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = &rest[authority_len..];
    let tail = if whole_path {
        if tail.is_empty() { String::new() } else { format!("/{SECRET_MASK}") }
    } else {
        match tail.split_once('?') {
            Some((path, _)) => format!("{path}?{SECRET_MASK}"),
            None => tail.to_string(),
        }
    };
    format!("{}{host}{tail}", &url[..scheme_end])
}

/// Scheme and authority without userinfo, lower-cased: secrets stay with the endpoint they were
/// given for.
fn endpoint(spec: &ChannelSpec) -> Option<String> {
    if spec.kind == ChannelKind::Email {
        return spec.host.as_ref().map(|h| format!("smtp://{}:{}", h.to_ascii_lowercase(), spec.port.unwrap_or(0)));
    }
    let url = spec.url.as_deref()?;
    let start = url.find("://")? + 3;
    let authority_len = url[start..].find(['/', '?', '#']).unwrap_or(url.len() - start);
    let authority = &url[start..start + authority_len];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(format!("{}{}", url[..start].to_ascii_lowercase(), host.to_ascii_lowercase()))
}

impl ChannelSpec {
    /// The channel as the API returns it: every secret replaced by [`SECRET_MASK`].
    pub fn masked(&self) -> Self {
        let mut s = self.clone();
        let hide = |v: &mut Option<String>| {
            if v.is_some() {
                *v = Some(SECRET_MASK.into());
            }
        };
        hide(&mut s.secret);
        hide(&mut s.token);
        hide(&mut s.routing_key);
        hide(&mut s.password);
        for v in s.headers.values_mut() {
            *v = SECRET_MASK.into();
        }
        if let Some(url) = &mut s.url {
            *url = mask_url(url, self.kind.url_is_secret());
        }
        s
    }

    /// Puts back the stored secrets wherever the writer sent the mask (or left a secret out) and
    /// the endpoint did not change. Returns the field that still holds a mask.
    pub fn unmask(&mut self, stored: Option<&ChannelSpec>) -> Result<(), &'static str> {
        let same = stored.filter(|s| s.kind == self.kind && endpoint(s) == endpoint(self));
        if let Some(stored) = same {
            let keep = |mine: &mut Option<String>, theirs: &Option<String>| {
                if mine.as_deref().is_none_or(|v| v == SECRET_MASK) {
                    mine.clone_from(theirs);
                }
            };
            keep(&mut self.secret, &stored.secret);
            keep(&mut self.token, &stored.token);
            keep(&mut self.routing_key, &stored.routing_key);
            keep(&mut self.password, &stored.password);
            for (name, v) in self.headers.iter_mut() {
                if v == SECRET_MASK
                    && let Some(original) = stored.headers.get(name)
                {
                    v.clone_from(original);
                }
            }
            if self.url.is_some() && self.url == stored.masked().url {
                self.url.clone_from(&stored.url);
            }
        }
        let masked = |v: &Option<String>| v.as_deref().is_some_and(|v| v.contains(SECRET_MASK));
        for (field, value) in [
            ("secret", &self.secret),
            ("token", &self.token),
            ("routing_key", &self.routing_key),
            ("password", &self.password),
            ("url", &self.url),
        ] {
            if masked(value) {
                return Err(field);
            }
        }
        if self.headers.values().any(|v| v == SECRET_MASK) {
            return Err("headers");
        }
        Ok(())
    }
}

/// How a channel's deliveries have been going.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelHealth {
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// Set while attempts fail, from the first failure after the last success.
    pub failing_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Deliveries waiting for their (next) attempt.
    pub pending: i64,
    /// Deliveries that ran out of attempts.
    pub failed: i64,
}

/// A stored channel (GET): its spec with secrets masked, flattened into one object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Channel {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: ChannelSpec,
    pub health: ChannelHealth,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What can be notified. The names are the API's (`incident.opened`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventKind {
    /// Opened, or reopened (`"reopened": true`).
    #[serde(rename = "incident.opened")]
    IncidentOpened,
    /// Severity or status changed, or a commander was assigned.
    #[serde(rename = "incident.updated")]
    IncidentUpdated,
    #[serde(rename = "incident.resolved")]
    IncidentResolved,
    /// A probe confirmed down while its service has no open incident.
    #[serde(rename = "probe.down")]
    ProbeDown,
    #[serde(rename = "probe.degraded")]
    ProbeDegraded,
    #[serde(rename = "probe.up")]
    ProbeUp,
    #[serde(rename = "certificate.expiring")]
    CertificateExpiring,
    /// An error budget burning too fast (a multi-window burn-rate alert) while its service has
    /// no open incident (with one, it goes into the room; a fast burn may open one).
    #[serde(rename = "slo.burn")]
    SloBurn,
    #[serde(rename = "postmortem.published")]
    PostmortemPublished,
    #[serde(rename = "action_item.overdue")]
    ActionItemOverdue,
    /// A channel's deliveries have been failing for a while (sent to the other channels).
    #[serde(rename = "channel.failing")]
    ChannelFailing,
    /// "Send test" from the channel's page (never routed by rules).
    #[serde(rename = "test")]
    Test,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        Self::IncidentOpened,
        Self::IncidentUpdated,
        Self::IncidentResolved,
        Self::ProbeDown,
        Self::ProbeDegraded,
        Self::ProbeUp,
        Self::CertificateExpiring,
        Self::SloBurn,
        Self::PostmortemPublished,
        Self::ActionItemOverdue,
        Self::ChannelFailing,
        Self::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::IncidentOpened => "incident.opened",
            Self::IncidentUpdated => "incident.updated",
            Self::IncidentResolved => "incident.resolved",
            Self::ProbeDown => "probe.down",
            Self::ProbeDegraded => "probe.degraded",
            Self::ProbeUp => "probe.up",
            Self::CertificateExpiring => "certificate.expiring",
            Self::SloBurn => "slo.burn",
            Self::PostmortemPublished => "postmortem.published",
            Self::ActionItemOverdue => "action_item.overdue",
            Self::ChannelFailing => "channel.failing",
            Self::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The probe's own state events: flap control groups these.
    pub fn is_probe_state(self) -> bool {
        matches!(self, Self::ProbeDown | Self::ProbeDegraded | Self::ProbeUp)
    }

    pub fn for_outcome(o: Outcome) -> Self {
        match o {
            Outcome::Down => Self::ProbeDown,
            Outcome::Degraded => Self::ProbeDegraded,
            Outcome::Up => Self::ProbeUp,
        }
    }
}

/// Which events go to which channels. Empty `services` and `tags` match every service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub events: Vec<EventKind>,
    #[serde(default)]
    pub services: Vec<Uuid>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Only events at least this severe (SEV1 is the most severe); events without a severity
    /// (a postmortem, a failing channel) always pass.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    #[serde(default)]
    pub channels: Vec<Uuid>,
    /// Every channel, including those added later (the default rule's choice).
    #[serde(default)]
    pub all_channels: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rule {
    pub id: Uuid,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The evidence a probe event carries: what a responder would otherwise look up first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventEvidence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The error class (`timeout`, `status`, `connect`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The phase that grew against the healthy baseline ("TTFB grew 40 ms → 2.1 s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A probe run from several locations: which of them the state stands on ("down from 2 of 3
    /// locations: eu-west, us-east").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventIncident {
    pub id: Uuid,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    #[serde(default)]
    pub commander: Option<String>,
    /// What changed, for `incident.updated` ("severity SEV3 → SEV2", "commander → ana@…").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reopened: bool,
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventService {
    pub id: Uuid,
    pub name: String,
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventProbe {
    pub id: Uuid,
    pub name: String,
    pub state: Outcome,
    #[serde(default)]
    pub previous: Option<Outcome>,
    #[serde(default)]
    pub evidence: EventEvidence,
}

/// What an event is about beyond incidents and probes (a certificate, a postmortem, an action
/// item, a channel).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventSubject {
    pub kind: String,
    pub id: Uuid,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One event as receivers get it: the webhook body. `id` is the dedup key: a message sent again
/// (the one repeat no sender can rule out) carries the same id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    pub version: u32,
    pub id: Uuid,
    pub event: EventKind,
    pub at: DateTime<Utc>,
    /// Where to look: the incident, else the service, else Triage itself.
    pub url: String,
    /// One line for people ("shop / checkout is down (was up)").
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<EventIncident>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<EventService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<EventProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<EventSubject>,
    /// Flap control: how many state changes this one message stands for (absent when one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers_since: Option<DateTime<Utc>>,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first or next attempt (or held by flap control until `next_attempt_at`).
    Pending,
    Delivered,
    /// Out of attempts, or refused for good (a 4xx other than 408 and 429).
    Failed,
    /// Not sent: a maintenance window covered it.
    Suppressed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Suppressed => "suppressed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed, Self::Suppressed].into_iter().find(|k| k.as_str() == s)
    }
}

/// One (event, channel) in the delivery log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event: EventKind,
    pub channel_id: Uuid,
    pub summary: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The receiver's last answer ("HTTP 500: …", "timed out after 10 s").
    #[serde(default)]
    pub last_answer: Option<String>,
    pub covers: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook_spec() -> ChannelSpec {
        ChannelSpec {
            name: "ops".into(),
            kind: ChannelKind::Webhook,
            enabled: true,
            url: Some("https://user:pw@hooks.example/in?token=abc".into()),
            secret: Some("k".into()),
            headers: BTreeMap::from([("Authorization".to_string(), "Bearer x".to_string())]),
            ..ChannelSpec::default()
        }
    }

    #[test]
    fn secrets_are_masked_and_restored_only_for_the_same_endpoint() {
        let stored = webhook_spec();
        let masked = stored.masked();
        assert_eq!(masked.url.as_deref(), Some("https://user:••••••••@hooks.example/in?••••••••"));
        assert_eq!(masked.secret.as_deref(), Some(SECRET_MASK));
        assert_eq!(masked.headers["Authorization"], SECRET_MASK);
        let mut back = masked.clone();
        back.unmask(Some(&stored)).expect("restored");
        assert_eq!(back, stored);
        // Moved to another host: the old secrets do not follow.
        let mut moved = masked.clone();
        moved.url = Some("https://elsewhere.example/in".into());
        assert_eq!(moved.unmask(Some(&stored)), Err("secret"));
        // Left out on update: kept.
        let mut partial = stored.clone();
        partial.secret = None;
        partial.unmask(Some(&stored)).expect("kept");
        assert_eq!(partial.secret.as_deref(), Some("k"));
    }

    #[test]
    fn a_chat_webhook_url_is_a_secret_past_its_host() {
        let slack = ChannelSpec {
            name: "s".into(),
            kind: ChannelKind::Slack,
            url: Some("https://hooks.slack.com/services/T0/B0/XYZ".into()),
            ..ChannelSpec::default()
        };
        assert_eq!(slack.masked().url.as_deref(), Some("https://hooks.slack.com/••••••••"));
    }

    #[test]
    fn the_webhook_body_format_is_pinned() {
        let id = Uuid::nil();
        let at = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z").expect("time").with_timezone(&Utc);
        let n = Notification {
            version: WEBHOOK_VERSION,
            id,
            event: EventKind::ProbeDown,
            at,
            url: "https://triage.example/services/x".into(),
            summary: "shop / checkout is down".into(),
            severity: Some(Severity::Sev2),
            incident: None,
            service: Some(EventService { id, name: "shop".into(), url: "https://triage.example/services/x".into() }),
            probe: Some(EventProbe {
                id,
                name: "checkout".into(),
                state: Outcome::Down,
                previous: Some(Outcome::Up),
                evidence: EventEvidence { status: Some(503), error: Some("status".into()), ..Default::default() },
            }),
            subject: None,
            covers: None,
            covers_since: None,
        };
        let v = serde_json::to_value(&n).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "version": 1, "id": id, "event": "probe.down", "at": "2026-12-07T10:00:00Z",
                "url": "https://triage.example/services/x", "summary": "shop / checkout is down",
                "severity": "SEV2",
                "service": {"id": id, "name": "shop", "url": "https://triage.example/services/x"},
                "probe": {"id": id, "name": "checkout", "state": "down", "previous": "up",
                          "evidence": {"status": 503, "error": "status"}}
            })
        );
        let rule: RuleSpec = serde_json::from_value(serde_json::json!({
            "name": "pages", "events": ["incident.opened", "probe.down"], "min_severity": "SEV2",
            "channels": [id]
        }))
        .expect("rule");
        assert!(rule.enabled && rule.services.is_empty() && !rule.all_channels);
        assert_eq!(rule.events, vec![EventKind::IncidentOpened, EventKind::ProbeDown]);
        // A stored rule (its spec flattened beside the id) reads back as written.
        let stored = Rule { id, spec: rule, created_at: at, updated_at: at };
        let back: Rule = serde_json::from_value(serde_json::to_value(&stored).expect("json")).expect("rule");
        assert_eq!(back, stored);
    }
}
