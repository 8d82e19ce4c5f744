//! Postmortems, their frozen charts, comments and published revisions, and the facts about an
//! incident its metrics are computed from.

use app::model::{
    FrozenChart, FrozenChartKind, Impact, Metric, PostmortemComment, PostmortemDoc, PostmortemRevision,
    PostmortemStatus, Section, TimelineEntry,
};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// A postmortem's own columns, read and written back whole by a change.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PostmortemRow {
    pub postmortem_id: Uuid,
    pub incident_id: Uuid,
    pub status: String,
    pub revision: i32,
    pub doc: Json<PostmortemDoc>,
    pub metrics: Json<Vec<Metric>>,
    pub impact: Json<Impact>,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub timeline: Option<Json<Vec<TimelineEntry>>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
    pub published_by: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
}

impl PostmortemRow {
    pub fn status(&self) -> PostmortemStatus {
        PostmortemStatus::parse(&self.status).unwrap_or(PostmortemStatus::Draft)
    }
}

const COLUMNS: &str = "postmortem_id, incident_id, status, revision, doc, metrics, impact, window_from, window_to,
    timeline, created_by, created_at, updated_by, updated_at, published_by, published_at";

/// Stores a new postmortem with its charts; `false` when the incident already has one.
#[tracing::instrument(skip_all)]
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    r: &PostmortemRow,
    charts: &[FrozenChart],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into postmortems (postmortem_id, incident_id, status, revision, doc, metrics, impact,
             window_from, window_to, created_by, updated_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         on conflict (incident_id) do nothing",
    )
    .bind(r.postmortem_id)
    .bind(r.incident_id)
    .bind(&r.status)
    .bind(r.revision)
    .bind(&r.doc)
    .bind(&r.metrics)
    .bind(&r.impact)
    .bind(r.window_from)
    .bind(r.window_to)
    .bind(&r.created_by)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    insert_charts(tx, r.postmortem_id, charts).await?;
    Ok(true)
}

/// Replaces the frozen charts and their window (charts redrawn when the incident outlasted them).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn replace_charts(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    window: (DateTime<Utc>, DateTime<Utc>),
    charts: &[FrozenChart],
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from postmortem_charts where postmortem_id = $1").bind(id).execute(&mut **tx).await?;
    sqlx::query("update postmortems set window_from = $2, window_to = $3 where postmortem_id = $1")
        .bind(id)
        .bind(window.0)
        .bind(window.1)
        .execute(&mut **tx)
        .await?;
    insert_charts(tx, id, charts).await
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn insert_charts(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    charts: &[FrozenChart],
) -> Result<(), sqlx::Error> {
    for c in charts {
        sqlx::query(
            "insert into postmortem_charts (postmortem_id, position, service_id, service_name, kind, svg)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(c.position)
        .bind(c.service_id)
        .bind(&c.service)
        .bind(c.kind.as_str())
        .bind(&c.svg)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn get<'e>(ex: impl PgExecutor<'e>, id: Uuid) -> Result<Option<PostmortemRow>, sqlx::Error> {
    sqlx::query_as(&format!("select {COLUMNS} from postmortems where postmortem_id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn lock(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<Option<PostmortemRow>, sqlx::Error> {
    sqlx::query_as(&format!("select {COLUMNS} from postmortems where postmortem_id = $1 for update"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

#[tracing::instrument(skip_all)]
pub async fn id_for_incident(pool: &PgPool, incident: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("select postmortem_id from postmortems where incident_id = $1")
        .bind(incident)
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(skip_all)]
pub async fn save(tx: &mut Transaction<'_, Postgres>, r: &PostmortemRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update postmortems set status = $2, revision = $3, doc = $4, metrics = $5, timeline = $6,
             updated_by = $7, updated_at = now(), published_by = $8, published_at = $9
         where postmortem_id = $1",
    )
    .bind(r.postmortem_id)
    .bind(&r.status)
    .bind(r.revision)
    .bind(&r.doc)
    .bind(&r.metrics)
    .bind(&r.timeline)
    .bind(&r.updated_by)
    .bind(&r.published_by)
    .bind(r.published_at)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// Every postmortem, newest incident first.
#[tracing::instrument(skip_all)]
pub async fn list(pool: &PgPool) -> Result<Vec<PostmortemRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {} from postmortems p join incidents i using (incident_id)
          order by coalesce(i.started_at, i.created_at) desc limit 500",
        COLUMNS.split(',').map(|c| format!("p.{}", c.trim())).collect::<Vec<_>>().join(", ")
    ))
    .fetch_all(pool)
    .await
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn charts(pool: &PgPool, id: Uuid) -> Result<Vec<FrozenChart>, sqlx::Error> {
    let rows: Vec<(i32, Uuid, String, String, String)> = sqlx::query_as(
        "select position, service_id, service_name, kind, svg from postmortem_charts
          where postmortem_id = $1 order by position",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(position, service_id, service, kind, svg)| {
            Some(FrozenChart { position, service_id, service, kind: FrozenChartKind::parse(&kind)?, svg })
        })
        .collect())
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn insert_comment(pool: &PgPool, id: Uuid, c: &PostmortemComment) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into postmortem_comments (comment_id, postmortem_id, revision, section, text, author, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(c.id)
    .bind(id)
    .bind(c.revision)
    .bind(c.section.as_str())
    .bind(&c.text)
    .bind(&c.author)
    .bind(c.created_at)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Comments oldest first, with their Markdown (the caller renders it).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn comments(pool: &PgPool, id: Uuid) -> Result<Vec<PostmortemComment>, sqlx::Error> {
    let rows: Vec<(Uuid, i32, String, String, String, DateTime<Utc>)> = sqlx::query_as(
        "select comment_id, revision, section, text, author, created_at from postmortem_comments
          where postmortem_id = $1 order by created_at, comment_id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, revision, section, text, author, created_at)| {
            Some(PostmortemComment {
                id,
                revision,
                section: Section::parse(&section)?,
                text,
                html: String::new(),
                author,
                created_at,
            })
        })
        .collect())
}

/// Keeps the published revision whole before it is amended.
#[tracing::instrument(skip_all)]
pub async fn insert_revision(
    tx: &mut Transaction<'_, Postgres>,
    r: &PostmortemRow,
    by: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into postmortem_revisions (postmortem_id, revision, doc, metrics, timeline, published_by,
             published_at, amended_by, reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(r.postmortem_id)
    .bind(r.revision)
    .bind(&r.doc)
    .bind(&r.metrics)
    .bind(&r.timeline)
    .bind(&r.published_by)
    .bind(r.published_at)
    .bind(by)
    .bind(reason)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn revisions(pool: &PgPool, id: Uuid) -> Result<Vec<PostmortemRevision>, sqlx::Error> {
    type Row = (
        i32,
        Json<PostmortemDoc>,
        Json<Vec<Metric>>,
        Option<String>,
        Option<DateTime<Utc>>,
        String,
        DateTime<Utc>,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select revision, doc, metrics, published_by, published_at, amended_by, amended_at, reason
           from postmortem_revisions where postmortem_id = $1 order by revision",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(revision, doc, metrics, published_by, published_at, amended_by, amended_at, reason)| {
            PostmortemRevision {
                revision,
                doc: doc.0,
                metrics: metrics.0,
                published_by,
                published_at,
                amended_by,
                amended_at,
                reason,
            }
        })
        .collect())
}

/// The probes of the incident's affected services: (id, name).
#[tracing::instrument(skip_all)]
pub async fn incident_probes(pool: &PgPool, incident: Uuid) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "select p.probe_id, p.name from probes p join incident_services s using (service_id)
          where s.incident_id = $1 order by p.name",
    )
    .bind(incident)
    .fetch_all(pool)
    .await
}

/// The first failing check of these probes in [from, to], with the probe's name.
#[tracing::instrument(skip_all)]
pub async fn first_failure(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<(DateTime<Utc>, String)>, sqlx::Error> {
    sqlx::query_as(
        "select r.at, p.name from results r join probes p using (probe_id)
          where r.probe_id = any($1) and r.at >= $2 and r.at <= $3 and r.outcome <> 0
          order by r.at limit 1",
    )
    .bind(probes)
    .bind(from)
    .bind(to)
    .fetch_optional(pool)
    .await
}

/// State changes of these probes in [from, to], oldest first: (probe, at, to_state).
#[tracing::instrument(skip_all)]
pub async fn changes_between(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>, String)>, sqlx::Error> {
    sqlx::query_as(
        "select probe_id, at, to_state from state_changes
          where probe_id = any($1) and at >= $2 and at <= $3 order by at, state_change_id",
    )
    .bind(probes)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// How often the incident was reopened: the status entries its reopenings wrote.
#[tracing::instrument(skip_all)]
pub async fn reopen_count(pool: &PgPool, incident: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from timeline_entries
          where incident_id = $1 and kind = 'status_change' and text like '%**reopened**%'",
    )
    .bind(incident)
    .fetch_one(pool)
    .await
}
