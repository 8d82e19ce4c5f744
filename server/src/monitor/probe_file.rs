//! The declarative probe file (`--config triage.toml`): `[[service]]` and `[[probe]]` tables in
//! the same format as the REST API's JSON. Applied at start: services are created or updated by
//! name, probes created or replaced by name and marked file-managed; file-managed probes the file
//! no longer lists are removed. `triage probes export` writes the stored set in this format.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use app::model::{ProbeSpec, ServiceInput};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::error::Error;
use crate::monitor::catalog::{self, Mode};
use crate::monitor::schedule::Scheduler;
use crate::storage::catalog as store;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeFile {
    #[serde(default, rename = "service", skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceInput>,
    #[serde(default, rename = "probe", skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeSpec>,
}

/// Why a probe file could not be read or applied; each one line, naming the file or the entry.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: cannot read: {kind}", path.display())]
    Read { path: PathBuf, kind: std::io::ErrorKind },
    /// Not valid TOML, or not a probe file; `line` when the parser knows it.
    #[error("{}{}{message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default(), line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Syntax { path: Option<PathBuf>, line: Option<usize>, message: String },
    #[error("probe '{0}' is listed twice")]
    Duplicate(String),
    /// An entry the catalog refused (`what` is "service" or "probe").
    #[error("{what} '{name}': {}", describe(error))]
    Refused { what: &'static str, name: String, error: Error },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Write(#[from] toml::ser::Error),
}

/// Reads and parses the file; the error is one line naming the file, the line and the problem.
pub fn load(path: &Path) -> Result<ProbeFile, FileError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| FileError::Read { path: path.to_path_buf(), kind: e.kind() })?;
    parse(&text).map_err(|e| match e {
        FileError::Syntax { line, message, .. } => FileError::Syntax { path: Some(path.to_path_buf()), line, message },
        other => other,
    })
}

pub fn parse(text: &str) -> Result<ProbeFile, FileError> {
    toml::from_str(text).map_err(|e| FileError::Syntax {
        path: None,
        line: e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1)),
        message: e.message().split_whitespace().collect::<Vec<_>>().join(" "),
    })
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub services: usize,
    pub probes: usize,
    pub removed: usize,
}

fn describe(e: &Error) -> String {
    match e {
        Error::Invalid { field: Some(f), message } | Error::Conflict { field: Some(f), message } => {
            format!("{f}: {message}")
        }
        other => other.to_string(),
    }
}

pub async fn apply(pool: &PgPool, scheduler: &Scheduler, file: &ProbeFile) -> Result<Applied, FileError> {
    let mut names = HashSet::new();
    for p in &file.probes {
        if !names.insert(p.name.as_str()) {
            return Err(FileError::Duplicate(p.name.clone()));
        }
    }
    let existing = store::list_services(pool).await?;
    for s in &file.services {
        let result = match existing.iter().find(|e| e.name == s.name) {
            Some(current) => catalog::update_service(pool, current.id, s).await.map(|_| ()),
            None => catalog::create_service(pool, s).await.map(|_| ()),
        };
        result.map_err(|error| FileError::Refused { what: "service", name: s.name.clone(), error })?;
    }
    for p in &file.probes {
        catalog::write_probe(pool, scheduler, p, Mode::File).await.map_err(|error| FileError::Refused {
            what: "probe",
            name: p.name.clone(),
            error,
        })?;
    }
    let keep: Vec<String> = file.probes.iter().map(|p| p.name.clone()).collect();
    let mut tx = pool.begin().await?;
    let removed = store::delete_file_managed_except(&mut tx, &keep).await?;
    tx.commit().await?;
    for id in &removed {
        scheduler.remove(*id);
    }
    Ok(Applied { services: file.services.len(), probes: file.probes.len(), removed: removed.len() })
}

/// Every stored service and probe, as a file that `--config` accepts.
pub async fn export(pool: &PgPool) -> Result<ProbeFile, sqlx::Error> {
    let services = store::list_services(pool)
        .await?
        .into_iter()
        .map(|s| ServiceInput { name: s.name, description: s.description, tags: s.tags, criticality: s.criticality })
        .collect();
    let probes = store::list_probes(pool, None)
        .await?
        .into_iter()
        .map(|p| ProbeSpec { id: None, service_id: None, service: Some(p.service), ..p.spec })
        .collect();
    Ok(ProbeFile { services, probes })
}

pub fn to_toml(file: &ProbeFile) -> Result<String, FileError> {
    Ok(toml::to_string(file)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[service]]
name = "shop"
criticality = "high"
tags = ["team-checkout"]

[[probe]]
name = "shop-ready"
service = "shop"
kind = "readiness"
url = "http://shop.internal/readyz"
interval_secs = 10
timeout_ms = 2000

[probe.assert]
status = [200]
json_path = [{ path = "$.status", op = "eq", value = "healthy" }]

[[probe]]
name = "shop-pool"
service = "shop"
kind = "metrics"
url = "http://shop.internal/metrics"

[probe.pool_mapping]
in_use = ["shop_db_busy"]
"#;

    #[test]
    fn the_file_format_round_trips() {
        let file = parse(SAMPLE).expect("parses");
        assert_eq!(file.services.len(), 1);
        assert_eq!(file.probes.len(), 2);
        assert_eq!(file.probes[0].assertions.json_path[0].path, "$.status");
        let again = parse(&to_toml(&file).expect("serialises")).expect("re-parses");
        assert_eq!(again, file);
    }

    #[test]
    fn errors_are_one_line_with_the_line_number() {
        let err =
            parse("[[probe]]\nname = \"a\"\nkind = \"http\"\nintervall_secs = 5\n").expect_err("typo").to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.starts_with("line "), "{err}");
        assert!(err.contains("intervall_secs"), "{err}");
    }
}
