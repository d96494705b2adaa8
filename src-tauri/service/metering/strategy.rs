//! The strategy interface: validates a consumption, resolves the rule, and hands it to the
//! memory or the database strategy.

use super::{plan_rule, Consumption, MeterRequest};
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::rules::Rule;
use crate::service::Engine;

/// The strategy names are configuration (`TOLLGATE_METERING`); the metering API keeps its name.
pub use crate::config::MeteringStrategy as Strategy;

impl Engine {
    pub fn meter_strategy(&self) -> Strategy {
        if self.inner.memory.is_some() {
            Strategy::Memory
        } else {
            Strategy::Database
        }
    }

    /// Decides and records one consumption atomically: usage never passes the limit, also
    /// under concurrency; a repeated idempotency key returns the first answer.
    #[tracing::instrument(level = "debug", skip(self, req), fields(metric = req.metric, amount = req.amount))]
    pub async fn check_and_consume(
        &self,
        user: &UserId,
        req: MeterRequest<'_>,
    ) -> Result<Consumption> {
        if req.amount <= 0 || req.amount > 1_000_000 {
            return Err(Error::validation(
                "amount",
                "out_of_range",
                "amount must be between 1 and 1000000",
            ));
        }
        if let Some(k) = req.idempotency_key {
            if k.is_empty() || k.len() > 255 {
                return Err(Error::validation(
                    "idempotency_key",
                    "invalid",
                    "idempotency_key must be 1 to 255 characters",
                ));
            }
        }
        let resolved = self.resolve_subscription(user).await?;
        let catalog = self.catalog().await?;
        let now = self.now();
        let rule = plan_rule(&resolved, &catalog.catalog.metrics, req.metric, now)?;
        let result = match &self.inner.memory {
            Some(m) => {
                self.consume_in_memory(m, user, &resolved, rule, &req, now)
                    .await
            }
            None => match (&self.inner.batcher, rule) {
                (Some(b), Rule::Limit { limit, window }) => {
                    self.consume_in_batch(b, user, &resolved, limit, window, &req, now)
                        .await
                }
                _ => {
                    self.consume_in_database(user, &resolved, rule, &req, now)
                        .await
                }
            },
        };
        // The upgrade hint is worked out only for refusals, off the hot path.
        let upgrade = || {
            catalog
                .catalog
                .cheapest_upgrade_for(req.metric, &resolved.effective.plan)
                .map(|p| p.id.clone())
        };
        result.map_err(|e| match e {
            Error::QuotaExceeded(mut d) => {
                d.upgrade_to = upgrade();
                Error::QuotaExceeded(d)
            }
            Error::InsufficientCredits(mut d) => {
                d.upgrade_to = upgrade();
                Error::InsufficientCredits(d)
            }
            other => other,
        })
    }
}
