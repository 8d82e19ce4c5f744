//! The error of the layers below the web (`monitor`, `access`, `respond`): what went wrong, in
//! terms of the request, never of HTTP. `web::error` maps each kind to a status in one place; the
//! UI's server functions carry the kind to the page (`app::api::ServerError`).

/// Why a domain operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such resource (the name of its kind: "incident", "probe", …).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The input is wrong; `field` names the part of it (dotted path for nested fields).
    #[error("{message}")]
    Invalid { field: Option<String>, message: String },
    /// The input is fine but collides with what exists (a duplicate name, a stale revision).
    #[error("{message}")]
    Conflict { field: Option<String>, message: String },
    /// Nobody is signed in, and the operation needs someone.
    #[error("missing or invalid credentials")]
    Unauthenticated,
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The database cannot be reached right now; the same request may succeed later.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database refused or failed the statement. The cause is logged, never shown.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Something else of ours failed (no randomness, a value that did not serialise). The
    /// cause is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: Some(field.into()), message: message.into() }
    }

    /// The same conflict, blamed on `field` with `message` (a unique index says which rows
    /// collide, not what the caller should change).
    pub fn conflict_on(self, field: &str, message: impl Into<String>) -> Self {
        match self {
            Self::Conflict { .. } => Self::Conflict { field: Some(field.into()), message: message.into() },
            other => other,
        }
    }
}

/// The database cannot serve anyone right now (unreachable, restarting, out of disk or
/// connections): the same request may succeed later.
pub fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE classes that say "not now" rather than "not this": 08 connection exception,
        // 53 insufficient resources (disk full, out of memory, too many connections), 57
        // operator intervention (shutting down, restarting, terminated by an admin).
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("53") || c.starts_with("57"))
        }
        _ => false,
    }
}

/// A unique violation is the caller's duplicate; a connection that cannot be had is an outage;
/// anything else is ours.
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
                let field = db.constraint().is_some_and(|c| c.contains("name")).then(|| "name".to_string());
                Self::Conflict { field, message: "a resource with that name already exists".into() }
            }
            _ if is_outage(&e) => Self::Unavailable(e),
            _ => Self::Database(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_an_outage_and_other_failures_are_ours() {
        assert!(matches!(Error::from(sqlx::Error::PoolTimedOut), Error::Unavailable(_)));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(matches!(Error::from(sqlx::Error::Io(io)), Error::Unavailable(_)));
        assert!(matches!(Error::from(sqlx::Error::RowNotFound), Error::Database(_)));
    }

    #[test]
    fn a_conflict_is_blamed_on_the_field_and_other_errors_pass_through() {
        let c = Error::Conflict { field: None, message: "dup".into() }.conflict_on("email", "taken");
        assert!(matches!(c, Error::Conflict { field: Some(f), message } if f == "email" && message == "taken"));
        assert!(matches!(Error::NotFound("user").conflict_on("email", "taken"), Error::NotFound("user")));
    }
}
