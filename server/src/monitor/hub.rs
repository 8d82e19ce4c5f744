//! The event hub: probe results and confirmed state changes, published after they are
//! committed. A `tokio::sync::broadcast` channel is bounded: a subscriber that falls more than
//! [`CAPACITY`] events behind loses the oldest ones (and is told how many), it never slows the
//! publisher or other subscribers.
//!
//! With other replicas alive, what this replica's writer commits also goes over the replica bus
//! ([`crate::storage::bus`]), and what the others commit arrives from it ([`EventHub::follow`]):
//! a page open on any replica sees every result.

use std::sync::Arc;

use app::model::{LiveEvent, LiveResult, StateChange};
use tokio::sync::broadcast;

use crate::storage::bus::{self, Bus, Topic};

pub const CAPACITY: usize = 8192;

#[derive(Clone, Debug)]
pub enum ProbeEvent {
    Result(Arc<LiveResult>),
    StateChanged(Arc<StateChange>),
}

impl ProbeEvent {
    fn live(&self) -> LiveEvent {
        match self {
            ProbeEvent::Result(r) => LiveEvent::Result((**r).clone()),
            ProbeEvent::StateChanged(c) => LiveEvent::State((**c).clone()),
        }
    }

    fn of(live: LiveEvent) -> Self {
        match live {
            LiveEvent::Result(r) => ProbeEvent::Result(Arc::new(r)),
            LiveEvent::State(c) => ProbeEvent::StateChanged(Arc::new(c)),
        }
    }
}

#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<ProbeEvent>,
    bus: Bus,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    pub fn new() -> Self {
        Self::with_bus(Bus::local())
    }

    pub fn with_bus(bus: Bus) -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx, bus }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ProbeEvent> {
        self.tx.subscribe()
    }

    /// Never blocks; with no subscriber the event is simply dropped. Local only: what this
    /// replica committed goes to the others with [`publish_all`](Self::publish_all).
    pub fn publish(&self, event: ProbeEvent) {
        let _ = self.tx.send(event);
    }

    /// Publishes here and, with other replicas alive, to them (packed into few messages).
    pub fn publish_all(&self, events: Vec<ProbeEvent>) {
        if self.bus.has_peers() {
            let json = events.iter().filter_map(|e| serde_json::to_string(&e.live()).ok());
            let (packed, skipped) = bus::pack(json);
            if skipped > 0 {
                tracing::debug!(skipped, "live events too big for the replica bus");
            }
            for body in packed {
                self.bus.send(Topic::Live, body);
            }
        }
        for e in events {
            self.publish(e);
        }
    }

    /// Publishes here what the other replicas committed, until the bus closes.
    pub async fn follow(self) {
        let mut inbox = self.bus.subscribe();
        loop {
            match inbox.recv().await {
                Ok((Topic::Live, body)) => match serde_json::from_str::<Vec<LiveEvent>>(&body) {
                    Ok(events) => events.into_iter().for_each(|e| self.publish(ProbeEvent::of(e))),
                    Err(e) => tracing::debug!(error = %e, "unreadable live events from another replica"),
                },
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
