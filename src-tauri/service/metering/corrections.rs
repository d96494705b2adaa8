//! Corrections of recorded use: releasing a consumption whose work failed, and a staff reset
//! of a metric's current window. Both are written as usage events, so counters stay derivable.

use super::{record_event, replay, Consumption, CREDIT_PERIOD};
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::rules::Rule;
use crate::service::Engine;
use crate::store::{ms, usage};

impl Engine {
    /// Undoes a consumption whose work failed, by event id or idempotency key. Releasing
    /// twice is refused.
    pub async fn release(
        &self,
        user: &UserId,
        event_id: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Consumption> {
        let uid = user.as_str();
        let mut tx = self.db().begin().await?;
        let ev = match (event_id, idempotency_key) {
            (Some(id), _) => usage::event_in(&mut tx, id).await?,
            (None, Some(k)) => usage::event_by_key(&mut *tx, uid, k).await?,
            (None, None) => {
                return Err(Error::validation(
                    "event_id",
                    "required",
                    "give event_id or idempotency_key",
                ));
            }
        };
        let ev = ev
            .filter(|e| e.user_id == uid && e.kind == "consume")
            .ok_or(Error::NotFound("usage event"))?;
        if !usage::mark_released(&mut tx, &ev.id).await? {
            return Err(Error::AlreadyReleased);
        }
        record_event(
            &mut tx,
            uid,
            &ev.metric,
            "release",
            -ev.amount,
            self.now_ms(),
            ev.period_start,
            None,
        )
        .await?;
        if ev.period_start == CREDIT_PERIOD {
            usage::add_credits_upsert(&mut tx, uid, &ev.metric, ev.amount, i64::MIN).await?;
        } else {
            usage::add_within(
                &mut tx,
                uid,
                &ev.metric,
                ev.period_start,
                ev.period_start,
                -ev.amount,
                None,
            )
            .await?;
        }
        tx.commit().await?;
        if let Some(m) = &self.inner.memory {
            let mut st = m.lock();
            if ev.period_start == CREDIT_PERIOD {
                if let Some(v) = st.credits.get_mut(&(uid.to_owned(), ev.metric.clone())) {
                    v.balance += ev.amount;
                }
            } else if let Some(v) =
                st.counters
                    .get_mut(&(uid.to_owned(), ev.metric.clone(), ev.period_start))
            {
                v.used -= ev.amount;
            }
            if let Some(k) = &ev.idempotency_key {
                st.answers.remove(&(uid.to_owned(), k.clone()));
            }
        }
        // Answer with the state after the release.
        let mut answer = ev
            .answer
            .as_deref()
            .map(replay)
            .transpose()?
            .ok_or(Error::NotFound("usage event answer"))?;
        answer.replayed = false;
        if ev.period_start == CREDIT_PERIOD {
            let balance = usage::credits(self.db().read(), uid, &ev.metric, false)
                .await?
                .map(|c| c.balance)
                .unwrap_or(0);
            answer.credits = Some(balance);
            answer.remaining = Some(balance);
            answer.used = answer.limit.map(|l| (l - balance).max(0)).unwrap_or(0);
        } else {
            let used = usage::counter(self.db().read(), uid, &ev.metric, ev.period_start)
                .await?
                .unwrap_or(0);
            answer.used = used;
            answer.remaining = answer.limit.map(|l| (l - used).max(0));
        }
        Ok(answer)
    }

    /// Resets a metric's usage for its current window (staff). Written as a `reset` usage
    /// event so that counters stay derivable from events; returns how much was reset.
    pub(crate) async fn reset_usage_audited(
        &self,
        user: &UserId,
        metric: &str,
        audit: &crate::service::audit::Draft<'_>,
    ) -> Result<i64> {
        let (rule, now) = self.rule_now(user, metric).await?;
        let Rule::Limit { window, .. } = rule else {
            return Err(Error::validation(
                "metric",
                "credits",
                "credit metrics are changed with a credit grant, not a reset",
            ));
        };
        let uid = user.as_str();
        let start = ms(window.start);
        let mut tx = self.db().begin().await?;
        let used = usage::counter(&mut *tx, uid, metric, start)
            .await?
            .unwrap_or(0);
        if used > 0 {
            record_event(&mut tx, uid, metric, "reset", -used, ms(now), start, None).await?;
            usage::add_within(&mut tx, uid, metric, start, ms(window.end), -used, None).await?;
        }
        audit
            .write(
                &mut tx,
                serde_json::json!({ "metric": metric, "used": used }),
                serde_json::json!({ "metric": metric, "used": 0 }),
                ms(now),
            )
            .await?;
        tx.commit().await?;
        self.forget_counters(uid);
        Ok(used)
    }
}
