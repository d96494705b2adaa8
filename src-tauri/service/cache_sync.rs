//! Caches that stay correct when several processes share the database.
//!
//! Verified API keys, subscriptions and the catalog are cached in every process, and a cache
//! hit touches no database. Every change such a value depends on is announced by a trigger in
//! the changing transaction, whoever makes it (this process, another instance, the CLI, the
//! console; see the `0010_scale_out` migrations):
//! - PostgreSQL: a notification on [`CHANNEL`], delivered at commit to every listening
//!   process; when the listening connection drops, everything cached is forgotten.
//! - SQLite: a row in `cache_invalidations`, which every process polls every
//!   [`POLL_EVERY`].
//!
//! Entries also expire after [`CACHE_TTL`], the backstop for anything missed. A value read
//! from the database is cached only if no invalidation arrived while it was read, so that a
//! read racing a change cannot put the old value back.

use super::Engine;
use crate::store::{cache_invalidations, Kind};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The notification channel of the PostgreSQL triggers.
pub const CHANNEL: &str = "tollgate_cache";
/// How often a process on SQLite looks for changes made by others.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long a cached key, account or subscription is used at most without being read again:
/// the backstop for an announcement that was missed, since every change is announced. Each
/// entry expires at a random point of the last quarter of it ([`Cached::new`]).
///
/// Every entry read again is a few database reads on the request's path, so the backstop is
/// minutes, not seconds: with thousands of customers, entries read in the same second (after
/// a start, say) would otherwise all be read again together, every time the TTL came round.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// How long SQLite keeps invalidation rows (a process that sleeps longer reloads anyway: its
/// entries have expired).
const KEEP_ROWS_MS: i64 = 10 * 60 * 1000;
const _: () = assert!(
    CACHE_TTL.as_millis() < KEEP_ROWS_MS as u128,
    "an entry must expire before the announcements it could have missed are deleted"
);

/// A cached value and when it stops being used.
pub(crate) struct Cached<T> {
    value: Arc<T>,
    expires_at: Instant,
}

impl<T> Cached<T> {
    /// `value`, read now: it expires between three quarters of [`CACHE_TTL`] and all of it
    /// from now, so that entries read together are not read again together.
    pub(crate) fn new(value: Arc<T>) -> Self {
        use rand::Rng;
        let quarter = CACHE_TTL / 4;
        let early = rand::thread_rng().gen_range(Duration::ZERO..quarter);
        Cached {
            value,
            expires_at: Instant::now() + CACHE_TTL - early,
        }
    }

    /// The value, unless it has expired.
    pub(crate) fn fresh(&self) -> Option<&Arc<T>> {
        (Instant::now() < self.expires_at).then_some(&self.value)
    }

    pub(crate) fn value(&self) -> &Arc<T> {
        &self.value
    }
}

/// One announced change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// An API key (id) was revoked, deleted, or its scopes or expiry changed.
    Key(String),
    /// A user (id) was suspended, deleted, or changed role, email or name.
    User(String),
    /// A user's (id) email verification or two-factor state changed.
    Account(String),
    /// A user's (id) subscription row changed.
    Subscription(String),
    /// A catalog was applied.
    Catalog,
    /// Anything else: forget everything.
    Unknown,
}

impl Invalidation {
    pub fn parse(kind: &str, subject: &str) -> Invalidation {
        match kind {
            "key" => Invalidation::Key(subject.to_owned()),
            "user" => Invalidation::User(subject.to_owned()),
            "account" => Invalidation::Account(subject.to_owned()),
            "subscription" => Invalidation::Subscription(subject.to_owned()),
            "catalog" => Invalidation::Catalog,
            _ => Invalidation::Unknown,
        }
    }

    /// A notification's payload, `kind:subject`.
    pub fn from_payload(payload: &str) -> Invalidation {
        match payload.split_once(':') {
            Some((kind, subject)) => Invalidation::parse(kind, subject),
            None => Invalidation::Unknown,
        }
    }
}

impl Engine {
    /// Taken before a database read whose result is to be cached; see
    /// [`Engine::cache_unchanged_since`].
    pub(crate) fn cache_generation(&self) -> u64 {
        self.inner.cache_generation.load(Ordering::Acquire)
    }

    /// Whether no invalidation arrived since `generation` was taken: only then may a value
    /// read in between be cached.
    pub(crate) fn cache_unchanged_since(&self, generation: u64) -> bool {
        self.cache_generation() == generation
    }

    /// Drops what `what` makes stale from this process's caches.
    pub async fn invalidate(&self, what: Invalidation) {
        self.invalidate_all(vec![what]).await
    }

    /// [`Engine::invalidate`] for many changes at once, one pass over each cache (a bulk
    /// change such as a plan migration announces one change per subscriber).
    pub async fn invalidate_all(&self, changes: Vec<Invalidation>) {
        if changes.is_empty() {
            return;
        }
        self.inner.cache_generation.fetch_add(1, Ordering::AcqRel);
        let mut keys = HashSet::new();
        let mut users = HashSet::new();
        let mut subscribers = HashSet::new();
        let mut accounts = HashSet::new();
        let mut catalog = false;
        for c in changes {
            match c {
                Invalidation::Key(k) => {
                    keys.insert(k);
                }
                Invalidation::User(u) => {
                    users.insert(u.clone());
                    accounts.insert(u.clone());
                    subscribers.insert(u);
                }
                Invalidation::Account(u) => {
                    accounts.insert(u);
                }
                Invalidation::Subscription(u) => {
                    subscribers.insert(u);
                }
                Invalidation::Catalog => catalog = true,
                Invalidation::Unknown => {
                    self.forget_all_cached();
                    return;
                }
            }
        }
        if !keys.is_empty() || !users.is_empty() {
            self.inner
                .key_cache
                .write()
                .expect("key cache lock")
                .retain(|_, k| {
                    let k = k.value();
                    !keys.contains(k.key_id.as_str()) && !users.contains(k.user.id.as_str())
                });
        }
        if !accounts.is_empty() {
            self.inner
                .account_facts
                .write()
                .expect("account facts cache")
                .retain(|user, _| !accounts.contains(user));
        }
        if !subscribers.is_empty() {
            self.inner
                .subscriptions
                .write()
                .expect("subscription cache")
                .retain(|user, _| !subscribers.contains(user));
            self.forget_counters_of(&subscribers);
        }
        if catalog {
            if let Err(e) = self.reload_catalog().await {
                tracing::warn!(error = %e, "could not reload the plan catalog; it is read again on next use");
                *self.inner.catalog.write().expect("catalog lock") = None;
            }
        }
    }

    /// Forgets every cached key, subscription and the catalog (after missing announcements).
    pub fn forget_all_cached(&self) {
        self.inner.cache_generation.fetch_add(1, Ordering::AcqRel);
        self.forget_verified_keys();
        self.forget_subscriptions();
        self.inner
            .account_facts
            .write()
            .expect("account facts cache")
            .clear();
        *self.inner.catalog.write().expect("catalog lock") = None;
    }

    /// Follows the changes other processes announce, until the task is aborted.
    pub(crate) async fn follow_invalidations(&self) {
        match self.db().kind() {
            Kind::Postgres => self.listen_for_invalidations().await,
            Kind::Sqlite => self.poll_invalidations().await,
        }
    }

    async fn listen_for_invalidations(&self) {
        let url = self.settings().database_url.clone();
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect(&url).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for cache invalidations; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "cannot listen for cache invalidations; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Whatever changed before listening began may be cached already.
            self.forget_all_cached();
            tracing::debug!("listening for cache invalidations");
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        self.invalidate(Invalidation::from_payload(n.payload()))
                            .await
                    }
                    Ok(None) => {
                        // The connection dropped (the listener reconnects on the next call):
                        // announcements may have been missed.
                        tracing::warn!(
                            "lost the cache invalidation connection; forgetting every cached value"
                        );
                        self.forget_all_cached();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cache invalidation listener failed; reconnecting");
                        self.forget_all_cached();
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn poll_invalidations(&self) {
        let pool = self.db().read().clone();
        let mut last = loop {
            match cache_invalidations::latest_id(&pool).await {
                Ok(id) => break id,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read cache invalidations; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        self.forget_all_cached();
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                match cache_invalidations::after(&pool, last, 500).await {
                    Ok(rows) => {
                        let full = rows.len() == 500;
                        if let Some(r) = rows.last() {
                            last = r.id;
                        }
                        self.invalidate_all(
                            rows.iter()
                                .map(|r| Invalidation::parse(&r.kind, &r.subject))
                                .collect(),
                        )
                        .await;
                        if !full {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read cache invalidations");
                        break;
                    }
                }
            }
        }
    }

    /// Deletes SQLite's old invalidation rows (part of the leased background work).
    pub(crate) async fn prune_cache_invalidations(&self) -> crate::error::Result<u64> {
        if self.db().kind() != Kind::Sqlite {
            return Ok(0);
        }
        let before = crate::store::ms(chrono::Utc::now()) - KEEP_ROWS_MS;
        Ok(cache_invalidations::prune(self.db().write(), before).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_together_expire_spread_over_the_ttls_last_quarter() {
        let before = Instant::now();
        let entries: Vec<_> = (0..1000).map(|i| Cached::new(Arc::new(i))).collect();
        let after = Instant::now();
        let mut lifetimes: Vec<Duration> = entries
            .iter()
            .map(|c| {
                assert!(c.fresh().is_some());
                assert!(c.expires_at <= after + CACHE_TTL);
                assert!(c.expires_at >= before + CACHE_TTL * 3 / 4);
                c.expires_at - before
            })
            .collect();
        lifetimes.sort();
        // Spread, not one instant: the first and the last tenth are over half a quarter apart.
        assert!(lifetimes[899] - lifetimes[100] > CACHE_TTL / 8);
    }

    #[test]
    fn an_expired_entry_is_not_fresh() {
        let mut c = Cached::new(Arc::new(1));
        c.expires_at = Instant::now();
        assert!(c.fresh().is_none());
        assert_eq!(**c.value(), 1);
    }

    #[test]
    fn payloads_name_what_changed() {
        assert_eq!(
            Invalidation::from_payload("key:key_123"),
            Invalidation::Key("key_123".into())
        );
        assert_eq!(
            Invalidation::from_payload("subscription:usr_1"),
            Invalidation::Subscription("usr_1".into())
        );
        assert_eq!(
            Invalidation::from_payload("account:usr_1"),
            Invalidation::Account("usr_1".into())
        );
        assert_eq!(
            Invalidation::from_payload("catalog:7"),
            Invalidation::Catalog
        );
        assert_eq!(Invalidation::from_payload("what"), Invalidation::Unknown);
        assert_eq!(Invalidation::from_payload("tea:pot"), Invalidation::Unknown);
    }
}
