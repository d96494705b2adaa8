use crate::domain::{PlanVersionId, SubscriptionId, UserId};
use sqlx::{AnyConnection, AnyPool};

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct SubscriptionRow {
    pub id: SubscriptionId,
    pub user_id: UserId,
    pub plan_version_id: PlanVersionId,
    pub status: String,
    pub period_anchor: i64,
    pub current_period_start: i64,
    pub current_period_end: i64,
    /// 1 when the subscription ends (or downgrades) at the end of the period.
    pub cancel_at_period_end: i64,
    pub scheduled_plan_version_id: Option<PlanVersionId>,
    pub trial_end: Option<i64>,
    pub grace_until: Option<i64>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub stripe_updated_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, user_id, plan_version_id, status, period_anchor, current_period_start, current_period_end, \
     cancel_at_period_end, scheduled_plan_version_id, trial_end, grace_until, stripe_customer_id, \
     stripe_subscription_id, stripe_updated_at, created_at, updated_at";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the subscription's state, from `plan_version_id` to `stripe_updated_at`, in the column
/// order both statements below use.
fn bind_state<'q>(q: AnyQuery<'q>, s: &'q SubscriptionRow) -> AnyQuery<'q> {
    q.bind(&s.plan_version_id)
        .bind(&s.status)
        .bind(s.period_anchor)
        .bind(s.current_period_start)
        .bind(s.current_period_end)
        .bind(s.cancel_at_period_end)
        .bind(&s.scheduled_plan_version_id)
        .bind(s.trial_end)
        .bind(s.grace_until)
        .bind(&s.stripe_customer_id)
        .bind(&s.stripe_subscription_id)
        .bind(s.stripe_updated_at)
}

#[tracing::instrument(level = "debug", skip_all, fields(user = %s.user_id))]
pub async fn insert(conn: &mut AnyConnection, s: &SubscriptionRow) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO subscriptions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    let q = bind_state(sqlx::query(&sql).bind(&s.id).bind(&s.user_id), s);
    q.bind(s.created_at)
        .bind(s.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes every mutable field of a subscription.
#[tracing::instrument(level = "debug", skip_all, fields(user = %s.user_id))]
pub async fn update(conn: &mut AnyConnection, s: &SubscriptionRow) -> Result<(), sqlx::Error> {
    let q = sqlx::query(
        "UPDATE subscriptions SET plan_version_id = $2, status = $3, period_anchor = $4, current_period_start = $5,
           current_period_end = $6, cancel_at_period_end = $7, scheduled_plan_version_id = $8, trial_end = $9,
           grace_until = $10, stripe_customer_id = $11, stripe_subscription_id = $12, stripe_updated_at = $13,
           updated_at = $14
         WHERE id = $1",
    );
    bind_state(q.bind(&s.id), s)
        .bind(s.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn for_user(pool: &AnyPool, user: &str) -> Result<Option<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE user_id = $1"
    ))
    .bind(user)
    .fetch_optional(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn for_user_in(
    conn: &mut AnyConnection,
    user: &str,
) -> Result<Option<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE user_id = $1"
    ))
    .bind(user)
    .fetch_optional(conn)
    .await
}

/// Moves every subscriber of one plan version to another; returns how many moved.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn migrate_plan_version(
    conn: &mut AnyConnection,
    from: &str,
    to: &str,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE subscriptions SET plan_version_id = $2, updated_at = $3 WHERE plan_version_id = $1",
    )
    .bind(from)
    .bind(to)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}
