//! Receiving and applying Stripe events.
//!
//! A delivery is verified and stored (`pending`) before it is answered; applying happens
//! afterwards, in its own transaction, and again at start-up and in upkeep for whatever is
//! still pending, so a crash between the two loses nothing.
//!
//! Applying is idempotent and order-independent: each event first merges its facts into
//! `stripe_subscriptions` / `stripe_invoices` / `stripe_refunds` / `stripe_customers` with
//! rules that do not depend on arrival order (the newest event wins for a subscription, a
//! deleted subscription stays deleted, an invoice once paid stays paid, the largest refunded
//! amount wins), then the user's `subscriptions` row is projected from all of those facts.

use super::event::{self, CheckoutFacts, Fact, InvoiceFacts, RefundFacts, SubscriptionFacts};
use super::signature;
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::plans::periods::{self, Window};
use crate::service::catalog::PlanVersion;
use crate::service::subscriptions::Status;
use crate::service::Engine;
use crate::store::stripe::{self as db, EventRow, InvoiceRow, RefundRow, SubscriptionState};
use crate::store::subscriptions::{self as subs, SubscriptionRow};
use crate::store::{at, AnyConn, Kind};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;

const DAY_MS: i64 = 86_400_000;

/// How applying an event ended; the event's stored `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Stored, not applied yet (or waiting for its customer to be linked to a user).
    Pending,
    Applied,
    /// Applying failed for a reason a retry will not fix (see `error`); replay after fixing.
    Failed,
    /// A type Tollgate does not act on.
    Ignored,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Applied => "applied",
            EventStatus::Failed => "failed",
            EventStatus::Ignored => "ignored",
        }
    }
    pub fn parse(s: &str) -> Option<EventStatus> {
        [
            EventStatus::Pending,
            EventStatus::Applied,
            EventStatus::Failed,
            EventStatus::Ignored,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A verified delivery, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Received {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    /// True when this event id was already stored: nothing changed.
    pub duplicate: bool,
}

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    pub status: EventStatus,
    pub user_id: Option<String>,
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

/// Statuses that end a subscription for good.
pub(crate) fn is_terminal(stripe_status: &str) -> bool {
    matches!(stripe_status, "canceled" | "incomplete_expired")
}

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

fn status_rank(invoice_status: &str) -> u8 {
    match invoice_status {
        "paid" => 4,
        "void" | "uncollectible" => 3,
        "open" => 2,
        _ => 1,
    }
}

/// Whether a row's limits have lapsed to the default plan at `now` (the rule of
/// `resolve_subscription`).
fn lapsed(row: &SubscriptionRow, now_ms: i64) -> bool {
    match Status::parse(&row.status) {
        Some(Status::PastDue) => row.grace_until.is_none_or(|g| g <= now_ms),
        Some(Status::Canceled | Status::Unpaid) => true,
        _ => false,
    }
}

fn fmt_ms(ms: i64) -> String {
    at(ms).format("%Y-%m-%d %H:%M").to_string()
}

impl Engine {
    fn is_postgres(&self) -> bool {
        self.db().kind() == Kind::Postgres
    }

    /// Verifies a webhook delivery's signature and stores the event. Nothing is stored unless
    /// the signature is valid; a repeated event id is acknowledged and changes nothing.
    #[tracing::instrument(skip_all)]
    pub async fn receive_stripe_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<Received> {
        let secrets = signature::secrets(self.settings().stripe_webhook_secret.as_ref());
        if secrets.is_empty() {
            return Err(Error::StripeNotConfigured);
        }
        signature::verify(signature_header, body, &secrets, self.now().timestamp())
            .map_err(|e| Error::InvalidSignature(e.to_string()))?;
        let payload = std::str::from_utf8(body)
            .map_err(|_| Error::InvalidStripeEvent("the body is not UTF-8".into()))?;
        let env = event::envelope(body).map_err(Error::InvalidStripeEvent)?;
        let mut tx = self.db().begin().await?;
        let inserted = self.store_stripe_event(&mut tx, &env, payload).await?;
        tx.commit().await?;
        tracing::info!(id = %env.id, r#type = %env.type_, duplicate = !inserted, "stripe event received");
        Ok(Received {
            id: env.id,
            type_: env.type_,
            duplicate: !inserted,
        })
    }

    async fn store_stripe_event(
        &self,
        conn: &mut AnyConn,
        env: &event::Envelope,
        payload: &str,
    ) -> Result<bool> {
        Ok(db::insert_event(
            conn,
            &db::NewEvent {
                id: &env.id,
                type_: &env.type_,
                created: env.created,
                livemode: env.livemode,
                payload,
                received_at: self.now_ms(),
                customer_id: env.customer_id.as_deref(),
            },
        )
        .await?)
    }

    /// Applies a stored event in the background (the webhook answers before this runs).
    pub fn spawn_apply_stripe_event(&self, id: String) {
        let engine = self.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.apply_stripe_event(&id).await {
                tracing::warn!(id = %id, error = %e, "stripe event stays pending");
            }
        });
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
        if let Some(s @ (EventStatus::Applied | EventStatus::Ignored)) =
            EventStatus::parse(&row.status)
        {
            let mut done = Applied::new(s);
            done.user_id = row.user_id.clone();
            done.changes.push("already applied".into());
            return Ok(done);
        }
        match self.apply_in(&mut tx, &row).await {
            Ok(applied) => {
                db::set_event_outcome(
                    &mut tx,
                    id,
                    applied.status.as_str(),
                    applied.error.as_deref(),
                    applied.user_id.as_deref(),
                    now,
                )
                .await?;
                tx.commit().await?;
                if let Some(user) = applied.user_id.as_deref().filter(|_| applied.row_changed) {
                    self.forget_subscription(user);
                    self.forget_counters(user);
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
                u.to_string()
            }
        };
        db::lock_user(tx, &user, self.is_postgres()).await?;
        out.user_id = Some(user.clone());
        let key = (row.created, row.id.as_str());
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
        user: &str,
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
        db::put_subscription_state(
            tx,
            &SubscriptionState {
                subscription_id: sub.clone(),
                customer_id: customer.clone(),
                user_id: user.to_owned(),
                price_id: Some(price.clone()),
                status: "active".into(),
                current_period_start: c.created,
                current_period_end: crate::store::ms(end),
                cancel_at_period_end: 0,
                trial_end: None,
                ended_at: None,
                started_at: c.created,
                deleted: 0,
                // Older than any real event: the subscription's own events replace it.
                state_at: 0,
                state_event: String::new(),
                updated_at: self.now_ms(),
            },
        )
        .await?;
        out.changes.push(format!(
            "checkout {} completed: subscription {sub} on {} until its own events arrive",
            c.session_id,
            plan.label()
        ));
        Ok(())
    }

    pub(super) async fn merge_subscription(
        &self,
        tx: &mut AnyConn,
        user: &str,
        s: &SubscriptionFacts,
        key: (i64, &str),
        out: &mut Applied,
    ) -> Applying<()> {
        let existing = db::subscription_state_in(tx, &s.id).await?;
        let newer = match &existing {
            None => true,
            // A deleted subscription stays deleted; among deletions, the newest wins.
            Some(e) if e.deleted != 0 && !s.deleted => false,
            Some(e) if e.deleted == 0 && s.deleted => true,
            Some(e) => key > (e.state_at, e.state_event.as_str()),
        };
        if !newer {
            out.changes.push(format!(
                "subscription {}: older than the state already known, ignored",
                s.id
            ));
            return Ok(());
        }
        let state = SubscriptionState {
            subscription_id: s.id.clone(),
            customer_id: s.customer.clone(),
            user_id: user.to_owned(),
            price_id: s.price_id.clone(),
            status: if s.deleted && !is_terminal(&s.status) {
                "canceled".into()
            } else {
                s.status.clone()
            },
            current_period_start: s.period_start,
            current_period_end: s.period_end,
            cancel_at_period_end: i64::from(s.cancel_at_period_end),
            trial_end: s.trial_end,
            ended_at: s.ended_at,
            started_at: s.started_at,
            deleted: i64::from(s.deleted),
            state_at: key.0,
            state_event: key.1.to_owned(),
            updated_at: self.now_ms(),
        };
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
        user: &str,
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
        let status = match &existing {
            Some(e) if status_rank(&e.status) >= status_rank(&i.status) => e.status.clone(),
            _ => i.status.clone(),
        };
        let merged = InvoiceRow {
            invoice_id: i.id.clone(),
            customer_id: i.customer.clone(),
            user_id: user.to_owned(),
            subscription_id: i
                .subscription
                .clone()
                .or_else(|| existing.as_ref().and_then(|e| e.subscription_id.clone())),
            status: status.clone(),
            amount_due: existing
                .as_ref()
                .map_or(i.amount_due, |e| e.amount_due.max(i.amount_due)),
            amount_paid: existing
                .as_ref()
                .map_or(i.amount_paid, |e| e.amount_paid.max(i.amount_paid)),
            currency: i.currency.clone(),
            billing_reason: i.billing_reason.clone(),
            price_id: i
                .price_id
                .clone()
                .or_else(|| existing.as_ref().and_then(|e| e.price_id.clone())),
            plan_id: plan_id.or_else(|| existing.as_ref().and_then(|e| e.plan_id.clone())),
            period_start: i
                .period
                .map(|p| p.0)
                .or_else(|| existing.as_ref().and_then(|e| e.period_start)),
            period_end: i
                .period
                .map(|p| p.1)
                .or_else(|| existing.as_ref().and_then(|e| e.period_end)),
            created: i.created,
            paid_at: match (existing.as_ref().and_then(|e| e.paid_at), i.paid_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            failed_at: match (existing.as_ref().and_then(|e| e.failed_at), failed_at) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            attempt_count: existing
                .as_ref()
                .map_or(i.attempt_count, |e| e.attempt_count.max(i.attempt_count)),
            updated_at: self.now_ms(),
        };
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
        out.changes.push(match (status.as_str(), was_paid) {
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

    pub(super) async fn merge_refund(
        &self,
        tx: &mut AnyConn,
        user: &str,
        r: &RefundFacts,
        event_at: i64,
        out: &mut Applied,
    ) -> Applying<()> {
        let existing = db::refund_in(tx, &r.charge_id).await?;
        let merged = RefundRow {
            charge_id: r.charge_id.clone(),
            customer_id: r.customer.clone(),
            user_id: user.to_owned(),
            payment_intent: r.payment_intent.clone(),
            amount: r.amount,
            amount_refunded: existing.as_ref().map_or(r.amount_refunded, |e| {
                e.amount_refunded.max(r.amount_refunded)
            }),
            currency: r.currency.clone(),
            refunded: existing.as_ref().map_or(i64::from(r.refunded), |e| {
                e.refunded.max(i64::from(r.refunded))
            }),
            refunded_at: existing
                .as_ref()
                .map_or(event_at, |e| e.refunded_at.max(event_at)),
            updated_at: self.now_ms(),
        };
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
            self.regrant_credits(tx, user, &row, &next).await?;
        }
        Ok((true, words))
    }

    /// Credits follow the plan now in force: a new period grants that plan's allowance; a plan
    /// change within the period grants the difference (as `change_plan` does).
    async fn regrant_credits(
        &self,
        tx: &mut AnyConn,
        user: &str,
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
        let uid = UserId::from_db(user.to_owned());
        self.grant_plan_change_credits(tx, &uid, &old_eff, &new_eff, billing, now)
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
