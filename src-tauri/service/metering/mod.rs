//! Metering: `check_and_consume` decides whether a unit of work is allowed, and records it.
//!
//! Two strategies sit behind one interface:
//! - **memory** (one process, the SQLite default): counters and balances are authoritative in
//!   memory, loaded on first use; each consumption is appended to a queue that one writer task
//!   commits in batches (group commit) before the request is answered.
//! - **database** (several processes sharing PostgreSQL): the atomic step is a guarded upsert
//!   (`used + n <= limit`) in a transaction with the usage event. On PostgreSQL, quota
//!   consumptions are committed in batches by one task per process (`database_batch`): a
//!   batch costs a fixed number of statements whatever its size.
//!
//! Credit metrics keep one balance per user and metric. Their usage events carry
//! `period_start = -1` ([`CREDIT_PERIOD`]) so that verification can tell them apart.

mod corrections;
mod credits;
mod database;
mod database_batch;
mod memory;
mod strategy;
mod summary;
mod verify;

pub use database_batch::BatchTotals;
pub(crate) use database_batch::DatabaseBatcher;
pub(crate) use memory::MemoryMeter;
pub use strategy::Strategy;
pub use summary::{DailyUsage, MetricUsage, UsageSummary};
pub use verify::Drift;

use super::subscriptions::Resolved;
use crate::error::{Error, InsufficientCredits, QuotaExceeded, Result};
use crate::plans::periods::Window;
use crate::plans::rules::{self, Credits, Denial, Rule};
use crate::store::{usage, AnyConn};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Marks usage events of credit metrics (which have balances, not windows).
pub const CREDIT_PERIOD: i64 = -1;

pub struct MeterRequest<'a> {
    pub metric: &'a str,
    pub amount: i64,
    pub idempotency_key: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// The answer to an allowed consumption; a retry with the same idempotency key gets it again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Consumption {
    pub event_id: String,
    pub metric: String,
    pub amount: i64,
    pub used: i64,
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
    pub unlimited: bool,
    pub resets_at: DateTime<Utc>,
    /// Credit balance after this consumption (credit metrics only).
    pub credits: Option<i64>,
    /// True when this answer repeats an earlier one (same idempotency key).
    #[serde(default)]
    pub replayed: bool,
}

/// The rule of `metric` on the plan in force for a subscription, in its billing period; a
/// metric the catalog does not declare is an error.
pub(crate) fn plan_rule(
    r: &Resolved,
    declared: &[String],
    metric: &str,
    now: DateTime<Utc>,
) -> Result<Rule> {
    rules::rule_for(&r.effective.plan, declared, metric, now, r.billing)
        .ok_or_else(|| Error::UnknownMetric(metric.to_owned()))
}

/// Writes a usage event that answers no request of its own (grants, expiries, resets,
/// releases).
#[allow(clippy::too_many_arguments)]
async fn record_event(
    tx: &mut AnyConn,
    user: &str,
    metric: &str,
    kind: &str,
    amount: i64,
    at: i64,
    period_start: i64,
    request_id: Option<&str>,
) -> std::result::Result<bool, sqlx::Error> {
    let id = new_event_id();
    let event = usage::NewEvent {
        id: &id,
        user_id: user,
        metric,
        kind,
        amount,
        at,
        period_start,
        request_id,
        idempotency_key: None,
        answer: None,
        plan_version_id: None,
    };
    usage::insert_event(tx, &event).await
}

fn new_event_id() -> String {
    crate::domain::ids::UsageEventId::new().into()
}

/// The refusal a rule gave, as the error the caller sees (the upgrade hint is added later).
fn refusal(r: &Resolved, metric: &str, amount: i64, window: Window, denial: Denial) -> Error {
    match denial {
        Denial::QuotaExceeded { limit, used } => Error::QuotaExceeded(Box::new(QuotaExceeded {
            metric: metric.to_owned(),
            plan: r.effective.plan_id.clone(),
            limit,
            used,
            remaining: (limit - used).max(0),
            requested: amount,
            resets_at: window.end,
            upgrade_to: None,
        })),
        Denial::InsufficientCredits { balance } => {
            Error::InsufficientCredits(Box::new(InsufficientCredits {
                metric: metric.to_owned(),
                plan: r.effective.plan_id.clone(),
                needed: amount,
                balance,
                renews_at: window.end,
                upgrade_to: None,
            }))
        }
    }
}

fn limit_answer(
    event_id: String,
    metric: &str,
    amount: i64,
    used: i64,
    limit: Option<i64>,
    window: Window,
) -> Consumption {
    Consumption {
        event_id,
        metric: metric.to_owned(),
        amount,
        used,
        limit,
        remaining: limit.map(|l| (l - used).max(0)),
        unlimited: limit.is_none(),
        resets_at: window.end,
        credits: None,
        replayed: false,
    }
}

fn credit_answer(
    event_id: String,
    metric: &str,
    amount: i64,
    balance: i64,
    allowance: i64,
    window: Window,
) -> Consumption {
    Consumption {
        event_id,
        metric: metric.to_owned(),
        amount,
        used: rules::credits_used(allowance, balance),
        limit: Some(allowance),
        remaining: Some(balance),
        unlimited: false,
        resets_at: window.end,
        credits: Some(balance),
        replayed: false,
    }
}

impl super::Engine {
    /// The rule of `metric` on the user's plan at this moment, and the moment.
    async fn rule_now(
        &self,
        user: &crate::domain::UserId,
        metric: &str,
    ) -> Result<(Rule, DateTime<Utc>)> {
        let r = self.resolve_subscription(user).await?;
        let catalog = self.catalog().await?;
        let now = self.now();
        let rule = plan_rule(&r, &catalog.catalog.metrics, metric, now)?;
        Ok((rule, now))
    }
}

fn stored_credits(row: usage::CreditRow) -> Credits {
    Credits {
        balance: row.balance,
        granted_for: row.granted_for,
    }
}

fn replay(answer: &str) -> Result<Consumption> {
    let mut c: Consumption = serde_json::from_str(answer).map_err(|e| Error::Internal(e.into()))?;
    c.replayed = true;
    Ok(c)
}
