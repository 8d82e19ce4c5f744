//! `triage agent`: the agent role of the same binary (see [`crate::agent`]).

use tokio::sync::watch;

use super::RunError;
use crate::agent::{self, AgentError, AgentSettings};
use crate::config::AgentArgs;

pub async fn run(args: &AgentArgs) -> Result<(), RunError> {
    let settings = AgentSettings {
        server: args.server.clone(),
        token: args.token.clone(),
        location: args.location.clone(),
        spool_dir: args.spool_dir.clone(),
        spool_max: args.spool_max as usize,
        allow: args.probe_allow.clone(),
        resolver: args.probe_resolver,
        concurrency: args.probe_concurrency as usize,
    };
    let (stop, stopping) = watch::channel(false);
    let signal = crate::web::http_server::shutdown_signal();
    tokio::spawn(async move {
        signal.await;
        let _ = stop.send(true);
    });
    agent::run(settings, stopping).await.map_err(|e| match e {
        AgentError::Server(_) => RunError::Config(e.to_string()),
        other => RunError::Io(other.to_string()),
    })
}
