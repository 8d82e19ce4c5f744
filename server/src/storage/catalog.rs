//! Services, probes and probe states.

use app::model::{Criticality, ErrorClass, Outcome, Probe, ProbeSpec, ProbeStatus, Service, ServiceInput};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

type ServiceRow = (Uuid, String, String, Vec<String>, String, DateTime<Utc>, DateTime<Utc>, Option<String>, Vec<Uuid>);

// One grouped pass over the probes (not a subquery per service: at 2,000 services that took
// 300 ms, this takes a few).
const SERVICE_SELECT: &str = "
    select s.service_id, s.name, s.description, s.tags, s.criticality, s.created_at, s.updated_at,
           case w.worst when 2 then 'down' when 1 then 'degraded' when 0 then 'up' end,
           coalesce(w.ids, '{}')
      from services s
      left join (select p.service_id,
                        array_agg(p.probe_id order by p.name) as ids,
                        max(case ps.state when 'down' then 2 when 'degraded' then 1 when 'up' then 0 end)
                          filter (where p.enabled) as worst
                   from probes p left join probe_state ps using (probe_id)
                  group by p.service_id) w using (service_id)";

fn service_from(row: ServiceRow) -> Service {
    let (id, name, description, tags, criticality, created_at, updated_at, state, probe_ids) = row;
    Service {
        id,
        name,
        description,
        tags,
        criticality: Criticality::parse(&criticality).unwrap_or_default(),
        state: state.as_deref().and_then(Outcome::parse),
        probe_ids,
        created_at,
        updated_at,
    }
}

#[tracing::instrument(skip(pool))]
pub async fn list_services(pool: &PgPool) -> Result<Vec<Service>, sqlx::Error> {
    let rows: Vec<ServiceRow> = sqlx::query_as(&format!("{SERVICE_SELECT} order by s.name")).fetch_all(pool).await?;
    Ok(rows.into_iter().map(service_from).collect())
}

#[tracing::instrument(skip(pool))]
pub async fn get_service(pool: &PgPool, id: Uuid) -> Result<Option<Service>, sqlx::Error> {
    let row: Option<ServiceRow> =
        sqlx::query_as(&format!("{SERVICE_SELECT} where s.service_id = $1")).bind(id).fetch_optional(pool).await?;
    Ok(row.map(service_from))
}

#[tracing::instrument(skip(ex, input))]
pub async fn insert_service<'e>(ex: impl PgExecutor<'e>, id: Uuid, input: &ServiceInput) -> Result<(), sqlx::Error> {
    sqlx::query("insert into services (service_id, name, description, tags, criticality) values ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(&input.name)
        .bind(&input.description)
        .bind(&input.tags)
        .bind(input.criticality.as_str())
        .execute(ex)
        .await
        .map(|_| ())
}

/// Returns false when no such service exists.
#[tracing::instrument(skip(pool, input))]
pub async fn update_service(pool: &PgPool, id: Uuid, input: &ServiceInput) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update services set name = $2, description = $3, tags = $4, criticality = $5, updated_at = now()
          where service_id = $1",
    )
    .bind(id)
    .bind(&input.name)
    .bind(&input.description)
    .bind(&input.tags)
    .bind(input.criticality.as_str())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the service and (by cascade) its probes; returns the deleted probes' ids.
#[tracing::instrument(skip(pool))]
pub async fn delete_service(pool: &PgPool, id: Uuid) -> Result<Option<Vec<Uuid>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let probes: Vec<Uuid> =
        sqlx::query_scalar("select probe_id from probes where service_id = $1").bind(id).fetch_all(&mut *tx).await?;
    let done = sqlx::query("delete from services where service_id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok((done.rows_affected() == 1).then_some(probes))
}

/// The id of the service named `name`, creating it (with defaults) if missing.
#[tracing::instrument(skip_all)]
pub async fn service_id_by_name_or_create(tx: &mut Transaction<'_, Postgres>, name: &str) -> Result<Uuid, sqlx::Error> {
    sqlx::query("insert into services (service_id, name) values ($1, $2) on conflict (name) do nothing")
        .bind(Uuid::new_v4())
        .bind(name)
        .execute(&mut **tx)
        .await?;
    sqlx::query_scalar("select service_id from services where name = $1").bind(name).fetch_one(&mut **tx).await
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn service_exists(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select exists (select 1 from services where service_id = $1)")
        .bind(id)
        .fetch_one(&mut **tx)
        .await
}

type ProbeRow = (
    Uuid,
    Uuid,
    String,
    bool,
    Json<ProbeSpec>,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
);

const PROBE_SELECT: &str = "
    select p.probe_id, p.service_id, s.name, p.file_managed, p.spec, p.created_at, p.updated_at,
           ps.state, ps.since, ps.last_result_at, ps.last_outcome, ps.last_error
      from probes p join services s using (service_id) left join probe_state ps using (probe_id)";

fn probe_from(row: ProbeRow) -> Probe {
    let (
        id,
        service_id,
        service,
        file_managed,
        Json(mut spec),
        created_at,
        updated_at,
        state,
        since,
        last_at,
        last,
        err,
    ) = row;
    spec.id = Some(id);
    spec.service = Some(service.clone());
    spec.service_id = Some(service_id);
    let status = match (state.as_deref().and_then(Outcome::parse), since) {
        (Some(state), Some(since)) => Some(ProbeStatus {
            state,
            since,
            last_result_at: last_at,
            last_outcome: last.as_deref().and_then(Outcome::parse),
            last_error: err.as_deref().and_then(ErrorClass::parse),
        }),
        _ => None,
    };
    Probe { id, service_id, service, file_managed, spec, status, created_at, updated_at }
}

#[tracing::instrument(skip(pool))]
pub async fn list_probes(pool: &PgPool, service: Option<Uuid>) -> Result<Vec<Probe>, sqlx::Error> {
    let rows: Vec<ProbeRow> =
        sqlx::query_as(&format!("{PROBE_SELECT} where $1::uuid is null or p.service_id = $1 order by p.name"))
            .bind(service)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(probe_from).collect())
}

#[tracing::instrument(skip(pool))]
pub async fn get_probe(pool: &PgPool, id: Uuid) -> Result<Option<Probe>, sqlx::Error> {
    let row: Option<ProbeRow> =
        sqlx::query_as(&format!("{PROBE_SELECT} where p.probe_id = $1")).bind(id).fetch_optional(pool).await?;
    Ok(row.map(probe_from))
}

#[tracing::instrument(skip_all)]
pub async fn get_probe_by_name(pool: &PgPool, name: &str) -> Result<Option<Probe>, sqlx::Error> {
    let row: Option<ProbeRow> =
        sqlx::query_as(&format!("{PROBE_SELECT} where p.name = $1")).bind(name).fetch_optional(pool).await?;
    Ok(row.map(probe_from))
}

/// What to store for a probe. `spec` is stored without its id and service fields (those are columns).
pub struct ProbeWrite<'a> {
    pub id: Uuid,
    pub service_id: Uuid,
    pub spec: &'a ProbeSpec,
    pub file_managed: bool,
    /// `Some` sets (or clears, with `Some(None)`) the push token hash; `None` leaves it.
    pub push_token_sha256: Option<Option<Vec<u8>>>,
}

fn stored_spec(spec: &ProbeSpec) -> ProbeSpec {
    ProbeSpec { id: None, service: None, service_id: None, ..spec.clone() }
}

/// Inserts or replaces the probe with `w.id`.
#[tracing::instrument(skip_all)]
pub async fn upsert_probe(tx: &mut Transaction<'_, Postgres>, w: &ProbeWrite<'_>) -> Result<(), sqlx::Error> {
    let (set_token, token) = match &w.push_token_sha256 {
        Some(t) => (true, t.clone()),
        None => (false, None),
    };
    sqlx::query(
        "insert into probes (probe_id, service_id, name, kind, enabled, spec, file_managed, push_token_sha256)
         values ($1, $2, $3, $4, $5, $6, $7, $9)
         on conflict (probe_id) do update set
           service_id = excluded.service_id, name = excluded.name, kind = excluded.kind,
           enabled = excluded.enabled, spec = excluded.spec, file_managed = excluded.file_managed,
           push_token_sha256 = case when $8 then excluded.push_token_sha256 else probes.push_token_sha256 end,
           updated_at = now()",
    )
    .bind(w.id)
    .bind(w.service_id)
    .bind(&w.spec.name)
    .bind(w.spec.kind.as_str())
    .bind(w.spec.enabled)
    .bind(Json(stored_spec(w.spec)))
    .bind(w.file_managed)
    .bind(set_token)
    .bind(token)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

#[tracing::instrument(skip_all)]
pub async fn probe_id_by_name(tx: &mut Transaction<'_, Postgres>, name: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("select probe_id from probes where name = $1").bind(name).fetch_optional(&mut **tx).await
}

#[tracing::instrument(skip(pool))]
pub async fn delete_probe(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("delete from probes where probe_id = $1").bind(id).execute(pool).await?;
    Ok(done.rows_affected() == 1)
}

/// The stored push token hash of a push probe (None: no such probe or not a push probe).
#[tracing::instrument(skip_all, fields(probe_id = %probe_id))]
pub async fn push_token_hash(pool: &PgPool, probe_id: Uuid) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let row: Option<Option<Vec<u8>>> =
        sqlx::query_scalar("select push_token_sha256 from probes where probe_id = $1 and kind = 'push'")
            .bind(probe_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.flatten())
}

/// Removes file-managed probes whose names are not in `keep` (the file no longer lists them).
#[tracing::instrument(skip_all)]
pub async fn delete_file_managed_except(
    tx: &mut Transaction<'_, Postgres>,
    keep: &[String],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("delete from probes where file_managed and not (name = any($1)) returning probe_id")
        .bind(keep)
        .fetch_all(&mut **tx)
        .await
}
