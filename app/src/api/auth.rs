use leptos::prelude::*;

use super::ServerError;

use crate::model::{AuditRow, CreatedToken, Me, Role, Scope, TokenSummary, UserSummary};

/// The signed-in user (None for a visitor who has not signed in).
#[server(endpoint = "get_me")]
pub async fn get_me() -> Result<Option<Me>, ServerError> {
    let backend = super::backend::backend()?;
    Ok(backend.0.me(&super::backend::request_parts()?))
}

#[server(endpoint = "admin_list_users")]
pub async fn admin_list_users() -> Result<Vec<UserSummary>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.list_users().await
}

/// Creates a user (the admin page's form).
#[server(endpoint = "admin_create_user")]
pub async fn admin_create_user(
    email: String,
    display_name: String,
    role: Role,
    password: String,
) -> Result<UserSummary, ServerError> {
    let backend = super::backend::backend()?;
    let input = crate::model::NewUser { email, display_name, role, password };
    backend.0.create_user(super::backend::request_parts()?, input).await
}

#[server(endpoint = "admin_update_user")]
pub async fn admin_update_user(
    id: uuid::Uuid,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<UserSummary, ServerError> {
    let backend = super::backend::backend()?;
    let patch = crate::model::UserPatch { role, disabled, password: None };
    backend.0.update_user(super::backend::request_parts()?, id, patch).await
}

#[server(endpoint = "admin_list_tokens")]
pub async fn admin_list_tokens() -> Result<Vec<TokenSummary>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.list_tokens().await
}

#[server(endpoint = "admin_create_token")]
pub async fn admin_create_token(
    name: String,
    scope: Scope,
    // A form field: empty means "until revoked".
    expires_in_days: String,
) -> Result<CreatedToken, ServerError> {
    let backend = super::backend::backend()?;
    let expires_in_days = match expires_in_days.trim() {
        "" => None,
        d => Some(d.parse().map_err(|_| super::backend::refuse("expires_in_days", "a whole number of days"))?),
    };
    let input = crate::model::NewToken { name, scope, expires_in_days };
    backend.0.create_token(super::backend::request_parts()?, input).await
}

#[server(endpoint = "admin_revoke_token")]
pub async fn admin_revoke_token(id: uuid::Uuid) -> Result<(), ServerError> {
    let backend = super::backend::backend()?;
    backend.0.revoke_token(super::backend::request_parts()?, id).await
}

/// Remote agents as they last reported, for the admin page.
#[server(endpoint = "admin_list_agents")]
pub async fn admin_list_agents() -> Result<Vec<crate::model::Agent>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.list_agents().await
}

#[server(endpoint = "admin_audit")]
pub async fn admin_audit() -> Result<Vec<AuditRow>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.audit().await
}

/// Every checklist's newest version as TOML, for the admin page's editor.
#[server(endpoint = "admin_list_checklists")]
pub async fn admin_list_checklists() -> Result<Vec<crate::model::ChecklistText>, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.checklist_texts().await
}

/// Saves a checklist (TOML, as in `checklists/*.toml`) as its next version; returns the version.
#[server(endpoint = "admin_save_checklist")]
pub async fn admin_save_checklist(toml: String) -> Result<i32, ServerError> {
    let backend = super::backend::backend()?;
    backend.0.save_checklist(super::backend::request_parts()?, toml).await
}
