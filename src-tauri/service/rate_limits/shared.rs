//! Rate-limit windows shared by every instance through Redis.
//!
//! One Lua script counts a request atomically on the server, so that N instances together
//! allow what one would. When Redis does not answer within [`CALL_TIMEOUT`], the caller counts
//! locally instead: the instance turns degraded (one warning), stops asking Redis on the request
//! path, and a background task probes it with backoff (at most every [`PROBE_EVERY`]) until it
//! answers again (one info line), when requests go back to the shared counts.

use crate::config::RedisUrl;
use crate::plans::RateLimit;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The longest a request waits for Redis before it counts locally.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// The longest a degraded instance waits between two probes.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// The first wait after Redis stopped answering; doubled up to [`PROBE_EVERY`].
const FIRST_PROBE_AFTER: Duration = Duration::from_millis(250);

/// Every key Tollgate writes starts with this: one hash per subject, so that clearing a
/// user's limits is one `DEL`.
const KEY_PREFIX: &str = "tollgate:rl:";
/// What the probe counts in: a key no subject can have (subjects are ids, `ip:…` or emails).
const PROBE_KEY: &str = "tollgate:rl:~probe";

/// Counts one request of a subject in a scope's window.
///
/// KEYS[1]: the subject's hash. ARGV: scope, window start (unix s), limit, key lifetime (ms).
/// The hash holds `w:<scope>` (start of the window counted) and `c:<scope>` (its count).
/// Returns {allowed 0/1, count, start of the window counted}. A window later than the caller's
/// is counted as it is (another instance's clock is ahead), an earlier one is started anew.
const HIT: &str = r"
local start = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local wf = 'w:' .. ARGV[1]
local cf = 'c:' .. ARGV[1]
local seen = redis.call('HMGET', KEYS[1], wf, cf)
local w = tonumber(seen[1])
local count = 0
if w and w >= start then
  start = w
  count = tonumber(seen[2]) or 0
end
if count >= limit then
  return {0, count, start}
end
count = count + 1
redis.call('HSET', KEYS[1], wf, start, cf, count)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return {1, count, start}
";

/// Deletes a subject's hash; returns how many windows it held.
const CLEAR: &str = r"
local fields = redis.call('HLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return math.floor(fields / 2)
";

/// What Redis answered for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SharedCount {
    /// The window counted (unix seconds).
    pub start: i64,
    /// The count with this request, or `None` when the window was full and it was refused.
    pub count: Option<i64>,
}

pub(super) struct SharedWindows {
    state: Arc<State>,
}

struct State {
    conn: ConnectionManager,
    /// Where Redis is, without credentials, for logs.
    shown: String,
    degraded: AtomicBool,
    hit: redis::Script,
    clear: redis::Script,
}

impl SharedWindows {
    /// Prepares the connection and asks Redis once: an instance whose Redis does not answer
    /// yet starts degraded rather than not at all.
    pub(super) async fn connect(url: &RedisUrl) -> anyhow::Result<SharedWindows> {
        let client = redis::Client::open(url.expose())
            .map_err(|e| anyhow::anyhow!("TOLLGATE_REDIS_URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(PROBE_EVERY);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| anyhow::anyhow!("TOLLGATE_REDIS_URL: {e}"))?;
        let shared = SharedWindows {
            state: Arc::new(State {
                conn,
                shown: url.display().to_owned(),
                degraded: AtomicBool::new(false),
                hit: redis::Script::new(HIT),
                clear: redis::Script::new(CLEAR),
            }),
        };
        match shared.state.probe().await {
            Ok(()) => {
                tracing::info!(redis = %shared.state.shown, "rate limits are shared through Redis")
            }
            Err(e) => shared.state.degrade(&e),
        }
        Ok(shared)
    }

    /// Counts a request in Redis. `None` when Redis is not used for it (degraded, or it did not
    /// answer in time): the caller counts locally.
    pub(super) async fn hit(
        &self,
        scope: &str,
        subject: &str,
        limit: RateLimit,
        now: DateTime<Utc>,
    ) -> Option<SharedCount> {
        if self.is_degraded() {
            return None;
        }
        let start = super::window_start(limit, now);
        // The hash outlives its longest window by a second.
        let keep_ms = limit.window_secs.saturating_mul(1000).saturating_add(1000);
        let mut call = self.state.hit.key(format!("{KEY_PREFIX}{subject}"));
        call.arg(scope).arg(start).arg(limit.requests).arg(keep_ms);
        let answer: Result<(i64, i64, i64), String> = self.state.run(&call).await;
        match answer {
            Ok((allowed, count, start)) => Some(SharedCount {
                start,
                count: (allowed == 1).then_some(count),
            }),
            Err(e) => {
                self.state.degrade(&e);
                None
            }
        }
    }

    /// Deletes a subject's shared windows; `None` when Redis could not be asked.
    pub(super) async fn clear_subject(&self, subject: &str) -> Option<usize> {
        if self.is_degraded() {
            tracing::warn!(
                redis = %self.state.shown,
                "Redis does not answer: rate limits cleared on this instance only"
            );
            return None;
        }
        let call = self.state.clear.key(format!("{KEY_PREFIX}{subject}"));
        match self.state.run::<i64>(&call).await {
            Ok(n) => Some(usize::try_from(n).unwrap_or(0)),
            Err(e) => {
                self.state.degrade(&e);
                None
            }
        }
    }

    pub(super) fn is_degraded(&self) -> bool {
        self.state.degraded.load(Ordering::Acquire)
    }

    /// Asks Redis now unless already degraded (then the background probe is on it).
    pub(super) async fn check(&self) {
        if !self.is_degraded() {
            if let Err(e) = self.state.probe().await {
                self.state.degrade(&e);
            }
        }
    }
}

impl State {
    /// One round trip that runs the counting script and writes, as a request would (a Redis
    /// that answers PING but refuses writes, full or read-only, is still away for us).
    async fn probe(&self) -> Result<(), String> {
        let mut call = self.hit.key(PROBE_KEY);
        call.arg("probe").arg(0).arg(i64::MAX).arg(1000);
        self.run::<(i64, i64, i64)>(&call).await.map(drop)
    }

    /// One script call, given up after [`CALL_TIMEOUT`].
    async fn run<T: redis::FromRedisValue>(
        &self,
        call: &redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(CALL_TIMEOUT, call.invoke_async(&mut conn)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", CALL_TIMEOUT.as_millis())),
        }
    }

    /// Turns degraded: the first caller to see Redis fail logs it and starts the probe; the
    /// others just count locally.
    fn degrade(self: &Arc<Self>, error: &str) {
        if self
            .degraded
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            tracing::warn!(
                redis = %self.shown,
                error,
                "Redis does not answer: rate limits are counted by this instance alone until it does"
            );
            tokio::spawn(recover(Arc::downgrade(self)));
        }
    }
}

/// Probes a degraded Redis with backoff until it answers, then shares the counts again. Ends
/// when the limiter is dropped.
async fn recover(state: Weak<State>) {
    let mut wait = FIRST_PROBE_AFTER;
    loop {
        tokio::time::sleep(wait).await;
        let Some(state) = state.upgrade() else {
            return;
        };
        if state.probe().await.is_ok() {
            state.degraded.store(false, Ordering::Release);
            tracing::info!(redis = %state.shown, "Redis answers again: rate limits are shared again");
            return;
        }
        wait = (wait * 2).min(PROBE_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Limiter, RateDecision, RateLimitBackend};
    use super::*;
    use crate::error::{Error, RateLimited};

    /// The Redis server tests use, from `TOLLGATE_TEST_REDIS_URL` (set by `scripts/with-redis`):
    /// skipped locally without it, a failure in CI.
    fn test_redis() -> Option<RedisUrl> {
        match std::env::var("TOLLGATE_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => Some(RedisUrl::parse(&url).expect("a Redis URL")),
            _ if std::env::var("CI").is_ok() => {
                panic!("CI must set TOLLGATE_TEST_REDIS_URL (use scripts/with-redis)")
            }
            _ => {
                eprintln!("TOLLGATE_TEST_REDIS_URL is not set: skipping this Redis test");
                None
            }
        }
    }

    /// A subject no other test uses (they may share one Redis server).
    fn subject() -> String {
        format!("usr_test_{}", uuid::Uuid::new_v4().simple())
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn outcome(r: crate::error::Result<RateDecision>) -> Result<RateDecision, RateLimited> {
        r.map_err(|e| match e {
            Error::RateLimited(d) => *d,
            other => panic!("not a rate-limit refusal: {other}"),
        })
    }

    const THREE_PER_10S: RateLimit = RateLimit {
        requests: 3,
        window_secs: 10,
    };

    #[tokio::test]
    async fn redis_answers_exactly_what_the_local_counter_answers() {
        let Some(url) = test_redis() else { return };
        let shared = Limiter::start(Some(&url)).await.unwrap();
        assert_eq!(shared.backend(), RateLimitBackend::Ok);
        let local = Limiter::default();
        let who = subject();
        // Within a window, past its limit, into the next one, and a jump over several.
        for t in [0, 1, 2, 3, 9, 10, 11, 12, 13, 45, 45].map(|d| 1_000_000_000 + d) {
            let a = outcome(shared.hit("api", &who, THREE_PER_10S, at(t)).await);
            let b = outcome(local.hit("api", &who, THREE_PER_10S, at(t)).await);
            assert_eq!(a, b, "at {t}");
        }
        // The scopes of one subject are counted apart.
        assert!(shared
            .hit("mfa", &who, THREE_PER_10S, at(1_000_000_045))
            .await
            .is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_together_allow_the_limit_once() {
        let Some(url) = test_redis() else { return };
        let instances = [
            Arc::new(Limiter::start(Some(&url)).await.unwrap()),
            Arc::new(Limiter::start(Some(&url)).await.unwrap()),
        ];
        let who = subject();
        let limit = RateLimit {
            requests: 25,
            window_secs: 3600,
        };
        let now = Utc::now();
        let mut tasks = Vec::new();
        for i in 0..80 {
            let (limiter, who) = (instances[i % 2].clone(), who.clone());
            tasks.push(tokio::spawn(async move {
                limiter.hit("api", &who, limit, now).await.is_ok()
            }));
        }
        let mut allowed = 0;
        for t in tasks {
            allowed += usize::from(t.await.unwrap());
        }
        assert_eq!(allowed, 25);
    }

    #[tokio::test]
    async fn clearing_a_subject_forgets_its_shared_windows() {
        let Some(url) = test_redis() else { return };
        let (a, b) = (
            Limiter::start(Some(&url)).await.unwrap(),
            Limiter::start(Some(&url)).await.unwrap(),
        );
        let who = subject();
        for scope in ["api", "mfa"] {
            for _ in 0..3 {
                a.hit(scope, &who, THREE_PER_10S, at(1_000)).await.unwrap();
            }
        }
        assert!(b.hit("api", &who, THREE_PER_10S, at(1_000)).await.is_err());
        // Cleared through the other instance: both scopes, for everyone.
        assert_eq!(b.clear_subject(&who).await, 2);
        assert!(a.hit("api", &who, THREE_PER_10S, at(1_000)).await.is_ok());
        assert_eq!(b.clear_subject(&subject()).await, 0);
    }

    #[tokio::test]
    async fn a_window_opened_by_a_clock_ahead_is_counted_not_restarted() {
        let Some(url) = test_redis() else { return };
        let limiter = Limiter::start(Some(&url)).await.unwrap();
        let who = subject();
        // An instance whose clock is in the next window counts first...
        for _ in 0..3 {
            limiter
                .hit("api", &who, THREE_PER_10S, at(1_010))
                .await
                .unwrap();
        }
        // ...and one still in the previous window sees that window full, not a fresh count.
        let refused = outcome(limiter.hit("api", &who, THREE_PER_10S, at(1_009)).await);
        let refused = refused.unwrap_err();
        assert_eq!(refused.resets_at, at(1_020));
        assert_eq!(refused.retry_after_s, 11);
    }

    #[tokio::test]
    async fn an_unreachable_redis_degrades_to_local_counts_without_waiting() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = RedisUrl::parse(&format!("redis://127.0.0.1:{closed}")).unwrap();
        let limiter = Limiter::start(Some(&url)).await.unwrap();
        assert_eq!(limiter.backend(), RateLimitBackend::Degraded);
        let who = subject();
        let started = std::time::Instant::now();
        for _ in 0..3 {
            limiter
                .hit("api", &who, THREE_PER_10S, at(1_000))
                .await
                .unwrap();
        }
        // Still limited: by this instance's own count.
        assert!(limiter
            .hit("api", &who, THREE_PER_10S, at(1_000))
            .await
            .is_err());
        assert!(
            started.elapsed() < CALL_TIMEOUT,
            "a degraded limiter does not wait for Redis: {:?}",
            started.elapsed()
        );
        assert_eq!(limiter.check_backend().await, RateLimitBackend::Degraded);
    }
}
