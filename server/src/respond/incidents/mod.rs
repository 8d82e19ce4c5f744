//! Incidents and their timelines: declaring, the status lifecycle, key times, entries with their
//! history, and the live room. The REST API and the pages' server functions both come here; the
//! automatic side (probe state changes) is in [`engine`].

pub mod burn;
pub mod changes;
pub mod engine;
pub mod evidence;
pub mod rooms;

use app::model::{
    EntryKind, EntryPatch, EventKind, Incident, IncidentFilter, IncidentPatch, IncidentRoom, IncidentStatus, KeyTime,
    NewEntry, NewIncident, Role, RoomEvent, Scope, Stamp, TimelineEntry,
};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::access::Principal;
use crate::access::actor::Actor;
use crate::error::Error;
use crate::respond::notify::events::{self as notify, IncidentFacts};
use crate::storage::incidents::{self as store, NewEntryRow, NewIncidentRow};

pub use rooms::RoomHub;

const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 20_000;
const MAX_ATTACHMENTS: usize = 20;
const MAX_KEY: usize = 200;
/// Clocks differ a little; a time this far ahead of ours is still "now".
const SKEW: chrono::Duration = chrono::Duration::seconds(60);

/// Who is acting, as incidents record it.
#[derive(Clone, Debug)]
pub struct Author {
    /// Email, `token:<name>` or `cli`.
    pub name: String,
    pub user: Option<Uuid>,
    pub role: Role,
}

impl Author {
    pub fn of(principal: &Principal) -> Result<Self, Error> {
        match principal {
            Principal::User { me, .. } => Ok(Self { name: me.email.clone(), user: Some(me.id), role: me.role }),
            Principal::Token { name, scope, .. } => Ok(Self {
                name: format!("token:{name}"),
                user: None,
                role: if *scope == Scope::Admin { Role::Admin } else { Role::Viewer },
            }),
            Principal::Cli => Ok(Self { name: "cli".into(), user: None, role: Role::Admin }),
            Principal::Anonymous | Principal::Agent { .. } => Err(Error::Unauthenticated),
        }
    }

    pub fn require(&self, role: Role, what: &str) -> Result<(), Error> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("{what} needs the {} role", role.as_str())))
        }
    }
}

/// Everything incidents need from the application.
#[derive(Clone)]
pub struct Incidents {
    pub pool: PgPool,
    pub rooms: RoomHub,
}

fn check_title(title: &str) -> Result<String, Error> {
    let t = title.trim();
    if t.is_empty() || t.chars().count() > MAX_TITLE || t.chars().any(char::is_control) {
        return Err(Error::invalid("title", "must be 1–200 characters on one line"));
    }
    Ok(t.to_string())
}

fn check_text(field: &str, text: &str, required: bool) -> Result<(), Error> {
    if required && text.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(Error::invalid(field, format!("must be at most {MAX_TEXT} characters")));
    }
    Ok(())
}

fn check_not_future(field: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Error> {
    if at > now + SKEW {
        return Err(Error::invalid(field, "must not be in the future"));
    }
    Ok(())
}

fn check_attachments(a: &[app::model::Attachment]) -> Result<(), Error> {
    use app::model::Attachment;
    if a.len() > MAX_ATTACHMENTS {
        return Err(Error::invalid("attachments", format!("at most {MAX_ATTACHMENTS}")));
    }
    for (i, att) in a.iter().enumerate() {
        match att {
            Attachment::ChartRange { from, to, .. } if from >= to => {
                return Err(Error::invalid(format!("attachments[{i}].to"), "must be after from"));
            }
            Attachment::RequestIds { ids } if ids.is_empty() || ids.len() > 50 => {
                return Err(Error::invalid(format!("attachments[{i}].ids"), "1–50 request ids"));
            }
            Attachment::RequestIds { ids } if ids.iter().any(|id| id.is_empty() || id.len() > 200) => {
                return Err(Error::invalid(format!("attachments[{i}].ids"), "each id must be 1–200 characters"));
            }
            _ => {}
        }
    }
    Ok(())
}

async fn check_services(pool: &PgPool, services: &[Uuid]) -> Result<(), Error> {
    let unknown = store::unknown_services(pool, services).await?;
    if let Some(first) = unknown.first() {
        return Err(Error::invalid("services", format!("no service has id {first}")));
    }
    Ok(())
}

async fn check_commander(pool: &PgPool, id: Uuid) -> Result<app::model::UserRef, Error> {
    store::user_ref(pool, id).await?.ok_or_else(|| Error::invalid("commander", "no enabled user has this id"))
}

fn order_error((k, message): (KeyTime, String)) -> Error {
    Error::invalid(k.field(), message)
}

impl Incidents {
    /// Declares an incident by hand. It starts `investigating`; detected now; acknowledged now if
    /// it already has a commander.
    pub async fn create(&self, actor: &Actor, input: &NewIncident) -> Result<Incident, Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Responder, "declaring an incident")?;
        let title = check_title(&input.title)?;
        check_text("summary", &input.summary, false)?;
        check_services(&self.pool, &input.services).await?;
        let now = Utc::now();
        let commander = match input.commander {
            Some(id) => Some(check_commander(&self.pool, id).await?),
            None => None,
        };
        let mut times = app::model::KeyTimes {
            started: Some(match input.started_at {
                Some(at) => {
                    check_not_future("started_at", at, now)?;
                    Stamp { at, source: author.name.clone() }
                }
                None => Stamp::automatic(now),
            }),
            detected: Some(Stamp::automatic(now)),
            ..Default::default()
        };
        if commander.is_some() {
            times.acknowledged = Some(Stamp::automatic(now));
        }
        times.check_order().map_err(order_error)?;
        let id = Uuid::new_v4();
        let mut tx = self.pool.begin().await?;
        store::insert_incident(
            &mut tx,
            &NewIncidentRow {
                id,
                title: &title,
                severity: input.severity,
                summary: &input.summary,
                commander: commander.as_ref().map(|c| c.id),
                times: &times,
                automatic: false,
                created_by: &author.name,
            },
        )
        .await?;
        store::add_services(&mut tx, id, &input.services).await?;
        let changes = changes::link(&mut tx, id).await?;
        if let Some(user) = author.user {
            store::add_participant(&mut *tx, id, user).await?;
        }
        let mut text = format!("Declared **{}**: {}", input.severity.as_str(), title);
        if let Some(c) = &commander {
            text.push_str(&format!(" · commander {}", c.email));
        }
        let entry =
            store::insert_entry(&mut *tx, &self.entry_row(id, EntryKind::StatusChange, &text, &author, now)).await?;
        actor
            .audit(&mut *tx, "incident.create", id.to_string(), serde_json::json!({ "severity": input.severity }))
            .await?;
        let facts = IncidentFacts {
            id,
            title: title.clone(),
            severity: input.severity,
            status: IncidentStatus::Investigating,
            commander: commander.as_ref().map(|c| c.email.clone()),
        };
        notify::incident(&mut tx, EventKind::IncidentOpened, &facts, Vec::new(), false, None).await?;
        tx.commit().await?;
        let incident = self.announce(id, entry).await?;
        self.publish_entries(changes);
        Ok(incident)
    }

    /// After a committed change: the room gets the incident as it now is, then the entry that
    /// records the change.
    async fn announce(&self, id: Uuid, entry: Option<TimelineEntry>) -> Result<Incident, Error> {
        let incident = self.get(id).await?;
        self.rooms.publish(id, RoomEvent::Incident(Box::new(incident.clone())));
        if let Some(e) = entry {
            self.rooms.publish(id, RoomEvent::Entry(e));
        }
        Ok(incident)
    }

    fn entry_row<'a>(
        &self,
        incident: Uuid,
        kind: EntryKind,
        text: &'a str,
        author: &'a Author,
        at: DateTime<Utc>,
    ) -> NewEntryRow<'a> {
        NewEntryRow {
            id: Uuid::new_v4(),
            incident_id: incident,
            kind,
            text,
            author: &author.name,
            author_id: author.user,
            happened_at: at,
            attachments: &[],
            idempotency_key: None,
            state_change_id: None,
        }
    }

    pub async fn get(&self, id: Uuid) -> Result<Incident, Error> {
        store::get_incident(&self.pool, id).await?.ok_or(Error::NotFound("incident"))
    }

    pub async fn list(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, Error> {
        if let (Some(f), Some(t)) = (filter.from, filter.to)
            && f > t
        {
            return Err(Error::invalid("to", "must not be before from"));
        }
        Ok(store::list_incidents(&self.pool, filter, 500).await?)
    }

    /// The incident with its timeline; deleted entries only for commanders.
    pub async fn room(&self, actor: &Actor, id: Uuid) -> Result<IncidentRoom, Error> {
        // Read before the data: a live stream asks for what changed since this time, and must get
        // whatever was written while the room was being read.
        let now = Utc::now();
        let incident = self.get(id).await?;
        let timeline = self.timeline(actor, id).await?;
        let services =
            crate::storage::catalog::list_services(&self.pool).await?.into_iter().map(|s| (s.id, s.name)).collect();
        let postmortem = crate::storage::postmortems::id_for_incident(&self.pool, id).await?;
        let commanders = store::commanders(&self.pool).await?;
        Ok(IncidentRoom { incident, timeline, now, services, postmortem, commanders })
    }

    /// What a room's live stream starts with: the incident as it is now and the entries written,
    /// edited or deleted since `since` (the time its page was read), deleted ones included. Events
    /// between reading the page and opening the stream are otherwise lost.
    pub async fn changes_since(
        &self,
        id: Uuid,
        since: Option<DateTime<Utc>>,
    ) -> Result<(Incident, Vec<TimelineEntry>), Error> {
        let incident = self.get(id).await?;
        let Some(since) = since else { return Ok((incident, Vec::new())) };
        // A margin for the application's and the database's clocks: an entry sent twice replaces
        // itself on the page.
        let from = since - chrono::Duration::seconds(5);
        let changed = |e: &TimelineEntry| {
            e.recorded_at > from
                || e.edited_at.is_some_and(|t| t > from)
                || e.deleted.as_ref().is_some_and(|d| d.at > from)
        };
        let entries = store::list_entries(&self.pool, id, true).await?.into_iter().filter(changed).collect();
        Ok((incident, entries))
    }

    pub async fn timeline(&self, actor: &Actor, id: Uuid) -> Result<Vec<TimelineEntry>, Error> {
        let sees_deleted = Author::of(&actor.principal).is_ok_and(|a| a.role >= Role::Commander);
        Ok(store::list_entries(&self.pool, id, sees_deleted).await?)
    }

    /// Changes status, severity, commander, title, summary, services or key times (commanders).
    /// Every change is recorded as a status-change entry.
    pub async fn update(&self, actor: &Actor, id: Uuid, patch: &IncidentPatch) -> Result<Incident, Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Commander, "changing an incident")?;
        if patch.is_empty() {
            return Err(Error::Invalid { field: None, message: "nothing to change".into() });
        }
        let title = patch.title.as_deref().map(check_title).transpose()?;
        if let Some(s) = &patch.summary {
            check_text("summary", s, false)?;
        }
        if let Some(services) = &patch.services {
            check_services(&self.pool, services).await?;
        }
        let commander = match patch.commander {
            Some(c) => Some(check_commander(&self.pool, c).await?),
            None => None,
        };
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let mut rec = store::lock_incident(&mut tx, id).await?.ok_or(Error::NotFound("incident"))?;
        let mut times = rec.times();
        let mut changes: Vec<String> = Vec::new();
        // What is worth telling people about, in plain words (title and time edits are not).
        let mut told: Vec<String> = Vec::new();
        if let Some(t) = title
            && t != rec.title
        {
            changes.push(format!("title → “{t}”"));
            rec.title = t;
        }
        if let Some(s) = patch.severity
            && s != rec.severity()
        {
            changes.push(format!("severity {} → **{}**", rec.severity().as_str(), s.as_str()));
            told.push(format!("severity {} → {}", rec.severity().as_str(), s.as_str()));
            rec.severity = s.as_str().into();
        }
        if let Some(s) = &patch.summary
            && *s != rec.summary
        {
            changes.push("summary updated".into());
            rec.summary = s.clone();
        }
        if let Some(c) = &commander
            && Some(c.id) != rec.commander_id
        {
            changes.push(format!("commander → {}", c.email));
            told.push(format!("commander → {}", c.email));
            rec.commander_id = Some(c.id);
            if times.acknowledged.is_none() && patch.acknowledged_at.is_none() && times.fits(KeyTime::Acknowledged, now)
            {
                times.acknowledged = Some(Stamp::automatic(now));
            }
        }
        let old_status = rec.status();
        if let Some(s) = patch.status
            && s != old_status
        {
            if old_status == IncidentStatus::Resolved {
                changes.push(format!("**reopened** → {}", s.as_str()));
                told.push(format!("reopened → {}", s.as_str()));
                times.resolved = None;
            } else {
                changes.push(format!("status {} → **{}**", old_status.as_str(), s.as_str()));
                told.push(format!("status {} → {}", old_status.as_str(), s.as_str()));
            }
            if s == IncidentStatus::Resolved {
                times.resolved = Some(Stamp::automatic(now));
                rec.resolve_suggested_at = None;
            }
            if s == IncidentStatus::Monitoring && times.mitigated.is_none() && patch.mitigated_at.is_none() {
                times.mitigated = Some(Stamp::automatic(now));
            }
            rec.status = s.as_str().into();
        }
        for k in KeyTime::ALL {
            let Some(value) = patch.time(k) else { continue };
            match value {
                Some(at) => {
                    check_not_future(k.field(), at, now)?;
                    changes.push(format!("{} time set to {}", k.as_str(), at.format("%Y-%m-%d %H:%M:%S UTC")));
                    *times.slot(k) = Some(Stamp { at, source: author.name.clone() });
                }
                None => {
                    changes.push(format!("{} time cleared", k.as_str()));
                    *times.slot(k) = None;
                }
            }
        }
        let resolved = rec.status() == IncidentStatus::Resolved;
        if resolved && times.resolved.is_none() {
            return Err(Error::invalid("resolved_at", "a resolved incident keeps its resolved time"));
        }
        if !resolved && times.resolved.is_some() {
            return Err(Error::invalid("resolved_at", "only a resolved incident has a resolved time; set status"));
        }
        times.check_order().map_err(order_error)?;
        rec.set_times(&times);
        if let Some(services) = &patch.services {
            store::set_services(&mut tx, id, services).await?;
            changes.push(format!("affected services: {}", services.len()));
        }
        if changes.is_empty() {
            tx.rollback().await?;
            return self.get(id).await;
        }
        store::save_incident(&mut tx, &rec).await?;
        // New services, or an earlier start, can bring changes into the incident's window.
        let linked = self::changes::link(&mut tx, id).await?;
        if let Some(user) = author.user {
            store::add_participant(&mut *tx, id, user).await?;
        }
        let text = changes.join(" · ");
        let entry =
            store::insert_entry(&mut *tx, &self.entry_row(id, EntryKind::StatusChange, &text, &author, now)).await?;
        actor.audit(&mut *tx, "incident.update", id.to_string(), serde_json::json!({ "changes": changes })).await?;
        if !told.is_empty() {
            let commander_email = crate::storage::notify::commander_email(&mut tx, rec.commander_id).await?;
            let status = rec.status();
            let reopened = old_status == IncidentStatus::Resolved && status != IncidentStatus::Resolved;
            let kind = match status {
                IncidentStatus::Resolved if old_status != IncidentStatus::Resolved => EventKind::IncidentResolved,
                _ if reopened => EventKind::IncidentOpened,
                _ => EventKind::IncidentUpdated,
            };
            let facts = IncidentFacts {
                id,
                title: rec.title.clone(),
                severity: rec.severity(),
                status,
                commander: commander_email,
            };
            notify::incident(&mut tx, kind, &facts, told, reopened, None).await?;
        }
        tx.commit().await?;
        let incident = self.announce(id, entry).await?;
        self.publish_entries(linked);
        Ok(incident)
    }

    /// Posts an entry (responders). With an idempotency key a retry returns the entry stored the
    /// first time, and `false` says it was not created again.
    pub async fn post_entry(
        &self,
        actor: &Actor,
        id: Uuid,
        input: &NewEntry,
        header_key: Option<&str>,
    ) -> Result<(TimelineEntry, bool), Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Responder, "writing to the timeline")?;
        if !EntryKind::WRITABLE.contains(&input.kind) {
            return Err(Error::invalid("kind", "status_change and automatic entries are written by Triage"));
        }
        check_text("text", &input.text, true)?;
        check_attachments(&input.attachments)?;
        let key = match (input.idempotency_key.as_deref(), header_key) {
            (Some(a), Some(b)) if a != b => {
                return Err(Error::invalid("idempotency_key", "differs from the Idempotency-Key header"));
            }
            (a, b) => a.or(b),
        };
        if key.is_some_and(|k| k.is_empty() || k.len() > MAX_KEY) {
            return Err(Error::invalid("idempotency_key", "must be 1–200 characters"));
        }
        let now = Utc::now();
        let happened = input.happened_at.unwrap_or(now);
        check_not_future("happened_at", happened, now)?;
        if let Some(k) = key
            && let Some(existing) = store::entry_by_key(&self.pool, id, k).await?
        {
            return Ok((existing, false));
        }
        // The incident must exist (a missing one is a 404, not a foreign-key error).
        self.get(id).await?;
        let row = NewEntryRow {
            attachments: &input.attachments,
            idempotency_key: key,
            ..self.entry_row(id, input.kind, &input.text, &author, happened)
        };
        let mut tx = self.pool.begin().await?;
        let stored = store::insert_entry(&mut *tx, &row).await?;
        let Some(entry) = stored else {
            // A concurrent retry with the same key won the race.
            tx.rollback().await?;
            let k = key.unwrap_or_default();
            let existing = store::entry_by_key(&self.pool, id, k).await?.ok_or(Error::NotFound("entry"))?;
            return Ok((existing, false));
        };
        if let Some(user) = author.user {
            store::add_participant(&mut *tx, id, user).await?;
        }
        tx.commit().await?;
        self.rooms.publish(id, RoomEvent::Entry(entry.clone()));
        self.publish_incident(id).await;
        Ok((entry, true))
    }

    /// The author or a commander may edit; the previous version is kept.
    pub async fn edit_entry(
        &self,
        actor: &Actor,
        id: Uuid,
        entry: Uuid,
        patch: &EntryPatch,
    ) -> Result<TimelineEntry, Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Responder, "editing the timeline")?;
        if let Some(k) = patch.kind
            && !EntryKind::WRITABLE.contains(&k)
        {
            return Err(Error::invalid("kind", "status_change and automatic entries are written by Triage"));
        }
        if let Some(t) = &patch.text {
            check_text("text", t, true)?;
        }
        if let Some(a) = &patch.attachments {
            check_attachments(a)?;
        }
        let now = Utc::now();
        if let Some(at) = patch.happened_at {
            check_not_future("happened_at", at, now)?;
        }
        let mut tx = self.pool.begin().await?;
        let (old, owner) = store::lock_entry(&mut tx, id, entry).await?.ok_or(Error::NotFound("entry"))?;
        may_change(&author, &old, owner)?;
        let mut new = old.clone();
        if let Some(k) = patch.kind {
            new.kind = k;
        }
        if let Some(t) = &patch.text {
            new.text = t.clone();
        }
        if let Some(at) = patch.happened_at {
            new.happened_at = at;
        }
        if let Some(a) = &patch.attachments {
            new.attachments = a.clone();
        }
        if new == old {
            tx.rollback().await?;
            return Ok(old);
        }
        let saved = store::update_entry(&mut tx, &old, &new, &author.name).await?;
        tx.commit().await?;
        self.rooms.publish(id, RoomEvent::Entry(saved.clone()));
        Ok(saved)
    }

    /// Soft deletion: the entry stays, visible to commanders with who deleted it and when.
    pub async fn delete_entry(&self, actor: &Actor, id: Uuid, entry: Uuid) -> Result<TimelineEntry, Error> {
        let author = Author::of(&actor.principal)?;
        author.require(Role::Responder, "editing the timeline")?;
        let mut tx = self.pool.begin().await?;
        let (old, owner) = store::lock_entry(&mut tx, id, entry).await?.ok_or(Error::NotFound("entry"))?;
        may_change(&author, &old, owner)?;
        let deleted = store::delete_entry(&mut tx, entry, &author.name).await?;
        tx.commit().await?;
        self.rooms.publish(id, RoomEvent::Entry(deleted.clone()));
        Ok(deleted)
    }

    /// Earlier versions of an entry, oldest first.
    pub async fn history(&self, id: Uuid, entry: Uuid) -> Result<Vec<app::model::EntryRevision>, Error> {
        if !store::entry_exists(&self.pool, id, entry).await? {
            return Err(Error::NotFound("entry"));
        }
        Ok(store::entry_revisions(&self.pool, entry).await?)
    }

    /// Tells the room the incident changed (participants); a failure only costs freshness.
    async fn publish_incident(&self, id: Uuid) {
        match self.get(id).await {
            Ok(i) => self.rooms.publish(id, RoomEvent::Incident(Box::new(i))),
            Err(e) => tracing::warn!(error = %e, "could not reload the incident for its room"),
        }
    }
}

/// Entries written by Triage are records; people's entries may be changed by their author or a
/// commander.
fn may_change(author: &Author, entry: &TimelineEntry, owner: Option<Uuid>) -> Result<(), Error> {
    if matches!(entry.kind, EntryKind::Automatic | EntryKind::StatusChange) {
        return Err(Error::Conflict {
            field: Some("kind".into()),
            message: "entries written by Triage cannot be changed".into(),
        });
    }
    if entry.deleted.is_some() {
        return Err(Error::Conflict { field: None, message: "the entry was deleted".into() });
    }
    let own = author.user.is_some() && author.user == owner;
    if own || author.role >= Role::Commander {
        Ok(())
    } else {
        Err(Error::Forbidden("only the author or a commander may change this entry".into()))
    }
}
