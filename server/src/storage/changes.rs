//! Change events, and the open incidents a new one touches.

use app::model::{ChangeEvent, ChangeKind};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

struct ChangeRow {
    change_id: Uuid,
    service_id: Uuid,
    service: String,
    kind: String,
    title: String,
    version: Option<String>,
    link: Option<String>,
    author: Option<String>,
    at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    recorded_by: String,
    recorded_at: DateTime<Utc>,
}

impl ChangeRow {
    /// `None` for a kind this build does not know (the column's check keeps it to the five).
    fn into_event(self) -> Option<ChangeEvent> {
        Some(ChangeEvent {
            id: self.change_id,
            service_id: self.service_id,
            service: self.service,
            kind: ChangeKind::parse(&self.kind)?,
            title: self.title,
            version: self.version,
            link: self.link,
            author: self.author,
            at: self.at,
            ends_at: self.ends_at,
            recorded_by: self.recorded_by,
            recorded_at: self.recorded_at,
        })
    }
}

/// The service a change names: by id when `name_or_id` is one, else by its exact name.
#[tracing::instrument(skip_all)]
pub async fn resolve_service(pool: &PgPool, name_or_id: &str) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    let id = name_or_id.parse::<Uuid>().ok();
    let row = sqlx::query!(
        "select service_id, name from services where service_id = $1 or ($1 is null and name = $2)",
        id,
        name_or_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.service_id, r.name)))
}

/// A change as validated, ready to store.
pub struct NewChange<'a> {
    pub id: Uuid,
    pub service_id: Uuid,
    pub kind: ChangeKind,
    pub title: &'a str,
    pub version: Option<&'a str>,
    pub link: Option<&'a str>,
    pub author: Option<&'a str>,
    pub at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub recorded_by: &'a str,
}

#[tracing::instrument(skip_all, fields(change = %c.id, service = %c.service_id))]
pub async fn insert(conn: &mut PgConnection, c: &NewChange<'_>) -> Result<Option<ChangeEvent>, sqlx::Error> {
    let row = sqlx::query_as!(
        ChangeRow,
        r#"with stored as (
             insert into change_events (change_id, service_id, kind, title, version, link, author, at, ends_at, recorded_by)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             returning *)
           select c.change_id, c.service_id, s.name as service, c.kind, c.title, c.version, c.link, c.author, c.at,
                  c.ends_at, c.recorded_by, c.recorded_at
             from stored c join services s using (service_id)"#,
        c.id,
        c.service_id,
        c.kind.as_str(),
        c.title,
        c.version,
        c.link,
        c.author,
        c.at,
        c.ends_at,
        c.recorded_by,
    )
    .fetch_one(conn)
    .await?;
    Ok(row.into_event())
}

/// Changes of `services` (every service when `None`) from `from` to `to`, newest first.
#[tracing::instrument(skip_all)]
pub async fn list(
    pool: &PgPool,
    services: Option<&[Uuid]>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ChangeEvent>, sqlx::Error> {
    let rows = sqlx::query_as!(
        ChangeRow,
        r#"select c.change_id, c.service_id, s.name as service, c.kind, c.title, c.version, c.link, c.author, c.at,
                  c.ends_at, c.recorded_by, c.recorded_at
             from change_events c join services s using (service_id)
            where ($1::uuid[] is null or c.service_id = any($1)) and c.at >= $2 and c.at <= $3
            order by c.at desc, c.change_id
            limit $4"#,
        services,
        from,
        to,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(ChangeRow::into_event).collect())
}

/// Open incidents that cover `service` and whose window (from `lookback` before their start)
/// includes `at`: the rooms a new change belongs in.
#[tracing::instrument(skip_all)]
pub async fn open_incidents_touched(
    conn: &mut PgConnection,
    service: Uuid,
    at: DateTime<Utc>,
    lookback: chrono::Duration,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select i.incident_id from incidents i join incident_services s using (incident_id)
          where s.service_id = $1 and i.status <> 'resolved'
            and $2 >= coalesce(i.started_at, i.created_at) - $3::bigint * interval '1 second'",
        service,
        at,
        lookback.num_seconds(),
    )
    .fetch_all(conn)
    .await
}

/// Changes of an incident's services from `lookback` before its start until it resolved (or
/// now): what its room lists and its postmortem starts from.
#[tracing::instrument(skip_all)]
pub async fn for_incident(
    conn: &mut PgConnection,
    incident: Uuid,
    lookback: chrono::Duration,
) -> Result<Vec<ChangeEvent>, sqlx::Error> {
    let rows = sqlx::query_as!(
        ChangeRow,
        r#"select c.change_id, c.service_id, s.name as service, c.kind, c.title, c.version, c.link, c.author, c.at,
                  c.ends_at, c.recorded_by, c.recorded_at
             from incidents i
             join incident_services x using (incident_id)
             join change_events c on c.service_id = x.service_id
             join services s on s.service_id = c.service_id
            where i.incident_id = $1
              and c.at >= coalesce(i.started_at, i.created_at) - $2::bigint * interval '1 second'
              -- A change may be stamped up to a minute ahead of our clock; it still belongs.
              and c.at <= coalesce(i.resolved_at, now() + interval '1 minute')
            order by c.at, c.change_id"#,
        incident,
        lookback.num_seconds(),
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().filter_map(ChangeRow::into_event).collect())
}
