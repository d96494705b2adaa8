//! What a user has used: the current windows (`GET /v1/me/usage`) and daily history.

use super::{plan_rule, stored_credits};
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::periods::{self, Window};
use crate::plans::rules::{self, Credits, Rule};
use crate::plans::Per;
use crate::service::Engine;
use crate::store::{at, ms, usage};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// One row of `GET /v1/me/usage`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct MetricUsage {
    pub limit: Option<i64>,
    pub used: i64,
    pub remaining: Option<i64>,
    pub unlimited: bool,
    pub resets_at: DateTime<Utc>,
    pub per: String,
    /// Credit balance (credit metrics only).
    pub credits: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct UsageSummary {
    pub plan: String,
    pub period: Window,
    pub metrics: BTreeMap<String, MetricUsage>,
    pub credits: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DailyUsage {
    pub date: chrono::NaiveDate,
    pub metric: String,
    pub used: i64,
}

impl Engine {
    /// Current use of one metric, from memory when this process holds it.
    async fn current_use(&self, uid: &str, metric: &str, rule: Rule) -> Result<(i64, Option<i64>)> {
        match rule {
            Rule::Limit { window, .. } => {
                if let Some(m) = &self.inner.memory {
                    if let Some(v) = m.lock().counters.get(&(
                        uid.to_owned(),
                        metric.to_owned(),
                        ms(window.start),
                    )) {
                        return Ok((v.used, None));
                    }
                }
                Ok((
                    usage::counter(self.db().read(), uid, metric, ms(window.start))
                        .await?
                        .unwrap_or(0),
                    None,
                ))
            }
            Rule::Credits {
                allowance,
                rollover,
                window,
            } => {
                let stored = match self.inner.memory.as_ref().and_then(|m| {
                    m.lock()
                        .credits
                        .get(&(uid.to_owned(), metric.to_owned()))
                        .copied()
                }) {
                    Some(v) => v,
                    None => usage::credits(self.db().read(), uid, metric, false)
                        .await?
                        .map(stored_credits)
                        .unwrap_or(Credits::EMPTY),
                };
                let balance = rules::renew_credits(stored, allowance, rollover, window)
                    .credits
                    .balance;
                Ok((rules::credits_used(allowance, balance), Some(balance)))
            }
        }
    }

    /// Usage of every metric in the current windows, for the user and for staff.
    pub async fn usage_summary(&self, user: &UserId) -> Result<UsageSummary> {
        let r = self.resolve_subscription(user).await?;
        let catalog = self.catalog().await?;
        let now = self.now();
        let mut metrics = BTreeMap::new();
        let mut credits = BTreeMap::new();
        for metric in &catalog.catalog.metrics {
            let rule = plan_rule(&r, &catalog.catalog.metrics, metric, now)?;
            let (used, balance) = self.current_use(user.as_str(), metric, rule).await?;
            let limit = match rule {
                Rule::Limit { limit, .. } => limit,
                Rule::Credits { allowance, .. } => Some(allowance),
            };
            let window = rule.window();
            let per = rules::per_of(&r.effective.plan, metric).as_str().to_owned();
            if let Some(b) = balance {
                credits.insert(metric.clone(), b);
            }
            metrics.insert(
                metric.clone(),
                MetricUsage {
                    limit,
                    used,
                    remaining: balance.or(limit.map(|l| (l - used).max(0))),
                    unlimited: limit.is_none(),
                    resets_at: window.end,
                    per,
                    credits: balance,
                },
            );
        }
        Ok(UsageSummary {
            plan: r.effective.label(),
            period: r.billing,
            metrics,
            credits,
        })
    }

    /// Net use per UTC day over the last `days` days.
    pub async fn usage_history(
        &self,
        user: &UserId,
        days: i64,
        metric: Option<&str>,
    ) -> Result<Vec<DailyUsage>> {
        if !(1..=366).contains(&days) {
            return Err(Error::validation(
                "days",
                "out_of_range",
                "days must be between 1 and 366",
            ));
        }
        if let Some(m) = metric {
            if !self.catalog().await?.catalog.metrics.iter().any(|x| x == m) {
                return Err(Error::UnknownMetric(m.to_owned()));
            }
        }
        let today = periods::window(
            Per::Day,
            self.now(),
            Window {
                start: self.now(),
                end: self.now(),
            },
        )
        .start;
        let since = today - chrono::Duration::days(days - 1);
        let rows = usage::daily_history(self.db().read(), user.as_str(), ms(since), metric).await?;
        Ok(rows
            .into_iter()
            .map(|(metric, day, used)| DailyUsage {
                date: at(day).date_naive(),
                metric,
                used,
            })
            .collect())
    }
}
