//! Short-lived access tokens (JWT, HS256, signed with a key derived from the server secret).

use super::crypto::ServerKeys;
use super::Engine;
use crate::domain::{Role, SessionId, UserId};
use crate::error::Error;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub sid: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    /// Set on tokens a staff member obtained to act as this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonated_by: Option<String>,
    /// Whether an impersonation token may change things (the permission table decides).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub impersonation_can_write: bool,
}

impl Engine {
    pub(crate) fn sign_access_token(
        &self,
        user: &UserId,
        session: &SessionId,
        role: Role,
        ttl_secs: i64,
        impersonated_by: Option<&UserId>,
    ) -> Result<String, Error> {
        self.sign(Claims {
            impersonated_by: impersonated_by.map(|u| u.to_string()),
            ..self.claims(user, session, role, ttl_secs)
        })
    }

    pub(crate) fn sign_impersonation_token(
        &self,
        user: &UserId,
        session: &SessionId,
        role: Role,
        ttl_secs: i64,
        staff: &UserId,
        can_write: bool,
    ) -> Result<String, Error> {
        self.sign(Claims {
            impersonated_by: Some(staff.to_string()),
            impersonation_can_write: can_write,
            ..self.claims(user, session, role, ttl_secs)
        })
    }

    /// The claims of a plain access token, issued now and valid for `ttl_secs`.
    fn claims(&self, user: &UserId, session: &SessionId, role: Role, ttl_secs: i64) -> Claims {
        let now = self.now().timestamp();
        Claims {
            sub: user.to_string(),
            sid: session.to_string(),
            role,
            iat: now,
            exp: now + ttl_secs,
            impersonated_by: None,
            impersonation_can_write: false,
        }
    }

    fn sign(&self, claims: Claims) -> Result<String, Error> {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.keys().jwt),
        )
        .map_err(|e| Error::Internal(e.into()))
    }

    /// Checks signature and expiry against the engine's clock.
    pub fn decode_access_token(&self, token: &str) -> Result<Claims, Error> {
        decode_access_token(self.keys(), token, self.now().timestamp())
    }
}

/// Checks an access token's signature (HS256 only) and its expiry against `now_secs`.
pub fn decode_access_token(keys: &ServerKeys, token: &str, now_secs: i64) -> Result<Claims, Error> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is checked below against the injected clock, not the wall clock.
    validation.validate_exp = false;
    validation.required_spec_claims = ["exp", "sub"].into_iter().map(String::from).collect();
    let data = decode::<Claims>(token, &DecodingKey::from_secret(&keys.jwt), &validation)
        .map_err(|_| Error::InvalidToken)?;
    if data.claims.exp <= now_secs {
        return Err(Error::TokenExpired);
    }
    Ok(data.claims)
}
