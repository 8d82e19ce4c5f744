//! Sending one message, over the same network policy as probes: HTTP through the check engine's
//! connection path (resolved and policy-checked, one timeout, redirects never followed so no
//! credential goes anywhere else), email over SMTP with `lettre` to an address the policy allowed.

use std::time::Duration;

use app::model::{ErrorClass, SmtpSecurity};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::render::{Email, Outbound};
use crate::monitor::check::http::{self as check_http, HttpCheck};
use crate::monitor::check::policy::{NetworkPolicy, ResolveError, resolve_checked};

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// Worth trying again (a timeout, a 5xx, a 429), not before `retry_after` if the receiver
    /// said so.
    Transient { answer: String, retry_after: Option<Duration> },
    /// Trying again cannot help (a 4xx, a refused address, a bad configuration).
    Permanent { answer: String },
}

impl Refused {
    pub fn answer(&self) -> &str {
        match self {
            Self::Transient { answer, .. } | Self::Permanent { answer } => answer,
        }
    }
}

/// Longest part of a receiver's answer kept in the delivery log.
const ANSWER_EXCERPT: usize = 300;

/// Sends `out`; `Ok` carries the receiver's answer ("HTTP 200", "250 OK …").
pub async fn send(out: Outbound, policy: &NetworkPolicy, timeout: Duration, event_id: &str) -> Result<String, Refused> {
    match out {
        Outbound::Http { url, headers, body } => send_http(&url, headers, body, policy, timeout).await,
        Outbound::Email(mail) => send_email(mail, policy, timeout, event_id).await,
    }
}

fn permanent(answer: impl Into<String>) -> Refused {
    Refused::Permanent { answer: answer.into() }
}

async fn send_http(
    url: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    policy: &NetworkPolicy,
    timeout: Duration,
) -> Result<String, Refused> {
    let url = url::Url::parse(url).map_err(|e| permanent(format!("invalid url: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(permanent("the url must be http:// or https://"));
    }
    let mut check = HttpCheck::get(url, timeout);
    check.method = Method::POST;
    check.body = Some(Bytes::from(body));
    check.body_cap = 64 << 10;
    check.follow_redirects = false;
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| permanent(format!("invalid header name {k:?}")))?;
        let value = HeaderValue::from_str(&v).map_err(|_| permanent(format!("invalid value for header {k}")))?;
        check.headers.push((name, value));
    }
    let answer = match check_http::send(&check, policy).await {
        Ok(a) => a,
        Err((ErrorClass::BlockedByPolicy, detail)) => return Err(permanent(detail)),
        Err((class, detail)) => {
            return Err(Refused::Transient { answer: format!("{}: {detail}", class.as_str()), retry_after: None });
        }
    };
    let excerpt: String = String::from_utf8_lossy(&answer.body).chars().take(ANSWER_EXCERPT).collect();
    let text = if excerpt.trim().is_empty() {
        format!("HTTP {}", answer.status)
    } else {
        format!("HTTP {}: {}", answer.status, excerpt.trim())
    };
    match answer.status {
        200..=299 => Ok(text),
        408 | 425 | 429 | 500..=599 => Err(Refused::Transient {
            answer: text,
            retry_after: answer
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after),
        }),
        // A redirect is not followed (credentials must not travel), and a 4xx will not change.
        _ => Err(permanent(text)),
    }
}

/// `Retry-After` as seconds or an HTTP date, capped at an hour.
pub fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or_default()
        }
    };
    Some(d.min(Duration::from_secs(3600)))
}

async fn send_email(mail: Email, policy: &NetworkPolicy, timeout: Duration, event_id: &str) -> Result<String, Refused> {
    let from: Mailbox = mail.from.parse().map_err(|e| permanent(format!("from: {e}")))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(mail.subject)
        // Receivers that see the same message twice (the one repeat no sender can rule out) can
        // tell by its id.
        .message_id(Some(format!("<{event_id}@triage>")));
    for to in &mail.to {
        builder = builder.to(to.parse::<Mailbox>().map_err(|e| permanent(format!("to: {to}: {e}")))?);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
        .map_err(|e| permanent(format!("building the message: {e}")))?;
    let addrs = tokio::time::timeout(timeout, resolve_checked(policy, &mail.host, mail.port))
        .await
        .map_err(|_| Refused::Transient { answer: "dns: lookup timed out".into(), retry_after: None })?
        .map_err(|e| match e {
            ResolveError::Blocked { .. } => permanent(e.to_string()),
            ResolveError::Dns(d) => Refused::Transient { answer: format!("dns: {d}"), retry_after: None },
        })?;
    // Connect to the address just checked, never to a second lookup of the name; TLS still
    // verifies the certificate against the name.
    let addr = addrs[0];
    let params = || {
        TlsParameters::builder(mail.host.clone())
            .dangerous_accept_invalid_certs(mail.accept_invalid_certs)
            .build_rustls()
            .map_err(|e| permanent(format!("TLS set-up: {e}")))
    };
    let tls = match mail.security {
        SmtpSecurity::Starttls => Tls::Required(params()?),
        SmtpSecurity::Tls => Tls::Wrapper(params()?),
        SmtpSecurity::None => Tls::None,
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .tls(tls)
        .timeout(Some(timeout));
    if let Some(user) = mail.username {
        transport = transport.credentials(Credentials::new(user, mail.password.unwrap_or_default()));
    }
    let transport = transport.build();
    match tokio::time::timeout(timeout * 3, transport.send(message)).await {
        Err(_) => Err(Refused::Transient {
            answer: "timeout: the SMTP conversation did not finish".into(),
            retry_after: None,
        }),
        Ok(Ok(response)) => {
            Ok(format!("SMTP {} {}", response.code(), response.message().collect::<Vec<_>>().join(" "))
                .trim()
                .to_string())
        }
        Ok(Err(e)) if e.is_permanent() => Err(permanent(format!("SMTP: {e}"))),
        Ok(Err(e)) => Err(Refused::Transient { answer: format!("SMTP: {e}"), retry_after: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("999999"), Some(Duration::from_secs(3600)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "a past date: now");
        assert_eq!(retry_after("soon"), None);
    }
}
