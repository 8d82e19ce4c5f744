//! Rollups: raw results → per-minute rows → hour and day rows, and reading them back.
//!
//! Levels: minute, hour, day, week. A run has two transactions. The first takes the watermark
//! `for update` (writers hold it `for share` while inserting), moves it to `upto` and records the
//! window between as pending: brief, so writers barely wait. The second, serialised among runners
//! by an advisory lock but not blocking writers, rolls the window's raw rows up, clears the
//! pending window, and recomputes the minutes that late results dirtied. New minutes are added to
//! their hour, day and week rows; dirtied minutes make those be recomputed from the level below.
//! Readers take rollups as complete up to the start of a pending window (see [`watermark`]).

pub mod bucket;
pub mod histogram;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use app::model::PoolReading;
use chrono::{DateTime, Duration, DurationRound, Utc};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::results::{echo_count, error_from_code, outcome_from_code};
use crate::storage::rollups::bucket::{ERROR_CLASSES, Observation, Rollup, latency_counts};
use crate::storage::rollups::histogram::{DenseAccumulator, LatencyHistogram};

/// Rollup levels and their bucket widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Minute = 0,
    Hour = 1,
    Day = 2,
    /// Seven days, aligned to the Unix epoch (weeks start on Thursday, 00:00 UTC): long ranges
    /// read a few week rows instead of dozens of day rows.
    Week = 3,
}

impl Level {
    pub fn width(self) -> Duration {
        match self {
            Self::Minute => Duration::minutes(1),
            Self::Hour => Duration::hours(1),
            Self::Day => Duration::days(1),
            Self::Week => Duration::weeks(1),
        }
    }

    pub fn truncate(self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.duration_trunc(self.width()).unwrap_or(t)
    }
}

type Key = (Uuid, DateTime<Utc>);

/// What one rollup run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RollupRun {
    pub raw_rows: usize,
    pub minutes: usize,
    pub dirty_minutes: usize,
    pub watermark: Option<DateTime<Utc>>,
    /// It finished a window an earlier run had claimed (and moved no watermark itself).
    pub finished_earlier_claim: bool,
}

/// What a rollup needs of a raw result.
struct RawRow {
    probe_id: Uuid,
    at: DateTime<Utc>,
    outcome: i16,
    status: Option<i16>,
    error_class: Option<i16>,
    total_us: i32,
    pool: Option<Json<PoolReading>>,
    dns_us: Option<i32>,
    connect_us: Option<i32>,
    tls_us: Option<i32>,
    ttfb_us: Option<i32>,
    transfer_us: Option<i32>,
    echo_sent: Option<i16>,
    echo_received: Option<i16>,
}

fn observation(row: &RawRow) -> Observation {
    let error = error_from_code(row.error_class);
    let status = row.status.and_then(|s| u16::try_from(s).ok());
    let timed = latency_counts(status, error);
    let us = |v: Option<i32>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    let phases = [row.dns_us, row.connect_us, row.tls_us, row.ttfb_us, row.transfer_us];
    // Pushed results carry no phases at all: they say nothing about where the time went.
    let has_phases = phases.iter().any(Option::is_some);
    Observation {
        outcome: outcome_from_code(row.outcome),
        error,
        total_us: timed.then(|| u64::try_from(row.total_us).unwrap_or(0)),
        pool: row.pool.as_ref().map(|p| p.0),
        phases_us: (timed && has_phases).then(|| phases.map(us)),
        echo: echo_count(row.echo_sent, row.echo_received),
    }
}

fn aggregate(rows: &[RawRow], level: Level, into: &mut HashMap<Key, Rollup>) {
    for row in rows {
        into.entry((row.probe_id, level.truncate(row.at))).or_default().observe(&observation(row));
    }
}

/// Raw observations of `probes` (all probes when `None`) in [from, to): rows not yet compacted,
/// then compacted hours (the caller holds the rollup lock or a snapshot, see `results::compact`).
#[tracing::instrument(skip_all)]
async fn raw_rows(
    tx: &mut Transaction<'_, Postgres>,
    probes: Option<&[Uuid]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<RawRow>, sqlx::Error> {
    let mut rows = sqlx::query_as!(
        RawRow,
        r#"select probe_id, at, outcome, status, error_class, total_us, pool as "pool: Json<PoolReading>",
                  dns_us, connect_us, tls_us, ttfb_us, transfer_us, echo_sent, echo_received from results
            where at >= $1 and at < $2 and ($3::uuid[] is null or probe_id = any($3))"#,
        from,
        to,
        probes,
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.extend(super::results::scan_chunks(tx, probes, from, to).await?.iter().map(raw_row_of));
    Ok(rows)
}

/// A compacted result as the row it was (the columns' types and limits).
fn raw_row_of(r: &app::model::ProbeResult) -> RawRow {
    let int = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
    let small = |v: u32| i16::try_from(v).unwrap_or(i16::MAX);
    RawRow {
        probe_id: r.probe_id,
        at: r.at,
        outcome: r.outcome as i16,
        status: r.status.map(|s| i16::try_from(s).unwrap_or(i16::MAX)),
        error_class: r.error.map(|e| e.index() as i16),
        total_us: int(r.phases.total_us),
        pool: r.pool.map(Json),
        dns_us: r.phases.dns_us.map(int),
        connect_us: r.phases.connect_us.map(int),
        tls_us: r.phases.tls_us.map(int),
        ttfb_us: r.phases.ttfb_us.map(int),
        transfer_us: r.phases.transfer_us.map(int),
        echo_sent: r.echo.map(|e| small(e.sent)),
        echo_received: r.echo.map(|e| small(e.received)),
    }
}

/// Raw results in [from, to) of `probes`, rolled up per probe into buckets of `level`.
#[tracing::instrument(skip_all)]
pub async fn raw_rollups(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    level: Level,
) -> Result<HashMap<Key, Rollup>, sqlx::Error> {
    let mut tx = super::results::snapshot(pool).await?;
    let rows = raw_rows(&mut tx, Some(probes), from, to).await?;
    tx.commit().await?;
    let mut out = HashMap::new();
    aggregate(&rows, level, &mut out);
    Ok(out)
}

struct RollupRowDb {
    probe_id: Uuid,
    bucket: DateTime<Utc>,
    n_up: i32,
    n_degraded: i32,
    n_down: i32,
    errors: Vec<i32>,
    lat_hist: Vec<u8>,
    lat_sum_us: i64,
    lat_min_us: i64,
    lat_max_us: i64,
    pool_in_use: Option<f64>,
    pool_idle: Option<f64>,
    pool_max: Option<f64>,
    pool_waiting: Option<f64>,
    req_rate_sum: f64,
    err_rate_sum: f64,
    rate_samples: i32,
    phase_sum_us: Vec<i64>,
    phase_n: i64,
    echo_sent: i64,
    echo_lost: i64,
}

/// `query_as!` into [`RollupRowDb`] over `rollups r`, then the rest of the query and its arguments.
/// The macro decodes by position, which matters here: summaries read tens of thousands of rows.
macro_rules! query_rollups {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            RollupRowDb,
            "select r.probe_id, r.bucket, r.n_up, r.n_degraded, r.n_down, r.errors, r.lat_hist, r.lat_sum_us,
                    r.lat_min_us, r.lat_max_us, r.pool_in_use, r.pool_idle, r.pool_max, r.pool_waiting,
                    r.req_rate_sum, r.err_rate_sum, r.rate_samples, r.phase_sum_us, r.phase_n, r.echo_sent, r.echo_lost
               from rollups r " + $rest
            $(, $arg)*
        )
    };
}

/// A row's counts and gauges; the histogram is left to the caller (decoded or merged encoded).
fn counts_of(row: &RollupRowDb) -> Rollup {
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut errors = [0u64; ERROR_CLASSES];
    for (slot, v) in errors.iter_mut().zip(&row.errors) {
        *slot = u(i64::from(*v));
    }
    Rollup {
        n_up: u(i64::from(row.n_up)),
        n_degraded: u(i64::from(row.n_degraded)),
        n_down: u(i64::from(row.n_down)),
        errors,
        latency: LatencyHistogram::default(),
        pool_in_use: row.pool_in_use,
        pool_idle: row.pool_idle,
        pool_max: row.pool_max,
        pool_waiting: row.pool_waiting,
        req_rate_sum: row.req_rate_sum,
        err_rate_sum: row.err_rate_sum,
        rate_samples: u(i64::from(row.rate_samples)),
        phase_sum_us: std::array::from_fn(|i| row.phase_sum_us.get(i).map_or(0, |v| u(*v))),
        phase_n: u(row.phase_n),
        echo_sent: u(row.echo_sent),
        echo_lost: u(row.echo_lost),
    }
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn rollup_from(row: RollupRowDb) -> (Key, Rollup) {
    let mut r = counts_of(&row);
    r.latency = LatencyHistogram::decode(
        &row.lat_hist,
        unsigned(row.lat_sum_us),
        unsigned(row.lat_min_us),
        unsigned(row.lat_max_us),
    )
    .unwrap_or_default();
    ((row.probe_id, row.bucket), r)
}

/// Stored rollup rows of `level` for `probes` with buckets in [from, to), histograms still encoded.
pub struct EncodedRollups(Vec<RollupRowDb>);

#[tracing::instrument(skip(pool, probes), fields(probes = probes.len()))]
pub async fn fetch_encoded(
    pool: &PgPool,
    level: Level,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<EncodedRollups, sqlx::Error> {
    if level == Level::Minute {
        let mut tx = super::results::snapshot(pool).await?;
        let rows = minute_rows(&mut tx, probes, from, to).await?;
        tx.commit().await?;
        return Ok(EncodedRollups(rows));
    }
    let rows = query_rollups!(
        "where r.level = $1 and r.probe_id = any($2) and r.bucket >= $3 and r.bucket < $4",
        level as i16,
        probes,
        from,
        to,
    )
    .fetch_all(pool)
    .await?;
    Ok(EncodedRollups(rows))
}

/// Where minute rows begin: minutes before it lie in compacted hours, whose raw results are
/// kept in full (`results::compact`), so their minutes are computed from those when read.
#[tracing::instrument(skip_all)]
async fn compacted_until(tx: &mut Transaction<'_, Postgres>) -> Result<DateTime<Utc>, sqlx::Error> {
    let at = sqlx::query_scalar!("select compacted_until from rollup_watermark").fetch_optional(&mut **tx).await?;
    Ok(at.flatten().unwrap_or(DateTime::<Utc>::MIN_UTC))
}

/// Minute rollups of `probes` with buckets in [from, to): stored rows from the compaction
/// watermark on, computed from raw results before it. A stored row before the watermark (a late
/// result's minute, recomputed before compaction deleted it) is never read.
#[tracing::instrument(skip(tx, probes), fields(probes = probes.len()))]
async fn minute_rows(
    tx: &mut Transaction<'_, Postgres>,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<RollupRowDb>, sqlx::Error> {
    let stored_from = compacted_until(tx).await?;
    let mut rows = query_rollups!(
        "where r.level = 0 and r.probe_id = any($1) and r.bucket >= $2 and r.bucket < $3",
        probes,
        from.max(stored_from),
        to,
    )
    .fetch_all(&mut **tx)
    .await?;
    if from < stored_from {
        let raw = raw_rows(tx, Some(probes), from, to.min(stored_from)).await?;
        let mut minutes = HashMap::new();
        aggregate(&raw, Level::Minute, &mut minutes);
        rows.extend(minutes.iter().map(|(key, r)| row_of(*key, r)));
    }
    Ok(rows)
}

/// A rollup as its stored row (the columns' types, as [`write_rollups`] writes them).
fn row_of((probe_id, bucket): Key, r: &Rollup) -> RollupRowDb {
    let i = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
    let l = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    RollupRowDb {
        probe_id,
        bucket,
        n_up: i(r.n_up),
        n_degraded: i(r.n_degraded),
        n_down: i(r.n_down),
        errors: r.errors.iter().map(|n| i(*n)).collect(),
        lat_hist: r.latency.encode(),
        lat_sum_us: l(r.latency.sum_us()),
        lat_min_us: l(r.latency.min_us()),
        lat_max_us: l(r.latency.max_us()),
        pool_in_use: r.pool_in_use,
        pool_idle: r.pool_idle,
        pool_max: r.pool_max,
        pool_waiting: r.pool_waiting,
        req_rate_sum: r.req_rate_sum,
        err_rate_sum: r.err_rate_sum,
        rate_samples: i(r.rate_samples),
        phase_sum_us: r.phase_sum_us.iter().map(|n| l(*n)).collect(),
        phase_n: l(r.phase_n),
        echo_sent: l(r.echo_sent),
        echo_lost: l(r.echo_lost),
    }
}

impl EncodedRollups {
    /// Adds the rows into one rollup per probe; histograms go into a dense accumulator each.
    pub fn merge_into(self, into: &mut HashMap<Uuid, (Rollup, DenseAccumulator)>) {
        for row in self.0 {
            let (acc, latency) = into.entry(row.probe_id).or_default();
            acc.merge(&counts_of(&row));
            latency.add_encoded(
                &row.lat_hist,
                unsigned(row.lat_sum_us),
                unsigned(row.lat_min_us),
                unsigned(row.lat_max_us),
            );
        }
    }
}

/// A stored rollup row for a chart: counts and gauges decoded, the latency histogram still
/// encoded. Most chart buckets hold exactly one row (the level matches the step), and its
/// percentiles are read straight off the bytes; only buckets merging several rows decode them.
pub struct ChartRow {
    pub bucket: DateTime<Utc>,
    /// The row without its latency (see [`latency`](Self::latency)).
    pub counts: Rollup,
    hist: Vec<u8>,
    sum_us: u64,
    min_us: u64,
    max_us: u64,
}

impl ChartRow {
    pub fn latency(&self) -> LatencyHistogram {
        LatencyHistogram::decode(&self.hist, self.sum_us, self.min_us, self.max_us).unwrap_or_default()
    }

    /// p50, p95 and p99 in µs without decoding the histogram.
    pub fn percentiles(&self) -> [Option<f64>; 3] {
        LatencyHistogram::percentiles_encoded(&self.hist, self.min_us, self.max_us, [0.50, 0.95, 0.99])
            .unwrap_or([None; 3])
    }
}

/// Stored rollups of `level` for `probes` with buckets in [from, to), for a chart.
#[tracing::instrument(skip_all)]
pub async fn read_chart_rows(
    pool: &PgPool,
    level: Level,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ChartRow>, sqlx::Error> {
    let rows = fetch_encoded(pool, level, probes, from, to).await?;
    Ok(rows
        .0
        .into_iter()
        .map(|row| ChartRow {
            bucket: row.bucket,
            counts: counts_of(&row),
            sum_us: unsigned(row.lat_sum_us),
            min_us: unsigned(row.lat_min_us),
            max_us: unsigned(row.lat_max_us),
            hist: row.lat_hist,
        })
        .collect())
}

/// Stored rollup rows of `level` for `probes` with buckets in [from, to).
#[tracing::instrument(skip_all)]
pub async fn read_rollups(
    pool: &PgPool,
    level: Level,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Key, Rollup)>, sqlx::Error> {
    let rows = fetch_encoded(pool, level, probes, from, to).await?;
    Ok(rows.0.into_iter().map(rollup_from).collect())
}

#[tracing::instrument(skip_all)]
async fn read_keys(
    tx: &mut Transaction<'_, Postgres>,
    level: Level,
    keys: &[Key],
) -> Result<HashMap<Key, Rollup>, sqlx::Error> {
    let probes: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
    let buckets: Vec<DateTime<Utc>> = keys.iter().map(|k| k.1).collect();
    let rows = query_rollups!(
        "where r.level = $1 and (r.probe_id, r.bucket) in (select * from unnest($2::uuid[], $3::timestamptz[]))",
        level as i16,
        &probes,
        &buckets,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(rollup_from).collect())
}

/// Sum of the `below` rows inside each key's bucket of `level`.
#[tracing::instrument(skip_all)]
async fn recompute_from_below(
    tx: &mut Transaction<'_, Postgres>,
    level: Level,
    below: Level,
    keys: &BTreeSet<Key>,
) -> Result<HashMap<Key, Rollup>, sqlx::Error> {
    let mut out: HashMap<Key, Rollup> = keys.iter().map(|k| (*k, Rollup::default())).collect();
    if below == Level::Minute {
        for (probe, start) in keys {
            for row in minute_rows(tx, &[*probe], *start, *start + level.width()).await? {
                let (_, r) = rollup_from(row);
                out.entry((*probe, *start)).or_default().merge(&r);
            }
        }
        return Ok(out);
    }
    let probes: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
    let starts: Vec<DateTime<Utc>> = keys.iter().map(|k| k.1).collect();
    let rows = query_rollups!(
        "join unnest($2::uuid[], $3::timestamptz[]) as k(p, s)
           on r.probe_id = k.p and r.bucket >= k.s and r.bucket < k.s + $4::interval
        where r.level = $1",
        below as i16,
        &probes,
        &starts,
        level.width() as _,
    )
    .fetch_all(&mut **tx)
    .await?;
    for ((probe, bucket), r) in rows.into_iter().map(rollup_from) {
        out.entry((probe, level.truncate(bucket))).or_default().merge(&r);
    }
    Ok(out)
}

/// Writes (replacing) rollup rows of `level`; empty rollups delete their row.
#[tracing::instrument(skip_all)]
async fn write_rollups(
    tx: &mut Transaction<'_, Postgres>,
    level: Level,
    rows: &HashMap<Key, Rollup>,
) -> Result<(), sqlx::Error> {
    let (empty, full): (Vec<_>, Vec<_>) = rows.iter().partition(|(_, r)| r.count() == 0);
    if !empty.is_empty() {
        let probes: Vec<Uuid> = empty.iter().map(|(k, _)| k.0).collect();
        let buckets: Vec<DateTime<Utc>> = empty.iter().map(|(k, _)| k.1).collect();
        sqlx::query!(
            "delete from rollups where level = $1
                and (probe_id, bucket) in (select * from unnest($2::uuid[], $3::timestamptz[]))",
            level as i16,
            &probes,
            &buckets,
        )
        .execute(&mut **tx)
        .await?;
    }
    // Chunks keep each statement's arrays (and the errors array literal) moderate.
    for chunk in full.chunks(5_000) {
        let i = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        let l = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let probes: Vec<Uuid> = chunk.iter().map(|(k, _)| k.0).collect();
        let buckets: Vec<DateTime<Utc>> = chunk.iter().map(|(k, _)| k.1).collect();
        let up: Vec<i32> = chunk.iter().map(|(_, r)| i(r.n_up)).collect();
        let degraded: Vec<i32> = chunk.iter().map(|(_, r)| i(r.n_degraded)).collect();
        let down: Vec<i32> = chunk.iter().map(|(_, r)| i(r.n_down)).collect();
        // Postgres has no array-of-arrays parameter for ragged data; the fixed-width counts go
        // as a text literal per row.
        let errors: Vec<String> = chunk
            .iter()
            .map(|(_, r)| format!("{{{}}}", r.errors.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")))
            .collect();
        let hist: Vec<Vec<u8>> = chunk.iter().map(|(_, r)| r.latency.encode()).collect();
        let count: Vec<i64> = chunk.iter().map(|(_, r)| l(r.latency.count())).collect();
        let sum: Vec<i64> = chunk.iter().map(|(_, r)| l(r.latency.sum_us())).collect();
        let min: Vec<i64> = chunk.iter().map(|(_, r)| l(r.latency.min_us())).collect();
        let max: Vec<i64> = chunk.iter().map(|(_, r)| l(r.latency.max_us())).collect();
        let in_use: Vec<Option<f64>> = chunk.iter().map(|(_, r)| r.pool_in_use).collect();
        let idle: Vec<Option<f64>> = chunk.iter().map(|(_, r)| r.pool_idle).collect();
        let pmax: Vec<Option<f64>> = chunk.iter().map(|(_, r)| r.pool_max).collect();
        let waiting: Vec<Option<f64>> = chunk.iter().map(|(_, r)| r.pool_waiting).collect();
        let req: Vec<f64> = chunk.iter().map(|(_, r)| r.req_rate_sum).collect();
        let err: Vec<f64> = chunk.iter().map(|(_, r)| r.err_rate_sum).collect();
        let n: Vec<i32> = chunk.iter().map(|(_, r)| i(r.rate_samples)).collect();
        let phases: Vec<String> = chunk
            .iter()
            .map(|(_, r)| format!("{{{}}}", r.phase_sum_us.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")))
            .collect();
        let phase_n: Vec<i64> = chunk.iter().map(|(_, r)| l(r.phase_n)).collect();
        let echo_sent: Vec<i64> = chunk.iter().map(|(_, r)| l(r.echo_sent)).collect();
        let echo_lost: Vec<i64> = chunk.iter().map(|(_, r)| l(r.echo_lost)).collect();
        sqlx::query!(
            "insert into rollups (level, probe_id, bucket, n_up, n_degraded, n_down, errors, lat_hist, lat_count,
                                  lat_sum_us, lat_min_us, lat_max_us, pool_in_use, pool_idle, pool_max, pool_waiting,
                                  req_rate_sum, err_rate_sum, rate_samples, phase_sum_us, phase_n, echo_sent, echo_lost)
             select $1, t.p, t.b, t.u, t.d, t.x, t.e::int4[], t.h, t.c, t.s, t.mi, t.ma, t.iu, t.id, t.pm, t.w,
                    t.rq, t.er, t.n, t.ph::int8[], t.pn, t.es, t.el
               from unnest($2::uuid[], $3::timestamptz[], $4::int4[], $5::int4[], $6::int4[], $7::text[],
                           $8::bytea[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::float8[],
                           $14::float8[], $15::float8[], $16::float8[], $17::float8[], $18::float8[], $19::int4[],
                           $20::text[], $21::int8[], $22::int8[], $23::int8[])
                    as t(p, b, u, d, x, e, h, c, s, mi, ma, iu, id, pm, w, rq, er, n, ph, pn, es, el)
             on conflict (level, probe_id, bucket) do update set
               n_up = excluded.n_up, n_degraded = excluded.n_degraded, n_down = excluded.n_down,
               errors = excluded.errors, lat_hist = excluded.lat_hist, lat_count = excluded.lat_count,
               lat_sum_us = excluded.lat_sum_us, lat_min_us = excluded.lat_min_us, lat_max_us = excluded.lat_max_us,
               pool_in_use = excluded.pool_in_use, pool_idle = excluded.pool_idle, pool_max = excluded.pool_max,
               pool_waiting = excluded.pool_waiting, req_rate_sum = excluded.req_rate_sum,
               err_rate_sum = excluded.err_rate_sum, rate_samples = excluded.rate_samples,
               phase_sum_us = excluded.phase_sum_us, phase_n = excluded.phase_n,
               echo_sent = excluded.echo_sent, echo_lost = excluded.echo_lost",
            level as i16,
            &probes,
            &buckets,
            &up,
            &degraded,
            &down,
            &errors,
            &hist,
            &count,
            &sum,
            &min,
            &max,
            &in_use as &[Option<f64>],
            &idle as &[Option<f64>],
            &pmax as &[Option<f64>],
            &waiting as &[Option<f64>],
            &req,
            &err,
            &n,
            &phases,
            &phase_n,
            &echo_sent,
            &echo_lost,
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Adds `new` minute rollups into the rows of `level` that contain them.
#[tracing::instrument(skip_all)]
async fn add_into(
    tx: &mut Transaction<'_, Postgres>,
    level: Level,
    new: &HashMap<Key, Rollup>,
) -> Result<(), sqlx::Error> {
    let mut sums: HashMap<Key, Rollup> = HashMap::new();
    for ((probe, minute), r) in new {
        sums.entry((*probe, level.truncate(*minute))).or_default().merge(r);
    }
    let keys: Vec<Key> = sums.keys().copied().collect();
    let mut existing = read_keys(tx, level, &keys).await?;
    for (k, r) in &sums {
        existing.entry(*k).or_default().merge(r);
    }
    existing.retain(|k, _| sums.contains_key(k));
    write_rollups(tx, level, &existing).await
}

/// Moves the watermark (benchmarks and tests that load history, then roll it up as new).
#[tracing::instrument(skip_all)]
pub async fn set_watermark(pool: &PgPool, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update rollup_watermark
            set watermark = $1, pending_from = null, pending_to = null, generation = generation + 1",
        Level::Minute.truncate(at),
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Up to where the rollups are complete, for readers: the watermark, or the start of the window a
/// run is rolling up (writers use the watermark itself to tell late results).
#[tracing::instrument(skip_all)]
pub async fn watermark(pool: &PgPool) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar!(r#"select coalesce(pending_from, watermark) as "watermark!" from rollup_watermark"#)
        .fetch_one(pool)
        .await
}

/// [`watermark`] and the generation of the rollups behind it (see the migration adding it).
#[tracing::instrument(skip_all)]
pub async fn watermark_and_generation(pool: &PgPool) -> Result<(DateTime<Utc>, i64), sqlx::Error> {
    let row =
        sqlx::query!(r#"select coalesce(pending_from, watermark) as "watermark!", generation from rollup_watermark"#)
            .fetch_one(pool)
            .await?;
    Ok((row.watermark, row.generation))
}

/// Serialises the second transaction of rollup runs (several processes may share a database).
pub(crate) const ROLLUP_LOCK: i64 = 0x7472_6961_6765; // "triage"

/// Most raw time one run rolls up, so a long gap (a stopped instance) is caught up in steps
/// that each hold the watermark lock briefly.
pub const MAX_WINDOW: Duration = Duration::hours(1);

/// Rolls results before `upto` (truncated to the minute) into the rollups, at most
/// [`MAX_WINDOW`] past the watermark; call again while `run.watermark < upto`.
#[tracing::instrument(skip(pool))]
pub async fn run_rollup(pool: &PgPool, upto: DateTime<Utc>) -> Result<RollupRun, sqlx::Error> {
    let mut run = RollupRun::default();

    // Claim the next window and move the watermark: writers wait only for this.
    let mut claim = pool.begin().await?;
    let row =
        sqlx::query!("select watermark, pending_from from rollup_watermark for update").fetch_one(&mut *claim).await?;
    let (watermark, pending) = (row.watermark, row.pending_from);
    let upto = Level::Minute.truncate(upto).min(watermark + MAX_WINDOW);
    // A window still pending (a run that died, or another process's run) is finished first.
    if pending.is_none() && upto > watermark {
        sqlx::query!("update rollup_watermark set watermark = $1, pending_from = $2, pending_to = $1", upto, watermark)
            .execute(&mut *claim)
            .await?;
        run.watermark = Some(upto);
    }
    claim.commit().await?;

    let mut tx = pool.begin().await?;
    sqlx::query_scalar!("select pg_advisory_xact_lock($1)", ROLLUP_LOCK).fetch_one(&mut *tx).await?;
    let row = sqlx::query!("select pending_from, pending_to from rollup_watermark").fetch_one(&mut *tx).await?;
    let window = (row.pending_from, row.pending_to);
    // Minutes of compacted hours are read from their raw results, never from rows.
    let stored_from = compacted_until(&mut tx).await?;
    let stored = |rows: &HashMap<Key, Rollup>| -> HashMap<Key, Rollup> {
        rows.iter().filter(|(k, _)| k.1 >= stored_from).map(|(k, r)| (*k, r.clone())).collect()
    };

    // New minutes: never rolled up before, so they add to their hour and day. Results written
    // into the window after the claim are also queued as dirty: counted now or recomputed next.
    let mut fresh: HashMap<Key, Rollup> = HashMap::new();
    if let (Some(from), Some(to)) = window {
        let rows = raw_rows(&mut tx, None, from, to).await?;
        run.raw_rows += rows.len();
        aggregate(&rows, Level::Minute, &mut fresh);
        write_rollups(&mut tx, Level::Minute, &stored(&fresh)).await?;
        add_into(&mut tx, Level::Hour, &fresh).await?;
        add_into(&mut tx, Level::Day, &fresh).await?;
        add_into(&mut tx, Level::Week, &fresh).await?;
        sqlx::query!("update rollup_watermark set pending_from = null, pending_to = null").execute(&mut *tx).await?;
        run.finished_earlier_claim = run.watermark.is_none();
    }
    run.minutes = fresh.len();

    // Dirty minutes: recomputed from raw, then their hours and days from the level below.
    let dirty: Vec<Key> = sqlx::query!("delete from rollup_dirty returning probe_id, minute")
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.probe_id, r.minute))
        .collect();
    if !dirty.is_empty() {
        let mut by_probe: BTreeMap<Uuid, Vec<DateTime<Utc>>> = BTreeMap::new();
        for (p, m) in &dirty {
            by_probe.entry(*p).or_default().push(*m);
        }
        let mut recomputed: HashMap<Key, Rollup> = dirty.iter().map(|k| (*k, Rollup::default())).collect();
        for (probe, minutes) in &by_probe {
            let (Some(first), Some(last)) = (minutes.iter().min(), minutes.iter().max()) else { continue };
            let rows = raw_rows(&mut tx, Some(&[*probe]), *first, *last + Level::Minute.width()).await?;
            run.raw_rows += rows.len();
            let mut agg = HashMap::new();
            aggregate(&rows, Level::Minute, &mut agg);
            for (k, r) in agg {
                if let Some(slot) = recomputed.get_mut(&k) {
                    *slot = r;
                }
            }
        }
        write_rollups(&mut tx, Level::Minute, &stored(&recomputed)).await?;
        let hours: BTreeSet<Key> = dirty.iter().map(|(p, m)| (*p, Level::Hour.truncate(*m))).collect();
        let hour_rows = recompute_from_below(&mut tx, Level::Hour, Level::Minute, &hours).await?;
        write_rollups(&mut tx, Level::Hour, &hour_rows).await?;
        let days: BTreeSet<Key> = dirty.iter().map(|(p, m)| (*p, Level::Day.truncate(*m))).collect();
        let day_rows = recompute_from_below(&mut tx, Level::Day, Level::Hour, &days).await?;
        write_rollups(&mut tx, Level::Day, &day_rows).await?;
        let weeks: BTreeSet<Key> = dirty.iter().map(|(p, m)| (*p, Level::Week.truncate(*m))).collect();
        let week_rows = recompute_from_below(&mut tx, Level::Week, Level::Day, &weeks).await?;
        write_rollups(&mut tx, Level::Week, &week_rows).await?;
        run.dirty_minutes = dirty.len();
        sqlx::query!("update rollup_watermark set generation = generation + 1").execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(run)
}

/// Deletes rollups of `level` older than `before`.
#[tracing::instrument(skip_all)]
pub async fn prune_rollups(pool: &PgPool, level: Level, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query!("delete from rollups where level = $1 and bucket < $2", level as i16, before)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() > 0 {
        sqlx::query!("update rollup_watermark set generation = generation + 1").execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected())
}
