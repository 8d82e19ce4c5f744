//! Services, probes and probe states.

use app::model::{
    Criticality, ErrorClass, Outcome, Probe, ProbeSpec, ProbeStatus, Service, ServiceInput, unknown_state,
};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// A service with its worst probe state and its probes' ids, as [`query_services`] selects it.
struct ServiceRow {
    service_id: Uuid,
    name: String,
    description: String,
    tags: Vec<String>,
    criticality: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    state: Option<String>,
    probe_ids: Vec<Uuid>,
    blocked: i64,
}

impl From<ServiceRow> for Service {
    fn from(r: ServiceRow) -> Self {
        Service {
            id: r.service_id,
            name: r.name,
            description: r.description,
            tags: r.tags,
            criticality: Criticality::parse(&r.criticality).unwrap_or_default(),
            state: r.state.as_deref().and_then(Outcome::parse),
            probe_ids: r.probe_ids,
            blocked: u32::try_from(r.blocked).unwrap_or(u32::MAX),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `query_as!` into [`ServiceRow`] over `services s`, then the rest of the query and its arguments.
/// One grouped pass over the probes (not a subquery per service: at 2,000 services that took
/// 300 ms, this takes a few).
macro_rules! query_services {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            ServiceRow,
            r#"select s.service_id, s.name, s.description, s.tags, s.criticality, s.created_at, s.updated_at,
                      case w.worst when 2 then 'down' when 1 then 'degraded' when 0 then 'up' end as state,
                      coalesce(w.ids, '{}') as "probe_ids!", coalesce(w.blocked, 0) as "blocked!"
                 from services s
                 left join (select p.service_id,
                                   array_agg(p.probe_id order by p.name) as ids,
                                   count(*) filter (where p.enabled and ps.last_error = 'blocked_by_policy') as blocked,
                                   max(case ps.state when 'down' then 2 when 'degraded' then 1 when 'up' then 0 end)
                                     filter (where p.enabled) as worst
                              from probes p left join probe_state ps using (probe_id)
                             group by p.service_id) w using (service_id) "# + $rest
            $(, $arg)*
        )
    };
}

#[tracing::instrument(skip(pool))]
pub async fn list_services(pool: &PgPool) -> Result<Vec<Service>, sqlx::Error> {
    let rows = query_services!("order by s.name").fetch_all(pool).await?;
    Ok(rows.into_iter().map(Service::from).collect())
}

/// The services with these ids (ids without a service are left out), by name.
#[tracing::instrument(skip_all, fields(services = ids.len()))]
pub async fn services_in(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Service>, sqlx::Error> {
    let rows = query_services!("where s.service_id = any($1) order by s.name", ids).fetch_all(pool).await?;
    Ok(rows.into_iter().map(Service::from).collect())
}

#[tracing::instrument(skip(pool))]
pub async fn get_service(pool: &PgPool, id: Uuid) -> Result<Option<Service>, sqlx::Error> {
    let row = query_services!("where s.service_id = $1", id).fetch_optional(pool).await?;
    Ok(row.map(Service::from))
}

#[tracing::instrument(skip(ex, input))]
pub async fn insert_service<'e>(ex: impl PgExecutor<'e>, id: Uuid, input: &ServiceInput) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into services (service_id, name, description, tags, criticality) values ($1, $2, $3, $4, $5)",
        id,
        input.name,
        input.description,
        &input.tags,
        input.criticality.as_str(),
    )
    .execute(ex)
    .await
    .map(|_| ())
}

/// Returns false when no such service exists.
#[tracing::instrument(skip(pool, input))]
pub async fn update_service(pool: &PgPool, id: Uuid, input: &ServiceInput) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update services set name = $2, description = $3, tags = $4, criticality = $5, updated_at = now()
          where service_id = $1",
        id,
        input.name,
        input.description,
        &input.tags,
        input.criticality.as_str(),
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the service and (by cascade) its probes; returns the deleted probes' ids.
#[tracing::instrument(skip(pool))]
pub async fn delete_service(pool: &PgPool, id: Uuid) -> Result<Option<Vec<Uuid>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let probes =
        sqlx::query_scalar!("select probe_id from probes where service_id = $1", id).fetch_all(&mut *tx).await?;
    let done = sqlx::query!("delete from services where service_id = $1", id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok((done.rows_affected() == 1).then_some(probes))
}

/// Deletes the incidents that concern only this service (with their timelines, checklists and
/// postmortems); incidents that also name other services keep them. Removing the built-in demo
/// uses it, so that nothing of the demo stays behind.
#[tracing::instrument(skip_all, fields(id = %service))]
pub async fn delete_incidents_only_of(pool: &PgPool, service: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "delete from incidents i
          where exists (select 1 from incident_services s where s.incident_id = i.incident_id and s.service_id = $1)
            and not exists (select 1 from incident_services s where s.incident_id = i.incident_id and s.service_id <> $1)",
        service
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The id of the service named `name`, creating it (with defaults) if missing.
#[tracing::instrument(skip_all)]
pub async fn service_id_by_name_or_create(tx: &mut Transaction<'_, Postgres>, name: &str) -> Result<Uuid, sqlx::Error> {
    sqlx::query!(
        "insert into services (service_id, name) values ($1, $2) on conflict (name) do nothing",
        Uuid::new_v4(),
        name
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query_scalar!("select service_id from services where name = $1", name).fetch_one(&mut **tx).await
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn service_exists(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"select exists (select 1 from services where service_id = $1) as "exists!""#, id)
        .fetch_one(&mut **tx)
        .await
}

/// A probe with its service's name and its state (absent before its first result).
struct ProbeRow {
    probe_id: Uuid,
    service_id: Uuid,
    service: String,
    file_managed: bool,
    spec: Json<ProbeSpec>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    state: Option<String>,
    since: Option<DateTime<Utc>>,
    last_result_at: Option<DateTime<Utc>>,
    last_outcome: Option<String>,
    last_error: Option<String>,
}

impl From<ProbeRow> for Probe {
    fn from(r: ProbeRow) -> Self {
        let mut spec = r.spec.0;
        spec.id = Some(r.probe_id);
        spec.service = Some(r.service.clone());
        spec.service_id = Some(r.service_id);
        let status = match (r.state.as_deref().and_then(unknown_state::parse), r.since) {
            (Some(state), Some(since)) => Some(ProbeStatus {
                state,
                since,
                last_result_at: r.last_result_at,
                last_outcome: r.last_outcome.as_deref().and_then(Outcome::parse),
                last_error: r.last_error.as_deref().and_then(ErrorClass::parse),
            }),
            _ => None,
        };
        Probe {
            id: r.probe_id,
            service_id: r.service_id,
            service: r.service,
            file_managed: r.file_managed,
            spec,
            status,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `query_as!` into [`ProbeRow`] over `probes p`, then the rest of the query and its arguments.
macro_rules! query_probes {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            ProbeRow,
            r#"select p.probe_id, p.service_id, s.name as service, p.file_managed, p.spec as "spec: Json<ProbeSpec>",
                      p.created_at, p.updated_at, ps.state as "state?", ps.since as "since?",
                      ps.last_result_at as "last_result_at?", ps.last_outcome as "last_outcome?",
                      ps.last_error as "last_error?"
                 from probes p join services s using (service_id) left join probe_state ps using (probe_id) "# + $rest
            $(, $arg)*
        )
    };
}

#[tracing::instrument(skip(pool))]
pub async fn list_probes(pool: &PgPool, service: Option<Uuid>) -> Result<Vec<Probe>, sqlx::Error> {
    let rows =
        query_probes!("where $1::uuid is null or p.service_id = $1 order by p.name", service).fetch_all(pool).await?;
    Ok(rows.into_iter().map(Probe::from).collect())
}

/// The probes of these services, by name.
#[tracing::instrument(skip_all, fields(services = services.len()))]
pub async fn probes_of_services(pool: &PgPool, services: &[Uuid]) -> Result<Vec<Probe>, sqlx::Error> {
    let rows = query_probes!("where p.service_id = any($1) order by p.name", services).fetch_all(pool).await?;
    Ok(rows.into_iter().map(Probe::from).collect())
}

/// A probe read inside the caller's transaction (after it took the probe's lock).
#[tracing::instrument(skip(conn))]
pub async fn get_probe_in(conn: &mut sqlx::PgConnection, id: Uuid) -> Result<Option<Probe>, sqlx::Error> {
    let row = query_probes!("where p.probe_id = $1", id).fetch_optional(conn).await?;
    Ok(row.map(Probe::from))
}

/// These probes, those that still exist.
#[tracing::instrument(skip_all, fields(probes = ids.len()))]
pub async fn probes_by_id(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Probe>, sqlx::Error> {
    let rows = query_probes!("where p.probe_id = any($1)", ids).fetch_all(pool).await?;
    Ok(rows.into_iter().map(Probe::from).collect())
}

#[tracing::instrument(skip(pool))]
pub async fn get_probe(pool: &PgPool, id: Uuid) -> Result<Option<Probe>, sqlx::Error> {
    let row = query_probes!("where p.probe_id = $1", id).fetch_optional(pool).await?;
    Ok(row.map(Probe::from))
}

#[tracing::instrument(skip_all)]
pub async fn get_probe_by_name(pool: &PgPool, name: &str) -> Result<Option<Probe>, sqlx::Error> {
    let row = query_probes!("where p.name = $1", name).fetch_optional(pool).await?;
    Ok(row.map(Probe::from))
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
    sqlx::query!(
        "insert into probes (probe_id, service_id, name, kind, enabled, spec, file_managed, push_token_sha256)
         values ($1, $2, $3, $4, $5, $6, $7, $9)
         on conflict (probe_id) do update set
           service_id = excluded.service_id, name = excluded.name, kind = excluded.kind,
           enabled = excluded.enabled, spec = excluded.spec, file_managed = excluded.file_managed,
           push_token_sha256 = case when $8 then excluded.push_token_sha256 else probes.push_token_sha256 end,
           updated_at = now()",
        w.id,
        w.service_id,
        w.spec.name,
        w.spec.kind.as_str(),
        w.spec.enabled,
        Json(stored_spec(w.spec)) as _,
        w.file_managed,
        set_token,
        token,
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

#[tracing::instrument(skip_all)]
pub async fn probe_id_by_name(tx: &mut Transaction<'_, Postgres>, name: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("select probe_id from probes where name = $1", name).fetch_optional(&mut **tx).await
}

#[tracing::instrument(skip(pool))]
pub async fn delete_probe(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!("delete from probes where probe_id = $1", id).execute(pool).await?;
    Ok(done.rows_affected() == 1)
}

/// The stored push token hash of a push probe (None: no such probe or not a push probe).
#[tracing::instrument(skip_all, fields(probe_id = %probe_id))]
pub async fn push_token_hash(pool: &PgPool, probe_id: Uuid) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let row =
        sqlx::query_scalar!("select push_token_sha256 from probes where probe_id = $1 and kind = 'push'", probe_id)
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
    sqlx::query_scalar!("delete from probes where file_managed and not (name = any($1)) returning probe_id", keep)
        .fetch_all(&mut **tx)
        .await
}

/// One entry of the allowlist kept in the database.
pub struct StoredAllow {
    pub cidr: String,
    pub note: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[tracing::instrument(skip_all)]
pub async fn list_allow(pool: &PgPool) -> Result<Vec<StoredAllow>, sqlx::Error> {
    sqlx::query_as!(
        StoredAllow,
        "select cidr, note, created_by, created_at from network_allow order by created_at, cidr"
    )
    .fetch_all(pool)
    .await
}

/// Adds an entry; false when it was there already.
#[tracing::instrument(skip_all)]
pub async fn insert_allow(pool: &PgPool, cidr: &str, note: &str, by: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "insert into network_allow (cidr, note, created_by) values ($1, $2, $3) on conflict (cidr) do nothing",
        cidr,
        note,
        by
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all)]
pub async fn delete_allow(pool: &PgPool, cidr: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!("delete from network_allow where cidr = $1", cidr).execute(pool).await?;
    Ok(done.rows_affected() == 1)
}

/// The built-in demo's service, while the demo exists.
#[tracing::instrument(skip(pool))]
pub async fn demo_service(pool: &PgPool) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("select demo_service_id from instance").fetch_optional(pool).await.map(Option::flatten)
}

/// Records (or forgets, with `None`) which service is the built-in demo's.
#[tracing::instrument(skip(pool))]
pub async fn set_demo_service(pool: &PgPool, id: Option<Uuid>) -> Result<(), sqlx::Error> {
    sqlx::query!("update instance set demo_service_id = $1", id).execute(pool).await.map(|_| ())
}
