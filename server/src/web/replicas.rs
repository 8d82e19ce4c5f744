//! What this replica does with the other replicas' notes ([`Note`]), and how it sends its own:
//! the caches it keeps in memory (sessions, the overview, objectives, status pages, the probe
//! allowlist) and the sign-in limiter agree across replicas within the bus's delay.

use crate::monitor::allowlist;
use crate::storage::bus::{Note, Topic};
use crate::web::state::AppState;

/// Hex of a session cookie's SHA-256, as notes carry it.
pub fn session_note(hash: &[u8]) -> Note {
    Note::Session { hash: hash.iter().map(|b| format!("{b:02x}")).collect() }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.len()
        .is_multiple_of(2)
        .then(|| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect())
        .flatten()
}

impl AppState {
    /// Forgets here, and tells the other replicas to forget too.
    pub fn forget(&self, note: Note) {
        self.bus.note(&note);
        self.apply_here(note);
    }

    /// Acts on a note on this replica only.
    async fn apply(&self, note: Note) {
        if note == Note::Allowlist {
            if let Err(e) = allowlist::load(&self.pool, self.scheduler.policy()).await {
                tracing::warn!(error = %e, "reading the probe allowlist again failed");
            }
            return;
        }
        self.apply_here(note);
    }

    fn apply_here(&self, note: Note) {
        match note {
            Note::Session { hash } => {
                if let Some(h) = unhex(&hash) {
                    self.auth.sessions.forget(&h);
                }
            }
            Note::User { id } => self.auth.sessions.forget_user(id),
            Note::LoginFailed { account, address } => self.auth.limiter.failed_elsewhere(&account, &address),
            Note::Overview => {
                self.reads.changed();
                self.overview.forget_budgets();
            }
            Note::Slo { service } => self.slos.forget_here(Some(service)),
            Note::StatusPages => self.status_pages.forget_here(),
            // Already applied where it was changed; the others read it again in `apply`.
            Note::Allowlist => {}
        }
    }

    /// Applies the other replicas' notes until the bus closes. After a gap (the listener lost
    /// its connection) everything cached is dropped, since any note may have been missed.
    pub async fn follow_notes(self) {
        let mut inbox = self.bus.subscribe();
        loop {
            match inbox.recv().await {
                Ok((Topic::Note, body)) => match serde_json::from_str::<Note>(&body) {
                    Ok(note) => self.apply(note).await,
                    Err(e) => tracing::debug!(error = %e, "unreadable note from another replica"),
                },
                Ok((Topic::Gap, _)) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    self.auth.sessions.clear();
                    self.overview.forget_budgets();
                    self.slos.forget_here(None);
                    self.status_pages.forget_here();
                    self.apply(Note::Allowlist).await;
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_hashes_travel_as_hex_and_back() {
        let hash: Vec<u8> = (0..32).map(|i| i * 7).collect();
        let Note::Session { hash: hex } = session_note(&hash) else { panic!("a session note") };
        assert_eq!(hex.len(), 64);
        assert_eq!(unhex(&hex), Some(hash));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
