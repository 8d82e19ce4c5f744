//! Creating and changing users and API tokens: validation, storage and the audit trail. The REST
//! API, the admin pages (server functions) and the command line all go through here.

use app::model::{CreatedToken, NewToken, NewUser, Role, TokenSummary, UserPatch, UserSummary};
use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use crate::access::actor::Actor;
use crate::access::{PREFIX_HEX, TOKEN_PREFIX, password, random_secret, sha256};
use crate::error::Error;
use crate::storage::auth::{self as store, NewToken as StoredToken};

pub fn validate_email(email: &str) -> Result<(), Error> {
    let ok = email.len() <= 254
        && email == email.trim()
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if ok { Ok(()) } else { Err(Error::invalid("email", "must be an email address (name@example.com)")) }
}

fn validate_display_name(name: &str) -> Result<(), Error> {
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid("display_name", "must be at most 100 characters, without control characters"));
    }
    Ok(())
}

pub async fn hash_new_password(field: &str, password: &str) -> Result<String, Error> {
    password::check_new(field, password)?;
    password::hash(password.to_string()).await
}

fn conflict_on_email(e: sqlx::Error) -> Error {
    match Error::from(e) {
        Error::Conflict { .. } => {
            Error::Conflict { field: Some("email".into()), message: "a user with that email exists".into() }
        }
        other => other,
    }
}

pub async fn create_user(pool: &PgPool, actor: &Actor, input: &NewUser) -> Result<UserSummary, Error> {
    validate_email(&input.email)?;
    validate_display_name(&input.display_name)?;
    let hash = hash_new_password("password", &input.password).await?;
    let id = Uuid::new_v4();
    store::insert_user(pool, id, &input.email, &input.display_name, input.role, &hash)
        .await
        .map_err(conflict_on_email)?;
    actor.audit(pool, "user.create", &input.email, serde_json::json!({ "role": input.role })).await?;
    Ok(UserSummary {
        id,
        email: input.email.clone(),
        display_name: input.display_name.clone(),
        role: input.role,
        disabled: false,
        created_at: Utc::now(),
    })
}

/// Applies `patch`; refuses to leave the instance without an enabled admin.
pub async fn update_user(pool: &PgPool, actor: &Actor, id: Uuid, patch: &UserPatch) -> Result<UserSummary, Error> {
    let users = store::list_users(pool).await?;
    let user = users.iter().find(|u| u.id == id).ok_or(Error::NotFound("user"))?;
    let loses_admin = user.role == Role::Admin
        && !user.disabled
        && (patch.role.is_some_and(|r| r != Role::Admin) || patch.disabled == Some(true));
    if loses_admin && users.iter().filter(|u| u.role == Role::Admin && !u.disabled).count() <= 1 {
        let field = if patch.disabled == Some(true) { "disabled" } else { "role" };
        return Err(Error::Conflict { field: Some(field.into()), message: "this is the last enabled admin".into() });
    }
    let hash = match &patch.password {
        Some(p) => Some(hash_new_password("password", p).await?),
        None => None,
    };
    store::update_user(pool, id, patch.role, patch.disabled).await?;
    if let Some(hash) = &hash {
        store::set_password(pool, id, hash, None).await?;
    }
    let detail = serde_json::json!({
        "role": patch.role, "disabled": patch.disabled, "password_changed": patch.password.is_some(),
    });
    actor.audit(pool, "user.update", &user.email, detail).await?;
    let mut updated = user.clone();
    updated.role = patch.role.unwrap_or(user.role);
    updated.disabled = patch.disabled.unwrap_or(user.disabled);
    Ok(updated)
}

pub async fn create_token(pool: &PgPool, actor: &Actor, input: &NewToken) -> Result<CreatedToken, Error> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name != input.name {
        return Err(Error::invalid("name", "must be 1–100 characters without surrounding spaces"));
    }
    if input.expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(Error::invalid("expires_in_days", "must be between 1 and 3650"));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_secret()?);
    let hash = sha256(&token);
    let prefix = &token[..TOKEN_PREFIX.len() + PREFIX_HEX];
    let summary = store::insert_token(
        pool,
        &StoredToken {
            id: Uuid::new_v4(),
            name,
            scope: input.scope,
            hash: &hash,
            prefix,
            created_by: &actor.principal.actor(),
            expires_at: input.expires_in_days.map(|d| Utc::now() + chrono::Duration::days(i64::from(d))),
        },
    )
    .await?;
    actor.audit(pool, "token.create", name, serde_json::json!({ "scope": input.scope, "prefix": prefix })).await?;
    Ok(CreatedToken { token, summary })
}

pub async fn revoke_token(pool: &PgPool, actor: &Actor, id: Uuid) -> Result<(), Error> {
    if !store::revoke_token(pool, id).await? {
        return Err(Error::NotFound("token"));
    }
    actor.audit(pool, "token.revoke", id.to_string(), serde_json::json!({})).await?;
    Ok(())
}

pub async fn list_tokens(pool: &PgPool) -> Result<Vec<TokenSummary>, Error> {
    Ok(store::list_tokens(pool).await?)
}

/// The newest `limit` entries of the audit trail, as the admin page and the API show them.
pub async fn audit_trail(pool: &sqlx::PgPool, limit: i64) -> Result<Vec<app::model::AuditRow>, Error> {
    Ok(store::list_audit(pool, limit)
        .await?
        .into_iter()
        .map(|(at, e)| app::model::AuditRow {
            at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            remote_addr: e.remote_addr,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_loosely_but_named() {
        assert!(validate_email("ops@example.com").is_ok());
        for bad in ["", "ops", "@x", "ops@", " ops@x", "o ps@x"] {
            match validate_email(bad) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field.as_deref(), Some("email")),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
