//! The two loops that empty the outbox. The router wakes when PostgreSQL says an event committed
//! (`LISTEN`, so every replica hears it) or every poll interval; the sender claims due deliveries
//! under a lease, sends each in its own task (a hanging receiver holds up nobody else), and
//! records the outcome: delivered, retried later with backoff, or failed for good.

use std::sync::Arc;
use std::time::Duration;

use app::model::{ChannelSpec, EventKind, Notification};
use chrono::Utc;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use super::NotifySettings;
use super::render::{absolutize, render};
use super::send::{Refused, send};
use super::{events, router};
use crate::monitor::check::policy::NetworkPolicy;
use crate::monitor::replicas::Leadership;
use crate::storage::notify::{self as store, Attempt, Claimed};

/// Resolves when shutdown begins (the watch guard is dropped here, never held across an await).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// What woke the router.
enum Woke {
    Notified,
    /// The listener's connection failed or its pool is closing.
    Lost,
    Poll,
    Housekeeping,
    Stop,
}

/// The next notification; never, without a listener.
async fn notified(listener: &mut Option<PgListener>) -> Woke {
    match listener {
        Some(l) => match l.recv().await {
            Ok(_) => Woke::Notified,
            Err(e) => {
                tracing::debug!(error = %e, "notification listener lost its connection; polling meanwhile");
                Woke::Lost
            }
        },
        None => std::future::pending().await,
    }
}

/// Everything the loops share.
#[derive(Clone)]
pub struct Outbox {
    pub pool: PgPool,
    pub policy: Arc<NetworkPolicy>,
    pub settings: Arc<NotifySettings>,
    /// Pokes the sender: new deliveries, or a free slot.
    pub wake: Arc<Notify>,
}

impl Outbox {
    /// Starts the router and the sender; both stop when `stopping` turns true (the sender after
    /// letting attempts under way finish, within the send timeout).
    pub fn spawn(self, leadership: Leadership, stopping: watch::Receiver<bool>) {
        tokio::spawn(self.clone().route_loop(leadership, stopping.clone()));
        tokio::spawn(self.send_loop(stopping));
    }

    /// Routing is safe on every replica (events are claimed); the housekeeping runs on the
    /// leader only.
    async fn route_loop(self, leadership: Leadership, mut stopping: watch::Receiver<bool>) {
        let mut listener = self.listen().await;
        let mut housekeeping = tokio::time::interval(self.settings.housekeeping);
        let mut last_scan: Option<tokio::time::Instant> = None;
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            loop {
                match router::route_batch(&self.pool, &self.settings).await {
                    Ok(0) => break,
                    Ok(_) => self.wake.notify_one(),
                    Err(e) => {
                        tracing::warn!(error = %e, "routing notifications failed; retrying");
                        break;
                    }
                }
            }
            let woke = tokio::select! {
                w = notified(&mut listener) => w,
                () = tokio::time::sleep(self.settings.poll) => Woke::Poll,
                _ = housekeeping.tick() => Woke::Housekeeping,
                () = stopped(&mut stopping) => Woke::Stop,
            };
            match woke {
                // Dropped with its connection; a new one listens again below.
                Woke::Lost => listener = None,
                Woke::Housekeeping if leadership.leads() => self.housekeeping(&mut last_scan).await,
                Woke::Housekeeping => {}
                Woke::Stop => return,
                Woke::Notified | Woke::Poll => {}
            }
            if listener.is_none() && !self.pool.is_closed() {
                listener = self.listen().await;
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        crate::storage::bus::listener(&self.pool, &[store::WAKE_CHANNEL], self.settings.poll).await
    }

    /// The periodic work: failing channels (every tick), certificates and action items (every
    /// `scan_every`), and the log's retention.
    async fn housekeeping(&self, last_scan: &mut Option<tokio::time::Instant>) {
        if let Err(e) = self.announce_failing_channels().await {
            tracing::warn!(error = %e, "checking for failing notification channels failed");
        }
        if last_scan.is_some_and(|t| t.elapsed() < self.settings.scan_every) {
            return;
        }
        match self.scan().await {
            Ok(()) => *last_scan = Some(tokio::time::Instant::now()),
            Err(e) => tracing::warn!(error = %e, "checking certificates and action items failed"),
        }
        let keep = chrono::Duration::from_std(self.settings.log_retention).unwrap_or(chrono::Duration::days(90));
        match store::prune_events(&self.pool, Utc::now() - keep).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "notification log past retention removed"),
            Err(e) => tracing::warn!(error = %e, "trimming the notification log failed"),
        }
    }

    /// A channel failing for longer than `failing_after` is announced to the others, once.
    async fn announce_failing_channels(&self) -> Result<(), sqlx::Error> {
        let after = chrono::Duration::from_std(self.settings.failing_after).unwrap_or(chrono::Duration::minutes(10));
        for (id, name, since, last_error) in store::failing_unannounced(&self.pool, Utc::now() - after).await? {
            let mut tx = self.pool.begin().await?;
            events::channel_failing(&mut tx, id, &name, since, last_error.as_deref()).await?;
            store::mark_failing_announced(&mut tx, id).await?;
            tx.commit().await?;
            tracing::warn!(channel = name, since = %since, "notification channel failing: told the other channels");
        }
        Ok(())
    }

    /// Raises the periodic events: certificates close to expiry, action items past due. Each is
    /// raised once (its dedup key), whichever replica scans first.
    pub async fn scan(&self) -> Result<(), sqlx::Error> {
        let days = i32::try_from(self.settings.cert_days).unwrap_or(i32::MAX);
        for c in store::expiring_certificates(&self.pool, days).await? {
            let mut conn = self.pool.acquire().await?;
            if events::certificate_expiring(&mut conn, &c).await? {
                tracing::info!(probe = c.probe, days = c.days_left, "certificate expiring: announced");
            }
        }
        for item in store::overdue_action_items(&self.pool).await? {
            let mut conn = self.pool.acquire().await?;
            if events::action_item_overdue(&mut conn, &item).await? {
                tracing::info!(item = %item.item_id, due = %item.due, "action item overdue: announced");
            }
        }
        Ok(())
    }

    async fn send_loop(self, mut stopping: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut running = JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            let free = slots.available_permits();
            let mut claimed_any = false;
            if free > 0 {
                let lease = (self.settings.timeout * 3 + Duration::from_secs(30)).as_secs_f64();
                match store::claim_due(&self.pool, free as i64, lease).await {
                    Ok(claimed) => {
                        claimed_any = !claimed.is_empty();
                        for c in claimed {
                            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { return };
                            let me = self.clone();
                            running.spawn(async move {
                                me.attempt(c).await;
                                drop(permit);
                                me.wake.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming notification deliveries failed; retrying"),
                }
            }
            if claimed_any && slots.available_permits() > 0 {
                continue;
            }
            let next = match store::next_due(&self.pool).await {
                Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default().min(self.settings.poll),
                _ => self.settings.poll,
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(next.max(Duration::from_millis(10))) => {}
                () = stopped(&mut stopping) => break,
            }
        }
        // Attempts under way may finish and be recorded; a cut-off one is retried after its lease.
        let _ = tokio::time::timeout(self.settings.timeout + Duration::from_secs(1), async {
            while running.join_next().await.is_some() {}
        })
        .await;
    }

    /// One attempt of one delivery, and its record.
    async fn attempt(&self, c: Claimed) {
        let outcome = self.deliver(&c).await;
        let answer = match &outcome {
            Ok(a) => a.clone(),
            Err(r) => r.answer().to_string(),
        };
        let record = match outcome {
            Ok(answer) => Attempt::Delivered { answer },
            Err(Refused::Permanent { answer }) => Attempt::Failed { answer },
            Err(Refused::Transient { answer, .. }) if c.attempts >= self.settings.max_attempts as i32 => {
                Attempt::Failed { answer: format!("gave up after {} attempts; last: {answer}", c.attempts) }
            }
            Err(Refused::Transient { answer, retry_after }) => {
                let wait = self.settings.backoff_after(c.attempts, retry_after);
                Attempt::Retry { answer, next_at: Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default() }
            }
        };
        match &record {
            Attempt::Delivered { .. } => {
                tracing::info!(channel = %c.channel_id, event = %c.event_id, kind = c.kind, attempts = c.attempts, "notification delivered");
            }
            Attempt::Retry { next_at, .. } => {
                tracing::warn!(channel = %c.channel_id, event = %c.event_id, attempts = c.attempts, answer, retry_at = %next_at, "notification not delivered; will retry");
            }
            Attempt::Failed { .. } => {
                tracing::error!(channel = %c.channel_id, event = %c.event_id, attempts = c.attempts, answer, "notification failed for good");
            }
        }
        self.record(&c, &record).await;
    }

    /// Records an outcome, retrying through a database outage until shortly before the lease
    /// ends (after that another sender may start the same delivery, and this record would be
    /// refused anyway).
    async fn record(&self, c: &Claimed, outcome: &Attempt) {
        let deadline = tokio::time::Instant::now() + self.settings.timeout * 3 + Duration::from_secs(25);
        let mut wait = Duration::from_millis(100);
        loop {
            match store::record_attempt(&self.pool, c.delivery_id, c.channel_id, c.attempts, outcome).await {
                Ok(()) => return,
                Err(e) if tokio::time::Instant::now() + wait < deadline => {
                    tracing::warn!(error = %e, delivery = %c.delivery_id, "recording a notification attempt failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(error = %e, delivery = %c.delivery_id, "could not record a notification attempt; it will be retried after its lease");
                    return;
                }
            }
        }
    }

    async fn deliver(&self, c: &Claimed) -> Result<String, Refused> {
        let mut n: Notification = serde_json::from_value(c.payload.clone())
            .map_err(|e| Refused::Permanent { answer: format!("stored event unreadable: {e}") })?;
        if EventKind::parse(&c.kind).is_some_and(EventKind::is_probe_state) && c.covers_since.is_some() {
            n.covers = Some(u32::try_from(c.covers).unwrap_or(1));
            n.covers_since = c.covers_since;
        }
        absolutize(&mut n, &self.settings.base_url);
        self.send_to(&c.spec.0, &n).await
    }

    /// Renders `n` for the channel and sends it once.
    pub async fn send_to(&self, spec: &ChannelSpec, n: &Notification) -> Result<String, Refused> {
        let out = render(spec, n, Utc::now().timestamp()).map_err(|answer| Refused::Permanent { answer })?;
        send(out, &self.policy, self.settings.timeout, &n.id.to_string()).await
    }
}
