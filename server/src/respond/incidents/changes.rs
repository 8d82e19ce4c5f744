//! Change events: deploys, configuration changes, feature flags, migrations and infrastructure
//! work, posted by CI (`triage change add`, `POST /api/v1/changes`) or from the service page.
//! Most outages follow a change, so a change on an open incident's service, from an hour before
//! the incident started, becomes an automatic entry in its room: the commander sees "deploy v1.4.2
//! of shop" beside the first failing check without asking around.

use app::markdown::escape_inline;
use app::model::{ChangeEvent, ChangeInput, EntryKind, RoomEvent, Scope, TRIAGE_AUTHOR, TimelineEntry, lead_time};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Incidents, SKEW};
use crate::access::Principal;
use crate::access::actor::Actor;
use crate::error::Error;
use crate::storage::changes::{self as store, NewChange};
use crate::storage::incidents::{self as incidents_store, NewEntryRow};

/// How long before an incident's start a change still counts as a possible trigger.
pub fn lookback() -> Duration {
    Duration::hours(1)
}

/// At most this many changes answer one list request.
const MAX_LIST: i64 = 1_000;

/// `GET /api/v1/changes`: which service, and the time range (the last 7 days by default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeFilter {
    pub service_id: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

fn one_line(field: &str, value: &str, max: usize, required: bool) -> Result<Option<String>, Error> {
    let v = value.trim();
    if v.is_empty() {
        return if required { Err(Error::invalid(field, "must not be empty")) } else { Ok(None) };
    }
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(Error::invalid(field, format!("must be at most {max} characters on one line")));
    }
    Ok(Some(v.to_string()))
}

/// A link people will click from the room: only http(s), so no `javascript:` reaches a page.
fn check_link(link: &str) -> Result<Option<String>, Error> {
    let Some(link) = one_line("link", link, 2000, false)? else { return Ok(None) };
    match url::Url::parse(&link) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Some(u.to_string())),
        _ => Err(Error::invalid("link", "must be an http or https URL")),
    }
}

/// Posting changes is for CI (a `push` or `admin` token), responders and the CLI.
fn recorder(principal: &Principal) -> Result<String, Error> {
    match principal {
        Principal::User { me, .. } if me.role >= app::model::Role::Responder => Ok(me.email.clone()),
        Principal::User { .. } => Err(Error::Forbidden("recording a change needs the responder role".into())),
        Principal::Token { name, scope: Scope::Push | Scope::Admin, .. } => Ok(format!("token:{name}")),
        Principal::Token { .. } => Err(Error::Forbidden("recording a change needs a push or admin token".into())),
        Principal::Cli => Ok("cli".into()),
        Principal::Anonymous | Principal::Agent { .. } => Err(Error::Unauthenticated),
    }
}

impl Incidents {
    /// Stores a change and adds it to the rooms of the open incidents it touches.
    pub async fn record_change(&self, actor: &Actor, input: &ChangeInput) -> Result<ChangeEvent, Error> {
        let by = recorder(&actor.principal)?;
        let title = one_line("title", &input.title, 200, true)?.unwrap_or_default();
        let version = one_line("version", input.version.as_deref().unwrap_or(""), 100, false)?;
        let author = one_line("author", input.author.as_deref().unwrap_or(""), 200, false)?;
        let link_url = check_link(input.link.as_deref().unwrap_or(""))?;
        let now = Utc::now();
        let at = input.at.unwrap_or(now);
        if at > now + SKEW {
            return Err(Error::invalid("at", "must not be in the future"));
        }
        if input.ends_at.is_some_and(|end| end < at) {
            return Err(Error::invalid("ends_at", "must not be before at"));
        }
        let name = input.service.trim();
        let (service_id, _) = store::resolve_service(&self.pool, name)
            .await?
            .ok_or_else(|| Error::invalid("service", format!("no service is named {name} or has that id")))?;
        let change = NewChange {
            id: Uuid::new_v4(),
            service_id,
            kind: input.kind,
            title: &title,
            version: version.as_deref(),
            link: link_url.as_deref(),
            author: author.as_deref(),
            at,
            ends_at: input.ends_at,
            recorded_by: &by,
        };
        let mut tx = self.pool.begin().await?;
        let stored = store::insert(&mut tx, &change).await?.ok_or(Error::NotFound("change"))?;
        let mut written = Vec::new();
        for incident in store::open_incidents_touched(&mut tx, service_id, at, lookback()).await? {
            written.extend(link(&mut tx, incident).await?);
        }
        actor
            .audit(
                &mut *tx,
                "change.record",
                stored.id.to_string(),
                serde_json::json!({ "service": service_id, "kind": stored.kind }),
            )
            .await?;
        tx.commit().await?;
        self.publish_entries(written);
        Ok(stored)
    }

    pub async fn list_changes(&self, filter: &ChangeFilter) -> Result<Vec<ChangeEvent>, Error> {
        let to = filter.to.unwrap_or_else(Utc::now);
        let from = filter.from.unwrap_or(to - Duration::days(7));
        if from > to {
            return Err(Error::invalid("from", "must not be after to"));
        }
        let services = filter.service_id.map(|id| vec![id]);
        Ok(store::list(&self.pool, services.as_deref(), from, to, MAX_LIST).await?)
    }

    /// Sends entries written in a committed transaction to their rooms.
    pub(super) fn publish_entries(&self, entries: Vec<TimelineEntry>) {
        for e in entries {
            self.rooms.publish(e.incident_id, RoomEvent::Entry(e));
        }
    }
}

/// Writes an automatic entry for each change of the incident's services in its window that has
/// none yet (each change's entry is keyed by its id, so this can run as often as services
/// change); returns the new entries, for the room once the transaction commits.
pub(super) async fn link(tx: &mut PgConnection, incident: Uuid) -> Result<Vec<TimelineEntry>, sqlx::Error> {
    let mut written = Vec::new();
    // An automatic incident starts at its first failing check; a declared one when people say.
    let start = incidents_store::start_of(&mut *tx, incident)
        .await?
        .map(|(at, automatic)| (at, if automatic { "the first failing check" } else { "the incident's start" }));
    for c in store::for_incident(&mut *tx, incident, lookback()).await? {
        let key = format!("change:{}", c.id);
        let text = entry_text(&c, start);
        let row = NewEntryRow {
            id: Uuid::new_v4(),
            incident_id: incident,
            kind: EntryKind::Automatic,
            text: &text,
            author: TRIAGE_AUTHOR,
            author_id: None,
            happened_at: c.at,
            attachments: &[],
            idempotency_key: Some(&key),
            state_change_id: None,
        };
        if let Some(e) = incidents_store::insert_entry(&mut *tx, &row).await? {
            written.push(e);
        }
    }
    Ok(written)
}

/// "Change: **deploy v1.4.2 of shop** by alice, 3 minutes before the first failing check —
/// Release 1.4.2 (<link>)". Markdown; the page renders it sanitised.
/// The entry's Markdown. The change's words come from scripts and are escaped; the link was
/// parsed as an http(s) URL, which percent-encodes anything that could close the `<…>`.
fn entry_text(c: &ChangeEvent, start: Option<(DateTime<Utc>, &str)>) -> String {
    let mut text = format!("Change: **{}**", escape_inline(&c.headline()));
    if let Some(a) = &c.author {
        text.push_str(&format!(" by {}", escape_inline(a)));
    }
    if let Some((at, what)) = start {
        text.push_str(&format!(", {} {what}", lead_time(c.at, at)));
    }
    if c.version.is_some() {
        text.push_str(&format!(" — {}", escape_inline(&c.title)));
    }
    if let Some(link) = &c.link {
        text.push_str(&format!(" (<{link}>)"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::model::ChangeKind;

    fn change(version: Option<&str>, link: Option<&str>) -> ChangeEvent {
        ChangeEvent {
            id: Uuid::nil(),
            service_id: Uuid::nil(),
            service: "shop".into(),
            kind: ChangeKind::Deploy,
            title: "Release 1.4.2".into(),
            version: version.map(str::to_string),
            link: link.map(str::to_string),
            author: Some("alice".into()),
            at: "2026-12-07T14:02:00Z".parse().expect("time"),
            ends_at: None,
            recorded_by: "token:ci".into(),
            recorded_at: "2026-12-07T14:02:00Z".parse().expect("time"),
        }
    }

    #[test]
    fn an_entry_names_the_change_and_how_long_before_the_first_failure_it_came() {
        let signal = "2026-12-07T14:05:00Z".parse().ok().map(|at| (at, "the first failing check"));
        assert_eq!(
            entry_text(&change(Some("v1.4.2"), Some("https://ci.example/runs/7")), signal),
            "Change: **deploy v1\\.4\\.2 of shop** by alice, 3 minutes before the first failing check — Release \
             1\\.4\\.2 (<https://ci.example/runs/7>)"
        );
        assert_eq!(entry_text(&change(None, None), None), "Change: **deploy “Release 1\\.4\\.2” of shop** by alice");
        let mut hostile = change(None, None);
        hostile.title = "**x** [y](https://evil.example)".into();
        hostile.author = Some("<b>bob</b>".into());
        let html = app::markdown::render(&entry_text(&hostile, None));
        assert!(!html.contains("<a ") && !html.contains("<b>"), "{html}");
    }

    #[test]
    fn only_http_links_are_kept() {
        assert!(check_link("javascript:alert(1)").is_err());
        assert!(check_link("file:///etc/passwd").is_err());
        assert_eq!(check_link("").ok(), Some(None));
        assert_eq!(
            check_link("https://ci.example/runs/7").ok().flatten().as_deref(),
            Some("https://ci.example/runs/7")
        );
    }
}
