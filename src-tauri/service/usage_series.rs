//! Usage over time for the back office's Usage screen: the platform's usage of a metric
//! stacked by plan, or one user's, per day (per hour for ranges under three days), read from
//! the rollups the database keeps in step with every usage event (`store::usage_rollups`).
//! Also the recount that checks and repairs those rollups.

use super::admin::Actor;
use super::permissions::Action;
use super::Engine;
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::store::usage_rollups::{self, Bucket, Rollup, RollupRow};
use crate::store::{at, ms};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The longest range a series covers: a year and a day.
pub const MAX_DAYS: i64 = 366;

/// `GET /v1/admin/usage/series`: which usage, over which days.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
#[into_params(parameter_in = Query)]
pub struct UsageSeriesQuery {
    /// The metric; the catalog's first metric by default.
    pub metric: Option<String>,
    /// One user's usage instead of the whole platform's.
    pub user_id: Option<String>,
    /// First UTC day, inclusive; 29 days before `to` by default.
    pub from: Option<NaiveDate>,
    /// Last UTC day, inclusive; today by default.
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub enum Grain {
    Hour,
    Day,
}

/// A usage series: every line and the table share `buckets`, one value per bucket.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct UsageSeries {
    pub metric: String,
    /// Set when the series is one user's.
    pub user_id: Option<String>,
    /// `hour` for ranges under three days, `day` otherwise.
    pub grain: Grain,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Each bucket's start (UTC), oldest first, empty buckets included.
    pub buckets: Vec<DateTime<Utc>>,
    /// Net usage per plan, to stack (the platform); one line without a plan for a user.
    pub lines: Vec<UsageLine>,
    /// The table under the chart: all plans together, per bucket.
    pub rows: Vec<UsageRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct UsageLine {
    /// The plan the usage was counted under; none for a user's series.
    pub plan_id: Option<String>,
    /// Consumed minus released, per bucket.
    pub net: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct UsageRow {
    pub at: DateTime<Utc>,
    /// Units consumed.
    pub consumed: i64,
    /// Units given back by releases (refunded consumptions).
    pub released: i64,
    /// Units forgiven by staff resets.
    pub reset: i64,
    /// `consumed - released`.
    pub net: i64,
}

/// A stored rollup row that differs from its recount from the usage events.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RollupDrift {
    /// `usage_hourly`, `usage_daily` or `usage_user_daily`.
    pub table: &'static str,
    /// The plan version, or the user.
    pub owner: String,
    pub metric: String,
    pub bucket: DateTime<Utc>,
    pub kind: String,
    /// (amount, events) stored and recounted.
    pub stored: (i64, i64),
    pub expected: (i64, i64),
}

fn bad_range(message: &str) -> Error {
    Error::validation("range", "invalid", message)
}

impl Engine {
    /// The usage series a chart and its table draw. Staff who may see the home figures may see
    /// usage (`ViewStats`); a user's series also needs `ViewUser`.
    pub async fn admin_usage_series(
        &self,
        actor: &Actor,
        q: &UsageSeriesQuery,
    ) -> Result<UsageSeries> {
        self.authorize(actor, Action::ViewStats)?;
        let today = self.now().date_naive();
        let to = q.to.unwrap_or(today);
        let from = q.from.unwrap_or(to - Duration::days(29));
        if from > to {
            return Err(bad_range("`from` must not be after `to`"));
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_DAYS {
            return Err(bad_range("a series covers at most 366 days"));
        }
        let catalog = self.catalog().await?;
        let metric = match &q.metric {
            Some(m) if catalog.catalog.metrics.contains(m) => m.clone(),
            Some(_) => {
                return Err(Error::validation(
                    "metric",
                    "unknown",
                    "the catalog has no such metric",
                ))
            }
            None => catalog
                .catalog
                .metrics
                .first()
                .cloned()
                .ok_or(Error::NotFound("metric"))?,
        };
        let grain = if days < 3 { Grain::Hour } else { Grain::Day };
        let width = match grain {
            Grain::Hour => 3_600_000,
            Grain::Day => 86_400_000,
        };
        let start = ms(from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
        let end = start + days * 86_400_000;
        let pool = self.db().read();
        let user = match &q.user_id {
            Some(id) => {
                self.authorize(actor, Action::ViewUser)?;
                let id = UserId::parse(id)?;
                self.user(&id).await?;
                Some(id)
            }
            None => None,
        };
        let found: Vec<Bucket> = match (&user, grain) {
            (Some(u), Grain::Hour) => {
                usage_rollups::user_hourly(pool, u.as_str(), &metric, start, end).await?
            }
            (Some(u), Grain::Day) => {
                usage_rollups::user_daily(pool, u.as_str(), &metric, start, end).await?
            }
            (None, Grain::Hour) => {
                usage_rollups::platform(pool, Rollup::Hourly, &metric, start, end).await?
            }
            (None, Grain::Day) => {
                usage_rollups::platform(pool, Rollup::Daily, &metric, start, end).await?
            }
        };
        let n = ((end - start) / width) as usize;
        let slot = |t: i64| ((t - start) / width) as usize;
        let mut rows: Vec<UsageRow> = (0..n)
            .map(|i| UsageRow {
                at: at(start + i as i64 * width),
                consumed: 0,
                released: 0,
                reset: 0,
                net: 0,
            })
            .collect();
        let mut lines: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (t, plan, kind, amount) in &found {
            let i = slot(*t);
            let Some(row) = rows.get_mut(i) else { continue };
            let net = match kind.as_str() {
                "consume" => {
                    row.consumed += amount;
                    *amount
                }
                "release" => {
                    row.released -= amount;
                    *amount
                }
                "reset" => {
                    row.reset -= amount;
                    0
                }
                _ => 0,
            };
            row.net += net;
            if net != 0 || kind == "consume" {
                lines.entry(plan.clone()).or_insert_with(|| vec![0; n])[i] += net;
            }
        }
        let lines = if user.is_some() {
            vec![UsageLine {
                plan_id: None,
                net: rows.iter().map(|r| r.net).collect(),
            }]
        } else {
            lines
                .into_iter()
                .map(|(plan, net)| UsageLine {
                    plan_id: Some(plan),
                    net,
                })
                .collect()
        };
        Ok(UsageSeries {
            metric,
            user_id: user.map(|u| u.to_string()),
            grain,
            from,
            to,
            buckets: rows.iter().map(|r| r.at).collect(),
            lines,
            rows,
        })
    }

    /// Recounts the usage rollups from the usage events and reports each stored row that
    /// differs; with `repair`, rewrites them all from the events (audited).
    pub async fn verify_usage_rollups(
        &self,
        repair: bool,
        actor: &str,
    ) -> Result<Vec<RollupDrift>> {
        let pool = self.db().read();
        let mut drifts = Vec::new();
        for rollup in Rollup::ALL {
            let key = |r: &RollupRow| (r.0.clone(), r.1.clone(), r.2, r.3.clone());
            let stored: HashMap<_, _> = usage_rollups::stored(pool, rollup)
                .await?
                .into_iter()
                .map(|r| (key(&r), (r.4, r.5)))
                .collect();
            let expected: HashMap<_, _> = usage_rollups::recount(pool, rollup)
                .await?
                .into_iter()
                .map(|r| (key(&r), (r.4, r.5)))
                .collect();
            let mut push = |k: &(String, String, i64, String), s: (i64, i64), e: (i64, i64)| {
                drifts.push(RollupDrift {
                    table: rollup.table(),
                    owner: k.0.clone(),
                    metric: k.1.clone(),
                    bucket: at(k.2),
                    kind: k.3.clone(),
                    stored: s,
                    expected: e,
                })
            };
            for (k, s) in &stored {
                let e = expected.get(k).copied().unwrap_or((0, 0));
                if *s != e {
                    push(k, *s, e);
                }
            }
            for (k, e) in &expected {
                if !stored.contains_key(k) && *e != (0, 0) {
                    push(k, (0, 0), *e);
                }
            }
        }
        drifts.sort_by(|a, b| {
            (a.table, &a.owner, &a.metric, a.bucket, &a.kind)
                .cmp(&(b.table, &b.owner, &b.metric, b.bucket, &b.kind))
        });
        if repair && !drifts.is_empty() {
            let mut tx = self.db().begin().await?;
            usage_rollups::rebuild(&mut tx, self.db().kind()).await?;
            self.audit_repair(
                &mut tx,
                actor,
                "usage.rollups.repair",
                "usage_rollups",
                &drifts,
            )
            .await?;
            tx.commit().await?;
        }
        Ok(drifts)
    }
}
