//! `triage probes …`: the declarative probe file from the command line.

use std::path::PathBuf;

use super::RunError;
use super::serve::Database;
use crate::monitor::probe_file::{export, to_toml};

/// `triage probes export [--output FILE]`.
pub async fn export_command(cli: &crate::config::Cli, output: Option<PathBuf>) -> Result<(), RunError> {
    let database = Database::open_or_attach(&cli.database).await?;
    let file = export(&database.pool).await.map_err(|e| RunError::Database(e.to_string()));
    database.close().await;
    let text = to_toml(&file?).map_err(|e| RunError::Io(e.to_string()))?;
    match output {
        Some(path) => std::fs::write(&path, text).map_err(|e| RunError::Io(format!("{}: {e}", path.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}
