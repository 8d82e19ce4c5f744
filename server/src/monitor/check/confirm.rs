//! A probe's confirmed state from its stream of results: one bad result does not page anyone.
//! It takes `failures_to_down` consecutive results at least as bad as a worse state to enter it,
//! and `successes_to_up` consecutive results at least as good as a better state to return.
//!
//! A new probe's state is unknown until its first confirmation: `failures_to_down` results at
//! least as bad as `degraded` or `down`, or `successes_to_up` `up` results. That first change is
//! recorded from `unknown`, never as an `up → down` that never happened.
//!
//! Runs are counted per severity level, so mixed bad results still confirm: `degraded, down,
//! down` with a threshold of 3 confirms `degraded` (all three were at least degraded), and one more
//! `down` confirms `down`.

use serde::{Deserialize, Serialize};

pub use app::model::Outcome;

fn severity(o: Outcome) -> usize {
    o as usize
}

/// How many consecutive results confirm a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub failures_to_down: u32,
    pub successes_to_up: u32,
}

impl Default for Confirmation {
    fn default() -> Self {
        Self { failures_to_down: 3, successes_to_up: 2 }
    }
}

/// A confirmed change of state; `from` is `None` for the first one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub from: Option<Outcome>,
    pub to: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeState {
    state: Option<Outcome>,
    confirmation: Confirmation,
    /// `at_least[k]`: consecutive latest results with severity ≥ k.
    at_least: [u32; 3],
    /// `at_most[k]`: consecutive latest results with severity ≤ k.
    at_most: [u32; 3],
}

impl ProbeState {
    /// A new probe: nothing confirmed yet.
    pub fn new(confirmation: Confirmation) -> Self {
        Self::resume(None, confirmation)
    }

    /// Continues from a stored state, e.g. after a restart.
    pub fn resume(state: Option<Outcome>, confirmation: Confirmation) -> Self {
        let confirmation = Confirmation {
            failures_to_down: confirmation.failures_to_down.max(1),
            successes_to_up: confirmation.successes_to_up.max(1),
        };
        Self { state, confirmation, at_least: [0; 3], at_most: [0; 3] }
    }

    pub fn state(&self) -> Option<Outcome> {
        self.state
    }

    /// The runs counted so far (`at_least`, `at_most`), to be stored between results that may
    /// be judged on different replicas.
    pub fn runs(&self) -> ([u32; 3], [u32; 3]) {
        (self.at_least, self.at_most)
    }

    /// Continues from a stored state and its stored runs.
    pub fn restore(state: Option<Outcome>, confirmation: Confirmation, runs: ([u32; 3], [u32; 3])) -> Self {
        Self { at_least: runs.0, at_most: runs.1, ..Self::resume(state, confirmation) }
    }

    /// Feeds one result; returns the change it confirms, if any.
    pub fn observe(&mut self, outcome: Outcome) -> Option<StateChange> {
        let sev = severity(outcome);
        for k in 0..3 {
            self.at_least[k] = if sev >= k { self.at_least[k].saturating_add(1) } else { 0 };
            self.at_most[k] = if sev <= k { self.at_most[k].saturating_add(1) } else { 0 };
        }
        // Unknown sits between up and degraded: any confirmed state is a change from it.
        let (worse_from, better_below) = match self.state {
            Some(s) => (severity(s) + 1, severity(s)),
            None => (1, 1),
        };
        let worse = (worse_from..3).rev().find(|&k| self.at_least[k] >= self.confirmation.failures_to_down);
        let better = (0..better_below).find(|&k| self.at_most[k] >= self.confirmation.successes_to_up);
        let next = Outcome::ALL[worse.or(better)?];
        let from = self.state.replace(next);
        Some(StateChange { from, to: next })
    }
}

/// A service is as bad as its worst probe.
pub fn worst<I: IntoIterator<Item = Outcome>>(states: I) -> Option<Outcome> {
    states.into_iter().max()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn c(down: u32, up: u32) -> Confirmation {
        Confirmation { failures_to_down: down, successes_to_up: up }
    }

    use Outcome::{Degraded, Down, Up};

    fn change(from: Outcome, to: Outcome) -> Option<StateChange> {
        Some(StateChange { from: Some(from), to })
    }

    #[test]
    fn a_restored_machine_goes_on_counting_where_it_stopped() {
        let mut s = ProbeState::new(c(3, 2));
        s.observe(Down);
        s.observe(Down);
        let mut again = ProbeState::restore(s.state(), c(3, 2), s.runs());
        assert_eq!(again.observe(Down), Some(StateChange { from: None, to: Down }), "the third failure confirms");
        let mut fresh = ProbeState::resume(s.state(), c(3, 2));
        assert_eq!(fresh.observe(Down), None, "without its runs it would start counting again");
    }

    #[test]
    fn a_new_probe_confirms_its_first_state_from_unknown() {
        let mut s = ProbeState::new(c(3, 2));
        assert_eq!(s.state(), None);
        assert_eq!(s.observe(Up), None, "one success confirms nothing");
        assert_eq!(s.observe(Up), Some(StateChange { from: None, to: Up }));

        let mut s = ProbeState::new(c(3, 2));
        assert_eq!(s.observe(Down), None);
        assert_eq!(s.observe(Down), None);
        assert_eq!(s.state(), None, "two failures are not yet an outage, nor a recovery");
        assert_eq!(s.observe(Down), Some(StateChange { from: None, to: Down }), "never recorded as up → down");

        let mut s = ProbeState::new(c(2, 2));
        assert_eq!(s.observe(Degraded), None);
        assert_eq!(s.observe(Down), Some(StateChange { from: None, to: Degraded }));
    }

    #[test]
    fn one_failure_is_not_an_outage() {
        let mut s = ProbeState::resume(Some(Up), c(3, 2));
        assert_eq!(s.observe(Down), None);
        assert_eq!(s.observe(Down), None);
        assert_eq!(s.observe(Up), None, "the run is broken");
        assert_eq!(s.observe(Down), None);
        assert_eq!(s.observe(Down), None);
        assert_eq!(s.observe(Down), change(Up, Down));
        assert_eq!(s.observe(Up), None);
        assert_eq!(s.observe(Up), change(Down, Up));
    }

    #[test]
    fn mixed_bad_results_confirm_the_milder_state_first() {
        let mut s = ProbeState::resume(Some(Up), c(3, 2));
        assert_eq!(s.observe(Degraded), None);
        assert_eq!(s.observe(Down), None);
        assert_eq!(s.observe(Down), change(Up, Degraded));
        assert_eq!(s.observe(Down), change(Degraded, Down));
    }

    #[test]
    fn recovery_through_degraded() {
        let mut s = ProbeState::resume(Some(Down), c(2, 2));
        assert_eq!(s.observe(Degraded), None);
        assert_eq!(s.observe(Up), change(Down, Degraded));
        assert_eq!(s.observe(Up), change(Degraded, Up));
    }

    #[test]
    fn zero_thresholds_behave_as_one() {
        let mut s = ProbeState::resume(Some(Up), c(0, 0));
        assert_eq!(s.observe(Down), change(Up, Down));
    }

    /// Properties over many random result streams and thresholds.
    #[test]
    fn properties_hold_for_random_streams() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2_000 {
            let conf = c(1 + rng.below(5) as u32, 1 + rng.below(5) as u32);
            let mut s = if rng.below(2) == 0 { ProbeState::new(conf) } else { ProbeState::resume(Some(Up), conf) };
            let mut history: Vec<Outcome> = Vec::new();
            for _ in 0..200 {
                // Bursty streams: repeat the last outcome often, as real targets do.
                let o = if !history.is_empty() && rng.below(10) < 7 {
                    *history.last().expect("non-empty")
                } else {
                    Outcome::ALL[rng.below(3) as usize]
                };
                history.push(o);
                let before = s.state();
                let change = s.observe(o);
                match change {
                    Some(ch) => {
                        assert_eq!(ch.from, before);
                        assert_ne!(ch.from, Some(ch.to), "a change changes something");
                        assert_eq!(Some(ch.to), s.state());
                        let worse = ch.from.is_none_or(|f| ch.to > f) && ch.to != Up;
                        let (n, ok): (u32, fn(Outcome, Outcome) -> bool) = if worse {
                            (conf.failures_to_down, |r, to| r >= to)
                        } else {
                            (conf.successes_to_up, |r, to| r <= to)
                        };
                        let n = n as usize;
                        assert!(history.len() >= n, "confirmed by fewer results than required");
                        assert!(
                            history[history.len() - n..].iter().all(|&r| ok(r, ch.to)),
                            "the last {n} results justify {ch:?}: {:?}",
                            &history[history.len() - n..]
                        );
                    }
                    None => assert_eq!(before, s.state()),
                }
                // Enough identical results always settle the state on that outcome.
                let settle = conf.failures_to_down.max(conf.successes_to_up) as usize;
                if history.len() >= settle && history[history.len() - settle..].iter().all(|&r| r == o) {
                    assert_eq!(s.state(), Some(o), "after {settle}× {o:?} with {conf:?}");
                }
                if conf.failures_to_down == 1 && conf.successes_to_up == 1 {
                    assert_eq!(s.state(), Some(o), "thresholds of 1 follow every result");
                }
            }
        }
    }

    #[test]
    fn a_service_is_as_bad_as_its_worst_probe() {
        assert_eq!(worst([Up, Degraded, Up]), Some(Degraded));
        assert_eq!(worst([Up, Down, Degraded]), Some(Down));
        assert_eq!(worst([]), None);
    }

    #[test]
    fn outcome_serde_is_snake_case() {
        assert_eq!(serde_json::to_string(&Degraded).expect("ser"), r#""degraded""#);
    }
}
