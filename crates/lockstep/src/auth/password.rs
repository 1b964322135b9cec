//! Room passwords, hashed with argon2id. Hashing is deliberately slow, so it runs on the blocking
//! pool rather than stalling the async workers.

use anyhow::Context;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};

/// Longest password accepted, in characters.
pub const PASSWORD_MAX_CHARS: usize = 128;

/// Why a password cannot be set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be 1 to {PASSWORD_MAX_CHARS} characters")]
    Length,
}

/// Checks a password someone wants to set.
pub fn validate(password: &str) -> Result<(), PasswordError> {
    let n = password.chars().count();
    if n == 0 || n > PASSWORD_MAX_CHARS {
        return Err(PasswordError::Length);
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with a fresh salt.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .context("the hashing task failed")?
}

/// Whether `password` matches `phc`. A malformed stored hash never matches.
pub async fn verify(phc: String, password: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&phc) else {
            tracing::error!("a stored room password hash is malformed");
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .context("the verification task failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let a = hash("hunter2".into()).await.unwrap();
        let b = hash("hunter2".into()).await.unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify(a.clone(), "hunter2".into()).await.unwrap());
        assert!(!verify(a, "hunter3".into()).await.unwrap());
        assert!(!verify("garbage".into(), "x".into()).await.unwrap());
        assert_eq!(validate(""), Err(PasswordError::Length));
        assert!(validate(&"x".repeat(128)).is_ok());
        assert!(validate(&"x".repeat(129)).is_err());
    }
}
