//! Probing services: one HTTP check with phase timings (`http`), the network policy every check
//! passes before it connects (`policy`), and the confirmation state machine that turns results
//! into probe states (`state`); readiness bodies parsed into components (`readiness`); metrics
//! scrapes reduced to pool gauges and counters (`scrape`).

pub mod http;
pub mod policy;
pub mod readiness;
pub mod scrape;
pub mod state;
