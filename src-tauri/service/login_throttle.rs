//! Failed logins counted per account, against password guessing spread over many addresses
//! (the per-IP limit of `login` stops one address trying many accounts).
//!
//! Two fixed windows, counted in this process like the other limits:
//! - per account and client address: 10 failures in 15 minutes, then that address waits for
//!   the window's end;
//! - per account from everywhere: 50 failures in an hour, then addresses the account has never
//!   signed in from wait too. An address with a session of the account (its owner's) is not
//!   held by this one, so a flood of guesses from elsewhere cannot lock the owner out; and
//!   every refusal ends with its window, so no lock is permanent.
//!
//! A success clears its address's count. Unknown emails are counted like known ones, so the
//! answers do not tell which accounts exist.

use super::Engine;
use crate::error::{Error, RateLimited, Result};
use crate::store::sessions;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// Failures allowed per account and client address in [`ADDRESS_WINDOW_SECS`].
pub const FAILURES_PER_ADDRESS: i64 = 10;
pub const ADDRESS_WINDOW_SECS: i64 = 15 * 60;
/// Failures allowed per account from all addresses in [`ACCOUNT_WINDOW_SECS`].
pub const FAILURES_PER_ACCOUNT: i64 = 50;
pub const ACCOUNT_WINDOW_SECS: i64 = 60 * 60;

/// key → (window start in seconds, failures)
#[derive(Default)]
pub(crate) struct LoginFailures {
    counts: Mutex<HashMap<String, (i64, i64)>>,
}

impl LoginFailures {
    /// The refusal when `key` already has `limit` failures in the current window.
    fn refusal(&self, key: &str, limit: i64, window: i64, now: DateTime<Utc>) -> Option<Error> {
        let t = now.timestamp();
        let start = t - t.rem_euclid(window);
        let counts = self.counts.lock().expect("login failures lock");
        let &(s, n) = counts.get(key)?;
        (s == start && n >= limit).then(|| {
            Error::TooManyLoginAttempts(Box::new(RateLimited {
                scope: "login_account".to_owned(),
                limit,
                window_s: window,
                retry_after_s: (start + window - t).max(1),
                resets_at: DateTime::from_timestamp(start + window, 0).unwrap_or(now),
            }))
        })
    }

    fn add(&self, key: String, window: i64, now: DateTime<Utc>) {
        let t = now.timestamp();
        let start = t - t.rem_euclid(window);
        let mut counts = self.counts.lock().expect("login failures lock");
        if counts.len() > 100_000 {
            counts.retain(|_, (s, _)| *s + ACCOUNT_WINDOW_SECS > t);
        }
        let slot = counts.entry(key).or_insert((start, 0));
        if slot.0 != start {
            *slot = (start, 0);
        }
        slot.1 += 1;
    }

    fn forget(&self, key: &str) {
        self.counts.lock().expect("login failures lock").remove(key);
    }
}

fn address_key(account: &str, ip: &str) -> String {
    format!("{account}\n{ip}")
}

impl Engine {
    /// Refuses a login attempt for `email` from `ip` while either window is full.
    pub(crate) async fn check_login_failures(&self, email: &str, ip: &str) -> Result<()> {
        let account = email.trim().to_lowercase();
        let f = &self.inner.login_failures;
        let now = self.now();
        if let Some(e) = f.refusal(
            &address_key(&account, ip),
            FAILURES_PER_ADDRESS,
            ADDRESS_WINDOW_SECS,
            now,
        ) {
            return Err(e);
        }
        if let Some(e) = f.refusal(&account, FAILURES_PER_ACCOUNT, ACCOUNT_WINDOW_SECS, now) {
            if !self.signed_in_from(&account, ip).await? {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Counts a failed login for `email` from `ip`.
    pub(crate) fn note_login_failure(&self, email: &str, ip: &str) {
        let account = email.trim().to_lowercase();
        let f = &self.inner.login_failures;
        let now = self.now();
        f.add(address_key(&account, ip), ADDRESS_WINDOW_SECS, now);
        f.add(account, ACCOUNT_WINDOW_SECS, now);
    }

    /// After a success: this address starts again from zero.
    pub(crate) fn note_login_success(&self, email: &str, ip: &str) {
        let account = email.trim().to_lowercase();
        self.inner.login_failures.forget(&address_key(&account, ip));
    }

    /// Whether the account behind `email` has ever had a session opened from `ip`.
    async fn signed_in_from(&self, email: &str, ip: &str) -> Result<bool> {
        let Ok(email) = crate::domain::Email::parse(email) else {
            return Ok(false);
        };
        let Some(row) = crate::store::users::find_live_by_email(self.db().read(), &email).await?
        else {
            return Ok(false);
        };
        Ok(sessions::any_from_ip(self.db().read(), &row.id, ip).await?)
    }
}
