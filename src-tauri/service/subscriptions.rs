//! Subscriptions: every user has exactly one, on the default (free) plan from registration.
//!
//! Plan changes take effect now (upgrade: the new limits apply at once to the current window's
//! usage, and credit plans grant the difference in allowance) or at the end of the period
//! (downgrade: the old plan's limits hold until the period ends).

use super::cache_sync::Cached;
use super::catalog::PlanVersion;
use super::Engine;
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::periods::{self, Window};
use crate::store::{at, ms, subscriptions, subscriptions::SubscriptionRow, AnyConn};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub enum Status {
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Trialing => "trialing",
            Status::Active => "active",
            Status::PastDue => "past_due",
            Status::Canceled => "canceled",
            Status::Unpaid => "unpaid",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Trialing,
            Status::Active,
            Status::PastDue,
            Status::Canceled,
            Status::Unpaid,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// When a plan change takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub enum Effective {
    Now,
    PeriodEnd,
}

/// A subscription as shown to its user and to staff.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct SubscriptionView {
    pub id: crate::domain::SubscriptionId,
    pub user_id: UserId,
    /// The plan version the user bought (`pro@1`).
    pub plan: String,
    pub plan_id: String,
    pub plan_name: String,
    /// The plan whose limits apply now: differs from `plan` when the subscription is canceled,
    /// unpaid, or past due beyond its grace period.
    pub effective_plan: String,
    pub status: Status,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    pub cancel_at_period_end: bool,
    pub scheduled_plan: Option<String>,
    pub trial_end: Option<DateTime<Utc>>,
    pub grace_until: Option<DateTime<Utc>>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
}

/// A subscription resolved for a decision: its row, the plan that applies, its billing window.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub row: Arc<SubscriptionRow>,
    pub bought: Arc<PlanVersion>,
    pub effective: Arc<PlanVersion>,
    pub billing: Window,
}

impl Resolved {
    pub fn status(&self) -> Status {
        Status::parse(&self.row.status).unwrap_or(Status::Active)
    }
}

/// Whether a subscription's limits have lapsed to the default plan at `now_ms`: canceled and
/// unpaid subscriptions at once, past-due ones when their grace period is over.
pub fn lapsed(row: &SubscriptionRow, now_ms: i64) -> bool {
    match Status::parse(&row.status).unwrap_or(Status::Active) {
        Status::Active | Status::Trialing => false,
        Status::PastDue => row.grace_until.is_none_or(|g| g <= now_ms),
        Status::Canceled | Status::Unpaid => true,
    }
}

impl Engine {
    /// The default subscription of a new account, written in the caller's transaction.
    pub(crate) async fn insert_default_subscription(
        &self,
        conn: &mut AnyConn,
        user: &UserId,
    ) -> Result<()> {
        let catalog = self.catalog().await?;
        let plan = catalog.default_plan();
        let now = self.now();
        let end = periods::add_intervals(now, plan.plan.price.interval, 1);
        let row = SubscriptionRow {
            id: crate::domain::ids::SubscriptionId::new(),
            user_id: user.clone(),
            plan_version_id: plan.id.clone(),
            status: Status::Active.as_str().into(),
            period_anchor: ms(now),
            current_period_start: ms(now),
            current_period_end: ms(end),
            cancel_at_period_end: 0,
            scheduled_plan_version_id: None,
            trial_end: None,
            grace_until: None,
            stripe_customer_id: None,
            stripe_subscription_id: None,
            stripe_updated_at: None,
            created_at: ms(now),
            updated_at: ms(now),
        };
        subscriptions::insert(conn, &row).await?;
        Ok(())
    }

    /// Drops cached subscriptions (after a change made outside the usual functions).
    pub(crate) fn forget_subscriptions(&self) {
        self.inner
            .subscriptions
            .write()
            .expect("subscription cache")
            .clear();
    }

    fn forget_subscription(&self, user: &str) {
        self.inner
            .subscriptions
            .write()
            .expect("subscription cache")
            .remove(user);
    }

    /// Says that a user's subscription changed (after the change is committed): drops every
    /// cache that depends on it, the subscription row and the user's counters and balances.
    pub(crate) fn subscription_changed(&self, user: &str) {
        self.forget_subscription(user);
        self.forget_counters(user);
    }

    async fn subscription_row(&self, user: &UserId) -> Result<Arc<SubscriptionRow>> {
        if let Some(row) = self
            .inner
            .subscriptions
            .read()
            .expect("subscription cache")
            .get(user.as_str())
            .and_then(|c| c.fresh())
        {
            return Ok(row.clone());
        }
        let generation = self.cache_generation();
        let row = Arc::new(
            subscriptions::for_user(self.db().read(), user.as_str())
                .await?
                .ok_or(Error::NotFound("subscription"))?,
        );
        if self.cache_unchanged_since(generation) {
            self.inner
                .subscriptions
                .write()
                .expect("subscription cache")
                .insert(user.to_string(), Cached::new(row.clone()));
        }
        Ok(row)
    }

    /// The subscription with the plan that applies at `now`. Periods of subscriptions that
    /// Tollgate renews itself (no Stripe subscription) roll forward here, applying any change
    /// scheduled for the period's end.
    pub async fn resolve_subscription(&self, user: &UserId) -> Result<Resolved> {
        let now = self.now();
        let mut row = self.subscription_row(user).await?;
        if row.stripe_subscription_id.is_none() && ms(now) >= row.current_period_end {
            row = Arc::new(self.roll_period(SubscriptionRow::clone(&row), now).await?);
        }
        let bought = self.plan_version(&row.plan_version_id).await?;
        let effective = if lapsed(&row, ms(now)) {
            self.catalog().await?.default_plan().clone()
        } else {
            bought.clone()
        };
        let billing = Window {
            start: at(row.current_period_start),
            end: at(row.current_period_end),
        };
        Ok(Resolved {
            row,
            bought,
            effective,
            billing,
        })
    }

    async fn roll_period(
        &self,
        mut row: SubscriptionRow,
        now: DateTime<Utc>,
    ) -> Result<SubscriptionRow> {
        if let Some(next) = row.scheduled_plan_version_id.take() {
            row.plan_version_id = next;
        }
        if row.cancel_at_period_end != 0 {
            row.cancel_at_period_end = 0;
            row.plan_version_id = self.catalog().await?.default_plan().id.clone();
        }
        let plan = self.plan_version(&row.plan_version_id).await?;
        let window =
            periods::billing_period_at(at(row.period_anchor), plan.plan.price.interval, now);
        row.current_period_start = ms(window.start);
        row.current_period_end = ms(window.end);
        row.updated_at = ms(now);
        let mut tx = self.db().begin().await?;
        subscriptions::update(&mut tx, &row).await?;
        tx.commit().await?;
        self.subscription_changed(&row.user_id);
        Ok(row)
    }

    pub async fn subscription(&self, user: &UserId) -> Result<SubscriptionView> {
        let r = self.resolve_subscription(user).await?;
        let scheduled = match &r.row.scheduled_plan_version_id {
            Some(id) => Some(self.plan_version(id).await?.label()),
            None => None,
        };
        Ok(SubscriptionView {
            id: r.row.id.clone(),
            user_id: r.row.user_id.clone(),
            plan: r.bought.label(),
            plan_id: r.bought.plan_id.clone(),
            plan_name: r.bought.plan.name.clone(),
            effective_plan: r.effective.label(),
            status: r.status(),
            current_period_start: r.billing.start,
            current_period_end: r.billing.end,
            cancel_at_period_end: r.row.cancel_at_period_end != 0,
            scheduled_plan: scheduled,
            trial_end: r.row.trial_end.map(at),
            grace_until: r.row.grace_until.map(at),
            stripe_customer_id: r.row.stripe_customer_id.clone(),
            stripe_subscription_id: r.row.stripe_subscription_id.clone(),
        })
    }

    /// Moves a user to a plan of the current catalog, now or at the end of the period.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn change_plan(
        &self,
        user: &UserId,
        plan_id: &str,
        when: Effective,
    ) -> Result<SubscriptionView> {
        self.change_plan_audited(user, plan_id, when, None).await
    }

    pub(crate) async fn change_plan_audited(
        &self,
        user: &UserId,
        plan_id: &str,
        when: Effective,
        audit: Option<&super::audit::Draft<'_>>,
    ) -> Result<SubscriptionView> {
        let catalog = self.catalog().await?;
        let target = catalog
            .plan(plan_id)
            .ok_or_else(|| Error::UnknownPlan(plan_id.to_owned()))?
            .clone();
        let before = self.resolve_subscription(user).await?;
        let mut row = SubscriptionRow::clone(&before.row);
        let now = self.now();
        match when {
            Effective::Now => {
                row.plan_version_id = target.id.clone();
                row.scheduled_plan_version_id = None;
                row.cancel_at_period_end = 0;
                if matches!(before.status(), Status::Canceled | Status::Unpaid) {
                    row.status = Status::Active.as_str().into();
                }
            }
            Effective::PeriodEnd => row.scheduled_plan_version_id = Some(target.id.clone()),
        }
        row.updated_at = ms(now);
        let mut tx = self.db().begin().await?;
        subscriptions::update(&mut tx, &row).await?;
        if when == Effective::Now {
            self.grant_plan_change_credits(
                &mut tx,
                user,
                &before.effective,
                &target,
                before.billing,
                now,
            )
            .await?;
        }
        if let Some(a) = audit {
            let before_json =
                serde_json::json!({ "plan": before.bought.label(), "status": before.row.status });
            let after_json = serde_json::json!({ "plan": target.label(), "effective": when });
            a.write(&mut tx, before_json, after_json, ms(now)).await?;
        }
        tx.commit().await?;
        self.subscription_changed(user.as_str());
        self.subscription(user).await
    }
}
