//! The HTTP server: the router and accept loop (`http_server`), the middleware every request
//! passes (`middleware`), the access table and the one middleware enforcing it (`access`), the
//! shared state (`state`), what each connection carries (`connection`: client address,
//! idle watchdog, connection cap), health endpoints (`health`) and the cached database check behind
//! `/readyz` (`self_check`), Triage's own metrics (`metrics`), security headers and the CSP (`security`), the REST API (`api`), public status pages and badges
//! (`status_page`), and the backend the UI's server functions call (`server_fns`).

pub mod access;
pub mod api;
pub mod assets;
pub mod connection;
pub mod error;
pub mod health;
pub mod http_server;
pub mod metrics;
pub mod middleware;
pub mod replicas;
pub mod security;
pub mod self_check;
pub mod server_fns;
pub mod state;
pub mod status_page;
