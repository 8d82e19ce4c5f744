//! PostgreSQL, and every SQL statement Triage runs: the embedded cluster (`cluster`) and what
//! restarts it when it dies (`supervisor`), the pool and
//! migrations (`pool`), instance and database housekeeping here, services and probes in `catalog`, change events in `changes`,
//! raw results in `results`, the (probe, location) state machines in `locations`, remote agents in `agents`, rollups and their bucket format in `rollups`, users, sessions,
//! tokens and the audit trail in `auth`, incidents in `incidents`, checklists and hypotheses in
//! `guidance`, postmortems in `postmortems`, notification channels, rules and the outbox in
//! `notify`, maintenance windows in `maintenance`, status pages and public updates in `status_pages`, benchmark set-up in `bench`.

pub mod agents;
pub mod auth;
pub mod bench;
pub mod bus;
pub mod catalog;
pub mod changes;
pub mod chunk;
pub mod cluster;
pub mod guidance;
pub mod incidents;
pub mod locations;
pub mod maintenance;
pub mod notify;
pub mod pool;
pub mod postmortems;
pub mod reads;
pub mod replicas;
pub mod results;
pub mod rollups;
pub mod slo;
pub mod status_pages;
pub mod supervisor;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// The cheapest round trip that proves the database answers.
#[tracing::instrument(skip(pool))]
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!("select 1 as one").fetch_one(pool).await.map(|_| ())
}

/// This instance's identity, created on first start and kept across restarts.
#[tracing::instrument(skip(pool))]
pub async fn ensure_instance(pool: &PgPool) -> Result<(Uuid, DateTime<Utc>), sqlx::Error> {
    sqlx::query!("insert into instance (instance_id) values ($1) on conflict (singleton) do nothing", Uuid::new_v4())
        .execute(pool)
        .await?;
    let row = sqlx::query!("select instance_id, created_at from instance").fetch_one(pool).await?;
    Ok((row.instance_id, row.created_at))
}

/// Creates `name` in the cluster behind `pool` unless it exists (for the embedded cluster).
#[tracing::instrument(skip(pool))]
pub async fn create_database_if_missing(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    let exists =
        sqlx::query_scalar!(r#"select exists (select 1 from pg_database where datname = $1) as "exists!""#, name)
            .fetch_one(pool)
            .await?;
    if !exists {
        // Identifiers cannot be bound as parameters; quote it.
        let sql = format!("create database {}", quote_ident(name));
        sqlx::query(&sql).execute(pool).await?;
    }
    Ok(())
}

/// Creates database `name` as a copy of `template` (test isolation).
#[tracing::instrument(skip_all)]
pub async fn create_database_from_template(pool: &PgPool, name: &str, template: &str) -> Result<(), sqlx::Error> {
    let sql = format!("create database {} template {}", quote_ident(name), quote_ident(template));
    sqlx::query(&sql).execute(pool).await.map(|_| ())
}

/// Drops database `name`, ending its sessions first.
#[tracing::instrument(skip_all)]
pub async fn drop_database(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    let sql = format!("drop database if exists {} with (force)", quote_ident(name));
    sqlx::query(&sql).execute(pool).await.map(|_| ())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted_safely() {
        assert_eq!(super::quote_ident(r#"a"b"#), r#""a""b""#);
    }

    /// Every statement shows up in traces under the function that ran it: each async function of
    /// this module carries a span (arguments skipped: they may hold hashes or whole batches).
    #[test]
    fn every_storage_function_has_a_tracing_span() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("storage dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/storage"), &mut files);
        let mut missing = Vec::new();
        let mut seen = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).expect("source");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let lines: Vec<&str> = code.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let t = line.trim_start();
                if !(t.starts_with("pub async fn") || t.starts_with("async fn") || t.starts_with("pub(crate) async fn"))
                {
                    continue;
                }
                seen += 1;
                let attrs = lines[..i].iter().rev().take_while(|l| {
                    let l = l.trim_start();
                    l.starts_with("#[") || l.starts_with("///") || l.starts_with("//")
                });
                if !attrs.into_iter().any(|l| l.contains("tracing::instrument")) {
                    missing.push(format!("{}:{}", file.display(), i + 1));
                }
            }
        }
        assert!(seen > 100, "found only {seen} storage functions");
        assert!(missing.is_empty(), "storage functions without a span: {missing:?}");
    }
}
