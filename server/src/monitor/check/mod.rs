//! Probing services: one HTTP check with phase timings (`http`) and its assertions
//! (`assertions`), TLS (`tls`), the network policy every check passes before it connects
//! (`policy`), the confirmation state machine that turns results into probe states (`confirm`),
//! readiness bodies parsed into components (`readiness`), metrics scrapes reduced to pool gauges
//! and counters (`scrape`), and probe definitions checked and compiled (`spec`).

pub mod assertions;
pub mod confirm;
pub mod execute;
pub mod http;
pub mod policy;
pub mod readiness;
pub mod scrape;
pub mod spec;
pub mod tls;
