//! ICMP echo: N requests to one address (policy-checked), loss and round-trip times. surge-ping
//! opens an unprivileged datagram socket where the system allows it (`net.ipv4.ping_group_range`)
//! and a raw one otherwise (root or CAP_NET_RAW); where neither is allowed the check says so.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use app::model::{EchoCount, ErrorClass};
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};

use super::confirm::Outcome;
use super::connect::micros;
use super::http::CheckResult;
use super::policy::{NetworkPolicy, ResolveError, resolve_checked};

#[derive(Clone, Debug)]
pub struct IcmpCheck {
    pub host: String,
    pub packets: u32,
    /// For the whole check; each echo waits at most its share.
    pub timeout: Duration,
    pub degraded_after: Option<Duration>,
}

/// What N echoes measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Echoes {
    pub sent: u32,
    pub received: u32,
    pub rtts: Vec<Duration>,
}

impl Echoes {
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 { 0.0 } else { f64::from(self.sent - self.received) * 100.0 / f64::from(self.sent) }
    }

    fn summary(&self) -> String {
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        let loss = format!("{}/{} received, {:.0} % loss", self.received, self.sent, self.loss_percent());
        match (self.rtts.iter().min(), self.rtts.iter().max()) {
            (Some(min), Some(max)) => {
                let avg = self.rtts.iter().map(ms).sum::<f64>() / self.rtts.len() as f64;
                format!("{loss}; rtt min/avg/max {:.2}/{avg:.2}/{:.2} ms", ms(min), ms(max))
            }
            _ => loss,
        }
    }
}

pub async fn run(check: &IcmpCheck, policy: &NetworkPolicy) -> CheckResult {
    let mut result = CheckResult::pending(uuid::Uuid::new_v4().simple().to_string());
    let started = Instant::now();
    let t = Instant::now();
    let literal = check.host.parse::<IpAddr>().is_ok();
    let addr = match tokio::time::timeout(check.timeout, resolve_checked(policy, &check.host, 0)).await {
        Err(_) => {
            result.error = Some(ErrorClass::Timeout);
            result.detail = Some(format!("no address within {} ms", check.timeout.as_millis()));
            return result;
        }
        Ok(Err(ResolveError::Dns(msg))) => {
            result.error = Some(ErrorClass::Dns);
            result.detail = Some(msg);
            return result;
        }
        Ok(Err(blocked @ ResolveError::Blocked { .. })) => {
            result.error = Some(ErrorClass::BlockedByPolicy);
            result.detail = Some(blocked.to_string().replace(":0 ", " "));
            return result;
        }
        Ok(Ok(addrs)) => match addrs.first() {
            Some(a) => a.ip(),
            None => {
                result.error = Some(ErrorClass::Dns);
                result.detail = Some("no addresses".into());
                return result;
            }
        },
    };
    if !literal {
        result.phases.dns_us = Some(micros(t.elapsed()));
    }
    let left = check.timeout.saturating_sub(started.elapsed());
    let echoes = match echo(addr, check.packets, left).await {
        Ok(e) => e,
        Err(why) => {
            result.error = Some(ErrorClass::Connect);
            result.detail = Some(why);
            result.phases.total_us = micros(started.elapsed());
            return result;
        }
    };
    result.phases.total_us = micros(started.elapsed());
    result.echo = Some(EchoCount { sent: echoes.sent, received: echoes.received });
    // The round trip stands where a connection's latency would: charts and percentiles use it.
    if !echoes.rtts.is_empty() {
        let avg = echoes.rtts.iter().sum::<Duration>() / echoes.rtts.len() as u32;
        result.phases.connect_us = Some(micros(avg));
    }
    // Each echo reply: an 8-byte ICMP header and the 56-byte payload.
    result.response_bytes = u64::from(echoes.received) * 64;
    result.detail = Some(echoes.summary());
    if echoes.received == 0 {
        result.error = Some(ErrorClass::Timeout);
        return result;
    }
    result.outcome = Outcome::Up;
    let slow = check.degraded_after.is_some_and(|limit| echoes.rtts.iter().max().is_some_and(|m| *m > limit));
    if echoes.received < echoes.sent || slow {
        // Some loss, or slow echoes: the host answers, but not well.
        result.outcome = Outcome::Degraded;
    }
    result
}

/// Sends `packets` echoes one after another, each waiting at most its share of `budget`.
pub async fn echo(addr: IpAddr, packets: u32, budget: Duration) -> Result<Echoes, String> {
    let config = match addr {
        IpAddr::V4(_) => Config::default(),
        IpAddr::V6(_) => Config::builder().kind(ICMP::V6).build(),
    };
    let client = Client::new(&config).map_err(|e| {
        format!(
            "cannot open an ICMP socket ({}): allow unprivileged ping (sysctl net.ipv4.ping_group_range) \
             or give Triage CAP_NET_RAW",
            e.kind()
        )
    })?;
    // The echoes go out together, each waiting for the whole budget: a slow host (a 400 ms round
    // trip under a 1 s timeout) is slow, not lossy, whatever the packet count.
    let payload = [0u8; 56];
    let mut pings = Vec::new();
    for seq in 0..packets {
        let mut pinger = client.pinger(addr, PingIdentifier(fastrand::u16(..))).await;
        pinger.timeout(budget);
        pings.push(async move { pinger.ping(PingSequence(u16::try_from(seq).unwrap_or(u16::MAX)), &payload).await });
    }
    let mut echoes = Echoes::default();
    let mut failure = None;
    for answer in futures::future::join_all(pings).await {
        echoes.sent += 1;
        match answer {
            Ok((_, rtt)) => {
                echoes.received += 1;
                echoes.rtts.push(rtt);
            }
            Err(SurgeError::Timeout { .. }) => {}
            // An echo the local stack would not send (a full queue: ENOBUFS) is lost like one
            // without an answer, as long as another one got through.
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    match failure {
        Some(e) if echoes.received == 0 => Err(format!("echo failed: {e}")),
        _ => Ok(echoes),
    }
}
