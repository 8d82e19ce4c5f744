//! The probes' network allowlist as admins edit it in the browser: entries kept in the database
//! next to the command line's `--probe-allow`, applied to the running policy at once (and at
//! start-up). The caller records each change in the audit trail.

use app::model::AllowEntry;
use sqlx::PgPool;

use crate::error::Error;
use crate::monitor::check::policy::{Cidr, NetworkPolicy};
use crate::storage::catalog as store;

/// Changes one at a time, each write followed by its reload: two admins' changes must not leave
/// the running policy with a list the database no longer has.
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Reads the stored entries into the policy. An entry that no longer parses is skipped and
/// logged, not fatal: the rest still apply.
pub async fn load(pool: &PgPool, policy: &NetworkPolicy) -> Result<(), Error> {
    let mut entries = Vec::new();
    for e in store::list_allow(pool).await? {
        match e.cidr.parse::<Cidr>() {
            Ok(c) => entries.push(c),
            Err(err) => tracing::warn!(cidr = %e.cidr, error = %err.0, "stored allowlist entry ignored"),
        }
    }
    policy.set_stored(entries);
    Ok(())
}

pub async fn list(pool: &PgPool, policy: &NetworkPolicy) -> Result<Vec<AllowEntry>, Error> {
    let mut out: Vec<AllowEntry> = policy
        .configured()
        .iter()
        .map(|c| AllowEntry {
            cidr: c.to_string(),
            note: String::new(),
            created_by: None,
            created_at: None,
            from_command_line: true,
        })
        .collect();
    out.extend(store::list_allow(pool).await?.into_iter().map(|e| AllowEntry {
        cidr: e.cidr,
        note: e.note,
        created_by: Some(e.created_by),
        created_at: Some(e.created_at),
        from_command_line: false,
    }));
    Ok(out)
}

/// Adds `cidr` (an address or a range, e.g. `10.0.0.0/8`, `127.0.0.1`); answers the normalised
/// entry.
pub async fn add(pool: &PgPool, policy: &NetworkPolicy, cidr: &str, note: &str, by: &str) -> Result<String, Error> {
    let parsed: Cidr =
        cidr.trim().parse().map_err(|e: crate::monitor::check::policy::BadCidr| Error::invalid("cidr", e.0))?;
    if note.chars().count() > 200 {
        return Err(Error::invalid("note", "at most 200 characters"));
    }
    let normal = parsed.to_string();
    let _one_at_a_time = CHANGES.lock().await;
    if !store::insert_allow(pool, &normal, note.trim(), by).await? {
        return Err(Error::Conflict { field: Some("cidr".into()), message: format!("{normal} is already allowed") });
    }
    load(pool, policy).await?;
    Ok(normal)
}

pub async fn remove(pool: &PgPool, policy: &NetworkPolicy, cidr: &str) -> Result<(), Error> {
    let _one_at_a_time = CHANGES.lock().await;
    if !store::delete_allow(pool, cidr).await? {
        return Err(Error::NotFound("allowlist entry"));
    }
    load(pool, policy).await
}
