//! Background work that runs in one process at a time, however many share the database.
//!
//! Each process tries to take or renew the lease [`UPKEEP_LEASE`] every third of its
//! duration (`TOLLGATE_BACKGROUND__LEASE_MS`); the holder runs the leased work, the others
//! wait. When the holder dies, its lease expires and the next process to try takes it. A
//! process that stops cleanly gives the lease up at once. Times are the wall clock, not the
//! engine's clock: a lease is about processes being alive.

use super::{crypto, Engine};
use crate::error::Result;
use crate::store::{leases, ms};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The lease on the shared upkeep: pending Stripe events, pruning.
pub const UPKEEP_LEASE: &str = "upkeep";

/// Who holds a lease, as the `background_leases` table shows it.
pub use crate::store::leases::LeaseRow as Lease;

/// This process's name in lease rows: host, process id and a random part (process ids are
/// reused).
pub(crate) fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}:{}", std::process::id(), crypto::random_base62(6))
}

fn wall_ms() -> i64 {
    ms(chrono::Utc::now())
}

impl Engine {
    /// This process's name in lease rows.
    pub fn lease_holder_name(&self) -> &str {
        &self.inner.holder
    }

    /// Whether this process held the upkeep lease at its last attempt.
    pub fn runs_background_work(&self) -> bool {
        self.inner.runs_background.load(Ordering::Acquire)
    }

    fn lease_duration(&self) -> Duration {
        Duration::from_millis(self.settings().background.lease_ms.max(300))
    }

    /// Takes or renews the upkeep lease; true when this process holds it.
    pub async fn hold_upkeep_lease(&self) -> Result<bool> {
        let now = wall_ms();
        let until = now + self.lease_duration().as_millis() as i64;
        let held = leases::take_or_renew(
            self.db().write(),
            UPKEEP_LEASE,
            &self.inner.holder,
            now,
            until,
        )
        .await?;
        let before = self.inner.runs_background.swap(held, Ordering::AcqRel);
        if held && !before {
            tracing::info!(holder = %self.inner.holder, "this process now runs the background work");
        } else if !held && before {
            tracing::warn!(holder = %self.inner.holder, "another process took over the background work");
        }
        Ok(held)
    }

    /// Who holds a lease now (expired or not).
    pub async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        Ok(leases::find(self.db().read(), name).await?)
    }

    /// Gives the upkeep lease up, if this process holds it.
    pub(crate) async fn release_upkeep_lease(&self) {
        if self.inner.runs_background.swap(false, Ordering::AcqRel) {
            if let Err(e) =
                leases::release(self.db().write(), UPKEEP_LEASE, &self.inner.holder).await
            {
                tracing::warn!(error = %e, "could not give up the background lease");
            }
        }
    }

    /// Keeps trying for the lease and renews it while held, until the task is aborted. Losing
    /// the database counts as losing the lease.
    pub(crate) async fn keep_upkeep_lease(&self) {
        let mut tick = tokio::time::interval(self.lease_duration() / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.hold_upkeep_lease().await {
                tracing::warn!(error = %e, "could not renew the background lease");
                self.inner.runs_background.store(false, Ordering::Release);
            }
        }
    }
}
