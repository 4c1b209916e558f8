//! The JWT signing secret: `CARROT_JWT_SECRET`, or one generated once and kept in the data
//! directory so tokens survive a restart.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The secret is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Too short to resist brute force.
    #[error("CARROT_JWT_SECRET must be at least 32 bytes long")]
    TooShort,
    /// A placeholder from a file or a document: anyone who read it could mint tokens,
    /// admin ones included.
    #[error(
        "CARROT_JWT_SECRET is a placeholder, not a secret (anyone who read it could sign \
         admin tokens); set a random one: openssl rand -hex 32"
    )]
    Placeholder,
    /// The kept secret could not be read or written.
    #[error("the JWT secret file {0}: {1}")]
    File(String, std::io::Error),
}

const FILE: &str = "jwt-secret";

/// The secret from the environment, or the one kept in `data_dir` (made on first use).
pub fn resolve(configured: Option<&str>, data_dir: &Path) -> Result<Vec<u8>, SecretError> {
    if let Some(secret) = configured {
        if secret.len() < 32 {
            return Err(SecretError::TooShort);
        }
        if is_placeholder(secret) {
            return Err(SecretError::Placeholder);
        }
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join(FILE);
    let fail = |e| SecretError::File(path.display().to_string(), e);
    std::fs::create_dir_all(data_dir).map_err(fail)?;
    if !path.exists() {
        // Written whole and synced under a name of its own, then linked into place: a
        // crash or a second process never sees a half-written secret, and of two first
        // starts one link wins and both read the same secret.
        let fresh = data_dir.join(format!("{FILE}.{}", std::process::id()));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&fresh)?;
            let secret = carrot_projections::postgres::embedded::random_hex(32)?;
            file.write_all(secret.as_bytes())?;
            file.sync_all()?;
            match std::fs::hard_link(&fresh, &path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            std::fs::File::open(data_dir)?.sync_all()
        })();
        let _ = std::fs::remove_file(&fresh);
        written.map_err(fail)?;
    }
    let secret = std::fs::read_to_string(&path).map_err(fail)?;
    let secret = secret.trim();
    if secret.len() < 32 {
        return Err(SecretError::TooShort);
    }
    Ok(secret.as_bytes().to_vec())
}

/// Whether `secret` reads like a placeholder someone was meant to replace: words that say
/// so (the repository's own examples among them), or too few different characters to be
/// random.
pub fn is_placeholder(secret: &str) -> bool {
    let lower = secret.to_ascii_lowercase();
    let says_so = [
        "replace",
        "change-me",
        "change_me",
        "changeme",
        "placeholder",
        "example",
        "your-secret",
        "your_secret",
        "secret-of",
        "not-a-secret",
        "validation-only",
    ]
    .iter()
    .any(|word| lower.contains(word));
    let distinct = secret
        .bytes()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    says_so || distinct < 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_refused_and_random_secrets_pass() {
        for placeholder in [
            "REPLACE_ME_WITH_A_LONG_RANDOM_SECRET_OF_32_BYTES_OR_MORE",
            "change-me-to-a-long-random-secret-of-32-bytes-or-more",
            "validation-only-secret-of-at-least-32-bytes",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(is_placeholder(placeholder), "{placeholder}");
            assert!(matches!(
                resolve(Some(placeholder), Path::new("/nonexistent")),
                Err(SecretError::Placeholder)
            ));
        }
        let random = "9f2c4e71b0d85a3e6c1f7b9d2a4e8c0f5b3d7a1e9c2f4b6d8a0e3c5f7b9d1a2e";
        assert!(!is_placeholder(random));
        assert!(resolve(Some(random), Path::new("/nonexistent")).is_ok());
    }
}
