//! Who is calling: a bearer access token or an API key, checked against the live account.

use super::Engine;
use crate::domain::{KeyId, Scope, SessionId, User, UserId, UserStatus};
use crate::error::{Error, Result};
use crate::store::{sessions, users};

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    Session {
        session_id: SessionId,
        impersonated_by: Option<UserId>,
        /// Impersonation tokens only read unless this is set.
        impersonation_can_write: bool,
    },
    ApiKey {
        key_id: KeyId,
        prefix: String,
        scopes: Vec<Scope>,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub credential: Credential,
}

impl Principal {
    /// Sessions may do anything their user may; keys only what their scopes allow.
    pub fn require_scope(&self, scope: Scope) -> Result<()> {
        match &self.credential {
            Credential::ApiKey { scopes, .. } if !scopes.contains(&scope) => {
                Err(Error::InsufficientScope(scope.as_str().to_owned()))
            }
            _ => Ok(()),
        }
    }

    pub fn session_id(&self) -> Option<&SessionId> {
        match &self.credential {
            Credential::Session { session_id, .. } => Some(session_id),
            Credential::ApiKey { .. } => None,
        }
    }

    pub fn key_prefix(&self) -> Option<&str> {
        match &self.credential {
            Credential::ApiKey { prefix, .. } => Some(prefix),
            Credential::Session { .. } => None,
        }
    }
}

impl Engine {
    /// Authenticates `Authorization: Bearer <token>`: an `sk_` key or an access token. The
    /// account and session are read on every call, so that suspension and revocation take
    /// effect on the next request.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        let bearer = bearer.trim();
        if bearer.is_empty() {
            return Err(Error::MissingCredentials);
        }
        if bearer.starts_with("sk_") {
            let k = self.verify_api_key(bearer).await?;
            return Ok(Principal {
                user: k.user,
                credential: Credential::ApiKey {
                    key_id: k.key_id,
                    prefix: k.prefix,
                    scopes: k.scopes,
                },
            });
        }
        let claims = self.decode_access_token(bearer)?;
        let user_id = UserId::parse(&claims.sub).map_err(|_| Error::InvalidToken)?;
        let session_id = SessionId::parse(&claims.sid).map_err(|_| Error::InvalidToken)?;
        let session = sessions::find(self.db().read(), &session_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        if session.user_id != user_id.as_str() {
            return Err(Error::InvalidToken);
        }
        if session.revoked_at.is_some() {
            return Err(Error::SessionRevoked);
        }
        let user = users::find(self.db().read(), &user_id)
            .await?
            .ok_or(Error::InvalidToken)?
            .into_user();
        match user.status {
            UserStatus::Active => {}
            UserStatus::Suspended => return Err(Error::AccountSuspended),
            UserStatus::Deleted => return Err(Error::SessionRevoked),
        }
        let impersonated_by = claims
            .impersonated_by
            .as_deref()
            .map(UserId::parse)
            .transpose()
            .map_err(|_| Error::InvalidToken)?;
        Ok(Principal {
            user,
            credential: Credential::Session {
                session_id,
                impersonated_by,
                impersonation_can_write: claims.impersonation_can_write,
            },
        })
    }
}
