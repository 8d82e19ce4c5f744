//! Reading results back as charts and percentiles: rollups for everything before the rollup
//! watermark, raw rows after it, merged exactly (the histograms add up).
//!
//! A series has at most [`MAX_POINTS`] buckets whatever the range, and reads the coarsest rollup
//! level whose width divides the step, so 30 days costs about what an hour costs.

use std::collections::{BTreeMap, HashMap};

use app::model::{Probe, ProbeKind, Series, SeriesPoint};
use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::storage::rollups::bucket::Rollup;
use crate::storage::rollups::{self, Level};

pub const MAX_POINTS: i64 = 1_000;

/// Steps a series may use, in seconds: round numbers a person reads off an axis.
const STEPS: [i64; 16] =
    [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 345600, 604800, 2592000];

/// The step actually used: at least the requested one, at least range / MAX_POINTS, rounded up to
/// a listed step.
pub fn choose_step(from: DateTime<Utc>, to: DateTime<Utc>, requested: Option<i64>) -> i64 {
    let span = (to - from).num_seconds().max(1);
    let floor = requested.unwrap_or(0).max((span + MAX_POINTS - 1) / MAX_POINTS);
    STEPS.iter().copied().find(|s| *s >= floor).unwrap_or(STEPS[STEPS.len() - 1])
}

fn level_for(step: i64) -> Level {
    if step % 604_800 == 0 {
        Level::Week
    } else if step % 86_400 == 0 {
        Level::Day
    } else if step % 3_600 == 0 {
        Level::Hour
    } else {
        Level::Minute
    }
}

fn align_down(t: DateTime<Utc>, step: i64) -> DateTime<Utc> {
    let s = t.timestamp();
    Utc.timestamp_opt(s - s.rem_euclid(step), 0).single().unwrap_or(t)
}

/// A service's enabled probes as every chart of it reads them: (traffic, gauges). Traffic
/// (HTTP, readiness, push) gives latency and errors; gauges (metrics scrapes) give the pool.
pub fn split_probes(probes: &[Probe]) -> (Vec<Uuid>, Vec<Uuid>) {
    let (gauges, traffic): (Vec<&Probe>, Vec<&Probe>) =
        probes.iter().filter(|p| p.spec.enabled).partition(|p| p.spec.kind == ProbeKind::Metrics);
    (traffic.iter().map(|p| p.id).collect(), gauges.iter().map(|p| p.id).collect())
}

/// The chart series of one probe over [from, to).
pub async fn series(
    pool: &PgPool,
    probe_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Option<i64>,
) -> Result<Series, sqlx::Error> {
    series_of(pool, &[probe_id], from, to, step).await.map(|s| Series { probe_id, ..s })
}

/// One series merging several probes bucket by bucket (a service's probes of one kind); its
/// `probe_id` is the first probe's, or nil for none.
///
/// Buckets that ended before the rollup watermark do not change until the rollups' generation
/// does (late results, pruning), so they come from [`CLOSED`] when an earlier request computed
/// them: a 30-day chart then reads only its open end from the database, as a 1-hour chart does.
pub async fn series_of(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Option<i64>,
) -> Result<Series, sqlx::Error> {
    let probe_id = probes.first().copied().unwrap_or_default();
    let step = choose_step(from, to, step);
    let level = level_for(step);
    let start = align_down(from, step);
    let step_secs = u64::try_from(step).unwrap_or(60);
    if probes.is_empty() {
        return Ok(Series { probe_id, from: start, to, step_secs, points: Vec::new() });
    }
    let (watermark, generation) = rollups::watermark_and_generation(pool).await?;
    let key = ClosedKey::new(probes, step);
    let (mut points, read_from) = match CLOSED.get(&key, generation, start, to) {
        Some((cached, end)) => (cached, end),
        None => (Vec::new(), start),
    };
    let fresh = read_buckets(pool, probes, level, step, read_from, to, watermark).await?;
    // Buckets that end at or before the watermark are final for this generation; only those this
    // read saw whole can be cached, so a range ending in the past does not claim later ones.
    let closed = align_down(watermark, step).min(align_down(to, step));
    CLOSED.put(key, generation, start, closed, fresh.iter().filter(|p| p.at < closed));
    points.extend(fresh);
    Ok(Series { probe_id, from: start, to, step_secs, points })
}

/// The buckets of [from, to) computed from the database: rollups before the watermark, raw rows
/// after it.
async fn read_buckets(
    pool: &PgPool,
    probes: &[Uuid],
    level: Level,
    step: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    watermark: DateTime<Utc>,
) -> Result<Vec<SeriesPoint>, sqlx::Error> {
    let mut buckets: BTreeMap<DateTime<Utc>, Bucket> = BTreeMap::new();
    if from < watermark {
        for row in rollups::read_chart_rows(pool, level, probes, from, to.min(watermark)).await? {
            let at = align_down(row.bucket, step);
            match buckets.entry(at) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(Bucket::One(row));
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => {
                    let mut r = row.counts.clone();
                    r.latency = row.latency();
                    slot.get_mut().merge(r);
                }
            }
        }
    }
    let raw_from = from.max(watermark);
    if raw_from < to {
        for ((_, minute), r) in rollups::raw_rollups(pool, probes, raw_from, to, Level::Minute).await? {
            add(&mut buckets, align_down(minute, step), r);
        }
    }
    Ok(buckets.into_iter().map(|(at, b)| b.to_point(at)).collect())
}

/// Which chart a cached run of closed buckets belongs to.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ClosedKey {
    probes: Vec<Uuid>,
    step: i64,
}

impl ClosedKey {
    fn new(probes: &[Uuid], step: i64) -> Self {
        let mut probes = probes.to_vec();
        probes.sort_unstable();
        Self { probes, step }
    }
}

/// Closed buckets of one chart: every bucket in [from, horizon), for one rollup generation.
struct ClosedRun {
    generation: i64,
    from: DateTime<Utc>,
    horizon: DateTime<Utc>,
    points: BTreeMap<DateTime<Utc>, SeriesPoint>,
}

/// Charts kept at most (each at most [`MAX_POINTS`] points); past it the cache starts over.
const CLOSED_CHARTS: usize = 512;

/// Closed chart buckets of recent requests. Keyed by probe ids (unique across databases) and
/// checked against the database's rollup generation on every use.
static CLOSED: std::sync::LazyLock<ClosedCache> = std::sync::LazyLock::new(ClosedCache::default);

#[derive(Default)]
struct ClosedCache {
    runs: std::sync::Mutex<HashMap<ClosedKey, ClosedRun>>,
}

impl ClosedCache {
    /// The cached points in [start, min(horizon, to)) and the horizon, when the run covers `start`.
    fn get(
        &self,
        key: &ClosedKey,
        generation: i64,
        start: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Option<(Vec<SeriesPoint>, DateTime<Utc>)> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let run = runs.get(key).filter(|r| r.generation == generation && r.from <= start && start < r.horizon)?;
        let end = run.horizon.min(to);
        Some((run.points.range(start..end).map(|(_, p)| p.clone()).collect(), end))
    }

    /// Records closed buckets computed from `start` on (those before `closed`).
    fn put<'a>(
        &self,
        key: ClosedKey,
        generation: i64,
        start: DateTime<Utc>,
        closed: DateTime<Utc>,
        points: impl Iterator<Item = &'a SeriesPoint>,
    ) {
        let step = key.step;
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.len() >= CLOSED_CHARTS && !runs.contains_key(&key) {
            runs.clear();
        }
        let run = runs.entry(key).or_insert_with(|| ClosedRun {
            generation,
            from: start,
            horizon: start,
            points: BTreeMap::new(),
        });
        let extends = run.generation == generation && run.from <= start && start <= run.horizon;
        if !extends {
            *run = ClosedRun { generation, from: start, horizon: start, points: BTreeMap::new() };
        }
        for p in points {
            run.points.insert(p.at, p.clone());
        }
        run.horizon = run.horizon.max(closed);
        // A chart left open for weeks moves on: beyond twice a chart's points, the oldest go.
        while run.points.len() > 2 * MAX_POINTS as usize {
            match run.points.pop_first() {
                Some((at, _)) => run.from = at + Duration::seconds(step),
                None => break,
            }
        }
    }
}

/// A chart bucket: one stored row (percentiles read from its encoded histogram), or several
/// merged.
enum Bucket {
    One(rollups::ChartRow),
    Merged(Rollup),
}

impl Bucket {
    fn merge(&mut self, r: Rollup) {
        match self {
            Bucket::Merged(acc) => acc.merge(&r),
            Bucket::One(row) => {
                let mut acc = row.counts.clone();
                acc.latency = row.latency();
                acc.merge(&r);
                *self = Bucket::Merged(acc);
            }
        }
    }

    fn to_point(&self, at: DateTime<Utc>) -> SeriesPoint {
        match self {
            Bucket::Merged(r) => r.to_point(at),
            Bucket::One(row) => row.counts.to_point_with(at, row.percentiles()),
        }
    }
}

/// A bucket's first rollup is moved in; later ones are merged (most buckets get exactly one).
fn add(buckets: &mut BTreeMap<DateTime<Utc>, Bucket>, at: DateTime<Utc>, r: Rollup) {
    match buckets.entry(at) {
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(Bucket::Merged(r));
        }
        std::collections::btree_map::Entry::Occupied(mut slot) => slot.get_mut().merge(r),
    }
}

fn ceil_to(t: DateTime<Utc>, level: Level) -> DateTime<Utc> {
    let down = level.truncate(t);
    if down == t { t } else { down + level.width() }
}

/// [a, b) split into the fewest rollup rows: whole weeks, then whole days, hours and minutes at
/// the edges. `a` and `b` are minute-aligned.
///
/// With `open_end` (b is the rollup watermark: no rollup holds anything at or after it), the last
/// week, day or hour row is used although it is partial: it holds exactly the data up to `b`.
pub fn cover(a: DateTime<Utc>, b: DateTime<Utc>, open_end: bool) -> Vec<(Level, DateTime<Utc>, DateTime<Utc>)> {
    fn go(a: DateTime<Utc>, b: DateTime<Utc>, level: Level, out: &mut Vec<(Level, DateTime<Utc>, DateTime<Utc>)>) {
        if a >= b {
            return;
        }
        let below = match level {
            Level::Minute => {
                out.push((Level::Minute, a, b));
                return;
            }
            Level::Hour => Level::Minute,
            Level::Day => Level::Hour,
            Level::Week => Level::Day,
        };
        let (up, down) = (ceil_to(a, level), level.truncate(b));
        if up >= down {
            go(a, b, below, out);
            return;
        }
        go(a, up, below, out);
        out.push((level, up, down));
        go(down, b, below, out);
    }
    let mut out = Vec::new();
    if a >= b {
        return out;
    }
    if open_end {
        for level in [Level::Week, Level::Day, Level::Hour] {
            let up = ceil_to(a, level);
            let last = level.truncate(b);
            if up <= last {
                go(a, up, level, &mut out);
                out.push((level, up, last + level.width()));
                return out;
            }
        }
    }
    go(a, b, Level::Week, &mut out);
    out
}

/// Each probe's results over [from, to) merged into one rollup (its percentiles, error rate…),
/// reading as few rollup rows as the range allows.
pub async fn summaries(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<HashMap<Uuid, Rollup>, sqlx::Error> {
    let watermark = rollups::watermark(pool).await?;
    let mut out: HashMap<Uuid, Rollup> = HashMap::new();
    let a = Level::Minute.truncate(from);
    let b = to.min(watermark);
    let open_end = to >= watermark;
    // The segments are independent queries: run them at once, then add every row's histogram
    // into a dense bucket array per probe.
    let segments = cover(a, Level::Minute.truncate(b).max(a), open_end);
    let fetched = futures::future::try_join_all(
        segments.iter().map(|(level, start, end)| rollups::fetch_encoded(pool, *level, probes, *start, *end)),
    )
    .await?;
    let mut dense = HashMap::new();
    for rows in fetched {
        rows.merge_into(&mut dense);
    }
    for (probe, (mut r, latency)) in dense {
        r.latency.merge(&latency.finish());
        out.insert(probe, r);
    }
    let raw_from = a.max(Level::Minute.truncate(b).max(a));
    if raw_from < to {
        for ((probe, _), r) in rollups::raw_rollups(pool, probes, raw_from, to, Level::Day).await? {
            out.entry(probe).or_default().merge(&r);
        }
    }
    Ok(out)
}

/// The p95 latency (ms) of each group of probes (a service's traffic probes) in `buckets` equal
/// steps ending at `to`, oldest first; `None` where a step had no timed check. A tile's sparkline.
pub async fn p95_trends(
    pool: &PgPool,
    groups: &HashMap<Uuid, Vec<Uuid>>,
    to: DateTime<Utc>,
    step: Duration,
    buckets: usize,
) -> Result<HashMap<Uuid, Vec<Option<f64>>>, sqlx::Error> {
    let step_secs = step.num_seconds().max(60);
    let end = align_down(to, step_secs) + Duration::seconds(step_secs);
    let from = end - Duration::seconds(step_secs * buckets as i64);
    let owner: HashMap<Uuid, Uuid> = groups.iter().flat_map(|(g, ps)| ps.iter().map(move |p| (*p, *g))).collect();
    let probes: Vec<Uuid> = owner.keys().copied().collect();
    let watermark = rollups::watermark(pool).await?;
    let mut rows = Vec::new();
    if from < watermark {
        rows.extend(rollups::read_rollups(pool, Level::Minute, &probes, from, end.min(watermark)).await?);
    }
    if from.max(watermark) < to {
        rows.extend(rollups::raw_rollups(pool, &probes, from.max(watermark), to, Level::Minute).await?);
    }
    let mut acc: HashMap<(Uuid, usize), Rollup> = HashMap::new();
    for ((probe, minute), r) in rows {
        let (Some(group), Ok(i)) = (owner.get(&probe), usize::try_from((minute - from).num_seconds() / step_secs))
        else {
            continue;
        };
        if i < buckets {
            acc.entry((*group, i)).or_default().merge(&r);
        }
    }
    let mut out: HashMap<Uuid, Vec<Option<f64>>> = groups.keys().map(|g| (*g, vec![None; buckets])).collect();
    for ((group, i), r) in acc {
        if let Some(slot) = out.get_mut(&group).and_then(|v| v.get_mut(i)) {
            *slot = r.latency.percentile(0.95).map(|us| us / 1000.0);
        }
    }
    Ok(out)
}

/// Parses `from`/`to` query values: RFC 3339, or relative to now as `now`, `now-15m`, `-1h`, `-7d`.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let rest = s.strip_prefix("now").unwrap_or(s);
    if rest.is_empty() {
        return Some(now);
    }
    let rest = rest.strip_prefix('-')?;
    let split = rest.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = rest.split_at(split);
    let n: i64 = n.parse().ok()?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return None,
    };
    now.checked_sub_signed(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn steps_keep_any_range_under_a_thousand_points() {
        let to = t("2026-11-23T12:00:00Z");
        for (span, want) in [
            (Duration::minutes(15), 60),
            (Duration::hours(1), 60),
            (Duration::hours(24), 120),
            (Duration::days(7), 900),
            (Duration::days(30), 3600),
        ] {
            let step = choose_step(to - span, to, None);
            assert_eq!(step, want, "{span:?}");
            assert!(span.num_seconds() / step <= MAX_POINTS);
        }
        assert_eq!(choose_step(to - Duration::hours(1), to, Some(300)), 300, "a coarser request is honoured");
        assert_eq!(level_for(3600), Level::Hour);
        assert_eq!(level_for(604_800), Level::Week);
        assert_eq!(level_for(900), Level::Minute);
    }

    fn rows(parts: &[(Level, DateTime<Utc>, DateTime<Utc>)]) -> i64 {
        parts.iter().map(|(l, s, e)| (*e - *s).num_seconds() / l.width().num_seconds()).sum()
    }

    fn check_contiguous(parts: &[(Level, DateTime<Utc>, DateTime<Utc>)], a: DateTime<Utc>) -> DateTime<Utc> {
        let mut cursor = a;
        for (level, start, end) in parts {
            assert_eq!(*start, cursor, "contiguous: {parts:?}");
            assert_eq!(level.truncate(*start), *start, "aligned: {parts:?}");
            cursor = *end;
        }
        cursor
    }

    #[test]
    fn cover_uses_the_coarsest_rows_and_leaves_nothing_out() {
        let a = t("2026-10-01T22:13:00Z");
        let b = t("2026-10-31T05:47:00Z");
        let parts = cover(a, b, false);
        assert_eq!(check_contiguous(&parts, a), b);
        assert!(parts.iter().any(|p| p.0 == Level::Week), "{parts:?}");
        // At most 47 minutes + 1 + 23 hours + 6 days + weeks + 6 days + 5 hours + 47 minutes.
        assert!(rows(&parts) < 2 * 60 + 2 * 24 + 2 * 7 + 5, "{} rows", rows(&parts));
        assert_eq!(cover(a, a, false), vec![]);
        assert_eq!(cover(t("2026-10-01T10:05:00Z"), t("2026-10-01T10:09:00Z"), false).len(), 1);
    }

    #[test]
    fn an_open_end_reads_the_partial_last_week() {
        let a = t("2026-10-01T22:13:00Z");
        let b = t("2026-10-31T05:47:00Z");
        let parts = cover(a, b, true);
        let end = check_contiguous(&parts, a);
        let last = parts.last().expect("parts");
        assert_eq!(last.0, Level::Week);
        assert!(last.1 <= b && end > b && end - b < Level::Week.width(), "{parts:?}");
        assert!(rows(&parts) < rows(&cover(a, b, false)), "fewer rows than the closed cover");
        // Within one hour there is nothing coarser to use.
        let short = cover(t("2026-10-01T10:05:00Z"), t("2026-10-01T10:09:00Z"), true);
        assert_eq!(short, vec![(Level::Minute, t("2026-10-01T10:05:00Z"), t("2026-10-01T10:09:00Z"))]);
    }

    #[test]
    fn relative_and_absolute_times() {
        let now = t("2026-11-23T12:00:00Z");
        assert_eq!(parse_time("now", now), Some(now));
        assert_eq!(parse_time("now-15m", now), Some(t("2026-11-23T11:45:00Z")));
        assert_eq!(parse_time("-7d", now), Some(t("2026-11-16T12:00:00Z")));
        assert_eq!(parse_time("2026-11-01T00:00:00Z", now), Some(t("2026-11-01T00:00:00Z")));
        assert_eq!(parse_time("yesterday", now), None);
        assert_eq!(parse_time("now-5w", now), None);
    }
}
