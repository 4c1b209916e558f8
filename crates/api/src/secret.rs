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
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join(FILE);
    let fail = |e| SecretError::File(path.display().to_string(), e);
    std::fs::create_dir_all(data_dir).map_err(fail)?;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    match created {
        Ok(mut file) => {
            let secret = carrot_projections::postgres::embedded::random_hex(32).map_err(fail)?;
            file.write_all(secret.as_bytes()).map_err(fail)?;
            Ok(secret.into_bytes())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let secret = std::fs::read_to_string(&path).map_err(fail)?;
            let secret = secret.trim();
            if secret.len() < 32 {
                return Err(SecretError::TooShort);
            }
            Ok(secret.as_bytes().to_vec())
        }
        Err(e) => Err(fail(e)),
    }
}
