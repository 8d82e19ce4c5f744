//! Sessions resolved recently, so a page view does not cost a database round trip each time.
//! Entries live a few seconds. This server forgets them the moment it ends a session or changes
//! a user. A change made by another process (`triage user …`) shows here within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use app::model::Me;
use chrono::{DateTime, Utc};

const TTL: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 10_000;

#[derive(Clone)]
pub struct CachedSession {
    pub me: Me,
    pub last_seen_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct SessionCache {
    map: Mutex<HashMap<Vec<u8>, (CachedSession, Instant)>>,
}

impl SessionCache {
    pub fn get(&self, hash: &[u8]) -> Option<CachedSession> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(hash).filter(|(_, at)| at.elapsed() < TTL).map(|(c, _)| c.clone())
    }

    pub fn put(&self, hash: Vec<u8>, cached: CachedSession) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, at)| at.elapsed() < TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(hash, (cached, Instant::now()));
    }

    pub fn forget(&self, hash: &[u8]) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(hash);
    }

    /// After a user's role, password or state changed: their sessions are looked up afresh.
    pub fn forget_user(&self, user: uuid::Uuid) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, (c, _)| c.me.id != user);
    }

    /// Forgets everything (messages from other replicas may have been missed).
    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::Role;

    #[test]
    fn entries_are_forgotten_by_session_and_by_user() {
        let cache = SessionCache::default();
        let me = |id| Me { id, email: "a@b".into(), display_name: String::new(), role: Role::Viewer };
        let (u1, u2) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        cache.put(vec![1], CachedSession { me: me(u1), last_seen_at: Utc::now() });
        cache.put(vec![2], CachedSession { me: me(u1), last_seen_at: Utc::now() });
        cache.put(vec![3], CachedSession { me: me(u2), last_seen_at: Utc::now() });
        assert!(cache.get(&[1]).is_some());
        cache.forget(&[1]);
        assert!(cache.get(&[1]).is_none());
        cache.forget_user(u1);
        assert!(cache.get(&[2]).is_none());
        assert_eq!(cache.get(&[3]).map(|c| c.me.id), Some(u2));
    }
}
