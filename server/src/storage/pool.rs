//! The connection pool and migrations.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub min_connections: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: 10, min_connections: 2 }
    }
}

/// Opens the pool and proves it works with one connection.
#[tracing::instrument(skip_all)]
pub async fn connect(options: PgConnectOptions, settings: PoolSettings) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(600))
        .connect_with(options)
        .await
}

#[tracing::instrument(skip_all)]
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// What went wrong with the database, for logs and operator-facing errors (messages from the
/// server or the kind of I/O failure; never the connection URL).
pub fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) => io.kind().to_string(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a database connection".into(),
        other => other.to_string(),
    }
}
