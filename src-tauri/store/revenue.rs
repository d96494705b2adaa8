//! What the revenue reports read: paid invoices, how subscriptions ended, and refunds, in
//! compact rows. The month snapshots are computed from these in `service::revenue`.

use crate::domain::UserId;
use sqlx::AnyPool;

/// A paid invoice, as revenue needs it. Times in Unix ms.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct PaidInvoice {
    pub invoice_id: String,
    pub user_id: UserId,
    pub subscription_id: Option<String>,
    pub billing_reason: Option<String>,
    pub price_id: Option<String>,
    pub plan_id: Option<String>,
    pub currency: String,
    pub amount_paid: i64,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub created: i64,
    /// `paid_at`, or `created` when Stripe gave no payment time.
    pub paid_at: i64,
}

/// Every paid invoice, oldest first (by `created`, then id), given to `each` one at a time so
/// that a long history is never held as rows.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn each_paid_invoice(
    pool: &AnyPool,
    mut each: impl FnMut(PaidInvoice),
) -> Result<(), sqlx::Error> {
    use futures_util::TryStreamExt;
    let mut rows = sqlx::query_as::<_, PaidInvoice>(
        "SELECT invoice_id, user_id, subscription_id, billing_reason, price_id, plan_id, currency,
                amount_paid, period_start, period_end, created, COALESCE(paid_at, created) AS paid_at
         FROM stripe_invoices WHERE status = 'paid'
         ORDER BY created, invoice_id",
    )
    .fetch(pool);
    while let Some(row) = rows.try_next().await? {
        each(row);
    }
    Ok(())
}

/// How a subscription ended (if it did) and when its trial ended, as Stripe last told.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct SubscriptionEnd {
    pub subscription_id: String,
    pub status: String,
    pub deleted: i64,
    pub ended_at: Option<i64>,
    pub trial_end: Option<i64>,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn subscription_ends(pool: &AnyPool) -> Result<Vec<SubscriptionEnd>, sqlx::Error> {
    sqlx::query_as(
        "SELECT subscription_id, status, deleted, ended_at, trial_end FROM stripe_subscriptions
         ORDER BY subscription_id",
    )
    .fetch_all(pool)
    .await
}

/// A charge's refunds: `amount_refunded` is cumulative, `refunded_at` the latest refund event.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct Refund {
    pub charge_id: String,
    pub user_id: UserId,
    pub currency: String,
    pub amount_refunded: i64,
    pub refunded_at: i64,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn refunds(pool: &AnyPool) -> Result<Vec<Refund>, sqlx::Error> {
    sqlx::query_as(
        "SELECT charge_id, user_id, currency, amount_refunded, refunded_at FROM stripe_refunds
         WHERE amount_refunded > 0 ORDER BY refunded_at, charge_id",
    )
    .fetch_all(pool)
    .await
}

/// Changes whenever a paid invoice, a subscription's end or a refund does (kept by triggers).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn version(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM revenue_version WHERE id = 1")
        .fetch_one(pool)
        .await
}
