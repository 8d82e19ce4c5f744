//! Notifications: telling people. Events are written with the change they announce
//! ([`events`]), routed to channels by rules with flap control ([`router`]), and delivered from a
//! durable outbox with retries ([`outbox`]) in each channel's format ([`render`]) over the probe
//! network policy ([`send`]). This module is what the API and pages call: channels, rules, the
//! delivery log and "Send test".

pub mod events;
pub mod outbox;
pub mod render;
pub mod router;
pub mod send;

use std::time::Duration;

use app::model::{Channel, ChannelKind, ChannelSpec, Delivery, EventKind, Notification, Rule, RuleSpec, SECRET_MASK};
use uuid::Uuid;

use crate::access::actor::Actor;
use crate::error::Error;
use crate::storage::notify::{self as store, Attempt};
pub use outbox::Outbox;

#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Where links in messages point (`--public-url`, else the address Triage listens on).
    pub base_url: String,
    /// One attempt's limit (connect, send, answer).
    pub timeout: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// The first retry's wait; each later one doubles, up to `backoff_max`, with jitter.
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// A channel failing this long is announced to the other channels.
    pub failing_after: Duration,
    /// Flap control: a probe's changes reach a channel at most once per window, plus a summary.
    pub flap_window: Duration,
    /// Attempts under way at once.
    pub concurrency: usize,
    /// How often the outbox is looked at when nothing wakes it.
    pub poll: Duration,
    /// How often failing channels are looked for.
    pub housekeeping: Duration,
    /// How often certificates and action items are checked.
    pub scan_every: Duration,
    /// A certificate expiring within this many days is announced.
    pub cert_days: u32,
    /// How long events and their delivery log are kept.
    pub log_retention: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:3000".into(),
            timeout: Duration::from_secs(10),
            max_attempts: 12,
            backoff: Duration::from_secs(10),
            backoff_max: Duration::from_secs(15 * 60),
            failing_after: Duration::from_secs(10 * 60),
            flap_window: Duration::from_secs(10 * 60),
            concurrency: 16,
            poll: Duration::from_secs(2),
            housekeeping: Duration::from_secs(15),
            scan_every: Duration::from_secs(600),
            cert_days: 14,
            log_retention: Duration::from_secs(90 * 86_400),
        }
    }
}

impl NotifySettings {
    /// The wait before attempt `attempts + 1`: exponential with "equal jitter" (half fixed, half
    /// random, so retries of many deliveries spread out), never sooner than the receiver asked.
    pub fn backoff_after(&self, attempts: i32, retry_after: Option<Duration>) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(20);
        let full = self.backoff.saturating_mul(1 << doublings).min(self.backoff_max);
        let half = full / 2;
        let jittered = half + half.mul_f64(fastrand::f64());
        jittered.max(retry_after.unwrap_or_default())
    }
}

/// What the API and pages use.
#[derive(Clone)]
pub struct Notifier {
    pub outbox: Outbox,
}

const MAX_NAME: usize = 100;
const MAX_HEADERS: usize = 20;
const MAX_RECIPIENTS: usize = 50;

fn check_name(name: &str) -> Result<String, Error> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(Error::invalid("name", "must be 1–100 characters on one line"));
    }
    Ok(n.to_string())
}

fn check_url(field: &str, raw: &str) -> Result<(), Error> {
    let u = url::Url::parse(raw).map_err(|e| Error::invalid(field, format!("not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(Error::invalid(field, "must be an http:// or https:// URL with a host"));
    }
    Ok(())
}

/// Fields that mean nothing for the kind are refused by name (a typo must not pass silently).
pub fn check_fields(raw: &serde_json::Value) -> Result<(), Error> {
    let Some(obj) = raw.as_object() else { return Ok(()) };
    let kind = obj.get("kind").and_then(|k| k.as_str()).and_then(ChannelKind::parse);
    for key in obj.keys() {
        let common = matches!(key.as_str(), "name" | "kind" | "enabled");
        // Read-only fields of a channel fetched and sent back are ignored.
        let read_only = matches!(key.as_str(), "id" | "health" | "created_at" | "updated_at");
        let known = kind.is_none_or(|k| k.fields().contains(&key.as_str()));
        if !common && !read_only && !known {
            let k = kind.map_or("this", ChannelKind::as_str);
            return Err(Error::invalid(key.as_str(), format!("not a field of a {k} channel")));
        }
    }
    Ok(())
}

fn validate_channel(spec: &mut ChannelSpec) -> Result<(), Error> {
    spec.name = check_name(&spec.name)?;
    match spec.kind {
        ChannelKind::Email => {
            let host = spec.host.as_deref().map(str::trim).unwrap_or_default();
            if host.is_empty() || host.contains(['/', ' ', '@']) {
                return Err(Error::invalid("host", "the SMTP server's name or address"));
            }
            let from = spec.from.as_deref().unwrap_or_default();
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(Error::invalid("from", "an email address (Name <ops@example.com> or ops@example.com)"));
            }
            if spec.to.is_empty() || spec.to.len() > MAX_RECIPIENTS {
                return Err(Error::invalid("to", format!("1–{MAX_RECIPIENTS} recipients")));
            }
            for (i, to) in spec.to.iter().enumerate() {
                if to.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(Error::invalid(format!("to[{i}]"), "not an email address"));
                }
            }
            if spec.password.is_some() && spec.username.as_deref().is_none_or(str::is_empty) {
                return Err(Error::invalid("username", "a password needs a username"));
            }
        }
        ChannelKind::Pagerduty => {
            if let Some(u) = &spec.url {
                check_url("url", u)?;
            }
            if spec.routing_key.as_deref().is_none_or(|k| k.trim().is_empty()) {
                return Err(Error::invalid("routing_key", "the integration's routing key is required"));
            }
        }
        _ => {
            let url = spec.url.as_deref().ok_or_else(|| Error::invalid("url", "required"))?;
            check_url("url", url)?;
            if spec.kind == ChannelKind::Ntfy {
                let path = url::Url::parse(url).map(|u| u.path().trim_matches('/').to_string()).unwrap_or_default();
                if path.is_empty() {
                    return Err(Error::invalid("url", "must end with the topic (https://ntfy.sh/my-topic)"));
                }
                if spec.priority.is_some_and(|p| !(1..=5).contains(&p)) {
                    return Err(Error::invalid("priority", "1 (min) to 5 (max)"));
                }
            }
        }
    }
    if spec.headers.len() > MAX_HEADERS {
        return Err(Error::invalid("headers", format!("at most {MAX_HEADERS}")));
    }
    for (k, v) in &spec.headers {
        if http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(Error::invalid(format!("headers.{k}"), "not a valid header name"));
        }
        if http::HeaderValue::from_str(v).is_err() {
            return Err(Error::invalid(format!("headers.{k}"), "not a valid header value"));
        }
    }
    Ok(())
}

/// A rule's own consistency (the ids it names are checked by the caller); normalises its name and
/// events.
pub fn check_rule(spec: &mut RuleSpec) -> Result<(), Error> {
    spec.name = check_name(&spec.name)?;
    if spec.events.is_empty() {
        return Err(Error::invalid("events", "choose at least one event"));
    }
    if spec.events.contains(&EventKind::Test) {
        return Err(Error::invalid("events", "test messages go to the channel tested, not through rules"));
    }
    spec.events.sort();
    spec.events.dedup();
    if !spec.all_channels && spec.channels.is_empty() {
        return Err(Error::invalid("channels", "choose at least one channel, or all_channels"));
    }
    for (i, t) in spec.tags.iter().enumerate() {
        if t.trim().is_empty() || t.len() > 100 {
            return Err(Error::invalid(format!("tags[{i}]"), "1–100 characters"));
        }
    }
    Ok(())
}

impl Notifier {
    fn pool(&self) -> &sqlx::PgPool {
        &self.outbox.pool
    }

    pub async fn channels(&self) -> Result<Vec<Channel>, Error> {
        let mut list = store::channels(self.pool(), None).await?;
        for c in &mut list {
            c.spec = c.spec.masked();
        }
        Ok(list)
    }

    pub async fn channel(&self, id: Uuid) -> Result<Channel, Error> {
        let mut c = store::get_channel(self.pool(), id).await?.ok_or(Error::NotFound("channel"))?;
        c.spec = c.spec.masked();
        Ok(c)
    }

    fn name_taken(e: Error) -> Error {
        e.conflict_on("name", "a channel with that name exists")
    }

    pub async fn create_channel(&self, actor: &Actor, mut spec: ChannelSpec) -> Result<Channel, Error> {
        spec.unmask(None).map_err(|f| Error::invalid(f, format!("{SECRET_MASK} is a placeholder; type the value")))?;
        validate_channel(&mut spec)?;
        let id = Uuid::new_v4();
        let mut tx = self.pool().begin().await?;
        store::insert_channel(&mut tx, id, &spec).await.map_err(|e| Self::name_taken(e.into()))?;
        actor.audit(&mut *tx, "channel.create", id.to_string(), serde_json::json!({ "kind": spec.kind })).await?;
        tx.commit().await?;
        self.channel(id).await
    }

    pub async fn update_channel(&self, actor: &Actor, id: Uuid, mut spec: ChannelSpec) -> Result<Channel, Error> {
        let stored = store::get_channel(self.pool(), id).await?.ok_or(Error::NotFound("channel"))?;
        spec.unmask(Some(&stored.spec)).map_err(|f| {
            Error::invalid(f, "type the secret again: the endpoint changed, so the stored one is not reused")
        })?;
        validate_channel(&mut spec)?;
        let mut tx = self.pool().begin().await?;
        if !store::update_channel(&mut tx, id, &spec).await.map_err(|e| Self::name_taken(e.into()))? {
            return Err(Error::NotFound("channel"));
        }
        actor.audit(&mut *tx, "channel.update", id.to_string(), serde_json::json!({ "kind": spec.kind })).await?;
        tx.commit().await?;
        self.channel(id).await
    }

    pub async fn delete_channel(&self, actor: &Actor, id: Uuid) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        if !store::delete_channel(&mut tx, id).await? {
            return Err(Error::NotFound("channel"));
        }
        actor.audit(&mut *tx, "channel.delete", id.to_string(), serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn deliveries(&self, id: Uuid, limit: i64) -> Result<Vec<Delivery>, Error> {
        store::get_channel(self.pool(), id).await?.ok_or(Error::NotFound("channel"))?;
        Ok(store::deliveries(self.pool(), store::DeliveryFilter::Channel(id, limit.clamp(1, 500))).await?)
    }

    /// Sends a test message now and answers how it went; it is in the delivery log either way.
    /// A failed test is not retried: the person who pressed the button is looking at the answer.
    pub async fn test_channel(&self, actor: &Actor, id: Uuid) -> Result<Delivery, Error> {
        let channel = store::get_channel(self.pool(), id).await?.ok_or(Error::NotFound("channel"))?;
        let by = actor.principal.actor();
        let mut tx = self.pool().begin().await?;
        let event = events::test(&mut tx, id, &channel.spec.name, &by).await?;
        let (delivery, attempts, payload) = store::claim_test(&mut tx, event, id).await?;
        tx.commit().await?;
        let mut n: Notification =
            serde_json::from_value(payload).map_err(|e| Error::Internal(format!("test event: {e}")))?;
        render::absolutize(&mut n, &self.outbox.settings.base_url);
        let outcome = match self.outbox.send_to(&channel.spec, &n).await {
            Ok(answer) => Attempt::Delivered { answer },
            Err(r) => Attempt::Failed { answer: r.answer().to_string() },
        };
        store::record_attempt(self.pool(), delivery, id, attempts, &outcome).await?;
        store::deliveries(self.pool(), store::DeliveryFilter::One(delivery))
            .await?
            .pop()
            .ok_or(Error::NotFound("delivery"))
    }

    pub async fn rules(&self) -> Result<Vec<Rule>, Error> {
        let mut conn = self.pool().acquire().await?;
        Ok(store::list_rules(&mut conn).await?)
    }

    pub async fn rule(&self, id: Uuid) -> Result<Rule, Error> {
        store::get_rule(self.pool(), id).await?.ok_or(Error::NotFound("rule"))
    }

    async fn validate_rule(&self, spec: &mut RuleSpec) -> Result<(), Error> {
        check_rule(spec)?;
        let known = store::existing_channels(self.pool(), &spec.channels).await?;
        if let Some(unknown) = spec.channels.iter().find(|c| !known.contains(c)) {
            return Err(Error::invalid("channels", format!("no channel has id {unknown}")));
        }
        let known = store::existing_services(self.pool(), &spec.services).await?;
        if let Some(unknown) = spec.services.iter().find(|s| !known.contains(s)) {
            return Err(Error::invalid("services", format!("no service has id {unknown}")));
        }
        Ok(())
    }

    pub async fn create_rule(&self, actor: &Actor, mut spec: RuleSpec) -> Result<Rule, Error> {
        self.validate_rule(&mut spec).await?;
        let id = Uuid::new_v4();
        let mut tx = self.pool().begin().await?;
        store::insert_rule(&mut tx, id, &spec).await?;
        actor.audit(&mut *tx, "notification_rule.create", id.to_string(), serde_json::json!({})).await?;
        tx.commit().await?;
        self.rule(id).await
    }

    pub async fn update_rule(&self, actor: &Actor, id: Uuid, mut spec: RuleSpec) -> Result<Rule, Error> {
        self.validate_rule(&mut spec).await?;
        let mut tx = self.pool().begin().await?;
        if !store::update_rule(&mut tx, id, &spec).await? {
            return Err(Error::NotFound("rule"));
        }
        actor.audit(&mut *tx, "notification_rule.update", id.to_string(), serde_json::json!({})).await?;
        tx.commit().await?;
        self.rule(id).await
    }

    pub async fn delete_rule(&self, actor: &Actor, id: Uuid) -> Result<(), Error> {
        let mut tx = self.pool().begin().await?;
        if !store::delete_rule(&mut tx, id).await? {
            return Err(Error::NotFound("rule"));
        }
        actor.audit(&mut *tx, "notification_rule.delete", id.to_string(), serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after() {
        let s = NotifySettings {
            backoff: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            ..Default::default()
        };
        for _ in 0..100 {
            let first = s.backoff_after(1, None);
            assert!(first >= Duration::from_secs(5) && first <= Duration::from_secs(10), "{first:?}");
            let third = s.backoff_after(3, None);
            assert!(third >= Duration::from_secs(20) && third <= Duration::from_secs(40), "{third:?}");
            let late = s.backoff_after(30, None);
            assert!(late >= Duration::from_secs(30) && late <= Duration::from_secs(60), "{late:?}");
        }
        assert!(s.backoff_after(1, Some(Duration::from_secs(120))) >= Duration::from_secs(120));
    }

    #[test]
    fn fields_of_another_kind_are_named() {
        let ok = serde_json::json!({"name": "a", "kind": "slack", "url": "https://x/y"});
        assert!(check_fields(&ok).is_ok());
        let bad = serde_json::json!({"name": "a", "kind": "slack", "url": "https://x/y", "secret": "s"});
        assert!(matches!(check_fields(&bad), Err(Error::Invalid { field: Some(f), .. }) if f == "secret"));
    }
}
