//! What the HTTP API has been answering: request rate and errors (the counters `/metrics`
//! exports) with the latest refusals the engine recorded.

use super::admin::Actor;
use super::decisions::Decision;
use super::permissions::Action;
use super::Engine;
use crate::error::{Error, Result};
use crate::store::{usage, PoolSize};
use serde::Serialize;

/// How many of something: an HTTP status (`"429"`) or an error code (`"quota_exceeded"`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct ErrorCount {
    pub key: String,
    pub count: i64,
}

/// A server's request counters since it started.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct RequestCounts {
    pub requests: i64,
    /// Requests per second over the last ten seconds.
    pub requests_per_second: f64,
    /// Answers with status 400 or more, by status.
    pub errors_by_status: Vec<ErrorCount>,
    /// Error answers by their `error.code`.
    pub errors_by_code: Vec<ErrorCount>,
}

/// The counters and the latest refusals.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct Traffic {
    #[serde(flatten)]
    pub counts: RequestCounts,
    /// Newest first.
    pub latest_refusals: Vec<Decision>,
}

/// At most this many refusals per answer.
pub const MAX_REFUSALS: i64 = 200;

/// What the engine holds at one moment, for the gauges `/metrics` exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gauges {
    /// The database's connection pools.
    pub pools: Vec<PoolSize>,
    /// Batches of usage waiting for the group commit (memory metering only).
    pub meter_write_queue: Option<usize>,
    /// Quota counters held in memory (memory metering only).
    pub meter_counters: Option<usize>,
    /// What the database strategy's group commit has done (PostgreSQL only).
    pub meter_batches: Option<super::metering::BatchTotals>,
    /// Where rate limits are counted (Redis, or this instance alone while Redis is away).
    pub rate_limits: super::rate_limits::RateLimitBackend,
}

impl Engine {
    /// The engine's gauges now (no database round trip).
    pub fn gauges(&self) -> Gauges {
        Gauges {
            pools: self.db().pool_sizes(),
            meter_write_queue: self.inner.memory.as_ref().map(|m| m.waiting()),
            meter_counters: self.inner.memory.as_ref().map(|m| m.held_counters()),
            meter_batches: self.inner.batcher.as_ref().map(|b| b.totals()),
            rate_limits: self.rate_limit_backend(),
        }
    }

    /// `counts` (read from the server's metrics) with the latest `limit` refusals (20 default).
    pub async fn admin_traffic(
        &self,
        actor: &Actor,
        counts: RequestCounts,
        limit: Option<i64>,
    ) -> Result<Traffic> {
        self.authorize(actor, Action::ViewStats)?;
        let limit = limit.unwrap_or(20);
        if !(1..=MAX_REFUSALS).contains(&limit) {
            return Err(Error::validation(
                "limit",
                "out_of_range",
                &format!("limit must be between 1 and {MAX_REFUSALS}"),
            ));
        }
        let rows = usage::latest_decisions(self.db().read(), limit).await?;
        Ok(Traffic {
            counts,
            latest_refusals: rows.into_iter().map(Decision::from).collect(),
        })
    }
}
