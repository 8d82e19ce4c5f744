//! Who is asking: users and passwords, sessions (and the cache of recently resolved ones), API
//! tokens, the first-run setup token, sign-in throttling, account changes (`accounts`) and the
//! actor every write is audited under (`actor`). What each route needs is decided by the access
//! table in `web::access`.

pub mod accounts;
pub mod actor;
pub mod limiter;
pub mod password;
pub mod session;
pub mod session_cache;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use app::model::{Me, Role, Scope};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::Error;

/// The credentials a request carried, as resolved by the access middleware.
#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    /// A signed-in user; `session` is the SHA-256 of the session cookie.
    User {
        me: Me,
        session: Vec<u8>,
    },
    /// An API token.
    Token {
        id: Uuid,
        name: String,
        scope: Scope,
    },
    /// A push probe's own token, good for pushing to that probe only.
    Agent {
        probe_id: Uuid,
    },
    /// The admin command line (`triage user …`, `triage token …`), run by whoever owns the data.
    Cli,
}

impl Principal {
    /// How the audit trail names it.
    pub fn actor(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".into(),
            Self::User { me, .. } => format!("user:{}", me.email),
            Self::Token { name, .. } => format!("token:{name}"),
            Self::Agent { probe_id } => format!("agent:{probe_id}"),
            Self::Cli => "cli".into(),
        }
    }

    pub fn user(&self) -> Option<&Me> {
        match self {
            Self::User { me, .. } => Some(me),
            _ => None,
        }
    }
}

/// Prefix of API tokens, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "tri_";
/// Hex digits of the secret kept visible (and stored) to find a token and tell tokens apart.
pub const PREFIX_HEX: usize = 8;

/// 256 random bits, hex-encoded.
pub fn random_secret() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn sha256(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Settings of sessions and of the site the browser must come from.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub public_url: Option<url::Url>,
    pub session_idle: Duration,
    pub session_lifetime: Duration,
    pub limits: limiter::Limits,
    /// How often an open live stream re-checks that its session or token is still valid.
    pub live_recheck: Duration,
    /// Audit entries older than this are removed (hourly).
    pub audit_retention: Duration,
    /// And beyond this many, the oldest go first, whatever their age.
    pub audit_max_rows: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            public_url: None,
            session_idle: Duration::from_secs(12 * 3600),
            session_lifetime: Duration::from_secs(7 * 86_400),
            limits: limiter::Limits::default(),
            audit_retention: Duration::from_secs(400 * 86_400),
            audit_max_rows: 1_000_000,
            live_recheck: Duration::from_secs(10),
        }
    }
}

/// Authentication state shared by the middleware and the sign-in routes.
pub struct Auth {
    pub settings: AuthSettings,
    pub limiter: limiter::LoginLimiter,
    pub sessions: session_cache::SessionCache,
    /// Once a user exists this stays true; until then every anonymous page view re-checks.
    has_users: AtomicBool,
    /// The one-time token that guards creating the first admin (None once used or not needed).
    setup_token: Mutex<Option<String>>,
    /// The file the set-up token was also written to; removed once the token is spent.
    setup_token_file: Option<std::path::PathBuf>,
}

impl Auth {
    pub fn new(
        settings: AuthSettings,
        has_users: bool,
        setup_token: Option<String>,
        setup_token_file: Option<std::path::PathBuf>,
    ) -> Self {
        Self {
            setup_token_file,
            limiter: limiter::LoginLimiter::new(settings.limits),
            sessions: session_cache::SessionCache::default(),
            settings,
            has_users: AtomicBool::new(has_users),
            setup_token: Mutex::new(setup_token),
        }
    }

    pub async fn has_users(&self, pool: &sqlx::PgPool) -> bool {
        if self.has_users.load(Ordering::Relaxed) {
            return true;
        }
        // A user added with `triage user add` while this server runs counts too.
        let exists = crate::storage::auth::any_users(pool).await.unwrap_or(false);
        if exists {
            self.users_exist();
        }
        exists
    }

    pub fn users_exist(&self) {
        self.has_users.store(true, Ordering::Relaxed);
        let spent = self.setup_token.lock().unwrap_or_else(|p| p.into_inner()).take();
        if spent.is_some()
            && let Some(path) = &self.setup_token_file
            && let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove the spent set-up token file");
        }
    }

    /// Compares in constant time; the token stays valid until the first admin exists.
    pub fn setup_token_matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        let guard = self.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_deref().is_some_and(|t| bool::from(sha256(t).ct_eq(&sha256(given))))
    }

    /// The current setup token, for the start-up log line and for tests.
    pub fn setup_token(&self) -> Option<String> {
        self.setup_token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The role a user principal has, for checks inside handlers (the access table is the gate).
pub fn role_of(p: &Principal) -> Option<Role> {
    match p {
        Principal::User { me, .. } => Some(me.role),
        Principal::Token { scope: Scope::Admin, .. } => Some(Role::Admin),
        Principal::Token { scope: Scope::Read, .. } => Some(Role::Viewer),
        _ => None,
    }
}
