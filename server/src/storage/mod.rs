//! PostgreSQL, and every SQL statement Triage runs: the embedded cluster (`cluster`), the pool and
//! migrations (`pool`), instance and database housekeeping here, services and probes in `catalog`,
//! raw results in `results`, rollups and their bucket format in `rollups`, users, sessions,
//! tokens and the audit trail in `auth`, incidents in `incidents`, checklists and hypotheses in
//! `guidance`, postmortems in `postmortems`, benchmark set-up in `bench`.

pub mod auth;
pub mod bench;
pub mod catalog;
pub mod cluster;
pub mod guidance;
pub mod incidents;
pub mod pool;
pub mod postmortems;
pub mod results;
pub mod rollups;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// The cheapest round trip that proves the database answers.
#[tracing::instrument(skip(pool))]
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("select 1").execute(pool).await.map(|_| ())
}

/// This instance's identity, created on first start and kept across restarts.
#[tracing::instrument(skip(pool))]
pub async fn ensure_instance(pool: &PgPool) -> Result<(Uuid, DateTime<Utc>), sqlx::Error> {
    sqlx::query("insert into instance (instance_id) values ($1) on conflict (singleton) do nothing")
        .bind(Uuid::new_v4())
        .execute(pool)
        .await?;
    sqlx::query_as("select instance_id, created_at from instance").fetch_one(pool).await
}

/// Creates `name` in the cluster behind `pool` unless it exists (for the embedded cluster).
#[tracing::instrument(skip(pool))]
pub async fn create_database_if_missing(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    let exists: bool = sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
        .bind(name)
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
pub async fn create_database_from_template(pool: &PgPool, name: &str, template: &str) -> Result<(), sqlx::Error> {
    let sql = format!("create database {} template {}", quote_ident(name), quote_ident(template));
    sqlx::query(&sql).execute(pool).await.map(|_| ())
}

/// Drops database `name`, ending its sessions first.
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
}
