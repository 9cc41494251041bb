//! Argon2id password hashes (PHC strings).
//!
//! Hashing and verifying cost tens of milliseconds of CPU each: the async forms run
//! them on tokio's blocking threads, at most one per CPU at a time, so that logins
//! and password changes never hold an HTTP worker thread and a burst of them queues
//! instead of taking every core.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::OnceLock;
use tokio::sync::Semaphore;

/// Hashes a password with a fresh salt.
pub fn hash(password: &str) -> Result<String, String> {
    // 16 bytes from the OS generator (uuid v4 reads getrandom).
    let salt =
        SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// True when `password` matches the stored hash.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of a password nobody knows, with the same parameters as real ones: what an
/// unknown email is verified against, so that it costs what a known one does.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash("timing-equaliser").unwrap_or_default())
}

/// Hashing and verifying at once, at most one per CPU.
fn permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
}

/// Runs `work` on a blocking thread once a permit is free.
async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let _permit = permits().acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("password hashing failed: {e}"))
}

/// [`hash`], off the HTTP workers.
pub async fn hash_async(password: String) -> Result<String, String> {
    off_workers(move || hash(&password)).await?
}

/// [`verify`], off the HTTP workers. `None` (no such user) verifies against a dummy
/// hash and answers false, taking as long as a wrong password for a real user.
pub async fn verify_async(password: String, stored: Option<String>) -> bool {
    off_workers(move || match stored {
        Some(stored) => verify(&password, &stored),
        None => {
            let _ = verify(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_only_the_right_password() {
        let h = super::hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("wrong horse", &h));
        assert!(!super::verify("correct horse", "not a hash"));
    }

    #[tokio::test]
    async fn the_async_forms_agree_and_an_unknown_user_never_verifies() {
        let h = super::hash_async("correct horse".into()).await.unwrap();
        assert!(super::verify_async("correct horse".into(), Some(h.clone())).await);
        assert!(!super::verify_async("wrong horse".into(), Some(h)).await);
        assert!(!super::verify_async("timing-equaliser".into(), None).await);
    }
}
