//! Remote agents as they last reported themselves.

use app::model::Agent;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// What an agent tells about itself with each batch (or when its stream opens).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report<'a> {
    pub agent_id: Uuid,
    pub token_id: Uuid,
    pub location: &'a str,
    pub version: &'a str,
    pub lag_ms: Option<i64>,
    pub buffered: i64,
    pub dropped: i64,
    pub clock_offset_ms: i64,
}

/// Records an agent's report (first contact creates its row). A row held by another token is
/// left alone: answers `false`, and the caller refuses the agent.
#[tracing::instrument(skip_all, fields(agent = %r.agent_id, location = r.location))]
pub async fn report(pool: &PgPool, r: &Report<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "insert into agents (agent_id, token_id, location, version, lag_ms, buffered, dropped, clock_offset_ms)
         values ($1, $2, $3, $4, coalesce($5::bigint, 0), $6, $7, $8)
         on conflict (agent_id) do update set
           location = excluded.location, version = excluded.version, last_seen = now(),
           lag_ms = coalesce($5::bigint, agents.lag_ms), buffered = excluded.buffered, dropped = excluded.dropped,
           clock_offset_ms = excluded.clock_offset_ms
         where agents.token_id = excluded.token_id",
        r.agent_id,
        r.token_id,
        r.location,
        r.version,
        r.lag_ms,
        r.buffered,
        r.dropped,
        r.clock_offset_ms,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes that the agent's stream of assignments is open (on connect and every few seconds while
/// it is), and answers the time noted; `None` when the agent id belongs to another token.
#[tracing::instrument(skip(pool))]
pub async fn stream_open(
    pool: &PgPool,
    agent_id: Uuid,
    token_id: Uuid,
    location: &str,
    version: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"insert into agents (agent_id, token_id, location, version, stream_seen) values ($1, $2, $3, $4, now())
           on conflict (agent_id) do update set
             location = excluded.location, version = excluded.version, stream_seen = now(), last_seen = now()
           where agents.token_id = excluded.token_id
           returning stream_seen as "seen!""#,
        agent_id,
        token_id,
        location,
        version,
    )
    .fetch_optional(pool)
    .await
}

/// The stream that last noted itself open at `seen` closed (a newer stream of the same agent,
/// on this replica or another, has noted a later time and is left alone).
#[tracing::instrument(skip(pool))]
pub async fn stream_closed(pool: &PgPool, agent_id: Uuid, seen: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query!("update agents set stream_seen = null where agent_id = $1 and stream_seen = $2", agent_id, seen)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Every agent, by location, with how many enabled probes its location has.
#[tracing::instrument(skip(pool))]
pub async fn list(pool: &PgPool) -> Result<Vec<Agent>, sqlx::Error> {
    sqlx::query_as!(
        Agent,
        r#"select a.agent_id as id, a.location, a.version, a.token_id, t.name as token_name, a.first_seen,
                  a.last_seen, a.lag_ms, a.buffered, a.dropped, a.clock_offset_ms,
                  (select count(*) from probes p
                    where p.spec->'locations' ? a.location and coalesce((p.spec->>'enabled')::boolean, true))
                    as "assigned!",
                  coalesce(a.stream_seen > now() - interval '1 minute', false) as "connected!",
                  t.revoked_at is not null as "revoked!"
             from agents a join api_tokens t using (token_id)
            order by a.location, a.first_seen"#
    )
    .fetch_all(pool)
    .await
}

/// The token an agent signs in with, to revoke it.
#[tracing::instrument(skip(pool))]
pub async fn token_of(pool: &PgPool, agent_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("select token_id from agents where agent_id = $1", agent_id).fetch_optional(pool).await
}

/// The highest result number stored for the agent, locked until the transaction ends (one
/// delivery of an agent at a time, whichever replica it reaches). `None`: no such agent.
#[tracing::instrument(skip(tx))]
pub async fn lock_delivered(tx: &mut Transaction<'_, Postgres>, agent_id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar!("select delivered_seq from agents where agent_id = $1 for update", agent_id)
        .fetch_optional(&mut **tx)
        .await
}

/// Raises the agent's highest stored result number.
#[tracing::instrument(skip(tx))]
pub async fn set_delivered(tx: &mut Transaction<'_, Postgres>, agent_id: Uuid, seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query!("update agents set delivered_seq = greatest(delivered_seq, $2) where agent_id = $1", agent_id, seq)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}
