//! Checklist versions, the versions incidents use, ticked steps and hypotheses.

use app::model::{Checklist, ChecklistDef, Hypothesis, HypothesisStatus, Tick};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A `checklists` row as the queries below select it.
struct VersionRow {
    version: i32,
    definition: Json<ChecklistDef>,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl From<VersionRow> for Checklist {
    fn from(r: VersionRow) -> Self {
        Checklist { version: r.version, created_by: r.created_by, created_at: r.created_at, def: r.definition.0 }
    }
}

/// Inserts `def` as a new version unless the newest version seeded from the file is the same.
/// Serialised per checklist by an advisory lock, so two starting instances add it once.
#[tracing::instrument(skip_all)]
pub async fn seed_version(pool: &PgPool, id: &str, def: &serde_json::Value) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    lock_checklist(&mut tx, id).await?;
    let same = sqlx::query_scalar!(
        r#"select coalesce((select definition = $2 from checklists where checklist_id = $1 and created_by = 'file'
                             order by version desc limit 1), false) as "same!""#,
        id,
        def,
    )
    .fetch_one(&mut *tx)
    .await?;
    if !same {
        insert(&mut *tx, id, def, "file").await?;
    }
    tx.commit().await?;
    Ok(!same)
}

/// Serialises new versions of one checklist until the transaction ends.
#[tracing::instrument(skip_all)]
async fn lock_checklist(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!("select pg_advisory_xact_lock(hashtext('checklist:' || $1))", id)
        .fetch_one(&mut **tx)
        .await
        .map(|_| ())
}

#[tracing::instrument(skip_all)]
async fn insert<'e>(
    ex: impl PgExecutor<'e>,
    id: &str,
    def: &serde_json::Value,
    by: &str,
) -> Result<VersionRow, sqlx::Error> {
    sqlx::query_as!(
        VersionRow,
        r#"insert into checklists (checklist_id, version, definition, created_by)
           values ($1, coalesce((select max(version) from checklists where checklist_id = $1), 0) + 1, $2, $3)
           returning version, definition as "definition: Json<ChecklistDef>", created_by, created_at"#,
        id,
        def,
        by,
    )
    .fetch_one(ex)
    .await
}

#[tracing::instrument(skip_all)]
pub async fn insert_version(
    pool: &PgPool,
    id: &str,
    def: &serde_json::Value,
    by: &str,
) -> Result<Checklist, sqlx::Error> {
    let mut tx = pool.begin().await?;
    lock_checklist(&mut tx, id).await?;
    let row = insert(&mut *tx, id, def, by).await?;
    tx.commit().await?;
    Ok(row.into())
}

/// The newest version of every checklist.
#[tracing::instrument(skip_all)]
pub async fn latest(pool: &PgPool) -> Result<Vec<Checklist>, sqlx::Error> {
    let rows = sqlx::query_as!(
        VersionRow,
        r#"select distinct on (checklist_id) version, definition as "definition: Json<ChecklistDef>", created_by,
                  created_at
             from checklists order by checklist_id, version desc"#,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Checklist::from).collect())
}

/// Every version of one checklist, newest first.
#[tracing::instrument(skip_all)]
pub async fn versions(pool: &PgPool, id: &str) -> Result<Vec<Checklist>, sqlx::Error> {
    let rows = sqlx::query_as!(
        VersionRow,
        r#"select version, definition as "definition: Json<ChecklistDef>", created_by, created_at from checklists
            where checklist_id = $1 order by version desc"#,
        id,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Checklist::from).collect())
}

/// Records that the incident uses the newest version of each of `ids` (a version once recorded
/// stays), then returns every version the incident uses, in the order first proposed.
#[tracing::instrument(skip_all)]
pub async fn pin(pool: &PgPool, incident: Uuid, ids: &[String]) -> Result<Vec<Checklist>, sqlx::Error> {
    sqlx::query!(
        "insert into incident_checklists (incident_id, checklist_id, version)
         select $1, c.checklist_id, max(c.version) from checklists c where c.checklist_id = any($2)
          group by c.checklist_id
         on conflict do nothing",
        incident,
        ids,
    )
    .execute(pool)
    .await?;
    let rows = sqlx::query_as!(
        VersionRow,
        r#"select c.version, c.definition as "definition: Json<ChecklistDef>", c.created_by, c.created_at
             from incident_checklists i join checklists c using (checklist_id, version)
            where i.incident_id = $1 order by i.first_proposed_at, c.checklist_id"#,
        incident,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Checklist::from).collect())
}

/// Ticks of the incident: (checklist, step) → tick.
#[tracing::instrument(skip_all)]
pub async fn ticks(pool: &PgPool, incident: Uuid) -> Result<Vec<(String, String, Tick)>, sqlx::Error> {
    let rows = sqlx::query!(
        "select checklist_id, step_id, done, finding, ticked_by, ticked_at from checklist_ticks where incident_id = $1",
        incident,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (r.checklist_id, r.step_id, Tick { done: r.done, finding: r.finding, by: r.ticked_by, at: r.ticked_at })
        })
        .collect())
}

#[tracing::instrument(skip_all)]
pub async fn upsert_tick<'e>(
    ex: impl PgExecutor<'e>,
    incident: Uuid,
    checklist: &str,
    step: &str,
    done: bool,
    finding: &str,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into checklist_ticks (incident_id, checklist_id, step_id, done, finding, ticked_by)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (incident_id, checklist_id, step_id)
         do update set done = excluded.done, finding = excluded.finding, ticked_by = excluded.ticked_by, ticked_at = now()",
        incident,
        checklist,
        step,
        done,
        finding,
        by,
    )
    .execute(ex)
    .await
    .map(|_| ())
}

/// A `hypotheses` row as the queries below select and return it.
struct HypothesisRow {
    hypothesis_id: Uuid,
    text: String,
    status: String,
    evidence: String,
    created_by: String,
    updated_at: DateTime<Utc>,
}

impl From<HypothesisRow> for Hypothesis {
    fn from(r: HypothesisRow) -> Self {
        Hypothesis {
            id: r.hypothesis_id,
            text: r.text,
            status: HypothesisStatus::parse(&r.status).unwrap_or(HypothesisStatus::Open),
            evidence: r.evidence,
            created_by: r.created_by,
            updated_at: r.updated_at,
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn hypotheses(pool: &PgPool, incident: Uuid) -> Result<Vec<Hypothesis>, sqlx::Error> {
    let rows = sqlx::query_as!(
        HypothesisRow,
        "select hypothesis_id, text, status, evidence, created_by, updated_at from hypotheses
          where incident_id = $1 order by created_at",
        incident,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Hypothesis::from).collect())
}

#[tracing::instrument(skip_all)]
pub async fn insert_hypothesis<'e>(
    ex: impl PgExecutor<'e>,
    incident: Uuid,
    text: &str,
    status: HypothesisStatus,
    evidence: &str,
    by: &str,
) -> Result<Hypothesis, sqlx::Error> {
    let row = sqlx::query_as!(
        HypothesisRow,
        "insert into hypotheses (hypothesis_id, incident_id, text, status, evidence, created_by)
         values ($1, $2, $3, $4, $5, $6)
         returning hypothesis_id, text, status, evidence, created_by, updated_at",
        Uuid::new_v4(),
        incident,
        text,
        status.as_str(),
        evidence,
        by,
    )
    .fetch_one(ex)
    .await?;
    Ok(row.into())
}

/// The hypothesis, locked for a change.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn lock_hypothesis(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    incident: Uuid,
    id: Uuid,
) -> Result<Option<Hypothesis>, sqlx::Error> {
    let row = sqlx::query_as!(
        HypothesisRow,
        "select hypothesis_id, text, status, evidence, created_by, updated_at from hypotheses
          where incident_id = $1 and hypothesis_id = $2 for update",
        incident,
        id,
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(Hypothesis::from))
}

#[tracing::instrument(skip_all)]
pub async fn update_hypothesis(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    h: &Hypothesis,
) -> Result<Hypothesis, sqlx::Error> {
    let row = sqlx::query_as!(
        HypothesisRow,
        "update hypotheses set text = $2, status = $3, evidence = $4, updated_at = now() where hypothesis_id = $1
         returning hypothesis_id, text, status, evidence, created_by, updated_at",
        h.id,
        h.text,
        h.status.as_str(),
        h.evidence,
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.into())
}
