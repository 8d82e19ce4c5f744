//! The result writer: results from the scheduler are written in batches (one transaction each,
//! at least every 100 ms), and published on the event hub once committed.
//!
//! Backpressure is explicit. The scheduler's `submit` waits when the bounded channel is full, so a
//! writer that cannot keep up with a working database slows the probes down instead of growing
//! memory or dropping results. While PostgreSQL is unreachable the writer instead keeps draining
//! the channel into a bounded buffer and retries with backoff, so checks go on; past the buffer's
//! size the oldest results are dropped, counted and logged (never one that carries a confirmed
//! state change). A write
//! that fails is retried as a whole, so nothing is written twice or half.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use app::model::{LiveResult, ProbeResult, StateChange};
use chrono::NaiveDate;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use crate::monitor::hub::{EventHub, ProbeEvent};
use crate::storage::results::{self as store, StateRow};

/// One finished check with the probe's state after it.
#[derive(Clone, Debug)]
pub struct Record {
    pub service_id: Uuid,
    pub result: Arc<ProbeResult>,
    pub state: StateRow,
    pub change: Option<StateChange>,
}

impl Record {
    /// About how much memory this record holds: its structs and the text they own. Results vary
    /// from a bare heartbeat to a readiness body with many components and an excerpt, so the
    /// outage buffer is bounded by this as well as by count.
    pub fn approx_bytes(&self) -> usize {
        let r = &self.result;
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let components: usize =
            r.components.iter().map(|c| std::mem::size_of_val(c) + c.name.len() + text(&c.detail)).sum();
        let change = self.change.as_ref().map_or(0, |c| c.request_id.len());
        std::mem::size_of::<Self>()
            + std::mem::size_of::<ProbeResult>()
            + r.request_id.len()
            + text(&r.detail)
            + text(&r.body_excerpt)
            + components
            + change
    }
}

#[derive(Clone, Copy, Debug)]
pub struct IngestConfig {
    /// Results kept in memory while the database is unreachable; older ones are dropped beyond it.
    pub buffer: usize,
    /// And the memory they may hold (see [`Record::approx_bytes`]), whichever bound comes first.
    pub buffer_bytes: usize,
    pub max_batch: usize,
    pub flush_every: Duration,
    /// Capacity of the channel from the scheduler.
    pub channel: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            buffer: 100_000,
            buffer_bytes: 64 << 20,
            max_batch: 5_000,
            flush_every: Duration::from_millis(100),
            channel: 16_384,
        }
    }
}

/// Counters for /metrics, logs and tests.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Results received from the scheduler.
    pub accepted: AtomicU64,
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub late: AtomicU64,
    pub failed_writes: AtomicU64,
    pub pending: AtomicU64,
    /// Why the last write failed, while writes are failing (cleared by the next that succeeds).
    failing: std::sync::Mutex<Option<String>>,
}

impl IngestStats {
    pub fn failing(&self) -> Option<String> {
        self.failing.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_failing(&self, why: Option<String>) {
        *self.failing.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }
}

enum Msg {
    Record(Record),
    Flush(oneshot::Sender<()>),
}

#[derive(Debug, thiserror::Error)]
#[error("the result writer has stopped")]
pub struct IngestClosed;

#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Msg>,
    pub stats: Arc<IngestStats>,
}

impl Ingest {
    pub fn spawn(pool: PgPool, hub: EventHub, config: IngestConfig) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.channel.max(1));
        let stats = Arc::new(IngestStats::default());
        let queue = Queue {
            buffer: config.buffer.max(1),
            buffer_bytes: config.buffer_bytes.max(1),
            stats: stats.clone(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            next_seq: 0,
            waiters: Vec::new(),
            closed: false,
            overflow_logged: false,
        };
        let writer = Writer { pool, hub, config, queue, partitions: HashSet::new() };
        let handle = tokio::spawn(writer.run(rx));
        (Self { tx, stats }, handle)
    }

    /// Queues a result; waits while the writer's channel is full (backpressure).
    pub async fn submit(&self, record: Record) -> Result<(), IngestClosed> {
        self.tx.send(Msg::Record(record)).await.map_err(|_| IngestClosed)
    }

    /// Resolves once everything submitted before the call is written (or dropped for overflow).
    pub async fn flush(&self) -> Result<(), IngestClosed> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Flush(tx)).await.map_err(|_| IngestClosed)?;
        rx.await.map_err(|_| IngestClosed)
    }
}

/// Accepted, not yet written results, oldest first, with the flush callers waiting on them.
struct Queue {
    buffer: usize,
    buffer_bytes: usize,
    stats: Arc<IngestStats>,
    pending: VecDeque<(u64, Record)>,
    /// What `pending` holds, by [`Record::approx_bytes`].
    pending_bytes: usize,
    next_seq: u64,
    /// Flush callers and the last sequence number they wait for.
    waiters: Vec<(u64, oneshot::Sender<()>)>,
    closed: bool,
    overflow_logged: bool,
}

impl Queue {
    fn accept(&mut self, msg: Option<Msg>) {
        match msg {
            None => self.closed = true,
            Some(Msg::Flush(tx)) => self.waiters.push((self.next_seq, tx)),
            Some(Msg::Record(r)) => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                self.next_seq += 1;
                self.pending_bytes += r.approx_bytes();
                self.pending.push_back((self.next_seq, r));
                self.shed();
            }
        }
        self.stats.pending.store(self.pending.len() as u64, Ordering::Relaxed);
    }

    /// Past the bound, drops the oldest results, but never one that carries a confirmed state
    /// change: those are few (one per confirmation) and each may open an incident, so they stay
    /// until written, beyond the bound if need be.
    fn shed(&mut self) {
        while self.pending.len() > self.buffer || self.pending_bytes > self.buffer_bytes {
            let Some(i) = self.pending.iter().position(|(_, r)| r.change.is_none()) else { break };
            if let Some((_, dropped)) = self.pending.remove(i) {
                self.pending_bytes = self.pending_bytes.saturating_sub(dropped.approx_bytes());
            }
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if !self.overflow_logged {
                self.overflow_logged = true;
                tracing::error!(
                    buffer = self.buffer,
                    buffer_bytes = self.buffer_bytes,
                    "result buffer full while the database is unreachable: dropping the oldest results \
                     (never a state change)"
                );
            }
        }
    }

    /// The oldest `n` records, for a batch.
    fn take_front(&mut self, n: usize) -> Vec<(u64, Record)> {
        let batch: Vec<(u64, Record)> = self.pending.drain(..n).collect();
        let bytes: usize = batch.iter().map(|(_, r)| r.approx_bytes()).sum();
        self.pending_bytes = self.pending_bytes.saturating_sub(bytes);
        batch
    }

    /// A batch that was not written goes back to the front, in order.
    fn put_back(&mut self, batch: Vec<(u64, Record)>) {
        for item in batch.into_iter().rev() {
            self.pending_bytes += item.1.approx_bytes();
            self.pending.push_front(item);
        }
    }

    /// Answers flush callers whose results are all written or dropped.
    fn notify(&mut self) {
        let done_below = self.pending.front().map(|(seq, _)| *seq).unwrap_or(self.next_seq + 1);
        let waiters = std::mem::take(&mut self.waiters);
        for (target, tx) in waiters {
            if target < done_below {
                let _ = tx.send(());
            } else {
                self.waiters.push((target, tx));
            }
        }
    }
}

struct Writer {
    pool: PgPool,
    hub: EventHub,
    config: IngestConfig,
    queue: Queue,
    partitions: HashSet<NaiveDate>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut backoff = Duration::from_millis(100);
        let mut outage: Option<(Instant, u64)> = None;
        // A failed batch is retried under the same id and with no record past its last one: if
        // its COMMIT did land (only the answer was lost), the retry is recognised, not stored
        // twice.
        let mut retry: Option<(Uuid, u64)> = None;
        loop {
            self.queue.notify();
            if self.queue.pending.is_empty() {
                if self.queue.closed {
                    return;
                }
                let msg = rx.recv().await;
                self.queue.accept(msg);
                continue;
            }
            // Gather for up to one flush interval, so batches are large under load.
            let deadline = Instant::now() + self.config.flush_every;
            while self.queue.pending.len() < self.config.max_batch && !self.queue.closed {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(msg) => self.queue.accept(msg),
                    Err(_) => break,
                }
            }
            let (batch_id, n) = match retry {
                // Shedding may have dropped some of its records meanwhile, never added any.
                Some((id, last)) => (id, self.queue.pending.iter().take_while(|(seq, _)| *seq <= last).count()),
                None => (Uuid::new_v4(), self.queue.pending.len().min(self.config.max_batch)),
            };
            let batch = self.queue.take_front(n);
            let result = {
                let write = write(&self.pool, &mut self.partitions, batch_id, &batch);
                tokio::pin!(write);
                // While the database is failing, keep draining the channel so the scheduler keeps
                // running and the buffer absorbs the outage. While it is healthy, take only up to
                // the next batch: the rest waits in the bounded channel, and `submit` waits with it
                // (backpressure instead of dropping results a slow-but-working database would take).
                let draining = outage.is_some();
                loop {
                    let room = draining || self.queue.pending.len() < self.config.max_batch;
                    tokio::select! {
                        r = &mut write => break r,
                        msg = rx.recv(), if !self.queue.closed && room => self.queue.accept(msg),
                    }
                }
            };
            match result {
                Ok(done) => {
                    retry = None;
                    self.queue.stats.set_failing(None);
                    if done.repeated {
                        tracing::info!(batch = %batch_id, "a retried batch had been written already; not written again");
                    }
                    self.queue.stats.written.fetch_add(done.written as u64, Ordering::Relaxed);
                    self.queue.stats.late.fetch_add(done.late as u64, Ordering::Relaxed);
                    self.queue.overflow_logged = false;
                    backoff = Duration::from_millis(100);
                    if let Some((since, failures)) = outage.take() {
                        tracing::info!(
                            down_for_ms = since.elapsed().as_millis() as u64,
                            failed_writes = failures,
                            buffered = self.queue.pending.len() + batch.len(),
                            "database reachable again: writing buffered results"
                        );
                    }
                    let mut events = Vec::with_capacity(batch.len() + 8);
                    for (_, r) in batch {
                        if let Some(change) = r.change {
                            events.push(ProbeEvent::StateChanged(Arc::new(change)));
                        }
                        events.push(ProbeEvent::Result(Arc::new(LiveResult::of(r.service_id, &r.result))));
                    }
                    self.hub.publish_all(events);
                }
                Err(e) => {
                    self.queue.stats.failed_writes.fetch_add(1, Ordering::Relaxed);
                    let since = outage.map_or_else(Instant::now, |(since, _)| since);
                    self.queue.stats.set_failing(Some(format!(
                        "results cannot be written ({} s, {} buffered): {}",
                        since.elapsed().as_secs(),
                        self.queue.pending.len() + batch.len(),
                        crate::storage::pool::describe(&e)
                    )));
                    let (_, failures) = outage.get_or_insert((Instant::now(), 0));
                    *failures += 1;
                    if *failures == 1 || (*failures).is_multiple_of(50) {
                        tracing::warn!(error = %crate::storage::pool::describe(&e), buffered = self.queue.pending.len() + batch.len(),
                            "cannot write results; keeping them and retrying");
                    }
                    // Back at the front, in order: the retry writes exactly this batch again.
                    retry = batch.last().map(|(seq, _)| (batch_id, *seq));
                    self.queue.put_back(batch);
                    let wake = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    loop {
                        tokio::select! {
                            () = tokio::time::sleep_until(wake) => break,
                            msg = rx.recv(), if !self.queue.closed => self.queue.accept(msg),
                        }
                    }
                    // Re-admitting the batch may have pushed the queue over its bound.
                    self.queue.shed();
                }
            }
            self.queue.stats.pending.store(self.queue.pending.len() as u64, Ordering::Relaxed);
        }
    }
}

async fn write(
    pool: &PgPool,
    partitions: &mut HashSet<NaiveDate>,
    batch_id: Uuid,
    batch: &[(u64, Record)],
) -> Result<store::BatchOutcome, sqlx::Error> {
    let days: HashSet<NaiveDate> = batch.iter().map(|(_, r)| r.result.at.date_naive()).collect();
    for day in days {
        if !partitions.contains(&day) {
            store::ensure_partition(pool, day).await?;
            partitions.insert(day);
        }
    }
    let results: Vec<&ProbeResult> = batch.iter().map(|(_, r)| r.result.as_ref()).collect();
    let changes: Vec<StateChange> = batch.iter().filter_map(|(_, r)| r.change.clone()).collect();
    store::write_batch(pool, batch_id, &results, &latest_states(batch), &changes).await
}

/// The latest state row per probe in a batch (a probe may appear several times).
fn latest_states(batch: &[(u64, Record)]) -> Vec<StateRow> {
    let mut latest: HashMap<Uuid, &StateRow> = HashMap::new();
    for (_, r) in batch {
        let slot = latest.entry(r.state.probe_id).or_insert(&r.state);
        if r.state.last_result_at >= slot.last_result_at {
            *slot = &r.state;
        }
    }
    latest.into_values().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::Outcome;
    use chrono::{DateTime, Utc};

    fn record(n: i64, change: bool) -> Record {
        let at = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(n);
        let result = ProbeResult::bare(Uuid::nil(), at, Outcome::Down, format!("r{n}"));
        let state = StateRow {
            probe_id: Uuid::nil(),
            state: Some(Outcome::Down),
            since: at,
            last_result_at: at,
            last_outcome: Outcome::Down,
            last_error: None,
        };
        let change = change.then(|| StateChange {
            probe_id: Uuid::nil(),
            service_id: Uuid::nil(),
            at,
            from: Some(Outcome::Up),
            to: Outcome::Down,
            request_id: format!("r{n}"),
            error: None,
            quorum: None,
        });
        Record { service_id: Uuid::nil(), result: Arc::new(result), state, change }
    }

    fn queue(buffer: usize) -> Queue {
        Queue {
            buffer,
            buffer_bytes: usize::MAX,
            stats: Arc::new(IngestStats::default()),
            pending: VecDeque::new(),
            pending_bytes: 0,
            next_seq: 0,
            waiters: Vec::new(),
            closed: false,
            overflow_logged: false,
        }
    }

    #[test]
    fn an_overflowing_buffer_drops_the_oldest_results_but_never_a_state_change() {
        let mut q = queue(3);
        for n in 0..8 {
            // Results 1 and 2 confirmed changes; the rest are plain.
            q.accept(Some(Msg::Record(record(n, n == 1 || n == 2))));
        }
        let kept: Vec<&str> = q.pending.iter().map(|(_, r)| r.result.request_id.as_str()).collect();
        assert_eq!(kept, vec!["r1", "r2", "r7"], "the changes stay, in order, with the newest result");
        assert_eq!(q.stats.dropped.load(Ordering::Relaxed), 5);
        // Only changes left: the bound gives way rather than lose one.
        let mut q = queue(1);
        for n in 0..3 {
            q.accept(Some(Msg::Record(record(n, true))));
        }
        assert_eq!(q.pending.len(), 3);
        assert_eq!(q.stats.dropped.load(Ordering::Relaxed), 0);
    }

    /// A few huge results (a long excerpt, a readiness body with many components) weigh as much
    /// as thousands of small ones: the byte bound sheds them although the count is far away.
    #[test]
    fn the_buffer_is_bounded_by_bytes_as_well_as_by_count() {
        let heavy = |n: i64| {
            let mut r = record(n, false);
            let mut result = (*r.result).clone();
            result.body_excerpt = Some("x".repeat(100_000));
            r.result = Arc::new(result);
            r
        };
        let one = heavy(0).approx_bytes();
        assert!(one > 100_000, "the excerpt is counted: {one}");
        let mut q = queue(1_000_000);
        q.buffer_bytes = one * 3;
        for n in 0..10 {
            q.accept(Some(Msg::Record(heavy(n))));
        }
        q.accept(Some(Msg::Record(record(10, true))));
        assert!(q.pending_bytes <= q.buffer_bytes, "{} > {}", q.pending_bytes, q.buffer_bytes);
        let kept: Vec<&str> = q.pending.iter().map(|(_, r)| r.result.request_id.as_str()).collect();
        assert_eq!(kept, vec!["r8", "r9", "r10"], "the newest heavy ones and the state change");
        assert_eq!(q.stats.dropped.load(Ordering::Relaxed), 8);
        // A batch taken and put back leaves the account where it was.
        let before = q.pending_bytes;
        let batch = q.take_front(2);
        assert!(q.pending_bytes < before);
        q.put_back(batch);
        assert_eq!(q.pending_bytes, before);
        let all = q.pending.len();
        q.take_front(all);
        assert_eq!(q.pending_bytes, 0);
    }
}
