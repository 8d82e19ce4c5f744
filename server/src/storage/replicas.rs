//! Replica membership: who shares this database, who is alive, who leads.
//!
//! A replica is alive while it heartbeats *and* holds the session advisory lock keyed by its
//! member number. The lock lives on the replica's own membership connection, so a replica killed
//! with `kill -9` loses it as soon as PostgreSQL sees the connection close, without waiting for
//! its heartbeat to age. The heartbeat covers the other failure: a process that hangs with its
//! connection open. Advisory locks are per database, so test databases in one cluster never meet.

use app::model::Replica;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// First key of the membership locks (the second is the member number); "tr".
const MEMBER_CLASS: i32 = 0x7472;
/// The leader lock: (LEADER_CLASS, 0). Whoever holds it runs the work that must run once.
const LEADER_CLASS: i32 = 0x7473;

pub struct NewReplica<'a> {
    pub id: Uuid,
    pub host: &'a str,
    pub pid: i32,
    pub version: &'a str,
    pub listen: &'a str,
}

/// Records the replica (again, after a reconnect) and answers its member number.
#[tracing::instrument(skip_all, fields(replica = %r.id))]
pub async fn register(conn: &mut PgConnection, r: &NewReplica<'_>) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar!(
        "insert into replicas (replica_id, host, pid, version, listen) values ($1, $2, $3, $4, $5)
         on conflict (replica_id) do update set heartbeat_at = now()
         returning member_no",
        r.id,
        r.host,
        r.pid,
        r.version,
        r.listen,
    )
    .fetch_one(conn)
    .await
}

/// Has PostgreSQL end this session after `secs` without a statement: a frozen or cut-off replica
/// then lets go of its locks (leadership above all) instead of holding them until TCP gives up.
/// The heartbeat keeps a live replica's session busy. Refused before PostgreSQL 14 (ignored).
#[tracing::instrument(skip(conn))]
pub async fn end_when_idle(conn: &mut PgConnection, secs: i64) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("set idle_session_timeout = '{secs}s'")).execute(conn).await.map(|_| ())
}

/// Takes the membership lock on this connection (held until it closes).
#[tracing::instrument(skip(conn))]
pub async fn lock_member(conn: &mut PgConnection, member_no: i32) -> Result<bool, sqlx::Error> {
    let got = sqlx::query_scalar!("select pg_try_advisory_lock($1, $2) as \"got!\"", MEMBER_CLASS, member_no)
        .fetch_one(conn)
        .await?;
    Ok(got)
}

/// Tries the leader lock on this connection; true while this connection holds it (asking again
/// while holding it stacks the lock, so callers ask only while they do not lead).
#[tracing::instrument(skip_all)]
pub async fn try_lead(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let got =
        sqlx::query_scalar!("select pg_try_advisory_lock($1, 0) as \"got!\"", LEADER_CLASS).fetch_one(conn).await?;
    Ok(got)
}

#[tracing::instrument(skip(conn))]
pub async fn heartbeat(conn: &mut PgConnection, id: Uuid, probes_owned: i32, leader: bool) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update replicas set heartbeat_at = now(), probes_owned = $2, leader = $3 where replica_id = $1",
        id,
        probes_owned,
        leader
    )
    .execute(conn)
    .await
    .map(|_| ())
}

struct ReplicaRow {
    replica_id: Uuid,
    host: String,
    pid: i32,
    version: String,
    listen: String,
    started_at: DateTime<Utc>,
    heartbeat_at: DateTime<Utc>,
    probes_owned: i32,
    leader: bool,
    alive: bool,
}

impl From<ReplicaRow> for Replica {
    fn from(r: ReplicaRow) -> Self {
        Replica {
            id: r.replica_id,
            host: r.host,
            pid: r.pid,
            version: r.version,
            listen: r.listen,
            started_at: r.started_at,
            last_seen: r.heartbeat_at,
            probes_owned: r.probes_owned,
            leader: r.leader && r.alive,
            alive: r.alive,
        }
    }
}

/// Replicas seen in the last day, alive first; `dead_after` is how old a heartbeat may be.
#[tracing::instrument(skip(conn))]
pub async fn list(conn: &mut PgConnection, dead_after_secs: f64) -> Result<Vec<Replica>, sqlx::Error> {
    let rows = sqlx::query_as!(
        ReplicaRow,
        r#"select r.replica_id, r.host, r.pid, r.version, r.listen, r.started_at, r.heartbeat_at,
                  r.probes_owned, r.leader,
                  (r.heartbeat_at > now() - make_interval(secs => $1)
                   and exists (select 1 from pg_locks l
                                where l.locktype = 'advisory' and l.granted and l.objsubid = 2
                                  and l.database = (select oid from pg_database where datname = current_database())
                                  and l.classid = $2::integer::oid and l.objid = r.member_no::oid)) as "alive!"
             from replicas r
            where r.heartbeat_at > now() - interval '1 day'
            order by 10 desc, r.started_at, r.replica_id"#,
        dead_after_secs,
        MEMBER_CLASS,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Replica::from).collect())
}

/// The same list from the pool (for the API).
#[tracing::instrument(skip(pool))]
pub async fn list_from(pool: &PgPool, dead_after_secs: f64) -> Result<Vec<Replica>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    list(&mut conn, dead_after_secs).await
}

/// Forgets replicas not seen for a day.
#[tracing::instrument(skip_all)]
pub async fn prune(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("delete from replicas where heartbeat_at < now() - interval '1 day'").execute(conn).await?;
    Ok(done.rows_affected())
}
