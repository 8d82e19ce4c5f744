//! Triage's server. The folders read as what happens to a probe result and an incident, from the
//! bottom up; a module only imports from the ones listed before it (`.ci/modcycles` checks that
//! no two top-level modules import each other, directly or round a loop).
//!
//! - `error`: the error every layer below the web answers with.
//! - `storage`: PostgreSQL: the embedded cluster, the pool, migrations and every SQL statement.
//! - `monitor`: watching services: checks, their schedule, the result writer, the event hub,
//!   rollups, the catalog of services and probes, and the reads behind charts and the overview.
//! - `agent`: `triage agent`, which runs a location's probes with the `monitor` check engine
//!   for a server far away, and spools and delivers their results.
//! - `access`: who is asking: users, sessions, tokens, passwords, and the actor of the audit trail.
//! - `respond`: incident response: incidents and their rooms, guidance, postmortems.
//! - `web`: the HTTP server: routes and their access table, middleware, health, REST API, the
//!   backend of the UI's server functions.
//! - `config` and `cli`: the command line: options, and each command (`serve`, `bench`, …).

pub mod access;
pub mod agent;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod monitor;
pub mod respond;
pub mod storage;
pub mod web;
