//! A value computed at most once per `ttl`, however many requests want it at once: the first
//! caller starts the computation, the others await the same future (single flight), and everyone
//! within `ttl` afterwards gets the stored copy. Errors are not stored: the next caller retries.
//!
//! For figures every open dashboard asks for (the overview's tiles): the work is done once per
//! interval, not once per browser. No lock is held across an await.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

type Flight<T, E> = Shared<BoxFuture<'static, Result<T, E>>>;

pub struct Cached<T, E> {
    ttl: Duration,
    state: Arc<Mutex<State<T, E>>>,
}

struct State<T, E> {
    last: Option<(Instant, T)>,
    in_flight: Option<Flight<T, E>>,
    /// Bumped by `clear`: a computation started before it must not store what it read.
    generation: u64,
}

fn lock<T, E>(state: &Mutex<State<T, E>>) -> MutexGuard<'_, State<T, E>> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T, E> Cached<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, state: Arc::new(Mutex::new(State { last: None, in_flight: None, generation: 0 })) }
    }

    /// Drops the stored value: the next caller computes a fresh one (after a change that must
    /// show at once).
    pub fn clear(&self) {
        let mut state = lock(&self.state);
        state.last = None;
        state.in_flight = None;
        state.generation += 1;
    }

    /// The stored value if it is younger than `ttl`, else the result of `compute` (started here
    /// or by whoever asked first).
    pub async fn get<F, Fut>(&self, compute: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let flight = {
            let mut state = lock(&self.state);
            if let Some((at, value)) = &state.last
                && at.elapsed() < self.ttl
            {
                return Ok(value.clone());
            }
            match &state.in_flight {
                Some(flight) => flight.clone(),
                None => {
                    let shared = Arc::clone(&self.state);
                    let started = state.generation;
                    let work = compute();
                    let flight = async move {
                        let result = work.await;
                        let mut state = lock(&shared);
                        // Cleared meanwhile: what this read may predate the change; its callers
                        // get it, later ones compute afresh.
                        if state.generation == started {
                            if let Ok(value) = &result {
                                state.last = Some((Instant::now(), value.clone()));
                            }
                            state.in_flight = None;
                        }
                        result
                    }
                    .boxed()
                    .shared();
                    state.in_flight = Some(flight.clone());
                    flight
                }
            }
        };
        flight.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_callers_share_one_computation_and_errors_are_not_kept() {
        let cache: Arc<Cached<usize, String>> = Arc::new(Cached::new(Duration::from_secs(60)));
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, gate) = tokio::sync::watch::channel(false);
        let mut callers = Vec::new();
        for _ in 0..8 {
            let (cache, runs, mut gate) = (Arc::clone(&cache), Arc::clone(&runs), gate.clone());
            callers.push(tokio::spawn(async move {
                cache
                    .get(move || async move {
                        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                        let _ = gate.wait_for(|open| *open).await;
                        Ok(n * 10)
                    })
                    .await
            }));
        }
        // The flight cannot finish before it has started; callers arriving later join it or,
        // once it is done, read what it stored.
        while cache.state.lock().map(|s| s.in_flight.is_none()).unwrap_or(true) {
            tokio::task::yield_now().await;
        }
        release.send(true).expect("open");
        for c in callers {
            assert_eq!(c.await.expect("joined"), Ok(10));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one computation for eight callers");
        assert_eq!(cache.get(|| async { Ok(99) }).await, Ok(10), "within the ttl the stored value is served");

        // A clear during a computation: its result is not kept, the next caller computes anew.
        let cleared: Arc<Cached<usize, String>> = Arc::new(Cached::new(Duration::from_secs(60)));
        let (release, mut gate) = tokio::sync::watch::channel(false);
        let slow = {
            let cleared = Arc::clone(&cleared);
            tokio::spawn(async move {
                cleared
                    .get(move || async move {
                        let _ = gate.wait_for(|open| *open).await;
                        Ok(1)
                    })
                    .await
            })
        };
        while cleared.state.lock().map(|s| s.in_flight.is_none()).unwrap_or(true) {
            tokio::task::yield_now().await;
        }
        cleared.clear();
        release.send(true).expect("open");
        assert_eq!(slow.await.expect("joined"), Ok(1), "its own caller still gets it");
        assert_eq!(cleared.get(|| async { Ok(2) }).await, Ok(2), "the stale value was not stored");

        let failing: Cached<usize, String> = Cached::new(Duration::from_secs(60));
        assert_eq!(failing.get(|| async { Err("db down".to_string()) }).await, Err("db down".into()));
        assert_eq!(failing.get(|| async { Ok(7) }).await, Ok(7), "an error is not cached");
        assert_eq!(failing.get(|| async { Ok(8) }).await, Ok(7), "and the success is kept");
    }
}
