//! Watching services, in the order a result travels: a probe's definition (`catalog`, or the
//! declarative `probe_file`) is scheduled (`schedule`) on the probes' own threads (`runtime`), one
//! check of any kind runs (`check`), its result is batched into PostgreSQL (`ingest`) and
//! announced to live pages (`hub`); `pipeline` starts and stops all of that and the rollup task.
//! Reads for the UI: chart series and range summaries (`series`), the overview's tiles and the
//! service page (`overview`), computed at most once per interval (`cached`). A definition can also
//! be run once on request, storing nothing (`trial`). Another tool's configuration (Uptime Kuma,
//! Gatus, the Prometheus blackbox exporter) can be turned into services and probes (`import`).
//! Planned work is declared as maintenance windows (`maintenance`): probes keep running, but
//! nothing opens an incident or notifies during one. Service level objectives and their error
//! budgets are counted from the rollups (`slo`); the incident engine judges their burn rates.

pub mod allowlist;
pub mod cached;
pub mod catalog;
pub mod check;
pub mod demo;
pub mod hub;
pub mod import;
pub mod ingest;
pub mod maintenance;
pub mod overview;
pub mod pipeline;
pub mod probe_file;
pub mod quorum;
pub mod replicas;
pub mod runtime;
pub mod schedule;
pub mod series;
pub mod slo;
pub mod trial;
