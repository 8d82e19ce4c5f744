//! Statements only the benchmarks run: the binary-COPY baseline for ingest, exact percentiles on
//! raw rows (the yardstick for rollups), and emptying the results between runs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[tracing::instrument(skip_all)]
pub async fn truncate_results(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("truncate results").execute(pool).await.map(|_| ())
}

/// Exact p50/p95/p99 of total time per probe over [from, to), straight from raw rows.
#[tracing::instrument(skip_all)]
pub async fn exact_percentiles(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<HashMap<Uuid, [f64; 3]>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select probe_id, percentile_cont(array[0.5, 0.95, 0.99]) within group (order by total_us) as "p!"
             from results where probe_id = any($1) and at >= $2 and at < $3 group by probe_id"#,
        probes,
        from,
        to,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(|r| Some((r.probe_id, [*r.p.first()?, *r.p.get(1)?, *r.p.get(2)?]))).collect())
}

/// Stored results by outcome code (0 up, 1 degraded, 2 down).
#[tracing::instrument(skip_all)]
pub async fn count_by_outcome(pool: &PgPool) -> Result<Vec<(i16, i64)>, sqlx::Error> {
    let rows = sqlx::query!(r#"select outcome, count(*) as "n!" from results group by outcome order by outcome"#)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.outcome, r.n)).collect())
}

/// What autovacuum does in steady state, done at once after a bulk roll-up: rollup rows are
/// rewritten by every run, and a freshly caught-up table is mostly dead row versions.
#[tracing::instrument(skip_all)]
pub async fn vacuum_rollups(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("vacuum analyze rollups").execute(pool).await.map(|_| ())
}
