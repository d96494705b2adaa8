//! API keys: `sk_live_` + 43 random base62 characters (256 bits), shown once. The store keeps
//! a display prefix and an HMAC-SHA256 keyed with the server secret; verifying is one keyed
//! hash plus one indexed lookup.

use super::cache_sync::Cached;
use super::{crypto, Engine};
use crate::domain::{KeyId, PlaintextApiKey, Scope, User, UserId, UserStatus};
use crate::error::{Error, Result};
use crate::store::{api_keys, at, ms, users};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

/// A key as listed: never its plaintext.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct ApiKeyInfo {
    pub id: KeyId,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_keys::ApiKeyRow> for ApiKeyInfo {
    fn from(r: api_keys::ApiKeyRow) -> Self {
        ApiKeyInfo {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            scopes: Scope::split(&r.scopes),
            created_at: at(r.created_at),
            last_used_at: r.last_used_at.map(at),
            expires_at: r.expires_at.map(at),
            revoked_at: r.revoked_at.map(at),
        }
    }
}

/// A freshly created key: the only time its plaintext exists outside the client.
#[derive(Debug)]
pub struct CreatedApiKey {
    pub info: ApiKeyInfo,
    pub plaintext: PlaintextApiKey,
}

pub struct NewKey<'a> {
    pub name: &'a str,
    /// `None`: every scope.
    pub scopes: Option<&'a [String]>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The result of verifying a key: who it belongs to and what it may do.
#[derive(Debug, Clone)]
pub struct VerifiedKey {
    pub key_id: KeyId,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    /// Unix ms.
    pub expires_at: Option<i64>,
    pub user: User,
}

const KEY_RANDOM_CHARS: usize = 43;

impl Engine {
    pub async fn create_api_key(&self, user: &UserId, k: NewKey<'_>) -> Result<CreatedApiKey> {
        let name = k.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::validation(
                "name",
                "invalid",
                "name must be 1 to 100 characters",
            ));
        }
        let scopes: Vec<Scope> = match k.scopes {
            None => Scope::ALL.to_vec(),
            Some(list) => {
                let mut v = list
                    .iter()
                    .map(|s| Scope::parse(s.trim()))
                    .collect::<Result<Vec<_>>>()?;
                v.sort();
                v.dedup();
                if v.is_empty() {
                    return Err(Error::validation(
                        "scopes",
                        "empty",
                        "give at least one scope, or leave scopes out for all",
                    ));
                }
                v
            }
        };
        let now = self.now();
        if let Some(exp) = k.expires_at {
            if exp <= now {
                return Err(Error::validation(
                    "expires_at",
                    "in_the_past",
                    "expires_at must be in the future",
                ));
            }
        }
        let plaintext = PlaintextApiKey::new(format!(
            "{}{}",
            PlaintextApiKey::PREFIX,
            crypto::random_base62(KEY_RANDOM_CHARS)
        ));
        let id = KeyId::new();
        let mut tx = self.db().begin().await?;
        api_keys::insert(
            &mut tx,
            api_keys::NewApiKey {
                id: &id,
                user_id: user,
                name,
                prefix: plaintext.display_prefix(),
                key_hash: &self.keys().hash_api_key(plaintext.expose()),
                scopes: &Scope::join(&scopes),
                now_ms: ms(now),
                expires_ms: k.expires_at.map(ms),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(CreatedApiKey {
            info: ApiKeyInfo {
                id,
                name: name.to_owned(),
                prefix: plaintext.display_prefix().to_owned(),
                scopes,
                created_at: now,
                last_used_at: None,
                expires_at: k.expires_at,
                revoked_at: None,
            },
            plaintext,
        })
    }

    pub async fn list_api_keys(&self, user: &UserId) -> Result<Vec<ApiKeyInfo>> {
        Ok(api_keys::list(self.db().read(), user)
            .await?
            .into_iter()
            .map(ApiKeyInfo::from)
            .collect())
    }

    pub async fn revoke_api_key(&self, user: &UserId, key: &KeyId) -> Result<()> {
        let mut tx = self.db().begin().await?;
        let done = api_keys::revoke(&mut tx, user, key, self.now_ms()).await?;
        tx.commit().await?;
        self.forget_verified_keys();
        if done {
            Ok(())
        } else {
            Err(Error::NotFound("api key"))
        }
    }

    /// Verifies a presented key. Each way of failing has its own error.
    pub async fn verify_api_key(&self, presented: &str) -> Result<VerifiedKey> {
        let key = PlaintextApiKey::parse(presented).ok_or(Error::InvalidApiKey)?;
        let hash = self.keys().hash_api_key(key.expose());
        let now = self.now_ms();
        let cached = self
            .inner
            .key_cache
            .read()
            .expect("key cache lock")
            .get(&hash)
            .and_then(|c| c.fresh().cloned());
        if let Some(k) = cached {
            if k.expires_at.is_some_and(|e| e <= now) {
                return Err(Error::ApiKeyExpired);
            }
            self.note_key_use(k.key_id.as_str(), now);
            return Ok(VerifiedKey::clone(&k));
        }
        let generation = self.cache_generation();
        let row = api_keys::find_by_hash(self.db().read(), &hash)
            .await?
            .ok_or(Error::InvalidApiKey)?;
        if row.revoked_at.is_some() {
            return Err(Error::ApiKeyRevoked);
        }
        if row.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::ApiKeyExpired);
        }
        let user = users::find(self.db().read(), &row.user_id)
            .await?
            .ok_or(Error::InvalidApiKey)?
            .into_user();
        match user.status {
            UserStatus::Active => {}
            UserStatus::Suspended => return Err(Error::AccountSuspended),
            UserStatus::Deleted => return Err(Error::ApiKeyRevoked),
        }
        self.note_key_use(&row.id, now);
        let verified = VerifiedKey {
            key_id: row.id,
            prefix: row.prefix,
            scopes: Scope::split(&row.scopes),
            expires_at: row.expires_at,
            user,
        };
        if self.cache_unchanged_since(generation) {
            self.inner
                .key_cache
                .write()
                .expect("key cache lock")
                .insert(hash, Cached::new(Arc::new(verified.clone())));
        }
        Ok(verified)
    }

    /// Forgets verified keys after anything that could make one invalid (revocation, a
    /// change of the owner's status or role).
    pub(crate) fn forget_verified_keys(&self) {
        self.inner
            .key_cache
            .write()
            .expect("key cache lock")
            .clear();
    }
}
