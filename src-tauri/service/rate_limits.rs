//! Rate limits per plan and scope (per user), and per client IP for anonymous scopes.
//!
//! Fixed windows aligned to the window length. With `TOLLGATE_REDIS_URL` set the counts live in
//! Redis and every instance shares them (`shared.rs`); without it, and while Redis does not
//! answer, each instance counts alone.

mod shared;

use super::Engine;
use crate::config::RedisUrl;
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

/// Where this instance counts rate limits now (`GET /ready`, `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitBackend {
    /// No Redis configured: this instance counts alone.
    Off,
    /// Counts shared with every instance through Redis.
    Ok,
    /// Redis is configured but does not answer: this instance counts alone until it does.
    Degraded,
}

/// A count of `count` requests in the window that starts at `start` (unix seconds): the
/// answer both counters give, turned into the same decision or refusal.
fn answer(
    scope: &str,
    limit: RateLimit,
    start: i64,
    counted: Option<i64>,
    now: DateTime<Utc>,
) -> Result<RateDecision> {
    let reset_at = DateTime::from_timestamp(start + limit.window_secs, 0).unwrap_or(now);
    match counted {
        Some(count) => Ok(RateDecision {
            limit: limit.requests,
            remaining: limit.requests - count,
            reset_at,
            window_s: limit.window_secs,
        }),
        None => Err(Error::RateLimited(Box::new(RateLimited {
            scope: scope.to_owned(),
            limit: limit.requests,
            window_s: limit.window_secs,
            retry_after_s: (start + limit.window_secs - now.timestamp()).max(1),
            resets_at: reset_at,
        }))),
    }
}

/// The start (unix seconds) of the window `now` falls in.
fn window_start(limit: RateLimit, now: DateTime<Utc>) -> i64 {
    let t = now.timestamp();
    t - t.rem_euclid(limit.window_secs)
}

/// subject → (window start in seconds, count)
type Windows = HashMap<String, (i64, i64)>;

/// The counts of this process alone.
#[derive(Default)]
struct LocalWindows {
    /// scope → its windows
    windows: Mutex<HashMap<String, Windows>>,
}

impl LocalWindows {
    fn hit(
        &self,
        scope: &str,
        subject: &str,
        limit: RateLimit,
        now: DateTime<Utc>,
    ) -> Result<RateDecision> {
        let t = now.timestamp();
        let start = window_start(limit, now);
        let counted = {
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
                None
            } else {
                slot.1 += 1;
                Some(slot.1)
            }
        };
        answer(scope, limit, start, counted, now)
    }

    fn clear_subject(&self, subject: &str) -> usize {
        let mut map = self.windows.lock().expect("limiter lock");
        map.values_mut()
            .map(|subjects| usize::from(subjects.remove(subject).is_some()))
            .sum()
    }
}

/// Every rate limit of the process: shared through Redis when configured, local otherwise.
#[derive(Default)]
pub(crate) struct Limiter {
    local: LocalWindows,
    shared: Option<shared::SharedWindows>,
}

impl Limiter {
    /// Counts in Redis when `redis` is set (this instance starts degraded, and says so, when
    /// Redis does not answer yet), else in this process.
    pub(crate) async fn start(redis: Option<&RedisUrl>) -> anyhow::Result<Limiter> {
        Ok(Limiter {
            local: LocalWindows::default(),
            shared: match redis {
                Some(url) => Some(shared::SharedWindows::connect(url).await?),
                None => None,
            },
        })
    }

    pub(crate) async fn hit(
        &self,
        scope: &str,
        subject: &str,
        limit: RateLimit,
        now: DateTime<Utc>,
    ) -> Result<RateDecision> {
        if let Some(shared) = &self.shared {
            if let Some(counted) = shared.hit(scope, subject, limit, now).await {
                if counted.count.is_some() {
                    // Counted here too: if Redis goes away, this instance goes on from its own
                    // share of the window rather than from zero.
                    let _ = self.local.hit(scope, subject, limit, now);
                }
                return answer(scope, limit, counted.start, counted.count, now);
            }
        }
        self.local.hit(scope, subject, limit, now)
    }

    async fn clear_subject(&self, subject: &str) -> usize {
        let local = self.local.clear_subject(subject);
        match &self.shared {
            Some(shared) => shared.clear_subject(subject).await.unwrap_or(local),
            None => local,
        }
    }

    fn backend(&self) -> RateLimitBackend {
        match &self.shared {
            None => RateLimitBackend::Off,
            Some(shared) if shared.is_degraded() => RateLimitBackend::Degraded,
            Some(_) => RateLimitBackend::Ok,
        }
    }

    /// [`Limiter::backend`], after asking Redis when it is believed to answer.
    async fn check_backend(&self) -> RateLimitBackend {
        if let Some(shared) = &self.shared {
            shared.check().await;
        }
        self.backend()
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
                .await
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
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    /// Forgets every window of a user (staff "clear rate limits"), in Redis too when limits
    /// are shared; returns how many.
    pub async fn clear_rate_limits(&self, user: &UserId) -> usize {
        self.inner.limiter.clear_subject(user.as_str()).await
    }

    /// Where rate limits are counted now: `off` (no Redis configured), `ok` (shared through
    /// Redis) or `degraded` (Redis configured but not answering; counted locally).
    pub fn rate_limit_backend(&self) -> RateLimitBackend {
        self.inner.limiter.backend()
    }

    /// [`Engine::rate_limit_backend`], after a round trip to Redis when it is believed to
    /// answer (readiness checks, so that a Redis that died while idle is noticed).
    pub async fn check_rate_limit_backend(&self) -> RateLimitBackend {
        self.inner.limiter.check_backend().await
    }
}
