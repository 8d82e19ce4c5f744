//! The in-process event hub: probe results and confirmed state changes, published after they are
//! committed. A `tokio::sync::broadcast` channel is bounded: a subscriber that falls more than
//! [`CAPACITY`] events behind loses the oldest ones (and is told how many), it never slows the
//! publisher or other subscribers.

use std::sync::Arc;

use app::model::{ProbeResult, StateChange};
use tokio::sync::broadcast;
use uuid::Uuid;

pub const CAPACITY: usize = 8192;

#[derive(Clone, Debug)]
pub enum ProbeEvent {
    Result { service_id: Uuid, result: Arc<ProbeResult> },
    StateChanged(Arc<StateChange>),
}

#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<ProbeEvent>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ProbeEvent> {
        self.tx.subscribe()
    }

    /// Never blocks; with no subscriber the event is simply dropped.
    pub fn publish(&self, event: ProbeEvent) {
        let _ = self.tx.send(event);
    }
}
