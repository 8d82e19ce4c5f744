//! The incident rooms' live feed: new and changed entries, incident changes and who is in each
//! room. One bounded broadcast channel for every room (each stream filters by incident): a slow
//! viewer loses old events and refetches, it never holds up a writer.
//!
//! With other replicas alive, every event also goes over the replica bus and what the others
//! publish arrives from it ([`RoomHub::follow`]), so a room open on any replica is live. Presence
//! is each replica's own viewers plus what the others last said about theirs; a replica that
//! dies takes its viewers with it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use app::model::RoomEvent;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::monitor::replicas::View;
use crate::storage::bus::{Bus, MAX_BODY, Topic};
use crate::storage::incidents as store;

const CAPACITY: usize = 1024;

/// Viewers per room: email → open streams (one person may have two tabs open).
type Local = HashMap<Uuid, HashMap<String, usize>>;
/// Other replicas' viewers: replica → room → emails.
type Remote = HashMap<Uuid, HashMap<Uuid, Vec<String>>>;

#[derive(Clone)]
pub struct RoomHub {
    tx: broadcast::Sender<(Uuid, Arc<RoomEvent>)>,
    presence: Arc<Mutex<Local>>,
    remote: Arc<Mutex<Remote>>,
    bus: Bus,
}

impl Default for RoomHub {
    fn default() -> Self {
        Self::with_bus(Bus::local())
    }
}

/// What goes over the bus. An event too big for one message goes as a reference that the
/// receiving replica reads from the database.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Wire {
    Event { incident: Uuid, event: RoomEvent },
    EntryRef { incident: Uuid, entry: Uuid },
    IncidentRef { incident: Uuid },
    Here { replica: Uuid, incident: Uuid, who: Vec<String> },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RoomHub {
    pub fn with_bus(bus: Bus) -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx, presence: Arc::default(), remote: Arc::default(), bus }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<(Uuid, Arc<RoomEvent>)> {
        self.tx.subscribe()
    }

    /// Never blocks; with nobody watching the event is dropped. Goes to the other replicas too.
    pub fn publish(&self, incident: Uuid, event: RoomEvent) {
        if self.bus.has_peers() && !matches!(event, RoomEvent::Presence(_)) {
            let reference = match &event {
                RoomEvent::Entry(e) => Wire::EntryRef { incident, entry: e.id },
                _ => Wire::IncidentRef { incident },
            };
            let whole = serde_json::to_string(&Wire::Event { incident, event: event.clone() });
            match whole {
                Ok(body) if body.len() <= MAX_BODY => self.bus.send(Topic::Rooms, body),
                _ => {
                    if let Ok(body) = serde_json::to_string(&reference) {
                        self.bus.send(Topic::Rooms, body);
                    }
                }
            }
        }
        self.publish_here(incident, event);
    }

    fn publish_here(&self, incident: Uuid, event: RoomEvent) {
        let _ = self.tx.send((incident, Arc::new(event)));
    }

    /// Who is in the room now, on any replica, sorted.
    pub fn present(&self, incident: Uuid) -> Vec<String> {
        let mut who: Vec<String> =
            lock(&self.presence).get(&incident).map(|r| r.keys().cloned().collect()).unwrap_or_default();
        for rooms in lock(&self.remote).values() {
            who.extend(rooms.get(&incident).into_iter().flatten().cloned());
        }
        who.sort();
        who.dedup();
        who
    }

    /// Tells the room (here and elsewhere) who is in it after a change on this replica.
    fn presence_changed(&self, incident: Uuid) {
        let here: Vec<String> =
            lock(&self.presence).get(&incident).map(|r| r.keys().cloned().collect()).unwrap_or_default();
        self.announce(incident, here);
        self.publish_here(incident, RoomEvent::Presence(self.present(incident)));
    }

    fn announce(&self, incident: Uuid, who: Vec<String>) {
        let wire = Wire::Here { replica: self.bus.me(), incident, who };
        if let Ok(body) = serde_json::to_string(&wire) {
            self.bus.send(Topic::Rooms, body);
        }
    }

    /// Marks `who` as in the room until the returned guard drops; everyone in it is told.
    pub fn enter(&self, incident: Uuid, who: String) -> Presence {
        *lock(&self.presence).entry(incident).or_default().entry(who.clone()).or_default() += 1;
        self.presence_changed(incident);
        Presence { hub: self.clone(), incident, who }
    }

    fn leave(&self, incident: Uuid, who: &str) {
        {
            let mut rooms = lock(&self.presence);
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
        self.presence_changed(incident);
    }

    /// Publishes here what the other replicas publish, and keeps presence in step with the
    /// replica set (a departed replica's viewers leave; a newcomer is told about ours).
    pub async fn follow(self, pool: PgPool, mut views: watch::Receiver<View>) {
        let mut inbox = self.bus.subscribe();
        let mut members: Vec<Uuid> = views.borrow().members.to_vec();
        loop {
            tokio::select! {
                got = inbox.recv() => match got {
                    Ok((Topic::Rooms, body)) => self.receive(&pool, &body, &members).await,
                    // Presence messages may have been missed: ours are told again, and the
                    // others' come with their next change.
                    Ok((Topic::Gap, _)) | Err(broadcast::error::RecvError::Lagged(_)) => self.members_changed(&[], &members),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                changed = views.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now: Vec<Uuid> = views.borrow_and_update().members.to_vec();
                    self.members_changed(&members, &now);
                    members = now;
                }
            }
        }
    }

    fn members_changed(&self, before: &[Uuid], now: &[Uuid]) {
        let gone: Vec<Uuid> = before.iter().filter(|m| !now.contains(m)).copied().collect();
        let mut touched = Vec::new();
        {
            let mut remote = lock(&self.remote);
            for g in &gone {
                touched.extend(remote.remove(g).into_iter().flat_map(|rooms| rooms.into_keys()));
            }
        }
        for incident in touched {
            self.publish_here(incident, RoomEvent::Presence(self.present(incident)));
        }
        if now.iter().any(|m| !before.contains(m)) {
            // Whoever else follows the view may not have told the bus yet.
            self.bus.set_peers(now.len() > 1);
            let ours: Vec<(Uuid, Vec<String>)> =
                lock(&self.presence).iter().map(|(i, r)| (*i, r.keys().cloned().collect())).collect();
            for (incident, who) in ours {
                self.announce(incident, who);
            }
        }
    }

    async fn receive(&self, pool: &PgPool, body: &str, members: &[Uuid]) {
        let wire = match serde_json::from_str::<Wire>(body) {
            Ok(w) => w,
            Err(e) => return tracing::debug!(error = %e, "unreadable room event from another replica"),
        };
        match wire {
            Wire::Event { incident, event } => self.publish_here(incident, event),
            Wire::EntryRef { incident, entry } => match store::get_entry(pool, entry).await {
                Ok(Some(e)) => self.publish_here(incident, RoomEvent::Entry(e)),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "reading another replica's room entry failed"),
            },
            Wire::IncidentRef { incident } => match store::get_incident(pool, incident).await {
                Ok(Some(i)) => self.publish_here(incident, RoomEvent::Incident(Box::new(i))),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "reading another replica's incident failed"),
            },
            // A late word from a replica that has left must not bring its viewers back.
            Wire::Here { replica, .. } if !members.contains(&replica) => {}
            Wire::Here { replica, incident, who } => {
                {
                    let mut remote = lock(&self.remote);
                    let rooms = remote.entry(replica).or_default();
                    if who.is_empty() {
                        rooms.remove(&incident);
                    } else {
                        rooms.insert(incident, who);
                    }
                }
                self.publish_here(incident, RoomEvent::Presence(self.present(incident)));
            }
        }
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
