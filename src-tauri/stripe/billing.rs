//! What a user does with billing: start a Checkout for a plan, open the billing portal, see
//! where their subscription and invoices stand.

use super::client::{CheckoutRequest, StripeClient};
use crate::domain::{User, UserId};
use crate::error::{Error, Result};
use crate::service::subscriptions::SubscriptionView;
use crate::service::Engine;
use crate::store::stripe::{self as db, InvoiceRow, RefundRow};
use crate::store::{at, AnyConn};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct CheckoutStarted {
    /// Send the user here to pay.
    pub checkout_url: String,
    pub session_id: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct PortalOpened {
    pub portal_url: String,
}

/// An invoice as the user and finance see it. Amounts in the currency's minor unit.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct InvoiceView {
    pub id: String,
    pub status: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub plan: Option<String>,
    pub billing_reason: Option<String>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

impl From<InvoiceRow> for InvoiceView {
    fn from(r: InvoiceRow) -> Self {
        InvoiceView {
            id: r.invoice_id,
            status: r.status,
            amount_due: r.amount_due,
            amount_paid: r.amount_paid,
            currency: r.currency,
            plan: r.plan_id,
            billing_reason: r.billing_reason,
            period_start: r.period_start.map(at),
            period_end: r.period_end.map(at),
            created: at(r.created),
            paid_at: r.paid_at.map(at),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct RefundView {
    pub charge_id: String,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub refunded_at: DateTime<Utc>,
}

impl From<RefundRow> for RefundView {
    fn from(r: RefundRow) -> Self {
        RefundView {
            charge_id: r.charge_id,
            amount: r.amount,
            amount_refunded: r.amount_refunded,
            currency: r.currency,
            refunded_at: at(r.refunded_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct BillingStatus {
    pub subscription: SubscriptionView,
    /// True once the user has a Stripe customer (the portal can be opened).
    pub has_billing_account: bool,
    /// Newest first.
    pub invoices: Vec<InvoiceView>,
    pub refunds: Vec<RefundView>,
}

fn checked_url(field: &str, raw: &str) -> Result<String> {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(raw.to_owned()),
        _ => Err(Error::validation(
            field,
            "invalid_url",
            "must be an absolute http(s) URL",
        )),
    }
}

impl Engine {
    async fn current_customer_in(&self, conn: &mut AnyConn, user: &str) -> Result<Option<String>> {
        Ok(db::customers_of_user(conn, user)
            .await?
            .into_iter()
            .rev()
            .find(|c| c.deleted_at.is_none())
            .map(|c| c.customer_id))
    }

    /// The user's Stripe customer, if they have one that is not deleted.
    pub async fn stripe_customer(&self, user: &UserId) -> Result<Option<String>> {
        let mut conn = self.db().read().acquire().await?;
        self.current_customer_in(&mut conn, user.as_str()).await
    }

    /// Starts a Stripe Checkout for a paid plan. The customer is created on first use; nothing
    /// is written unless every Stripe call succeeds (a retry then reuses the customer through
    /// the idempotency key).
    #[tracing::instrument(skip(self, user), fields(user = %user.id))]
    pub async fn start_checkout(
        &self,
        user: &User,
        plan_id: &str,
        success_url: Option<&str>,
        cancel_url: Option<&str>,
    ) -> Result<CheckoutStarted> {
        let catalog = self.catalog().await?;
        let plan = catalog
            .plan(plan_id)
            .ok_or_else(|| Error::UnknownPlan(plan_id.to_owned()))?
            .clone();
        if plan.plan.is_free() {
            return Err(Error::PlanIsFree(plan_id.to_owned()));
        }
        let price = plan
            .plan
            .stripe_price_ids
            .first()
            .ok_or_else(|| Error::PlanHasNoPrice(plan_id.to_owned()))?;
        let settings = &self.settings().stripe;
        let success = checked_url("success_url", success_url.unwrap_or(&settings.success_url))?;
        let cancel = checked_url("cancel_url", cancel_url.unwrap_or(&settings.cancel_url))?;
        let client = StripeClient::from_settings(self.settings())?;
        let uid = user.id.as_str();
        let (existing, customers, ever_subscribed) = {
            let mut conn = self.db().read().acquire().await?;
            let current = self.current_customer_in(&mut conn, uid).await?;
            let customers = db::customers_of_user(&mut conn, uid).await?.len();
            let states = db::subscription_states_of_user(&mut conn, uid).await?;
            (current, customers, !states.is_empty())
        };
        let row = self.resolve_subscription(&user.id).await?.row;
        if row.stripe_subscription_id.is_some() && !matches!(row.status.as_str(), "canceled") {
            return Err(Error::AlreadySubscribed);
        }
        let customer = match &existing {
            Some(c) => c.clone(),
            None => {
                let key = format!("tollgate-customer-{uid}-{customers}");
                client
                    .create_customer(uid, user.email.as_str(), &key)
                    .await?
            }
        };
        let (session_id, checkout_url) = client
            .create_checkout_session(&CheckoutRequest {
                customer: &customer,
                price,
                user_id: uid,
                plan: plan_id,
                success_url: &success,
                cancel_url: &cancel,
                trial_days: (!ever_subscribed).then_some(plan.plan.trial_days),
                idempotency_key: &format!("tollgate-checkout-{}", uuid::Uuid::new_v4()),
            })
            .await?;
        if existing.is_none() {
            self.link_customer(&user.id, &customer).await?;
        }
        Ok(CheckoutStarted {
            checkout_url,
            session_id,
        })
    }

    /// Records a new customer of a user and applies the events that were waiting for it.
    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<()> {
        let mut tx = self.db().begin().await?;
        db::insert_customer(&mut tx, customer, user.as_str(), self.now_ms()).await?;
        self.project_user(&mut tx, user.as_str()).await?;
        tx.commit().await?;
        self.subscription_changed(user.as_str());
        let engine = self.clone();
        let customer = customer.to_owned();
        tokio::spawn(async move {
            if let Err(e) = engine.apply_pending_for_customer(&customer).await {
                tracing::warn!(customer = %customer, error = %e, "pending stripe events not applied");
            }
        });
        Ok(())
    }

    /// A billing-portal session for a user with a Stripe customer.
    #[tracing::instrument(skip(self))]
    pub async fn open_billing_portal(&self, user: &UserId) -> Result<PortalOpened> {
        let customer = self
            .stripe_customer(user)
            .await?
            .ok_or(Error::NoBillingAccount)?;
        let client = StripeClient::from_settings(self.settings())?;
        let portal_url = client
            .create_portal_session(
                &customer,
                &self.settings().stripe.portal_return_url,
                &format!("tollgate-portal-{}", uuid::Uuid::new_v4()),
            )
            .await?;
        Ok(PortalOpened { portal_url })
    }

    /// The user's subscription with what Stripe has billed and refunded.
    pub async fn billing_status(&self, user: &UserId) -> Result<BillingStatus> {
        let subscription = self.subscription(user).await?;
        let has_billing_account = self.stripe_customer(user).await?.is_some();
        let invoices = db::invoices_of_user(self.db().read(), user.as_str(), 24)
            .await?
            .into_iter()
            .map(InvoiceView::from)
            .collect();
        let refunds = db::refunds_of_user(self.db().read(), user.as_str())
            .await?
            .into_iter()
            .map(RefundView::from)
            .collect();
        Ok(BillingStatus {
            subscription,
            has_billing_account,
            invoices,
            refunds,
        })
    }
}
