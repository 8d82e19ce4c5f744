//! What the accept loop keeps per connection: who the client is (behind trusted proxies only),
//! whether a request is running (a connection with none is closed after the header-read timeout,
//! for HTTP/1 and h2c alike), and how many connections may be open at once.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::monitor::check::policy::Cidr;

/// The address a request came from: the peer, or, when the peer is a proxy the admin trusts,
/// the nearest untrusted hop in `X-Forwarded-For`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Walks `X-Forwarded-For` from the right (the hop our proxy added) past every trusted proxy.
/// A header from an untrusted peer is ignored, since anyone can write one; a malformed hop
/// ends the walk at the last trusted address rather than believing what lies beyond it.
pub fn client_addr(peer: IpAddr, headers: &http::HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// A hop as proxies write it: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443` or `1.2.3.4:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Counts the requests running on one connection, so a watchdog can close it once it has sat
/// with none for too long (h2c has no header-read timeout of its own in hyper).
#[derive(Clone)]
pub struct Activity(Arc<watch::Sender<usize>>);

/// Held while a request runs, up to the end of its response body.
pub struct Running(Arc<watch::Sender<usize>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }
}

impl Activity {
    pub fn start(&self) -> Running {
        self.0.send_modify(|n| *n += 1);
        Running(Arc::clone(&self.0))
    }

    /// Resolves once no request has run on the connection for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        let mut running = self.0.subscribe();
        loop {
            // Wait for the connection to have nothing running, then give the next request `limit`.
            if running.wait_for(|n| *n == 0).await.is_err() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(limit) => return,
                busy = running.wait_for(|n| *n > 0) => if busy.is_err() { return },
            }
        }
    }
}

/// Makes `response` hold `running` until its body has been sent or dropped: a streamed answer
/// (a live update stream) keeps its connection busy.
pub fn hold_until_sent(response: http::Response<Body>, running: Running) -> http::Response<Body> {
    response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _busy = &running;
            frame
        }))
    })
}

/// At most `max` connections at once; past it new ones wait in the listen backlog, and one log
/// line says so (and one more when there is room again).
pub struct ConnectionCap {
    permits: Arc<Semaphore>,
    max: usize,
    full: AtomicBool,
}

impl ConnectionCap {
    pub fn new(max: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(max)), max, full: AtomicBool::new(false) }
    }

    /// A permit for one more connection, waiting for one to close when at the cap.
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            if self.full.swap(false, Ordering::Relaxed) {
                tracing::info!(max = self.max, "below the connection cap again; accepting connections");
            }
            return Some(permit);
        }
        if !self.full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                max = self.max,
                "connection cap reached: {} connections open (--max-connections); new ones wait until one closes",
                self.max
            );
        }
        Arc::clone(&self.permits).acquire_owned().await.ok()
    }

    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", http::HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().expect("cidr"), "::1".parse().expect("cidr")];
        // An untrusted peer cannot choose its address.
        assert_eq!(client_addr(ip("203.0.113.9"), &headers(&["198.51.100.1"]), &trusted), ip("203.0.113.9"));
        // Behind one trusted proxy: the hop it added.
        assert_eq!(client_addr(ip("10.1.1.1"), &headers(&["198.51.100.1"]), &trusted), ip("198.51.100.1"));
        // A client-written first hop is skipped past: the rightmost untrusted hop wins.
        assert_eq!(
            client_addr(ip("10.1.1.1"), &headers(&["1.1.1.1, 198.51.100.7, 10.2.2.2"]), &trusted),
            ip("198.51.100.7")
        );
        // Several header lines read as one list; ports and brackets are accepted.
        assert_eq!(client_addr(ip("::1"), &headers(&["1.1.1.1", "[2001:db8::5]:443"]), &trusted), ip("2001:db8::5"));
        assert_eq!(client_addr(ip("::1"), &headers(&["198.51.100.3:8080"]), &trusted), ip("198.51.100.3"));
        // Garbage stops the walk at the last trusted hop instead of trusting what lies beyond.
        assert_eq!(client_addr(ip("10.1.1.1"), &headers(&["1.1.1.1, junk"]), &trusted), ip("10.1.1.1"));
        // No header: the proxy itself.
        assert_eq!(client_addr(ip("10.1.1.1"), &headers(&[]), &trusted), ip("10.1.1.1"));
        // Nothing trusted: the header means nothing.
        assert_eq!(client_addr(ip("10.1.1.1"), &headers(&["198.51.100.1"]), &[]), ip("10.1.1.1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_while_nothing_runs() {
        let activity = Activity::default();
        let running = activity.start();
        let idle = activity.idle_for(Duration::from_secs(5));
        tokio::pin!(idle);
        // A request running for a minute keeps the connection.
        assert!(tokio::time::timeout(Duration::from_secs(60), &mut idle).await.is_err());
        drop(running);
        let started = tokio::time::Instant::now();
        idle.await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_cap_admits_again_when_a_connection_closes() {
        let cap = Arc::new(ConnectionCap::new(2));
        let a = cap.admit().await.expect("first");
        let _b = cap.admit().await.expect("second");
        assert_eq!(cap.open(), 2);
        let waiting = tokio::spawn({
            let cap = Arc::clone(&cap);
            async move { cap.admit().await.is_some() }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the third waits at the cap");
        drop(a);
        assert!(waiting.await.expect("task"), "admitted once one closed");
    }
}
