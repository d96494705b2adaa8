//! The database strategy: the atomic step is one guarded upsert (`used + n <= limit`) in a
//! transaction with the usage event, so several processes can share PostgreSQL.

use super::{credit_answer, limit_answer, new_event_id, refusal, replay};
use super::{Consumption, MeterRequest, CREDIT_PERIOD};
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::rules::{Denial, Rule};
use crate::service::subscriptions::Resolved;
use crate::service::Engine;
use crate::store::{ms, usage};
use chrono::{DateTime, Utc};

impl Engine {
    pub(super) async fn consume_in_database(
        &self,
        user: &UserId,
        r: &Resolved,
        rule: Rule,
        req: &MeterRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Consumption> {
        let uid = user.as_str();
        let event_id = new_event_id();
        let mut tx = self.db().begin().await?;
        if let Some(k) = req.idempotency_key {
            if let Some(ev) = usage::event_by_key(&mut *tx, uid, k).await? {
                return replay(ev.answer.as_deref().unwrap_or("{}"));
            }
        }
        let (answer, period_start) = match rule {
            Rule::Limit { limit, window } => {
                let start = ms(window.start);
                match usage::add_within(
                    &mut tx,
                    uid,
                    req.metric,
                    start,
                    ms(window.end),
                    req.amount,
                    limit,
                )
                .await?
                {
                    Some(used) => (
                        limit_answer(
                            event_id.clone(),
                            req.metric,
                            req.amount,
                            used,
                            limit,
                            window,
                        ),
                        start,
                    ),
                    None => {
                        let used = usage::counter(&mut *tx, uid, req.metric, start)
                            .await?
                            .unwrap_or(0);
                        let denial = Denial::QuotaExceeded {
                            limit: limit.unwrap_or(0),
                            used,
                        };
                        return Err(refusal(r, req.metric, req.amount, window, denial));
                    }
                }
            }
            Rule::Credits {
                allowance,
                rollover,
                window,
            } => {
                self.renew_credits_in(
                    &mut tx,
                    uid,
                    req.metric,
                    allowance,
                    rollover,
                    window,
                    now,
                    req.request_id,
                )
                .await?;
                match usage::add_credits(&mut tx, uid, req.metric, -req.amount).await? {
                    Some(balance) => (
                        credit_answer(
                            event_id.clone(),
                            req.metric,
                            req.amount,
                            balance,
                            allowance,
                            window,
                        ),
                        CREDIT_PERIOD,
                    ),
                    None => {
                        let balance = usage::credits(&mut *tx, uid, req.metric, false)
                            .await?
                            .map(|c| c.balance)
                            .unwrap_or(0);
                        tx.commit().await?;
                        let denial = Denial::InsufficientCredits { balance };
                        return Err(refusal(r, req.metric, req.amount, window, denial));
                    }
                }
            }
        };
        let json = serde_json::to_string(&answer).map_err(|e| Error::Internal(e.into()))?;
        let inserted = usage::insert_event(
            &mut tx,
            &usage::NewEvent {
                id: &event_id,
                user_id: uid,
                metric: req.metric,
                kind: "consume",
                amount: req.amount,
                at: ms(now),
                period_start,
                request_id: req.request_id,
                idempotency_key: req.idempotency_key,
                answer: Some(&json),
                plan_version_id: Some(r.row.plan_version_id.as_str()),
            },
        )
        .await?;
        if !inserted {
            // A concurrent request with the same key won; undo ours and answer as it did.
            drop(tx);
            let k = req.idempotency_key.unwrap_or_default();
            let ev = usage::event_by_key(self.db().read(), uid, k)
                .await?
                .ok_or(Error::IdempotencyKeyInUse)?;
            return replay(ev.answer.as_deref().unwrap_or("{}"));
        }
        tx.commit().await?;
        Ok(answer)
    }
}
