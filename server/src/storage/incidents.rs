//! Incidents, their affected services and probes, participants, timeline entries with their
//! revisions, and the incident engine's queue of probe state changes.

use std::collections::HashMap;

use app::model::{
    AffectedService, Attachment, Deletion, EntryKind, EntryRevision, Incident, IncidentFilter, IncidentStatus, KeyTime,
    KeyTimes, Outcome, ProbeResult, ProbeSpec, Severity, Stamp, TimelineEntry, UserRef,
};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// An incident's own columns, as read and written back whole by a change.
#[derive(Clone, Debug)]
pub struct IncidentRecord {
    pub incident_id: Uuid,
    pub number: i64,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub commander_id: Option<Uuid>,
    pub summary: String,
    pub started_at: Option<DateTime<Utc>>,
    pub started_by: Option<String>,
    pub detected_at: Option<DateTime<Utc>>,
    pub detected_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub mitigated_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub automatic: bool,
    pub resolve_suggested_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn stamp(at: Option<DateTime<Utc>>, by: &Option<String>) -> Option<Stamp> {
    at.map(|at| Stamp { at, source: by.clone().unwrap_or_else(|| app::model::AUTOMATIC.into()) })
}

impl IncidentRecord {
    pub fn severity(&self) -> Severity {
        Severity::parse(&self.severity).unwrap_or(Severity::Sev3)
    }

    pub fn status(&self) -> IncidentStatus {
        IncidentStatus::parse(&self.status).unwrap_or(IncidentStatus::Investigating)
    }

    pub fn times(&self) -> KeyTimes {
        KeyTimes {
            started: stamp(self.started_at, &self.started_by),
            detected: stamp(self.detected_at, &self.detected_by),
            acknowledged: stamp(self.acknowledged_at, &self.acknowledged_by),
            mitigated: stamp(self.mitigated_at, &self.mitigated_by),
            resolved: stamp(self.resolved_at, &self.resolved_by),
        }
    }

    pub fn set_times(&mut self, t: &KeyTimes) {
        for k in KeyTime::ALL {
            let (at, by) = match t.get(k) {
                Some(s) => (Some(s.at), Some(s.source.clone())),
                None => (None, None),
            };
            match k {
                KeyTime::Started => (self.started_at, self.started_by) = (at, by),
                KeyTime::Detected => (self.detected_at, self.detected_by) = (at, by),
                KeyTime::Acknowledged => (self.acknowledged_at, self.acknowledged_by) = (at, by),
                KeyTime::Mitigated => (self.mitigated_at, self.mitigated_by) = (at, by),
                KeyTime::Resolved => (self.resolved_at, self.resolved_by) = (at, by),
            }
        }
    }
}

/// `query_as!` into [`IncidentRecord`] over `incidents i`: the one copy of its column list, then
/// the rest of the query (a literal) and its arguments.
macro_rules! query_incidents {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            IncidentRecord,
            "select incident_id, number, title, severity, status, commander_id, summary,
                    started_at, started_by, detected_at, detected_by, acknowledged_at, acknowledged_by,
                    mitigated_at, mitigated_by, resolved_at, resolved_by, automatic, resolve_suggested_at,
                    created_by, created_at, updated_at
               from incidents i " + $rest
            $(, $arg)*
        )
    };
}

/// A new incident (its number is assigned by the database).
pub struct NewIncidentRow<'a> {
    pub id: Uuid,
    pub title: &'a str,
    pub severity: Severity,
    pub summary: &'a str,
    pub commander: Option<Uuid>,
    pub times: &'a KeyTimes,
    pub automatic: bool,
    pub created_by: &'a str,
}

#[tracing::instrument(skip_all)]
pub async fn insert_incident(tx: &mut Transaction<'_, Postgres>, n: &NewIncidentRow<'_>) -> Result<(), sqlx::Error> {
    let mut rec = IncidentRecord {
        incident_id: n.id,
        number: 0,
        title: n.title.into(),
        severity: n.severity.as_str().into(),
        status: IncidentStatus::Investigating.as_str().into(),
        commander_id: n.commander,
        summary: n.summary.into(),
        started_at: None,
        started_by: None,
        detected_at: None,
        detected_by: None,
        acknowledged_at: None,
        acknowledged_by: None,
        mitigated_at: None,
        mitigated_by: None,
        resolved_at: None,
        resolved_by: None,
        automatic: n.automatic,
        resolve_suggested_at: None,
        created_by: n.created_by.into(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    };
    rec.set_times(n.times);
    write_incident(tx, &rec).await
}

/// The incident's row, locked until the transaction ends (changes are read-modify-write).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn lock_incident(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<Option<IncidentRecord>, sqlx::Error> {
    query_incidents!("where incident_id = $1 for update", id).fetch_optional(&mut **tx).await
}

/// Stores a changed incident (read with [`lock_incident`]).
#[tracing::instrument(skip_all)]
pub async fn save_incident(tx: &mut Transaction<'_, Postgres>, r: &IncidentRecord) -> Result<(), sqlx::Error> {
    write_incident(tx, r).await
}

/// One statement for both: a new incident is inserted (its number from the database), a known
/// one gets every field a change may touch. Who created it, and when, never change.
#[tracing::instrument(skip_all)]
async fn write_incident(tx: &mut Transaction<'_, Postgres>, r: &IncidentRecord) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into incidents (incident_id, title, severity, status, commander_id, summary,
             started_at, started_by, detected_at, detected_by, acknowledged_at, acknowledged_by,
             mitigated_at, mitigated_by, resolved_at, resolved_by, resolve_suggested_at, automatic, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         on conflict (incident_id) do update set
             title = excluded.title, severity = excluded.severity, status = excluded.status,
             commander_id = excluded.commander_id, summary = excluded.summary,
             started_at = excluded.started_at, started_by = excluded.started_by,
             detected_at = excluded.detected_at, detected_by = excluded.detected_by,
             acknowledged_at = excluded.acknowledged_at, acknowledged_by = excluded.acknowledged_by,
             mitigated_at = excluded.mitigated_at, mitigated_by = excluded.mitigated_by,
             resolved_at = excluded.resolved_at, resolved_by = excluded.resolved_by,
             resolve_suggested_at = excluded.resolve_suggested_at, updated_at = now()",
        r.incident_id,
        r.title,
        r.severity,
        r.status,
        r.commander_id,
        r.summary,
        r.started_at,
        r.started_by,
        r.detected_at,
        r.detected_by,
        r.acknowledged_at,
        r.acknowledged_by,
        r.mitigated_at,
        r.mitigated_by,
        r.resolved_at,
        r.resolved_by,
        r.resolve_suggested_at,
        r.automatic,
        r.created_by,
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// Adds services to the incident (already present ones are kept).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn add_services(tx: &mut Transaction<'_, Postgres>, id: Uuid, services: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into incident_services (incident_id, service_id) select $1, s from unnest($2::uuid[]) s
         on conflict do nothing",
        id,
        services,
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// Replaces the incident's services.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn set_services(tx: &mut Transaction<'_, Postgres>, id: Uuid, services: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from incident_services where incident_id = $1 and service_id <> all($2)", id, services)
        .execute(&mut **tx)
        .await?;
    add_services(tx, id, services).await
}

/// Which of `ids` are not services (so a request naming them can be refused by field).
#[tracing::instrument(skip_all)]
pub async fn unknown_services(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select s as "s!" from unnest($1::uuid[]) s where not exists (select 1 from services where service_id = s)"#,
        ids,
    )
    .fetch_all(pool)
    .await
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn add_probe(tx: &mut Transaction<'_, Postgres>, id: Uuid, probe: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into incident_probes (incident_id, probe_id) values ($1, $2) on conflict do nothing",
        id,
        probe
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn add_participant<'e>(ex: impl PgExecutor<'e>, id: Uuid, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into incident_participants (incident_id, user_id) values ($1, $2) on conflict do nothing",
        id,
        user,
    )
    .execute(ex)
    .await
    .map(|_| ())
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn user_ref(pool: &PgPool, id: Uuid) -> Result<Option<UserRef>, sqlx::Error> {
    sqlx::query_as!(UserRef, "select user_id as id, email from users where user_id = $1 and disabled_at is null", id)
        .fetch_optional(pool)
        .await
}

/// Enabled users who may command an incident (commanders and admins), for the room's picker.
#[tracing::instrument(skip_all)]
pub async fn commanders(pool: &PgPool) -> Result<Vec<UserRef>, sqlx::Error> {
    sqlx::query_as!(
        UserRef,
        "select user_id as id, email from users
          where disabled_at is null and role in ('commander', 'admin') order by lower(email)",
    )
    .fetch_all(pool)
    .await
}

/// The incidents with these rows, with their services (and live states), commander and participants.
#[tracing::instrument(skip_all)]
async fn complete(pool: &PgPool, rows: Vec<IncidentRecord>) -> Result<Vec<Incident>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.incident_id).collect();
    let services = sqlx::query!(
        r#"select i.incident_id, s.service_id, s.name,
                case max(case ps.state when 'down' then 2 when 'degraded' then 1 when 'up' then 0 end)
                       filter (where p.enabled)
                  when 2 then 'down' when 1 then 'degraded' when 0 then 'up' end as state
           from incident_services i
           join services s using (service_id)
           left join probes p on p.service_id = s.service_id
           left join probe_state ps on ps.probe_id = p.probe_id
          where i.incident_id = any($1)
          group by i.incident_id, s.service_id, s.name
          order by s.name"#,
        &ids,
    )
    .fetch_all(pool)
    .await?;
    let people = sqlx::query!(
        "select p.incident_id, u.user_id, u.email from incident_participants p join users u using (user_id)
          where p.incident_id = any($1) order by p.joined_at",
        &ids,
    )
    .fetch_all(pool)
    .await?;
    let commanders: Vec<Uuid> = rows.iter().filter_map(|r| r.commander_id).collect();
    let emails: HashMap<Uuid, String> =
        sqlx::query!("select user_id, email from users where user_id = any($1)", &commanders)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| (r.user_id, r.email))
            .collect();
    let mut by_incident: HashMap<Uuid, Vec<AffectedService>> = HashMap::new();
    for r in services {
        by_incident.entry(r.incident_id).or_default().push(AffectedService {
            id: r.service_id,
            name: r.name,
            state: r.state.as_deref().and_then(Outcome::parse),
        });
    }
    let mut participants: HashMap<Uuid, Vec<UserRef>> = HashMap::new();
    for r in people {
        participants.entry(r.incident_id).or_default().push(UserRef { id: r.user_id, email: r.email });
    }
    Ok(rows
        .into_iter()
        .map(|r| Incident {
            id: r.incident_id,
            number: r.number,
            severity: r.severity(),
            status: r.status(),
            times: r.times(),
            commander: r.commander_id.and_then(|id| emails.get(&id).map(|email| UserRef { id, email: email.clone() })),
            participants: participants.remove(&r.incident_id).unwrap_or_default(),
            services: by_incident.remove(&r.incident_id).unwrap_or_default(),
            title: r.title,
            summary: r.summary,
            automatic: r.automatic,
            resolve_suggested_at: r.resolve_suggested_at,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

#[tracing::instrument(skip(pool))]
pub async fn get_incident(pool: &PgPool, id: Uuid) -> Result<Option<Incident>, sqlx::Error> {
    let rows = query_incidents!("where incident_id = $1", id).fetch_all(pool).await?;
    Ok(complete(pool, rows).await?.pop())
}

/// Incidents matching `f`: open ones first, then newest first.
#[tracing::instrument(skip(pool))]
pub async fn list_incidents(pool: &PgPool, f: &IncidentFilter, limit: i64) -> Result<Vec<Incident>, sqlx::Error> {
    let pattern = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(|q| {
        let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows = query_incidents!(
        "where ($1::text is null or status = $1)
            and ($2::text is null or severity = $2)
            and ($3::uuid is null or exists (select 1 from incident_services s
                                              where s.incident_id = i.incident_id and s.service_id = $3))
            and ($4::date is null or created_at >= $4::date)
            and ($5::date is null or created_at < $5::date + 1)
            and ($6::text is null or title ilike $6 or summary ilike $6
                 or exists (select 1 from timeline_entries e
                             where e.incident_id = i.incident_id and e.deleted_at is null and e.text ilike $6))
          order by (status = 'resolved'), created_at desc
          limit $7",
        f.status.map(IncidentStatus::as_str) as Option<&str>,
        f.severity.map(Severity::as_str) as Option<&str>,
        f.service,
        f.from,
        f.to,
        pattern,
        limit,
    )
    .fetch_all(pool)
    .await?;
    complete(pool, rows).await
}

struct EntryRow {
    entry_id: Uuid,
    incident_id: Uuid,
    kind: String,
    text: String,
    author: String,
    happened_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    attachments: Json<Vec<Attachment>>,
    revision: i32,
    edited_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    deleted_by: Option<String>,
}

/// `query_as!` into [`EntryRow`]: the part of the query before the entry's columns, the one copy of
/// the column list, the part after, then the arguments.
macro_rules! query_entries {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            EntryRow,
            $before + r#" entry_id, incident_id, kind, text, author, happened_at, recorded_at,
                          attachments as "attachments: Json<Vec<Attachment>>", revision, edited_at, deleted_at,
                          deleted_by "# + $after
            $(, $arg)*
        )
    };
}

fn entry_from(r: EntryRow) -> TimelineEntry {
    TimelineEntry {
        id: r.entry_id,
        incident_id: r.incident_id,
        kind: EntryKind::parse(&r.kind).unwrap_or(EntryKind::Note),
        html: app::markdown::render(&r.text),
        text: r.text,
        author: r.author,
        happened_at: r.happened_at,
        recorded_at: r.recorded_at,
        attachments: r.attachments.0,
        revision: r.revision,
        edited_at: r.edited_at,
        deleted: r.deleted_at.map(|at| Deletion { at, by: r.deleted_by.unwrap_or_default() }),
    }
}

/// A new timeline entry.
pub struct NewEntryRow<'a> {
    pub id: Uuid,
    pub incident_id: Uuid,
    pub kind: EntryKind,
    pub text: &'a str,
    pub author: &'a str,
    pub author_id: Option<Uuid>,
    pub happened_at: DateTime<Utc>,
    pub attachments: &'a [Attachment],
    pub idempotency_key: Option<&'a str>,
    pub state_change_id: Option<i64>,
}

/// Stores the entry; `None` when one with the same idempotency key or state change exists (the
/// caller reads that one instead).
#[tracing::instrument(skip_all)]
pub async fn insert_entry<'e>(
    ex: impl PgExecutor<'e>,
    e: &NewEntryRow<'_>,
) -> Result<Option<TimelineEntry>, sqlx::Error> {
    let row = query_entries!(
        "insert into timeline_entries (entry_id, incident_id, kind, text, author, author_id, happened_at,
             attachments, idempotency_key, state_change_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict do nothing
         returning",
        "",
        e.id,
        e.incident_id,
        e.kind.as_str(),
        e.text,
        e.author,
        e.author_id,
        e.happened_at,
        Json(e.attachments) as _,
        e.idempotency_key,
        e.state_change_id,
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(entry_from))
}

#[tracing::instrument(skip_all)]
pub async fn entry_by_key(pool: &PgPool, incident: Uuid, key: &str) -> Result<Option<TimelineEntry>, sqlx::Error> {
    let row = query_entries!(
        "select",
        "from timeline_entries where incident_id = $1 and idempotency_key = $2",
        incident,
        key,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(entry_from))
}

/// One entry, deleted or not.
#[tracing::instrument(skip_all)]
pub async fn get_entry(pool: &PgPool, entry: Uuid) -> Result<Option<TimelineEntry>, sqlx::Error> {
    let row = query_entries!("select", "from timeline_entries where entry_id = $1", entry).fetch_optional(pool).await?;
    Ok(row.map(entry_from))
}

/// The incident's timeline in the order things happened; deleted entries only when asked for.
#[tracing::instrument(skip_all)]
pub async fn list_entries(
    pool: &PgPool,
    incident: Uuid,
    with_deleted: bool,
) -> Result<Vec<TimelineEntry>, sqlx::Error> {
    let rows = query_entries!(
        "select",
        "from timeline_entries
          where incident_id = $1 and ($2 or deleted_at is null)
          order by happened_at, recorded_at, entry_id",
        incident,
        with_deleted,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(entry_from).collect())
}

/// The entry with its author's user id, locked for a change.
#[tracing::instrument(skip_all)]
pub async fn lock_entry(
    tx: &mut Transaction<'_, Postgres>,
    incident: Uuid,
    entry: Uuid,
) -> Result<Option<(TimelineEntry, Option<Uuid>)>, sqlx::Error> {
    // The author's id is not an entry field: read it by itself in the same locked transaction.
    let author_id = sqlx::query_scalar!(
        "select author_id from timeline_entries where incident_id = $1 and entry_id = $2 for update",
        incident,
        entry
    )
    .fetch_optional(&mut **tx)
    .await?;
    let Some(author_id) = author_id else { return Ok(None) };
    let row = query_entries!("select", "from timeline_entries where entry_id = $1", entry).fetch_one(&mut **tx).await?;
    Ok(Some((entry_from(row), author_id)))
}

/// Keeps `old` as a revision and writes the new version over it.
#[tracing::instrument(skip_all)]
pub async fn update_entry(
    tx: &mut Transaction<'_, Postgres>,
    old: &TimelineEntry,
    new: &TimelineEntry,
    by: &str,
) -> Result<TimelineEntry, sqlx::Error> {
    sqlx::query!(
        "insert into timeline_revisions (entry_id, revision, kind, text, happened_at, attachments, replaced_by)
         values ($1, $2, $3, $4, $5, $6, $7)",
        old.id,
        old.revision,
        old.kind.as_str(),
        old.text,
        old.happened_at,
        Json(&old.attachments) as _,
        by,
    )
    .execute(&mut **tx)
    .await?;
    let row = query_entries!(
        "update timeline_entries set kind = $2, text = $3, happened_at = $4, attachments = $5,
             revision = revision + 1, edited_at = now()
          where entry_id = $1 returning",
        "",
        old.id,
        new.kind.as_str(),
        new.text,
        new.happened_at,
        Json(&new.attachments) as _,
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(entry_from(row))
}

#[tracing::instrument(skip_all)]
pub async fn delete_entry(
    tx: &mut Transaction<'_, Postgres>,
    entry: Uuid,
    by: &str,
) -> Result<TimelineEntry, sqlx::Error> {
    let row = query_entries!(
        "update timeline_entries set deleted_at = coalesce(deleted_at, now()), deleted_by = coalesce(deleted_by, $2)
          where entry_id = $1 returning",
        "",
        entry,
        by,
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(entry_from(row))
}

#[tracing::instrument(skip_all)]
pub async fn entry_exists(pool: &PgPool, incident: Uuid, entry: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from timeline_entries where incident_id = $1 and entry_id = $2) as "exists!""#,
        incident,
        entry,
    )
    .fetch_one(pool)
    .await
}

#[tracing::instrument(skip_all)]
pub async fn entry_revisions(pool: &PgPool, entry: Uuid) -> Result<Vec<EntryRevision>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select revision, kind, text, happened_at, attachments as "attachments: Json<Vec<Attachment>>",
                  replaced_by, replaced_at
             from timeline_revisions where entry_id = $1 order by revision"#,
        entry,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| EntryRevision {
            revision: r.revision,
            kind: EntryKind::parse(&r.kind).unwrap_or(EntryKind::Note),
            text: r.text,
            happened_at: r.happened_at,
            attachments: r.attachments.0,
            replaced_by: r.replaced_by,
            replaced_at: r.replaced_at,
        })
        .collect())
}

// ---- The incident engine's reads and writes ----

/// A probe state change not yet handled by the incident engine, with what it needs to decide.
#[derive(Clone, Debug)]
pub struct PendingChange {
    pub state_change_id: i64,
    pub probe_id: Uuid,
    pub at: DateTime<Utc>,
    pub from_state: String,
    pub to_state: String,
    pub request_id: String,
    pub error_class: Option<String>,
    pub probe_name: String,
    pub spec: Json<ProbeSpec>,
    pub service_id: Uuid,
    pub service_name: String,
    pub criticality: String,
    pub quorum: Option<Json<app::model::QuorumNote>>,
}

/// The oldest unhandled state changes, locked so that two engines never handle one twice.
#[tracing::instrument(skip_all)]
pub async fn claim_changes(tx: &mut Transaction<'_, Postgres>, limit: i64) -> Result<Vec<PendingChange>, sqlx::Error> {
    sqlx::query_as!(
        PendingChange,
        r#"select c.state_change_id, c.probe_id, c.at, c.from_state, c.to_state, c.request_id, c.error_class,
                  p.name as probe_name, p.spec as "spec: Json<ProbeSpec>", p.service_id, s.name as service_name,
                  s.criticality, c.quorum as "quorum: Json<app::model::QuorumNote>"
             from state_changes c
             join probes p using (probe_id)
             join services s on s.service_id = p.service_id
            where c.handled_at is null
            order by c.state_change_id
            limit $1
            for update of c skip locked"#,
        limit,
    )
    .fetch_all(&mut **tx)
    .await
}

#[tracing::instrument(skip_all)]
pub async fn mark_handled(tx: &mut Transaction<'_, Postgres>, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!("update state_changes set handled_at = now() where state_change_id = $1", id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// When the incident started (its creation when no start is set), and whether Triage opened it.
#[tracing::instrument(skip_all)]
pub async fn start_of(conn: &mut PgConnection, incident: Uuid) -> Result<Option<(DateTime<Utc>, bool)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select coalesce(started_at, created_at) as "start!", automatic from incidents where incident_id = $1"#,
        incident
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.start, r.automatic)))
}

/// The open incident that covers `service`, newest first, if any.
#[tracing::instrument(skip_all)]
pub async fn open_incident_for_service(
    tx: &mut Transaction<'_, Postgres>,
    service: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select i.incident_id from incidents i join incident_services s using (incident_id)
          where s.service_id = $1 and i.status <> 'resolved'
          order by i.created_at desc limit 1",
        service,
    )
    .fetch_optional(&mut **tx)
    .await
}

/// Serialises the engine's decision to open an incident for a service, across engines.
#[tracing::instrument(skip_all)]
pub async fn lock_service_for_opening(tx: &mut Transaction<'_, Postgres>, service: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!("select 1 as locked from services where service_id = $1 for update", service)
        .fetch_optional(&mut **tx)
        .await
        .map(|_| ())
}

/// The stored result that confirmed a change (same probe, time and request id).
#[tracing::instrument(skip_all)]
pub async fn result_at(pool: &PgPool, probe: Uuid, at: DateTime<Utc>) -> Result<Option<ProbeResult>, sqlx::Error> {
    let mut found = super::results::list_results(pool, &[probe], at, at + chrono::Duration::microseconds(1), 1).await?;
    Ok(found.pop())
}

/// Up to `n` results of the probe in the hour before `at`, newest first, with the given outcome.
#[tracing::instrument(skip_all)]
pub async fn results_before(
    pool: &PgPool,
    probe: Uuid,
    at: DateTime<Utc>,
    outcome: Outcome,
    n: usize,
) -> Result<Vec<ProbeResult>, sqlx::Error> {
    let found = super::results::list_results(pool, &[probe], at - chrono::Duration::hours(1), at, 500).await?;
    Ok(found.into_iter().filter(|r| r.outcome == outcome).take(n).collect())
}

/// The first failing result of the run of failures that ends at `at`: the last success before
/// `at` (within a day), then the first result after it.
#[tracing::instrument(skip_all)]
pub async fn failing_since(
    pool: &PgPool,
    probe: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let mut tx = super::results::snapshot(pool).await?;
    let found = super::results::scan(
        &mut tx,
        Some(&[probe]),
        at - chrono::Duration::days(1),
        at + chrono::Duration::microseconds(1),
    )
    .await?;
    tx.commit().await?;
    let day_before = at - chrono::Duration::days(1);
    let last_up = found.iter().filter(|r| r.outcome == Outcome::Up && r.at > day_before).map(|r| r.at).max();
    Ok(found.iter().filter(|r| r.at > day_before && last_up.is_none_or(|up| r.at > up)).map(|r| r.at).min())
}

/// A probe that has been degraded since `since`, with what opening an incident for it needs.
#[derive(Clone, Debug)]
pub struct DegradedProbe {
    pub probe_id: Uuid,
    pub probe_name: String,
    pub since: DateTime<Utc>,
    pub spec: Json<ProbeSpec>,
    pub service_id: Uuid,
    pub service_name: String,
    pub criticality: String,
}

/// Enabled probes now degraded whose service no open incident covers.
#[tracing::instrument(skip_all)]
pub async fn degraded_uncovered(pool: &PgPool) -> Result<Vec<DegradedProbe>, sqlx::Error> {
    sqlx::query_as!(
        DegradedProbe,
        r#"select p.probe_id, p.name as probe_name, ps.since, p.spec as "spec: Json<ProbeSpec>", p.service_id,
                  s.name as service_name, s.criticality
             from probe_state ps join probes p using (probe_id) join services s on s.service_id = p.service_id
            where ps.state = 'degraded' and p.enabled
              and not exists (select 1 from incidents i join incident_services x using (incident_id)
                               where x.service_id = p.service_id and i.status <> 'resolved')"#,
    )
    .fetch_all(pool)
    .await
}

/// For each open incident: its affected probes (those attached, or else every enabled probe of
/// its services) with state, since when, and how long they must stay up.
pub struct OpenIncidentProbes {
    pub incident_id: Uuid,
    pub suggested: bool,
    pub probes: Vec<(Outcome, DateTime<Utc>, u32)>,
}

#[tracing::instrument(skip_all)]
pub async fn open_incident_probes(pool: &PgPool) -> Result<Vec<OpenIncidentProbes>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"with open as (select incident_id, resolve_suggested_at is not null as suggested
                         from incidents where status <> 'resolved'),
              affected as (
                select o.incident_id, ip.probe_id from open o join incident_probes ip using (incident_id)
                union
                select o.incident_id, p.probe_id from open o join incident_services s using (incident_id)
                  join probes p on p.service_id = s.service_id and p.enabled
                 where not exists (select 1 from incident_probes ip where ip.incident_id = o.incident_id))
         select o.incident_id as "incident_id!", o.suggested as "suggested!", ps.state as "state?",
                ps.since as "since?", p.spec as "spec?: Json<ProbeSpec>"
           from open o
           left join affected a using (incident_id)
           left join probes p on p.probe_id = a.probe_id
           left join probe_state ps on ps.probe_id = a.probe_id"#,
    )
    .fetch_all(pool)
    .await?;
    let mut out: Vec<OpenIncidentProbes> = Vec::new();
    for r in rows {
        let (incident_id, suggested, state, since, spec) = (r.incident_id, r.suggested, r.state, r.since, r.spec);
        if out.last().is_none_or(|o| o.incident_id != incident_id) {
            out.push(OpenIncidentProbes { incident_id, suggested, probes: Vec::new() });
        }
        if let (Some(last), Some(state), Some(since), Some(spec)) =
            (out.last_mut(), state.as_deref().and_then(Outcome::parse), since, spec)
        {
            last.probes.push((state, since, spec.0.incidents.healthy_for_secs));
        }
    }
    Ok(out)
}

/// Sets or clears the resolve suggestion; returns whether it changed.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn set_resolve_suggested(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update incidents set resolve_suggested_at = $2, updated_at = now()
          where incident_id = $1 and status <> 'resolved' and (resolve_suggested_at is null) <> ($2::timestamptz is null)",
        id,
        at,
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Incident windows touching [from, to] for a service, for the bands behind its charts.
#[tracing::instrument(skip_all)]
pub async fn bands_for_service(
    pool: &PgPool,
    service: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<app::model::IncidentBand>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select i.number, i.title, coalesce(i.started_at, i.created_at) as "started!", i.resolved_at as resolved
             from incidents i join incident_services s using (incident_id)
            where s.service_id = $1 and coalesce(i.started_at, i.created_at) <= $3
              and (i.resolved_at is null or i.resolved_at >= $2)
            order by 3"#,
        service,
        from,
        to,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| app::model::IncidentBand { number: r.number, title: r.title, from: r.started, to: r.resolved })
        .collect())
}
