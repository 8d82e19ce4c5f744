//! Statistics over results: the mergeable latency histogram and the rollup bucket built on it.

pub mod histogram;
pub mod rollup;
