//! Applying an import plan: the services it names and its probes, written through the same
//! catalog functions as the API (validation, name conflicts, scheduling). What exists is never
//! overwritten: a probe whose name is taken is reported and left alone.

use std::collections::HashSet;

use app::model::{ProbeKind, ServiceInput};
use serde::Serialize;
use sqlx::PgPool;

use super::{ImportPlan, Unmapped};
use crate::error::Error;
use crate::monitor::catalog::{self, Mode};
use crate::monitor::schedule::Scheduler;
use crate::storage::catalog as store;

/// How to apply a plan.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyOptions {
    /// Only say what would be created.
    pub dry_run: bool,
    /// Create every probe paused, to review before it runs.
    pub paused: bool,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Services created (or that would be); services that exist are reused.
    pub services_created: Vec<String>,
    pub probes: Vec<ImportedProbe>,
    /// Settings of the source that were not taken over, with their place in the file.
    pub unmapped: Vec<Unmapped>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportedProbe {
    pub name: String,
    pub service: String,
    pub kind: ProbeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub enabled: bool,
    pub outcome: ImportOutcome,
    /// A push probe's token, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    Created,
    WouldCreate,
    /// A probe of this name exists; it was left as it is.
    Exists,
}

pub async fn apply(
    pool: &PgPool,
    scheduler: Option<&Scheduler>,
    plan: ImportPlan,
    opts: ApplyOptions,
) -> Result<ImportReport, Error> {
    let services: HashSet<String> = store::list_services(pool).await?.into_iter().map(|s| s.name).collect();
    let probes: HashSet<String> = store::list_probes(pool, None).await?.into_iter().map(|p| p.spec.name).collect();
    let mut report = ImportReport {
        dry_run: opts.dry_run,
        services_created: Vec::new(),
        probes: Vec::new(),
        unmapped: plan.unmapped,
    };
    // Cut to what a service accepts first, so a dry run reports what the real run writes and a
    // long tag cannot stop an import halfway.
    let inputs: Vec<ServiceInput> = plan.services.into_iter().map(|s| fit(s, &mut report.unmapped)).collect();
    for input in &inputs {
        catalog::validate_service(input)?;
    }
    for input in inputs {
        if services.contains(&input.name) {
            continue;
        }
        if !opts.dry_run {
            create_service(pool, &input).await?;
        }
        report.services_created.push(input.name);
    }
    for mut spec in plan.probes {
        if opts.paused {
            spec.enabled = false;
        }
        let mut line = ImportedProbe {
            name: spec.name.clone(),
            service: spec.service.clone().unwrap_or_default(),
            kind: spec.kind,
            url: spec.url.clone(),
            enabled: spec.enabled,
            outcome: ImportOutcome::WouldCreate,
            push_token: None,
        };
        if probes.contains(&spec.name) {
            line.outcome = ImportOutcome::Exists;
        } else if !opts.dry_run {
            let written = catalog::write_probe(pool, scheduler, &spec, Mode::Create).await?;
            line.outcome = ImportOutcome::Created;
            line.push_token = written.push_token;
        }
        report.probes.push(line);
    }
    Ok(report)
}

/// The service with only the tags a service may have (1–64 characters, at most 50) and its
/// description within 10,000 characters; what was cut is listed.
fn fit(mut s: ServiceInput, unmapped: &mut Vec<Unmapped>) -> ServiceInput {
    let before = s.tags.len();
    s.tags.retain(|t| !t.trim().is_empty() && t.len() <= 64);
    s.tags.truncate(50);
    if s.tags.len() < before {
        unmapped.push(Unmapped {
            place: format!("service \"{}\"", s.name),
            what: format!("{} tag(s) dropped: a tag has 1–64 characters, a service at most 50", before - s.tags.len()),
        });
    }
    if s.description.chars().count() > 10_000 {
        s.description = s.description.chars().take(10_000).collect();
        unmapped.push(Unmapped {
            place: format!("service \"{}\"", s.name),
            what: "description cut to 10,000 characters".into(),
        });
    }
    s
}

/// Creates the service unless another import created it meanwhile.
async fn create_service(pool: &PgPool, input: &ServiceInput) -> Result<(), Error> {
    match catalog::create_service(pool, input).await {
        Ok(_) | Err(Error::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
