//! Facts about an account that sit beside its row (email verification, two-factor), cached
//! per process so that `GET /v1/me` and the metered call's email gate read no database on a
//! warm cache. They stay correct as the other caches do (`cache_sync`): triggers announce
//! every change, and this process forgets its own changes at commit.

use super::cache_sync::Cached;
use super::Engine;
use crate::domain::UserId;
use crate::error::Result;
use crate::store::{at, users};
use chrono::{DateTime, Utc};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountFacts {
    pub email_verified_at: Option<DateTime<Utc>>,
    pub mfa_enabled: bool,
}

impl Engine {
    /// The account's [`AccountFacts`] (for an unknown user: not verified, no two-factor).
    pub async fn account_facts(&self, user: &UserId) -> Result<AccountFacts> {
        if let Some(f) = self
            .inner
            .account_facts
            .read()
            .expect("account facts cache")
            .get(user.as_str())
            .and_then(|c| c.fresh())
        {
            return Ok(**f);
        }
        let generation = self.cache_generation();
        let Some((verified, mfa_confirmed)) =
            users::account_facts(self.db().read(), user.as_str()).await?
        else {
            return Ok(AccountFacts {
                email_verified_at: None,
                mfa_enabled: false,
            });
        };
        let facts = AccountFacts {
            email_verified_at: verified.map(at),
            mfa_enabled: mfa_confirmed.is_some(),
        };
        if self.cache_unchanged_since(generation) {
            self.inner
                .account_facts
                .write()
                .expect("account facts cache")
                .insert(user.as_str().to_owned(), Cached::new(Arc::new(facts)));
        }
        Ok(facts)
    }

    /// Says that an account's facts changed (after the change is committed).
    pub(crate) fn account_changed(&self, user: &str) {
        self.inner
            .cache_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.inner
            .account_facts
            .write()
            .expect("account facts cache")
            .remove(user);
    }
}
