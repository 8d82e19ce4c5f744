//! Triage's commands: `serve` (the server, and the database every command opens), `bench`, `seed`,
//! `demo-target`, `agent` (runs probes for a server from another location), `user` and `token` (`admin`), `probes`, `change add` (a client of a running
//! server), and the logging they all start with
//! (`telemetry`).

pub mod admin;
pub mod agent;
pub mod bench;
pub mod change;
pub mod demo;
pub mod probes;
pub mod seed;
pub mod serve;
pub mod telemetry;

/// Why a command could not run; `exit_code` tells configuration problems (2) from failures (1).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    EmbeddedPg(#[from] crate::storage::cluster::EmbeddedPgError),
    #[error("database: {0}")]
    Database(String),
    #[error("{0}")]
    Io(String),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 2,
            Self::EmbeddedPg(e) if e.is_config_error() => 2,
            _ => 1,
        }
    }
}
