//! `triage probes …`: the declarative probe file from the command line; `triage import …`: another
//! tool's configuration turned into services and probes.

use std::path::{Path, PathBuf};

use super::RunError;
use super::serve::Database;
use crate::config::{ImportArgs, ImportSource};
use crate::monitor::import::write::{ApplyOptions, ImportOutcome, ImportReport, apply};
use crate::monitor::import::{ImportPlan, blackbox, gatus, kuma};
use crate::monitor::probe_file::{self, to_toml};
use crate::respond::declared::export;

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

/// `triage probes apply FILE [--dry-run]`: the difference, then (unless dry) the change.
pub async fn apply_command(cli: &crate::config::Cli, file: &Path, dry_run: bool) -> Result<(), RunError> {
    let parsed = probe_file::load(file).map_err(|e| RunError::Config(e.to_string()))?;
    let database = Database::open_or_attach(&cli.database).await?;
    let diff = crate::respond::declared::apply_with_diff(&database.pool, None, &parsed, dry_run).await;
    let audited = match (&diff, dry_run) {
        (Ok(d), false) => {
            let detail = serde_json::to_value(d).unwrap_or_default();
            audit(&database.pool, "probes.apply", &file.display().to_string(), detail).await
        }
        _ => Ok(()),
    };
    database.close().await;
    let diff = diff.map_err(|e| RunError::Config(format!("{}: {e}", file.display())))?;
    audited?;
    print!("{}", diff.render());
    if dry_run {
        println!("dry run: nothing changed");
    }
    Ok(())
}

/// Reads the source files into a plan; a file that cannot be read or parsed is a one-line error
/// (exit code 2) and nothing is written.
pub fn plan_from_files(source: ImportSource, files: &[PathBuf]) -> Result<ImportPlan, RunError> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| RunError::Config(format!("{}: {e}", p.display())));
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bad = |e: crate::monitor::import::ImportError| RunError::Config(e.message);
    match (source, files) {
        (ImportSource::Kuma, [file]) => kuma::plan(&name(file), &read(file)?).map_err(bad),
        (ImportSource::Gatus, [file]) => gatus::plan(&name(file), &read(file)?).map_err(bad),
        (ImportSource::Blackbox, [prometheus, modules]) => {
            blackbox::plan(&name(prometheus), &read(prometheus)?, &name(modules), &read(modules)?).map_err(bad)
        }
        (ImportSource::Blackbox, _) => {
            Err(RunError::Config("blackbox needs two files: prometheus.yml, then the blackbox.yml modules file".into()))
        }
        _ => Err(RunError::Config("kuma and gatus take one file".into())),
    }
}

/// `triage import kuma|gatus|blackbox FILE… [--dry-run] [--paused]`.
pub async fn import_command(cli: &crate::config::Cli, args: &ImportArgs) -> Result<(), RunError> {
    let plan = plan_from_files(args.source, &args.files)?;
    let database = Database::open_or_attach(&cli.database).await?;
    let opts = ApplyOptions { dry_run: args.dry_run, paused: args.paused };
    // No scheduler here: a server running on the same database schedules the new probes when it
    // next starts; the API and the browser upload schedule them at once.
    let report = apply(&database.pool, None, plan, opts).await;
    let audited = match (&report, args.dry_run) {
        (Ok(r), false) => {
            let created: Vec<&str> =
                r.probes.iter().filter(|p| p.outcome == ImportOutcome::Created).map(|p| p.name.as_str()).collect();
            let detail =
                serde_json::json!({ "services": r.services_created, "probes": created, "paused": args.paused });
            audit(&database.pool, "probes.import", &format!("{:?}", args.source).to_lowercase(), detail).await
        }
        _ => Ok(()),
    };
    database.close().await;
    let report = report.map_err(|e| RunError::Database(e.to_string()))?;
    audited?;
    print!("{}", render(&report));
    Ok(())
}

/// Command-line writes are in the audit trail too, as the command line's own actor.
async fn audit(pool: &sqlx::PgPool, action: &str, target: &str, detail: serde_json::Value) -> Result<(), RunError> {
    let entry = crate::storage::auth::AuditEntry {
        actor: "cli".into(),
        action: action.into(),
        target: target.into(),
        detail,
        remote_addr: None,
        request_id: None,
    };
    crate::storage::auth::insert_audit(pool, &entry)
        .await
        .map_err(|e| RunError::Database(format!("recording in the audit trail: {e}")))
}

/// The report as an admin reads it in a terminal.
pub fn render(r: &ImportReport) -> String {
    let mut out = String::new();
    let verb = if r.dry_run { "would create" } else { "created" };
    for s in &r.services_created {
        out.push_str(&format!("service {verb}: {s}\n"));
    }
    for p in &r.probes {
        let what = match p.outcome {
            ImportOutcome::Created => "created",
            ImportOutcome::WouldCreate => "would create",
            ImportOutcome::Exists => "exists, left as it is",
        };
        let paused = if p.enabled { "" } else { " (paused)" };
        let url = p.url.as_deref().unwrap_or("(push)");
        out.push_str(&format!("probe {what}: {} [{}] {url} in {}{paused}\n", p.name, p.kind.as_str(), p.service));
        if let Some(token) = &p.push_token {
            out.push_str(&format!("  push token (shown once): {token}\n"));
        }
    }
    if !r.unmapped.is_empty() {
        out.push_str(&format!("not imported ({}):\n", r.unmapped.len()));
        for u in &r.unmapped {
            out.push_str(&format!("  {}: {}\n", u.place, u.what));
        }
    }
    out
}
