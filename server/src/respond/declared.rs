//! The probe file as a whole: its services and probes (applied by `monitor::probe_file`), then the
//! notification rules and maintenance windows it declares. Rules name services and channels,
//! windows name services, all by name. Everything is checked before anything is written, so a
//! file refused for one bad rule has changed nothing. Rules and windows the file wrote and no
//! longer lists are removed; those made in the browser or the API are left alone (unless the
//! file declares one of the same name, which it then takes over).

use std::collections::HashMap;
use std::path::Path;

use app::model::{MaintenanceSpec, RuleSpec};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Error;
use crate::monitor::probe_file::{self, FileDiff, FileError, FileRule, FileWindow, ProbeFile};
use crate::monitor::schedule::Scheduler;
use crate::storage::{catalog, maintenance as windows_store, notify as rules_store};

/// Names → ids. Services the file itself creates have no id before it is applied: a placeholder
/// stands in while checking.
struct Names {
    services: HashMap<String, Uuid>,
    channels: HashMap<String, Uuid>,
}

impl Names {
    async fn load(pool: &PgPool, file: &ProbeFile) -> Result<Self, FileError> {
        let mut services: HashMap<String, Uuid> =
            catalog::list_services(pool).await?.into_iter().map(|s| (s.name, s.id)).collect();
        let declared =
            file.services.iter().map(|s| s.name.clone()).chain(file.probes.iter().filter_map(|p| p.service.clone()));
        for name in declared {
            services.entry(name).or_insert(Uuid::nil());
        }
        let mut conn = pool.acquire().await?;
        let channels =
            rules_store::channel_names(&mut conn).await?.into_iter().map(|(id, n)| (n.to_lowercase(), id)).collect();
        Ok(Self { services, channels })
    }

    fn service(&self, what: &'static str, owner: &str, name: &str) -> Result<Uuid, FileError> {
        self.services.get(name).copied().ok_or_else(|| FileError::Refused {
            what,
            name: owner.to_string(),
            error: Error::invalid("services", format!("no service named '{name}'")),
        })
    }
}

fn rule_spec(r: &FileRule, names: &Names) -> Result<RuleSpec, FileError> {
    let refused = |error: Error| FileError::Refused { what: "notification_rule", name: r.name.clone(), error };
    let services =
        r.services.iter().map(|s| names.service("notification_rule", &r.name, s)).collect::<Result<_, _>>()?;
    let channels = r
        .channels
        .iter()
        .map(|c| {
            names.channels.get(&c.to_lowercase()).copied().ok_or_else(|| {
                refused(Error::invalid(
                    "channels",
                    format!("no channel named '{c}' (channels are made in the browser or the API)"),
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let mut spec = RuleSpec {
        name: r.name.clone(),
        enabled: r.enabled,
        events: r.events.clone(),
        services,
        tags: r.tags.clone(),
        min_severity: r.min_severity,
        channels,
        all_channels: r.all_channels,
    };
    super::notify::check_rule(&mut spec).map_err(refused)?;
    Ok(spec)
}

fn window_spec(w: &FileWindow, names: &Names) -> Result<MaintenanceSpec, FileError> {
    let services = w.services.iter().map(|s| names.service("maintenance", &w.title, s)).collect::<Result<_, _>>()?;
    let mut spec = MaintenanceSpec {
        title: w.title.clone(),
        services,
        tags: w.tags.clone(),
        starts_at: w.starts_at,
        ends_at: w.ends_at,
        recurrence: w.recurrence.clone(),
    };
    crate::monitor::maintenance::validate(&mut spec).map_err(|error| FileError::Refused {
        what: "maintenance",
        name: w.title.clone(),
        error,
    })?;
    Ok(spec)
}

fn check_unique<'a>(what: &'static str, names: impl Iterator<Item = &'a str>) -> Result<(), FileError> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n.to_lowercase()) {
            return Err(FileError::Refused {
                what,
                name: n.to_string(),
                error: Error::invalid("name", "listed twice"),
            });
        }
    }
    Ok(())
}

/// Applies the whole file and says what changed; with `dry_run`, only says it.
pub async fn apply_with_diff(
    pool: &PgPool,
    scheduler: Option<&Scheduler>,
    file: &ProbeFile,
    dry_run: bool,
) -> Result<FileDiff, FileError> {
    check_unique("notification_rule", file.rules.iter().map(|r| r.name.as_str()))?;
    check_unique("maintenance", file.maintenance.iter().map(|w| w.title.as_str()))?;
    // Checked before the probes are written: a bad rule refuses the file untouched.
    let names = Names::load(pool, file).await?;
    for r in &file.rules {
        rule_spec(r, &names)?;
    }
    for w in &file.maintenance {
        window_spec(w, &names)?;
    }
    let mut diff = probe_file::apply_with_diff(pool, scheduler, file, dry_run).await?;
    // Now the file's services exist (or, in a dry run, still stand in as placeholders).
    let names = Names::load(pool, file).await?;
    let rules = file.rules.iter().map(|r| rule_spec(r, &names)).collect::<Result<Vec<_>, _>>()?;
    let windows = file.maintenance.iter().map(|w| window_spec(w, &names)).collect::<Result<Vec<_>, _>>()?;

    let mut tx = pool.begin().await?;
    let stored_rules = rules_store::rules_with_origin(&mut tx).await?;
    for spec in &rules {
        let existing = stored_rules.iter().find(|(_, s, _)| s.name.eq_ignore_ascii_case(&spec.name));
        match existing {
            None => diff.rules_added.push(spec.name.clone()),
            Some((_, s, managed)) if s != spec || !managed => diff.rules_changed.push(spec.name.clone()),
            Some(_) => continue,
        }
        if !dry_run {
            rules_store::write_file_rule(&mut tx, existing.map(|(id, _, _)| *id), spec).await?;
        }
    }
    for (id, s, managed) in &stored_rules {
        if *managed && !rules.iter().any(|r| r.name.eq_ignore_ascii_case(&s.name)) {
            diff.rules_removed.push(s.name.clone());
            if !dry_run {
                rules_store::delete_rule(&mut tx, *id).await?;
            }
        }
    }
    let stored_windows = windows_store::windows(&mut tx, windows_store::WindowFilter::All).await?;
    for spec in &windows {
        let existing = stored_windows.iter().find(|w| w.title.eq_ignore_ascii_case(&spec.title));
        match existing {
            None => diff.maintenance_added.push(spec.title.clone()),
            Some(w) if w.spec() != *spec || !w.file_managed => diff.maintenance_changed.push(spec.title.clone()),
            Some(_) => continue,
        }
        if !dry_run {
            windows_store::write_file_window(&mut tx, existing.map(|w| w.window_id), spec).await?;
        }
    }
    for w in &stored_windows {
        if w.file_managed && !windows.iter().any(|s| s.title.eq_ignore_ascii_case(&w.title)) {
            diff.maintenance_removed.push(w.title.clone());
            if !dry_run {
                windows_store::delete(&mut tx, w.window_id).await?;
            }
        }
    }
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(diff)
}

/// Re-reads the server's file and applies it to the running scheduler (SIGHUP, the API); the
/// caller records the change in the audit trail.
pub async fn reload(pool: &PgPool, scheduler: &Scheduler, path: &Path, dry_run: bool) -> Result<FileDiff, FileError> {
    let file = probe_file::load(path)?;
    apply_with_diff(pool, Some(scheduler), &file, dry_run).await
}

/// Everything the file can declare, as stored: services, probes, rules and windows.
pub async fn export(pool: &PgPool) -> Result<ProbeFile, sqlx::Error> {
    let mut file = probe_file::export(pool).await?;
    let services: HashMap<Uuid, String> =
        catalog::list_services(pool).await?.into_iter().map(|s| (s.id, s.name)).collect();
    let mut conn = pool.acquire().await?;
    let channels: HashMap<Uuid, String> = rules_store::channel_names(&mut conn).await?.into_iter().collect();
    let name = |id: &Uuid, map: &HashMap<Uuid, String>| map.get(id).cloned();
    for (_, r, _) in rules_store::rules_with_origin(&mut conn).await? {
        file.rules.push(FileRule {
            name: r.name,
            enabled: r.enabled,
            events: r.events,
            services: r.services.iter().filter_map(|s| name(s, &services)).collect(),
            tags: r.tags,
            min_severity: r.min_severity,
            channels: r.channels.iter().filter_map(|c| name(c, &channels)).collect(),
            all_channels: r.all_channels,
        });
    }
    for w in windows_store::windows(&mut conn, windows_store::WindowFilter::All).await? {
        file.maintenance.push(FileWindow {
            title: w.title,
            services: w.services.iter().filter_map(|s| name(s, &services)).collect(),
            tags: w.tags,
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            recurrence: w.recurrence.map(|r| r.0),
        });
    }
    Ok(file)
}
