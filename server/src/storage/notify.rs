//! Notification channels, rules, events and deliveries. Events are inserted inside the caller's
//! transaction (the one that makes the change they announce); deliveries are claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease, so any number of senders share them without sending one
//! twice.

use app::model::{Channel, ChannelHealth, ChannelSpec, Delivery, DeliveryState, EventKind, Rule, RuleSpec};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

/// The channel PostgreSQL notifies on commit of a new event: routers wake at once, on every
/// replica.
pub const WAKE_CHANNEL: &str = "triage_notifications";

struct ChannelRow {
    channel_id: Uuid,
    spec: Json<ChannelSpec>,
    failing_since: Option<DateTime<Utc>>,
    last_delivered_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    pending: Option<i64>,
    failed: Option<i64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ChannelRow> for Channel {
    fn from(r: ChannelRow) -> Self {
        Channel {
            id: r.channel_id,
            spec: r.spec.0,
            health: ChannelHealth {
                last_delivered_at: r.last_delivered_at,
                failing_since: r.failing_since,
                last_error: r.last_error,
                pending: r.pending.unwrap_or(0),
                failed: r.failed.unwrap_or(0),
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Every channel, or the one `only` names; unmasked (callers mask before anything leaves the
/// server).
#[tracing::instrument(skip_all)]
pub async fn channels(pool: &PgPool, only: Option<Uuid>) -> Result<Vec<Channel>, sqlx::Error> {
    let rows = sqlx::query_as!(
        ChannelRow,
        r#"select c.channel_id, c.spec as "spec: Json<ChannelSpec>", c.failing_since, c.last_delivered_at,
                  c.last_error, c.created_at, c.updated_at,
                  (select count(*) from notification_deliveries d
                    where d.channel_id = c.channel_id and d.state = 'pending') as pending,
                  (select count(*) from notification_deliveries d
                    where d.channel_id = c.channel_id and d.state = 'failed') as failed
             from notification_channels c
            where $1::uuid is null or c.channel_id = $1
            order by lower(c.name)"#,
        only
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Channel::from).collect())
}

#[tracing::instrument(skip_all)]
pub async fn get_channel(pool: &PgPool, id: Uuid) -> Result<Option<Channel>, sqlx::Error> {
    Ok(channels(pool, Some(id)).await?.pop())
}

#[tracing::instrument(skip_all)]
pub async fn insert_channel(conn: &mut PgConnection, id: Uuid, spec: &ChannelSpec) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into notification_channels (channel_id, name, kind, enabled, spec) values ($1, $2, $3, $4, $5)",
        id,
        spec.name,
        spec.kind.as_str(),
        spec.enabled,
        Json(spec) as _,
    )
    .execute(conn)
    .await
    .map(|_| ())
}

/// Replaces a channel's definition; `false` when there is no such channel. A changed channel
/// starts with a clean failure record.
#[tracing::instrument(skip_all)]
pub async fn update_channel(conn: &mut PgConnection, id: Uuid, spec: &ChannelSpec) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update notification_channels
            set name = $2, kind = $3, enabled = $4, spec = $5, updated_at = now(),
                failing_since = null, failing_announced = false
          where channel_id = $1",
        id,
        spec.name,
        spec.kind.as_str(),
        spec.enabled,
        Json(spec) as _,
    )
    .execute(&mut *conn)
    .await?;
    if !spec.enabled {
        // Switched off: what was waiting is not sent later by surprise.
        sqlx::query!(
            "update notification_deliveries
                set state = 'failed', last_answer = 'not sent: the channel was disabled'
              where channel_id = $1 and state = 'pending' and (lease_until is null or lease_until < now())",
            id
        )
        .execute(conn)
        .await?;
    }
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all)]
pub async fn delete_channel(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!("delete from notification_channels where channel_id = $1", id).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

struct RuleRow {
    rule_id: Uuid,
    spec: Json<RuleSpec>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<RuleRow> for Rule {
    fn from(r: RuleRow) -> Self {
        Rule { id: r.rule_id, spec: r.spec.0, created_at: r.created_at, updated_at: r.updated_at }
    }
}

#[tracing::instrument(skip_all)]
pub async fn list_rules(conn: &mut PgConnection) -> Result<Vec<Rule>, sqlx::Error> {
    let rows = sqlx::query_as!(
        RuleRow,
        r#"select rule_id, spec as "spec: Json<RuleSpec>", created_at, updated_at
             from notification_rules order by created_at, rule_id"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Rule::from).collect())
}

#[tracing::instrument(skip_all)]
pub async fn get_rule(pool: &PgPool, id: Uuid) -> Result<Option<Rule>, sqlx::Error> {
    let row = sqlx::query_as!(
        RuleRow,
        r#"select rule_id, spec as "spec: Json<RuleSpec>", created_at, updated_at
             from notification_rules where rule_id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Rule::from))
}

#[tracing::instrument(skip_all)]
pub async fn insert_rule(conn: &mut PgConnection, id: Uuid, spec: &RuleSpec) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into notification_rules (rule_id, name, spec) values ($1, $2, $3)",
        id,
        spec.name,
        Json(spec) as _,
    )
    .execute(conn)
    .await
    .map(|_| ())
}

#[tracing::instrument(skip_all)]
pub async fn update_rule(conn: &mut PgConnection, id: Uuid, spec: &RuleSpec) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update notification_rules set name = $2, spec = $3, updated_at = now() where rule_id = $1",
        id,
        spec.name,
        Json(spec) as _,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[tracing::instrument(skip_all)]
pub async fn delete_rule(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!("delete from notification_rules where rule_id = $1", id).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Ids of the services among `ids` that exist (to name the unknown ones).
#[tracing::instrument(skip_all)]
pub async fn existing_services(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("select service_id from services where service_id = any($1)", ids).fetch_all(pool).await
}

#[tracing::instrument(skip_all)]
pub async fn existing_channels(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("select channel_id from notification_channels where channel_id = any($1)", ids)
        .fetch_all(pool)
        .await
}

/// An event to announce, as the code that makes the change writes it.
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    pub payload: &'a serde_json::Value,
    pub service_id: Option<Uuid>,
    pub probe_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub severity: Option<&'a str>,
    pub dedup_key: Option<&'a str>,
    /// Only to this channel, rules aside.
    pub channel_id: Option<Uuid>,
}

/// Writes the event in the caller's transaction and wakes the routers when it commits. `false`
/// when an event with the same dedup key exists (a periodic check raising it again).
#[tracing::instrument(skip_all, fields(kind = e.kind.as_str()))]
pub async fn insert_event(conn: &mut PgConnection, e: &NewEvent<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "insert into notification_events
            (event_id, kind, at, payload, service_id, probe_id, incident_id, severity, dedup_key, channel_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (dedup_key) do nothing",
        e.id,
        e.kind.as_str(),
        e.at,
        e.payload,
        e.service_id,
        e.probe_id,
        e.incident_id,
        e.severity,
        e.dedup_key,
        e.channel_id,
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query!("select pg_notify($1, '')", WAKE_CHANNEL).execute(conn).await?;
    Ok(true)
}

/// An event waiting to be routed.
pub struct UnroutedEvent {
    pub event_id: Uuid,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub service_id: Option<Uuid>,
    pub probe_id: Option<Uuid>,
    pub incident_id: Option<Uuid>,
    pub severity: Option<String>,
    pub channel_id: Option<Uuid>,
    /// For `channel.failing`: the channel that fails (it is not told).
    pub subject_channel: Option<Uuid>,
}

/// Takes up to `limit` unrouted events, oldest first; other routers skip them until commit.
#[tracing::instrument(skip_all)]
pub async fn claim_unrouted(tx: &mut Transaction<'_, Postgres>, limit: i64) -> Result<Vec<UnroutedEvent>, sqlx::Error> {
    sqlx::query_as!(
        UnroutedEvent,
        r#"select event_id, kind, at, service_id, probe_id, incident_id, severity, channel_id,
                  case when kind = 'channel.failing' then (payload #>> '{subject,id}')::uuid end as subject_channel
             from notification_events
            where routed_at is null
            order by created_at, event_id
            limit $1
            for update skip locked"#,
        limit
    )
    .fetch_all(&mut **tx)
    .await
}

/// The services an event concerns (its own, and its incident's) and their tags: what rules
/// filter on.
#[tracing::instrument(skip_all)]
pub async fn event_scope(
    conn: &mut PgConnection,
    service: Option<Uuid>,
    incident: Option<Uuid>,
) -> Result<(Vec<Uuid>, Vec<String>), sqlx::Error> {
    let row = sqlx::query!(
        r#"with ids as (
               select $1::uuid as service_id where $1::uuid is not null
               union
               select service_id from incident_services where incident_id = $2
           )
           select coalesce(array_agg(distinct s.service_id), '{}') as "services!",
                  coalesce(array_agg(distinct t.tag) filter (where t.tag is not null), '{}') as "tags!"
             from ids
             join services s on s.service_id = ids.service_id
             left join lateral unnest(s.tags) as t(tag) on true"#,
        service,
        incident,
    )
    .fetch_one(conn)
    .await?;
    Ok((row.services, row.tags))
}

#[tracing::instrument(skip_all)]
pub async fn mark_routed(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("update notification_events set routed_at = now() where event_id = $1", id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// Enabled channels: (id, name).
#[tracing::instrument(skip_all)]
pub async fn enabled_channels(conn: &mut PgConnection) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let rows = sqlx::query!("select channel_id, name from notification_channels where enabled order by channel_id")
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.channel_id, r.name)).collect())
}

/// A delivery as the router creates it.
pub struct NewDelivery {
    pub event_id: Uuid,
    pub channel_id: Uuid,
    pub state: DeliveryState,
    pub next_at: DateTime<Utc>,
    pub probe_id: Option<Uuid>,
    pub held: bool,
    pub last_answer: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn insert_delivery(tx: &mut Transaction<'_, Postgres>, d: &NewDelivery) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into notification_deliveries
            (delivery_id, event_id, channel_id, state, next_at, probe_id, held, last_answer, covers_since)
         values ($1, $2, $3, $4, $5, $6, $7, $8, case when $7 then now() end)
         on conflict (event_id, channel_id) do nothing",
        Uuid::new_v4(),
        d.event_id,
        d.channel_id,
        d.state.as_str(),
        d.next_at,
        d.probe_id,
        d.held,
        d.last_answer,
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// Flap control's view of one probe on one channel: when its last message was (or is due to be)
/// sent, and the held summary that further changes join, if any.
pub struct FlapState {
    pub last_sent_at: Option<DateTime<Utc>>,
    pub held: Option<Uuid>,
}

#[tracing::instrument(skip_all)]
pub async fn flap_state(
    tx: &mut Transaction<'_, Postgres>,
    probe: Uuid,
    channel: Uuid,
    since: DateTime<Utc>,
) -> Result<FlapState, sqlx::Error> {
    let last_sent_at = sqlx::query_scalar!(
        r#"select max(coalesce(delivered_at, last_attempt_at, next_at)) as "at"
             from notification_deliveries
            where probe_id = $1 and channel_id = $2 and state <> 'suppressed' and (not held or attempts > 0)
              and created_at >= $3"#,
        probe,
        channel,
        since,
    )
    .fetch_one(&mut **tx)
    .await?;
    let held = sqlx::query_scalar!(
        "select delivery_id from notification_deliveries
          where probe_id = $1 and channel_id = $2 and held and state = 'pending' and attempts = 0
            and lease_until is null
          for update",
        probe,
        channel,
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(FlapState { last_sent_at, held })
}

/// A further change joins the held summary: it now carries the newest event.
#[tracing::instrument(skip_all)]
pub async fn join_held(tx: &mut Transaction<'_, Postgres>, delivery: Uuid, event: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update notification_deliveries set event_id = $2, covers = covers + 1 where delivery_id = $1",
        delivery,
        event
    )
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// A delivery claimed for one attempt, with what sending it needs.
pub struct Claimed {
    pub delivery_id: Uuid,
    pub attempts: i32,
    pub covers: i32,
    pub covers_since: Option<DateTime<Utc>>,
    pub event_id: Uuid,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub payload: serde_json::Value,
    pub channel_id: Uuid,
    pub spec: Json<ChannelSpec>,
}

/// Claims up to `limit` due deliveries for one attempt each: the lease keeps every other sender
/// off them until it expires.
#[tracing::instrument(skip_all)]
pub async fn claim_due(pool: &PgPool, limit: i64, lease_secs: f64) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as!(
        Claimed,
        r#"with due as (
               select delivery_id from notification_deliveries
                where state = 'pending' and next_at <= now() and (lease_until is null or lease_until < now())
                order by next_at
                limit $1
                for update skip locked
           ), taken as (
               update notification_deliveries d
                  set attempts = d.attempts + 1, last_attempt_at = now(),
                      lease_until = now() + make_interval(secs => $2)
                 from due where d.delivery_id = due.delivery_id
            returning d.delivery_id, d.attempts, d.covers, d.covers_since, d.event_id, d.channel_id
           )
           select t.delivery_id, t.attempts, t.covers, t.covers_since, t.event_id, e.kind, e.at, e.payload,
                  t.channel_id, c.spec as "spec: Json<ChannelSpec>"
             from taken t
             join notification_events e on e.event_id = t.event_id
             join notification_channels c on c.channel_id = t.channel_id"#,
        limit,
        lease_secs,
    )
    .fetch_all(pool)
    .await
}

/// A test message's delivery, claimed for its one attempt by the caller (the router never sees
/// it): (delivery id, attempts, the event's payload).
#[tracing::instrument(skip_all)]
pub async fn claim_test(
    tx: &mut Transaction<'_, Postgres>,
    event: Uuid,
    channel: Uuid,
) -> Result<(Uuid, i32, serde_json::Value), sqlx::Error> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "insert into notification_deliveries
            (delivery_id, event_id, channel_id, state, next_at, attempts, last_attempt_at, lease_until)
         values ($1, $2, $3, 'pending', now(), 1, now(), now() + interval '5 minutes')",
        id,
        event,
        channel,
    )
    .execute(&mut **tx)
    .await?;
    let payload = sqlx::query_scalar!(
        "update notification_events set routed_at = now() where event_id = $1 returning payload",
        event
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok((id, 1, payload))
}

/// How one attempt ended.
#[derive(Clone, Debug)]
pub enum Attempt {
    Delivered {
        answer: String,
    },
    /// Try again at `next_at`.
    Retry {
        answer: String,
        next_at: DateTime<Utc>,
    },
    /// Out of attempts or refused for good.
    Failed {
        answer: String,
    },
}

/// Records an attempt's end; `attempts` is the claim's, so a stale sender (whose lease expired
/// and whose delivery was claimed again) changes nothing.
#[tracing::instrument(skip_all)]
pub async fn record_attempt(
    pool: &PgPool,
    delivery: Uuid,
    channel: Uuid,
    attempts: i32,
    outcome: &Attempt,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    // The channel row is locked before the delivery, in the order deleting a channel takes them
    // (the channel, then its deliveries by cascade); the other order deadlocks against a delete.
    sqlx::query!("select 1 as one from notification_channels where channel_id = $1 for no key update", channel)
        .fetch_optional(&mut *tx)
        .await?;
    let (state, answer, next_at) = match outcome {
        Attempt::Delivered { answer } => ("delivered", answer, None),
        Attempt::Retry { answer, next_at } => ("pending", answer, Some(*next_at)),
        Attempt::Failed { answer } => ("failed", answer, None),
    };
    let done = sqlx::query!(
        "update notification_deliveries
            set state = $3, last_answer = $4, next_at = coalesce($5, next_at), lease_until = null,
                delivered_at = case when $3 = 'delivered' then now() end
          where delivery_id = $1 and attempts = $2 and state = 'pending'",
        delivery,
        attempts,
        state,
        answer,
        next_at,
    )
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        if state == "delivered" {
            sqlx::query!(
                "update notification_channels
                    set last_delivered_at = now(), failing_since = null, failing_announced = false
                  where channel_id = $1",
                channel
            )
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query!(
                "update notification_channels
                    set failing_since = coalesce(failing_since, now()), last_error = $2
                  where channel_id = $1",
                channel,
                answer
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

/// When the next pending delivery falls due (to sleep until then).
#[tracing::instrument(skip_all)]
pub async fn next_due(pool: &PgPool) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select min(greatest(next_at, coalesce(lease_until, next_at))) as "at"
             from notification_deliveries where state = 'pending'"#
    )
    .fetch_one(pool)
    .await
}

/// A channel whose attempts have been failing: (id, name, failing since, last error).
pub type FailingChannel = (Uuid, String, DateTime<Utc>, Option<String>);

/// Channels failing since before `before` and not yet announced.
#[tracing::instrument(skip_all)]
pub async fn failing_unannounced(pool: &PgPool, before: DateTime<Utc>) -> Result<Vec<FailingChannel>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select channel_id, name, failing_since as "failing_since!", last_error
             from notification_channels
            where enabled and failing_since < $1 and not failing_announced"#,
        before
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.channel_id, r.name, r.failing_since, r.last_error)).collect())
}

#[tracing::instrument(skip_all)]
pub async fn mark_failing_announced(conn: &mut PgConnection, channel: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("update notification_channels set failing_announced = true where channel_id = $1", channel)
        .execute(conn)
        .await
        .map(|_| ())
}

struct DeliveryRow {
    delivery_id: Uuid,
    event_id: Uuid,
    kind: String,
    channel_id: Uuid,
    summary: Option<String>,
    state: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    next_at: DateTime<Utc>,
    last_attempt_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    last_answer: Option<String>,
    covers: i32,
}

impl DeliveryRow {
    fn into_delivery(self) -> Option<Delivery> {
        let state = DeliveryState::parse(&self.state)?;
        Some(Delivery {
            id: self.delivery_id,
            event_id: self.event_id,
            event: EventKind::parse(&self.kind)?,
            channel_id: self.channel_id,
            summary: self.summary.unwrap_or_default(),
            state,
            attempts: self.attempts,
            created_at: self.created_at,
            next_attempt_at: (state == DeliveryState::Pending).then_some(self.next_at),
            last_attempt_at: self.last_attempt_at,
            delivered_at: self.delivered_at,
            last_answer: self.last_answer,
            covers: self.covers,
        })
    }
}

/// Which deliveries [`deliveries`] reads.
pub enum DeliveryFilter {
    /// A channel's log, newest first, at most this many.
    Channel(Uuid, i64),
    One(Uuid),
}

/// A channel's delivery log or one delivery. Both filters are bound, so the planner keeps using
/// the channel and primary-key indexes for whichever is set.
#[tracing::instrument(skip_all)]
pub async fn deliveries(pool: &PgPool, filter: DeliveryFilter) -> Result<Vec<Delivery>, sqlx::Error> {
    let (channel, one, limit) = match filter {
        DeliveryFilter::Channel(channel, limit) => (Some(channel), None, limit),
        DeliveryFilter::One(id) => (None, Some(id), 1),
    };
    let rows = sqlx::query_as!(
        DeliveryRow,
        r#"select d.delivery_id, d.event_id, e.kind, d.channel_id, e.payload ->> 'summary' as summary, d.state,
                  d.attempts, d.created_at, d.next_at, d.last_attempt_at, d.delivered_at, d.last_answer, d.covers
             from notification_deliveries d
             join notification_events e on e.event_id = d.event_id
            where ($1::uuid is null or d.channel_id = $1) and ($2::uuid is null or d.delivery_id = $2)
            order by d.created_at desc, d.delivery_id
            limit $3"#,
        channel,
        one,
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(DeliveryRow::into_delivery).collect())
}

/// Names and tags for an event's service, and the incident's commander: what a payload names.
#[tracing::instrument(skip_all)]
pub async fn commander_email(conn: &mut PgConnection, user: Option<Uuid>) -> Result<Option<String>, sqlx::Error> {
    let Some(user) = user else { return Ok(None) };
    sqlx::query_scalar!("select email from users where user_id = $1", user).fetch_optional(conn).await
}

/// Removes events (and their deliveries) older than `before`; returns how many.
#[tracing::instrument(skip_all)]
pub async fn prune_events(pool: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "delete from notification_events e
          where e.created_at < $1
            and not exists (select 1 from notification_deliveries d
                             where d.event_id = e.event_id and d.state = 'pending')",
        before
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A certificate close to expiry, from the probes' recent results.
pub struct ExpiringCertificate {
    pub probe_id: Uuid,
    pub probe: String,
    pub service_id: Uuid,
    pub service: String,
    pub days_left: i32,
    pub at: DateTime<Utc>,
}

/// Probes whose latest result of the last hour saw a certificate expiring within `days`.
#[tracing::instrument(skip_all)]
pub async fn expiring_certificates(pool: &PgPool, days: i32) -> Result<Vec<ExpiringCertificate>, sqlx::Error> {
    sqlx::query_as!(
        ExpiringCertificate,
        r#"select l.probe_id as "probe_id!", p.name as probe, s.service_id, s.name as service,
                  l.cert_days_left as "days_left!", l.at as "at!"
             from (select distinct on (probe_id) probe_id, at, cert_days_left
                     from results
                    where at > now() - interval '1 hour' and cert_days_left is not null
                    order by probe_id, at desc) l
             join probes p on p.probe_id = l.probe_id
             join services s on s.service_id = p.service_id
            where l.cert_days_left <= $1 and p.enabled"#,
        days
    )
    .fetch_all(pool)
    .await
}

/// An action item past its due date and not done.
pub struct OverdueItem {
    pub postmortem_id: Uuid,
    pub incident_id: Uuid,
    pub incident_title: String,
    pub severity: String,
    pub item_id: Uuid,
    pub title: String,
    pub owner: String,
    pub due: chrono::NaiveDate,
}

#[tracing::instrument(skip_all)]
pub async fn overdue_action_items(pool: &PgPool) -> Result<Vec<OverdueItem>, sqlx::Error> {
    sqlx::query_as!(
        OverdueItem,
        r#"select p.postmortem_id, p.incident_id, i.title as incident_title, i.severity,
                  (a ->> 'id')::uuid as "item_id!", a ->> 'title' as "title!",
                  coalesce(a ->> 'owner', '') as "owner!", (a ->> 'due')::date as "due!"
             from postmortems p
             join incidents i on i.incident_id = p.incident_id
             cross join lateral jsonb_array_elements(p.doc -> 'action_items') a
            where a ? 'id' and a ->> 'due' is not null and (a ->> 'due')::date < current_date
              and coalesce(a ->> 'status', 'open') <> 'done'"#
    )
    .fetch_all(pool)
    .await
}

/// Every rule with whether the probe file manages it.
#[tracing::instrument(skip_all)]
pub async fn rules_with_origin(conn: &mut PgConnection) -> Result<Vec<(Uuid, RuleSpec, bool)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select rule_id, spec as "spec: Json<RuleSpec>", file_managed from notification_rules order by created_at"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.rule_id, r.spec.0, r.file_managed)).collect())
}

/// Writes a rule the probe file declares: replaces `existing` (taking it over), or adds it.
#[tracing::instrument(skip_all)]
pub async fn write_file_rule(
    conn: &mut PgConnection,
    existing: Option<Uuid>,
    spec: &RuleSpec,
) -> Result<(), sqlx::Error> {
    match existing {
        Some(id) => sqlx::query!(
            "update notification_rules set name = $2, spec = $3, file_managed = true, updated_at = now()
              where rule_id = $1",
            id,
            spec.name,
            Json(spec) as _,
        )
        .execute(conn)
        .await
        .map(|_| ()),
        None => sqlx::query!(
            "insert into notification_rules (rule_id, name, spec, file_managed) values ($1, $2, $3, true)",
            Uuid::new_v4(),
            spec.name,
            Json(spec) as _,
        )
        .execute(conn)
        .await
        .map(|_| ()),
    }
}

/// Every channel's id and name (disabled ones too: a rule may name a channel switched off).
#[tracing::instrument(skip_all)]
pub async fn channel_names(conn: &mut PgConnection) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let rows = sqlx::query!("select channel_id, name from notification_channels").fetch_all(conn).await?;
    Ok(rows.into_iter().map(|r| (r.channel_id, r.name)).collect())
}
