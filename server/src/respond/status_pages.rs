//! Public status pages: admins choose services in groups; anyone may read the page. What a page
//! shows is built here, from the services' states, the day rollups, maintenance windows and the
//! public updates commanders post, and nothing else: no probe, target, request id or internal
//! timeline entry is read into it. Public traffic is served from a per-page copy refreshed at
//! most every few seconds, so a busy status page costs the database one build per interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::model::{
    DayBar, IncidentStatus, Outcome, PublicGroup, PublicIncident, PublicMaintenance, PublicService, PublicState,
    PublicUpdate, PublicUpdateInput, Role, Service, StatusPage, StatusPageSpec, StatusSummary, banner,
};
use chrono::{DateTime, Duration as Span, DurationRound, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::access::actor::Actor;
use crate::error::Error;
use crate::monitor::cached::Cached;
use crate::respond::incidents::Author;
use crate::storage::bus::{Bus, Note};
use crate::storage::reads::Reads;
use crate::storage::status_pages::{self as store, PageFilter};
use crate::storage::{catalog, incidents as incidents_store};

/// How fresh a public page is at worst.
pub const REFRESH: Duration = Duration::from_secs(5);
/// Days of bars per service.
pub const DAYS: i64 = 90;
/// Resolved incidents stay on the page this long.
const RESOLVED_SHOWN: Span = Span::days(14);
const MAX_GROUPS: usize = 50;
const MAX_SERVICES: usize = 500;

/// A page as the public gets it, built once per [`REFRESH`].
pub struct Published {
    pub summary: StatusSummary,
    /// `summary` as JSON, serialised once for every reader.
    pub json: String,
    /// The page and its feed, rendered by the first reader of this copy and kept with it.
    pub html: std::sync::OnceLock<String>,
    pub atom: std::sync::OnceLock<String>,
}

type PageCache = Cached<Option<Arc<Published>>, Arc<sqlx::Error>>;
/// A public service's uptime over one badge window.
type UptimeCache = Cached<Option<f64>, Arc<sqlx::Error>>;
/// Keyed by (service, badge window in seconds).
type Uptimes = HashMap<(Uuid, i64), Arc<UptimeCache>>;
/// Every page by slug.
type PageIndex = Cached<Arc<HashMap<String, StatusPage>>, Arc<sqlx::Error>>;

#[derive(Clone)]
pub struct StatusPages {
    pub pool: PgPool,
    /// The slugs that exist, so an unknown one costs no query.
    index: Arc<PageIndex>,
    /// One cache per existing page (bounded by the pages admins made).
    built: Arc<Mutex<HashMap<String, Arc<PageCache>>>>,
    /// One per (public service, badge window in seconds): badges sit in READMEs fetched by
    /// anyone, so each is computed at most once per [`REFRESH`].
    uptimes: Arc<Mutex<Uptimes>>,
    /// Tells the other replicas to drop their copies too.
    bus: Bus,
    /// Public pages tolerate a second of lag: built from the read replica when there is one.
    reads: Reads,
}

fn check_spec(spec: &StatusPageSpec) -> Result<StatusPageSpec, Error> {
    let slug = spec.slug.trim();
    let good = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if slug.is_empty() || slug.len() > 63 || slug.starts_with('-') || !slug.chars().all(good) {
        return Err(Error::invalid("slug", "1–63 lower-case letters, digits and dashes, not starting with a dash"));
    }
    let title = spec.title.trim();
    if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
        return Err(Error::invalid("title", "must be 1–200 characters on one line"));
    }
    if spec.description.chars().count() > 2000 {
        return Err(Error::invalid("description", "at most 2000 characters"));
    }
    if spec.groups.len() > MAX_GROUPS {
        return Err(Error::invalid("groups", format!("at most {MAX_GROUPS}")));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, g) in spec.groups.iter().enumerate() {
        if g.name.trim().is_empty() || g.name.chars().count() > 100 {
            return Err(Error::invalid(format!("groups[{i}].name"), "must be 1–100 characters"));
        }
        if let Some(dup) = g.services.iter().find(|s| !seen.insert(**s)) {
            return Err(Error::invalid(format!("groups[{i}].services"), format!("{dup} is on the page twice")));
        }
    }
    if seen.len() > MAX_SERVICES {
        return Err(Error::invalid("groups", format!("at most {MAX_SERVICES} services")));
    }
    Ok(StatusPageSpec {
        slug: slug.to_string(),
        title: title.to_string(),
        description: spec.description.trim().to_string(),
        groups: spec
            .groups
            .iter()
            .map(|g| app::model::StatusGroup { name: g.name.trim().to_string(), ..g.clone() })
            .collect(),
    })
}

fn public_state(s: &Service, maintenance: bool) -> PublicState {
    match s.state {
        _ if maintenance => PublicState::Maintenance,
        Some(Outcome::Down) => PublicState::Outage,
        Some(Outcome::Degraded) => PublicState::Degraded,
        Some(Outcome::Up) => PublicState::Operational,
        None => PublicState::Unknown,
    }
}

/// How bad a state is for the banner: an outage outranks everything, no data ranks lowest.
fn badness(s: PublicState) -> u8 {
    match s {
        PublicState::Unknown => 0,
        PublicState::Operational => 1,
        PublicState::Maintenance => 2,
        PublicState::Degraded => 3,
        PublicState::Outage => 4,
    }
}

/// A day's worst state from its checks: any failed check makes it degraded, more than 1 % of
/// them an outage.
fn day_state(count: u64, down: u64) -> PublicState {
    match (count, down) {
        (0, _) => PublicState::Unknown,
        (_, 0) => PublicState::Operational,
        (c, d) if d * 100 > c => PublicState::Outage,
        _ => PublicState::Degraded,
    }
}

impl StatusPages {
    pub fn new(pool: PgPool, reads: Reads, bus: Bus) -> Self {
        Self { pool, index: Arc::new(Cached::new(REFRESH)), built: Arc::default(), uptimes: Arc::default(), bus, reads }
    }

    async fn check_services(&self, spec: &StatusPageSpec) -> Result<(), Error> {
        let ids: Vec<Uuid> = spec.groups.iter().flat_map(|g| g.services.iter().copied()).collect();
        let known = crate::storage::notify::existing_services(&self.pool, &ids).await?;
        for (i, g) in spec.groups.iter().enumerate() {
            if let Some(unknown) = g.services.iter().find(|s| !known.contains(s)) {
                return Err(Error::invalid(
                    format!("groups[{i}].services"),
                    format!("no service has the id {unknown}"),
                ));
            }
        }
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<StatusPage>, Error> {
        Ok(store::pages(&self.pool, PageFilter::All).await?)
    }

    pub async fn get(&self, id: Uuid) -> Result<StatusPage, Error> {
        store::pages(&self.pool, PageFilter::Id(id)).await?.pop().ok_or(Error::NotFound("status page"))
    }

    /// Creates (`id` none) or replaces a page.
    pub async fn save(&self, actor: &Actor, id: Option<Uuid>, spec: &StatusPageSpec) -> Result<StatusPage, Error> {
        let spec = check_spec(spec)?;
        self.check_services(&spec).await?;
        let (page, create) = match id {
            Some(id) => (id, false),
            None => (Uuid::new_v4(), true),
        };
        let mut tx = self.pool.begin().await?;
        let saved = store::save(&mut tx, page, &spec, create).await.map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Error::Conflict { field: Some("slug".into()), message: "another page has this slug".into() }
            }
            _ => Error::from(e),
        })?;
        if !saved {
            return Err(Error::NotFound("status page"));
        }
        actor.audit(&mut *tx, "status_page.save", page.to_string(), serde_json::json!({ "slug": spec.slug })).await?;
        tx.commit().await?;
        self.forget();
        self.get(page).await
    }

    pub async fn delete(&self, actor: &Actor, id: Uuid) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        if !store::delete(&mut tx, id).await? {
            return Err(Error::NotFound("status page"));
        }
        actor.audit(&mut *tx, "status_page.delete", id.to_string(), serde_json::json!({})).await?;
        tx.commit().await?;
        self.forget();
        Ok(())
    }

    /// An admin's change shows at once, not after the public copy expires, on every replica.
    fn forget(&self) {
        self.forget_here();
        self.bus.note(&Note::StatusPages);
    }

    /// Drops this replica's copies (another replica's change, or a gap in what it heard).
    pub fn forget_here(&self) {
        // Rebuilt from the primary until a read replica has surely replayed the change.
        self.reads.changed();
        self.index.clear();
        self.built.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.uptimes.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The uptime (percent of checks not down; `None` without checks) of a service over the last
    /// `span`, for its badge. Callers check [`is_public`](Self::is_public) first, which bounds
    /// the cache to the public services and the three badge windows.
    pub async fn uptime(&self, service: Uuid, span: Span) -> Result<Option<f64>, Arc<sqlx::Error>> {
        let cache = {
            let mut uptimes = self.uptimes.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(uptimes.entry((service, span.num_seconds())).or_insert_with(|| Arc::new(Cached::new(REFRESH))))
        };
        let pool = self.reads.pool().clone();
        cache
            .get(move || async move {
                let probes = catalog::list_probes(&pool, Some(service)).await.map_err(Arc::new)?;
                let (traffic, _) = crate::monitor::series::split_probes(&probes);
                let now = Utc::now();
                let series = crate::monitor::series::series_of(&pool, &traffic, now - span, now, None)
                    .await
                    .map_err(Arc::new)?;
                let (count, down) = series.points.iter().fold((0u64, 0u64), |(c, d), p| (c + p.count, d + p.down));
                Ok((count > 0).then(|| (count - down) as f64 * 100.0 / count as f64))
            })
            .await
    }

    /// Posts an update for the outside (commanders); it reaches the pages within [`REFRESH`].
    pub async fn post_update(
        &self,
        actor: &Actor,
        incident: Uuid,
        input: &PublicUpdateInput,
    ) -> Result<PublicUpdate, Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Commander, "posting a public update")?;
        let text = input.text.trim();
        if text.is_empty() || text.chars().count() > 5000 {
            return Err(Error::invalid("text", "must be 1–5000 characters"));
        }
        // Control characters would make the Atom feed invalid XML.
        if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(Error::invalid("text", "must not contain control characters"));
        }
        incidents_store::get_incident(&self.pool, incident).await?.ok_or(Error::NotFound("incident"))?;
        let mut tx = self.pool.begin().await?;
        let update = store::insert_update(&mut tx, incident, input.status, text, &author.name).await?;
        actor
            .audit(
                &mut *tx,
                "incident.public_update",
                incident.to_string(),
                serde_json::json!({ "status": input.status }),
            )
            .await?;
        tx.commit().await?;
        // The outside hears it at once, not after the page's copy expires.
        self.forget();
        Ok(update)
    }

    pub async fn updates(&self, incident: Uuid) -> Result<Vec<PublicUpdate>, Error> {
        Ok(store::updates(&self.pool, &[incident]).await?)
    }

    /// The page with `slug` as the public sees it; `None` when there is no such page.
    pub async fn published(&self, slug: &str) -> Result<Option<Arc<Published>>, Arc<sqlx::Error>> {
        let index = self.index().await?;
        let Some(page) = index.get(slug).cloned() else { return Ok(None) };
        let cache = {
            let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(built.entry(page.spec.slug.clone()).or_insert_with(|| Arc::new(Cached::new(REFRESH))))
        };
        let pool = self.reads.pool().clone();
        cache
            .get(move || async move {
                let summary = build(&pool, &page, Utc::now()).await.map_err(Arc::new)?;
                // Plain structs with string keys always serialise; an empty body would say so.
                let json = serde_json::to_string(&summary).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "a status summary did not serialise");
                    String::new()
                });
                Ok(Some(Arc::new(Published { summary, json, html: Default::default(), atom: Default::default() })))
            })
            .await
    }

    /// Every page by slug, read at most once per [`REFRESH`].
    async fn index(&self) -> Result<Arc<HashMap<String, StatusPage>>, Arc<sqlx::Error>> {
        let pool = self.pool.clone();
        self.index
            .get(move || async move {
                let pages = store::pages(&pool, PageFilter::All).await.map_err(Arc::new)?;
                Ok(Arc::new(pages.into_iter().map(|p| (p.spec.slug.clone(), p)).collect::<HashMap<_, _>>()))
            })
            .await
    }

    /// Whether a badge may be drawn for `service` (it is on some page), from the cached pages.
    pub async fn is_public(&self, service: Uuid) -> Result<bool, Arc<sqlx::Error>> {
        let index = self.index().await?;
        Ok(index.values().any(|p| p.spec.groups.iter().any(|g| g.services.contains(&service))))
    }
}

/// "Service disruption: Shop, Billing": a heading that names only the page's own services.
fn heading(services: &[Uuid], names: &HashMap<Uuid, String>) -> String {
    let named: Vec<&str> = services.iter().filter_map(|s| names.get(s).map(String::as_str)).collect();
    format!("Service disruption: {}", named.join(", "))
}

/// Builds what the page shows at `now`.
pub async fn build(pool: &PgPool, page: &StatusPage, now: DateTime<Utc>) -> Result<StatusSummary, sqlx::Error> {
    let chosen: Vec<Uuid> = page.spec.groups.iter().flat_map(|g| g.services.iter().copied()).collect();
    let listed = catalog::services_in(pool, &chosen).await?;
    let names: HashMap<Uuid, String> = listed.iter().map(|s| (s.id, s.name.clone())).collect();
    let today = now.duration_trunc(Span::days(1)).unwrap_or(now);
    let first_day = today - Span::days(DAYS - 1);

    let incidents = store::public_incidents(pool, &chosen, first_day).await?;
    let ids: Vec<Uuid> = incidents.iter().map(|i| i.incident_id).collect();
    let updates = store::updates(pool, &ids).await?;
    // Each public incident with the page's services it touches (for the bars' hovers).
    let public: Vec<(PublicIncident, &[Uuid])> = incidents
        .iter()
        .map(|i| {
            // Its public id is that of its first public update: the internal incident id (which
            // opens the room to anyone signed in) never leaves.
            let first = updates.iter().filter(|u| u.incident_id == i.incident_id).map(|u| u.id).next_back();
            let public_id = first.unwrap_or_else(Uuid::nil);
            // The outside gets the sanitised HTML only, never the text as typed.
            let mine: Vec<PublicUpdate> = updates
                .iter()
                .filter(|u| u.incident_id == i.incident_id)
                .map(|u| PublicUpdate { text: String::new(), incident_id: public_id, ..u.clone() })
                .collect();
            // A resolved incident reads resolved whatever its last public update said.
            let said = mine.first().map_or(IncidentStatus::Investigating, |u| u.status);
            let shown = PublicIncident {
                id: public_id,
                heading: heading(&i.services, &names),
                status: if i.resolved_at.is_some() { IncidentStatus::Resolved } else { said },
                started_at: i.started_at,
                resolved_at: i.resolved_at,
                updates: mine,
            };
            (shown, i.services.as_slice())
        })
        .collect();

    // Maintenance first (the windows read once), on one connection given back before the queries
    // below take theirs (a build never holds one connection while waiting for another).
    let mut bands_of = {
        let mut conn = pool.acquire().await?;
        crate::monitor::maintenance::bands_for_services(&mut conn, &listed, now, now + Span::days(7)).await?
    };
    let mut probes_of: HashMap<Uuid, Vec<app::model::Probe>> = HashMap::new();
    for p in catalog::probes_of_services(pool, &chosen).await? {
        probes_of.entry(p.service_id).or_default().push(p);
    }
    let services: HashMap<Uuid, Service> = listed.into_iter().map(|s| (s.id, s)).collect();
    let mut maintenance: Vec<PublicMaintenance> = Vec::new();
    let mut groups = Vec::new();
    for g in &page.spec.groups {
        let mut shown = Vec::new();
        for id in &g.services {
            let Some(s) = services.get(id) else { continue };
            let bands = bands_of.remove(id).unwrap_or_default();
            let under_way = bands.iter().any(|b| b.from <= now && now < b.to);
            for b in bands {
                // Window titles were written for colleagues (they may name hosts): the outside
                // gets the times and the page's services only.
                match maintenance.iter_mut().find(|m| m.starts_at == b.from && m.ends_at == b.to) {
                    Some(m) => m.services.push(s.name.clone()),
                    None => maintenance.push(PublicMaintenance {
                        title: "Scheduled maintenance".into(),
                        starts_at: b.from,
                        ends_at: b.to,
                        active: b.from <= now && now < b.to,
                        services: vec![s.name.clone()],
                    }),
                }
            }
            let (traffic, _) = crate::monitor::series::split_probes(probes_of.get(id).map_or(&[], Vec::as_slice));
            // One series per service: it merges the day rollups with today's raw tail.
            let series = crate::monitor::series::series_of(pool, &traffic, first_day, now, Some(86_400)).await?;
            let (mut checks, mut bad) = (0u64, 0u64);
            let days: Vec<DayBar> = (0..DAYS)
                .map(|d| {
                    let day = first_day + Span::days(d);
                    let p = series.points.iter().find(|p| p.at == day);
                    let (count, down) = p.map_or((0, 0), |p| (p.count, p.down));
                    checks += count;
                    bad += down;
                    let date: NaiveDate = day.date_naive();
                    let incidents = public
                        .iter()
                        .filter(|(i, touched)| {
                            touched.contains(id)
                                && i.started_at < day + Span::days(1)
                                && i.resolved_at.is_none_or(|r| r >= day)
                        })
                        .map(|(i, _)| i.heading.clone())
                        .collect();
                    DayBar {
                        date,
                        uptime_pct: (count > 0).then(|| (count - down) as f64 * 100.0 / count as f64),
                        worst: day_state(count, down),
                        incidents,
                    }
                })
                .collect();
            shown.push(PublicService {
                id: s.id,
                name: s.name.clone(),
                state: public_state(s, under_way),
                uptime_pct: (checks > 0).then(|| (checks - bad) as f64 * 100.0 / checks as f64),
                days,
            });
        }
        groups.push(PublicGroup { name: g.name.clone(), services: shown });
    }
    // The bars' hovers name incidents of all 90 days; the list keeps open ones and those
    // resolved lately.
    let mut public: Vec<PublicIncident> = public.into_iter().map(|(i, _)| i).collect();
    public.retain(|i| i.resolved_at.is_none_or(|r| r >= now - RESOLVED_SHOWN));
    let all: Vec<PublicState> = groups.iter().flat_map(|g| g.services.iter().map(|s| s.state)).collect();
    let worst = all.iter().copied().max_by_key(|s| badness(*s)).unwrap_or(PublicState::Unknown);
    let affected = all.iter().filter(|s| **s == worst).count();
    Ok(StatusSummary {
        slug: page.spec.slug.clone(),
        title: page.spec.title.clone(),
        description: page.spec.description.clone(),
        status: worst,
        status_text: banner(worst, affected, all.len()),
        groups,
        incidents: public,
        maintenance,
        generated_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_groups_are_checked_by_name() {
        let good = StatusPageSpec { slug: "acme".into(), title: "Acme".into(), ..Default::default() };
        assert!(check_spec(&good).is_ok());
        let field = |s: StatusPageSpec| match check_spec(&s) {
            Err(Error::Invalid { field, .. }) => field.unwrap_or_default(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(StatusPageSpec { slug: "Acme Status".into(), ..good.clone() }), "slug");
        assert_eq!(field(StatusPageSpec { slug: "-acme".into(), ..good.clone() }), "slug");
        assert_eq!(field(StatusPageSpec { title: " ".into(), ..good.clone() }), "title");
        let twice = app::model::StatusGroup { name: "Shop".into(), services: vec![Uuid::nil(), Uuid::nil()] };
        assert_eq!(field(StatusPageSpec { groups: vec![twice], ..good }), "groups[0].services");
    }

    #[test]
    fn a_day_is_as_bad_as_its_failed_checks() {
        assert_eq!(day_state(0, 0), PublicState::Unknown);
        assert_eq!(day_state(1440, 0), PublicState::Operational);
        assert_eq!(day_state(1440, 3), PublicState::Degraded);
        assert_eq!(day_state(1440, 100), PublicState::Outage);
    }
}
