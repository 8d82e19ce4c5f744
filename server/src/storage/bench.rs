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
        super::results::scan_chunks(&mut tx, None, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC).await?;
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
