//! The replicas' bus: short messages between the `triage serve` processes sharing a database,
//! carried by PostgreSQL's `LISTEN`/`NOTIFY` (nothing else to run, nothing home-made to trust).
//!
//! It carries what makes replicas agree within a second: live probe results, incident room
//! events and presence, and "forget this" notes for caches, sessions and the sign-in limiter.
//! Delivery is best effort, like the in-process hubs it feeds: the database stays the truth, a
//! lost message only delays what a page shows until it reads again. A listener that lost its
//! connection says so ([`Topic::Gap`]) so that caches are dropped wholesale.
//!
//! Sending never waits: messages go through a bounded queue to one sender task, which packs what
//! has queued into one round trip; past the bound they are dropped and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

/// PostgreSQL refuses a payload of 8,000 bytes or more; this leaves room for the sender's id and
/// the message's number.
pub const MAX_BODY: usize = 7_900;
const QUEUE: usize = 4_096;
const INBOX: usize = 8_192;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// Probe results and state changes (a JSON array of live events).
    Live,
    /// Incident room events and presence.
    Rooms,
    /// Something cached must be read again, or counted everywhere ([`Note`]).
    Note,
    /// Not sent: this replica's listener reconnected, so messages may have been missed.
    Gap,
}

impl Topic {
    const SENT: [Topic; 3] = [Topic::Live, Topic::Rooms, Topic::Note];

    fn channel(self) -> &'static str {
        match self {
            Topic::Live => "triage_live",
            Topic::Rooms => "triage_rooms",
            Topic::Note => "triage_note",
            Topic::Gap => "",
        }
    }

    fn of(channel: &str) -> Option<Topic> {
        Topic::SENT.into_iter().find(|t| t.channel() == channel)
    }
}

/// What one replica tells the others about state they keep in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum Note {
    /// A session ended (SHA-256 of its cookie, hex): refuse it now, not when the cache expires.
    Session { hash: String },
    /// A user changed (role, disabled, password): their cached sessions are read again.
    User { id: Uuid },
    /// A failed sign-in, counted by every replica's limiter.
    LoginFailed { account: String, address: String },
    /// The overview's budgets and tiles.
    Overview,
    /// A service's objective changed.
    Slo { service: Uuid },
    /// A status page or a public update changed.
    StatusPages,
    /// The probe allowlist changed.
    Allowlist,
}

#[derive(Clone)]
pub struct Bus {
    me: Uuid,
    tx: Option<mpsc::Sender<(Topic, String)>>,
    inbox: broadcast::Sender<(Topic, Arc<str>)>,
    peers: Arc<AtomicBool>,
    /// Messages dropped because the queue was full.
    pub dropped: Arc<AtomicU64>,
}

impl Bus {
    /// A bus for a process that shares nothing: sending does nothing, nothing arrives.
    pub fn local() -> Self {
        let (inbox, _) = broadcast::channel(1);
        Self { me: Uuid::nil(), tx: None, inbox, peers: Arc::default(), dropped: Arc::default() }
    }

    /// Starts the sender and the listener (each with its own connection) until `stopping`.
    pub fn start(pool: &PgPool, me: Uuid, stopping: watch::Receiver<bool>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (inbox, _) = broadcast::channel(INBOX);
        let bus = Self { me, tx: Some(tx), inbox, peers: Arc::default(), dropped: Arc::default() };
        tokio::spawn(send_loop(pool.clone(), me, rx));
        tokio::spawn(listen_loop(pool.clone(), me, bus.inbox.clone(), stopping));
        bus
    }

    /// Whether other replicas are alive (nothing is sent while this one is alone).
    pub fn set_peers(&self, peers: bool) {
        self.peers.store(peers, Ordering::Relaxed);
    }

    pub fn has_peers(&self) -> bool {
        self.tx.is_some() && self.peers.load(Ordering::Relaxed)
    }

    /// Queues `body` (at most [`MAX_BODY`] bytes) for the other replicas; never waits.
    pub fn send(&self, topic: Topic, body: String) {
        let Some(tx) = &self.tx else { return };
        if !self.peers.load(Ordering::Relaxed) || topic == Topic::Gap {
            return;
        }
        if body.len() > MAX_BODY {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if tx.try_send((topic, body)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn note(&self, note: &Note) {
        if self.has_peers()
            && let Ok(body) = serde_json::to_string(note)
        {
            self.send(Topic::Note, body);
        }
    }

    /// What the other replicas send (never this replica's own messages), and gaps.
    pub fn subscribe(&self) -> broadcast::Receiver<(Topic, Arc<str>)> {
        self.inbox.subscribe()
    }

    pub fn me(&self) -> Uuid {
        self.me
    }
}

/// Packs JSON values into arrays of at most [`MAX_BODY`] bytes (a value too big alone is left
/// out and counted in the answer's second half).
pub fn pack(values: impl IntoIterator<Item = String>) -> (Vec<String>, usize) {
    let (mut out, mut cur, mut skipped) = (Vec::new(), String::from("["), 0);
    for v in values {
        if v.len() + 2 > MAX_BODY {
            skipped += 1;
            continue;
        }
        if cur.len() > 1 && cur.len() + v.len() + 2 > MAX_BODY {
            cur.push(']');
            out.push(std::mem::replace(&mut cur, String::from("[")));
        }
        if cur.len() > 1 {
            cur.push(',');
        }
        cur.push_str(&v);
    }
    if cur.len() > 1 {
        cur.push(']');
        out.push(cur);
    }
    (out, skipped)
}

#[tracing::instrument(skip_all)]
async fn send_loop(pool: PgPool, me: Uuid, mut rx: mpsc::Receiver<(Topic, String)>) {
    // PostgreSQL delivers identical (channel, payload) pairs of one transaction once: a number
    // keeps two equal messages (two failed sign-ins from one address) two.
    let mut seq: u64 = 0;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let channels: Vec<String> = batch.iter().map(|(t, _)| t.channel().to_string()).collect();
        let payloads: Vec<String> = batch
            .into_iter()
            .map(|(_, body)| {
                seq += 1;
                format!("{me}:{seq} {body}")
            })
            .collect();
        let sent = tokio::time::timeout(Duration::from_secs(5), notify_all(&pool, &channels, &payloads)).await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, messages = channels.len(), "the replica bus lost messages"),
            Err(_) => tracing::debug!(messages = channels.len(), "the replica bus timed out; messages lost"),
        }
    }
}

#[tracing::instrument(skip_all, fields(messages = channels.len()))]
async fn notify_all(pool: &PgPool, channels: &[String], payloads: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "select pg_notify(c, p) from unnest($1::text[], $2::text[]) as t(c, p)",
        channels as &[String],
        payloads as &[String]
    )
    .fetch_all(pool)
    .await
    .map(|_| ())
}

/// A listener on `channels` with a connection of its own, outside the pool (a LISTEN lives as
/// long as the process and must not hold a connection requests need, nor keep the pool from
/// closing), or `None` while the database does not answer within `within` (bounded, so a loop
/// waiting on it keeps polling and hears shutdown).
#[tracing::instrument(skip(pool))]
pub async fn listener(pool: &PgPool, channels: &[&str], within: Duration) -> Option<PgListener> {
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(within)
        .connect_lazy_with((*pool.connect_options()).clone());
    let connected = tokio::time::timeout(within, PgListener::connect_with(&own)).await;
    let mut l = match connected {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, ?channels, "cannot LISTEN yet");
            return None;
        }
        Err(_) => return None,
    };
    match tokio::time::timeout(within, l.listen_all(channels.iter().copied())).await {
        Ok(Ok(())) => Some(l),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, ?channels, "cannot LISTEN yet");
            None
        }
        Err(_) => None,
    }
}

#[tracing::instrument(skip_all)]
async fn listen(pool: &PgPool) -> Option<PgListener> {
    let channels: Vec<&str> = Topic::SENT.iter().map(|t| t.channel()).collect();
    listener(pool, &channels, Duration::from_secs(2)).await
}

#[tracing::instrument(skip_all)]
async fn listen_loop(
    pool: PgPool,
    me: Uuid,
    inbox: broadcast::Sender<(Topic, Arc<str>)>,
    mut stopping: watch::Receiver<bool>,
) {
    let mine = me.to_string();
    let mut first = true;
    loop {
        let Some(mut l) = listen(&pool).await else {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = stopping.wait_for(|s| *s) => return,
            }
        };
        if !first {
            let _ = inbox.send((Topic::Gap, Arc::from("")));
        }
        first = false;
        loop {
            let got = tokio::select! {
                got = l.try_recv() => got,
                _ = stopping.wait_for(|s| *s) => return,
            };
            let Ok(Some(n)) = got else { break };
            let Some(topic) = Topic::of(n.channel()) else { continue };
            let Some((from, body)) = n.payload().split_once(' ') else { continue };
            let from = from.split_once(':').map_or(from, |(id, _)| id);
            if from != mine {
                let _ = inbox.send((topic, Arc::from(body)));
            }
        }
        tracing::debug!("the replica bus listener lost its connection; listening again");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_every_value_within_the_limit() {
        let values: Vec<String> =
            (0..1_000).map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 300))).collect();
        let (packed, skipped) = pack(values.clone());
        assert_eq!(skipped, 0);
        assert!(packed.iter().all(|p| p.len() <= MAX_BODY), "every payload fits");
        let back: Vec<serde_json::Value> = packed
            .iter()
            .flat_map(|p| serde_json::from_str::<Vec<serde_json::Value>>(p).expect("a JSON array"))
            .collect();
        assert_eq!(back.len(), values.len(), "nothing lost or doubled");
        assert_eq!(back[999]["n"], 999);
    }

    #[test]
    fn notes_format_is_pinned() {
        let id = Uuid::nil();
        let notes = [
            (Note::Session { hash: "ab".into() }, r#"{"note":"session","hash":"ab"}"#.to_string()),
            (Note::User { id }, format!(r#"{{"note":"user","id":"{id}"}}"#)),
            (
                Note::LoginFailed { account: "a@x".into(), address: "10.0.0.1".into() },
                r#"{"note":"login_failed","account":"a@x","address":"10.0.0.1"}"#.to_string(),
            ),
            (Note::Overview, r#"{"note":"overview"}"#.to_string()),
            (Note::Slo { service: id }, format!(r#"{{"note":"slo","service":"{id}"}}"#)),
            (Note::StatusPages, r#"{"note":"status_pages"}"#.to_string()),
            (Note::Allowlist, r#"{"note":"allowlist"}"#.to_string()),
        ];
        for (note, json) in notes {
            assert_eq!(serde_json::to_string(&note).expect("serialises"), json);
            assert_eq!(serde_json::from_str::<Note>(&json).expect("parses"), note);
        }
    }

    #[test]
    fn a_value_too_big_alone_is_counted_not_sent() {
        let (packed, skipped) = pack(["1".to_string(), "x".repeat(MAX_BODY), "2".to_string()]);
        assert_eq!((packed, skipped), (vec!["[1,2]".to_string()], 1));
    }
}
