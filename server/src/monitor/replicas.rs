//! Several `triage serve` processes on one PostgreSQL: membership, probe ownership, leadership.
//!
//! Each replica keeps a membership connection of its own (outside the pool) that holds its
//! membership lock, heartbeats every second and reads who else is alive
//! ([`crate::storage::replicas`]). Probes are shared out by rendezvous hashing over the live
//! members: every replica computes the same owner for every probe from the same member list, and
//! when a member comes or goes only the probes it gains or loses move. A replica killed with
//! `kill -9` drops its lock with its connection, so the others see it gone at their next
//! heartbeat and take its probes over within about a second.
//!
//! Work that must run once (rollups and retention, the incident engine's periodic evaluation,
//! burn-rate judging, the notification housekeeping) runs on the replica holding the leader
//! lock, which is on the same connection: a dead leader's lock passes to another at once.
//!
//! A replica cut off from PostgreSQL keeps checking the probes it owned (and its writer buffers
//! the results), while the others take them over once its lock and heartbeat are gone: during a
//! partition some probes are checked twice, which loses nothing. It stops leading at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

use crate::storage::replicas::{self as store, NewReplica};

#[derive(Debug, Clone, Copy)]
pub struct ReplicaSettings {
    /// How often a replica heartbeats and reads the membership.
    pub heartbeat: Duration,
    /// A replica whose heartbeat is older than this is dead even if its lock is held (hung).
    pub dead_after: Duration,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        Self { heartbeat: Duration::from_secs(1), dead_after: Duration::from_secs(10) }
    }
}

/// Who is alive, as this replica last read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub me: Uuid,
    /// Live members, sorted (always including `me`).
    pub members: Arc<[Uuid]>,
    pub leader: bool,
}

impl View {
    /// A process that shares nothing: it owns every probe and leads.
    pub fn alone() -> Self {
        let me = Uuid::new_v4();
        Self { me, members: Arc::from([me]), leader: true }
    }

    /// The member that runs `probe`: the highest score wins (rendezvous hashing).
    pub fn owner(&self, probe: Uuid) -> Option<Uuid> {
        self.members.iter().copied().max_by_key(|m| (score(*m, probe), *m))
    }

    pub fn owns(&self, probe: Uuid) -> bool {
        self.owner(probe) == Some(self.me)
    }
}

/// A stable 64-bit score for (member, probe): SplitMix64's finaliser over both halves. It must
/// be the same in every process (no per-process random seed, unlike std's hasher).
fn score(member: Uuid, probe: Uuid) -> u64 {
    let x = member.as_u128() ^ probe.as_u128();
    mix(mix((x >> 64) as u64) ^ x as u64)
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether this replica runs the once-only work; true for a process that shares nothing.
#[derive(Clone, Debug)]
pub struct Leadership(Arc<AtomicBool>);

impl Default for Leadership {
    fn default() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }
}

impl Leadership {
    pub fn leads(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, leads: bool) {
        self.0.store(leads, Ordering::Relaxed);
    }
}

/// This replica's membership: the current view, and what it reports with each heartbeat.
#[derive(Clone)]
pub struct Replicas {
    pub id: Uuid,
    view: watch::Receiver<View>,
    pub leadership: Leadership,
    /// How many probes this replica runs (set by whoever schedules them).
    pub owned: Arc<AtomicUsize>,
    pub settings: ReplicaSettings,
}

impl Replicas {
    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// A receiver that wakes on every change of the view.
    pub fn watch(&self) -> watch::Receiver<View> {
        self.view.clone()
    }
}

/// What a replica says about itself in the membership table.
pub struct Identity {
    pub listen: String,
}

/// The membership connection and what the loop remembers between heartbeats.
struct Member {
    pool: PgPool,
    id: Uuid,
    host: String,
    listen: String,
    settings: ReplicaSettings,
    conn: Option<PgConnection>,
    leader: bool,
}

impl Member {
    /// A fresh connection, registered and holding the membership lock (`None` while the old
    /// connection's lock is still held by a backend PostgreSQL has not yet seen die).
    async fn connect(&mut self) -> Result<bool, sqlx::Error> {
        // Detached: a session lock must stay with one connection for its whole life, and the
        // pool must neither hand it to a request nor keep it when the pool closes.
        let mut conn = self.pool.acquire().await?.detach();
        let idle = i64::try_from((self.settings.dead_after * 3).as_secs()).unwrap_or(i64::MAX).max(1);
        if let Err(e) = store::end_when_idle(&mut conn, idle).await {
            tracing::debug!(error = %e, "idle_session_timeout not available; a frozen leader holds on longer");
        }
        let version = env!("CARGO_PKG_VERSION");
        let pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        let no = store::register(
            &mut conn,
            &NewReplica { id: self.id, host: &self.host, pid, version, listen: &self.listen },
        )
        .await?;
        if !store::lock_member(&mut conn, no).await? {
            return Ok(false);
        }
        self.conn = Some(conn);
        self.leader = false;
        Ok(true)
    }

    /// One heartbeat: reconnect if needed, report, try to lead, read the live members.
    async fn beat(&mut self, owned: usize) -> Result<Option<View>, sqlx::Error> {
        if self.conn.is_none() && !self.connect().await? {
            return Ok(None);
        }
        let Some(conn) = self.conn.as_mut() else { return Ok(None) };
        store::heartbeat(conn, self.id, i32::try_from(owned).unwrap_or(i32::MAX), self.leader).await?;
        if !self.leader {
            self.leader = store::try_lead(conn).await?;
            if self.leader {
                tracing::info!(replica = %self.id, "this replica now leads (rollups, retention, incident engine, notifications)");
            }
        }
        let mut members: Vec<Uuid> = store::list(conn, self.settings.dead_after.as_secs_f64())
            .await?
            .into_iter()
            .filter(|r| r.alive)
            .map(|r| r.id)
            .collect();
        if !members.contains(&self.id) {
            // Its own lock is held on this very connection: only a slow heartbeat hides it.
            members.push(self.id);
        }
        members.sort_unstable();
        Ok(Some(View { me: self.id, members: Arc::from(members), leader: self.leader }))
    }
}

/// Joins the replica set: registers, takes the membership lock, reads the first view (so the
/// first probes are scheduled already shared out), and keeps heartbeating until `stopping`.
pub async fn join(
    pool: PgPool,
    identity: Identity,
    settings: ReplicaSettings,
    mut stopping: watch::Receiver<bool>,
) -> Result<Replicas, sqlx::Error> {
    let id = Uuid::new_v4();
    let host = hostname();
    let mut member = Member { pool, id, host, listen: identity.listen, settings, conn: None, leader: false };
    let bound = settings.heartbeat * 5;
    let first = loop {
        match tokio::time::timeout(bound, member.beat(0)).await {
            Ok(Ok(Some(view))) => break view,
            Ok(Ok(None)) => tokio::time::sleep(settings.heartbeat).await,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        }
    };
    tracing::info!(replica = %id, members = first.members.len(), leader = first.leader, "joined the replica set");
    let (tx, rx) = watch::channel(first.clone());
    let leadership = Leadership::default();
    leadership.set(first.leader);
    let owned = Arc::new(AtomicUsize::new(0));
    let replicas = Replicas { id, view: rx, leadership: leadership.clone(), owned: Arc::clone(&owned), settings };
    tokio::spawn(async move {
        let mut every = tokio::time::interval(settings.heartbeat);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beats = 0u64;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stopping.wait_for(|s| *s) => break,
            }
            let outcome = tokio::time::timeout(bound, member.beat(owned.load(Ordering::Relaxed))).await;
            match outcome {
                Ok(Ok(Some(view))) => {
                    leadership.set(view.leader);
                    tx.send_if_modified(|v| {
                        let changed = *v != view;
                        if changed {
                            tracing::info!(members = view.members.len(), leader = view.leader, "replica set changed");
                            *v = view;
                        }
                        changed
                    });
                }
                Ok(Ok(None)) => {}
                Ok(Err(_)) | Err(_) => {
                    // The lock went (or will go) with the connection: stop leading now, keep the
                    // probes this replica had (see the module's note on partitions).
                    if member.leader {
                        tracing::warn!("lost the membership connection: no longer leading");
                    }
                    member.conn = None;
                    member.leader = false;
                    leadership.set(false);
                    tx.send_if_modified(|v| std::mem::replace(&mut v.leader, false));
                }
            }
            beats += 1;
            if beats.is_multiple_of(3600)
                && let Some(conn) = member.conn.as_mut()
                && let Err(e) = store::prune(conn).await
            {
                tracing::debug!(error = %e, "forgetting old replicas failed");
            }
        }
        // A clean exit hands the probes and the leadership over at once.
        if let Some(conn) = member.conn.take() {
            let _ = sqlx::Connection::close(conn).await;
        }
    });
    Ok(replicas)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(me: Uuid, members: &[Uuid]) -> View {
        let mut m = members.to_vec();
        m.sort_unstable();
        View { me, members: Arc::from(m), leader: false }
    }

    #[test]
    fn every_probe_has_one_owner_and_shares_are_even() {
        let members: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let views: Vec<View> = members.iter().map(|m| view(*m, &members)).collect();
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            let probe = Uuid::new_v4();
            let owners: Vec<usize> = (0..3).filter(|i| views[*i].owns(probe)).collect();
            assert_eq!(owners.len(), 1, "exactly one replica owns {probe}");
            counts[owners[0]] += 1;
        }
        // 10,000 expected each; a fair hash stays well within ±5 %.
        assert!(counts.iter().all(|c| (9_500..=10_500).contains(c)), "{counts:?}");
    }

    #[test]
    fn a_member_leaving_moves_only_its_own_probes() {
        let members: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let before = view(members[0], &members);
        let after = view(members[0], &members[..2]);
        let probes: Vec<Uuid> = (0..10_000).map(|_| Uuid::new_v4()).collect();
        let mut moved = 0;
        for p in &probes {
            let (b, a) = (before.owner(*p), after.owner(*p));
            if b != a {
                assert_eq!(b, Some(members[2]), "only the departed member's probes move");
                moved += 1;
            }
        }
        assert!((3_000..=3_700).contains(&moved), "about a third move: {moved}");
        // Joining again gives the same probes back (no reshuffle among the others).
        for p in &probes {
            let again = view(members[0], &members).owner(*p);
            assert_eq!(again, before.owner(*p));
        }
    }

    #[test]
    fn scores_are_the_same_in_every_process() {
        // Pinned: two processes that disagree on a score would both run (or both skip) a probe.
        let a = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let b = Uuid::from_u128(0xfedc_ba98_7654_3210_fedc_ba98_7654_3210);
        assert_eq!(score(a, b), score(b, a));
        // Computed independently (SplitMix64 in Python): a fixed number, not the code under test.
        assert_eq!(score(a, b), 0x6309_143e_67a4_7936);
        assert_ne!(score(a, b), score(a, Uuid::nil()));
    }

    #[test]
    fn alone_owns_everything_and_leads() {
        let v = View::alone();
        assert!(v.leader);
        assert!((0..100).all(|_| v.owns(Uuid::new_v4())));
    }
}
