//! Triage's server: configuration, embedded PostgreSQL, storage, health and metrics, and the
//! axum application serving the Leptos UI.

pub mod accounts;
pub mod admin_cli;
pub mod api;
pub mod auth;
pub mod bench;
pub mod cached;
pub mod catalog;
pub mod config;
pub mod db;
pub mod demo;
pub mod embedded_pg;
pub mod error;
pub mod events;
pub mod guidance;
pub mod health;
pub mod http;
pub mod incidents;
pub mod ingest;
pub mod markdown;
pub mod metrics;
pub mod overview;
pub mod postmortems;
pub mod probe;
pub mod probe_file;
pub mod probing;
pub mod readiness;
pub mod run;
pub mod scheduler;
pub mod seed;
pub mod series;
pub mod startup;
pub mod state;
pub mod stats;
pub mod storage;
pub mod telemetry;
