//! Probing services: one HTTP check with phase timings (`http`) and its assertions
//! (`assertions`), TLS (`tls`), the network policy every check passes before it connects
//! (`policy`), the confirmation state machine that turns results into probe states (`confirm`),
//! readiness bodies parsed into components (`readiness`), metrics scrapes reduced to pool gauges
//! and counters (`scrape`), and probe definitions checked and compiled (`spec`). Other protocols:
//! TCP connects and TLS handshakes (`tcp`; resolving and connecting, shared by all, in `connect`), DNS queries (`dns`; the wire exchange and lookups through a chosen resolver in `dns_wire`), ICMP echo (`icmp`) and the gRPC
//! health service (`grpc`); `execute` runs one check of any kind.

pub mod assertions;
pub mod confirm;
mod connect;
pub mod dns;
mod dns_wire;
pub mod execute;
pub mod grpc;
pub mod http;
pub mod icmp;
pub mod policy;
pub mod readiness;
pub mod scrape;
pub mod spec;
pub mod tcp;
pub mod tls;
