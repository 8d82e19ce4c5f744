//! Maintenance windows.

use app::model::{MaintenanceSpec, Recurrence};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub struct WindowRow {
    pub window_id: Uuid,
    pub title: String,
    pub services: Vec<Uuid>,
    pub tags: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub recurrence: Option<Json<Recurrence>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub file_managed: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl WindowRow {
    pub fn spec(&self) -> MaintenanceSpec {
        MaintenanceSpec {
            title: self.title.clone(),
            services: self.services.clone(),
            tags: self.tags.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            recurrence: self.recurrence.as_ref().map(|r| r.0.clone()),
        }
    }
}

/// Which windows [`windows`] reads.
pub enum WindowFilter {
    All,
    One(Uuid),
    /// Windows that may be under way at this time: recurring ones, and one-off ones around it.
    MayCover(DateTime<Utc>),
}

/// Windows by `filter`, newest first.
#[tracing::instrument(skip_all)]
pub async fn windows(conn: &mut PgConnection, filter: WindowFilter) -> Result<Vec<WindowRow>, sqlx::Error> {
    let (one, at) = match filter {
        WindowFilter::All => (None, None),
        WindowFilter::One(id) => (Some(id), None),
        WindowFilter::MayCover(at) => (None, Some(at)),
    };
    sqlx::query_as!(
        WindowRow,
        r#"select window_id, title, services, tags, starts_at, ends_at,
                  recurrence as "recurrence: Json<Recurrence>", ended_at, file_managed, created_by, created_at
             from maintenance_windows
            where ($1::uuid is null or window_id = $1)
              and ($2::timestamptz is null or (starts_at <= $2 and (recurrence is not null or ends_at > $2)))
            order by starts_at desc, window_id"#,
        one,
        at
    )
    .fetch_all(conn)
    .await
}

#[tracing::instrument(skip_all)]
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    w: &MaintenanceSpec,
    by: &str,
    file_managed: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into maintenance_windows
            (window_id, title, services, tags, starts_at, ends_at, recurrence, created_by, file_managed)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        w.title,
        &w.services,
        &w.tags,
        w.starts_at,
        w.ends_at,
        w.recurrence.as_ref().map(Json) as _,
        by,
        file_managed,
    )
    .execute(conn)
    .await
    .map(|_| ())
}

#[tracing::instrument(skip_all)]
pub async fn update(conn: &mut PgConnection, id: Uuid, w: &MaintenanceSpec) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update maintenance_windows
            set title = $2, services = $3, tags = $4, starts_at = $5, ends_at = $6, recurrence = $7,
                ended_at = null, updated_at = now()
          where window_id = $1",
        id,
        w.title,
        &w.services,
        &w.tags,
        w.starts_at,
        w.ends_at,
        w.recurrence.as_ref().map(Json) as _,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all)]
pub async fn end(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query!("update maintenance_windows set ended_at = $2, updated_at = now() where window_id = $1", id, at)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all)]
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!("delete from maintenance_windows where window_id = $1", id).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// A service's tags (what windows may name it by).
#[tracing::instrument(skip_all)]
pub async fn service_tags(conn: &mut PgConnection, service: Uuid) -> Result<Vec<String>, sqlx::Error> {
    Ok(sqlx::query_scalar!("select tags from services where service_id = $1", service)
        .fetch_optional(conn)
        .await?
        .unwrap_or_default())
}

/// Remembers an outage a window kept quiet (the first suppressed "down" of the probe).
#[tracing::instrument(skip_all)]
pub async fn quiet_outage(
    conn: &mut PgConnection,
    probe: Uuid,
    since: DateTime<Utc>,
    window: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into quieted_outages (probe_id, since, window_title) values ($1, $2, $3)
         on conflict (probe_id) do nothing",
        probe,
        since,
        window
    )
    .execute(conn)
    .await
    .map(|_| ())
}

#[tracing::instrument(skip_all)]
pub async fn clear_quiet(conn: &mut PgConnection, probe: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from quieted_outages where probe_id = $1", probe).execute(conn).await.map(|_| ())
}

/// A quieted outage with what opening its incident needs; `down` says whether the probe still is.
pub struct QuietOutage {
    pub probe_id: Uuid,
    pub since: DateTime<Utc>,
    pub window_title: String,
    pub probe_name: String,
    pub spec: Json<app::model::ProbeSpec>,
    pub service_id: Uuid,
    pub service_name: String,
    pub criticality: String,
    pub down: Option<bool>,
}

#[tracing::instrument(skip_all)]
pub async fn quieted(pool: &PgPool) -> Result<Vec<QuietOutage>, sqlx::Error> {
    sqlx::query_as!(
        QuietOutage,
        r#"select q.probe_id, q.since, q.window_title, p.name as probe_name, p.spec as "spec: Json<app::model::ProbeSpec>",
                  p.service_id, s.name as service_name, s.criticality,
                  (ps.state = 'down' and p.enabled) as down
             from quieted_outages q
             join probes p on p.probe_id = q.probe_id
             join services s on s.service_id = p.service_id
             left join probe_state ps on ps.probe_id = q.probe_id"#
    )
    .fetch_all(pool)
    .await
}

/// Writes a window the probe file declares: replaces `existing` (taking it over), or adds it.
#[tracing::instrument(skip_all)]
pub async fn write_file_window(
    conn: &mut PgConnection,
    existing: Option<Uuid>,
    w: &MaintenanceSpec,
) -> Result<(), sqlx::Error> {
    match existing {
        Some(id) => {
            update(&mut *conn, id, w).await?;
            sqlx::query!("update maintenance_windows set file_managed = true where window_id = $1", id)
                .execute(conn)
                .await
                .map(|_| ())
        }
        None => insert(conn, Uuid::new_v4(), w, "config-file", true).await,
    }
}
