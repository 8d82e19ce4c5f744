//! `triage demo-target`: the demo target ([`crate::demo`]) on its own, until SIGINT/SIGTERM.

use std::net::SocketAddr;

use crate::cli::RunError;
use crate::config::DemoTargetArgs;
use crate::demo::DemoTarget;

/// `triage demo-target`: runs until SIGINT/SIGTERM.
pub async fn run(args: DemoTargetArgs) -> Result<(), RunError> {
    let control_addr =
        args.control_addr.unwrap_or_else(|| SocketAddr::new(args.addr.ip(), args.addr.port().saturating_add(1)));
    let target = DemoTarget::start(args.addr, control_addr)
        .await
        .map_err(|e| RunError::Config(format!("demo target cannot listen on {} / {control_addr}: {e}", args.addr)))?;
    let stop_signal = crate::web::http_server::shutdown_signal();
    tracing::info!(
        url = %format!("http://{}", target.addr),
        control = %format!("http://{}/control/{{healthy|slow|errors|pool|unready|down}}", target.control_addr),
        "demo target \"shop\" is up"
    );
    stop_signal.await;
    Ok(())
}
