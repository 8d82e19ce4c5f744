//! The first steps every check that opens a connection shares: resolve through the network policy,
//! then connect to the first address that answers, timing both into the result's phases.

use std::time::{Duration, Instant};

use app::model::{ErrorClass, Phases};
use tokio::net::TcpStream;

use super::policy::{NetworkPolicy, ResolveError, resolve_checked};

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A failed step: its class and a short explanation.
pub(crate) struct Failure(pub ErrorClass, pub String);

/// Resolves `host` (a name, or an address with or without IPv6 brackets) through the policy and
/// connects. A literal address has no DNS phase.
pub(crate) async fn connect(
    policy: &NetworkPolicy,
    host: &str,
    port: u16,
    phases: &mut Phases,
) -> Result<TcpStream, Failure> {
    let t = Instant::now();
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok();
    let addrs = resolve_checked(policy, host, port).await.map_err(|e| match e {
        ResolveError::Dns(msg) => Failure(ErrorClass::Dns, msg),
        blocked @ ResolveError::Blocked { .. } => Failure(ErrorClass::BlockedByPolicy, blocked.to_string()),
    })?;
    if !literal {
        phases.dns_us = Some(micros(t.elapsed()));
    }
    let t = Instant::now();
    let mut last_err = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                phases.connect_us = Some(micros(t.elapsed()));
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(Failure(ErrorClass::Connect, last_err.map(|e| e.kind().to_string()).unwrap_or_else(|| "no address".into())))
}
