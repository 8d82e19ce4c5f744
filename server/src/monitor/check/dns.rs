//! DNS checks: one query (A, AAAA, CNAME, MX, TXT, NS, SOA, SRV) to a chosen resolver or the
//! system's, over UDP, again over TCP when the answer comes back truncated. The result says the
//! response code, the answers and the query time; expected answers and the expected code decide.
//!
//! hickory encodes and decodes the messages; the sockets are Triage's own, so a chosen resolver's
//! address goes through the network policy like any target. The system's resolvers (from
//! `/etc/resolv.conf`, or the one `--probe-resolver` names) are the machine's own configuration,
//! not a target, so they are used as is. The wire exchange itself is in `dns_wire`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use app::model::ErrorClass;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::confirm::Outcome;
use super::connect::{Failure, micros};
use super::dns_wire;
use super::http::CheckResult;
use super::policy::{NetworkPolicy, ResolveError, resolve_checked};

/// The response codes a probe may expect.
pub const RCODES: [&str; 6] = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
    Soa,
    Srv,
}

impl RecordKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "A" => Self::A,
            "AAAA" => Self::Aaaa,
            "CNAME" => Self::Cname,
            "MX" => Self::Mx,
            "TXT" => Self::Txt,
            "NS" => Self::Ns,
            "SOA" => Self::Soa,
            "SRV" => Self::Srv,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Mx => "MX",
            Self::Txt => "TXT",
            Self::Ns => "NS",
            Self::Soa => "SOA",
            Self::Srv => "SRV",
        }
    }

    fn record_type(self) -> RecordType {
        match self {
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Cname => RecordType::CNAME,
            Self::Mx => RecordType::MX,
            Self::Txt => RecordType::TXT,
            Self::Ns => RecordType::NS,
            Self::Soa => RecordType::SOA,
            Self::Srv => RecordType::SRV,
        }
    }
}

#[derive(Clone, Debug)]
pub struct DnsCheck {
    /// `None`: the system's resolvers.
    pub resolver: Option<(String, u16)>,
    pub name: String,
    pub kind: RecordKind,
    /// Each must be among the answers (compared without a trailing dot, case-insensitively).
    pub answers: Vec<String>,
    pub rcode: String,
    pub timeout: Duration,
    pub degraded_after: Option<Duration>,
}

pub async fn run(check: &DnsCheck, policy: &NetworkPolicy) -> CheckResult {
    let mut result = CheckResult::pending(uuid::Uuid::new_v4().simple().to_string());
    let started = Instant::now();
    let attempt = tokio::time::timeout(check.timeout, ask(check, policy)).await;
    result.phases.total_us = micros(started.elapsed());
    let answer = match attempt {
        Err(_) => {
            result.error = Some(ErrorClass::Timeout);
            result.detail = Some(format!("no DNS answer within {} ms", check.timeout.as_millis()));
            return result;
        }
        Ok(Err(Failure(class, detail))) => {
            result.error = Some(class);
            result.detail = Some(detail);
            return result;
        }
        Ok(Ok(answer)) => answer,
    };
    result.phases.dns_us = Some(answer.query_us);
    result.response_bytes = answer.bytes as u64;
    let rcode = mnemonic(answer.message.metadata.response_code);
    let wanted = record_type_of(check);
    let found: Vec<String> =
        answer.message.answers.iter().filter(|r| r.record_type() == wanted).map(|r| r.data.to_string()).collect();
    let shown = if found.is_empty() { "no answers".to_string() } else { found.join(", ") };
    if rcode != check.rcode {
        result.error = Some(ErrorClass::Dns);
        result.detail = Some(format!("{rcode} (expected {}): {shown}", check.rcode));
        return result;
    }
    let normal = |s: &str| s.trim().trim_end_matches('.').trim_matches('"').to_ascii_lowercase();
    let have: Vec<String> = found.iter().map(|a| normal(a)).collect();
    // MX and SRV records carry a priority (and weight, port) before the name: an expected answer
    // may give the name alone. Other types must match whole.
    let by_target = matches!(check.kind, RecordKind::Mx | RecordKind::Srv);
    let found_in = |want: &str| {
        let want = normal(want);
        have.iter().any(|h| *h == want || (by_target && h.ends_with(&format!(" {want}"))))
    };
    let missing: Vec<&String> = check.answers.iter().filter(|want| !found_in(want)).collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|m| m.as_str()).collect();
        result.error = Some(ErrorClass::Assertion);
        result.detail = Some(format!("{rcode}: {shown}; missing {}", names.join(", ")));
        return result;
    }
    if check.rcode == "NOERROR" && check.answers.is_empty() && found.is_empty() {
        result.error = Some(ErrorClass::Dns);
        result.detail = Some(format!("NOERROR but no {} record", wanted));
        return result;
    }
    result.outcome = Outcome::Up;
    result.detail = Some(format!("{rcode}: {shown}"));
    if let Some(limit) = check.degraded_after
        && started.elapsed() > limit
    {
        result.outcome = Outcome::Degraded;
        result.detail = Some(format!("slower than {} ms; {rcode}: {shown}", limit.as_millis()));
    }
    result
}

/// The response code as `dig` and the RFCs write it.
fn failure(e: dns_wire::WireError) -> Failure {
    Failure(e.0, e.1)
}

fn mnemonic(code: ResponseCode) -> String {
    let n = u16::from(code);
    match RCODES.get(usize::from(n)) {
        Some(name) => (*name).to_string(),
        None => format!("RCODE{n}"),
    }
}

fn record_type_of(check: &DnsCheck) -> RecordType {
    check.kind.record_type()
}

struct Answer {
    message: Message,
    query_us: u64,
    bytes: usize,
}

/// The resolvers to ask, in order.
async fn resolvers(check: &DnsCheck, policy: &NetworkPolicy) -> Result<Vec<SocketAddr>, Failure> {
    match &check.resolver {
        Some((host, port)) => resolve_checked(policy, host, *port).await.map_err(|e| match e {
            ResolveError::Dns(msg) => Failure(ErrorClass::Dns, format!("the resolver's name: {msg}")),
            blocked @ ResolveError::Blocked { .. } => Failure(ErrorClass::BlockedByPolicy, blocked.to_string()),
        }),
        None if policy.resolver().is_some() => Ok(policy.resolver().into_iter().collect()),
        None => {
            let text = tokio::fs::read("/etc/resolv.conf")
                .await
                .map_err(|e| Failure(ErrorClass::Dns, format!("no system resolver: /etc/resolv.conf: {}", e.kind())))?;
            let conf = resolv_conf::Config::parse(&text)
                .map_err(|e| Failure(ErrorClass::Dns, format!("/etc/resolv.conf: {e}")))?;
            let found: Vec<SocketAddr> =
                conf.nameservers.iter().map(|ns| SocketAddr::new(IpAddr::from(ns.clone()), 53)).collect();
            if found.is_empty() {
                return Err(Failure(ErrorClass::Dns, "no nameserver in /etc/resolv.conf".into()));
            }
            Ok(found)
        }
    }
}

async fn ask(check: &DnsCheck, policy: &NetworkPolicy) -> Result<Answer, Failure> {
    let name = Name::from_ascii(&check.name)
        .map_err(|e| Failure(ErrorClass::Protocol, format!("'{}' is not a DNS name: {e}", check.name)))?;
    let id = fastrand::u16(..);
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name, record_type_of(check)));
    let bytes =
        query.to_vec().map_err(|e| Failure(ErrorClass::Protocol, format!("could not encode the query: {e}")))?;
    let mut last = Failure(ErrorClass::Dns, "no resolver answered".into());
    for server in resolvers(check, policy).await? {
        let t = Instant::now();
        match dns_wire::over_udp(server, &bytes, id).await.map_err(failure) {
            Ok((message, n)) if !message.metadata.truncation => {
                return Ok(Answer { message, query_us: micros(t.elapsed()), bytes: n });
            }
            // Too big for a datagram: the same question over TCP.
            Ok(_) => match dns_wire::over_tcp(server, &bytes, id).await.map_err(failure) {
                Ok((message, n)) => return Ok(Answer { message, query_us: micros(t.elapsed()), bytes: n }),
                Err(f) => last = f,
            },
            Err(f) => last = f,
        }
    }
    Err(last)
}
