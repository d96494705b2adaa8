//! Applying stored Stripe events, each in its own transaction: at once after a webhook
//! delivery, and again at start-up and in upkeep for whatever is still pending, so a crash
//! between storing and applying loses nothing.
//!
//! Applying is idempotent and order-independent: each event first merges its facts into
//! `stripe_subscriptions` / `stripe_invoices` / `stripe_refunds` / `stripe_customers` (the
//! rules are in [`super::merge`]), then the user's `subscriptions` row is projected from all
//! of those facts ([`super::project`]).

use super::event::{self, CheckoutFacts, Fact, InvoiceFacts, RefundFacts, SubscriptionFacts};
use super::merge::{self, StateKey};
use super::receive::EventStatus;
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::periods;
use crate::service::Engine;
use crate::store::stripe::{self as db, EventRow, InvoiceRow, RefundRow};
use crate::store::{at, AnyConn, Kind};
use serde::Serialize;

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    pub status: EventStatus,
    pub user_id: Option<UserId>,
    pub error: Option<String>,
    /// What changed, in words (for replay's progress and --dry-run).
    pub changes: Vec<String>,
    /// A customer this event linked to its user: its pending events can now be applied.
    #[serde(skip)]
    pub linked_customer: Option<String>,
    /// The subscription row changed (caches must be dropped after commit).
    #[serde(skip)]
    pub row_changed: bool,
}

impl Applied {
    pub(crate) fn new(status: EventStatus) -> Self {
        Applied {
            status,
            user_id: None,
            error: None,
            changes: Vec::new(),
            linked_customer: None,
            row_changed: false,
        }
    }

    /// Records this outcome on the stored event (`at` becomes its `applied_at` unless it
    /// stays pending).
    pub(crate) async fn record(&self, conn: &mut AnyConn, id: &str, at: i64) -> Result<()> {
        db::set_event_outcome(
            conn,
            id,
            self.status.as_str(),
            self.error.as_deref(),
            self.user_id.as_deref(),
            at,
        )
        .await?;
        Ok(())
    }
}

/// A failure while applying: bad data (the event fails) or the database (it stays pending).
pub enum ApplyError {
    Invalid(String),
    Store(Error),
}

impl From<ApplyError> for Error {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Invalid(m) => Error::Internal(anyhow::anyhow!(m)),
            ApplyError::Store(e) => e,
        }
    }
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        ApplyError::Store(e.into())
    }
}

impl From<Error> for ApplyError {
    fn from(e: Error) -> Self {
        ApplyError::Store(e)
    }
}

pub(crate) type Applying<T> = std::result::Result<T, ApplyError>;

pub(super) fn fmt_ms(ms: i64) -> String {
    at(ms).format("%Y-%m-%d %H:%M").to_string()
}

impl Engine {
    pub(super) fn is_postgres(&self) -> bool {
        self.db().kind() == Kind::Postgres
    }

    /// Applies one stored event (a no-op when it is already applied or ignored), then any
    /// pending events of a customer it linked to a user.
    pub async fn apply_stripe_event(&self, id: &str) -> Result<Applied> {
        let applied = self.apply_one_stripe_event(id).await?;
        if let Some(customer) = &applied.linked_customer {
            self.apply_pending_for_customer(customer).await?;
        }
        Ok(applied)
    }

    /// Applies the pending events of a customer that was just linked to a user.
    pub async fn apply_pending_for_customer(&self, customer: &str) -> Result<usize> {
        let ids = {
            let mut conn = self.db().read().acquire().await?;
            db::pending_ids_for_customer(&mut conn, customer).await?
        };
        let mut n = 0;
        for id in ids {
            if self.apply_one_stripe_event(&id).await?.status == EventStatus::Applied {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Applies every pending event worth a try, oldest first: at start-up, in upkeep, and
    /// after a crash between storing and applying. Returns how many were applied.
    pub async fn apply_pending_stripe_events(&self) -> Result<usize> {
        let mut n = 0;
        for id in db::pending_ids(self.db().read(), 10_000).await? {
            match self.apply_stripe_event(&id).await {
                Ok(a) if a.status == EventStatus::Applied => n += 1,
                Ok(_) => {}
                Err(e) => tracing::warn!(id = %id, error = %e, "stripe event stays pending"),
            }
        }
        Ok(n)
    }

    async fn apply_one_stripe_event(&self, id: &str) -> Result<Applied> {
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        let row = db::event_for_update(&mut tx, id, self.is_postgres())
            .await?
            .ok_or(Error::NotFound("stripe event"))?;
        if let Some(s) = EventStatus::parse(&row.status).filter(|s| s.is_done()) {
            let mut done = Applied::new(s);
            done.user_id = row.user_id.clone();
            done.changes.push("already applied".into());
            return Ok(done);
        }
        match self.apply_in(&mut tx, &row).await {
            Ok(applied) => {
                applied.record(&mut tx, id, now).await?;
                tx.commit().await?;
                if let Some(user) = applied.user_id.as_deref().filter(|_| applied.row_changed) {
                    self.subscription_changed(user);
                }
                tracing::info!(id, status = applied.status.as_str(), "stripe event applied");
                Ok(applied)
            }
            Err(failure) => {
                tx.rollback().await?;
                let (status, message, result) = match failure {
                    ApplyError::Invalid(m) => (EventStatus::Failed, m, None),
                    ApplyError::Store(e) => (EventStatus::Pending, e.to_string(), Some(e)),
                };
                tracing::warn!(id, error = %message, status = status.as_str(), "stripe event not applied");
                let mut tx = self.db().begin().await?;
                db::set_event_outcome(&mut tx, id, status.as_str(), Some(&message), None, now)
                    .await?;
                tx.commit().await?;
                match result {
                    Some(e) => Err(e),
                    None => {
                        let mut a = Applied::new(status);
                        a.error = Some(message);
                        Ok(a)
                    }
                }
            }
        }
    }

    /// Applies one event inside the caller's transaction (which --dry-run rolls back).
    pub(crate) async fn apply_in(&self, tx: &mut AnyConn, row: &EventRow) -> Applying<Applied> {
        let raw: serde_json::Value = serde_json::from_str(&row.payload)
            .map_err(|e| ApplyError::Invalid(format!("unreadable event: {e}")))?;
        let typed = event::parse(&row.payload).map_err(ApplyError::Invalid)?;
        let fact = event::facts(&typed, &raw).map_err(ApplyError::Invalid)?;
        if fact == Fact::Ignored {
            let mut a = Applied::new(EventStatus::Ignored);
            a.changes.push(format!("{} is not acted on", row.type_));
            return Ok(a);
        }
        let Some(customer) = fact.customer().map(str::to_owned) else {
            return Err(ApplyError::Invalid(format!(
                "the {} names no customer",
                row.type_
            )));
        };
        let mut out = Applied::new(EventStatus::Applied);
        let user = match db::customer_in(tx, &customer).await? {
            Some(c) => c.user_id,
            None => {
                let named = match fact.user_ref().map(UserId::parse) {
                    Some(Ok(u)) if db::user_exists(tx, u.as_str()).await? => Some(u),
                    _ => None,
                };
                let Some(u) = named else {
                    let mut a = Applied::new(EventStatus::Pending);
                    a.error = Some(format!(
                        "waiting for customer {customer} to be linked to a user"
                    ));
                    return Ok(a);
                };
                db::insert_customer(tx, &customer, u.as_str(), row.created).await?;
                out.changes
                    .push(format!("customer {customer} linked to user {u}"));
                out.linked_customer = Some(customer.clone());
                u
            }
        };
        db::lock_user(tx, &user, self.is_postgres()).await?;
        out.user_id = Some(user.clone());
        let key = StateKey {
            at: row.created,
            event: &row.id,
        };
        match &fact {
            Fact::CheckoutCompleted(c) => self.note_checkout(tx, &user, c, &mut out).await?,
            Fact::Subscription(s) => self.merge_subscription(tx, &user, s, key, &mut out).await?,
            Fact::InvoicePaid(i) => self.merge_invoice(tx, &user, i, None, &mut out).await?,
            Fact::InvoicePaymentFailed(i) => {
                self.merge_invoice(tx, &user, i, Some(row.created), &mut out)
                    .await?
            }
            Fact::Refund(r) => {
                self.merge_refund(tx, &user, r, row.created, &mut out)
                    .await?
            }
            Fact::CustomerDeleted { customer } => {
                db::mark_customer_deleted(tx, customer, row.created).await?;
                out.changes.push(format!("customer {customer} deleted"));
            }
            Fact::Ignored => {}
        }
        let (changed, words) = self.project_user(tx, &user).await?;
        out.row_changed = changed;
        out.changes.extend(words);
        Ok(out)
    }

    /// A completed checkout links its customer (done above) and, until the subscription's own
    /// events arrive, gives the user the plan they paid for: a provisional state that any
    /// real subscription event replaces.
    async fn note_checkout(
        &self,
        tx: &mut AnyConn,
        user: &UserId,
        c: &CheckoutFacts,
        out: &mut Applied,
    ) -> Applying<()> {
        let (Some(sub), Some(customer), true) = (&c.subscription, &c.customer, c.paid) else {
            return Ok(());
        };
        if db::subscription_state_in(tx, sub).await?.is_some() {
            return Ok(());
        }
        let catalog = self.catalog().await?;
        let Some(plan) = c.plan.as_deref().and_then(|p| catalog.plan(p)) else {
            return Ok(());
        };
        let Some(price) = plan.plan.stripe_price_ids.first() else {
            return Ok(());
        };
        let end = periods::add_intervals(at(c.created), plan.plan.price.interval, 1);
        let state = merge::checkout_state(
            sub,
            customer,
            user,
            price,
            (c.created, crate::store::ms(end)),
            self.now_ms(),
        );
        db::put_subscription_state(tx, &state).await?;
        out.changes.push(format!(
            "checkout {} completed: subscription {sub} on {} until its own events arrive",
            c.session_id,
            plan.label()
        ));
        Ok(())
    }

    async fn merge_subscription(
        &self,
        tx: &mut AnyConn,
        user: &UserId,
        s: &SubscriptionFacts,
        key: StateKey<'_>,
        out: &mut Applied,
    ) -> Applying<()> {
        let existing = db::subscription_state_in(tx, &s.id).await?;
        if !merge::replaces(existing.as_ref(), s, key) {
            out.changes.push(format!(
                "subscription {}: older than the state already known, ignored",
                s.id
            ));
            return Ok(());
        }
        let state = merge::subscription_state(s, user, key, self.now_ms());
        db::put_subscription_state(tx, &state).await?;
        out.changes.push(format!(
            "subscription {}: {} on {}, period {} → {}{}",
            s.id,
            state.status,
            state.price_id.as_deref().unwrap_or("no price"),
            fmt_ms(state.current_period_start),
            fmt_ms(state.current_period_end),
            if s.cancel_at_period_end {
                ", cancels at period end"
            } else {
                ""
            }
        ));
        Ok(())
    }

    /// Records an invoice once, whichever of invoice.paid / invoice.payment_succeeded /
    /// invoice.payment_failed arrives first or again. `failed_at` is the failure event's time.
    pub(super) async fn merge_invoice(
        &self,
        tx: &mut AnyConn,
        user: &UserId,
        i: &InvoiceFacts,
        failed_at: Option<i64>,
        out: &mut Applied,
    ) -> Applying<()> {
        let existing = db::invoice_in(tx, &i.id).await?;
        let catalog = self.catalog().await?;
        let plan_id = i
            .price_id
            .as_deref()
            .and_then(|p| catalog.plan_for_price(p))
            .map(|p| p.plan_id.clone());
        let merged = merge::merged_invoice(
            existing.as_ref(),
            i,
            user,
            plan_id,
            failed_at,
            self.now_ms(),
        );
        let was_paid = existing.as_ref().is_some_and(|e| e.status == "paid");
        if existing.as_ref().map(|e| InvoiceRow {
            updated_at: merged.updated_at,
            ..e.clone()
        }) == Some(merged.clone())
        {
            out.changes
                .push(format!("invoice {}: already recorded", i.id));
            return Ok(());
        }
        db::put_invoice(tx, &merged).await?;
        out.changes.push(match (merged.status.as_str(), was_paid) {
            ("paid", false) => format!(
                "invoice {}: paid {} {} ({})",
                i.id,
                merged.amount_paid,
                merged.currency,
                merged.billing_reason.as_deref().unwrap_or("manual")
            ),
            _ if failed_at.is_some() => format!(
                "invoice {}: payment failed ({} {} due, attempt {})",
                i.id, merged.amount_due, merged.currency, merged.attempt_count
            ),
            _ => format!("invoice {}: {}", i.id, merged.status),
        });
        Ok(())
    }

    async fn merge_refund(
        &self,
        tx: &mut AnyConn,
        user: &UserId,
        r: &RefundFacts,
        event_at: i64,
        out: &mut Applied,
    ) -> Applying<()> {
        let existing = db::refund_in(tx, &r.charge_id).await?;
        let merged = merge::merged_refund(existing.as_ref(), r, user, event_at, self.now_ms());
        if existing.as_ref().map(|e| RefundRow {
            updated_at: merged.updated_at,
            ..e.clone()
        }) == Some(merged.clone())
        {
            out.changes
                .push(format!("refund of {}: already recorded", r.charge_id));
            return Ok(());
        }
        db::put_refund(tx, &merged).await?;
        out.changes.push(format!(
            "refund of {}: {} {} refunded in all",
            r.charge_id, merged.amount_refunded, merged.currency
        ));
        Ok(())
    }
}
