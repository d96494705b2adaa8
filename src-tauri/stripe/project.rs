//! Projecting Stripe's facts onto the user's subscription row: the live subscription Stripe
//! holds for the user (its plan, status, period and grace), or the free plan from the moment
//! the last one ended. Credits follow the plan now in force.

use super::apply::{fmt_ms, ApplyError, Applying};
use crate::domain::UserId;
use crate::error::Result;
use crate::plans::periods::{self, Window};
use crate::service::catalog::PlanVersion;
use crate::service::subscriptions::{lapsed, Status};
use crate::service::Engine;
use crate::store::stripe::{self as db, SubscriptionState};
use crate::store::subscriptions::{self as subs, SubscriptionRow};
use crate::store::{at, AnyConn};
use std::collections::HashSet;
use std::sync::Arc;

const DAY_MS: i64 = 86_400_000;

/// Stripe's subscription status as Tollgate's. `incomplete` (first payment pending) is not live
/// yet; `paused` collects nothing, so it is treated like `unpaid`.
fn map_status(stripe_status: &str) -> Option<Status> {
    match stripe_status {
        "active" => Some(Status::Active),
        "trialing" => Some(Status::Trialing),
        "past_due" => Some(Status::PastDue),
        "unpaid" | "paused" => Some(Status::Unpaid),
        _ => None,
    }
}

impl Engine {
    /// Recomputes a user's subscription row from the Stripe facts and writes it when it
    /// differs. Returns whether it changed and the changes in words.
    pub(crate) async fn project_user(
        &self,
        tx: &mut AnyConn,
        user: &str,
    ) -> Applying<(bool, Vec<String>)> {
        let row = subs::for_user_in(tx, user)
            .await?
            .ok_or_else(|| ApplyError::Invalid(format!("user {user} has no subscription")))?;
        let next = self.projected_row(tx, &row).await?;
        let same = SubscriptionRow {
            updated_at: row.updated_at,
            ..next.clone()
        } == row;
        if same {
            return Ok((false, vec![]));
        }
        let now = self.now();
        let mut next = next;
        next.updated_at = crate::store::ms(now);
        subs::update(tx, &next).await?;
        let words = self.describe_change(&row, &next).await?;
        let plan_changed = row.plan_version_id != next.plan_version_id;
        let period_changed = row.current_period_start != next.current_period_start;
        let status_changed = row.status != next.status || row.grace_until != next.grace_until;
        if plan_changed || period_changed || status_changed {
            self.regrant_credits(tx, &row.user_id, &row, &next).await?;
        }
        Ok((true, words))
    }

    /// Credits follow the plan now in force: a new period grants that plan's allowance; a plan
    /// change within the period grants the difference (as `change_plan` does).
    async fn regrant_credits(
        &self,
        tx: &mut AnyConn,
        user: &UserId,
        before: &SubscriptionRow,
        after: &SubscriptionRow,
    ) -> Applying<()> {
        let now = self.now();
        let default = self.catalog().await?.default_plan().clone();
        let effective = |row: &SubscriptionRow, bought: Arc<PlanVersion>| {
            if lapsed(row, crate::store::ms(now)) {
                default.clone()
            } else {
                bought
            }
        };
        let new_eff = effective(after, self.plan_version(&after.plan_version_id).await?);
        let old_eff = if before.current_period_start == after.current_period_start {
            effective(before, self.plan_version(&before.plan_version_id).await?)
        } else {
            // A new period: the new plan's allowance, not a difference.
            new_eff.clone()
        };
        let billing = Window {
            start: at(after.current_period_start),
            end: at(after.current_period_end),
        };
        self.grant_plan_change_credits(tx, user, &old_eff, &new_eff, billing, now)
            .await?;
        Ok(())
    }

    /// The subscription row the Stripe facts call for.
    pub(super) async fn projected_row(
        &self,
        tx: &mut AnyConn,
        row: &SubscriptionRow,
    ) -> Applying<SubscriptionRow> {
        let user = row.user_id.as_str();
        let customers = db::customers_of_user(tx, user).await?;
        let deleted: HashSet<&str> = customers
            .iter()
            .filter(|c| c.deleted_at.is_some())
            .map(|c| c.customer_id.as_str())
            .collect();
        let mut next = row.clone();
        next.stripe_customer_id = customers
            .iter()
            .rev()
            .find(|c| c.deleted_at.is_none())
            .map(|c| c.customer_id.clone());
        let states = db::subscription_states_of_user(tx, user).await?;
        let is_live = |s: &SubscriptionState| {
            s.deleted == 0
                && map_status(&s.status).is_some()
                && !deleted.contains(s.customer_id.as_str())
        };
        let live = states.iter().filter(|s| is_live(s)).max_by(|a, b| {
            (a.started_at, &a.subscription_id).cmp(&(b.started_at, &b.subscription_id))
        });
        if let Some(s) = live {
            self.follow_subscription(tx, row, s, &mut next).await?;
            return Ok(next);
        }
        // No live subscription: when the latest one ended, the user is back on the free plan
        // from the moment it ended. Rows a staff member changed since are left alone.
        let end_of = |s: &SubscriptionState| {
            s.ended_at
                .or_else(|| {
                    customers
                        .iter()
                        .find(|c| c.customer_id == s.customer_id)
                        .and_then(|c| c.deleted_at)
                })
                .unwrap_or(s.state_at)
        };
        let ended = states
            .iter()
            .filter(|s| {
                !is_live(s) && !matches!(s.status.as_str(), "incomplete" | "incomplete_expired")
            })
            .max_by(|a, b| (end_of(a), &a.subscription_id).cmp(&(end_of(b), &b.subscription_id)));
        if let Some(t) = ended {
            let follows = row.stripe_subscription_id.as_deref() == Some(t.subscription_id.as_str());
            let stale = row.stripe_updated_at.is_none_or(|u| u < t.state_at);
            if follows || stale {
                let free = self.catalog().await?.default_plan().clone();
                let end = end_of(t);
                next.plan_version_id = free.id.clone();
                next.status = Status::Active.as_str().into();
                next.period_anchor = end;
                next.current_period_start = end;
                next.current_period_end =
                    crate::store::ms(periods::add_intervals(at(end), free.plan.price.interval, 1));
                next.cancel_at_period_end = 0;
                next.scheduled_plan_version_id = None;
                next.trial_end = None;
                next.grace_until = None;
                next.stripe_subscription_id = None;
                next.stripe_updated_at = Some(t.state_at);
            }
        }
        Ok(next)
    }

    async fn follow_subscription(
        &self,
        tx: &mut AnyConn,
        row: &SubscriptionRow,
        s: &SubscriptionState,
        next: &mut SubscriptionRow,
    ) -> Applying<()> {
        let price = s.price_id.as_deref().ok_or_else(|| {
            ApplyError::Invalid(format!("subscription {} has no price", s.subscription_id))
        })?;
        // Keep a grandfathered plan version when it sells this price; else the catalog's.
        let bought = self.plan_version(&row.plan_version_id).await?;
        next.plan_version_id = if bought.plan.stripe_price_ids.iter().any(|p| p == price) {
            bought.id.clone()
        } else {
            self.catalog()
                .await?
                .plan_for_price(price)
                .ok_or_else(|| {
                    ApplyError::Invalid(format!(
                        "price {price} of subscription {} belongs to no plan of the catalog",
                        s.subscription_id
                    ))
                })?
                .id
                .clone()
        };
        let invoices = db::invoices_of_subscription(tx, &s.subscription_id).await?;
        // The newest word on payment wins: the subscription's own state, or a later paid or
        // failed invoice (Stripe may deliver either first).
        let mut status = map_status(&s.status).unwrap_or(Status::Unpaid);
        if matches!(status, Status::Active | Status::Trialing | Status::PastDue) {
            let latest_invoice = invoices
                .iter()
                .filter_map(|i| match (i.status.as_str(), i.failed_at) {
                    ("paid", _) => Some((i.paid_at.unwrap_or(i.created), Status::Active)),
                    ("open", Some(f)) => Some((f, Status::PastDue)),
                    _ => None,
                })
                .max_by_key(|(t, _)| *t);
            if let Some((t, st)) = latest_invoice {
                if t > s.state_at && !(st == Status::Active && status == Status::Trialing) {
                    status = st;
                }
            }
        }
        // Periods only move forward: a paid invoice for the next period starts it even
        // before the subscription's update arrives.
        let mut period = (s.current_period_start, s.current_period_end);
        for i in invoices.iter().filter(|i| i.status == "paid") {
            if let (Some(start), Some(end)) = (i.period_start, i.period_end) {
                if start > period.0 {
                    period = (start, end);
                }
            }
        }
        next.grace_until = (status == Status::PastDue).then(|| {
            let since = invoices
                .iter()
                .filter(|i| i.status == "open" && i.failed_at.is_some())
                .map(|i| i.created)
                .min()
                .unwrap_or(period.0);
            since + self.settings().stripe.grace_days.max(0) * DAY_MS
        });
        next.status = status.as_str().into();
        next.period_anchor = s.started_at;
        next.current_period_start = period.0;
        next.current_period_end = period.1;
        next.cancel_at_period_end = s.cancel_at_period_end;
        next.scheduled_plan_version_id = None;
        next.trial_end = if status == Status::Trialing {
            s.trial_end
        } else {
            None
        };
        next.stripe_customer_id = Some(s.customer_id.clone());
        next.stripe_subscription_id = Some(s.subscription_id.clone());
        next.stripe_updated_at = Some(s.state_at);
        Ok(())
    }

    async fn describe_change(
        &self,
        before: &SubscriptionRow,
        after: &SubscriptionRow,
    ) -> Result<Vec<String>> {
        let mut words = Vec::new();
        let user = &after.user_id;
        if before.plan_version_id != after.plan_version_id {
            words.push(format!(
                "user {user}: plan {} → {}",
                self.plan_version(&before.plan_version_id).await?.label(),
                self.plan_version(&after.plan_version_id).await?.label()
            ));
        }
        if before.status != after.status {
            words.push(format!(
                "user {user}: status {} → {}",
                before.status, after.status
            ));
        }
        if (before.current_period_start, before.current_period_end)
            != (after.current_period_start, after.current_period_end)
        {
            words.push(format!(
                "user {user}: period {} → {} (quotas of the period start again)",
                fmt_ms(after.current_period_start),
                fmt_ms(after.current_period_end)
            ));
        }
        if before.cancel_at_period_end != after.cancel_at_period_end {
            words.push(format!(
                "user {user}: cancel at period end {}",
                after.cancel_at_period_end != 0
            ));
        }
        if before.grace_until != after.grace_until {
            words.push(match after.grace_until {
                Some(g) => format!("user {user}: grace until {}", fmt_ms(g)),
                None => format!("user {user}: no grace period"),
            });
        }
        if before.stripe_customer_id != after.stripe_customer_id {
            words.push(format!(
                "user {user}: Stripe customer {}",
                after.stripe_customer_id.as_deref().unwrap_or("none")
            ));
        }
        if before.stripe_subscription_id != after.stripe_subscription_id {
            words.push(format!(
                "user {user}: Stripe subscription {}",
                after.stripe_subscription_id.as_deref().unwrap_or("none")
            ));
        }
        Ok(words)
    }
}
