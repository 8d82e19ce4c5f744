//! The checklist library: the files in `checklists/` (built into the binary, so an installed
//! Triage has them) seeded into PostgreSQL at start, and admins' edits as new versions.

use app::model::{Checklist, ChecklistDef, Risk, StepKind};
use sqlx::PgPool;

use crate::error::Error;
use crate::storage::guidance as store;

/// The shipped checklists, by file name.
pub const FILES: [(&str, &str); 12] = [
    ("service-down.toml", include_str!("../../../../checklists/service-down.toml")),
    ("service-slow.toml", include_str!("../../../../checklists/service-slow.toml")),
    ("errors-spike.toml", include_str!("../../../../checklists/errors-spike.toml")),
    ("pool-exhaustion.toml", include_str!("../../../../checklists/pool-exhaustion.toml")),
    ("slow-queries.toml", include_str!("../../../../checklists/slow-queries.toml")),
    ("readiness-failing.toml", include_str!("../../../../checklists/readiness-failing.toml")),
    ("memory-climbing.toml", include_str!("../../../../checklists/memory-climbing.toml")),
    ("service-hangs.toml", include_str!("../../../../checklists/service-hangs.toml")),
    ("rollout-instability.toml", include_str!("../../../../checklists/rollout-instability.toml")),
    ("cache-problems.toml", include_str!("../../../../checklists/cache-problems.toml")),
    ("network-path.toml", include_str!("../../../../checklists/network-path.toml")),
    ("certificate-expiry.toml", include_str!("../../../../checklists/certificate-expiry.toml")),
];

/// Checks what TOML and serde cannot: ids, unique steps, a risk on every action and a warning
/// on every high-risk one. The error names the field.
pub fn validate(def: &ChecklistDef) -> Result<(), Error> {
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
    };
    if !id_ok(&def.id) {
        return Err(Error::invalid("id", "lower-case letters, digits and dashes, at most 64"));
    }
    if def.title.trim().is_empty() || def.title.len() > 200 {
        return Err(Error::invalid("title", "must be 1–200 characters"));
    }
    if def.symptoms.is_empty() {
        return Err(Error::invalid("symptoms", "name at least one symptom it answers"));
    }
    if def.steps.is_empty() {
        return Err(Error::invalid("step", "a checklist needs at least one step"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, s) in def.steps.iter().enumerate() {
        let at = |f: &str| format!("step[{i}].{f}");
        if !id_ok(&s.id) || !seen.insert(s.id.as_str()) {
            return Err(Error::invalid(at("id"), "must be a unique id (lower-case letters, digits, dashes)"));
        }
        if s.question.trim().is_empty() {
            return Err(Error::invalid(at("question"), "must not be empty"));
        }
        match (s.kind, s.risk, &s.warning) {
            (StepKind::Action, None, _) => {
                return Err(Error::invalid(at("risk"), "an action needs a risk (low or high)"));
            }
            (StepKind::Check, Some(_), _) => return Err(Error::invalid(at("risk"), "only actions have a risk")),
            (_, Some(Risk::High), None) => {
                return Err(Error::invalid(at("warning"), "a high-risk action needs the warning shown before it"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Why a shipped checklist file could not be loaded: its name and the problem.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("{name}: {message}")]
    Parse { name: &'static str, message: String },
    #[error("{name}: {error}")]
    Invalid { name: &'static str, error: Error },
    #[error("seeding {name}: {error}")]
    Store { name: &'static str, error: sqlx::Error },
}

pub fn parse(name: &'static str, text: &str) -> Result<ChecklistDef, LibraryError> {
    let def: ChecklistDef =
        toml::from_str(text).map_err(|e| LibraryError::Parse { name, message: e.message().to_string() })?;
    validate(&def).map_err(|error| LibraryError::Invalid { name, error })?;
    Ok(def)
}

/// Stores each shipped checklist as a new version when it differs from the last version seeded
/// from its file (an admin's later edit is not overwritten by an unchanged file).
pub async fn seed(pool: &PgPool) -> Result<usize, LibraryError> {
    let mut added = 0;
    for (name, text) in FILES {
        let def = parse(name, text)?;
        let json = serde_json::to_value(&def)
            .map_err(|e| LibraryError::Invalid { name, error: Error::Internal(e.to_string()) })?;
        if store::seed_version(pool, &def.id, &json).await.map_err(|error| LibraryError::Store { name, error })? {
            added += 1;
        }
    }
    Ok(added)
}

/// An admin's edit: a new version (the incidents using older ones keep them).
pub async fn save(pool: &PgPool, by: &str, def: &ChecklistDef) -> Result<Checklist, Error> {
    validate(def)?;
    let json = serde_json::to_value(def).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(store::insert_version(pool, &def.id, &json, by).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::Binding;

    #[test]
    fn every_shipped_checklist_parses_and_validates() {
        let mut ids = std::collections::HashSet::new();
        let mut answered = std::collections::HashSet::new();
        let mut bound = std::collections::HashSet::new();
        for (name, text) in FILES {
            let def = parse(name, text).unwrap_or_else(|e| panic!("{e}"));
            assert!(ids.insert(def.id.clone()), "{name}: duplicate id");
            assert_eq!(format!("{}.toml", def.id), name, "file named after its id");
            answered.extend(def.symptoms.iter().copied());
            bound.extend(def.steps.iter().filter_map(|s| s.evidence));
        }
        assert_eq!(ids.len(), FILES.len());
        for kind in app::model::SymptomKind::ALL {
            assert!(answered.contains(&kind), "no checklist answers {kind:?}");
        }
        for kind in [
            Binding::Dns,
            Binding::Icmp,
            Binding::Tcp,
            Binding::Tls,
            Binding::Grpc,
            Binding::RecentChange,
            Binding::Rollback,
        ] {
            assert!(bound.contains(&kind), "no step takes its evidence from {kind:?} checks");
        }
    }

    #[test]
    fn bad_checklists_name_the_field() {
        let (name, text) = FILES[1];
        let good = parse(name, text).unwrap_or_else(|e| panic!("{e}"));
        let field = |d: &ChecklistDef| match validate(d) {
            Err(Error::Invalid { field, .. }) => field.unwrap_or_default(),
            other => panic!("{other:?}"),
        };
        let mut d = good.clone();
        d.id = "Bad Id".into();
        assert_eq!(field(&d), "id");
        let mut d = good.clone();
        d.steps[1].id = d.steps[0].id.clone();
        assert_eq!(field(&d), "step[1].id");
        let mut d = good.clone();
        let high = d.steps.iter().position(|s| s.risk == Some(Risk::High)).unwrap_or(0);
        d.steps[high].warning = None;
        assert_eq!(field(&d), format!("step[{high}].warning"));
        let mut d = good;
        d.steps[0].risk = Some(Risk::Low);
        assert_eq!(field(&d), "step[0].risk");
    }
}
