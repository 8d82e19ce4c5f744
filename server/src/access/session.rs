//! Session cookies: a random 256-bit value in an HttpOnly, SameSite=Lax cookie; the database
//! keeps only its SHA-256, with absolute and idle expiry.

use chrono::Utc;
use http::{HeaderMap, HeaderValue, header};
use sqlx::PgPool;
use uuid::Uuid;

use super::{AuthSettings, random_secret, sha256};
use crate::error::Error;
use crate::storage::auth::{self as store, NewSession};

pub const COOKIE: &str = "triage_session";

/// The session cookie's value, if the request has one.
pub fn from_headers(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether cookies must be marked Secure: the public URL is https, or a proxy says it was.
pub fn secure(settings: &AuthSettings, headers: &HeaderMap) -> bool {
    settings.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

pub fn set_cookie(value: &str, max_age_secs: u64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"))
        .ok()
}

pub fn clear_cookie(secure: bool) -> Option<HeaderValue> {
    set_cookie("", 0, secure)
}

/// Starts a new session for `user_id`; returns the cookie value (shown to nobody but the browser).
pub async fn start(
    pool: &PgPool,
    settings: &AuthSettings,
    user_id: Uuid,
    remote_addr: Option<&str>,
    user_agent: Option<&str>,
) -> Result<String, Error> {
    let value = random_secret()?;
    let lifetime = chrono::Duration::from_std(settings.session_lifetime).unwrap_or(chrono::Duration::days(7));
    let hash = sha256(&value);
    store::insert_session(
        pool,
        &NewSession {
            hash: &hash,
            user_id,
            expires_at: Utc::now() + lifetime,
            remote_addr,
            user_agent: user_agent.map(|ua| &ua[..ua.floor_char_boundary(300)]),
        },
    )
    .await?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_set_with_its_flags() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; triage_session=abc; b=2"));
        assert_eq!(from_headers(&h), Some("abc"));
        let set = set_cookie("abc", 60, true).expect("header");
        let s = set.to_str().expect("ascii");
        for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=60"] {
            assert!(s.contains(flag), "{s} lacks {flag}");
        }
        assert!(!set_cookie("abc", 60, false).expect("header").to_str().expect("ascii").contains("Secure"));
        assert!(from_headers(&HeaderMap::new()).is_none());
    }
}
