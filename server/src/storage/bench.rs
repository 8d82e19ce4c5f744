//! Statements only the benchmarks run: the binary-COPY baseline for ingest, exact percentiles on
//! raw rows (the yardstick for rollups), and emptying the results between runs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[tracing::instrument(skip_all)]
pub async fn truncate_results(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("truncate results, result_chunks").execute(pool).await.map(|_| ())
}

/// Exact p50/p95/p99 of total time per probe over [from, to), straight from raw rows.
#[tracing::instrument(skip_all)]
pub async fn exact_percentiles(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<HashMap<Uuid, [f64; 3]>, sqlx::Error> {
    let mut tx = super::results::snapshot(pool).await?;
    let found = super::results::scan(&mut tx, Some(probes), from, to).await?;
    tx.commit().await?;
    let mut totals: HashMap<Uuid, Vec<f64>> = HashMap::new();
    for r in found {
        totals.entry(r.probe_id).or_default().push(r.phases.total_us as f64);
    }
    Ok(totals
        .into_iter()
        .filter_map(|(probe, mut v)| {
            v.sort_by(f64::total_cmp);
            let p = |q| super::results::percentile(&v, q);
            Some((probe, [p(0.5)?, p(0.95)?, p(0.99)?]))
        })
        .collect())
}

/// Stored results by outcome code (0 up, 1 degraded, 2 down), compacted or not.
#[tracing::instrument(skip_all)]
pub async fn count_by_outcome(pool: &PgPool) -> Result<Vec<(i16, i64)>, sqlx::Error> {
    let mut tx = super::results::snapshot(pool).await?;
    let rows = sqlx::query!(r#"select outcome, count(*) as "n!" from results group by outcome order by outcome"#)
        .fetch_all(&mut *tx)
        .await?;
    let mut counts: std::collections::BTreeMap<i16, i64> = rows.into_iter().map(|r| (r.outcome, r.n)).collect();
    let compacted =
        super::results::scan_chunks(&mut tx, None, DateTime::<Utc>::UNIX_EPOCH, Utc::now() + chrono::Duration::days(1))
            .await?;
    tx.commit().await?;
    for r in compacted {
        *counts.entry(r.outcome as i16).or_default() += 1;
    }
    Ok(counts.into_iter().collect())
}

/// What autovacuum does in steady state, done at once after a bulk roll-up: rollup rows are
/// rewritten by every run, and a freshly caught-up table is mostly dead row versions.
#[tracing::instrument(skip_all)]
pub async fn vacuum_rollups(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("vacuum analyze rollups").execute(pool).await.map(|_| ())
}

/// Bytes on disk (tables, their TOAST and indexes) and rows of each place results live.
#[derive(Debug, Default, Clone, Copy)]
pub struct StorageSizes {
    /// Raw rows: every partition of `results`.
    pub rows_bytes: i64,
    pub rows: i64,
    pub chunks_bytes: i64,
    pub chunks: i64,
    /// Results held in chunks.
    pub chunked: i64,
    /// Rollup rows by level (minute, hour, day, week): bytes and rows.
    pub rollups: [(i64, i64); 4],
}

#[tracing::instrument(skip_all)]
pub async fn storage_sizes(pool: &PgPool) -> Result<StorageSizes, sqlx::Error> {
    let rows_bytes = sqlx::query_scalar!(
        r#"select coalesce(sum(pg_total_relation_size(inhrelid)), 0)::int8 as "bytes!"
             from pg_inherits where inhparent = 'results'::regclass"#
    )
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query_scalar!(r#"select count(*) as "n!" from results"#).fetch_one(pool).await?;
    let c = sqlx::query!(
        r#"select pg_total_relation_size('result_chunks')::int8 as "bytes!", count(*) as "chunks!",
                  coalesce(sum(n), 0)::int8 as "results!" from result_chunks"#
    )
    .fetch_one(pool)
    .await?;
    let mut rollups = [(0, 0); 4];
    for (i, table) in ["rollups_minute", "rollups_hour", "rollups_day", "rollups_week"].into_iter().enumerate() {
        // Names are constants: safe to format.
        let (bytes, n): (i64, i64) =
            sqlx::query_as(&format!("select pg_total_relation_size('{table}')::int8, count(*) from {table}"))
                .fetch_one(pool)
                .await?;
        rollups[i] = (bytes, n);
    }
    Ok(StorageSizes { rows_bytes, rows, chunks_bytes: c.bytes, chunks: c.chunks, chunked: c.results, rollups })
}

/// Reclaims dead rows everywhere results live, as autovacuum does in time (sizes after a bulk
/// move are otherwise mostly dead row versions).
#[tracing::instrument(skip_all)]
pub async fn vacuum_results(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("vacuum analyze results, result_chunks, rollups").execute(pool).await.map(|_| ())
}
