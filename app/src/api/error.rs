//! What a server function's failure tells the page: the kind (so a page matches on it rather than
//! on text), the field at fault, and a message safe to show. The server maps its domain errors to
//! these, and sets the HTTP status from the same mapping as the REST API (`server::web::error`).

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// A server function's failure. Serialised as JSON with a `kind` tag (pinned by a test), through
/// the flat [`Wire`] struct: serde's internally tagged enums buffer every field through generic
/// content types, which cost the WASM module about 30 KB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(into = "Wire", try_from = "Wire")]
pub enum ServerError {
    #[error("{what} not found")]
    NotFound { what: String },
    /// The input is wrong; `field` names the form field when one is at fault.
    #[error("{}", with_field(field, message))]
    Invalid { field: Option<String>, message: String },
    /// The input collides with what exists (a duplicate name).
    #[error("{}", with_field(field, message))]
    Conflict { field: Option<String>, message: String },
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("{message}")]
    Forbidden { message: String },
    /// Too many attempts: try again after `retry_after_secs`.
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// The server could not reach its database; the same call may succeed shortly.
    #[error("the service is unavailable; try again shortly")]
    Unavailable,
    /// The server failed; the cause is in its log, not here.
    #[error("internal error; see the server log")]
    Internal,
    /// The call did not complete (no connection, a reply that could not be read): the server may
    /// not have seen it.
    #[error("{message}")]
    Transport { message: String },
}

/// The kinds of [`ServerError`], as they appear in the `kind` tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    NotFound,
    Invalid,
    Conflict,
    Unauthenticated,
    Forbidden,
    TooManyRequests,
    Unavailable,
    Internal,
    Transport,
}

/// [`ServerError`] on the wire: the tag and whichever fields its kind has.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Wire {
    kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    what: Option<String>,
    /// `Some(None)` is written as `"field": null` (the invalid and conflict kinds always carry
    /// it, as the enum's derived format did); reading folds null and absent alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
}

impl From<ServerError> for Wire {
    fn from(e: ServerError) -> Self {
        let wire = |kind| Wire { kind, what: None, field: None, message: None, retry_after_secs: None };
        match e {
            ServerError::NotFound { what } => Wire { what: Some(what), ..wire(Kind::NotFound) },
            ServerError::Invalid { field, message } => {
                Wire { field: Some(field), message: Some(message), ..wire(Kind::Invalid) }
            }
            ServerError::Conflict { field, message } => {
                Wire { field: Some(field), message: Some(message), ..wire(Kind::Conflict) }
            }
            ServerError::Unauthenticated => wire(Kind::Unauthenticated),
            ServerError::Forbidden { message } => Wire { message: Some(message), ..wire(Kind::Forbidden) },
            ServerError::TooManyRequests { retry_after_secs } => {
                Wire { retry_after_secs: Some(retry_after_secs), ..wire(Kind::TooManyRequests) }
            }
            ServerError::Unavailable => wire(Kind::Unavailable),
            ServerError::Internal => wire(Kind::Internal),
            ServerError::Transport { message } => Wire { message: Some(message), ..wire(Kind::Transport) },
        }
    }
}

impl TryFrom<Wire> for ServerError {
    type Error = String;

    fn try_from(w: Wire) -> Result<Self, String> {
        let need = |v: Option<String>, name: &str| v.ok_or_else(|| format!("missing field `{name}`"));
        Ok(match w.kind {
            Kind::NotFound => Self::NotFound { what: need(w.what, "what")? },
            Kind::Invalid => Self::Invalid { field: w.field.flatten(), message: need(w.message, "message")? },
            Kind::Conflict => Self::Conflict { field: w.field.flatten(), message: need(w.message, "message")? },
            Kind::Unauthenticated => Self::Unauthenticated,
            Kind::Forbidden => Self::Forbidden { message: need(w.message, "message")? },
            Kind::TooManyRequests => Self::TooManyRequests {
                retry_after_secs: w.retry_after_secs.ok_or_else(|| "missing field `retry_after_secs`".to_string())?,
            },
            Kind::Unavailable => Self::Unavailable,
            Kind::Internal => Self::Internal,
            Kind::Transport => Self::Transport { message: need(w.message, "message")? },
        })
    }
}

fn with_field(field: &Option<String>, message: &str) -> String {
    match field {
        Some(f) => format!("{f}: {message}"),
        None => message.to_string(),
    }
}

impl ServerError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: Some(field.into()), message: message.into() }
    }

    /// The server answered and will answer the same again: retrying the call unchanged is
    /// pointless. Lost connections and an unreachable database are worth a retry.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Transport { .. } | Self::Unavailable)
    }

    /// The form field at fault, if the server named one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } | Self::Conflict { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

/// Failures of the call itself (the framework's, not ours).
impl FromServerFnError for ServerError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => Self::Invalid { field: None, message: m },
            ServerFnErrorErr::Registration(_) | ServerFnErrorErr::ServerError(_) => Self::Internal,
            other => Self::Transport { message: other.to_string() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_is_a_kind_tag_with_its_fields() {
        let e = ServerError::invalid("to", "must be at least 60 s after from");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "invalid", "field": "to", "message": "must be at least 60 s after from"})
        );
        assert_eq!(serde_json::from_value::<ServerError>(json).unwrap(), e);
        assert_eq!(serde_json::to_value(ServerError::Unavailable).unwrap(), serde_json::json!({"kind": "unavailable"}));
        let unnamed = ServerError::Invalid { field: None, message: "bad".into() };
        let json = serde_json::to_value(&unnamed).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "invalid", "field": null, "message": "bad"}));
        assert_eq!(serde_json::from_value::<ServerError>(json).unwrap(), unnamed);
        assert_eq!(
            serde_json::to_value(ServerError::NotFound { what: "incident".into() }).unwrap(),
            serde_json::json!({"kind": "not_found", "what": "incident"})
        );
    }

    #[test]
    fn messages_name_the_field_at_fault() {
        assert_eq!(ServerError::invalid("to", "too early").to_string(), "to: too early");
        assert_eq!(ServerError::Invalid { field: None, message: "bad".into() }.to_string(), "bad");
        assert_eq!(ServerError::NotFound { what: "incident".into() }.to_string(), "incident not found");
        assert_eq!(ServerError::invalid("to", "x").field(), Some("to"));
    }

    #[test]
    fn only_lost_calls_and_outages_are_worth_retrying() {
        assert!(!ServerError::Transport { message: "offline".into() }.is_refusal());
        assert!(!ServerError::Unavailable.is_refusal());
        assert!(ServerError::invalid("text", "empty").is_refusal());
        assert!(ServerError::Internal.is_refusal());
        let lost = ServerError::from_server_fn_error(ServerFnErrorErr::Request("connection reset".into()));
        assert!(!lost.is_refusal(), "{lost:?}");
    }
}
