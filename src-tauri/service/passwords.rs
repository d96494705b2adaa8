//! argon2id password hashing, run off the async threads.

use crate::config::Argon2Settings;
use crate::domain::Password;
use crate::error::Error;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when an email is unknown so that
    /// unknown emails and wrong passwords take about the same time.
    dummy: String,
}

impl PasswordHasher {
    pub fn new(s: &Argon2Settings) -> anyhow::Result<Self> {
        let params = Params::new(s.memory_kib, s.iterations, s.parallelism, None)
            .map_err(|e| anyhow::anyhow!("invalid argon2 settings: {e}"))?;
        let mut this = Self {
            params,
            dummy: String::new(),
        };
        this.dummy = this.hash_sync(&super::crypto::random_token(24))?;
        Ok(this)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_sync(&self, password: &str) -> anyhow::Result<String> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    }

    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let this = self.clone();
        let pw = password.expose().to_owned();
        tokio::task::spawn_blocking(move || this.hash_sync(&pw))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(Error::Internal)
    }

    /// Verifies `password` against `hash`, or against the dummy hash when `hash` is `None`
    /// (which then always fails, after the same work).
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, Error> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).to_owned();
        let pw = password.to_owned();
        let this = self.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            anyhow::Ok(
                this.argon2()
                    .verify_password(pw.as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .map_err(anyhow::Error::from)??;
        Ok(ok && known)
    }
}
