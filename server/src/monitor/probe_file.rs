//! The declarative probe file (`--config triage.toml`): `[[service]]` and `[[probe]]` tables in
//! the same format as the REST API's JSON, and `[[notification_rule]]` and `[[maintenance]]`
//! tables (applied by `respond::declared`, which calls this for the services and probes). Applied at start: services are created or updated by
//! name, probes created or replaced by name and marked file-managed; file-managed probes the file
//! no longer lists are removed. `triage probes export` writes the stored set in this format.
//! The same application runs again on SIGHUP, on `POST /api/v1/probes/apply` and with
//! `triage probes apply FILE`; each says first what it changes ([`FileDiff`]).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use app::model::{EventKind, ProbeSpec, Recurrence, ServiceInput, Severity};
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
    #[serde(default, rename = "notification_rule", skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<FileRule>,
    #[serde(default, rename = "maintenance", skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<FileWindow>,
}

fn yes() -> bool {
    true
}

/// A notification rule as a file states it: services and channels by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub events: Vec<EventKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_channels: bool,
}

/// A maintenance window as a file states it: services by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWindow {
    pub title: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Recurrence>,
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

/// What applying a file changes, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FileDiff {
    pub services_added: Vec<String>,
    pub services_changed: Vec<String>,
    pub probes_added: Vec<String>,
    /// Probes whose definition differs, and probes of that name the file takes over.
    pub probes_changed: Vec<String>,
    /// File-managed probes the file no longer lists.
    pub probes_removed: Vec<String>,
    pub probes_unchanged: usize,
    pub rules_added: Vec<String>,
    pub rules_changed: Vec<String>,
    pub rules_removed: Vec<String>,
    pub maintenance_added: Vec<String>,
    pub maintenance_changed: Vec<String>,
    pub maintenance_removed: Vec<String>,
}

impl FileDiff {
    pub fn is_empty(&self) -> bool {
        self.services_added.is_empty()
            && self.services_changed.is_empty()
            && self.probes_added.is_empty()
            && self.probes_changed.is_empty()
            && self.probes_removed.is_empty()
            && self.rules_added.is_empty()
            && self.rules_changed.is_empty()
            && self.rules_removed.is_empty()
            && self.maintenance_added.is_empty()
            && self.maintenance_changed.is_empty()
            && self.maintenance_removed.is_empty()
    }

    /// `+ probe a`, `~ probe b`, `- probe c`, one per line, then a count of what stays.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut lines = |mark: char, what: &str, names: &[String]| {
            for n in names {
                out.push_str(&format!("{mark} {what} {n}\n"));
            }
        };
        lines('+', "service", &self.services_added);
        lines('~', "service", &self.services_changed);
        lines('+', "probe", &self.probes_added);
        lines('~', "probe", &self.probes_changed);
        lines('-', "probe", &self.probes_removed);
        lines('+', "notification rule", &self.rules_added);
        lines('~', "notification rule", &self.rules_changed);
        lines('-', "notification rule", &self.rules_removed);
        lines('+', "maintenance", &self.maintenance_added);
        lines('~', "maintenance", &self.maintenance_changed);
        lines('-', "maintenance", &self.maintenance_removed);
        out.push_str(&format!("{} probe(s) unchanged\n", self.probes_unchanged));
        out
    }
}

/// A probe's definition as the file states it, for comparison: no ids, the service by name.
fn comparable(spec: &ProbeSpec, service: &str) -> ProbeSpec {
    ProbeSpec { id: None, service_id: None, service: Some(service.to_string()), ..spec.clone() }
}

/// What applying `file` would change in the stored services and probes.
pub async fn diff(pool: &PgPool, file: &ProbeFile) -> Result<FileDiff, FileError> {
    let services: HashMap<String, ServiceInput> = store::list_services(pool)
        .await?
        .into_iter()
        .map(|s| {
            let input = ServiceInput {
                name: s.name.clone(),
                description: s.description,
                tags: s.tags,
                criticality: s.criticality,
            };
            (s.name, input)
        })
        .collect();
    let probes = store::list_probes(pool, None).await?;
    let by_name: HashMap<&str, &app::model::Probe> = probes.iter().map(|p| (p.spec.name.as_str(), p)).collect();
    let mut d = FileDiff::default();
    for s in &file.services {
        match services.get(&s.name) {
            None => d.services_added.push(s.name.clone()),
            Some(current) if current != s => d.services_changed.push(s.name.clone()),
            Some(_) => {}
        }
    }
    let listed: HashSet<&str> = file.probes.iter().map(|p| p.name.as_str()).collect();
    for p in &file.probes {
        let service = p.service.as_deref().unwrap_or_default();
        match by_name.get(p.name.as_str()) {
            None => d.probes_added.push(p.name.clone()),
            Some(current)
                if !current.file_managed || comparable(&current.spec, &current.service) != comparable(p, service) =>
            {
                d.probes_changed.push(p.name.clone())
            }
            Some(_) => d.probes_unchanged += 1,
        }
    }
    for p in probes.iter().filter(|p| p.file_managed && !listed.contains(p.spec.name.as_str())) {
        d.probes_removed.push(p.spec.name.clone());
    }
    Ok(d)
}

/// Applies `file` and says what changed; with `dry_run`, only says it. Without a scheduler (the
/// command line) the server schedules the changes when it next starts or re-reads its file.
pub async fn apply_with_diff(
    pool: &PgPool,
    scheduler: Option<&Scheduler>,
    file: &ProbeFile,
    dry_run: bool,
) -> Result<FileDiff, FileError> {
    check_names(file)?;
    validate(file)?;
    check_masks(pool, file).await?;
    let d = diff(pool, file).await?;
    if !dry_run {
        // Unchanged probes are not written again: rescheduling them would drop a check in flight
        // and restart their confirmation counts.
        let touched: HashSet<&str> = d.probes_added.iter().chain(&d.probes_changed).map(String::as_str).collect();
        let only = ProbeFile {
            services: file.services.clone(),
            probes: file.probes.iter().filter(|p| touched.contains(p.name.as_str())).cloned().collect(),
            ..ProbeFile::default()
        };
        apply_keeping(pool, scheduler, &only, file).await?;
    }
    Ok(d)
}

/// Every entry checked before anything is written, so a file refused for its tenth probe has
/// changed nothing (and a dry run refuses what the real run would).
fn validate(file: &ProbeFile) -> Result<(), FileError> {
    for s in &file.services {
        catalog::validate_service(s).map_err(|error| FileError::Refused {
            what: "service",
            name: s.name.clone(),
            error,
        })?;
    }
    for p in &file.probes {
        crate::monitor::check::spec::validate(p).map_err(|e| FileError::Refused {
            what: "probe",
            name: p.name.clone(),
            error: Error::invalid(e.field, e.message),
        })?;
    }
    Ok(())
}

/// An exported file shows secrets as `••••••••`: applied again, each must restore a stored value
/// (the same probe, the same target). Checked for every probe before anything is written, so a
/// mask that cannot be restored refuses the file instead of stopping it halfway.
async fn check_masks(pool: &PgPool, file: &ProbeFile) -> Result<(), FileError> {
    for p in file.probes.iter().filter(|p| p.holds_mask()) {
        let stored = store::get_probe_by_name(pool, &p.name).await?;
        let mut restored = p.clone();
        restored.unmask(stored.as_ref().map(|s| &s.spec)).map_err(|field| FileError::Refused {
            what: "probe",
            name: p.name.clone(),
            error: Error::invalid(field, "a hidden value (••••••••) cannot be restored here; type it again"),
        })?;
    }
    Ok(())
}

fn check_names(file: &ProbeFile) -> Result<(), FileError> {
    let mut names = HashSet::new();
    for p in &file.probes {
        if !names.insert(p.name.as_str()) {
            return Err(FileError::Duplicate(p.name.clone()));
        }
    }
    Ok(())
}

pub async fn apply(pool: &PgPool, scheduler: Option<&Scheduler>, file: &ProbeFile) -> Result<Applied, FileError> {
    apply_keeping(pool, scheduler, file, file).await
}

/// Writes `write`'s services and probes, then removes the file-managed probes `keep` does not
/// list.
async fn apply_keeping(
    pool: &PgPool,
    scheduler: Option<&Scheduler>,
    write: &ProbeFile,
    keep: &ProbeFile,
) -> Result<Applied, FileError> {
    let file = write;
    check_names(file)?;
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
    let keep: Vec<String> = keep.probes.iter().map(|p| p.name.clone()).collect();
    let mut tx = pool.begin().await?;
    let removed = store::delete_file_managed_except(&mut tx, &keep).await?;
    tx.commit().await?;
    if let Some(s) = scheduler {
        for id in &removed {
            s.remove(*id);
        }
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
    Ok(ProbeFile { services, probes, ..ProbeFile::default() })
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

[[notification_rule]]
name = "shop pages"
events = ["incident.opened", "probe.down"]
services = ["shop"]
min_severity = "SEV2"
channels = ["ops"]

[[maintenance]]
title = "Sunday DB upgrade"
tags = ["db"]
starts_at = "2026-12-13T01:00:00Z"
ends_at = "2026-12-13T03:00:00Z"
recurrence = { every = "week", time_zone = "Europe/Berlin" }
"#;

    #[test]
    fn the_file_format_round_trips() {
        let file = parse(SAMPLE).expect("parses");
        assert_eq!(file.services.len(), 1);
        assert_eq!(file.probes.len(), 2);
        assert_eq!(file.rules[0].min_severity, Some(Severity::Sev2));
        assert_eq!(file.maintenance[0].recurrence.as_ref().map(|r| r.time_zone.as_str()), Some("Europe/Berlin"));
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
