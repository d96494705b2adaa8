//! The home figures of the back office, read from counts that the database keeps in step with
//! every change (see `store::stats`), and the recount that checks and repairs those counts.

use super::admin::{Count, DayCount, Stats};
use super::Engine;
use crate::error::Result;
use crate::store::{self, at, ms};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::HashMap;

const DAY_MS: i64 = 86_400_000;

/// A stored figure that differs from its recount.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatDrift {
    /// `users_status`, `users_role`, `users_plan`, `signups`, `active_users`, `refusals`, or
    /// `user_active_days` (the per-user days behind `active_users`).
    pub stat: String,
    pub key: String,
    pub day: Option<NaiveDate>,
    pub stored: i64,
    pub expected: i64,
}

impl Engine {
    /// The home figures over the last `days` days (today included), from the maintained
    /// counts: a few hundred rows at most, whatever the number of users.
    pub(crate) async fn home_stats(&self, days: i64) -> Result<Stats> {
        let today = ms(self.now()).div_euclid(DAY_MS) * DAY_MS;
        let since = today - (days - 1) * DAY_MS;
        let pool = self.db().read();
        let rows = store::stats::home(pool, since, today).await?;
        let per = |stat: &str| -> Vec<Count> {
            rows.iter()
                .filter(|r| r.0 == stat && r.3 != 0)
                .map(|r| Count {
                    name: r.1.clone(),
                    count: r.3,
                })
                .collect()
        };
        let daily = |stat: &str| -> Vec<DayCount> {
            rows.iter()
                .filter(|r| r.0 == stat && r.3 != 0)
                .map(|r| DayCount {
                    date: at(r.2).date_naive(),
                    count: r.3,
                })
                .collect()
        };
        let by_status = per("users_status");
        let status = |s: &str| {
            by_status
                .iter()
                .find(|c| c.name == s)
                .map_or(0, |c| c.count)
        };
        let mut refusals_today = per("refusals");
        refusals_today.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
        Ok(Stats {
            users_total: by_status.iter().map(|c| c.count).sum(),
            users_active: status("active"),
            users_suspended: status("suspended"),
            users_deleted: status("deleted"),
            users_per_plan: store::stats::users_per_plan(pool)
                .await?
                .into_iter()
                .map(|(name, count)| Count { name, count })
                .collect(),
            users_per_role: per("users_role"),
            signups_per_day: daily("signups"),
            active_users_per_day: daily("active_users"),
            refusals_today,
        })
    }

    /// Recounts the home figures from users, subscriptions, refusals and usage events and
    /// reports each stored figure that differs; with `repair`, rewrites them all from the
    /// recount (audited).
    pub async fn verify_stats(&self, repair: bool, actor: &str) -> Result<Vec<StatDrift>> {
        let pool = self.db().read();
        let stored: HashMap<(String, String, i64), i64> = store::stats::stored(pool)
            .await?
            .into_iter()
            .map(|(s, k, d, n)| ((s, k, d), n))
            .collect();
        let expected: HashMap<(String, String, i64), i64> = store::stats::recount(pool)
            .await?
            .into_iter()
            .map(|(s, k, d, n)| ((s, k, d), n))
            .collect();
        let mut drifts = Vec::new();
        let day = |d: i64| (d != 0).then(|| at(d).date_naive());
        for (key, n) in &stored {
            let want = expected.get(key).copied().unwrap_or(0);
            if *n != want {
                drifts.push(StatDrift {
                    stat: key.0.clone(),
                    key: key.1.clone(),
                    day: day(key.2),
                    stored: *n,
                    expected: want,
                });
            }
        }
        for (key, want) in &expected {
            if !stored.contains_key(key) && *want != 0 {
                drifts.push(StatDrift {
                    stat: key.0.clone(),
                    key: key.1.clone(),
                    day: day(key.2),
                    stored: 0,
                    expected: *want,
                });
            }
        }
        let (spurious, missing) = store::stats::active_days_mismatch(pool).await?;
        for (key, n) in [("without_consumption", spurious), ("missing", missing)] {
            if n != 0 {
                drifts.push(StatDrift {
                    stat: "user_active_days".into(),
                    key: key.into(),
                    day: None,
                    stored: n,
                    expected: 0,
                });
            }
        }
        drifts.sort_by(|a, b| (&a.stat, &a.key, a.day).cmp(&(&b.stat, &b.key, b.day)));
        if repair && !drifts.is_empty() {
            let mut tx = self.db().begin().await?;
            store::stats::rebuild(&mut tx, self.db().kind()).await?;
            self.audit_repair(&mut tx, actor, "stats.repair", "stat_counts", &drifts)
                .await?;
            tx.commit().await?;
        }
        Ok(drifts)
    }

    /// Audits a repair of maintained counts in the repair's transaction: what drifted, and who
    /// repaired it (`usage verify --repair`).
    pub(super) async fn audit_repair(
        &self,
        tx: &mut store::Tx,
        actor: &str,
        action: &str,
        target: &str,
        drifts: &impl Serialize,
    ) -> Result<()> {
        store::audit::insert(
            tx,
            &store::audit::NewAudit {
                actor,
                action,
                target,
                before: &serde_json::to_string(drifts).unwrap_or_default(),
                after: "{}",
                reason: None,
                ip: None,
                at: self.now_ms(),
            },
        )
        .await?;
        Ok(())
    }
}
