//! The confirmation state of each (probe, location) of a probe run from several locations.

use app::model::{ErrorClass, LocationState, Outcome, QuorumNote};
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

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

/// Takes the advisory locks of `probes` until the transaction ends, in id order (two
/// transactions locking overlapping sets never wait on each other in a circle).
#[tracing::instrument(skip_all, fields(probes = probes.len()))]
pub async fn lock_probes(tx: &mut Transaction<'_, Postgres>, probes: &[Uuid]) -> Result<(), sqlx::Error> {
    let mut sorted = probes.to_vec();
    sorted.sort();
    sorted.dedup();
    let keys: Vec<String> = sorted.iter().map(Uuid::to_string).collect();
    sqlx::query!(
        "select count(pg_advisory_xact_lock(hashtextextended(k, 7472))) as \"n!\"
           from unnest($1::text[]) with ordinality as t(k, i)",
        &keys
    )
    .fetch_one(&mut **tx)
    .await
    .map(|_| ())
}

/// A probe's stored quorum state (none yet: unknown, and no `since`).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredState {
    pub probe_id: Uuid,
    pub state: Option<Outcome>,
    pub since: Option<DateTime<Utc>>,
}

/// The probes of `probes` that still exist, with their stored state and since when.
#[tracing::instrument(skip_all, fields(probes = probes.len()))]
pub async fn states_in(tx: &mut Transaction<'_, Postgres>, probes: &[Uuid]) -> Result<Vec<StoredState>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select p.probe_id, s.state as "state?", s.since as "since?"
             from probes p left join probe_state s using (probe_id) where p.probe_id = any($1)"#,
        probes
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| StoredState {
            probe_id: r.probe_id,
            state: r.state.as_deref().and_then(Outcome::parse),
            since: r.since,
        })
        .collect())
}

/// The stored location rows of `probes`.
#[tracing::instrument(skip_all, fields(probes = probes.len()))]
pub async fn rows_of(
    tx: &mut Transaction<'_, Postgres>,
    probes: &[Uuid],
) -> Result<Vec<(Uuid, LocationRow)>, sqlx::Error> {
    let rows = sqlx::query!(
        "select probe_id, location, state, since, at_least, at_most, last_result_at, last_outcome, last_error
           from probe_locations where probe_id = any($1)",
        probes
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.probe_id,
                LocationRow {
                    location: r.location,
                    state: r.state.as_deref().and_then(Outcome::parse),
                    since: r.since,
                    at_least: runs(&r.at_least),
                    at_most: runs(&r.at_most),
                    last_result_at: r.last_result_at,
                    last_outcome: r.last_outcome.as_deref().and_then(Outcome::parse),
                    last_error: r.last_error.as_deref().and_then(ErrorClass::parse),
                },
            )
        })
        .collect())
}

/// Stores location state machines, in one statement.
#[tracing::instrument(skip_all, fields(rows = rows.len()))]
pub async fn save_many(tx: &mut Transaction<'_, Postgres>, rows: &[(Uuid, &LocationRow)]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let probe: Vec<Uuid> = rows.iter().map(|(p, _)| *p).collect();
    let location: Vec<&str> = rows.iter().map(|(_, r)| r.location.as_str()).collect();
    let state: Vec<Option<&str>> = rows.iter().map(|(_, r)| r.state.map(Outcome::as_str)).collect();
    let since: Vec<DateTime<Utc>> = rows.iter().map(|(_, r)| r.since).collect();
    // Arrays of arrays do not bind; the runs go as text ('{1,0,0}') and are cast back.
    let least: Vec<String> = rows.iter().map(|(_, r)| pg_array(r.at_least)).collect();
    let most: Vec<String> = rows.iter().map(|(_, r)| pg_array(r.at_most)).collect();
    let last_at: Vec<Option<DateTime<Utc>>> = rows.iter().map(|(_, r)| r.last_result_at).collect();
    let last: Vec<Option<&str>> = rows.iter().map(|(_, r)| r.last_outcome.map(Outcome::as_str)).collect();
    let err: Vec<Option<&str>> = rows.iter().map(|(_, r)| r.last_error.map(ErrorClass::as_str)).collect();
    sqlx::query!(
        "insert into probe_locations
                (probe_id, location, state, since, at_least, at_most, last_result_at, last_outcome, last_error)
         select t.p, t.l, t.s, t.si, t.al::integer[], t.am::integer[], t.la, t.lo, t.le
           from unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
                       $7::timestamptz[], $8::text[], $9::text[]) as t(p, l, s, si, al, am, la, lo, le)
          where exists (select 1 from probes where probe_id = t.p)
         on conflict (probe_id, location) do update set
           state = excluded.state, since = excluded.since, at_least = excluded.at_least,
           at_most = excluded.at_most, last_result_at = excluded.last_result_at,
           last_outcome = excluded.last_outcome, last_error = excluded.last_error",
        &probe,
        &location as &[&str],
        &state as &[Option<&str>],
        &since,
        &least,
        &most,
        &last_at as &[Option<DateTime<Utc>>],
        &last as &[Option<&str>],
        &err as &[Option<&str>],
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

fn pg_array(v: [u32; 3]) -> String {
    format!("{{{},{},{}}}", v[0], v[1], v[2])
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
    let mut tx = super::results::snapshot(pool).await?;
    let found = super::results::scan(&mut tx, Some(probes), from, to).await?;
    tx.commit().await?;
    let step = chrono::Duration::seconds(step_secs.max(1));
    let step_us = step.num_microseconds().unwrap_or(i64::MAX);
    type Group = (Vec<f64>, i64, DateTime<Utc>);
    let mut by_bucket: BTreeMap<(Uuid, String, DateTime<Utc>), Group> = BTreeMap::new();
    let mut by_location: BTreeMap<(Uuid, String), Group> = BTreeMap::new();
    for r in &found {
        let location = r.location.clone().unwrap_or_else(|| "local".into());
        let since = (r.at - from).num_microseconds().unwrap_or(0);
        let bucket = from + chrono::Duration::microseconds(since - since.rem_euclid(step_us));
        for group in [
            by_bucket.entry((r.probe_id, location.clone(), bucket)).or_insert_with(|| (Vec::new(), 0, r.at)),
            by_location.entry((r.probe_id, location)).or_insert_with(|| (Vec::new(), 0, r.at)),
        ] {
            group.0.push(r.phases.total_us as f64);
            group.1 += i64::from(r.outcome == Outcome::Down);
            group.2 = group.2.max(r.at);
        }
    }
    let figures = |(totals, failed, _): &mut Group| {
        totals.sort_by(f64::total_cmp);
        (totals.len() as i64, *failed, super::results::percentile(totals, 0.95))
    };
    let buckets = by_bucket
        .into_iter()
        .map(|((probe_id, location, at), mut g)| {
            let (checks, failed, p95_us) = figures(&mut g);
            LocationFigures { probe_id, location, at: Some(at), checks, failed, p95_us, last: None }
        })
        .collect();
    let whole = by_location
        .into_iter()
        .map(|((probe_id, location), mut g)| {
            let (checks, failed, p95_us) = figures(&mut g);
            LocationFigures { probe_id, location, at: None, checks, failed, p95_us, last: Some(g.2) }
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

/// The newest quorum note of each of `probes` (a probe run from several locations) with the
/// state it led to.
#[tracing::instrument(skip_all, fields(probes = probes.len()))]
pub async fn latest_notes(pool: &PgPool, probes: &[Uuid]) -> Result<Vec<(Uuid, Outcome, QuorumNote)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select distinct on (probe_id) probe_id, to_state, quorum as "quorum!: Json<QuorumNote>"
             from state_changes where probe_id = any($1) and quorum is not null
            order by probe_id, at desc, state_change_id desc"#,
        probes
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(|r| Some((r.probe_id, Outcome::parse(&r.to_state)?, r.quorum.0))).collect())
}
