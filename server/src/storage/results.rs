//! Raw results: daily partitions, batched writes, reads, and push receipts.

use std::borrow::Borrow;

use app::model::unknown_state;
use app::model::{
    Component, EchoCount, ErrorClass, Outcome, Phases, PoolReading, ProbeResult, QuorumNote, StateChange,
};
use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

fn partition_name(day: NaiveDate) -> String {
    format!("results_{}", day.format("%Y%m%d"))
}

/// Creates the daily partition holding `day` unless it exists.
#[tracing::instrument(skip(pool))]
pub async fn ensure_partition(pool: &PgPool, day: NaiveDate) -> Result<(), sqlx::Error> {
    let exists = sqlx::query_scalar!(r#"select to_regclass($1) is not null as "exists!""#, partition_name(day))
        .fetch_one(pool)
        .await?;
    if exists {
        return Ok(());
    }
    let next = day.succ_opt().unwrap_or(day);
    // Names and bounds come from a date, never from input: safe to format into the statement.
    let sql = format!(
        "create table if not exists {} partition of results for values from ('{}') to ('{}')",
        partition_name(day),
        day.format("%Y-%m-%d"),
        next.format("%Y-%m-%d"),
    );
    match sqlx::query(&sql).execute(pool).await {
        Ok(_) => Ok(()),
        // Two writers (or replicas) creating the same partition at once: the loser sees a
        // duplicate relation, or a duplicate row in the catalog if they raced closer still.
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P07" | "23505")) => Ok(()),
        // The default partition already holds results of that day (an agent's clock far
        // ahead): they stay there, readable, until compaction moves them into chunks.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23514") => {
            tracing::warn!(%day, "results of this day are in the default partition; no partition of its own");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Drops daily partitions entirely older than `cutoff`; returns their names.
#[tracing::instrument(skip(pool))]
pub async fn drop_partitions_before(pool: &PgPool, cutoff: NaiveDate) -> Result<Vec<String>, sqlx::Error> {
    let mut dropped = Vec::new();
    for (name, day) in day_partitions(pool).await? {
        if day < cutoff {
            sqlx::query(&format!("drop table if exists {name}")).execute(pool).await?;
            dropped.push(name);
        }
    }
    Ok(dropped)
}

/// A probe's state after a result, stored with it.
#[derive(Clone, Debug, PartialEq)]
pub struct StateRow {
    pub probe_id: Uuid,
    /// `None` until a first state is confirmed.
    pub state: Option<Outcome>,
    pub since: DateTime<Utc>,
    pub last_result_at: DateTime<Utc>,
    pub last_outcome: Outcome,
    pub last_error: Option<ErrorClass>,
}

fn outcome_code(o: Outcome) -> i16 {
    o as i16
}

pub fn outcome_from_code(c: i16) -> Outcome {
    match c {
        0 => Outcome::Up,
        1 => Outcome::Degraded,
        _ => Outcome::Down,
    }
}

fn error_code(e: Option<ErrorClass>) -> Option<i16> {
    e.map(|c| c.index() as i16)
}

/// An ICMP check's echo counts from their two columns (both set, or neither).
pub fn echo_count(sent: Option<i16>, received: Option<i16>) -> Option<EchoCount> {
    let n = |v: i16| u32::try_from(v).unwrap_or(0);
    Some(EchoCount { sent: n(sent?), received: n(received?) })
}

pub fn error_from_code(c: Option<i16>) -> Option<ErrorClass> {
    c.and_then(|i| ErrorClass::ALL.get(usize::try_from(i).ok()?).copied())
}

fn us(v: Option<u64>) -> Option<i32> {
    v.map(|x| i32::try_from(x).unwrap_or(i32::MAX))
}

/// Rows inserted by [`write_batch`] and how many were late (older than the rollup watermark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub written: usize,
    pub late: usize,
    /// The batch had been committed before (a retry after a lost answer): nothing was written
    /// again.
    pub repeated: bool,
}

/// Writes results, the probes' latest states and confirmed state changes in one transaction.
/// The rollup watermark is read `for share` first: the rollup task takes it `for update`, so it
/// either sees this batch's rows or this batch sees its new watermark and queues late minutes.
#[tracing::instrument(skip_all, fields(results = results.len()))]
pub async fn write_batch<R: Borrow<ProbeResult>>(
    pool: &PgPool,
    batch_id: Uuid,
    results: &[R],
    states: &[StateRow],
    changes: &[StateChange],
) -> Result<BatchOutcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let first_time = sqlx::query!("insert into ingest_batches (batch_id) values ($1) on conflict do nothing", batch_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if !first_time {
        tx.rollback().await?;
        return Ok(BatchOutcome { written: results.len(), late: 0, repeated: true });
    }
    let late = insert_with_late(&mut tx, results).await?;
    upsert_states(&mut tx, states).await?;
    insert_changes(&mut tx, changes).await?;
    tx.commit().await?;
    Ok(BatchOutcome { written: results.len(), late, repeated: false })
}

/// Writes `results` and notes the minutes of those older than the rollup watermark (taken
/// `for share`) as dirty; answers how many were late.
#[tracing::instrument(skip_all, fields(results = results.len()))]
async fn insert_with_late<R: Borrow<ProbeResult>>(
    tx: &mut Transaction<'_, Postgres>,
    results: &[R],
) -> Result<usize, sqlx::Error> {
    let watermark = share_watermark(tx).await?;
    insert_results(tx, results).await?;
    let late: Vec<&ProbeResult> = results.iter().map(Borrow::borrow).filter(|r| r.at < watermark).collect();
    if !late.is_empty() {
        let probes: Vec<Uuid> = late.iter().map(|r| r.probe_id).collect();
        let ats: Vec<DateTime<Utc>> = late.iter().map(|r| r.at).collect();
        sqlx::query!(
            "insert into rollup_dirty (probe_id, minute)
             select p, date_trunc('minute', a) from unnest($1::uuid[], $2::timestamptz[]) as t(p, a)
             on conflict do nothing",
            &probes,
            &ats,
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(late.len())
}

/// Inserts confirmed state changes (of probes that still exist), with their quorum notes.
#[tracing::instrument(skip_all, fields(changes = changes.len()))]
async fn insert_changes(tx: &mut Transaction<'_, Postgres>, changes: &[StateChange]) -> Result<(), sqlx::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let probe: Vec<Uuid> = changes.iter().map(|c| c.probe_id).collect();
    let at: Vec<DateTime<Utc>> = changes.iter().map(|c| c.at).collect();
    let from: Vec<&str> = changes.iter().map(|c| unknown_state::as_str(c.from)).collect();
    let to: Vec<&str> = changes.iter().map(|c| c.to.as_str()).collect();
    let rid: Vec<&str> = changes.iter().map(|c| c.request_id.as_str()).collect();
    let err: Vec<Option<&str>> = changes.iter().map(|c| c.error.map(ErrorClass::as_str)).collect();
    let quorum: Vec<Option<serde_json::Value>> =
        changes.iter().map(|c| c.quorum.as_ref().and_then(|q| serde_json::to_value(q).ok())).collect();
    sqlx::query!(
        "insert into state_changes (probe_id, at, from_state, to_state, request_id, error_class, quorum)
         select t.* from unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
                                $7::jsonb[]) as t(p, a, f, s, r, e, q)
          where exists (select 1 from probes where probe_id = t.p)",
        &probe,
        &at,
        &from as &[&str],
        &to as &[&str],
        &rid as &[&str],
        &err as &[Option<&str>],
        &quorum as &[Option<serde_json::Value>],
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// Stores judged results (of probes run from several locations) and the changes they
/// confirmed, in the caller's transaction.
#[tracing::instrument(skip_all, fields(results = results.len()))]
pub async fn store_judged_many(
    tx: &mut Transaction<'_, Postgres>,
    results: &[ProbeResult],
    changes: &[StateChange],
) -> Result<(), sqlx::Error> {
    insert_with_late(tx, results).await?;
    insert_changes(tx, changes).await
}

const COPY_RESULTS: &str = "copy results (probe_id, at, outcome, status, error_class, dns_us, connect_us, tls_us,
    ttfb_us, transfer_us, total_us, response_bytes, request_id, detail, body_excerpt, cert_days_left, components, pool,
    echo_sent, echo_received, location) from stdin with (format binary)";

/// Results in PostgreSQL's binary COPY format: the cheapest way in (no parsing on the server).
pub fn encode_copy<R: Borrow<ProbeResult>>(results: &[R]) -> Vec<u8> {
    fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    fn null(buf: &mut Vec<u8>) {
        buf.extend_from_slice(&(-1i32).to_be_bytes());
    }
    fn int4(buf: &mut Vec<u8>, v: Option<i32>) {
        match v {
            Some(x) => field(buf, &x.to_be_bytes()),
            None => null(buf),
        }
    }
    fn int2(buf: &mut Vec<u8>, v: Option<i16>) {
        match v {
            Some(x) => field(buf, &x.to_be_bytes()),
            None => null(buf),
        }
    }
    fn text(buf: &mut Vec<u8>, v: Option<&str>) {
        match v {
            Some(t) => field(buf, t.as_bytes()),
            None => null(buf),
        }
    }
    fn jsonb(buf: &mut Vec<u8>, v: Option<String>) {
        match v {
            // Binary jsonb is a version byte (1) and the JSON text.
            Some(j) => {
                buf.extend_from_slice(&(j.len() as i32 + 1).to_be_bytes());
                buf.push(1);
                buf.extend_from_slice(j.as_bytes());
            }
            None => null(buf),
        }
    }
    let epoch = chrono::DateTime::<Utc>::from_naive_utc_and_offset(
        NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default(),
        Utc,
    );
    let mut buf = Vec::with_capacity(results.len() * 160 + 32);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    for r in results.iter().map(Borrow::borrow) {
        buf.extend_from_slice(&21i16.to_be_bytes());
        field(&mut buf, r.probe_id.as_bytes());
        field(&mut buf, &(r.at - epoch).num_microseconds().unwrap_or(0).to_be_bytes());
        int2(&mut buf, Some(outcome_code(r.outcome)));
        int2(&mut buf, r.status.map(|s| s as i16));
        int2(&mut buf, error_code(r.error));
        int4(&mut buf, us(r.phases.dns_us));
        int4(&mut buf, us(r.phases.connect_us));
        int4(&mut buf, us(r.phases.tls_us));
        int4(&mut buf, us(r.phases.ttfb_us));
        int4(&mut buf, us(r.phases.transfer_us));
        int4(&mut buf, us(Some(r.phases.total_us)));
        int4(&mut buf, Some(i32::try_from(r.response_bytes).unwrap_or(i32::MAX)));
        text(&mut buf, Some(&r.request_id));
        text(&mut buf, r.detail.as_deref());
        text(&mut buf, r.body_excerpt.as_deref());
        int4(&mut buf, r.cert_days_left);
        jsonb(&mut buf, (!r.components.is_empty()).then(|| serde_json::to_string(&r.components).unwrap_or_default()));
        jsonb(&mut buf, r.pool.map(|p| serde_json::to_string(&p).unwrap_or_default()));
        let small = |v: u32| i16::try_from(v).unwrap_or(i16::MAX);
        int2(&mut buf, r.echo.map(|e| small(e.sent)));
        int2(&mut buf, r.echo.map(|e| small(e.received)));
        text(&mut buf, r.location.as_deref());
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

#[tracing::instrument(skip_all)]
async fn insert_results<R: Borrow<ProbeResult>>(
    tx: &mut Transaction<'_, Postgres>,
    results: &[R],
) -> Result<(), sqlx::Error> {
    if results.is_empty() {
        return Ok(());
    }
    let mut copy = tx.copy_in_raw(COPY_RESULTS).await?;
    copy.send(encode_copy(results)).await?;
    copy.finish().await.map(|_| ())
}

/// Binary COPY of `results` in a transaction of its own, with nothing else (the ingest baseline).
#[tracing::instrument(skip_all)]
pub async fn copy_only<R: Borrow<ProbeResult>>(pool: &PgPool, results: &[R]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    insert_results(&mut tx, results).await?;
    tx.commit().await
}

/// State rows as the columns `unnest` takes.
struct StateColumns {
    probe: Vec<Uuid>,
    state: Vec<&'static str>,
    since: Vec<DateTime<Utc>>,
    last_at: Vec<DateTime<Utc>>,
    last: Vec<&'static str>,
    err: Vec<Option<&'static str>>,
}

impl StateColumns {
    fn of(states: &[StateRow]) -> Self {
        Self {
            probe: states.iter().map(|s| s.probe_id).collect(),
            state: states.iter().map(|s| unknown_state::as_str(s.state)).collect(),
            since: states.iter().map(|s| s.since).collect(),
            last_at: states.iter().map(|s| s.last_result_at).collect(),
            last: states.iter().map(|s| s.last_outcome.as_str()).collect(),
            err: states.iter().map(|s| s.last_error.map(ErrorClass::as_str)).collect(),
        }
    }
}

#[tracing::instrument(skip_all)]
async fn upsert_states(tx: &mut Transaction<'_, Postgres>, states: &[StateRow]) -> Result<(), sqlx::Error> {
    if states.is_empty() {
        return Ok(());
    }
    let c = StateColumns::of(states);
    // A probe deleted while its results were in flight has no row to update: skip it.
    sqlx::query!(
        "insert into probe_state (probe_id, state, since, last_result_at, last_outcome, last_error)
         select t.* from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[])
                as t(p, s, si, la, lo, le)
          where exists (select 1 from probes where probe_id = t.p)
         on conflict (probe_id) do update set
           state = excluded.state, since = excluded.since, last_result_at = excluded.last_result_at,
           last_outcome = excluded.last_outcome, last_error = excluded.last_error
         where probe_state.last_result_at is null or probe_state.last_result_at <= excluded.last_result_at",
        &c.probe,
        &c.state as &[&str],
        &c.since,
        &c.last_at,
        &c.last as &[&str],
        &c.err as &[Option<&str>],
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// The probes' quorum states after judged results. Results may arrive late (an agent's spool
/// after an outage), so the state is always taken (judged under the probes' locks, in order),
/// while the last result's fields move only forwards in time.
#[tracing::instrument(skip_all, fields(states = states.len()))]
pub async fn upsert_judged_states(tx: &mut Transaction<'_, Postgres>, states: &[StateRow]) -> Result<(), sqlx::Error> {
    if states.is_empty() {
        return Ok(());
    }
    let c = StateColumns::of(states);
    sqlx::query!(
        "insert into probe_state (probe_id, state, since, last_result_at, last_outcome, last_error)
         select t.* from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[])
                as t(p, s, si, la, lo, le)
          where exists (select 1 from probes where probe_id = t.p)
         on conflict (probe_id) do update set
           state = excluded.state, since = excluded.since,
           last_outcome = case when probe_state.last_result_at > excluded.last_result_at
                               then probe_state.last_outcome else excluded.last_outcome end,
           last_error = case when probe_state.last_result_at > excluded.last_result_at
                             then probe_state.last_error else excluded.last_error end,
           last_result_at = greatest(probe_state.last_result_at, excluded.last_result_at)",
        &c.probe,
        &c.state as &[&str],
        &c.since,
        &c.last_at,
        &c.last as &[&str],
        &c.err as &[Option<&str>],
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

struct ResultRow {
    probe_id: Uuid,
    at: DateTime<Utc>,
    outcome: i16,
    status: Option<i16>,
    error_class: Option<i16>,
    dns_us: Option<i32>,
    connect_us: Option<i32>,
    tls_us: Option<i32>,
    ttfb_us: Option<i32>,
    transfer_us: Option<i32>,
    total_us: i32,
    response_bytes: i32,
    request_id: String,
    detail: Option<String>,
    body_excerpt: Option<String>,
    cert_days_left: Option<i32>,
    components: Option<Json<Vec<Component>>>,
    pool: Option<Json<PoolReading>>,
    echo_sent: Option<i16>,
    echo_received: Option<i16>,
    location: Option<String>,
}

fn result_from(r: ResultRow) -> ProbeResult {
    let u = |v: Option<i32>| v.and_then(|x| u64::try_from(x).ok());
    ProbeResult {
        probe_id: r.probe_id,
        at: r.at,
        outcome: outcome_from_code(r.outcome),
        status: r.status.and_then(|s| u16::try_from(s).ok()),
        error: error_from_code(r.error_class),
        detail: r.detail,
        phases: Phases {
            dns_us: u(r.dns_us),
            connect_us: u(r.connect_us),
            tls_us: u(r.tls_us),
            ttfb_us: u(r.ttfb_us),
            transfer_us: u(r.transfer_us),
            total_us: u(Some(r.total_us)).unwrap_or(0),
        },
        response_bytes: u(Some(r.response_bytes)).unwrap_or(0),
        request_id: r.request_id,
        body_excerpt: r.body_excerpt,
        cert_days_left: r.cert_days_left,
        components: r.components.map(|c| c.0).unwrap_or_default(),
        pool: r.pool.map(|p| p.0),
        echo: echo_count(r.echo_sent, r.echo_received),
        location: r.location,
    }
}

/// A read-only transaction whose statements all see one snapshot: a compaction committing
/// between reading `results` and reading `result_chunks` would otherwise show an hour twice or
/// not at all.
#[tracing::instrument(skip_all)]
pub(crate) async fn snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!("set transaction isolation level repeatable read, read only").execute(&mut *tx).await?;
    Ok(tx)
}

fn chunk_error(e: super::chunk::ChunkError) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// The newest results of `probes` in [from, to), newest first: rows not yet compacted, then
/// compacted hours newest first until older ones cannot hold any of the newest `limit`.
#[tracing::instrument(skip(pool))]
pub async fn list_results(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ProbeResult>, sqlx::Error> {
    use futures::TryStreamExt;
    let mut tx = snapshot(pool).await?;
    let mut found = rows(&mut tx, Some(probes), from, to, Some(limit)).await?;
    let want = usize::try_from(limit).unwrap_or(0);
    {
        let mut chunks = sqlx::query!(
            "select probe_id, hour, data from result_chunks
              where probe_id = any($1) and hour > $2::timestamptz - interval '1 hour' and hour < $3
              order by hour desc",
            probes,
            from,
            to,
        )
        .fetch(&mut *tx);
        while let Some(c) = chunks.try_next().await? {
            // Chunks come newest first: once `want` results are newer than this whole hour,
            // neither it nor any older one holds one of the newest.
            let after = c.hour + Duration::hours(1);
            if found.iter().filter(|r| r.at >= after).count() >= want {
                break;
            }
            let decoded = super::chunk::decode(c.probe_id, c.hour, &c.data).map_err(chunk_error)?;
            found.extend(decoded.into_iter().filter(|r| r.at >= from && r.at < to));
        }
    }
    tx.commit().await?;
    found.sort_by_key(|r| std::cmp::Reverse(r.at));
    found.truncate(want);
    Ok(found)
}

/// Every result of `probes` (all probes when `None`) in [from, to), compacted or not, in no
/// particular order. Runs in the caller's transaction (see [`snapshot`]).
#[tracing::instrument(skip(tx))]
pub async fn scan(
    tx: &mut Transaction<'_, Postgres>,
    probes: Option<&[Uuid]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ProbeResult>, sqlx::Error> {
    let mut found = rows(tx, probes, from, to, None).await?;
    found.extend(scan_chunks(tx, probes, from, to).await?);
    Ok(found)
}

/// The results of `probes` (all when `None`) in [from, to) not yet compacted: the newest
/// `limit` of them, newest first, or all of them.
#[tracing::instrument(skip(tx))]
async fn rows(
    tx: &mut Transaction<'_, Postgres>,
    probes: Option<&[Uuid]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: Option<i64>,
) -> Result<Vec<ProbeResult>, sqlx::Error> {
    let rows = sqlx::query_as!(
        ResultRow,
        r#"select probe_id, at, outcome, status, error_class, dns_us, connect_us, tls_us, ttfb_us, transfer_us,
                  total_us, response_bytes, request_id, detail, body_excerpt, cert_days_left,
                  components as "components: Json<Vec<Component>>", pool as "pool: Json<PoolReading>",
                  echo_sent, echo_received, location
             from results where ($1::uuid[] is null or probe_id = any($1)) and at >= $2 and at < $3
            order by at desc limit $4"#,
        probes,
        from,
        to,
        limit,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(result_from).collect())
}

/// The `q` quantile of sorted values, interpolated between neighbours as PostgreSQL's
/// `percentile_cont` does; `None` for no values.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let (lo, frac) = (pos.floor() as usize, pos.fract());
    let low = *sorted.get(lo)?;
    Some(match sorted.get(lo + 1) {
        Some(high) if frac > 0.0 => low + frac * (high - low),
        _ => low,
    })
}

/// The compacted results of `probes` (all when `None`) in [from, to).
#[tracing::instrument(skip(tx))]
pub async fn scan_chunks(
    tx: &mut Transaction<'_, Postgres>,
    probes: Option<&[Uuid]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ProbeResult>, sqlx::Error> {
    let chunks = sqlx::query!(
        "select probe_id, hour, data from result_chunks
          where ($1::uuid[] is null or probe_id = any($1)) and hour > $2::timestamptz - interval '1 hour' and hour < $3",
        probes,
        from,
        to,
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut found = Vec::new();
    for c in chunks {
        let decoded = super::chunk::decode(c.probe_id, c.hour, &c.data).map_err(chunk_error)?;
        found.extend(decoded.into_iter().filter(|r| r.at >= from && r.at < to));
    }
    Ok(found)
}

/// Number of stored results of a probe, compacted or not (tests and benchmarks).
#[tracing::instrument(skip_all)]
pub async fn count_results(pool: &PgPool, probe_id: Option<Uuid>) -> Result<i64, sqlx::Error> {
    let mut tx = snapshot(pool).await?;
    let hot = sqlx::query_scalar!(
        r#"select count(*) as "count!" from results where $1::uuid is null or probe_id = $1"#,
        probe_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let compacted = sqlx::query_scalar!(
        r#"select coalesce(sum(n), 0)::int8 as "count!" from result_chunks where $1::uuid is null or probe_id = $1"#,
        probe_id
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(hot + compacted)
}

/// What one compaction did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// Chunks written (new, or merged with results that arrived after their hour was compacted).
    pub chunks: usize,
    pub results: usize,
    /// Whole hours compacted.
    pub hours: usize,
    /// Day partitions emptied and dropped.
    pub partitions: usize,
}

/// Probes per compaction transaction: an hour of 500 probes is about 30,000 rows at one check a
/// minute, a few megabytes in memory.
const COMPACT_BATCH: usize = 500;

/// Compacts raw results into chunks (`storage::chunk`), one per probe and hour:
/// - whole hours from the compaction watermark up to `before`, at most `max_hours` per call, in
///   batches of probes; then the watermark moves past the hour;
/// - then each day's partition that lies wholly before the watermark (and the default
///   partition's rows before it): what is left there (results that arrived late, probes
///   deleted) is merged into its chunks, and the partition is dropped.
///
/// Rows move by `delete … returning` in the transaction that writes their chunk, so a result is
/// in exactly one of the two places in any snapshot, and one inserted meanwhile stays for a later
/// run. Each transaction takes the rollup runs' lock: a rollup run reads raw rows from both
/// places and must not see a move half-way.
#[tracing::instrument(skip(pool))]
pub async fn compact(pool: &PgPool, before: DateTime<Utc>, max_hours: usize) -> Result<Compaction, sqlx::Error> {
    // Never ahead of the rollups: minutes of compacted hours are not stored as rows, so the
    // rollup run must have seen them first.
    let rolled_up = sqlx::query_scalar!("select watermark from rollup_watermark").fetch_one(pool).await?;
    let before = before.min(rolled_up);
    let before = before.duration_trunc(Duration::hours(1)).unwrap_or(before);
    let mut done = Compaction::default();
    let batches = probe_batches(pool).await?;
    let start = match sqlx::query_scalar!("select compacted_until from rollup_watermark").fetch_optional(pool).await? {
        Some(Some(at)) => at,
        // Never compacted: from the oldest result.
        _ => match sqlx::query_scalar!("select min(at) from results where at < $1", before).fetch_one(pool).await? {
            Some(oldest) => oldest.duration_trunc(Duration::hours(1)).unwrap_or(oldest),
            None => before,
        },
    };
    let mut hour = start;
    while hour + Duration::hours(1) <= before && done.hours < max_hours {
        let next = hour + Duration::hours(1);
        for batch in &batches {
            let mut tx = pool.begin().await?;
            lock_rollups(&mut tx).await?;
            let rows = take_rows(&mut tx, Some(batch), hour, next).await?;
            merge_chunks(&mut tx, rows, &mut done).await?;
            tx.commit().await?;
        }
        let mut tx = pool.begin().await?;
        lock_rollups(&mut tx).await?;
        sqlx::query!("update rollup_watermark set compacted_until = $1", next).execute(&mut *tx).await?;
        tx.commit().await?;
        // Readers now compute the hour's minutes from its results (`rollups::minute_rows`).
        for batch in &batches {
            sqlx::query!(
                "delete from rollups where level = 0 and probe_id = any($1) and bucket >= $2 and bucket < $3",
                batch,
                hour,
                next
            )
            .execute(pool)
            .await?;
        }
        done.hours += 1;
        hour = next;
    }
    // What is left before the watermark's day: late results and deleted probes' rows.
    let day = hour.date_naive();
    for (name, partition_day) in day_partitions(pool).await? {
        if partition_day >= day {
            continue;
        }
        let (from, to) = (day_start(partition_day), day_start(partition_day.succ_opt().unwrap_or(partition_day)));
        let mut tx = pool.begin().await?;
        lock_rollups(&mut tx).await?;
        // Locked before its rows are taken: a result committed into the partition between the
        // delete and the drop would be dropped with it. Writers of other days do not wait.
        // Names come from the catalog and match `results_YYYYMMDD`: safe to format.
        sqlx::query(&format!("lock table {name} in access exclusive mode")).execute(&mut *tx).await?;
        let rows = take_rows(&mut tx, None, from, to).await?;
        merge_chunks(&mut tx, rows, &mut done).await?;
        sqlx::query(&format!("drop table {name}")).execute(&mut *tx).await?;
        tx.commit().await?;
        done.partitions += 1;
    }
    let mut tx = pool.begin().await?;
    lock_rollups(&mut tx).await?;
    let rows = sqlx::query_as!(
        ResultRow,
        r#"delete from results_default where at < $1
           returning probe_id, at, outcome, status, error_class, dns_us, connect_us, tls_us, ttfb_us, transfer_us,
              total_us, response_bytes, request_id, detail, body_excerpt, cert_days_left,
              components as "components: Json<Vec<Component>>", pool as "pool: Json<PoolReading>",
              echo_sent, echo_received, location"#,
        day_start(day),
    )
    .fetch_all(&mut *tx)
    .await?;
    merge_chunks(&mut tx, rows, &mut done).await?;
    tx.commit().await?;
    Ok(done)
}

/// Every probe's id, in batches of [`COMPACT_BATCH`].
#[tracing::instrument(skip_all)]
async fn probe_batches(pool: &PgPool) -> Result<Vec<Vec<Uuid>>, sqlx::Error> {
    let ids = sqlx::query_scalar!("select probe_id from probes order by probe_id").fetch_all(pool).await?;
    Ok(ids.chunks(COMPACT_BATCH).map(<[Uuid]>::to_vec).collect())
}

fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[tracing::instrument(skip_all)]
async fn lock_rollups(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!("select pg_advisory_xact_lock($1)", super::rollups::ROLLUP_LOCK).fetch_one(&mut **tx).await?;
    Ok(())
}

/// Deletes and returns the raw rows of `probes` (all when `None`) in [from, to).
#[tracing::instrument(skip(tx, probes))]
async fn take_rows(
    tx: &mut Transaction<'_, Postgres>,
    probes: Option<&[Uuid]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ResultRow>, sqlx::Error> {
    sqlx::query_as!(
        ResultRow,
        r#"delete from results where ($1::uuid[] is null or probe_id = any($1)) and at >= $2 and at < $3
           returning probe_id, at, outcome, status, error_class, dns_us, connect_us, tls_us, ttfb_us, transfer_us,
              total_us, response_bytes, request_id, detail, body_excerpt, cert_days_left,
              components as "components: Json<Vec<Component>>", pool as "pool: Json<PoolReading>",
              echo_sent, echo_received, location"#,
        probes,
        from,
        to,
    )
    .fetch_all(&mut **tx)
    .await
}

/// Writes rows into their (probe, hour) chunks, merged with the chunks already there.
#[tracing::instrument(skip_all, fields(rows = rows.len()))]
async fn merge_chunks(
    tx: &mut Transaction<'_, Postgres>,
    rows: Vec<ResultRow>,
    done: &mut Compaction,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut chunks: std::collections::BTreeMap<(Uuid, DateTime<Utc>), Vec<ProbeResult>> = Default::default();
    for r in rows {
        let hour = r.at.duration_trunc(Duration::hours(1)).unwrap_or(r.at);
        chunks.entry((r.probe_id, hour)).or_default().push(result_from(r));
    }
    let (probes, hours): (Vec<Uuid>, Vec<DateTime<Utc>>) = chunks.keys().copied().unzip();
    let existing = sqlx::query!(
        "select c.probe_id, c.hour, c.data from result_chunks c
           join unnest($1::uuid[], $2::timestamptz[]) as k(p, h) on c.probe_id = k.p and c.hour = k.h
          for update of c",
        &probes,
        &hours,
    )
    .fetch_all(&mut **tx)
    .await?;
    for c in existing {
        let earlier = super::chunk::decode(c.probe_id, c.hour, &c.data).map_err(chunk_error)?;
        chunks.entry((c.probe_id, c.hour)).or_default().extend(earlier);
    }
    let (mut ns, mut datas) = (Vec::with_capacity(chunks.len()), Vec::with_capacity(chunks.len()));
    for ((_, hour), results) in &mut chunks {
        results.sort_by_key(|r| r.at);
        done.results += results.len();
        ns.push(i32::try_from(results.len()).unwrap_or(i32::MAX));
        datas.push(super::chunk::encode(*hour, results));
    }
    sqlx::query!(
        "insert into result_chunks (probe_id, hour, n, data)
         select * from unnest($1::uuid[], $2::timestamptz[], $3::int4[], $4::bytea[])
         on conflict (probe_id, hour) do update set n = excluded.n, data = excluded.data",
        &probes,
        &hours,
        &ns,
        &datas,
    )
    .execute(&mut **tx)
    .await?;
    done.chunks += chunks.len();
    Ok(())
}

/// The daily partitions of `results` and their days.
#[tracing::instrument(skip(pool))]
async fn day_partitions(pool: &PgPool) -> Result<Vec<(String, NaiveDate)>, sqlx::Error> {
    let names = sqlx::query_scalar!(
        r#"select c.relname::text as "name!" from pg_inherits i join pg_class c on c.oid = i.inhrelid
            where i.inhparent = 'results'::regclass order by 1"#,
    )
    .fetch_all(pool)
    .await?;
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let day = name.strip_prefix("results_").and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())?;
            (partition_name(day) == name).then_some((name, day))
        })
        .collect())
}

/// Drops compacted hours before `cutoff` (raw retention).
#[tracing::instrument(skip(pool))]
pub async fn prune_chunks(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("delete from result_chunks where hour < $1", cutoff).execute(pool).await?;
    Ok(done.rows_affected())
}

#[tracing::instrument(skip(pool))]
/// Confirmed state changes of `probes`, newest first.
pub async fn list_state_changes(pool: &PgPool, probes: &[Uuid], limit: i64) -> Result<Vec<StateChange>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select c.probe_id, p.service_id, c.at, c.from_state, c.to_state, c.request_id, c.error_class,
                  c.quorum as "quorum: Json<QuorumNote>"
           from state_changes c join probes p using (probe_id)
          where c.probe_id = any($1) order by c.at desc, c.state_change_id desc limit $2"#,
        probes,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(StateChange {
                probe_id: r.probe_id,
                service_id: r.service_id,
                at: r.at,
                from: unknown_state::parse(&r.from_state)?,
                to: Outcome::parse(&r.to_state)?,
                request_id: r.request_id,
                error: r.error_class.as_deref().and_then(ErrorClass::parse),
                quorum: r.quorum.map(|q| q.0),
            })
        })
        .collect())
}

/// What happened to a pushed result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushReceipt {
    /// Newly stored.
    Stored,
    /// This (agent, seq) was stored before, at that time: nothing was written again.
    Duplicate(DateTime<Utc>),
}

/// When the push with this idempotency key was stored, if it was.
#[tracing::instrument(skip_all, fields(probe_id = %probe_id))]
pub async fn find_push_receipt(
    pool: &PgPool,
    probe_id: Uuid,
    agent_id: &str,
    seq: i64,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        "select at from push_receipts where probe_id = $1 and agent_id = $2 and seq = $3",
        probe_id,
        agent_id,
        seq
    )
    .fetch_optional(pool)
    .await
}

/// The transaction a push is judged and stored in. `serialise` (several replicas) holds the
/// probe's advisory lock until it ends, so pushes of one probe reaching different replicas are
/// judged one after the other, each from the state the previous one stored.
#[tracing::instrument(skip(pool))]
pub async fn begin_push(
    pool: &PgPool,
    probe: Uuid,
    serialise: bool,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if serialise {
        sqlx::query!("select pg_advisory_xact_lock(hashtextextended($1::text, 7472))", probe.to_string())
            .fetch_one(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// Stores one pushed result with its idempotency key, its state row and state change, in the
/// caller's transaction; the caller commits (a duplicate is for it to roll back) and answers
/// 2xx only after the commit.
#[tracing::instrument(skip_all, fields(probe_id = %result.probe_id, agent_id, seq))]
pub async fn store_push(
    tx: &mut Transaction<'_, Postgres>,
    agent_id: &str,
    seq: i64,
    result: &ProbeResult,
    state: Option<&StateRow>,
    change: Option<&StateChange>,
) -> Result<PushReceipt, sqlx::Error> {
    if let Some(first) = claim_receipt(tx, result.probe_id, agent_id, seq, result.at).await? {
        return Ok(PushReceipt::Duplicate(first));
    }
    store_judged(tx, result, state, change).await?;
    Ok(PushReceipt::Stored)
}

/// Records the idempotency key (`agent_id`, `seq`) of a result of `probe`; answers when the same
/// key was stored before (a retry: store nothing), `None` when it is new.
#[tracing::instrument(skip_all, fields(probe_id = %probe, agent_id, seq))]
pub async fn claim_receipt(
    tx: &mut Transaction<'_, Postgres>,
    probe: Uuid,
    agent_id: &str,
    seq: i64,
    at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let inserted = sqlx::query!(
        "insert into push_receipts (probe_id, agent_id, seq, at) values ($1, $2, $3, $4) on conflict do nothing",
        probe,
        agent_id,
        seq,
        at,
    )
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(None);
    }
    sqlx::query_scalar!(
        "select at from push_receipts where probe_id = $1 and agent_id = $2 and seq = $3",
        probe,
        agent_id,
        seq,
    )
    .fetch_one(&mut **tx)
    .await
    .map(Some)
}

/// Stores one judged result (pushed, or from a location) with the probe's state after it and
/// the change it confirmed, in the caller's transaction.
#[tracing::instrument(skip_all, fields(probe_id = %result.probe_id))]
pub async fn store_judged(
    tx: &mut Transaction<'_, Postgres>,
    result: &ProbeResult,
    state: Option<&StateRow>,
    change: Option<&StateChange>,
) -> Result<(), sqlx::Error> {
    insert_with_late(tx, std::slice::from_ref(result)).await?;
    if let Some(s) = state {
        upsert_states(tx, std::slice::from_ref(s)).await?;
    }
    if let Some(c) = change {
        insert_changes(tx, std::slice::from_ref(c)).await?;
    }
    Ok(())
}

/// The rollup watermark, read `for share` so that the rollup task (which takes it `for update`)
/// waits for this transaction.
#[tracing::instrument(skip_all)]
async fn share_watermark(tx: &mut Transaction<'_, Postgres>) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar!("select watermark from rollup_watermark for share").fetch_one(&mut **tx).await
}

/// Forgets batch ids older than `keep` (a retry comes within seconds; a day is plenty).
#[tracing::instrument(skip(pool))]
pub async fn prune_batches(pool: &PgPool, keep: Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("delete from ingest_batches where written_at < now() - $1::interval", keep as _)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Receipts older than `keep` are no longer needed to recognise retries.
#[tracing::instrument(skip_all)]
pub async fn prune_push_receipts(pool: &PgPool, keep: Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("delete from push_receipts where received_at < now() - $1::interval", keep as _)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
