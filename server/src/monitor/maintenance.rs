//! Maintenance windows: when they are under way (recurring ones at their wall-clock time in their
//! time zone), which services they cover, and the API's operations. The incident engine asks
//! [`active_for`] before opening an incident; the notification router asks [`under_way`] before
//! sending; the overview shows what is under way.

use app::model::{Every, MaintenanceSpec, MaintenanceWindow, Occurrence, Recurrence};
use chrono::{DateTime, Months, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::access::actor::Actor;
use crate::error::Error;
use crate::storage::maintenance::{self as store, WindowFilter, WindowRow};

/// The local time `local` in `tz`; in a daylight-saving gap (02:30 that never happens), the
/// first instant after it.
fn resolve(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        chrono::LocalResult::None => {
            tz.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest().map(|t| t.with_timezone(&Utc))
        }
    }
}

/// Occurrence `n` (0 is the first) of a window.
fn nth(spec: &MaintenanceSpec, r: &Recurrence, tz: Tz, n: u32) -> Option<Occurrence> {
    let length = spec.ends_at - spec.starts_at;
    let local = spec.starts_at.with_timezone(&tz).naive_local();
    let step = n.checked_mul(r.interval.max(1))?;
    let start_local = match r.every {
        Every::Week => local.checked_add_signed(chrono::Duration::weeks(i64::from(step)))?,
        // A window on the 31st runs on the last day of shorter months.
        Every::Month => local.checked_add_months(Months::new(step))?,
    };
    if r.until.is_some_and(|u| start_local.date() > u) {
        return None;
    }
    let starts_at = resolve(tz, start_local)?;
    Some(Occurrence { starts_at, ends_at: starts_at + length })
}

/// Roughly how many periods lie between the first occurrence and `t` (a guess that is corrected
/// by looking at its neighbours).
fn estimate(spec: &MaintenanceSpec, r: &Recurrence, t: DateTime<Utc>) -> u32 {
    let elapsed = (t - spec.starts_at).num_seconds().max(0);
    let period = match r.every {
        Every::Week => 7 * 86_400,
        Every::Month => 2_629_746,
    } * i64::from(r.interval.max(1));
    u32::try_from(elapsed / period).unwrap_or(u32::MAX)
}

/// The occurrence containing `t`, cut short where someone ended it early.
pub fn occurrence_at(spec: &MaintenanceSpec, ended_at: Option<DateTime<Utc>>, t: DateTime<Utc>) -> Option<Occurrence> {
    let cut = |o: Occurrence| match ended_at {
        Some(e) if o.starts_at <= e && e < o.ends_at => Occurrence { ends_at: e, ..o },
        _ => o,
    };
    let within = |o: &Occurrence| o.starts_at <= t && t < o.ends_at;
    let Some(r) = &spec.recurrence else {
        let o = cut(Occurrence { starts_at: spec.starts_at, ends_at: spec.ends_at });
        return within(&o).then_some(o);
    };
    let tz: Tz = r.time_zone.parse().ok()?;
    let n = estimate(spec, r, t);
    (n.saturating_sub(1)..=n.saturating_add(1)).filter_map(|i| nth(spec, r, tz, i)).map(cut).find(within)
}

/// The occurrence under way at `now`, else the next one.
pub fn current_or_next(
    spec: &MaintenanceSpec,
    ended_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Occurrence> {
    if let Some(o) = occurrence_at(spec, ended_at, now) {
        return Some(o);
    }
    let Some(r) = &spec.recurrence else {
        return (spec.starts_at > now && ended_at.is_none_or(|e| e > spec.starts_at))
            .then_some(Occurrence { starts_at: spec.starts_at, ends_at: spec.ends_at });
    };
    let tz: Tz = r.time_zone.parse().ok()?;
    let n = estimate(spec, r, now);
    (n.saturating_sub(1)..n.saturating_add(3)).filter_map(|i| nth(spec, r, tz, i)).find(|o| o.starts_at > now)
}

fn to_window(row: &WindowRow, now: DateTime<Utc>) -> MaintenanceWindow {
    let spec = row.spec();
    let current = current_or_next(&spec, row.ended_at, now);
    MaintenanceWindow {
        id: row.window_id,
        active: current.is_some_and(|o| o.starts_at <= now && now < o.ends_at),
        current,
        ended_at: row.ended_at,
        created_by: row.created_by.clone(),
        created_at: row.created_at,
        spec,
    }
}

/// The title of a window under way at `at` that covers `service`, if any.
pub async fn active_for(
    conn: &mut PgConnection,
    service: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<String>, sqlx::Error> {
    let windows = store::windows(&mut *conn, WindowFilter::MayCover(at)).await?;
    if windows.is_empty() {
        return Ok(None);
    }
    let tags = store::service_tags(conn, service).await?;
    Ok(windows
        .iter()
        .find(|w| w.spec().covers(service, &tags) && occurrence_at(&w.spec(), w.ended_at, at).is_some())
        .map(|w| w.title.clone()))
}

/// Windows under way at `at`: what the router checks each event against.
pub async fn under_way(conn: &mut PgConnection, at: DateTime<Utc>) -> Result<Vec<MaintenanceSpec>, sqlx::Error> {
    Ok(store::windows(conn, WindowFilter::MayCover(at))
        .await?
        .iter()
        .filter(|w| occurrence_at(&w.spec(), w.ended_at, at).is_some())
        .map(WindowRow::spec)
        .collect())
}

/// Occurrences overlapping `[from, to)`, cut where ended early (at most 1,000: a chart's worth).
pub fn occurrences_between(
    spec: &MaintenanceSpec,
    ended_at: Option<DateTime<Utc>>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Occurrence> {
    let cut = |o: Occurrence| match ended_at {
        Some(e) if o.starts_at <= e && e < o.ends_at => Occurrence { ends_at: e, ..o },
        _ => o,
    };
    let overlaps = |o: &Occurrence| o.starts_at < to && o.ends_at > from;
    let Some(r) = &spec.recurrence else {
        let o = cut(Occurrence { starts_at: spec.starts_at, ends_at: spec.ends_at });
        return if overlaps(&o) { vec![o] } else { Vec::new() };
    };
    let Ok(tz) = r.time_zone.parse::<Tz>() else { return Vec::new() };
    let mut out = Vec::new();
    let mut n = estimate(spec, r, from).saturating_sub(1);
    for _ in 0..1000 {
        let Some(o) = nth(spec, r, tz, n) else { break };
        if o.starts_at >= to {
            break;
        }
        let o = cut(o);
        if overlaps(&o) {
            out.push(o);
        }
        n = n.saturating_add(1);
    }
    out
}

/// The windows covering `service` as bands over `[from, to)`, for its charts.
pub async fn bands_for_service(
    conn: &mut PgConnection,
    service: &app::model::Service,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<app::model::MaintenanceBand>, sqlx::Error> {
    let mut bands = bands_for_services(conn, std::slice::from_ref(service), from, to).await?;
    Ok(bands.remove(&service.id).unwrap_or_default())
}

/// [`bands_for_service`] for several services, the windows read once.
pub async fn bands_for_services(
    conn: &mut PgConnection,
    services: &[app::model::Service],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<std::collections::HashMap<uuid::Uuid, Vec<app::model::MaintenanceBand>>, sqlx::Error> {
    let windows = store::windows(conn, WindowFilter::All).await?;
    let mut out = std::collections::HashMap::new();
    for service in services {
        let mut bands = Vec::new();
        for w in &windows {
            let spec = w.spec();
            if !spec.covers(service.id, &service.tags) {
                continue;
            }
            for o in occurrences_between(&spec, w.ended_at, from, to) {
                bands.push(app::model::MaintenanceBand { title: w.title.clone(), from: o.starts_at, to: o.ends_at });
            }
        }
        out.insert(service.id, bands);
    }
    Ok(out)
}

/// Checks a window as written; the error names the field.
pub fn validate(spec: &mut MaintenanceSpec) -> Result<(), Error> {
    let title = spec.title.trim();
    if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
        return Err(Error::invalid("title", "must be 1–200 characters on one line"));
    }
    spec.title = title.to_string();
    if spec.services.is_empty() && spec.tags.is_empty() {
        return Err(Error::invalid("services", "name at least one service or tag"));
    }
    if spec.ends_at <= spec.starts_at {
        return Err(Error::invalid("ends_at", "must be after starts_at"));
    }
    for (i, t) in spec.tags.iter().enumerate() {
        if t.trim().is_empty() || t.len() > 100 {
            return Err(Error::invalid(format!("tags[{i}]"), "1–100 characters"));
        }
    }
    if let Some(r) = &spec.recurrence {
        if r.time_zone.parse::<Tz>().is_err() {
            return Err(Error::invalid("recurrence.time_zone", "an IANA time zone such as Europe/Berlin or UTC"));
        }
        if !(1..=52).contains(&r.interval) {
            return Err(Error::invalid("recurrence.interval", "1–52"));
        }
        let period = match r.every {
            Every::Week => chrono::Duration::weeks(i64::from(r.interval)),
            Every::Month => chrono::Duration::days(28 * i64::from(r.interval)),
        };
        if spec.ends_at - spec.starts_at >= period {
            return Err(Error::invalid("ends_at", "a recurring window must end before its next occurrence starts"));
        }
    }
    Ok(())
}

/// What the API and pages use.
#[derive(Clone)]
pub struct Maintenance {
    pub pool: PgPool,
}

impl Maintenance {
    pub async fn list(&self) -> Result<Vec<MaintenanceWindow>, Error> {
        let mut conn = self.pool.acquire().await?;
        let now = Utc::now();
        Ok(store::windows(&mut conn, WindowFilter::All).await?.iter().map(|r| to_window(r, now)).collect())
    }

    pub async fn get(&self, id: Uuid) -> Result<MaintenanceWindow, Error> {
        let mut conn = self.pool.acquire().await?;
        let row = store::windows(&mut conn, WindowFilter::One(id))
            .await?
            .pop()
            .ok_or(Error::NotFound("maintenance window"))?;
        Ok(to_window(&row, Utc::now()))
    }

    async fn check_services(&self, spec: &MaintenanceSpec) -> Result<(), Error> {
        let known = crate::storage::notify::existing_services(&self.pool, &spec.services).await?;
        if let Some(unknown) = spec.services.iter().find(|s| !known.contains(s)) {
            return Err(Error::invalid("services", format!("no service has id {unknown}")));
        }
        Ok(())
    }

    pub async fn create(&self, actor: &Actor, mut spec: MaintenanceSpec) -> Result<MaintenanceWindow, Error> {
        validate(&mut spec)?;
        self.check_services(&spec).await?;
        let id = Uuid::new_v4();
        let mut tx = self.pool.begin().await?;
        store::insert(&mut tx, id, &spec, &actor.principal.actor(), false).await?;
        actor.audit(&mut *tx, "maintenance.create", id.to_string(), serde_json::json!({ "title": spec.title })).await?;
        tx.commit().await?;
        tracing::info!(window = %id, title = spec.title, "maintenance window created");
        self.get(id).await
    }

    pub async fn update(&self, actor: &Actor, id: Uuid, mut spec: MaintenanceSpec) -> Result<MaintenanceWindow, Error> {
        validate(&mut spec)?;
        self.check_services(&spec).await?;
        let mut tx = self.pool.begin().await?;
        if !store::update(&mut tx, id, &spec).await? {
            return Err(Error::NotFound("maintenance window"));
        }
        actor.audit(&mut *tx, "maintenance.update", id.to_string(), serde_json::json!({ "title": spec.title })).await?;
        tx.commit().await?;
        self.get(id).await
    }

    /// Ends the occurrence under way now; a recurring window still comes back next time.
    pub async fn end(&self, actor: &Actor, id: Uuid) -> Result<MaintenanceWindow, Error> {
        let now = Utc::now();
        let window = self.get(id).await?;
        if !window.active {
            return Err(Error::Conflict { field: None, message: "the window is not under way".into() });
        }
        let mut tx = self.pool.begin().await?;
        store::end(&mut tx, id, now).await?;
        actor.audit(&mut *tx, "maintenance.end", id.to_string(), serde_json::json!({})).await?;
        tx.commit().await?;
        tracing::info!(window = %id, "maintenance window ended early");
        self.get(id).await
    }

    pub async fn delete(&self, actor: &Actor, id: Uuid) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        if !store::delete(&mut tx, id).await? {
            return Err(Error::NotFound("maintenance window"));
        }
        actor.audit(&mut *tx, "maintenance.delete", id.to_string(), serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn weekly(tz: &str) -> MaintenanceSpec {
        // Sunday 02:00–04:00 in Berlin (winter: UTC+1).
        MaintenanceSpec {
            title: "db".into(),
            services: vec![],
            tags: vec!["db".into()],
            starts_at: at("2026-01-04T01:00:00Z"),
            ends_at: at("2026-01-04T03:00:00Z"),
            recurrence: Some(Recurrence { every: Every::Week, interval: 1, time_zone: tz.into(), until: None }),
        }
    }

    #[test]
    fn a_weekly_window_keeps_its_wall_clock_time_across_daylight_saving() {
        let w = weekly("Europe/Berlin");
        assert!(occurrence_at(&w, None, at("2026-01-11T01:30:00Z")).is_some(), "the next Sunday");
        assert!(occurrence_at(&w, None, at("2026-01-12T01:30:00Z")).is_none(), "a Monday");
        // Summer time (UTC+2): 02:00 local is 00:00 UTC.
        let summer = occurrence_at(&w, None, at("2026-07-05T00:30:00Z")).expect("in summer");
        assert_eq!(summer.starts_at, at("2026-07-05T00:00:00Z"));
        assert!(occurrence_at(&w, None, at("2026-07-05T02:30:00Z")).is_none(), "ended at 04:00 local");
        // In UTC the same window would not move.
        assert!(occurrence_at(&weekly("UTC"), None, at("2026-07-05T02:30:00Z")).is_some());
    }

    #[test]
    fn monthly_windows_until_and_ending_early() {
        let mut w = weekly("UTC");
        w.starts_at = at("2026-01-31T22:00:00Z");
        w.ends_at = at("2026-01-31T23:00:00Z");
        w.recurrence = Some(Recurrence {
            every: Every::Month,
            interval: 1,
            time_zone: "UTC".into(),
            until: chrono::NaiveDate::from_ymd_opt(2026, 4, 1),
        });
        assert!(occurrence_at(&w, None, at("2026-02-28T22:30:00Z")).is_some(), "the last day of a short month");
        assert!(occurrence_at(&w, None, at("2026-03-31T22:30:00Z")).is_some());
        assert!(occurrence_at(&w, None, at("2026-04-30T22:30:00Z")).is_none(), "after until");
        let ended = at("2026-03-31T22:10:00Z");
        assert!(occurrence_at(&w, Some(ended), at("2026-03-31T22:30:00Z")).is_none(), "ended early");
        assert!(occurrence_at(&w, Some(ended), at("2026-02-28T22:30:00Z")).is_some(), "other occurrences stay");
        let next = current_or_next(&w, None, at("2026-02-10T00:00:00Z")).expect("next");
        assert_eq!(next.starts_at, at("2026-02-28T22:00:00Z"));
    }

    #[test]
    fn occurrences_over_a_chart_window() {
        let w = weekly("UTC");
        let got = occurrences_between(&w, None, at("2026-01-01T00:00:00Z"), at("2026-01-20T00:00:00Z"));
        assert_eq!(
            got.iter().map(|o| o.starts_at).collect::<Vec<_>>(),
            [at("2026-01-04T01:00:00Z"), at("2026-01-11T01:00:00Z"), at("2026-01-18T01:00:00Z")]
        );
        let one_off = MaintenanceSpec { recurrence: None, ..weekly("UTC") };
        assert_eq!(
            occurrences_between(&one_off, None, at("2026-01-04T02:00:00Z"), at("2026-01-05T00:00:00Z")).len(),
            1
        );
        assert!(occurrences_between(&one_off, None, at("2026-01-05T00:00:00Z"), at("2026-01-06T00:00:00Z")).is_empty());
    }

    #[test]
    fn validation_names_the_field() {
        let mut w = weekly("Mars/Olympus");
        assert!(matches!(validate(&mut w), Err(Error::Invalid { field: Some(f), .. }) if f == "recurrence.time_zone"));
        let mut w = weekly("UTC");
        w.ends_at = w.starts_at + chrono::Duration::days(8);
        assert!(matches!(validate(&mut w), Err(Error::Invalid { field: Some(f), .. }) if f == "ends_at"));
        let mut w = weekly("UTC");
        w.tags.clear();
        assert!(matches!(validate(&mut w), Err(Error::Invalid { field: Some(f), .. }) if f == "services"));
    }
}
