//! Stripe events as received, customers linked to users, and the facts events carry.

use crate::domain::UserId;
use sqlx::{AnyConnection, AnyPool};

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: String,
    #[sqlx(rename = "type")]
    pub type_: String,
    pub created: i64,
    pub livemode: i64,
    pub payload: String,
    pub received_at: i64,
    pub status: String,
    pub error: Option<String>,
    pub customer_id: Option<String>,
    pub user_id: Option<UserId>,
    pub applied_at: Option<i64>,
    pub attempts: i64,
}

const EVENT_COLUMNS: &str = "id, type, created, livemode, payload, received_at, status, error, \
     customer_id, user_id, applied_at, attempts";

pub struct NewEvent<'a> {
    pub id: &'a str,
    pub type_: &'a str,
    pub created: i64,
    pub livemode: bool,
    pub payload: &'a str,
    pub received_at: i64,
    pub customer_id: Option<&'a str>,
}

/// Stores an event as `pending`; false when an event with this id is already stored.
#[tracing::instrument(level = "debug", skip_all, fields(id = e.id))]
pub async fn insert_event(conn: &mut AnyConnection, e: &NewEvent<'_>) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO stripe_events (id, type, created, livemode, payload, received_at, status, customer_id, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, 0)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id)
    .bind(e.type_)
    .bind(e.created)
    .bind(i64::from(e.livemode))
    .bind(e.payload)
    .bind(e.received_at)
    .bind(e.customer_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn event_in(conn: &mut AnyConnection, id: &str) -> Result<Option<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM stripe_events WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The event, locked against a concurrent apply on PostgreSQL.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn event_for_update(
    conn: &mut AnyConnection,
    id: &str,
    pg: bool,
) -> Result<Option<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM stripe_events WHERE id = $1{}",
        if pg { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn event(pool: &AnyPool, id: &str) -> Result<Option<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM stripe_events WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Records how applying an event ended.
#[tracing::instrument(level = "debug", skip(conn, error))]
pub async fn set_event_outcome(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    error: Option<&str>,
    user_id: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE stripe_events SET status = $2, error = $3, user_id = COALESCE($4, user_id),
           applied_at = CASE WHEN $2 = 'pending' THEN applied_at ELSE $5 END, attempts = attempts + 1
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(error)
    .bind(user_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Events by type and status, oldest `created` first.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list_events(
    pool: &AnyPool,
    type_: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM stripe_events
         WHERE ($1 IS NULL OR type = $1) AND ($2 IS NULL OR status = $2)
         ORDER BY created, id LIMIT $3"
    ))
    .bind(type_)
    .bind(status)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One page of events, newest `created` first, by type, status and customer or user; after
/// the keyset (`created`, `id`) of the previous page's last event.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn page_events(
    pool: &AnyPool,
    type_: Option<&str>,
    status: Option<&str>,
    customer_or_user: Option<&str>,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let (after_created, after_id) = match after {
        Some((c, id)) => (Some(c), Some(id)),
        None => (None, None),
    };
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM stripe_events
         WHERE ($1 IS NULL OR type = $1) AND ($2 IS NULL OR status = $2)
           AND ($3 IS NULL OR customer_id = $3 OR user_id = $3)
           AND ($4 IS NULL OR created < $4 OR (created = $4 AND id < $5))
         ORDER BY created DESC, id DESC LIMIT $6"
    ))
    .bind(type_)
    .bind(status)
    .bind(customer_or_user)
    .bind(after_created)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The note of a pending event imported from a file (unsigned local test data): nothing
/// applies it on its own (neither upkeep nor a customer being linked), only a replay.
pub const HELD: &str = "unsigned local test data: applied only by a replay";

/// Marks a stored pending event as held for a replay.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn hold_event(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE stripe_events SET error = $2 WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .bind(HELD)
        .execute(conn)
        .await?;
    Ok(())
}

/// Pending events worth another try, in `created` order: never tried, or whose customer is
/// now known; never those held for a replay.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn pending_ids(pool: &AnyPool, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM stripe_events
         WHERE status = 'pending' AND (error IS NULL OR error <> $2)
           AND (attempts = 0 OR customer_id IN (SELECT customer_id FROM stripe_customers))
         ORDER BY created, id LIMIT $1",
    )
    .bind(limit)
    .bind(HELD)
    .fetch_all(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn pending_ids_for_customer(
    conn: &mut AnyConnection,
    customer: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM stripe_events
         WHERE status = 'pending' AND customer_id = $1 AND (error IS NULL OR error <> $2)
         ORDER BY created, id",
    )
    .bind(customer)
    .bind(HELD)
    .fetch_all(conn)
    .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn user_exists(conn: &mut AnyConnection, user: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

// ---------------------------------------------------------------------------------------------
// Customers

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub customer_id: String,
    pub user_id: UserId,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn customer_in(
    conn: &mut AnyConnection,
    customer: &str,
) -> Result<Option<CustomerRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT customer_id, user_id, created_at, deleted_at FROM stripe_customers WHERE customer_id = $1",
    )
    .bind(customer)
    .fetch_optional(conn)
    .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn customers_of_user(
    conn: &mut AnyConnection,
    user: &str,
) -> Result<Vec<CustomerRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT customer_id, user_id, created_at, deleted_at FROM stripe_customers
         WHERE user_id = $1 ORDER BY created_at, customer_id",
    )
    .bind(user)
    .fetch_all(conn)
    .await
}

/// Links a customer to a user; false when the customer was already linked.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn insert_customer(
    conn: &mut AnyConnection,
    customer: &str,
    user: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO stripe_customers (customer_id, user_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (customer_id) DO NOTHING",
    )
    .bind(customer)
    .bind(user)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks a customer deleted (the earliest time wins, so repeats change nothing).
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn mark_customer_deleted(
    conn: &mut AnyConnection,
    customer: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE stripe_customers SET deleted_at = $2
         WHERE customer_id = $1 AND (deleted_at IS NULL OR deleted_at > $2)",
    )
    .bind(customer)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Serializes work on one user's billing state across processes (PostgreSQL); SQLite's single
/// writer already does.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn lock_user(conn: &mut AnyConnection, user: &str, pg: bool) -> Result<(), sqlx::Error> {
    if pg {
        sqlx::query("SELECT id FROM subscriptions WHERE user_id = $1 FOR UPDATE")
            .bind(user)
            .fetch_optional(conn)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Subscriptions as Stripe last told

#[derive(sqlx::FromRow, Debug, Clone, PartialEq, serde::Serialize)]
pub struct SubscriptionState {
    pub subscription_id: String,
    pub customer_id: String,
    pub user_id: UserId,
    pub price_id: Option<String>,
    pub status: String,
    pub current_period_start: i64,
    pub current_period_end: i64,
    pub cancel_at_period_end: i64,
    pub trial_end: Option<i64>,
    pub ended_at: Option<i64>,
    pub started_at: i64,
    pub deleted: i64,
    pub state_at: i64,
    pub state_event: String,
    pub updated_at: i64,
}

const SUB_COLUMNS: &str = "subscription_id, customer_id, user_id, price_id, status, current_period_start, \
     current_period_end, cancel_at_period_end, trial_end, ended_at, started_at, deleted, state_at, state_event, updated_at";

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn subscription_state_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<SubscriptionState>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUB_COLUMNS} FROM stripe_subscriptions WHERE subscription_id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn subscription_states_of_user(
    conn: &mut AnyConnection,
    user: &str,
) -> Result<Vec<SubscriptionState>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUB_COLUMNS} FROM stripe_subscriptions WHERE user_id = $1 ORDER BY started_at, subscription_id"
    ))
    .bind(user)
    .fetch_all(conn)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn all_subscription_states(
    pool: &AnyPool,
) -> Result<Vec<SubscriptionState>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUB_COLUMNS} FROM stripe_subscriptions ORDER BY started_at, subscription_id"
    ))
    .fetch_all(pool)
    .await
}

#[tracing::instrument(level = "debug", skip_all, fields(id = %s.subscription_id))]
pub async fn put_subscription_state(
    conn: &mut AnyConnection,
    s: &SubscriptionState,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO stripe_subscriptions ({SUB_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (subscription_id) DO UPDATE SET customer_id = $2, user_id = $3, price_id = $4,
           status = $5, current_period_start = $6, current_period_end = $7, cancel_at_period_end = $8,
           trial_end = $9, ended_at = $10, started_at = $11, deleted = $12, state_at = $13,
           state_event = $14, updated_at = $15"
    ))
    .bind(&s.subscription_id)
    .bind(&s.customer_id)
    .bind(&s.user_id)
    .bind(&s.price_id)
    .bind(&s.status)
    .bind(s.current_period_start)
    .bind(s.current_period_end)
    .bind(s.cancel_at_period_end)
    .bind(s.trial_end)
    .bind(s.ended_at)
    .bind(s.started_at)
    .bind(s.deleted)
    .bind(s.state_at)
    .bind(&s.state_event)
    .bind(s.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Invoices and refunds: what finance counts

#[derive(sqlx::FromRow, Debug, Clone, PartialEq, serde::Serialize)]
pub struct InvoiceRow {
    pub invoice_id: String,
    pub customer_id: String,
    pub user_id: UserId,
    pub subscription_id: Option<String>,
    pub status: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub billing_reason: Option<String>,
    pub price_id: Option<String>,
    pub plan_id: Option<String>,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub created: i64,
    pub paid_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub attempt_count: i64,
    pub updated_at: i64,
}

const INVOICE_COLUMNS: &str = "invoice_id, customer_id, user_id, subscription_id, status, amount_due, \
     amount_paid, currency, billing_reason, price_id, plan_id, period_start, period_end, created, paid_at, \
     failed_at, attempt_count, updated_at";

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn invoice_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS} FROM stripe_invoices WHERE invoice_id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn invoices_of_subscription(
    conn: &mut AnyConnection,
    subscription: &str,
) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS} FROM stripe_invoices WHERE subscription_id = $1 ORDER BY created, invoice_id"
    ))
    .bind(subscription)
    .fetch_all(conn)
    .await
}

/// A user's invoices, newest first.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn invoices_of_user(
    pool: &AnyPool,
    user: &str,
    limit: i64,
) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INVOICE_COLUMNS} FROM stripe_invoices WHERE user_id = $1 ORDER BY created DESC, invoice_id DESC LIMIT $2"
    ))
    .bind(user)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[tracing::instrument(level = "debug", skip_all, fields(id = %i.invoice_id))]
pub async fn put_invoice(conn: &mut AnyConnection, i: &InvoiceRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO stripe_invoices ({INVOICE_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (invoice_id) DO UPDATE SET customer_id = $2, user_id = $3, subscription_id = $4,
           status = $5, amount_due = $6, amount_paid = $7, currency = $8, billing_reason = $9,
           price_id = $10, plan_id = $11, period_start = $12, period_end = $13, created = $14,
           paid_at = $15, failed_at = $16, attempt_count = $17, updated_at = $18"
    ))
    .bind(&i.invoice_id)
    .bind(&i.customer_id)
    .bind(&i.user_id)
    .bind(&i.subscription_id)
    .bind(&i.status)
    .bind(i.amount_due)
    .bind(i.amount_paid)
    .bind(&i.currency)
    .bind(&i.billing_reason)
    .bind(&i.price_id)
    .bind(&i.plan_id)
    .bind(i.period_start)
    .bind(i.period_end)
    .bind(i.created)
    .bind(i.paid_at)
    .bind(i.failed_at)
    .bind(i.attempt_count)
    .bind(i.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow, Debug, Clone, PartialEq, serde::Serialize)]
pub struct RefundRow {
    pub charge_id: String,
    pub customer_id: String,
    pub user_id: UserId,
    pub payment_intent: Option<String>,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub refunded: i64,
    pub refunded_at: i64,
    pub updated_at: i64,
}

const REFUND_COLUMNS: &str =
    "charge_id, customer_id, user_id, payment_intent, amount, amount_refunded, \
     currency, refunded, refunded_at, updated_at";

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn refund_in(
    conn: &mut AnyConnection,
    charge: &str,
) -> Result<Option<RefundRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM stripe_refunds WHERE charge_id = $1"
    ))
    .bind(charge)
    .fetch_optional(conn)
    .await
}

#[tracing::instrument(level = "debug", skip_all, fields(charge = %r.charge_id))]
pub async fn put_refund(conn: &mut AnyConnection, r: &RefundRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO stripe_refunds ({REFUND_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (charge_id) DO UPDATE SET customer_id = $2, user_id = $3, payment_intent = $4,
           amount = $5, amount_refunded = $6, currency = $7, refunded = $8, refunded_at = $9, updated_at = $10"
    ))
    .bind(&r.charge_id)
    .bind(&r.customer_id)
    .bind(&r.user_id)
    .bind(&r.payment_intent)
    .bind(r.amount)
    .bind(r.amount_refunded)
    .bind(&r.currency)
    .bind(r.refunded)
    .bind(r.refunded_at)
    .bind(r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn refunds_of_user(pool: &AnyPool, user: &str) -> Result<Vec<RefundRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REFUND_COLUMNS} FROM stripe_refunds WHERE user_id = $1 ORDER BY refunded_at, charge_id"
    ))
    .bind(user)
    .fetch_all(pool)
    .await
}

/// Money per currency: (currency, paid, refunded), optionally for one user.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn revenue(
    pool: &AnyPool,
    user: Option<&str>,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT currency, CAST(SUM(paid) AS BIGINT), CAST(SUM(refunded) AS BIGINT) FROM (
           SELECT currency, amount_paid AS paid, 0 AS refunded FROM stripe_invoices
             WHERE status = 'paid' AND ($1 IS NULL OR user_id = $1)
           UNION ALL
           SELECT currency, 0 AS paid, amount_refunded AS refunded FROM stripe_refunds
             WHERE ($1 IS NULL OR user_id = $1)
         ) money GROUP BY currency ORDER BY currency",
    )
    .bind(user)
    .fetch_all(pool)
    .await
}
