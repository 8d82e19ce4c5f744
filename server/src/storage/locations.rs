//! The confirmation state of each (probe, location) of a probe run from several locations.

use app::model::{ErrorClass, LocationState, Outcome, unknown_state};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::storage::results::StateRow;

/// One location's stored state machine: its confirmed state and the runs counted so far.
#[derive(Clone, Debug, PartialEq)]
pub struct LocationRow {
    pub location: String,
    pub state: Option<Outcome>,
    pub since: DateTime<Utc>,
    pub at_least: [u32; 3],
    pub at_most: [u32; 3],
    pub last_result_at: Option<DateTime<Utc>>,
    pub last_outcome: Option<Outcome>,
    pub last_error: Option<ErrorClass>,
}

fn runs(v: &[i32]) -> [u32; 3] {
    let at = |i: usize| v.get(i).and_then(|&x| u32::try_from(x).ok()).unwrap_or(0);
    [at(0), at(1), at(2)]
}

fn ints(v: [u32; 3]) -> Vec<i32> {
    v.iter().map(|&x| i32::try_from(x).unwrap_or(i32::MAX)).collect()
}

/// Every stored location of `probe`, in the caller's transaction (which holds the probe's lock).
#[tracing::instrument(skip(tx))]
pub async fn rows_in(tx: &mut Transaction<'_, Postgres>, probe: Uuid) -> Result<Vec<LocationRow>, sqlx::Error> {
    let rows = sqlx::query!(
        "select location, state, since, at_least, at_most, last_result_at, last_outcome, last_error
           from probe_locations where probe_id = $1",
        probe
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LocationRow {
            location: r.location,
            state: r.state.as_deref().and_then(Outcome::parse),
            since: r.since,
            at_least: runs(&r.at_least),
            at_most: runs(&r.at_most),
            last_result_at: r.last_result_at,
            last_outcome: r.last_outcome.as_deref().and_then(Outcome::parse),
            last_error: r.last_error.as_deref().and_then(ErrorClass::parse),
        })
        .collect())
}

/// Stores one location's state machine.
#[tracing::instrument(skip(tx, row), fields(location = %row.location))]
pub async fn save_in(tx: &mut Transaction<'_, Postgres>, probe: Uuid, row: &LocationRow) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into probe_locations
                (probe_id, location, state, since, at_least, at_most, last_result_at, last_outcome, last_error)
         select $1, $2, $3, $4, $5, $6, $7, $8, $9 where exists (select 1 from probes where probe_id = $1)
         on conflict (probe_id, location) do update set
           state = excluded.state, since = excluded.since, at_least = excluded.at_least,
           at_most = excluded.at_most, last_result_at = excluded.last_result_at,
           last_outcome = excluded.last_outcome, last_error = excluded.last_error",
        probe,
        row.location,
        row.state.map(Outcome::as_str),
        row.since,
        &ints(row.at_least),
        &ints(row.at_most),
        row.last_result_at,
        row.last_outcome.map(Outcome::as_str),
        row.last_error.map(ErrorClass::as_str),
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// The locations of `probe` as its table shows them (only those stored; the caller adds the
/// locations that have not reported yet).
#[tracing::instrument(skip(pool))]
pub async fn list(pool: &PgPool, probe: Uuid) -> Result<Vec<LocationState>, sqlx::Error> {
    let rows = sqlx::query!(
        "select location, state, since, last_result_at, last_outcome from probe_locations
          where probe_id = $1 order by location",
        probe
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LocationState {
            location: r.location,
            state: r.state.as_deref().and_then(Outcome::parse),
            since: r.since,
            last_result_at: r.last_result_at,
            last_outcome: r.last_outcome.as_deref().and_then(Outcome::parse),
        })
        .collect())
}

/// The probe's quorum state after a judged result. Results may arrive late (an agent's spool
/// after an outage), so the state is always taken (the caller judged it under the probe's lock,
/// in order), while the last result's fields move only forwards in time.
#[tracing::instrument(skip_all, fields(probe_id = %s.probe_id))]
pub async fn save_probe_state(tx: &mut Transaction<'_, Postgres>, s: &StateRow) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into probe_state (probe_id, state, since, last_result_at, last_outcome, last_error)
         select $1, $2, $3, $4, $5, $6 where exists (select 1 from probes where probe_id = $1)
         on conflict (probe_id) do update set
           state = excluded.state, since = excluded.since,
           last_outcome = case when probe_state.last_result_at > excluded.last_result_at
                               then probe_state.last_outcome else excluded.last_outcome end,
           last_error = case when probe_state.last_result_at > excluded.last_result_at
                             then probe_state.last_error else excluded.last_error end,
           last_result_at = greatest(probe_state.last_result_at, excluded.last_result_at)",
        s.probe_id,
        unknown_state::as_str(s.state),
        s.since,
        s.last_result_at,
        s.last_outcome.as_str(),
        s.last_error.map(ErrorClass::as_str),
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// One location's checks in one bucket (or, without a bucket, over the whole window).
#[derive(Clone, Debug, PartialEq)]
pub struct LocationFigures {
    pub probe_id: Uuid,
    pub location: String,
    pub at: Option<DateTime<Utc>>,
    pub checks: i64,
    pub failed: i64,
    pub p95_us: Option<f64>,
    pub last: Option<DateTime<Utc>>,
}

/// Each location's checks of `probes` in [from, to): per bucket of `step_secs` (from `from`),
/// and over the whole window. Read from raw results, which carry the location (the rollups do
/// not), so a window past the raw retention has none.
#[tracing::instrument(skip(pool))]
pub async fn figures(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step_secs: i64,
) -> Result<(Vec<LocationFigures>, Vec<LocationFigures>), sqlx::Error> {
    let buckets = sqlx::query!(
        r#"select probe_id, coalesce(location, 'local') as "location!",
                  date_bin(make_interval(secs => $4::float8), at, $2::timestamptz) as "at!",
                  count(*) as "checks!", count(*) filter (where outcome = 2) as "failed!",
                  percentile_cont(0.95) within group (order by total_us) as p95_us
             from results where probe_id = any($1) and at >= $2 and at < $3
            group by 1, 2, 3 order by 1, 2, 3"#,
        probes,
        from,
        to,
        step_secs as f64,
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| LocationFigures {
        probe_id: r.probe_id,
        location: r.location,
        at: Some(r.at),
        checks: r.checks,
        failed: r.failed,
        p95_us: r.p95_us,
        last: None,
    })
    .collect();
    let whole = sqlx::query!(
        r#"select probe_id, coalesce(location, 'local') as "location!",
                  count(*) as "checks!", count(*) filter (where outcome = 2) as "failed!",
                  percentile_cont(0.95) within group (order by total_us) as p95_us, max(at) as last
             from results where probe_id = any($1) and at >= $2 and at < $3
            group by 1, 2"#,
        probes,
        from,
        to,
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| LocationFigures {
        probe_id: r.probe_id,
        location: r.location,
        at: None,
        checks: r.checks,
        failed: r.failed,
        p95_us: r.p95_us,
        last: r.last,
    })
    .collect();
    Ok((buckets, whole))
}

/// The stored location states of `probes` (probe, location, state).
#[tracing::instrument(skip(pool))]
pub async fn states(pool: &PgPool, probes: &[Uuid]) -> Result<Vec<(Uuid, String, Option<Outcome>)>, sqlx::Error> {
    let rows = sqlx::query!("select probe_id, location, state from probe_locations where probe_id = any($1)", probes)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.probe_id, r.location, r.state.as_deref().and_then(Outcome::parse))).collect())
}
