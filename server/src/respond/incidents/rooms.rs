//! The incident rooms' live feed: new and changed entries, incident changes and who is in each
//! room. One bounded broadcast channel for every room (each stream filters by incident): a slow
//! viewer loses old events and refetches, it never holds up a writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::model::RoomEvent;
use tokio::sync::broadcast;
use uuid::Uuid;

const CAPACITY: usize = 1024;

#[derive(Clone)]
pub struct RoomHub {
    tx: broadcast::Sender<(Uuid, Arc<RoomEvent>)>,
    /// Viewers per room: email → open streams (one person may have two tabs open).
    presence: Arc<Mutex<HashMap<Uuid, HashMap<String, usize>>>>,
}

impl Default for RoomHub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx, presence: Arc::default() }
    }
}

impl RoomHub {
    pub fn subscribe(&self) -> broadcast::Receiver<(Uuid, Arc<RoomEvent>)> {
        self.tx.subscribe()
    }

    /// Never blocks; with nobody watching the event is dropped.
    pub fn publish(&self, incident: Uuid, event: RoomEvent) {
        let _ = self.tx.send((incident, Arc::new(event)));
    }

    /// Who is in the room now, sorted.
    pub fn present(&self, incident: Uuid) -> Vec<String> {
        let rooms = self.presence.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut who: Vec<String> = rooms.get(&incident).map(|r| r.keys().cloned().collect()).unwrap_or_default();
        who.sort();
        who
    }

    /// Marks `who` as in the room until the returned guard drops; everyone in it is told.
    pub fn enter(&self, incident: Uuid, who: String) -> Presence {
        {
            let mut rooms = self.presence.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *rooms.entry(incident).or_default().entry(who.clone()).or_default() += 1;
        }
        self.publish(incident, RoomEvent::Presence(self.present(incident)));
        Presence { hub: self.clone(), incident, who }
    }

    fn leave(&self, incident: Uuid, who: &str) {
        {
            let mut rooms = self.presence.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(room) = rooms.get_mut(&incident) {
                if let Some(n) = room.get_mut(who) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        room.remove(who);
                    }
                }
                if room.is_empty() {
                    rooms.remove(&incident);
                }
            }
        }
        self.publish(incident, RoomEvent::Presence(self.present(incident)));
    }
}

/// A viewer in a room; leaving happens on drop (the stream ended, however it ended).
pub struct Presence {
    hub: RoomHub,
    incident: Uuid,
    who: String,
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.hub.leave(self.incident, &self.who);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_counts_tabs_and_tells_the_room() {
        let hub = RoomHub::default();
        let mut rx = hub.subscribe();
        let room = Uuid::new_v4();
        let a1 = hub.enter(room, "a@x".into());
        let a2 = hub.enter(room, "a@x".into());
        let b = hub.enter(room, "b@x".into());
        assert_eq!(hub.present(room), vec!["a@x".to_string(), "b@x".to_string()]);
        drop(a1);
        assert_eq!(hub.present(room), vec!["a@x".to_string(), "b@x".to_string()], "a still has a tab open");
        drop(a2);
        drop(b);
        assert!(hub.present(room).is_empty());
        let mut last = None;
        while let Ok((id, e)) = rx.try_recv() {
            assert_eq!(id, room);
            last = Some(e);
        }
        assert_eq!(last.as_deref(), Some(&RoomEvent::Presence(vec![])));
    }
}
