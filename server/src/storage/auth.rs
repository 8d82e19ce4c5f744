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

type UserRow = (Uuid, String, String, String, String, bool);

fn user_from(row: UserRow) -> UserRecord {
    let (id, email, display_name, role, password_hash, disabled) = row;
    UserRecord {
        id,
        email,
        display_name,
        // The column's check constraint admits only the four names; the fallback is the least power.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        password_hash,
        disabled,
    }
}

const USER_SELECT: &str =
    "select user_id, email, display_name, role, password_hash, disabled_at is not null from users";

#[tracing::instrument(skip_all)]
pub async fn any_users(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select exists (select 1 from users)").fetch_one(pool).await
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
    sqlx::query("insert into users (user_id, email, display_name, role, password_hash) values ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(email)
        .bind(display_name)
        .bind(role.as_str())
        .bind(password_hash)
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
    sqlx::query("lock table users in share row exclusive mode").execute(&mut *tx).await?;
    let exists: bool = sqlx::query_scalar("select exists (select 1 from users)").fetch_one(&mut *tx).await?;
    if exists {
        return Ok(false);
    }
    insert_user(&mut *tx, id, email, display_name, Role::Admin, password_hash).await?;
    tx.commit().await?;
    Ok(true)
}

#[tracing::instrument(skip_all)]
pub async fn user_by_email(pool: &PgPool, email: &str) -> Result<Option<UserRecord>, sqlx::Error> {
    let row: Option<UserRow> = sqlx::query_as(&format!("{USER_SELECT} where lower(email) = lower($1)"))
        .bind(email)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(user_from))
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn user_by_id(pool: &PgPool, id: Uuid) -> Result<Option<UserRecord>, sqlx::Error> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("{USER_SELECT} where user_id = $1")).bind(id).fetch_optional(pool).await?;
    Ok(row.map(user_from))
}

#[tracing::instrument(skip_all)]
pub async fn list_users(pool: &PgPool) -> Result<Vec<UserSummary>, sqlx::Error> {
    let rows: Vec<(Uuid, String, String, String, bool, DateTime<Utc>)> = sqlx::query_as(
        "select user_id, email, display_name, role, disabled_at is not null, created_at from users order by lower(email)",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, email, display_name, role, disabled, created_at)| UserSummary {
            id,
            email,
            display_name,
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            disabled,
            created_at,
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
    let updated = sqlx::query(
        "update users set role = coalesce($2, role),
                          disabled_at = case when $3 is null then disabled_at
                                             when $3 then coalesce(disabled_at, now()) else null end
          where user_id = $1",
    )
    .bind(id)
    .bind(role.map(Role::as_str))
    .bind(disabled)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if disabled == Some(true) {
        sqlx::query("delete from sessions where user_id = $1").bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(updated == 1)
}

/// Sets a new password hash and ends every session of the user except `keep` (the one that
/// changed it, if any).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn set_password(pool: &PgPool, id: Uuid, hash: &str, keep: Option<&[u8]>) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query("update users set password_hash = $2, password_changed_at = now() where user_id = $1")
        .bind(id)
        .bind(hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("delete from sessions where user_id = $1 and ($2::bytea is null or session_hash <> $2)")
        .bind(id)
        .bind(keep)
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
    sqlx::query(
        "insert into sessions (session_hash, user_id, expires_at, remote_addr, user_agent) values ($1, $2, $3, $4, $5)",
    )
    .bind(s.hash)
    .bind(s.user_id)
    .bind(s.expires_at)
    .bind(s.remote_addr)
    .bind(s.user_agent)
    .execute(pool)
    .await
    .map(|_| ())
}

/// A live session: its user (enabled) and when it was last used.
pub struct SessionRecord {
    pub user: UserRecord,
    pub last_seen_at: DateTime<Utc>,
}

type SessionRow = (Uuid, String, String, String, String, bool, DateTime<Utc>);

/// The session with this hash if it has not expired (absolute) and its user is enabled.
#[tracing::instrument(skip_all)]
pub async fn session(pool: &PgPool, hash: &[u8]) -> Result<Option<SessionRecord>, sqlx::Error> {
    let row: Option<(UserRow, DateTime<Utc>)> = sqlx::query_as::<_, SessionRow>(
        "select u.user_id, u.email, u.display_name, u.role, u.password_hash, false, s.last_seen_at
           from sessions s join users u using (user_id)
          where s.session_hash = $1 and s.expires_at > now() and u.disabled_at is null",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await?
    .map(|(id, email, name, role, ph, disabled, last_seen_at)| ((id, email, name, role, ph, disabled), last_seen_at));
    Ok(row.map(|(user, last_seen_at)| SessionRecord { user: user_from(user), last_seen_at }))
}

#[tracing::instrument(skip_all)]
pub async fn touch_session(pool: &PgPool, hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("update sessions set last_seen_at = now() where session_hash = $1")
        .bind(hash)
        .execute(pool)
        .await
        .map(|_| ())
}

#[tracing::instrument(skip_all)]
pub async fn delete_session(pool: &PgPool, hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("delete from sessions where session_hash = $1").bind(hash).execute(pool).await.map(|_| ())
}

/// Removes sessions past their absolute expiry or idle for longer than `idle`.
#[tracing::instrument(skip_all)]
pub async fn purge_sessions(pool: &PgPool, idle: std::time::Duration) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "delete from sessions where expires_at <= now() or last_seen_at < now() - $1::float8 * interval '1 second'",
    )
    .bind(idle.as_secs_f64())
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
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "insert into api_tokens (token_id, name, scope, token_hash, prefix, created_by, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7) returning created_at",
    )
    .bind(t.id)
    .bind(t.name)
    .bind(t.scope.as_str())
    .bind(t.hash)
    .bind(t.prefix)
    .bind(t.created_by)
    .bind(t.expires_at)
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

type TokenRow =
    (Uuid, String, String, String, String, DateTime<Utc>, Option<DateTime<Utc>>, Option<DateTime<Utc>>, bool);

const TOKEN_SELECT: &str = "select token_id, name, scope, prefix, created_by, created_at, expires_at, last_used_at,
                                   revoked_at is not null from api_tokens";

fn token_from(row: TokenRow) -> Option<TokenSummary> {
    let (id, name, scope, prefix, created_by, created_at, expires_at, last_used_at, revoked) = row;
    Some(TokenSummary {
        id,
        name,
        scope: Scope::parse(&scope)?,
        prefix,
        created_by,
        created_at,
        expires_at,
        last_used_at,
        revoked,
    })
}

#[tracing::instrument(skip_all)]
pub async fn list_tokens(pool: &PgPool) -> Result<Vec<TokenSummary>, sqlx::Error> {
    let rows: Vec<TokenRow> =
        sqlx::query_as(&format!("{TOKEN_SELECT} order by created_at desc")).fetch_all(pool).await?;
    Ok(rows.into_iter().filter_map(token_from).collect())
}

/// Tokens whose visible prefix is `prefix`, with their stored hashes, whatever their state: the
/// caller compares the hash in constant time and decides about expiry and revocation.
#[tracing::instrument(skip_all)]
pub async fn tokens_by_prefix(pool: &PgPool, prefix: &str) -> Result<Vec<(TokenSummary, Vec<u8>)>, sqlx::Error> {
    type WithHash = (
        Uuid,
        String,
        String,
        String,
        String,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        bool,
        Vec<u8>,
    );
    let rows: Vec<WithHash> = sqlx::query_as(
        "select token_id, name, scope, prefix, created_by, created_at, expires_at, last_used_at,
                    revoked_at is not null, token_hash
               from api_tokens where prefix = $1",
    )
    .bind(prefix)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, name, scope, prefix, by, at, exp, used, revoked, hash)| {
            token_from((id, name, scope, prefix, by, at, exp, used, revoked)).map(|t| (t, hash))
        })
        .collect())
}

/// Whether the token can still be used (not revoked, not expired).
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn token_active(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from api_tokens
                         where token_id = $1 and revoked_at is null and (expires_at is null or expires_at > now()))",
    )
    .bind(id)
    .fetch_one(pool)
    .await
}

#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn touch_token(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("update api_tokens set last_used_at = now() where token_id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Returns false when there is no such token.
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn revoke_token(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query("update api_tokens set revoked_at = coalesce(revoked_at, now()) where token_id = $1")
        .bind(id)
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
    sqlx::query(
        "insert into audit_log (actor, action, target, detail, remote_addr, request_id) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.target)
    .bind(sqlx::types::Json(&e.detail))
    .bind(&e.remote_addr)
    .bind(&e.request_id)
    .execute(ex)
    .await
    .map(|_| ())
}

type AuditDbRow =
    (DateTime<Utc>, String, String, String, sqlx::types::Json<serde_json::Value>, Option<String>, Option<String>);

/// The newest audit entries first.
#[tracing::instrument(skip_all)]
pub async fn list_audit(pool: &PgPool, limit: i64) -> Result<Vec<(DateTime<Utc>, AuditEntry)>, sqlx::Error> {
    let rows: Vec<AuditDbRow> =
        sqlx::query_as(
            "select at, actor, action, target, detail, remote_addr, request_id from audit_log order by audit_id desc limit $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(at, actor, action, target, detail, remote_addr, request_id)| {
            (at, AuditEntry { actor, action, target, detail: detail.0, remote_addr, request_id })
        })
        .collect())
}
