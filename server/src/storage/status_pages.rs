//! Status pages, public updates, and the incidents a page may show.

use app::model::{IncidentStatus, PublicUpdate, StatusGroup, StatusPage, StatusPageSpec};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

struct PageRow {
    page_id: Uuid,
    slug: String,
    title: String,
    description: String,
    groups: Json<Vec<StatusGroup>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<PageRow> for StatusPage {
    fn from(r: PageRow) -> Self {
        StatusPage {
            id: r.page_id,
            spec: StatusPageSpec { slug: r.slug, title: r.title, description: r.description, groups: r.groups.0 },
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Which pages [`pages`] reads.
pub enum PageFilter<'a> {
    All,
    Id(Uuid),
    Slug(&'a str),
}

/// Pages by `filter`, by title.
#[tracing::instrument(skip_all)]
pub async fn pages(pool: &PgPool, filter: PageFilter<'_>) -> Result<Vec<StatusPage>, sqlx::Error> {
    let (id, slug) = match filter {
        PageFilter::All => (None, None),
        PageFilter::Id(id) => (Some(id), None),
        PageFilter::Slug(slug) => (None, Some(slug)),
    };
    let rows = sqlx::query_as!(
        PageRow,
        r#"select page_id, slug, title, description, groups as "groups: Json<Vec<StatusGroup>>", created_at, updated_at
             from status_pages
            where ($1::uuid is null or page_id = $1) and ($2::text is null or slug = $2)
            order by lower(title), slug"#,
        id,
        slug,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(StatusPage::from).collect())
}

/// Inserts the page, or replaces the one with `id` (`false` when there is none).
#[tracing::instrument(skip_all, fields(page = %id))]
pub async fn save(conn: &mut PgConnection, id: Uuid, spec: &StatusPageSpec, create: bool) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "insert into status_pages (page_id, slug, title, description, groups)
         select $1, $2, $3, $4, $5 where $6 or exists (select 1 from status_pages where page_id = $1)
         on conflict (page_id) do update
            set slug = excluded.slug, title = excluded.title, description = excluded.description,
                groups = excluded.groups, updated_at = now()",
        id,
        spec.slug,
        spec.title,
        spec.description,
        Json(&spec.groups) as _,
        create,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all)]
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!("delete from status_pages where page_id = $1", id).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all)]
pub async fn insert_update(
    conn: &mut PgConnection,
    incident: Uuid,
    status: IncidentStatus,
    text: &str,
    author: &str,
) -> Result<PublicUpdate, sqlx::Error> {
    let id = Uuid::new_v4();
    let row = sqlx::query!(
        "insert into public_updates (update_id, incident_id, status, text, author) values ($1, $2, $3, $4, $5)
         returning created_at",
        id,
        incident,
        status.as_str(),
        text,
        author
    )
    .fetch_one(conn)
    .await?;
    Ok(PublicUpdate {
        id,
        incident_id: incident,
        status,
        text: text.to_string(),
        html: app::markdown::render(text),
        at: row.created_at,
    })
}

/// An incident a page may show: it has public updates and touches `services`.
pub struct PublicIncidentRow {
    pub incident_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub services: Vec<Uuid>,
}

/// Incidents with at least one public update that touch `services` and were open at some time
/// since `since`.
#[tracing::instrument(skip_all)]
pub async fn public_incidents(
    pool: &PgPool,
    services: &[Uuid],
    since: DateTime<Utc>,
) -> Result<Vec<PublicIncidentRow>, sqlx::Error> {
    sqlx::query_as!(
        PublicIncidentRow,
        r#"select i.incident_id, coalesce(i.started_at, i.created_at) as "started_at!", i.resolved_at,
                  array(select service_id from incident_services s
                         where s.incident_id = i.incident_id and s.service_id = any($1)) as "services!"
             from incidents i
            where exists (select 1 from public_updates u where u.incident_id = i.incident_id)
              and exists (select 1 from incident_services s where s.incident_id = i.incident_id and s.service_id = any($1))
              and (i.resolved_at is null or i.resolved_at >= $2)
            order by coalesce(i.started_at, i.created_at) desc"#,
        services,
        since,
    )
    .fetch_all(pool)
    .await
}

/// The public updates of `incidents`, newest first.
#[tracing::instrument(skip_all)]
pub async fn updates(pool: &PgPool, incidents: &[Uuid]) -> Result<Vec<PublicUpdate>, sqlx::Error> {
    let rows = sqlx::query!(
        "select update_id, incident_id, status, text, created_at from public_updates
          where incident_id = any($1) order by created_at desc, update_id",
        incidents
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(PublicUpdate {
                id: r.update_id,
                incident_id: r.incident_id,
                status: IncidentStatus::parse(&r.status)?,
                html: app::markdown::render(&r.text),
                text: r.text,
                at: r.created_at,
            })
        })
        .collect())
}
