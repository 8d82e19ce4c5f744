//! Users, sessions, API tokens and the audit trail.

use app::model::{Role, Scope, TokenSummary, UserSummary};
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A user with what signing in needs (the hash stays on the server).
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
}

/// A `users` row as the queries below select it.
struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    role: String,
    password_hash: String,
    disabled: bool,
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> Self {
        UserRecord {
            id: r.id,
            email: r.email,
            display_name: r.display_name,
            // The column's check constraint admits only the four names; the fallback is the least power.
            role: Role::parse(&r.role).unwrap_or(Role::Viewer),
            password_hash: r.password_hash,
            disabled: r.disabled,
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn any_users(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"select exists (select 1 from users) as "exists!""#).fetch_one(pool).await
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn insert_user<'e>(
    ex: impl PgExecutor<'e>,
    id: Uuid,
    email: &str,
    display_name: &str,
    role: Role,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into users (user_id, email, display_name, role, password_hash) values ($1, $2, $3, $4, $5)",
        id,
        email,
        display_name,
        role.as_str(),
        password_hash,
    )
    .execute(ex)
    .await
    .map(|_| ())
}

/// Creates the first admin only while there are no users: two racing set-up forms cannot both win.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn insert_first_user(
    pool: &PgPool,
    id: Uuid,
    email: &str,
    display_name: &str,
    password_hash: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Serialises concurrent first-run attempts for the length of this transaction.
    sqlx::query!("lock table users in share row exclusive mode").execute(&mut *tx).await?;
    let exists = sqlx::query_scalar!(r#"select exists (select 1 from users) as "exists!""#).fetch_one(&mut *tx).await?;
    if exists {
        return Ok(false);
    }
    insert_user(&mut *tx, id, email, display_name, Role::Admin, password_hash).await?;
    tx.commit().await?;
    Ok(true)
}

#[tracing::instrument(skip_all)]
pub async fn user_by_email(pool: &PgPool, email: &str) -> Result<Option<UserRecord>, sqlx::Error> {
    let row = sqlx::query_as!(
        UserRow,
        r#"select user_id as id, email, display_name, role, password_hash, disabled_at is not null as "disabled!"
             from users where lower(email) = lower($1)"#,
        email,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(UserRecord::from))
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn user_by_id(pool: &PgPool, id: Uuid) -> Result<Option<UserRecord>, sqlx::Error> {
    let row = sqlx::query_as!(
        UserRow,
        r#"select user_id as id, email, display_name, role, password_hash, disabled_at is not null as "disabled!"
             from users where user_id = $1"#,
        id,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(UserRecord::from))
}

#[tracing::instrument(skip_all)]
pub async fn list_users(pool: &PgPool) -> Result<Vec<UserSummary>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select user_id, email, display_name, role, disabled_at is not null as "disabled!", created_at
             from users order by lower(email)"#,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| UserSummary {
            id: r.user_id,
            email: r.email,
            display_name: r.display_name,
            role: Role::parse(&r.role).unwrap_or(Role::Viewer),
            disabled: r.disabled,
            created_at: r.created_at,
        })
        .collect())
}

/// Changes the role and/or the disabled flag; disabling also ends every session of the user.
/// Returns false when there is no such user.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn update_user(
    pool: &PgPool,
    id: Uuid,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query!(
        "update users set role = coalesce($2, role),
                          disabled_at = case when $3::bool is null then disabled_at
                                             when $3 then coalesce(disabled_at, now()) else null end
          where user_id = $1",
        id,
        role.map(Role::as_str) as Option<&str>,
        disabled,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if disabled == Some(true) {
        sqlx::query!("delete from sessions where user_id = $1", id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(updated == 1)
}

/// Sets a new password hash and ends every session of the user except `keep` (the one that
/// changed it, if any).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn set_password(pool: &PgPool, id: Uuid, hash: &str, keep: Option<&[u8]>) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let updated =
        sqlx::query!("update users set password_hash = $2, password_changed_at = now() where user_id = $1", id, hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    sqlx::query!("delete from sessions where user_id = $1 and ($2::bytea is null or session_hash <> $2)", id, keep)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(updated == 1)
}

pub struct NewSession<'a> {
    pub hash: &'a [u8],
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub remote_addr: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

#[tracing::instrument(skip_all)]
pub async fn insert_session(pool: &PgPool, s: &NewSession<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into sessions (session_hash, user_id, expires_at, remote_addr, user_agent) values ($1, $2, $3, $4, $5)",
        s.hash,
        s.user_id,
        s.expires_at,
        s.remote_addr,
        s.user_agent,
    )
    .execute(pool)
    .await
    .map(|_| ())
}

/// A live session: its user (enabled) and when it was last used.
pub struct SessionRecord {
    pub user: UserRecord,
    pub last_seen_at: DateTime<Utc>,
}

/// The session with this hash if it has not expired (absolute) and its user is enabled.
#[tracing::instrument(skip_all)]
pub async fn session(pool: &PgPool, hash: &[u8]) -> Result<Option<SessionRecord>, sqlx::Error> {
    let row = sqlx::query!(
        "select u.user_id, u.email, u.display_name, u.role, u.password_hash, s.last_seen_at
           from sessions s join users u using (user_id)
          where s.session_hash = $1 and s.expires_at > now() and u.disabled_at is null",
        hash,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| SessionRecord {
        user: UserRecord::from(UserRow {
            id: r.user_id,
            email: r.email,
            display_name: r.display_name,
            role: r.role,
            password_hash: r.password_hash,
            disabled: false,
        }),
        last_seen_at: r.last_seen_at,
    }))
}

#[tracing::instrument(skip_all)]
pub async fn touch_session(pool: &PgPool, hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query!("update sessions set last_seen_at = now() where session_hash = $1", hash)
        .execute(pool)
        .await
        .map(|_| ())
}

#[tracing::instrument(skip_all)]
pub async fn delete_session(pool: &PgPool, hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from sessions where session_hash = $1", hash).execute(pool).await.map(|_| ())
}

/// Removes sessions past their absolute expiry or idle for longer than `idle`.
#[tracing::instrument(skip_all)]
pub async fn purge_sessions(pool: &PgPool, idle: std::time::Duration) -> Result<u64, sqlx::Error> {
    sqlx::query!(
        "delete from sessions where expires_at <= now() or last_seen_at < now() - $1::float8 * interval '1 second'",
        idle.as_secs_f64(),
    )
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

pub struct NewToken<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub scope: Scope,
    pub hash: &'a [u8],
    pub prefix: &'a str,
    pub created_by: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip_all)]
pub async fn insert_token(pool: &PgPool, t: &NewToken<'_>) -> Result<TokenSummary, sqlx::Error> {
    let created_at = sqlx::query_scalar!(
        "insert into api_tokens (token_id, name, scope, token_hash, prefix, created_by, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7) returning created_at",
        t.id,
        t.name,
        t.scope.as_str(),
        t.hash,
        t.prefix,
        t.created_by,
        t.expires_at,
    )
    .fetch_one(pool)
    .await?;
    Ok(TokenSummary {
        id: t.id,
        name: t.name.to_string(),
        scope: t.scope,
        prefix: t.prefix.to_string(),
        created_by: t.created_by.to_string(),
        created_at,
        expires_at: t.expires_at,
        last_used_at: None,
        revoked: false,
    })
}

/// An `api_tokens` row as the queries below select it.
struct TokenRow {
    id: Uuid,
    name: String,
    scope: String,
    prefix: String,
    created_by: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked: bool,
    /// Selected only where a caller checks it.
    token_hash: Option<Vec<u8>>,
}

impl TokenRow {
    /// None for a scope this build does not know (a newer build's row): such a token grants nothing.
    fn summary(self) -> Option<(TokenSummary, Option<Vec<u8>>)> {
        let summary = TokenSummary {
            id: self.id,
            name: self.name,
            scope: Scope::parse(&self.scope)?,
            prefix: self.prefix,
            created_by: self.created_by,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            revoked: self.revoked,
        };
        Some((summary, self.token_hash))
    }
}

#[tracing::instrument(skip_all)]
pub async fn list_tokens(pool: &PgPool) -> Result<Vec<TokenSummary>, sqlx::Error> {
    let rows = sqlx::query_as!(
        TokenRow,
        r#"select token_id as id, name, scope, prefix, created_by, created_at, expires_at, last_used_at,
                  revoked_at is not null as "revoked!", null::bytea as token_hash
             from api_tokens order by created_at desc"#,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(|r| r.summary().map(|(t, _)| t)).collect())
}

/// Tokens whose visible prefix is `prefix`, with their stored hashes, whatever their state: the
/// caller compares the hash in constant time and decides about expiry and revocation.
#[tracing::instrument(skip_all)]
pub async fn tokens_by_prefix(pool: &PgPool, prefix: &str) -> Result<Vec<(TokenSummary, Vec<u8>)>, sqlx::Error> {
    let rows = sqlx::query_as!(
        TokenRow,
        r#"select token_id as id, name, scope, prefix, created_by, created_at, expires_at, last_used_at,
                  revoked_at is not null as "revoked!", token_hash as "token_hash?"
             from api_tokens where prefix = $1"#,
        prefix,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(|r| r.summary()).filter_map(|(t, hash)| Some((t, hash?))).collect())
}

/// Whether the token can still be used (not revoked, not expired).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn token_active(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from api_tokens
                           where token_id = $1 and revoked_at is null and (expires_at is null or expires_at > now()))
                  as "active!""#,
        id,
    )
    .fetch_one(pool)
    .await
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn touch_token(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("update api_tokens set last_used_at = now() where token_id = $1", id).execute(pool).await.map(|_| ())
}

/// Returns false when there is no such token.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn revoke_token(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query!("update api_tokens set revoked_at = coalesce(revoked_at, now()) where token_id = $1", id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// One line of the audit trail.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
    pub remote_addr: Option<String>,
    pub request_id: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn insert_audit<'e>(ex: impl PgExecutor<'e>, e: &AuditEntry) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into audit_log (actor, action, target, detail, remote_addr, request_id) values ($1, $2, $3, $4, $5, $6)",
        e.actor,
        e.action,
        e.target,
        e.detail,
        e.remote_addr.as_deref(),
        e.request_id.as_deref(),
    )
    .execute(ex)
    .await
    .map(|_| ())
}

/// Removes audit entries older than `keep`, then all but the newest `max_rows`; returns how many.
#[tracing::instrument(skip_all)]
pub async fn prune_audit(pool: &PgPool, keep: std::time::Duration, max_rows: i64) -> Result<u64, sqlx::Error> {
    let old =
        sqlx::query!("delete from audit_log where at < now() - $1::float8 * interval '1 second'", keep.as_secs_f64())
            .execute(pool)
            .await?
            .rows_affected();
    // Ids grow with time, so the cut is one index probe and a range delete.
    let excess = sqlx::query!(
        "delete from audit_log where audit_id <= (select audit_id from audit_log order by audit_id desc offset $1 limit 1)",
        max_rows,
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(old + excess)
}

/// The newest audit entries first.
#[tracing::instrument(skip_all)]
pub async fn list_audit(pool: &PgPool, limit: i64) -> Result<Vec<(DateTime<Utc>, AuditEntry)>, sqlx::Error> {
    let rows = sqlx::query!(
        "select at, actor, action, target, detail, remote_addr, request_id from audit_log order by audit_id desc limit $1",
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let entry = AuditEntry {
                actor: r.actor,
                action: r.action,
                target: r.target,
                detail: r.detail,
                remote_addr: r.remote_addr,
                request_id: r.request_id,
            };
            (r.at, entry)
        })
        .collect())
}
