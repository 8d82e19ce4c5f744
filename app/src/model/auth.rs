//! Who is asking: roles, token scopes, the signed-in user as the UI sees it, and the rows of the
//! admin pages. Roles are ordered: each one may do everything the ones below it may.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Writes timeline entries, ticks checklist steps, comments.
    Responder,
    /// Opens and closes incidents, changes severity and status, assigns the commander, publishes.
    Commander,
    /// Users, probes, checklists, settings, tokens.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Responder, Role::Commander, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Responder => "responder",
            Self::Commander => "commander",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What the role may do, in a few words (shown beside the role picker).
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Viewer => "reads dashboards, incidents and postmortems",
            Self::Responder => "also writes timeline entries and ticks checklist steps",
            Self::Commander => "also runs incidents: status, severity, commander, postmortems",
            Self::Admin => "also manages users, probes, checklists, settings and tokens",
        }
    }
}

/// What an API token may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Agents pushing results (`POST /api/v1/push/…`), nothing else.
    Push,
    /// Reading the REST API and the live event stream.
    Read,
    /// Everything an admin user may do through the API.
    Admin,
    /// Remote agents: fetching the assignments of their location and delivering its results.
    Agent,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Push, Scope::Read, Scope::Admin, Scope::Agent];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Read => "read",
            Self::Admin => "admin",
            Self::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The signed-in user, as pages need it (to greet, and to hide controls the role may not use).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
}

impl Me {
    pub fn may(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// The signed-in user of the page being rendered (Leptos context). The server provides it from
/// the request; the browser reads it from the page's `triage-user` meta tag, so the first render
/// and hydration agree without a round trip.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CurrentUser(pub Option<Me>);

/// The stylesheet's URL, which the server knows (hashed builds put a hash in the name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StylesheetHref(pub String);

/// `--trace-url`: a link template with `{trace_id}` (a check's trace id is its request id). The
/// server provides it while rendering; the browser reads the `triage-trace-url` meta tag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceUrl(pub Option<String>);

impl TraceUrl {
    /// The link to the trace of the check that sent `request_id`, when a template is set.
    pub fn link(&self, request_id: &str) -> Option<String> {
        let valid = request_id.len() == 32 && request_id.bytes().all(|b| b.is_ascii_hexdigit());
        self.0.as_ref().filter(|_| valid).map(|t| t.replace("{trace_id}", request_id))
    }
}

/// A user as the admin page and `GET /api/v1/users` list them (never the password hash).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserSummary {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// An API token without its secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenSummary {
    pub id: Uuid,
    pub name: String,
    pub scope: Scope,
    /// The first characters of the token, to tell tokens apart.
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// A token just created: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    pub token: String,
    #[serde(flatten)]
    pub summary: TokenSummary,
}

/// A user to create (admin page, `POST /api/v1/users`, `triage user add`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    pub role: Role,
    pub password: String,
}

/// Changes to a user; absent fields stay as they are. A new password ends the user's sessions,
/// and so does disabling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub password: Option<String>,
}

/// A token to create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub scope: Scope,
    /// Days until it stops working; none: until revoked.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// One line of the audit trail as the admin page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRow {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub remote_addr: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_link_is_made_only_for_a_check_request_id() {
        let t = TraceUrl(Some("https://tempo.internal/explore?trace={trace_id}".into()));
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            t.link(id).as_deref(),
            Some("https://tempo.internal/explore?trace=4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(t.link("req-42\"><script>"), None, "only 32 hex digits become part of a link");
        assert_eq!(TraceUrl(None).link(id), None);
    }

    #[test]
    fn roles_are_ordered_and_serialised_in_lower_case() {
        assert!(Role::Viewer < Role::Responder && Role::Responder < Role::Commander && Role::Commander < Role::Admin);
        assert_eq!(serde_json::to_string(&Role::Commander).ok().as_deref(), Some("\"commander\""));
        assert_eq!(serde_json::to_string(&Scope::Push).ok().as_deref(), Some("\"push\""));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        let me = Me { id: Uuid::nil(), email: "a@b".into(), display_name: String::new(), role: Role::Responder };
        assert!(me.may(Role::Viewer) && me.may(Role::Responder) && !me.may(Role::Commander));
    }

    #[test]
    fn created_token_format_is_pinned() {
        let t = CreatedToken {
            token: "secret".into(),
            summary: TokenSummary {
                id: Uuid::nil(),
                name: "ci".into(),
                scope: Scope::Read,
                prefix: "tri_abcd".into(),
                created_by: "cli".into(),
                created_at: DateTime::<Utc>::UNIX_EPOCH,
                expires_at: None,
                last_used_at: None,
                revoked: false,
            },
        };
        let v = serde_json::to_value(&t).unwrap_or_default();
        assert_eq!(v["token"], "secret");
        assert_eq!(v["scope"], "read");
        assert_eq!(v["prefix"], "tri_abcd");
        assert_eq!(v["revoked"], false);
        assert!(v["expires_at"].is_null());
    }
}
