//! Where probes may connect. An attacker who can create a probe would aim it at the cloud metadata
//! service, at loopback admin ports or into the private network; so every address is checked
//! after resolution, immediately before connecting, and refused unless an admin allowlisted it.
//!
//! Checked on resolved IPs, never on host names: a harmless-looking name may resolve to 10.0.0.5,
//! and `0x7f.1`, `2130706433` and `[::ffff:127.0.0.1]` all mean loopback.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use app::model::PolicyRefusal;

/// Why an address was refused (the result's error class is `blocked_by_policy`; this says which rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyReason {
    CloudMetadata,
    Loopback,
    Private,
    CarrierGradeNat,
    LinkLocal,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
    UniqueLocal,
    Translated,
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CloudMetadata => "cloud metadata address",
            Self::Loopback => "loopback address",
            Self::Private => "private (RFC 1918) address",
            Self::CarrierGradeNat => "carrier-grade NAT address",
            Self::LinkLocal => "link-local address",
            Self::Unspecified => "unspecified address",
            Self::Multicast => "multicast address",
            Self::Broadcast => "broadcast address",
            Self::Reserved => "reserved address",
            Self::UniqueLocal => "unique-local IPv6 address",
            Self::Translated => "IPv6 form embedding a denied IPv4 address",
        })
    }
}

/// An address block such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    fn is_single_host(&self) -> bool {
        match self.addr {
            IpAddr::V4(_) => self.prefix == 32,
            IpAddr::V6(_) => self.prefix == 128,
        }
    }
}

/// Why a string is not an address block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadCidr(pub String);

impl FromStr for Cidr {
    type Err = BadCidr;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr =
            addr.trim().parse().map_err(|_| BadCidr(format!("'{s}' is not an IP address or CIDR block")))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| BadCidr(format!("bad prefix in '{s}'")))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

/// The policy: deny the dangerous ranges unless allowlisted.
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    allow: Vec<Cidr>,
    /// Triage's own listening sockets, so it can probe itself.
    own: Vec<SocketAddr>,
    /// Sockets of targets Triage runs itself (the built-in demo), added and removed while it
    /// runs. Exact sockets, like `own`: hosting the demo opens nothing else on loopback. Shared
    /// by the policy's clones (a gRPC connector holds one).
    hosted: std::sync::Arc<std::sync::RwLock<Vec<SocketAddr>>>,
    /// Entries admins keep in the database (edited in the browser), besides `allow`.
    stored: std::sync::Arc<std::sync::RwLock<Vec<Cidr>>>,
    /// `--probe-resolver`: names are looked up here instead of through the system.
    resolver: Option<SocketAddr>,
}

impl NetworkPolicy {
    pub fn new(allow: Vec<Cidr>, own: Vec<SocketAddr>) -> Self {
        Self { allow, own, hosted: Default::default(), stored: Default::default(), resolver: None }
    }

    /// Looks names up with this DNS server rather than the system's resolver.
    pub fn with_resolver(mut self, resolver: Option<SocketAddr>) -> Self {
        self.resolver = resolver;
        self
    }

    pub fn resolver(&self) -> Option<SocketAddr> {
        self.resolver
    }

    /// The entries of the command line (`--probe-allow`).
    pub fn configured(&self) -> &[Cidr] {
        &self.allow
    }

    /// Replaces the entries kept in the database.
    pub fn set_stored(&self, entries: Vec<Cidr>) {
        if let Ok(mut stored) = self.stored.write() {
            *stored = entries;
        }
    }

    fn allows(&self, ip: IpAddr, single_host_only: bool) -> bool {
        let fits = |c: &Cidr| c.contains(ip) && (!single_host_only || c.is_single_host());
        self.allow.iter().any(fits) || self.stored.read().is_ok_and(|s| s.iter().any(fits))
    }

    /// Lets probes reach these sockets of a target Triage itself runs.
    pub fn host(&self, sockets: &[SocketAddr]) {
        if let Ok(mut hosted) = self.hosted.write() {
            hosted.extend_from_slice(sockets);
        }
    }

    /// Takes back [`NetworkPolicy::host`].
    pub fn unhost(&self, sockets: &[SocketAddr]) {
        if let Ok(mut hosted) = self.hosted.write() {
            hosted.retain(|s| !sockets.contains(s));
        }
    }

    fn is_own(&self, ip: IpAddr, port: u16) -> bool {
        let same = |s: &SocketAddr| canonical(s.ip()) == ip && s.port() == port;
        self.own.iter().any(same) || self.hosted.read().is_ok_and(|h| h.iter().any(same))
    }

    /// May a probe connect to `addr`? Metadata addresses pass only with an exact single-host entry:
    /// allowing a whole range (say 169.254.0.0/16) must not open the metadata service by accident.
    pub fn check(&self, addr: SocketAddr) -> Result<(), DenyReason> {
        let ip = canonical(addr.ip());
        let Err(reason) = classify(ip) else { return Ok(()) };
        if self.is_own(ip, addr.port()) {
            return Ok(());
        }
        if self.allows(ip, reason == DenyReason::CloudMetadata) { Ok(()) } else { Err(reason) }
    }
}

/// IPv4 addresses written in IPv6 form (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
/// translated `::ffff:0:a.b.c.d`) are judged as the IPv4 address they are.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            // IPv4-compatible `::a.b.c.d` (but not `::` or `::1`) and IPv4-translated
            // `::ffff:0:a.b.c.d` (SIIT): both end in the IPv4 address they stand for.
            let compatible = s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1);
            let translated = s[..6] == [0, 0, 0, 0, 0xffff, 0];
            if compatible || translated {
                return IpAddr::V4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
            }
            ip
        }
        IpAddr::V4(_) => ip,
    }
}

/// `Ok` for ordinary public unicast; otherwise the first rule the address falls under.
pub fn classify(ip: IpAddr) -> Result<(), DenyReason> {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Result<(), DenyReason> {
    let o = ip.octets();
    let reason = if ip == Ipv4Addr::new(169, 254, 169, 254)
        || ip == Ipv4Addr::new(100, 100, 100, 200)
        || ip == Ipv4Addr::new(168, 63, 129, 16)
    {
        // AWS/GCP/Azure/OpenStack metadata; Alibaba Cloud metadata; Azure's WireServer (host
        // agent, platform DNS and certificates: public-looking, but the host's own service).
        Some(DenyReason::CloudMetadata)
    } else if ip.is_unspecified() || o[0] == 0 {
        Some(DenyReason::Unspecified)
    } else if ip.is_loopback() {
        Some(DenyReason::Loopback)
    } else if ip.is_private() {
        Some(DenyReason::Private)
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some(DenyReason::CarrierGradeNat)
    } else if ip.is_link_local() {
        Some(DenyReason::LinkLocal)
    } else if ip.is_broadcast() {
        Some(DenyReason::Broadcast)
    } else if ip.is_multicast() {
        Some(DenyReason::Multicast)
    } else if o[0] >= 240 || (o[0] == 192 && o[1] == 0 && o[2] == 0) || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        // Class E, IETF protocol assignments, benchmarking.
        Some(DenyReason::Reserved)
    } else {
        None
    };
    reason.map_or(Ok(()), Err)
}

fn classify_v6(ip: Ipv6Addr) -> Result<(), DenyReason> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Err(DenyReason::CloudMetadata);
    }
    if ip.is_unspecified() {
        return Err(DenyReason::Unspecified);
    }
    if ip.is_loopback() {
        return Err(DenyReason::Loopback);
    }
    if ip.is_multicast() {
        return Err(DenyReason::Multicast);
    }
    if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        return Err(DenyReason::LinkLocal);
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Err(DenyReason::UniqueLocal);
    }
    // NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and 6to4 (2002::/16) carry an IPv4 address that the
    // network may translate to: judge the embedded address.
    let embedded = if s[0] == 0x64 && s[1] == 0xff9b {
        Some(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8))
    } else {
        None
    };
    if let Some(v4) = embedded
        && classify_v4(v4).is_err()
    {
        return Err(DenyReason::Translated);
    }
    // Teredo (2001::/32), documentation (2001:db8::/32), discard (100::/64).
    if (s[0] == 0x2001 && (s[1] == 0 || s[1] == 0xdb8)) || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) {
        return Err(DenyReason::Reserved);
    }
    Ok(())
}

/// Resolves `host:port` and returns the addresses the policy allows, or the reason the first one
/// was refused when none is allowed. Nothing is connected here.
pub async fn resolve_checked(policy: &NetworkPolicy, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        // Every connection goes to an address checked here, never to a second lookup: a name
        // that answers a public address, then a private one (DNS rebinding), gains nothing.
        Err(_) => match policy.resolver {
            Some(server) => super::dns_wire::lookup(server, host)
                .await
                .map_err(ResolveError::Dns)?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            None => {
                tokio::net::lookup_host((host, port)).await.map_err(|e| ResolveError::Dns(e.to_string()))?.collect()
            }
        },
    };
    if addrs.is_empty() {
        return Err(ResolveError::Dns("no addresses".into()));
    }
    // All or nothing: if any address of a name is denied, refuse the name. Otherwise a name with
    // one public and one private record would reach the private one on a retry or fallback.
    for addr in &addrs {
        policy.check(*addr).map_err(|reason| ResolveError::Blocked { addr: *addr, reason })?;
    }
    Ok(addrs)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("DNS lookup failed: {0}")]
    Dns(String),
    #[error("blocked by policy: {addr} is a {reason}; an admin can allow {} under Configure → Network allowlist (or --probe-allow)", allow_entry(*addr))]
    Blocked { addr: SocketAddr, reason: DenyReason },
}

/// The smallest allowlist entry that lets `addr` through: exactly its host (the only kind of
/// entry that opens a cloud metadata address).
fn allow_entry(addr: SocketAddr) -> String {
    match canonical(addr.ip()) {
        ip @ IpAddr::V4(_) => format!("{ip}/32"),
        ip @ IpAddr::V6(_) => format!("{ip}/128"),
    }
}

/// What an admin is told when the policy refuses `addr`: the rule, and how to allow it.
pub fn refusal(addr: SocketAddr, reason: DenyReason) -> PolicyRefusal {
    let entry = allow_entry(addr);
    PolicyRefusal {
        address: addr.to_string(),
        rule: reason.to_string(),
        allow: format!(
            "add {entry} to the network allowlist (Configure → Network allowlist, or the --probe-allow option) if probing it is intended"
        ),
    }
}

/// Whether the policy refuses `host:port`, a name being resolved first (within `timeout`). A name
/// that does not resolve is not a refusal: the check itself reports the DNS failure.
pub async fn refused(policy: &NetworkPolicy, host: &str, port: u16, timeout: Duration) -> Option<PolicyRefusal> {
    match tokio::time::timeout(timeout, resolve_checked(policy, host, port)).await {
        Ok(Err(ResolveError::Blocked { addr, reason })) => Some(refusal(addr, reason)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(url: &str) -> (String, u16) {
        let u = url::Url::parse(url).expect("url parses");
        (u.host_str().expect("host").to_string(), u.port_or_known_default().expect("port"))
    }

    /// URLs an attacker would try; each must be refused by the default policy. The URL parser
    /// normalises the exotic IPv4 spellings (decimal, hex, octal, short forms) the way browsers
    /// and resolvers do, so they all reach the policy as the address they really mean.
    const HOSTILE: &[&str] = &[
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/",
        "http://127.0.0.1/",
        "http://127.1/",
        "http://127.0.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7f.0x0.0x0.0x1/",
        "http://0177.0.0.1/",
        "http://017700000001/",
        "http://127.000.000.001/",
        "http://0x7f.1/",
        "http://[::1]/",
        "http://[0:0:0:0:0:0:0:1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://2852039166/",
        "http://0xa9fea9fe/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://10.0.0.1/",
        "http://10.255.255.255/",
        "http://172.16.0.1/",
        "http://172.31.255.254/",
        "http://192.168.0.1/",
        "http://192.168.1.1:8080/",
        "http://0xc0a80001/",
        "http://3232235521/",
        "http://100.64.0.1/",
        "http://100.127.255.254/",
        "http://169.254.0.1/",
        "http://0.0.0.0/",
        "http://0/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://240.0.0.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[ff02::1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:7f00:1::]/",
        "http://[2002:c0a8:101::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:192.168.0.1]/",
        "https://127.0.0.1:443/",
        "http://168.63.129.16/machine?comp=goalstate",
        "http://2822734096/",
        "http://[::ffff:0:7f00:1]/",
        "http://[::ffff:0:127.0.0.1]/",
        "http://[::ffff:0:a9fe:a9fe]/",
        "http://[::ffff:0:a00:1]/",
        "http://[64:ff9b::10.0.0.1]/",
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://[2002:a00:1::1]/",
    ];

    #[tokio::test]
    async fn hostile_addresses_are_refused() {
        let policy = NetworkPolicy::default();
        assert!(HOSTILE.len() >= 40);
        for url in HOSTILE {
            let (host, port) = host_of(url);
            match resolve_checked(&policy, &host, port).await {
                Err(ResolveError::Blocked { .. }) => {}
                other => panic!("{url} (host {host}) must be blocked, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn names_that_resolve_to_loopback_are_refused() {
        let policy = NetworkPolicy::default();
        for host in ["localhost", "LOCALHOST", "localhost."] {
            match resolve_checked(&policy, host, 80).await {
                Err(ResolveError::Blocked { reason: DenyReason::Loopback, .. }) => {}
                Err(ResolveError::Dns(_)) => {} // a machine without a localhost entry: still no connection
                other => panic!("{host} must be blocked, got {other:?}"),
            }
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        let policy = NetworkPolicy::default();
        for ip in ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:80e::200e"] {
            let addr = SocketAddr::new(ip.parse().expect("ip"), 443);
            assert_eq!(policy.check(addr), Ok(()), "{ip}");
        }
    }

    #[test]
    fn allowlisted_ranges_open_only_what_they_name() {
        let policy = NetworkPolicy::new(
            vec!["10.1.0.0/16".parse().expect("cidr"), "169.254.0.0/16".parse().expect("cidr")],
            vec![],
        );
        let at = |s: &str| SocketAddr::new(s.parse().expect("ip"), 80);
        assert_eq!(policy.check(at("10.1.2.3")), Ok(()));
        assert_eq!(policy.check(at("::ffff:10.1.2.3")), Ok(()), "mapped form of an allowed address");
        assert_eq!(policy.check(at("10.2.0.1")), Err(DenyReason::Private));
        assert_eq!(policy.check(at("169.254.1.1")), Ok(()));
        assert_eq!(
            policy.check(at("169.254.169.254")),
            Err(DenyReason::CloudMetadata),
            "a range never opens the metadata service"
        );
        let exact = NetworkPolicy::new(vec!["169.254.169.254/32".parse().expect("cidr")], vec![]);
        assert_eq!(exact.check(at("169.254.169.254")), Ok(()));
    }

    #[test]
    fn triage_may_probe_its_own_listener_and_nothing_else_on_loopback() {
        let own: SocketAddr = "127.0.0.1:3000".parse().expect("addr");
        let policy = NetworkPolicy::new(vec![], vec![own]);
        assert_eq!(policy.check(own), Ok(()));
        assert_eq!(policy.check("127.0.0.1:5432".parse().expect("addr")), Err(DenyReason::Loopback));
    }

    #[test]
    fn cidr_parsing_rejects_nonsense() {
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("banana".parse::<Cidr>().is_err());
        assert!("fd00::/8".parse::<Cidr>().is_ok());
        assert!("192.168.1.7".parse::<Cidr>().is_ok());
    }

    #[tokio::test]
    async fn a_refused_target_never_sees_a_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let policy = NetworkPolicy::default();
        for host in ["127.0.0.1", "127.1", "2130706433", "[::ffff:127.0.0.1]", "localhost"] {
            let (h, p) = host_of(&format!("http://{host}:{port}/"));
            let result = resolve_checked(&policy, &h, p).await;
            assert!(result.is_err(), "{host} refused");
        }
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("no connection may reach the listener: {other:?}"),
        }
    }
}
