//! Credit balances: the period renewal inside a transaction, staff grants, and the grant an
//! immediate plan change gives.

use super::{record_event, stored_credits, CREDIT_PERIOD};
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::periods::Window;
use crate::plans::rules::{self, Rule};
use crate::service::catalog::PlanVersion;
use crate::service::Engine;
use crate::store::{ms, usage, AnyConn};
use chrono::{DateTime, Utc};

impl Engine {
    /// Grants the period's credits if not yet granted, in the caller's transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn renew_credits_in(
        &self,
        tx: &mut AnyConn,
        uid: &str,
        metric: &str,
        allowance: i64,
        rollover: bool,
        window: Window,
        now: DateTime<Utc>,
        request_id: Option<&str>,
    ) -> Result<()> {
        let pg = self.db().kind() == crate::store::Kind::Postgres;
        let row = match usage::credits(&mut *tx, uid, metric, pg).await? {
            Some(r) => r,
            None => {
                usage::add_credits_upsert(tx, uid, metric, 0, i64::MIN).await?;
                usage::credits(&mut *tx, uid, metric, pg)
                    .await?
                    .ok_or(Error::NotFound("credit balance"))?
            }
        };
        let before = stored_credits(row);
        let renewal = rules::renew_credits(before, allowance, rollover, window);
        if !renewal.is_due(before) {
            return Ok(());
        }
        for (kind, amount) in renewal.events {
            record_event(
                tx,
                uid,
                metric,
                kind,
                amount,
                ms(now),
                CREDIT_PERIOD,
                request_id,
            )
            .await?;
        }
        usage::set_credits(tx, uid, metric, renewal.credits.balance, ms(window.start)).await?;
        Ok(())
    }

    /// Adds (or removes) credits outside any period grant: staff grants and plan changes.
    pub async fn grant_credits(
        &self,
        user: &UserId,
        metric: &str,
        amount: i64,
        reason: Option<&str>,
    ) -> Result<i64> {
        self.grant_credits_audited(user, metric, amount, reason, None)
            .await
    }

    pub(crate) async fn grant_credits_audited(
        &self,
        user: &UserId,
        metric: &str,
        amount: i64,
        reason: Option<&str>,
        audit: Option<&crate::service::audit::Draft<'_>>,
    ) -> Result<i64> {
        if amount == 0 {
            return Err(Error::validation(
                "amount",
                "zero",
                "amount must not be zero",
            ));
        }
        let (rule, now) = self.rule_now(user, metric).await?;
        let Rule::Credits {
            allowance,
            rollover,
            window,
        } = rule
        else {
            return Err(Error::validation(
                "metric",
                "not_credits",
                &format!("`{metric}` is not a credit metric on this plan"),
            ));
        };
        let uid = user.as_str();
        let mut tx = self.db().begin().await?;
        self.renew_credits_in(
            &mut tx, uid, metric, allowance, rollover, window, now, reason,
        )
        .await?;
        let balance = usage::add_credits(&mut tx, uid, metric, amount)
            .await?
            .ok_or_else(|| {
                Error::validation(
                    "amount",
                    "negative_balance",
                    "the balance cannot go below zero",
                )
            })?;
        let (kind, logged) = if amount > 0 {
            ("grant", amount)
        } else {
            ("expire", -amount)
        };
        record_event(
            &mut tx,
            uid,
            metric,
            kind,
            logged,
            ms(now),
            CREDIT_PERIOD,
            None,
        )
        .await?;
        if let Some(a) = audit {
            let before = serde_json::json!({ "metric": metric, "balance": balance - amount });
            a.write(
                &mut tx,
                before,
                serde_json::json!({ "metric": metric, "balance": balance }),
                ms(now),
            )
            .await?;
        }
        tx.commit().await?;
        self.forget_credits(uid);
        Ok(balance)
    }

    /// On an immediate plan change, credit metrics get the difference between the new and the
    /// old allowance (never negative: a downgrade keeps what was granted).
    pub(crate) async fn grant_plan_change_credits(
        &self,
        tx: &mut AnyConn,
        user: &UserId,
        old: &PlanVersion,
        new: &PlanVersion,
        billing: Window,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let catalog = self.catalog().await?;
        for metric in &catalog.catalog.metrics {
            let declared = &catalog.catalog.metrics;
            let Some(
                new_rule @ Rule::Credits {
                    rollover, window, ..
                },
            ) = rules::rule_for(&new.plan, declared, metric, now, billing)
            else {
                continue;
            };
            let old_rule = rules::rule_for(&old.plan, declared, metric, now, billing);
            let old_allow = old_rule.and_then(|r| r.allowance()).unwrap_or(0);
            self.renew_credits_in(
                tx,
                user.as_str(),
                metric,
                old_allow,
                rollover,
                window,
                now,
                None,
            )
            .await?;
            let extra = rules::plan_change_grant(old_rule, new_rule);
            if extra > 0 {
                usage::add_credits(tx, user.as_str(), metric, extra).await?;
                record_event(
                    tx,
                    user.as_str(),
                    metric,
                    "grant",
                    extra,
                    ms(now),
                    CREDIT_PERIOD,
                    None,
                )
                .await?;
            }
        }
        Ok(())
    }
}
