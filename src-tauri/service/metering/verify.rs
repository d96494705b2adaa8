//! Verify and repair: rebuilds every counter and balance from the usage events.

use crate::domain::UserId;
use crate::error::Result;
use crate::service::Engine;
use crate::store::{at, ms, usage};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// A counter or balance that does not match the events it is derived from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Drift {
    pub user_id: UserId,
    pub metric: String,
    /// `None` for credit balances.
    pub period_start: Option<DateTime<Utc>>,
    pub stored: i64,
    pub expected: i64,
}

impl Engine {
    /// Rebuilds every counter and balance from the usage events and reports what differs;
    /// with `repair`, writes the rebuilt values (audited).
    pub async fn verify_usage(&self, repair: bool, actor: &str) -> Result<Vec<Drift>> {
        let stored: HashMap<(UserId, String, i64), (i64, i64)> =
            usage::all_counters(self.db().read())
                .await?
                .into_iter()
                .map(|c| {
                    (
                        (c.user_id, c.metric, c.period_start),
                        (c.used, c.period_end),
                    )
                })
                .collect();
        let expected: HashMap<(UserId, String, i64), i64> =
            usage::counters_from_events(self.db().read())
                .await?
                .into_iter()
                .map(|(u, m, p, n)| ((u, m, p), n))
                .collect();
        let mut drifts = Vec::new();
        for (key, (used, _)) in &stored {
            let want = expected.get(key).copied().unwrap_or(0);
            if *used != want {
                drifts.push(Drift {
                    user_id: key.0.clone(),
                    metric: key.1.clone(),
                    period_start: Some(at(key.2)),
                    stored: *used,
                    expected: want,
                });
            }
        }
        for (key, want) in &expected {
            if !stored.contains_key(key) && *want != 0 {
                drifts.push(Drift {
                    user_id: key.0.clone(),
                    metric: key.1.clone(),
                    period_start: Some(at(key.2)),
                    stored: 0,
                    expected: *want,
                });
            }
        }
        let balances: HashMap<(UserId, String), i64> = usage::all_credits(self.db().read())
            .await?
            .into_iter()
            .map(|(u, m, b)| ((u, m), b))
            .collect();
        let want_balances: HashMap<(UserId, String), i64> =
            usage::credits_from_events(self.db().read())
                .await?
                .into_iter()
                .map(|(u, m, b)| ((u, m), b))
                .collect();
        for (key, b) in &balances {
            let want = want_balances.get(key).copied().unwrap_or(0);
            if *b != want {
                drifts.push(Drift {
                    user_id: key.0.clone(),
                    metric: key.1.clone(),
                    period_start: None,
                    stored: *b,
                    expected: want,
                });
            }
        }
        drifts.sort_by(|a, b| {
            (&a.user_id, &a.metric, a.period_start).cmp(&(&b.user_id, &b.metric, b.period_start))
        });
        if repair && !drifts.is_empty() {
            let mut tx = self.db().begin().await?;
            for d in &drifts {
                match d.period_start {
                    Some(p) => {
                        let end = stored
                            .get(&(d.user_id.clone(), d.metric.clone(), ms(p)))
                            .map(|x| x.1)
                            .unwrap_or(ms(p));
                        usage::set_counter(&mut tx, &d.user_id, &d.metric, ms(p), end, d.expected)
                            .await?;
                    }
                    None => usage::set_balance(&mut tx, &d.user_id, &d.metric, d.expected).await?,
                }
            }
            crate::store::audit::insert(
                &mut tx,
                &crate::store::audit::NewAudit {
                    actor,
                    action: "usage.repair",
                    target: "usage_counters",
                    before: &serde_json::to_string(
                        &drifts.iter().map(|d| d.stored).collect::<Vec<_>>(),
                    )
                    .unwrap_or_default(),
                    after: &serde_json::to_string(&drifts).unwrap_or_default(),
                    reason: None,
                    ip: None,
                    at: self.now_ms(),
                },
            )
            .await?;
            tx.commit().await?;
            for d in &drifts {
                self.forget_counters(&d.user_id);
            }
        }
        Ok(drifts)
    }
}
