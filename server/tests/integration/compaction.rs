//! Compaction of raw results into per-probe hourly chunks: every reader of raw results answers
//! the same before and after, late results for compacted hours are kept and merged, and a day's
//! partition goes once its hours are compacted.

use app::model::{Outcome, ProbeResult};
use chrono::{Duration, DurationRound, Utc};
use server::monitor::{pipeline, series};
use server::storage::results;
use server::storage::rollups::{self, Level};
use server::storage::{incidents, locations, postmortems};
use uuid::Uuid;

use crate::common;

/// Results as a set: compaction keeps each one, not the order of equal timestamps.
fn sorted(mut v: Vec<ProbeResult>) -> Vec<ProbeResult> {
    v.sort_by(|a, b| (a.at, a.probe_id, &a.request_id).cmp(&(b.at, b.probe_id, &b.request_id)));
    v
}

#[tokio::test]
async fn compacted_hours_read_back_exactly_as_their_rows_did_and_late_results_are_merged() {
    let pool = common::fresh_db().await;
    // 28 hours: the compacted span crosses midnight, so a whole day's partition empties.
    let seeded = server::cli::seed::seed(&pool, 8, Duration::hours(28)).await.expect("seed");
    let probes: Vec<Uuid> =
        sqlx::query_scalar("select probe_id from probes order by name").fetch_all(&pool).await.expect("probes");
    assert_eq!(probes.len(), 16);
    let now = Utc::now();
    let (from, to) = (now - Duration::hours(29), now + Duration::seconds(1));

    let list = sorted(results::list_results(&pool, &probes, from, to, 1_000_000).await.expect("list"));
    assert_eq!(list.len(), seeded.results);
    let newest = results::list_results(&pool, &probes, from, to, 25).await.expect("list");
    let window = (now - Duration::hours(20), now - Duration::hours(19));
    let in_window = results::list_results(&pool, &probes, window.0, window.1, 7).await.expect("list");
    let by_hour = rollups::raw_rollups(&pool, &probes, from, to, Level::Hour).await.expect("raw rollups");
    let places = locations::figures(&pool, &probes, from, to, 600).await.expect("figures");
    let first_failure = postmortems::first_failure(&pool, &probes, from, to).await.expect("first failure");
    assert!(first_failure.is_some(), "the seed has failing checks");
    // svc-0007's push probe fails most of its checks.
    let failing = sqlx::query_scalar::<_, Uuid>("select probe_id from probes where name = 'svc-0007-api'")
        .fetch_one(&pool)
        .await
        .expect("probe");
    let failing_since = incidents::failing_since(&pool, failing, now - Duration::hours(10)).await.expect("since");
    let summaries = series::summaries(&pool, &probes, from, to).await.expect("summaries");
    let minute_rollups = |pool: sqlx::PgPool, probes: Vec<Uuid>| async move {
        let mut rows = rollups::read_rollups(&pool, Level::Minute, &probes, from, to).await.expect("minutes");
        rows.sort_by_key(|(k, _)| *k);
        rows
    };
    let minutes = minute_rollups(pool.clone(), probes.clone()).await;
    assert!(minutes.len() > 16 * 60 * 27, "{} minute rows", minutes.len());

    let before = now - Duration::hours(2);
    let done = results::compact(&pool, before, 100).await.expect("compact");
    let cut = before.duration_trunc(Duration::hours(1)).expect("hour");
    assert!(done.hours >= 24, "{done:?}");
    assert!(done.partitions >= 1, "a day wholly before the compacted hours was dropped: {done:?}");
    let left: i64 = sqlx::query_scalar("select count(*) from results").fetch_one(&pool).await.expect("count");
    assert_eq!(done.results as i64 + left, seeded.results as i64);
    let oldest_row: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("select min(at) from results").fetch_one(&pool).await.expect("min");
    assert!(oldest_row.is_some_and(|at| at >= cut), "rows before {cut} remain: {oldest_row:?}");
    let yesterday = format!("results_{}", (cut - Duration::days(1)).format("%Y%m%d"));
    let gone: bool =
        sqlx::query_scalar("select to_regclass($1) is null").bind(&yesterday).fetch_one(&pool).await.expect("regclass");
    assert!(gone, "{yesterday} was emptied and dropped");
    // The compact form: well under the 275 bytes a row took with its index.
    let per_result: f64 = sqlx::query_scalar("select sum(length(data))::float8 / sum(n) from result_chunks")
        .fetch_one(&pool)
        .await
        .expect("size");
    assert!(per_result < 40.0, "{per_result} bytes per compacted result");

    assert_eq!(results::count_results(&pool, None).await.expect("count"), seeded.results as i64);
    assert_eq!(sorted(results::list_results(&pool, &probes, from, to, 1_000_000).await.expect("list")), list);
    // The newest `limit`, newest first. Probes checked at the same instant may be cut at the
    // limit either way: compare the times, and that each is a stored result.
    let times = |v: &[ProbeResult]| v.iter().map(|r| r.at).collect::<Vec<_>>();
    for (got, want) in [
        (results::list_results(&pool, &probes, from, to, 25).await.expect("list"), &newest),
        (results::list_results(&pool, &probes, window.0, window.1, 7).await.expect("list"), &in_window),
    ] {
        assert_eq!(times(&got), times(want));
        assert!(got.iter().all(|r| {
            list.binary_search_by(|x| (x.at, x.probe_id, &x.request_id).cmp(&(r.at, r.probe_id, &r.request_id))).is_ok()
        }));
    }
    assert_eq!(rollups::raw_rollups(&pool, &probes, from, to, Level::Hour).await.expect("raw rollups"), by_hour);
    assert_eq!(locations::figures(&pool, &probes, from, to, 600).await.expect("figures"), places);
    assert_eq!(postmortems::first_failure(&pool, &probes, from, to).await.expect("first failure"), first_failure);
    assert_eq!(
        incidents::failing_since(&pool, failing, now - Duration::hours(10)).await.expect("since"),
        failing_since
    );
    assert_eq!(series::summaries(&pool, &probes, from, to).await.expect("summaries"), summaries);
    // Minutes of compacted hours are computed from their results, the same as the rows were;
    // the rows are gone.
    assert_eq!(minute_rollups(pool.clone(), probes.clone()).await, minutes);
    let stored: i64 = sqlx::query_scalar("select count(*) from rollups where level = 0 and bucket < $1")
        .bind(cut)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 0, "minute rows of compacted hours");

    // A result arriving for a compacted hour of a dropped day (an agent's spool): it is stored,
    // read at once, rolled up with the compacted results of its minute, and merged next time.
    let day_start = cut.duration_trunc(Duration::days(1)).expect("day");
    let late_at = day_start - Duration::minutes(30) + Duration::seconds(17);
    let mut late = server::cli::bench::sample(probes[0], late_at, 4_000_000);
    late.outcome = Outcome::Degraded;
    results::write_batch(&pool, Uuid::new_v4(), &[late.clone()], &[], &[]).await.expect("late write");
    let minute_start = late_at.duration_trunc(Duration::minutes(1)).expect("minute");
    let minute = (minute_start, minute_start + Duration::minutes(1));
    let in_minute = results::list_results(&pool, &probes[..1], minute.0, minute.1, 100).await.expect("list");
    assert!(in_minute.contains(&late), "the late result is read with the compacted ones");
    assert!(in_minute.len() > 1, "{in_minute:?}");
    pipeline::roll_up_to(&pool, Utc::now()).await.expect("rollup");
    let after_late = series::summaries(&pool, &probes[..1], from, to).await.expect("summaries");
    assert_eq!(
        after_late[&probes[0]].count(),
        summaries[&probes[0]].count() + 1,
        "its minute was recomputed from both"
    );
    let merged = results::compact(&pool, before, 100).await.expect("compact");
    assert_eq!((merged.hours, merged.chunks), (0, 1), "{merged:?}");
    let in_default: i64 =
        sqlx::query_scalar("select count(*) from results_default").fetch_one(&pool).await.expect("count");
    assert_eq!(in_default, 0);
    let merged_minute = results::list_results(&pool, &probes[..1], minute.0, minute.1, 100).await.expect("list");
    assert_eq!(sorted(merged_minute), sorted(in_minute));
    assert_eq!(results::count_results(&pool, None).await.expect("count"), seeded.results as i64 + 1);

    // Retention takes whole compacted hours.
    let pruned = results::prune_chunks(&pool, now - Duration::hours(24)).await.expect("prune");
    assert!(pruned >= 6, "{pruned}");
    let oldest = results::list_results(&pool, &probes, from, to, 1_000_000).await.expect("list");
    assert!(
        oldest.iter().all(|r| r.at >= (now - Duration::hours(24)).duration_trunc(Duration::hours(1)).expect("hour"))
    );
}
