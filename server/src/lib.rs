//! Triage's server: configuration, embedded PostgreSQL, storage, health and metrics, and the
//! axum application serving the Leptos UI.

pub mod config;
pub mod db;
pub mod demo;
pub mod embedded_pg;
pub mod error;
pub mod health;
pub mod http;
pub mod metrics;
pub mod probe;
pub mod readiness;
pub mod run;
pub mod startup;
pub mod state;
pub mod stats;
pub mod storage;
pub mod telemetry;
