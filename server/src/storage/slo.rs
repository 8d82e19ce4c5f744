//! Service level objectives and their burn-rate alerts. The counts behind them come from the
//! rollups (`storage::rollups`).

use app::model::{BurnAlert, BurnSpeed, Objective, SloSpec};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A service with an objective, as the alert evaluation needs it.
pub struct SloRow {
    pub service_id: Uuid,
    pub service: String,
    pub criticality: String,
    pub spec: SloSpec,
    /// The probes whose checks count (the chosen ones that still exist, or all of the service's).
    pub probes: Vec<Uuid>,
}

/// Every objective (or `service`'s), with its service and probes.
#[tracing::instrument(skip_all)]
pub async fn objectives(pool: &PgPool, service: Option<Uuid>) -> Result<Vec<SloRow>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select o.service_id, s.name, s.criticality, o.spec as "spec: Json<SloSpec>",
                  coalesce(array_agg(p.probe_id) filter (where p.probe_id is not null), '{}') as "probes!: Vec<Uuid>"
             from slos o
             join services s on s.service_id = o.service_id
             left join probes p on p.service_id = o.service_id
                   and (o.spec -> 'probes' is null or o.spec -> 'probes' ? p.probe_id::text)
            where $1::uuid is null or o.service_id = $1
            group by o.service_id, s.name, s.criticality, o.spec
            order by s.name"#,
        service,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SloRow {
            service_id: r.service_id,
            service: r.name,
            criticality: r.criticality,
            spec: r.spec.0,
            probes: r.probes,
        })
        .collect())
}

/// Sets (or replaces) a service's objective.
#[tracing::instrument(skip_all, fields(service = %service))]
pub async fn put(conn: &mut PgConnection, service: Uuid, spec: &SloSpec, by: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into slos (service_id, spec, updated_by) values ($1, $2, $3)
         on conflict (service_id) do update set spec = excluded.spec, updated_by = excluded.updated_by, updated_at = now()",
        service,
        Json(spec) as _,
        by,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a service's objective and its firing alerts; `false` when it had none.
#[tracing::instrument(skip_all, fields(service = %service))]
pub async fn delete(conn: &mut PgConnection, service: Uuid) -> Result<bool, sqlx::Error> {
    // The objective first: an alert being fired holds it `for share` (see [`still_set`]), so this
    // waits for that alert to commit and then clears it with the rest.
    let done = sqlx::query!("delete from slos where service_id = $1", service).execute(&mut *conn).await?;
    sqlx::query!("update slo_alerts set cleared_at = now() where service_id = $1 and cleared_at is null", service)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

struct AlertRow {
    objective: String,
    speed: String,
    long_burn: f64,
    short_burn: f64,
    fired_at: DateTime<Utc>,
    cleared_at: Option<DateTime<Utc>>,
    incident_id: Option<Uuid>,
}

impl AlertRow {
    fn into_alert(self) -> Option<BurnAlert> {
        Some(BurnAlert {
            objective: Objective::parse(&self.objective)?,
            speed: BurnSpeed::parse(&self.speed)?,
            long_burn: self.long_burn,
            short_burn: self.short_burn,
            fired_at: self.fired_at,
            cleared_at: self.cleared_at,
            incident_id: self.incident_id,
        })
    }
}

/// A service's alerts: firing ones first, then those fired since `since`, newest first.
#[tracing::instrument(skip_all, fields(service = %service))]
pub async fn alerts(pool: &PgPool, service: Uuid, since: DateTime<Utc>) -> Result<Vec<BurnAlert>, sqlx::Error> {
    let rows = sqlx::query_as!(
        AlertRow,
        "select objective, speed, long_burn, short_burn, fired_at, cleared_at, incident_id from slo_alerts
          where service_id = $1 and (cleared_at is null or fired_at >= $2)
          order by cleared_at is not null, fired_at desc
          limit 100",
        service,
        since,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(AlertRow::into_alert).collect())
}

/// The alerts firing now, for every service: (service, objective, speed).
#[tracing::instrument(skip_all)]
pub async fn firing(pool: &PgPool) -> Result<Vec<(Uuid, Objective, BurnSpeed)>, sqlx::Error> {
    let rows = sqlx::query!("select service_id, objective, speed from slo_alerts where cleared_at is null")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.service_id, Objective::parse(&r.objective)?, BurnSpeed::parse(&r.speed)?)))
        .collect())
}

/// Records a firing alert; `false` when one for the same (service, objective, speed) is firing
/// already (another replica got there first).
#[tracing::instrument(skip_all, fields(service = %service))]
pub async fn fire(conn: &mut PgConnection, service: Uuid, a: &BurnAlert) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "insert into slo_alerts (service_id, objective, speed, long_burn, short_burn, fired_at, incident_id)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (service_id, objective, speed) where cleared_at is null do nothing",
        service,
        a.objective.as_str(),
        a.speed.as_str(),
        a.long_burn,
        a.short_burn,
        a.fired_at,
        a.incident_id,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Clears a firing alert (its burn fell below the threshold in one of its windows).
#[tracing::instrument(skip_all, fields(service = %service))]
pub async fn clear(
    pool: &PgPool,
    service: Uuid,
    objective: Objective,
    speed: BurnSpeed,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update slo_alerts set cleared_at = $4
          where service_id = $1 and objective = $2 and speed = $3 and cleared_at is null",
        service,
        objective.as_str(),
        speed.as_str(),
        at,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether the service still has an objective (locked against removal until the caller's
/// transaction ends).
#[tracing::instrument(skip_all, fields(service = %service))]
pub async fn still_set(conn: &mut PgConnection, service: Uuid) -> Result<bool, sqlx::Error> {
    let row = sqlx::query_scalar!("select 1 as \"set!\" from slos where service_id = $1 for share", service)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}
