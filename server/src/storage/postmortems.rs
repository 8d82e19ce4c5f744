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
#[derive(Clone, Debug)]
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

/// `query_as!` into [`PostmortemRow`] over `postmortems p`: the one copy of its column list, then
/// the rest of the query (a literal) and its arguments.
macro_rules! query_postmortems {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            PostmortemRow,
            r#"select p.postmortem_id, p.incident_id, p.status, p.revision, p.doc as "doc: Json<PostmortemDoc>",
                      p.metrics as "metrics: Json<Vec<Metric>>", p.impact as "impact: Json<Impact>",
                      p.window_from, p.window_to, p.timeline as "timeline: Json<Vec<TimelineEntry>>",
                      p.created_by, p.created_at, p.updated_by, p.updated_at, p.published_by, p.published_at
                 from postmortems p "# + $rest
            $(, $arg)*
        )
    };
}

/// Stores a new postmortem with its charts; `false` when the incident already has one.
#[tracing::instrument(skip_all)]
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    r: &PostmortemRow,
    charts: &[FrozenChart],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "insert into postmortems (postmortem_id, incident_id, status, revision, doc, metrics, impact,
             window_from, window_to, created_by, updated_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         on conflict (incident_id) do nothing",
        r.postmortem_id,
        r.incident_id,
        r.status,
        r.revision,
        &r.doc as _,
        &r.metrics as _,
        &r.impact as _,
        r.window_from,
        r.window_to,
        r.created_by,
    )
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
    sqlx::query!("delete from postmortem_charts where postmortem_id = $1", id).execute(&mut **tx).await?;
    sqlx::query!(
        "update postmortems set window_from = $2, window_to = $3 where postmortem_id = $1",
        id,
        window.0,
        window.1
    )
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
        sqlx::query!(
            "insert into postmortem_charts (postmortem_id, position, service_id, service_name, kind, svg)
             values ($1, $2, $3, $4, $5, $6)",
            id,
            c.position,
            c.service_id,
            c.service,
            c.kind.as_str(),
            c.svg,
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn get<'e>(ex: impl PgExecutor<'e>, id: Uuid) -> Result<Option<PostmortemRow>, sqlx::Error> {
    query_postmortems!("where postmortem_id = $1", id).fetch_optional(ex).await
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn lock(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<Option<PostmortemRow>, sqlx::Error> {
    query_postmortems!("where postmortem_id = $1 for update", id).fetch_optional(&mut **tx).await
}

#[tracing::instrument(skip_all)]
pub async fn id_for_incident(pool: &PgPool, incident: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("select postmortem_id from postmortems where incident_id = $1", incident)
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(skip_all)]
pub async fn save(tx: &mut Transaction<'_, Postgres>, r: &PostmortemRow) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update postmortems set status = $2, revision = $3, doc = $4, metrics = $5, timeline = $6,
             updated_by = $7, updated_at = now(), published_by = $8, published_at = $9
         where postmortem_id = $1",
        r.postmortem_id,
        r.status,
        r.revision,
        &r.doc as _,
        &r.metrics as _,
        &r.timeline as _,
        r.updated_by,
        r.published_by,
        r.published_at,
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// Every postmortem, newest incident first.
#[tracing::instrument(skip_all)]
pub async fn list(pool: &PgPool) -> Result<Vec<PostmortemRow>, sqlx::Error> {
    query_postmortems!(
        "join incidents i using (incident_id) order by coalesce(i.started_at, i.created_at) desc limit 500"
    )
    .fetch_all(pool)
    .await
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn charts(pool: &PgPool, id: Uuid) -> Result<Vec<FrozenChart>, sqlx::Error> {
    let rows = sqlx::query!(
        "select position, service_id, service_name, kind, svg from postmortem_charts
          where postmortem_id = $1 order by position",
        id,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(FrozenChart {
                position: r.position,
                service_id: r.service_id,
                service: r.service_name,
                kind: FrozenChartKind::parse(&r.kind)?,
                svg: r.svg,
            })
        })
        .collect())
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn insert_comment(pool: &PgPool, id: Uuid, c: &PostmortemComment) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into postmortem_comments (comment_id, postmortem_id, revision, section, text, author, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
        c.id,
        id,
        c.revision,
        c.section.as_str(),
        c.text,
        c.author,
        c.created_at,
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// Comments oldest first, with their Markdown (the caller renders it).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn comments(pool: &PgPool, id: Uuid) -> Result<Vec<PostmortemComment>, sqlx::Error> {
    let rows = sqlx::query!(
        "select comment_id, revision, section, text, author, created_at from postmortem_comments
          where postmortem_id = $1 order by created_at, comment_id",
        id,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(PostmortemComment {
                id: r.comment_id,
                revision: r.revision,
                section: Section::parse(&r.section)?,
                text: r.text,
                html: String::new(),
                author: r.author,
                created_at: r.created_at,
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
    sqlx::query!(
        "insert into postmortem_revisions (postmortem_id, revision, doc, metrics, timeline, published_by,
             published_at, amended_by, reason)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        r.postmortem_id,
        r.revision,
        &r.doc as _,
        &r.metrics as _,
        &r.timeline as _,
        r.published_by,
        r.published_at,
        by,
        reason,
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn revisions(pool: &PgPool, id: Uuid) -> Result<Vec<PostmortemRevision>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select revision, doc as "doc: Json<PostmortemDoc>", metrics as "metrics: Json<Vec<Metric>>",
                  published_by, published_at, amended_by, amended_at, reason
             from postmortem_revisions where postmortem_id = $1 order by revision"#,
        id,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PostmortemRevision {
            revision: r.revision,
            doc: r.doc.0,
            metrics: r.metrics.0,
            published_by: r.published_by,
            published_at: r.published_at,
            amended_by: r.amended_by,
            amended_at: r.amended_at,
            reason: r.reason,
        })
        .collect())
}

/// The probes of the incident's affected services: (id, name).
#[tracing::instrument(skip_all)]
pub async fn incident_probes(pool: &PgPool, incident: Uuid) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let rows = sqlx::query!(
        "select p.probe_id, p.name from probes p join incident_services s using (service_id)
          where s.incident_id = $1 order by p.name",
        incident,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.probe_id, r.name)).collect())
}

/// The first failing check of these probes in [from, to], with the probe's name.
#[tracing::instrument(skip_all)]
pub async fn first_failure(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<(DateTime<Utc>, String)>, sqlx::Error> {
    let mut tx = super::results::snapshot(pool).await?;
    let found = super::results::scan(&mut tx, Some(probes), from, to + chrono::Duration::microseconds(1)).await?;
    let names: std::collections::HashMap<Uuid, String> =
        sqlx::query!("select probe_id, name from probes where probe_id = any($1)", probes)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|r| (r.probe_id, r.name))
            .collect();
    tx.commit().await?;
    Ok(found
        .into_iter()
        .filter(|r| r.outcome != app::model::Outcome::Up)
        .filter_map(|r| Some((r.at, names.get(&r.probe_id)?.clone())))
        .min_by_key(|(at, _)| *at))
}

/// State changes of these probes in [from, to], oldest first: (probe, at, to_state).
#[tracing::instrument(skip_all)]
pub async fn changes_between(
    pool: &PgPool,
    probes: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>, String)>, sqlx::Error> {
    let rows = sqlx::query!(
        "select probe_id, at, to_state from state_changes
          where probe_id = any($1) and at >= $2 and at <= $3 order by at, state_change_id",
        probes,
        from,
        to,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.probe_id, r.at, r.to_state)).collect())
}

/// How often the incident was reopened: the status entries its reopenings wrote.
#[tracing::instrument(skip_all)]
pub async fn reopen_count(pool: &PgPool, incident: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "count!" from timeline_entries
            where incident_id = $1 and kind = 'status_change' and text like '%**reopened**%'"#,
        incident,
    )
    .fetch_one(pool)
    .await
}
