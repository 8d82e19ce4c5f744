//! Server integration tests, linked into one binary: the whole suite shares one build and one
//! private PostgreSQL cluster (see `common`).

mod access;
mod agents;
mod auth;
mod changes;
mod cli;
mod common;
mod compaction;
mod config_ui;
mod demo_target;
mod embedded_pg;
mod faults;
mod fuzz;
mod http;
mod import;
mod incidents;
mod notify;
mod openapi;
mod postmortems;
mod probe_http;
mod probe_kinds;
pub mod probe_tls;
mod probe_trial;
mod probes_api;
mod replicas;
mod rollups;
mod server_fns;
mod slo;
mod status_pages;
