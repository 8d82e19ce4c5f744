//! Password hashing with argon2id (PHC strings, parameters stored with each hash).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::Error;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 1024;

/// OWASP's argon2id baseline: 19 MiB, two passes, one lane.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Refuses a new password given in `field`, naming the rule (the password itself is never
/// echoed).
pub fn check_new(field: &str, password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(Error::invalid(field, format!("must be at least {MIN_LENGTH} characters")));
    }
    if password.len() > MAX_LENGTH {
        return Err(Error::invalid(field, format!("must be at most {MAX_LENGTH} bytes")));
    }
    Ok(())
}

/// Password hashes running at once, each holding argon2's 19 MiB: a flood of sign-ins waits for
/// a turn instead of taking the machine's memory (and both cores) with it.
const CONCURRENT_HASHES: usize = 4;
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_HASHES);

/// Hashes on a blocking thread: argon2 takes tens of milliseconds of CPU by design.
pub async fn hash(password: String) -> Result<String, Error> {
    let _turn = HASHING.acquire().await.map_err(|e| Error::Internal(format!("hashing a password: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(format!("the hashing task failed: {e}")))?
}

/// True when `password` matches the PHC string; a malformed hash never matches.
pub async fn verify(password: String, phc: String) -> bool {
    // The semaphore is never closed, so acquiring only waits.
    let Ok(_turn) = HASHING.acquire().await else { return false };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, verified against when the account does not exist, so a failed
/// login takes as long for an unknown email as for a wrong password.
pub fn decoy() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0hJ0qbsvnl3PTvH+OfWl1K6kClq5DJb8GiSUA7FKM2Q"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_verify() {
        let h = hash("correct horse battery".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify("correct horse battery".into(), h.clone()).await);
        assert!(!verify("correct horse batterY".into(), h.clone()).await);
        assert!(!verify("x".into(), "not a hash".into()).await);
        let again = hash("correct horse battery".into()).await.expect("hash");
        assert_ne!(h, again, "salted");
        assert!(PasswordHash::new(decoy()).is_ok());
    }

    #[test]
    fn new_passwords_have_a_minimum_length() {
        assert!(check_new("password", "short").is_err());
        assert!(check_new("password", "twelve chars").is_ok());
        assert!(check_new("password", &"x".repeat(2000)).is_err());
    }
}
