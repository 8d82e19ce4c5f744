//! One event in each channel's format. Nothing here runs user code or reads anything beyond the
//! event: the messages are built from its fields, escaped for the target's markup.

use std::fmt::Write as _;

use app::model::{ChannelKind, ChannelSpec, EventKind, IncidentStatus, Notification, Outcome, Severity, SmtpSecurity};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a channel sends: an HTTP request, or an email.
#[derive(Debug)]
pub enum Outbound {
    Http { url: String, headers: Vec<(String, String)>, body: Vec<u8> },
    Email(Email),
}

#[derive(Debug)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub accept_invalid_certs: bool,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// PagerDuty's public Events API v2, when a channel names no other endpoint.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Turns the stored paths into links under `base` (`--public-url`, or the address Triage serves).
pub fn absolutize(n: &mut Notification, base: &str) {
    let base = base.trim_end_matches('/');
    let abs = |p: &mut String| {
        if p.starts_with('/') {
            *p = format!("{base}{p}");
        }
    };
    abs(&mut n.url);
    if let Some(i) = &mut n.incident {
        abs(&mut i.url);
    }
    if let Some(s) = &mut n.service {
        abs(&mut s.url);
    }
    if let Some(s) = &mut n.subject
        && let Some(u) = &mut s.url
    {
        abs(u);
    }
}

/// The headline: the summary, and for a flap summary how many changes it stands for.
pub fn headline(n: &Notification) -> String {
    match (n.covers, n.covers_since) {
        (Some(c), Some(since)) => format!(
            "{} ({} state change{} since {}, grouped to stop flapping)",
            n.summary,
            c,
            if c == 1 { "" } else { "s" },
            since.format("%H:%M UTC")
        ),
        _ => n.summary.clone(),
    }
}

/// The facts every format shows, in order.
pub fn facts(n: &Notification) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    if let Some(i) = &n.incident {
        f.push(("Incident", i.title.clone()));
        f.push(("Severity", i.severity.as_str().to_string()));
        f.push(("Status", i.status.as_str().to_string()));
        f.push(("Commander", i.commander.clone().unwrap_or_else(|| "nobody yet".into())));
        if !i.changes.is_empty() {
            f.push(("Changed", i.changes.join("; ")));
        }
    } else if let Some(s) = n.severity {
        f.push(("Severity", s.as_str().to_string()));
    }
    if let Some(s) = &n.service {
        f.push(("Service", s.name.clone()));
    }
    if let Some(p) = &n.probe {
        f.push(("Probe", p.name.clone()));
        let state = match p.previous {
            Some(prev) => format!("{} (was {})", p.state.as_str(), prev.as_str()),
            None => p.state.as_str().to_string(),
        };
        f.push(("State", state));
        let e = &p.evidence;
        if let Some(l) = &e.locations {
            f.push(("Locations", l.clone()));
        }
        if let Some(s) = e.status {
            f.push(("HTTP status", s.to_string()));
        }
        if let Some(class) = &e.error {
            let mut v = class.clone();
            if let Some(d) = &e.detail {
                v.push_str(": ");
                v.push_str(d);
            }
            f.push(("Error", v));
        }
        if let Some(ph) = &e.phase {
            f.push(("Slow phase", ph.clone()));
        }
        if let Some(r) = &e.request_id {
            f.push(("Request id", r.clone()));
        }
    }
    if let Some(s) = &n.subject {
        f.push((
            match s.kind.as_str() {
                "channel" => "Channel",
                "postmortem" => "Postmortem",
                "action_item" => "Action item",
                "certificate" => "Certificate",
                _ => "About",
            },
            s.name.clone(),
        ));
    }
    f
}

fn emoji(n: &Notification) -> &'static str {
    match n.event {
        EventKind::IncidentResolved | EventKind::ProbeUp => "✅",
        EventKind::IncidentOpened | EventKind::ProbeDown => "🔴",
        EventKind::ProbeDegraded | EventKind::CertificateExpiring | EventKind::SloBurn | EventKind::ChannelFailing => {
            "🟠"
        }
        EventKind::IncidentUpdated => "🔷",
        EventKind::PostmortemPublished => "📝",
        EventKind::ActionItemOverdue => "⏰",
        EventKind::Test => "🧪",
    }
}

/// Colour for chat embeds: red for outages, orange for warnings, green for recoveries.
fn colour(n: &Notification) -> u32 {
    match n.event {
        EventKind::IncidentResolved | EventKind::ProbeUp => 0x2e_a0_43,
        EventKind::IncidentOpened | EventKind::ProbeDown => 0xd1_24_2f,
        EventKind::ProbeDegraded | EventKind::CertificateExpiring | EventKind::SloBurn | EventKind::ChannelFailing => {
            0xd2_99_22
        }
        _ => 0x57_60_6a,
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Slack's mrkdwn: `&`, `<` and `>` are its control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Discord and Teams read Markdown: neutralise its markers so a service name cannot format or
/// link the message.
fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '(' | ')' | '#' | '<' | '>' | '@') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// `X-Triage-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    format!("t={t},v1={hex}")
}

fn json(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

const JSON: (&str, &str) = ("content-type", "application/json");

fn header(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

/// The message for `spec`'s channel. `now` signs webhooks (receivers reject old timestamps).
pub fn render(spec: &ChannelSpec, n: &Notification, now: i64) -> Result<Outbound, String> {
    let url = || spec.url.clone().ok_or_else(|| "the channel has no url".to_string());
    match spec.kind {
        ChannelKind::Webhook => {
            let body = serde_json::to_vec(n).map_err(|e| e.to_string())?;
            let mut headers: Vec<(String, String)> = spec.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            headers.push(header(JSON.0, JSON.1));
            headers.push(header("x-triage-event", n.event.as_str()));
            headers.push(header("x-triage-event-id", n.id.to_string()));
            if let Some(secret) = spec.secret.as_deref().filter(|s| !s.is_empty()) {
                headers.push(header("x-triage-signature", signature(secret, now, &body)));
            }
            Ok(Outbound::Http { url: url()?, headers, body })
        }
        ChannelKind::Slack => {
            Ok(Outbound::Http { url: url()?, headers: vec![header(JSON.0, JSON.1)], body: json(&slack(n)) })
        }
        ChannelKind::Discord => {
            Ok(Outbound::Http { url: url()?, headers: vec![header(JSON.0, JSON.1)], body: json(&discord(n)) })
        }
        ChannelKind::Teams => {
            Ok(Outbound::Http { url: url()?, headers: vec![header(JSON.0, JSON.1)], body: json(&teams(n)) })
        }
        ChannelKind::Ntfy => {
            let (endpoint, body) = ntfy(spec, n)?;
            let mut headers = vec![header(JSON.0, JSON.1)];
            if let Some(t) = spec.token.as_deref().filter(|t| !t.is_empty()) {
                headers.push(header("authorization", format!("Bearer {t}")));
            }
            Ok(Outbound::Http { url: endpoint, headers, body: json(&body) })
        }
        ChannelKind::Pagerduty => {
            let key = spec.routing_key.clone().ok_or_else(|| "the channel has no routing_key".to_string())?;
            let endpoint = spec.url.clone().unwrap_or_else(|| PAGERDUTY_URL.to_string());
            Ok(Outbound::Http { url: endpoint, headers: vec![header(JSON.0, JSON.1)], body: json(&pagerduty(&key, n)) })
        }
        ChannelKind::Email => Ok(Outbound::Email(email(spec, n)?)),
    }
}

fn slack(n: &Notification) -> serde_json::Value {
    let title = cut(&format!("{} {}", emoji(n), headline(n)), 150);
    let mut lines = String::new();
    for (k, v) in facts(n) {
        let _ = writeln!(lines, "*{k}:* {}", slack_escape(&cut(&v, 300)));
    }
    serde_json::json!({
        "text": format!("{} {}", emoji(n), slack_escape(&headline(n))),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&lines, 2900)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
                "Triage · `{}` · <{}|Open in Triage>", n.event.as_str(), slack_escape(&n.url))}]}
        ]
    })
}

fn discord(n: &Notification) -> serde_json::Value {
    let fields: Vec<serde_json::Value> = facts(n)
        .into_iter()
        .take(25)
        .map(|(k, v)| serde_json::json!({"name": k, "value": cut(&markdown_escape(&v), 1024), "inline": v.len() < 40}))
        .collect();
    serde_json::json!({
        "username": "Triage",
        // Nothing in a message may ping @everyone or a role, whatever a name contains.
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": cut(&format!("{} {}", emoji(n), markdown_escape(&headline(n))), 256),
            "url": n.url,
            "color": colour(n),
            "fields": fields,
            "timestamp": n.at.to_rfc3339(),
            "footer": {"text": format!("Triage · {}", n.event.as_str())}
        }]
    })
}

fn teams(n: &Notification) -> serde_json::Value {
    let facts: Vec<serde_json::Value> = facts(n)
        .into_iter()
        .map(|(k, v)| serde_json::json!({"title": k, "value": markdown_escape(&cut(&v, 500))}))
        .collect();
    let attention = matches!(n.event, EventKind::IncidentOpened | EventKind::ProbeDown);
    serde_json::json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
                     "color": if attention { "Attention" } else { "Default" },
                     "text": markdown_escape(&format!("{} {}", emoji(n), headline(n)))},
                    {"type": "FactSet", "facts": facts},
                    {"type": "TextBlock", "isSubtle": true, "size": "Small", "wrap": true,
                     "text": format!("Triage · {} · {}", n.event.as_str(), n.at.format("%Y-%m-%d %H:%M:%S UTC"))}
                ],
                "actions": [{"type": "Action.OpenUrl", "title": "Open in Triage", "url": n.url}]
            }
        }]
    })
}

/// ntfy's JSON publishing: posted to the server's root with the topic in the body (so titles
/// and messages may hold any character, unlike its header form).
fn ntfy(spec: &ChannelSpec, n: &Notification) -> Result<(String, serde_json::Value), String> {
    let raw = spec.url.as_deref().ok_or("the channel has no url")?;
    let mut url = url::Url::parse(raw).map_err(|e| format!("url: {e}"))?;
    let topic = url
        .path_segments()
        .and_then(|mut s| s.rfind(|p| !p.is_empty()).map(str::to_string))
        .ok_or("url must end with the topic (https://ntfy.sh/my-topic)")?;
    let root_path =
        url.path().trim_end_matches('/').rsplit_once('/').map(|(p, _)| format!("{p}/")).unwrap_or("/".into());
    url.set_path(&root_path);
    url.set_query(None);
    let urgent = matches!(n.event, EventKind::IncidentOpened | EventKind::ProbeDown);
    let priority = if urgent { spec.priority.unwrap_or(5) } else { 3 };
    let tag = match n.event {
        EventKind::IncidentResolved | EventKind::ProbeUp => "white_check_mark",
        EventKind::IncidentOpened | EventKind::ProbeDown => "rotating_light",
        EventKind::ProbeDegraded | EventKind::CertificateExpiring | EventKind::SloBurn | EventKind::ChannelFailing => {
            "warning"
        }
        _ => "information_source",
    };
    let mut message = String::new();
    for (k, v) in facts(n) {
        let _ = writeln!(message, "{k}: {v}");
    }
    Ok((
        url.to_string(),
        serde_json::json!({
            "topic": topic,
            "title": cut(&headline(n), 250),
            "message": cut(message.trim_end(), 3500),
            "priority": priority,
            "tags": [tag],
            "click": n.url,
            "actions": [{"action": "view", "label": "Open in Triage", "url": n.url}]
        }),
    ))
}

/// PagerDuty's incident follows Triage's: one dedup key per incident (or per probe without an
/// incident), triggered, acknowledged when someone takes command, resolved with it.
fn pagerduty(routing_key: &str, n: &Notification) -> serde_json::Value {
    let (dedup, action) = match (&n.incident, &n.probe) {
        (Some(i), _) => {
            let action = match n.event {
                EventKind::IncidentResolved => "resolve",
                EventKind::IncidentUpdated
                    if i.status != IncidentStatus::Investigating
                        || i.changes.iter().any(|c| c.starts_with("commander")) =>
                {
                    "acknowledge"
                }
                _ => "trigger",
            };
            (format!("triage-incident-{}", i.id), action)
        }
        (None, Some(p)) => {
            (format!("triage-probe-{}", p.id), if p.state == Outcome::Up { "resolve" } else { "trigger" })
        }
        (None, None) => (format!("triage-event-{}", n.id), "trigger"),
    };
    let mut body = serde_json::json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup,
        "client": "Triage",
        "client_url": n.url,
        "links": [{"href": n.url, "text": "Open in Triage"}],
    });
    if action == "trigger" {
        let severity = match n.severity {
            Some(Severity::Sev1) => "critical",
            Some(Severity::Sev2) => "error",
            Some(Severity::Sev3) => "warning",
            _ if n.event == EventKind::ProbeDegraded => "warning",
            _ => "info",
        };
        let details: serde_json::Map<String, serde_json::Value> =
            facts(n).into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v))).collect();
        body["payload"] = serde_json::json!({
            "summary": cut(&headline(n), 1024),
            "source": n.service.as_ref().map_or("triage", |s| s.name.as_str()),
            "severity": severity,
            "timestamp": n.at.to_rfc3339(),
            "component": n.probe.as_ref().map(|p| p.name.clone()),
            "group": n.service.as_ref().map(|s| s.name.clone()),
            "class": n.event.as_str(),
            "custom_details": details,
        });
    }
    body
}

fn email(spec: &ChannelSpec, n: &Notification) -> Result<Email, String> {
    let host = spec.host.clone().ok_or("the channel has no host")?;
    let from = spec.from.clone().ok_or("the channel has no from address")?;
    if spec.to.is_empty() {
        return Err("the channel has no recipients (to)".into());
    }
    let security = spec.security.unwrap_or_default();
    let port = spec.port.unwrap_or(match security {
        SmtpSecurity::Tls => 465,
        SmtpSecurity::Starttls => 587,
        SmtpSecurity::None => 25,
    });
    let title = headline(n);
    let mut text = format!("{title}\n\n");
    let mut rows = String::new();
    for (k, v) in facts(n) {
        let _ = writeln!(text, "{k}: {v}");
        let _ = write!(
            rows,
            "<tr><th align=\"left\" style=\"padding:2px 12px 2px 0\">{}</th><td>{}</td></tr>",
            html_escape(k),
            html_escape(&v)
        );
    }
    let _ = write!(text, "\nOpen in Triage: {}\n\n-- \nTriage · {} · {}\n", n.url, n.event.as_str(), n.id);
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2 style=\"margin:0 0 8px\">{}</h2>\
         <table>{rows}</table><p><a href=\"{}\">Open in Triage</a></p>\
         <p style=\"color:#666;font-size:12px\">Triage · {} · {}</p></body></html>",
        html_escape(&format!("{} {}", emoji(n), title)),
        html_escape(&n.url),
        n.event.as_str(),
        n.id
    );
    Ok(Email {
        host,
        port,
        security,
        username: spec.username.clone().filter(|u| !u.is_empty()),
        password: spec.password.clone(),
        from,
        to: spec.to.clone(),
        accept_invalid_certs: spec.accept_invalid_certs,
        subject: cut(&format!("[Triage] {title}"), 200),
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // The value Python's hmac module computes for the same key and message.
        let sig = signature("key", 1_700_000_000, b"{}");
        assert_eq!(sig, "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae");
    }

    #[test]
    fn markup_in_names_is_neutralised() {
        assert_eq!(slack_escape("<!channel> & co"), "&lt;!channel&gt; &amp; co");
        assert_eq!(markdown_escape("@everyone [x](y)"), "\\@everyone \\[x\\]\\(y\\)");
        assert_eq!(html_escape("<b>\"x\"</b>"), "&lt;b&gt;&quot;x&quot;&lt;/b&gt;");
    }
}
