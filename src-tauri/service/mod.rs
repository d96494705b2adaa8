//! The service layer: the one place where Tollgate's behaviour lives. The HTTP API, the CLI
//! and the desktop console are thin transports over these functions.

pub mod account_facts;
pub mod accounts;
pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod cache_sync;
pub mod catalog;
pub mod clock;
pub mod crypto;
pub mod decisions;
pub mod entitlements;
pub mod leases;
pub mod login_throttle;
pub mod mail;
pub mod metering;
pub mod mfa;
pub mod passwords;
pub mod permissions;
pub mod plans_admin;
pub mod rate_limits;
pub mod readiness;
pub mod recovery;
pub mod revenue;
pub mod seed;
pub mod stats;
pub mod stripe_events;
pub mod subscriptions;
pub mod tokens;
pub mod traffic;
pub mod usage_series;

use crate::config::{MeteringStrategy, Settings};
use crate::domain::SecretString;
use crate::error::Error;
use crate::store::{self, Db, Kind};
use clock::{Clock, SystemClock};
use crypto::ServerKeys;
use passwords::PasswordHasher;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};

/// Everything a service call needs: database, settings, keys and clock. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

/// Key uses written per transaction by [`Engine::flush_key_uses`].
const KEY_USES_PER_TRANSACTION: usize = 250;

pub(crate) struct Inner {
    db: Db,
    settings: Settings,
    keys: ServerKeys,
    clock: Arc<dyn Clock>,
    passwords: PasswordHasher,
    /// API-key uses not yet written: key id → last use (ms). Flushed in batches so that
    /// verifying a key never writes to the database.
    key_uses: Mutex<HashMap<String, i64>>,
    /// The current catalog; reloaded after every apply.
    pub(crate) catalog: RwLock<Option<Arc<catalog::ActiveCatalog>>>,
    /// Published plan versions by id (immutable, so cached for good).
    pub(crate) plan_versions:
        RwLock<HashMap<crate::domain::PlanVersionId, Arc<catalog::PlanVersion>>>,
    /// Subscriptions by user id (see `cache_sync` for how they stay correct).
    pub(crate) subscriptions:
        RwLock<HashMap<String, cache_sync::Cached<store::subscriptions::SubscriptionRow>>>,
    /// The memory metering strategy, when in use.
    pub(crate) memory: Option<metering::MemoryMeter>,
    /// The database strategy's group commit, on PostgreSQL.
    pub(crate) batcher: Option<metering::DatabaseBatcher>,
    pub(crate) limiter: rate_limits::Limiter,
    /// Failed logins per account (and per account and address).
    pub(crate) login_failures: login_throttle::LoginFailures,
    /// Verified API keys by hash (see `cache_sync` for how they stay correct).
    pub(crate) key_cache: RwLock<HashMap<String, cache_sync::Cached<api_keys::VerifiedKey>>>,
    /// Email verification and two-factor state by user id (see `account_facts`).
    pub(crate) account_facts:
        RwLock<HashMap<String, cache_sync::Cached<account_facts::AccountFacts>>>,
    /// Bumped by every invalidation: a value read from the database is cached only if this
    /// did not move during the read.
    pub(crate) cache_generation: AtomicU64,
    /// This process's name in lease rows.
    pub(crate) holder: String,
    /// Whether this process holds the upkeep lease (see `leases`).
    pub(crate) runs_background: AtomicBool,
    /// Back-office actions checked, while [`Engine::note_authorizations`] is on: tests compare
    /// the transports by the actions their calls check.
    pub(crate) authorizations: Mutex<Option<Vec<permissions::Action>>>,
    /// The revenue reports' last ledger (see `revenue::CachedLedger`).
    pub(crate) revenue: tokio::sync::Mutex<Option<revenue::CachedLedger>>,
    /// The SMTP transport, when `TOLLGATE_SMTP_URL` is set.
    pub(crate) mailer: Option<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>,
    /// Woken after a commit that wrote mail, so that the sender does not wait for its tick.
    pub(crate) mail_wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("db", &self.inner.db)
            .finish_non_exhaustive()
    }
}

/// Where the server secret came from, so that start-up can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    Configured,
    GeneratedNow,
    StoredInDatabase,
}

const SECRET_SETTING: &str = "server_secret";

impl Engine {
    /// Connects, migrates and resolves the server secret.
    pub async fn start(settings: Settings) -> anyhow::Result<Engine> {
        Self::start_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Engine> {
        // Outgoing TLS (Stripe, SMTP) goes through rustls; two of the libraries behind it bring
        // different crypto back ends, so the process says which one it uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = Db::connect(&settings.database_url).await?;
        db.migrate().await?;
        let (secret, source) = resolve_secret(&db, &settings, clock.as_ref()).await?;
        match source {
            SecretSource::GeneratedNow => tracing::info!(
                "generated a server secret and stored it in the database (settings table, `{SECRET_SETTING}`); \
                 set TOLLGATE_SECRET to manage it yourself"
            ),
            SecretSource::StoredInDatabase => {
                tracing::debug!("using the server secret stored in the database")
            }
            SecretSource::Configured => {}
        }
        let passwords = PasswordHasher::new(&settings.argon2)?;
        let mailer = mail::transport(&settings)?;
        let limiter = rate_limits::Limiter::start(settings.redis_url.as_ref()).await?;
        let memory = match (settings.metering, db.kind()) {
            (MeteringStrategy::Memory, _) | (MeteringStrategy::Auto, Kind::Sqlite) => {
                Some(metering::MemoryMeter::start(db.clone()))
            }
            _ => None,
        };
        let batcher = match (&memory, db.kind()) {
            (None, Kind::Postgres) => Some(metering::DatabaseBatcher::start(db.clone())),
            _ => None,
        };
        let engine = Engine {
            inner: Arc::new(Inner {
                db,
                keys: ServerKeys::derive(&secret),
                settings,
                clock,
                passwords,
                key_uses: Mutex::new(HashMap::new()),
                catalog: RwLock::new(None),
                plan_versions: RwLock::new(HashMap::new()),
                subscriptions: RwLock::new(HashMap::new()),
                memory,
                batcher,
                limiter,
                login_failures: login_throttle::LoginFailures::default(),
                key_cache: RwLock::new(HashMap::new()),
                account_facts: RwLock::new(HashMap::new()),
                cache_generation: AtomicU64::new(0),
                holder: leases::holder_name(),
                runs_background: AtomicBool::new(false),
                authorizations: Mutex::new(None),
                revenue: tokio::sync::Mutex::new(None),
                mailer,
                mail_wake: tokio::sync::Notify::new(),
            }),
        };
        engine.ensure_catalog().await?;
        Ok(engine)
    }

    /// The store. Transports (HTTP, CLI) go through service functions instead; tests and
    /// benchmarks use it to check and prepare rows directly.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The database URL with any password hidden, for logs and the console.
    pub fn database_display(&self) -> String {
        self.inner.db.display_url()
    }

    /// Whether the database answers (the health check).
    pub async fn ping_database(&self) -> Result<(), Error> {
        Ok(self.inner.db.ping().await?)
    }

    /// Applies pending migrations without starting an engine; returns the database shown
    /// with any password hidden.
    pub async fn migrate(settings: &Settings) -> anyhow::Result<String> {
        let db = Db::connect(&settings.database_url).await?;
        db.migrate().await?;
        Ok(db.display_url())
    }
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }
    pub(crate) fn keys(&self) -> &ServerKeys {
        &self.inner.keys
    }
    pub(crate) fn passwords(&self) -> &PasswordHasher {
        &self.inner.passwords
    }
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
    pub(crate) fn now_ms(&self) -> i64 {
        store::ms(self.now())
    }

    /// Writes pending API-key "last used" times in one transaction.
    pub async fn flush_key_uses(&self) -> Result<(), Error> {
        let mut pending: Vec<(String, i64)> = {
            let mut map = self.inner.key_uses.lock().expect("key-use lock");
            map.drain().collect()
        };
        // In key order (neighbouring rows), a few hundred per transaction: metered calls
        // waiting for the write lock wait for one short transaction, not for all of them.
        pending.sort_unstable();
        for chunk in pending.chunks(KEY_USES_PER_TRANSACTION) {
            let mut tx = self.db().begin().await?;
            store::api_keys::record_last_used(&mut tx, chunk).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    pub(crate) fn note_key_use(&self, key_id: &str, at_ms: i64) {
        let mut map = self.inner.key_uses.lock().expect("key-use lock");
        let slot = map.entry(key_id.to_owned()).or_insert(at_ms);
        *slot = (*slot).max(at_ms);
    }

    /// Background work while a server runs. Every process flushes its own key uses, follows
    /// cache invalidations and sends mail (each mail is claimed by one sender); the work that
    /// must run once across processes (pending Stripe events, pruning) runs only in the holder
    /// of the upkeep lease (see `leases`).
    pub fn spawn_upkeep(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            tokio::join!(
                engine.upkeep(),
                engine.keep_upkeep_lease(),
                engine.follow_invalidations(),
                engine.run_mail_sender()
            );
        })
    }

    async fn upkeep(&self) {
        let every = std::time::Duration::from_millis(self.settings().background.lease_ms.max(300))
            .min(std::time::Duration::from_secs(15))
            / 3;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.flush_key_uses().await {
                tracing::warn!(error = %e, "could not record API key uses");
            }
            // The backstop of catalog invalidation.
            if let Err(e) = self.refresh_catalog().await {
                tracing::warn!(error = %e, "could not check for a newer plan catalog");
            }
            // Trying here too (besides the renewing task) lets the first tick do the work.
            match self.hold_upkeep_lease().await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "could not take the background lease");
                    continue;
                }
            }
            // Stripe events stored but not applied yet (a crash, an unknown customer).
            if let Err(e) = self.apply_pending_stripe_events().await {
                tracing::warn!(error = %e, "could not apply pending Stripe events");
            }
            if let Err(e) = self.prune_cache_invalidations().await {
                tracing::warn!(error = %e, "could not prune old cache invalidations");
            }
        }
    }

    /// Flushes what is buffered and closes the database.
    pub async fn shutdown(&self) {
        if let Some(b) = &self.inner.batcher {
            b.drain().await;
        }
        if let Err(e) = self.flush_key_uses().await {
            tracing::warn!(error = %e, "could not record API key uses at shutdown");
        }
        self.release_upkeep_lease().await;
        self.db().close().await;
    }
}

async fn resolve_secret(
    db: &Db,
    settings: &Settings,
    clock: &dyn Clock,
) -> anyhow::Result<(SecretString, SecretSource)> {
    if let Some(secret) = &settings.secret {
        anyhow::ensure!(
            secret.expose().len() >= 16,
            "TOLLGATE_SECRET is too short: use at least 16 characters (32 random bytes recommended)"
        );
        return Ok((secret.clone(), SecretSource::Configured));
    }
    if db.kind() == Kind::Postgres {
        anyhow::bail!(
            "TOLLGATE_SECRET is required with PostgreSQL: every instance must sign and hash with the same secret"
        );
    }
    if let Some(stored) = store::settings::get(db.read(), SECRET_SETTING).await? {
        return Ok((SecretString::new(stored), SecretSource::StoredInDatabase));
    }
    let fresh = crypto::random_token(48);
    let kept =
        store::settings::get_or_insert(db.write(), SECRET_SETTING, &fresh, store::ms(clock.now()))
            .await?;
    let source = if kept == fresh {
        SecretSource::GeneratedNow
    } else {
        SecretSource::StoredInDatabase
    };
    Ok((SecretString::new(kept), source))
}
