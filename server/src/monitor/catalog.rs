//! Creating, changing and removing services and probes: validation, the database, and the
//! scheduler kept in step. The REST API, the declarative file and Triage's watch of itself all go
//! through here, so they obey the same rules.

use app::model::{BulkAction, BulkOutcome, Probe, ProbeKind, ProbeSpec, Selection, Service, ServiceInput};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Error;
use crate::monitor::check::spec;
use crate::monitor::schedule::Scheduler;
use crate::storage::catalog::{self as store, ProbeWrite};

/// A new push token: 256 random bits, hex-encoded. Only its SHA-256 is stored.
pub fn new_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn validate_service(input: &ServiceInput) -> Result<(), Error> {
    let name = input.name.trim();
    if name.is_empty() || name.len() > 200 || name != input.name {
        return Err(Error::invalid("name", "must be 1–200 characters without surrounding spaces"));
    }
    if input.description.len() > 10_000 {
        return Err(Error::invalid("description", "must be at most 10,000 characters"));
    }
    if input.tags.len() > 50 || input.tags.iter().any(|t| t.trim().is_empty() || t.len() > 64) {
        return Err(Error::invalid("tags", "at most 50 tags of 1–64 characters"));
    }
    Ok(())
}

pub async fn create_service(pool: &PgPool, input: &ServiceInput) -> Result<Service, Error> {
    validate_service(input)?;
    let id = Uuid::new_v4();
    store::insert_service(pool, id, input).await?;
    store::get_service(pool, id).await?.ok_or(Error::NotFound("service"))
}

pub async fn update_service(pool: &PgPool, id: Uuid, input: &ServiceInput) -> Result<Service, Error> {
    validate_service(input)?;
    if !store::update_service(pool, id, input).await? {
        return Err(Error::NotFound("service"));
    }
    store::get_service(pool, id).await?.ok_or(Error::NotFound("service"))
}

pub async fn delete_service(pool: &PgPool, scheduler: &Scheduler, id: Uuid) -> Result<(), Error> {
    let probes = store::delete_service(pool, id).await?.ok_or(Error::NotFound("service"))?;
    for p in probes {
        scheduler.remove(p);
    }
    Ok(())
}

/// How a probe is being written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// POST: a new probe (an `id` in the body must not exist yet).
    Create,
    /// PUT: replaces the probe with this id.
    Replace(Uuid),
    /// The declarative file: matched by name, created or replaced, marked file-managed.
    File,
    /// Matched by name, created or replaced, not file-managed (Triage's watch of itself).
    Named,
}

/// The stored probe and, when one was issued, its push token (shown once).
pub struct Written {
    pub probe: Probe,
    pub push_token: Option<String>,
}

/// Validates and stores `spec`; with a scheduler (a running server) it runs at once, without one
/// (a command-line import) the server schedules it when it next starts.
pub async fn write_probe(
    pool: &PgPool,
    scheduler: Option<&Scheduler>,
    spec: &ProbeSpec,
    mode: Mode,
) -> Result<Written, Error> {
    let mut tx = pool.begin().await?;
    let service_id = match (spec.service_id, &spec.service) {
        (Some(id), _) => {
            if !store::service_exists(&mut tx, id).await? {
                return Err(Error::invalid("service_id", "no service has this id"));
            }
            id
        }
        (None, Some(name)) => store::service_id_by_name_or_create(&mut tx, name.trim()).await?,
        (None, None) => return Err(Error::invalid("service", "name the service or give its id")),
    };
    let (id, existing) = match mode {
        Mode::Create => {
            let id = spec.id.unwrap_or_else(Uuid::new_v4);
            (id, None)
        }
        Mode::Replace(id) => {
            if spec.id.is_some_and(|body_id| body_id != id) {
                return Err(Error::invalid("id", "differs from the id in the path"));
            }
            let current = store::get_probe(pool, id).await?.ok_or(Error::NotFound("probe"))?;
            (id, Some(current))
        }
        Mode::File | Mode::Named => match store::probe_id_by_name(&mut tx, &spec.name).await? {
            Some(id) => (id, store::get_probe(pool, id).await?),
            None => (Uuid::new_v4(), None),
        },
    };
    // A masked value (what pages, the API and exports show) means "keep the stored one", for the
    // same target only; anything left masked is refused rather than stored literally.
    let mut spec = spec.clone();
    spec.unmask(existing.as_ref().map(|p| &p.spec))
        .map_err(|field| Error::invalid(field, "a hidden value (••••••••) cannot be reused here; type it again"))?;
    let spec = &spec;
    spec::validate(spec).map_err(|e| Error::invalid(e.field, e.message))?;
    if let Some(current) = &existing
        && mode != Mode::File
        && current.file_managed
    {
        return Err(Error::Conflict {
            field: None,
            message: "this probe is managed by the configuration file; change it there".into(),
        });
    }
    // A push probe gets a token when it becomes one; an existing token is kept.
    let needs_token = spec.kind == ProbeKind::Push && existing.as_ref().is_none_or(|p| p.spec.kind != ProbeKind::Push);
    let push_token = if needs_token { Some(new_token()?) } else { None };
    let token_write = match (&push_token, spec.kind) {
        (Some(t), _) => Some(Some(token_hash(t))),
        (None, ProbeKind::Push) => None,
        (None, _) => Some(None),
    };
    store::upsert_probe(
        &mut tx,
        &ProbeWrite { id, service_id, spec, file_managed: mode == Mode::File, push_token_sha256: token_write },
    )
    .await
    .map_err(|e| match Error::from(e) {
        Error::Conflict { .. } => Error::Conflict {
            field: Some("name".into()),
            message: format!("a probe named '{}' already exists", spec.name),
        },
        other => other,
    })?;
    tx.commit().await?;
    let probe = store::get_probe(pool, id).await?.ok_or(Error::NotFound("probe"))?;
    if let Some(scheduler) = scheduler {
        scheduler.upsert(&probe).map_err(|e| Error::invalid(e.field, e.message))?;
    }
    Ok(Written { probe, push_token })
}

pub async fn delete_probe(pool: &PgPool, scheduler: &Scheduler, id: Uuid) -> Result<(), Error> {
    if let Some(p) = store::get_probe(pool, id).await?
        && p.file_managed
    {
        return Err(Error::Conflict {
            field: None,
            message: "this probe is managed by the configuration file; remove it there".into(),
        });
    }
    if !store::delete_probe(pool, id).await? {
        return Err(Error::NotFound("probe"));
    }
    scheduler.remove(id);
    Ok(())
}

/// Schedules every stored probe (at start-up).
pub async fn schedule_all(pool: &PgPool, scheduler: &Scheduler) -> Result<usize, sqlx::Error> {
    let probes = store::list_probes(pool, None).await?;
    let mut n = 0;
    for p in &probes {
        match scheduler.upsert(p) {
            Ok(()) => n += 1,
            Err(e) => tracing::error!(probe = %p.spec.name, error = %e, "stored probe is invalid; not scheduled"),
        }
    }
    Ok(n)
}

/// Fills in the secrets a form sent back masked, from the probe it edits or clones (`from`).
pub async fn unmask(pool: &PgPool, spec: &mut ProbeSpec, from: Option<Uuid>) -> Result<(), Error> {
    let stored = match from {
        Some(id) => Some(store::get_probe(pool, id).await?.ok_or(Error::NotFound("probe"))?.spec),
        None => None,
    };
    spec.unmask(stored.as_ref())
        .map_err(|field| Error::invalid(field, "a hidden value (••••••••) cannot be reused here; type it again"))
}

/// The probes a bulk action covers: those chosen, every probe of the chosen services, and every
/// probe of the services carrying the tag.
pub async fn select(pool: &PgPool, selection: &Selection) -> Result<Vec<Probe>, Error> {
    let services = store::list_services(pool).await?;
    let tagged: Vec<Uuid> = match &selection.tag {
        Some(tag) => services.iter().filter(|s| s.tags.iter().any(|t| t == tag)).map(|s| s.id).collect(),
        None => Vec::new(),
    };
    let probes = store::list_probes(pool, None).await?;
    Ok(probes
        .into_iter()
        .filter(|p| {
            selection.probes.contains(&p.id)
                || selection.services.contains(&p.service_id)
                || tagged.contains(&p.service_id)
        })
        .collect())
}

/// Pauses, resumes or deletes the selected probes. File-managed probes are left as they are
/// (the file decides about them) and named in the answer.
/// A bulk action as far as it went: what it changed, and the error that stopped it, if one did
/// (the changes before it stand, and the caller records them either way).
pub struct BulkRun {
    pub outcome: BulkOutcome,
    pub changed_names: Vec<String>,
    pub stopped: Option<(String, Error)>,
}

pub async fn bulk(
    pool: &PgPool,
    scheduler: &Scheduler,
    selection: &Selection,
    action: BulkAction,
) -> Result<BulkRun, Error> {
    let mut run = BulkRun { outcome: BulkOutcome::default(), changed_names: Vec::new(), stopped: None };
    for p in select(pool, selection).await? {
        if p.file_managed {
            run.outcome.skipped.push(p.spec.name);
            continue;
        }
        let name = p.spec.name.clone();
        let done = match action {
            BulkAction::Delete => delete_probe(pool, scheduler, p.id).await,
            BulkAction::Pause | BulkAction::Resume => {
                let enabled = action == BulkAction::Resume;
                if p.spec.enabled == enabled {
                    continue;
                }
                let spec = ProbeSpec { enabled, service_id: Some(p.service_id), service: None, ..p.spec };
                write_probe(pool, Some(scheduler), &spec, Mode::Replace(p.id)).await.map(|_| ())
            }
        };
        if let Err(e) = done {
            run.stopped = Some((name, e));
            break;
        }
        run.outcome.changed += 1;
        run.changed_names.push(name);
    }
    Ok(run)
}
