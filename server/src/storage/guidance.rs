//! Checklist versions, the versions incidents use, ticked steps and hypotheses.

use app::model::{Checklist, ChecklistDef, Hypothesis, HypothesisStatus, Tick};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

type VersionRow = (String, i32, Json<ChecklistDef>, String, DateTime<Utc>);

fn checklist_from((_, version, def, created_by, created_at): VersionRow) -> Checklist {
    Checklist { version, created_by, created_at, def: def.0 }
}

/// Inserts `def` as a new version unless the newest version seeded from the file is the same.
/// Serialised per checklist by an advisory lock, so two starting instances add it once.
#[tracing::instrument(skip_all)]
pub async fn seed_version(pool: &PgPool, id: &str, def: &serde_json::Value) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(hashtext('checklist:' || $1))").bind(id).execute(&mut *tx).await?;
    let same: bool = sqlx::query_scalar(
        "select coalesce((select definition = $2 from checklists where checklist_id = $1 and created_by = 'file'
                           order by version desc limit 1), false)",
    )
    .bind(id)
    .bind(def)
    .fetch_one(&mut *tx)
    .await?;
    if !same {
        insert(&mut *tx, id, def, "file").await?;
    }
    tx.commit().await?;
    Ok(!same)
}

#[tracing::instrument(skip_all)]
async fn insert<'e>(
    ex: impl PgExecutor<'e>,
    id: &str,
    def: &serde_json::Value,
    by: &str,
) -> Result<VersionRow, sqlx::Error> {
    sqlx::query_as(
        "insert into checklists (checklist_id, version, definition, created_by)
         values ($1, coalesce((select max(version) from checklists where checklist_id = $1), 0) + 1, $2, $3)
         returning checklist_id, version, definition, created_by, created_at",
    )
    .bind(id)
    .bind(def)
    .bind(by)
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
    sqlx::query("select pg_advisory_xact_lock(hashtext('checklist:' || $1))").bind(id).execute(&mut *tx).await?;
    let row = insert(&mut *tx, id, def, by).await?;
    tx.commit().await?;
    Ok(checklist_from(row))
}

/// The newest version of every checklist.
#[tracing::instrument(skip_all)]
pub async fn latest(pool: &PgPool) -> Result<Vec<Checklist>, sqlx::Error> {
    let rows: Vec<VersionRow> = sqlx::query_as(
        "select distinct on (checklist_id) checklist_id, version, definition, created_by, created_at
           from checklists order by checklist_id, version desc",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(checklist_from).collect())
}

/// Every version of one checklist, newest first.
#[tracing::instrument(skip_all)]
pub async fn versions(pool: &PgPool, id: &str) -> Result<Vec<Checklist>, sqlx::Error> {
    let rows: Vec<VersionRow> = sqlx::query_as(
        "select checklist_id, version, definition, created_by, created_at from checklists
          where checklist_id = $1 order by version desc",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(checklist_from).collect())
}

/// Records that the incident uses the newest version of each of `ids` (a version once recorded
/// stays), then returns every version the incident uses, in the order first proposed.
#[tracing::instrument(skip_all)]
pub async fn pin(pool: &PgPool, incident: Uuid, ids: &[String]) -> Result<Vec<Checklist>, sqlx::Error> {
    sqlx::query(
        "insert into incident_checklists (incident_id, checklist_id, version)
         select $1, c.checklist_id, max(c.version) from checklists c where c.checklist_id = any($2)
          group by c.checklist_id
         on conflict do nothing",
    )
    .bind(incident)
    .bind(ids)
    .execute(pool)
    .await?;
    let rows: Vec<VersionRow> = sqlx::query_as(
        "select c.checklist_id, c.version, c.definition, c.created_by, c.created_at
           from incident_checklists i join checklists c using (checklist_id, version)
          where i.incident_id = $1 order by i.first_proposed_at, c.checklist_id",
    )
    .bind(incident)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(checklist_from).collect())
}

/// Ticks of the incident: (checklist, step) → tick.
#[tracing::instrument(skip_all)]
pub async fn ticks(pool: &PgPool, incident: Uuid) -> Result<Vec<(String, String, Tick)>, sqlx::Error> {
    type Row = (String, String, bool, String, String, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "select checklist_id, step_id, done, finding, ticked_by, ticked_at from checklist_ticks where incident_id = $1",
    )
    .bind(incident)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(c, s, done, finding, by, at)| (c, s, Tick { done, finding, by, at })).collect())
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
    sqlx::query(
        "insert into checklist_ticks (incident_id, checklist_id, step_id, done, finding, ticked_by)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (incident_id, checklist_id, step_id)
         do update set done = excluded.done, finding = excluded.finding, ticked_by = excluded.ticked_by, ticked_at = now()",
    )
    .bind(incident)
    .bind(checklist)
    .bind(step)
    .bind(done)
    .bind(finding)
    .bind(by)
    .execute(ex)
    .await
    .map(|_| ())
}

type HypothesisRow = (Uuid, String, String, String, String, DateTime<Utc>);

fn hypothesis_from((id, text, status, evidence, created_by, updated_at): HypothesisRow) -> Hypothesis {
    Hypothesis {
        id,
        text,
        status: HypothesisStatus::parse(&status).unwrap_or(HypothesisStatus::Open),
        evidence,
        created_by,
        updated_at,
    }
}

#[tracing::instrument(skip_all)]
pub async fn hypotheses(pool: &PgPool, incident: Uuid) -> Result<Vec<Hypothesis>, sqlx::Error> {
    let rows: Vec<HypothesisRow> = sqlx::query_as(
        "select hypothesis_id, text, status, evidence, created_by, updated_at from hypotheses
          where incident_id = $1 order by created_at",
    )
    .bind(incident)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(hypothesis_from).collect())
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
    let row: HypothesisRow = sqlx::query_as(
        "insert into hypotheses (hypothesis_id, incident_id, text, status, evidence, created_by)
         values ($1, $2, $3, $4, $5, $6)
         returning hypothesis_id, text, status, evidence, created_by, updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(incident)
    .bind(text)
    .bind(status.as_str())
    .bind(evidence)
    .bind(by)
    .fetch_one(ex)
    .await?;
    Ok(hypothesis_from(row))
}

/// The hypothesis, locked for a change.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn lock_hypothesis(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    incident: Uuid,
    id: Uuid,
) -> Result<Option<Hypothesis>, sqlx::Error> {
    let row: Option<HypothesisRow> = sqlx::query_as(
        "select hypothesis_id, text, status, evidence, created_by, updated_at from hypotheses
          where incident_id = $1 and hypothesis_id = $2 for update",
    )
    .bind(incident)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(hypothesis_from))
}

#[tracing::instrument(skip_all)]
pub async fn update_hypothesis(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    h: &Hypothesis,
) -> Result<Hypothesis, sqlx::Error> {
    let row: HypothesisRow = sqlx::query_as(
        "update hypotheses set text = $2, status = $3, evidence = $4, updated_at = now() where hypothesis_id = $1
         returning hypothesis_id, text, status, evidence, created_by, updated_at",
    )
    .bind(h.id)
    .bind(&h.text)
    .bind(h.status.as_str())
    .bind(&h.evidence)
    .fetch_one(&mut **tx)
    .await?;
    Ok(hypothesis_from(row))
}
