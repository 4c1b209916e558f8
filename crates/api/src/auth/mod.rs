//! Accounts' credentials: argon2 password hashes, JWT access tokens, and the sessions they
//! name (`sessions.rs`: what logging out revokes), and closing an account (`closing.rs`).
//!
//! Tokens are HS256 with the algorithm pinned (a token naming any other algorithm, `none`
//! included, is refused), and issuer, audience and expiry always checked.

pub mod closing;
pub mod password;
pub mod sessions;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who issues Carrot's tokens.
pub const ISSUER: &str = "carrot";
/// Who Carrot's tokens are for.
pub const AUDIENCE: &str = "carrot-api";

/// What a user may do beyond their own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A buyer and seller.
    User,
    /// An operator: admin endpoints too.
    Admin,
}

impl Role {
    /// Parses the stored role name.
    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The user's role.
    pub role: Role,
    /// The session the token belongs to (`sessions.rs`): revoked, it is refused.
    pub sid: Uuid,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// The signing and verifying keys, built once from the secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

/// A token that is not valid (bad signature, wrong algorithm, expired, wrong iss/aud...).
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct InvalidToken(#[from] jsonwebtoken::errors::Error);

impl JwtKeys {
    /// Keys for `secret`, issuing tokens valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// How long a token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// When a token issued at `now` expires.
    pub fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.ttl
    }

    /// Issues a token for `user_id` with `role` in `session`, valid from `now`.
    pub fn issue(
        &self,
        user_id: Uuid,
        role: Role,
        session: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), jsonwebtoken::errors::Error> {
        let expires_at = self.expiry(now);
        let claims = Claims {
            sub: user_id,
            role,
            sid: session,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, expires_at))
    }

    /// The token a console form of `session` must carry (CSRF): a MAC of the session id
    /// under the signing secret (an HS256 signature, the same for the same session), which
    /// a page of another site cannot know.
    pub fn csrf_token(&self, session: Uuid) -> Result<String, jsonwebtoken::errors::Error> {
        #[derive(Serialize)]
        struct Csrf {
            sid: Uuid,
            purpose: &'static str,
        }
        let claims = Csrf {
            sid: session,
            purpose: "console-csrf",
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, InvalidToken> {
        Ok(jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"a test secret of enough length!!", Duration::hours(1))
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let user = Uuid::new_v4();
        let (token, _) = keys()
            .issue(user, Role::Admin, Uuid::new_v4(), Utc::now())
            .unwrap();
        let claims = keys().verify(&token).unwrap();
        assert_eq!((claims.sub, claims.role), (user, Role::Admin));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let (token, _) = keys()
            .issue(
                Uuid::new_v4(),
                Role::User,
                Uuid::new_v4(),
                Utc::now() - Duration::hours(2),
            )
            .unwrap();
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = JwtKeys::new(b"another secret, also long enough", Duration::hours(1));
        let (token, _) = other
            .issue(Uuid::new_v4(), Role::User, Uuid::new_v4(), Utc::now())
            .unwrap();
        assert!(keys().verify(&token).is_err());
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        // {"alg":"none"} . claims . (no signature)
        let claims = serde_json::json!({
            "sub": Uuid::new_v4(), "role": "admin", "sid": Uuid::new_v4(), "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": Utc::now().timestamp(), "exp": Utc::now().timestamp() + 3600,
        });
        let b64 = |v: &[u8]| {
            use base64_like::encode;
            encode(v)
        };
        let token = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes())
        );
        assert!(keys().verify(&token).is_err());
    }

    /// Unpadded URL-safe base64, enough to forge test tokens.
    mod base64_like {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        pub fn encode(input: &[u8]) -> String {
            let mut out = String::new();
            for chunk in input.chunks(3) {
                let b = [
                    chunk[0],
                    *chunk.get(1).unwrap_or(&0),
                    *chunk.get(2).unwrap_or(&0),
                ];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..=chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }
}
