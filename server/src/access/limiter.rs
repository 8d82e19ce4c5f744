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
    /// When each (account, address) pair was last told to wait: only the first refusal of a
    /// block is worth an audit row, so a flood of refused guesses cannot fill the audit log.
    refused: Mutex<HashMap<(String, String), Instant>>,
}

/// An attempt refused by the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub wait: Duration,
    /// The first refusal of this block for this account and address (audit it; the rest not).
    pub first: bool,
}

impl LoginLimiter {
    pub fn new(limits: Limits) -> Self {
        Self { limits, failures: Mutex::default(), refused: Mutex::default() }
    }

    /// How long `account` or `address` must wait, if either is at its limit.
    fn wait(
        &self,
        map: &HashMap<String, Vec<Instant>>,
        account: &str,
        address: &str,
        now: Instant,
    ) -> Option<Duration> {
        let window = self.limits.window;
        let wait = |key: &str, max: u32| {
            let recent: Vec<Instant> =
                map.get(key)?.iter().copied().filter(|t| now.duration_since(*t) < window).collect();
            let oldest = recent.iter().min().copied()?;
            (recent.len() >= max as usize).then(|| window.saturating_sub(now.duration_since(oldest)))
        };
        wait(&account_key(account), self.limits.per_account)
            .or_else(|| wait(&address_key(address), self.limits.per_address))
    }

    /// Counts a failure (or a reserved attempt) at `now` against both keys.
    fn count(&self, map: &mut HashMap<String, Vec<Instant>>, account: &str, address: &str, now: Instant) {
        let window = self.limits.window;
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

    /// Checks and counts an attempt in one step, before its password is verified: a parallel
    /// burst cannot slip past the limit while the hashes run, since each attempt is counted as
    /// a failure until [`Self::succeeded_after`] takes it back.
    pub fn reserve(&self, account: &str, address: &str) -> Result<Instant, Throttled> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = self.wait(&map, account, address, now) {
            drop(map);
            return Err(Throttled { wait, first: self.first_refusal(account, address, now) });
        }
        self.count(&mut map, account, address, now);
        Ok(now)
    }

    fn first_refusal(&self, account: &str, address: &str, now: Instant) -> bool {
        let window = self.limits.window;
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.len() >= MAX_KEYS {
            refused.retain(|_, at| now.duration_since(*at) < window);
            if refused.len() >= MAX_KEYS {
                refused.clear();
            }
        }
        let key = (account.to_lowercase(), address.to_string());
        match refused.get(&key) {
            Some(at) if now.duration_since(*at) < window => false,
            _ => {
                refused.insert(key, now);
                true
            }
        }
    }

    /// A failed attempt made on another replica: every replica refuses the same guesses.
    pub fn failed_elsewhere(&self, account: &str, address: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        self.count(&mut map, account, address, Instant::now());
    }

    /// The reserved attempt was a good password: the account's count is cleared and the
    /// address's loses this attempt only.
    pub fn succeeded_after(&self, account: &str, address: &str, reserved: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&account_key(account));
        if let Some(hits) = map.get_mut(&address_key(address))
            && let Some(i) = hits.iter().position(|t| *t == reserved)
        {
            hits.remove(i);
        }
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
            l.reserve("A@x", "1.1.1.1").expect("under the limit");
        }
        assert!(l.reserve("a@x", "2.2.2.2").is_err(), "the account is blocked from anywhere");
        l.reserve("b@x", "3.3.3.3").expect("another account elsewhere is not");
        l.reserve("b@x", "1.1.1.1").expect("fourth from this address");
        l.reserve("c@x", "1.1.1.1").expect("fifth from this address");
        let refused = l.reserve("d@x", "1.1.1.1").expect_err("address blocked after 5 attempts");
        assert!(refused.wait <= Duration::from_secs(60));
        assert!(refused.first, "the first refusal of a block is worth an audit row");
        assert!(!l.reserve("d@x", "1.1.1.1").expect_err("still blocked").first, "later ones are not");
        assert!(l.reserve("e@x", "1.1.1.1").expect_err("blocked").first, "another account's first is");
    }

    #[test]
    fn reserved_attempts_count_before_their_outcome_is_known() {
        let l = LoginLimiter::new(Limits { per_account: 3, per_address: 10, window: Duration::from_secs(60) });
        // Three attempts in flight at once (none has finished hashing): the fourth is refused.
        let held: Vec<Instant> = (0..3).map(|_| l.reserve("a@x", "1.1.1.1").expect("allowed")).collect();
        assert!(l.reserve("a@x", "1.1.1.1").is_err(), "a parallel burst cannot outrun the limit");
        // One of them was the right password: the account is free again, the address keeps the
        // other two attempts.
        l.succeeded_after("a@x", "1.1.1.1", held[0]);
        assert!(l.reserve("a@x", "1.1.1.1").is_ok());
        let l = LoginLimiter::new(Limits { per_account: 100, per_address: 2, window: Duration::from_secs(60) });
        let first = l.reserve("a@x", "1.1.1.1").expect("allowed");
        l.succeeded_after("a@x", "1.1.1.1", first);
        l.reserve("b@x", "1.1.1.1").expect("allowed");
        l.reserve("c@x", "1.1.1.1").expect("the good sign-in did not count against the address");
        assert!(l.reserve("d@x", "1.1.1.1").is_err());
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let l = LoginLimiter::new(Limits { per_account: 1, per_address: 100, window: Duration::ZERO });
        l.reserve("a@x", "1.1.1.1").expect("first");
        assert!(l.reserve("a@x", "1.1.1.1").is_ok());
    }
}
