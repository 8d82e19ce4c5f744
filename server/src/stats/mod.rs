//! Statistics for probe results: mergeable latency histograms behind every percentile Triage shows.

pub mod histogram;
