//! Rate limits per plan and scope (per user), and per client IP for anonymous scopes.
//!
//! Fixed windows aligned to the window length, counted in this process. With several
//! instances each counts its own share; sharing the counts is part of the scale-out work.

use super::Engine;
use crate::domain::UserId;
use crate::error::{Error, RateLimited, Result};
use crate::plans::RateLimit;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// The state of one limiter after a request was allowed.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RateDecision {
    pub limit: i64,
    pub remaining: i64,
    pub reset_at: DateTime<Utc>,
    pub window_s: i64,
}

impl RateDecision {
    /// Seconds until the window resets, at least 1 (for `RateLimit-Reset`).
    pub fn reset_in(&self, now: DateTime<Utc>) -> i64 {
        (self.reset_at - now).num_seconds().max(1)
    }
}

/// subject → (window start in seconds, count)
type Windows = HashMap<String, (i64, i64)>;

#[derive(Default)]
pub(crate) struct Limiter {
    /// scope → its windows
    windows: Mutex<HashMap<String, Windows>>,
}

impl Limiter {
    pub(crate) fn hit(
        &self,
        scope: &str,
        subject: &str,
        limit: RateLimit,
        now: DateTime<Utc>,
    ) -> Result<RateDecision> {
        let t = now.timestamp();
        let start = t - t.rem_euclid(limit.window_secs);
        let reset_at = DateTime::from_timestamp(start + limit.window_secs, 0).unwrap_or(now);
        let mut map = self.windows.lock().expect("limiter lock");
        if !map.contains_key(scope) {
            map.insert(scope.to_owned(), HashMap::new());
        }
        let subjects = map.get_mut(scope).expect("inserted above");
        if subjects.len() > 100_000 {
            subjects.retain(|_, (s, _)| *s + 86_400 > t);
        }
        if !subjects.contains_key(subject) {
            subjects.insert(subject.to_owned(), (start, 0));
        }
        let slot = subjects.get_mut(subject).expect("inserted above");
        if slot.0 != start {
            *slot = (start, 0);
        }
        if slot.1 >= limit.requests {
            return Err(Error::RateLimited(Box::new(RateLimited {
                scope: scope.to_owned(),
                limit: limit.requests,
                window_s: limit.window_secs,
                retry_after_s: (start + limit.window_secs - t).max(1),
                resets_at: reset_at,
            })));
        }
        slot.1 += 1;
        Ok(RateDecision {
            limit: limit.requests,
            remaining: limit.requests - slot.1,
            reset_at,
            window_s: limit.window_secs,
        })
    }

    fn clear_subject(&self, subject: &str) -> usize {
        let mut map = self.windows.lock().expect("limiter lock");
        map.values_mut()
            .map(|subjects| usize::from(subjects.remove(subject).is_some()))
            .sum()
    }
}

impl Engine {
    /// Counts a request of a user against its plan's limit for `scope`. `None` when the plan
    /// sets no limit for the scope.
    pub async fn check_rate_limit(
        &self,
        user: &UserId,
        scope: &str,
    ) -> Result<Option<RateDecision>> {
        let r = self.resolve_subscription(user).await?;
        match r.effective.plan.rate_limits.get(scope) {
            Some(limit) => self
                .inner
                .limiter
                .hit(scope, user.as_str(), *limit, self.now())
                .map(Some),
            None => Ok(None),
        }
    }

    /// Counts an anonymous request (login, register) from a client IP.
    pub async fn check_ip_rate_limit(&self, scope: &str, ip: &str) -> Result<Option<RateDecision>> {
        let catalog = self.catalog().await?;
        match catalog.catalog.anonymous_limit(scope) {
            Some(limit) => self
                .inner
                .limiter
                .hit(scope, &format!("ip:{ip}"), limit, self.now())
                .map(Some),
            None => Ok(None),
        }
    }

    /// Forgets every window of a user (staff "clear rate limits"); returns how many.
    pub fn clear_rate_limits(&self, user: &UserId) -> usize {
        self.inner.limiter.clear_subject(user.as_str())
    }
}
