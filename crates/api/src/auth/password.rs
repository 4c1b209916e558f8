//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes).
//!
//! Hashing is slow on purpose, so it runs on the blocking pool, never on a runtime thread,
//! and no more hashes run at once than there are cores: each holds 19 MiB, and 100 signups
//! at once took the server to 1.7 GB resident (more at once would not finish sooner).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::LazyLock;
use tokio::sync::Semaphore;

static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
) -> Result<T, HashError> {
    let slot = HASHING
        .acquire()
        .await
        .map_err(|e| HashError(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .map_err(|e| HashError(e.to_string()))?
}

/// Hashing failed (only on a broken environment).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes `password` into a PHC string.
pub async fn hash(password: String) -> Result<String, HashError> {
    hashing(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    })
    .await
}

/// A hash of a password nobody has, verified against when the username is unknown, so an
/// unknown user and a wrong password take the same time.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8n4JZDx1JtDJY1ZB7iTmKBKZ8Vu1VNQTz2B1q2LBQEs";

/// Whether `password` matches `stored` (or, with no stored hash, burns the same time and fails).
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, HashError> {
    hashing(move || {
        let known = stored.is_some();
        let hash_text = stored.unwrap_or_else(|| DECOY_HASH.to_owned());
        let parsed = PasswordHash::new(&hash_text).map_err(|e| HashError(e.to_string()))?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
}
