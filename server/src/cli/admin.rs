//! `triage user …` and `triage token …`: the same rules as the API and admin pages (through
//! `accounts`), on the same database. When a server runs the embedded cluster of this data
//! directory, they attach to it instead of starting a second one.

use std::io::BufRead;

use app::model::{NewToken, NewUser, UserPatch};

use crate::access::Principal;
use crate::access::accounts;
use crate::access::actor::Actor;
use crate::cli::RunError;
use crate::cli::serve::Database;
use crate::config::{Cli, TokenCommand, UserCommand};
use crate::error::Error;
use crate::storage::auth as store;
use crate::storage::pool::describe;

fn cli_actor() -> Actor {
    Actor { principal: Principal::Cli, remote_addr: None, request_id: None }
}

/// A refused change is the operator's input (exit code 2); a failure is ours (exit code 1).
fn api_error(e: Error) -> RunError {
    match e {
        Error::Invalid { field: Some(f), message } | Error::Conflict { field: Some(f), message } => {
            RunError::Config(format!("{f}: {message}"))
        }
        Error::Unavailable(cause) | Error::Database(cause) => RunError::Database(describe(&cause)),
        Error::Internal(cause) => RunError::Database(cause),
        other => RunError::Config(other.to_string()),
    }
}

fn read_password() -> Result<String, RunError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| RunError::Io(format!("reading the password: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(RunError::Config("give the password on standard input (one line)".into()));
    }
    Ok(password)
}

async fn user_id(db: &Database, email: &str) -> Result<uuid::Uuid, RunError> {
    store::user_by_email(&db.pool, email)
        .await
        .map_err(|e| RunError::Database(e.to_string()))?
        .map(|u| u.id)
        .ok_or_else(|| RunError::Config(format!("no user with email {email}")))
}

pub async fn user_command(cli: &Cli, cmd: &UserCommand) -> Result<(), RunError> {
    let db = Database::open_or_attach(&cli.database).await?;
    let result = run_user(&db, cmd).await;
    db.close().await;
    result
}

async fn run_user(db: &Database, cmd: &UserCommand) -> Result<(), RunError> {
    let actor = cli_actor();
    match cmd {
        UserCommand::Add { email, role, display_name } => {
            let password = read_password()?;
            let input = NewUser { email: email.clone(), display_name: display_name.clone(), role: *role, password };
            let user = accounts::create_user(&db.pool, &actor, &input).await.map_err(api_error)?;
            println!("added {} ({}) {}", user.email, user.role.as_str(), user.id);
        }
        UserCommand::List => {
            for u in store::list_users(&db.pool).await.map_err(|e| RunError::Database(e.to_string()))? {
                let state = if u.disabled { "disabled" } else { "enabled" };
                println!("{}\t{}\t{}\t{}", u.id, u.email, u.role.as_str(), state);
            }
        }
        UserCommand::SetRole { email, role } => {
            let id = user_id(db, email).await?;
            let patch = UserPatch { role: Some(*role), ..UserPatch::default() };
            accounts::update_user(&db.pool, &actor, id, &patch).await.map_err(api_error)?;
            println!("{email} is now {}", role.as_str());
        }
        UserCommand::Disable { email, enable } => {
            let id = user_id(db, email).await?;
            let patch = UserPatch { disabled: Some(!enable), ..UserPatch::default() };
            accounts::update_user(&db.pool, &actor, id, &patch).await.map_err(api_error)?;
            println!("{email} is {}", if *enable { "enabled" } else { "disabled; their sessions ended" });
        }
        UserCommand::Password { email } => {
            let id = user_id(db, email).await?;
            let patch = UserPatch { password: Some(read_password()?), ..UserPatch::default() };
            accounts::update_user(&db.pool, &actor, id, &patch).await.map_err(api_error)?;
            println!("password of {email} changed; their sessions ended");
        }
    }
    Ok(())
}

pub async fn token_command(cli: &Cli, cmd: &TokenCommand) -> Result<(), RunError> {
    let db = Database::open_or_attach(&cli.database).await?;
    let result = run_token(&db, cmd).await;
    db.close().await;
    result
}

async fn run_token(db: &Database, cmd: &TokenCommand) -> Result<(), RunError> {
    let actor = cli_actor();
    match cmd {
        TokenCommand::Create { scope, name, expires_in_days } => {
            let input = NewToken { name: name.clone(), scope: *scope, expires_in_days: *expires_in_days };
            let created = accounts::create_token(&db.pool, &actor, &input).await.map_err(api_error)?;
            // The token alone on stdout, so scripts can capture it; the rest on stderr.
            println!("{}", created.token);
            eprintln!("token {} ({}, scope {}): shown once, store it now", created.summary.id, name, scope.as_str());
        }
        TokenCommand::List => {
            for t in accounts::list_tokens(&db.pool).await.map_err(api_error)? {
                let state = if t.revoked { "revoked" } else { "active" };
                let used = t.last_used_at.map_or_else(|| "never used".into(), |u| format!("used {}", u.to_rfc3339()));
                println!("{}\t{}\t{}\t{}…\t{}\t{}", t.id, t.name, t.scope.as_str(), t.prefix, state, used);
            }
        }
        TokenCommand::Revoke { id } => {
            accounts::revoke_token(&db.pool, &actor, *id).await.map_err(api_error)?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}
