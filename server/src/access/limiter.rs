//! Sign-in throttling: failed attempts counted per account and per client address in a sliding
//! window. Memory is bounded: past the cap the stalest keys are forgotten first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: u32,
    pub per_address: u32,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { per_account: 5, per_address: 20, window: Duration::from_secs(15 * 60) }
    }
}

const MAX_KEYS: usize = 50_000;

#[derive(Default)]
pub struct LoginLimiter {
    limits: Limits,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    pub fn new(limits: Limits) -> Self {
        Self { limits, failures: Mutex::default() }
    }

    /// `Some(wait)` when this account or address has failed too often lately.
    pub fn blocked(&self, account: &str, address: &str) -> Option<Duration> {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let wait = |key: &str, max: u32| {
            let hits = map.get(key)?;
            let recent: Vec<&Instant> = hits.iter().filter(|t| now.duration_since(**t) < self.limits.window).collect();
            if recent.len() < max as usize {
                return None;
            }
            let oldest = recent.iter().min()?;
            Some(self.limits.window.saturating_sub(now.duration_since(**oldest)))
        };
        wait(&account_key(account), self.limits.per_account)
            .or_else(|| wait(&address_key(address), self.limits.per_address))
    }

    pub fn failed(&self, account: &str, address: &str) {
        let now = Instant::now();
        let window = self.limits.window;
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, hits| hits.iter().any(|t| now.duration_since(*t) < window));
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        for key in [account_key(account), address_key(address)] {
            let hits = map.entry(key).or_default();
            hits.retain(|t| now.duration_since(*t) < window);
            hits.push(now);
        }
    }

    /// A successful sign-in clears the account's count (not the address's: one good password
    /// must not reset guessing at other accounts from the same place).
    pub fn succeeded(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&account_key(account));
    }
}

fn account_key(account: &str) -> String {
    format!("a:{}", account.to_lowercase())
}

fn address_key(address: &str) -> String {
    format!("i:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_per_account_and_per_address() {
        let l = LoginLimiter::new(Limits { per_account: 3, per_address: 5, window: Duration::from_secs(60) });
        for _ in 0..3 {
            assert!(l.blocked("a@x", "1.1.1.1").is_none());
            l.failed("A@x", "1.1.1.1");
        }
        assert!(l.blocked("a@x", "2.2.2.2").is_some(), "the account is blocked from anywhere");
        assert!(l.blocked("b@x", "3.3.3.3").is_none());
        l.failed("b@x", "1.1.1.1");
        l.failed("c@x", "1.1.1.1");
        let wait = l.blocked("d@x", "1.1.1.1").expect("address blocked after 5 failures");
        assert!(wait <= Duration::from_secs(60));
        l.succeeded("a@x");
        assert!(l.blocked("a@x", "9.9.9.9").is_none());
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let l = LoginLimiter::new(Limits { per_account: 1, per_address: 100, window: Duration::ZERO });
        l.failed("a@x", "1.1.1.1");
        assert!(l.blocked("a@x", "1.1.1.1").is_none());
    }
}
