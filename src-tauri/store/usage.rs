//! Usage counters, credit balances and the usage events they are derived from.

use crate::domain::{UsageEventId, UserId};
use sqlx::{Any, AnyConnection, AnyPool, Executor};

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct CounterRow {
    pub user_id: UserId,
    pub metric: String,
    pub period_start: i64,
    pub period_end: i64,
    pub used: i64,
}

/// A counter's value, on the pool or inside a transaction.
#[tracing::instrument(level = "debug", skip(ex))]
pub async fn counter<'e>(
    ex: impl Executor<'e, Database = Any>,
    user: &str,
    metric: &str,
    period_start: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT used FROM usage_counters WHERE user_id = $1 AND metric = $2 AND period_start = $3",
    )
    .bind(user)
    .bind(metric)
    .bind(period_start)
    .fetch_optional(ex)
    .await
}

/// Adds `delta` to a counter, creating it, but only while the result stays within `limit`
/// (`None`: no limit). Returns the new value, or `None` when the limit would be passed. This
/// single statement is the atomic step when several processes share one database.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn add_within(
    conn: &mut AnyConnection,
    user: &str,
    metric: &str,
    period_start: i64,
    period_end: i64,
    delta: i64,
    limit: Option<i64>,
) -> Result<Option<i64>, sqlx::Error> {
    if limit.is_some_and(|l| delta > l) {
        return Ok(None);
    }
    sqlx::query_scalar(
        "INSERT INTO usage_counters (user_id, metric, period_start, period_end, used) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, metric, period_start) DO UPDATE SET used = usage_counters.used + excluded.used
         WHERE $6 IS NULL OR usage_counters.used + excluded.used <= $6
         RETURNING used",
    )
    .bind(user)
    .bind(metric)
    .bind(period_start)
    .bind(period_end)
    .bind(delta)
    .bind(limit)
    .fetch_optional(conn)
    .await
}

/// Sets a counter to a value (repairs, resets).
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn set_counter(
    conn: &mut AnyConnection,
    user: &str,
    metric: &str,
    period_start: i64,
    period_end: i64,
    used: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO usage_counters (user_id, metric, period_start, period_end, used) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, metric, period_start) DO UPDATE SET used = excluded.used",
    )
    .bind(user)
    .bind(metric)
    .bind(period_start)
    .bind(period_end)
    .bind(used)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn all_counters(pool: &AnyPool) -> Result<Vec<CounterRow>, sqlx::Error> {
    sqlx::query_as("SELECT user_id, metric, period_start, period_end, used FROM usage_counters")
        .fetch_all(pool)
        .await
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct CreditRow {
    pub balance: i64,
    pub granted_for: i64,
}

/// A credit balance, on the pool or inside a transaction (`lock`: `FOR UPDATE` on PostgreSQL).
#[tracing::instrument(level = "debug", skip(ex))]
pub async fn credits<'e>(
    ex: impl Executor<'e, Database = Any>,
    user: &str,
    metric: &str,
    lock: bool,
) -> Result<Option<CreditRow>, sqlx::Error> {
    let sql = if lock {
        "SELECT balance, granted_for FROM credit_balances WHERE user_id = $1 AND metric = $2 FOR UPDATE"
    } else {
        "SELECT balance, granted_for FROM credit_balances WHERE user_id = $1 AND metric = $2"
    };
    sqlx::query_as(sql)
        .bind(user)
        .bind(metric)
        .fetch_optional(ex)
        .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn set_credits(
    conn: &mut AnyConnection,
    user: &str,
    metric: &str,
    balance: i64,
    granted_for: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO credit_balances (user_id, metric, balance, granted_for) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, metric) DO UPDATE SET balance = excluded.balance, granted_for = excluded.granted_for",
    )
    .bind(user)
    .bind(metric)
    .bind(balance)
    .bind(granted_for)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds `delta` to a balance unless it would go below zero; returns the new balance.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn add_credits(
    conn: &mut AnyConnection,
    user: &str,
    metric: &str,
    delta: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(ADD_CREDITS)
        .bind(user)
        .bind(metric)
        .bind(delta)
        .fetch_optional(conn)
        .await
}

/// Every credit balance of one user, by metric.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn credits_of_user_in(
    conn: &mut AnyConnection,
    user: &str,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT metric, balance FROM credit_balances WHERE user_id = $1 ORDER BY metric")
        .bind(user)
        .fetch_all(conn)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn all_credits(pool: &AnyPool) -> Result<Vec<(UserId, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT user_id, metric, balance FROM credit_balances")
        .fetch_all(pool)
        .await
}

#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub metric: &'a str,
    pub kind: &'a str,
    pub amount: i64,
    pub at: i64,
    pub period_start: i64,
    pub request_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub answer: Option<&'a str>,
    /// The plan version the event counts under in the usage rollups: the one the decision
    /// was made under. None lets the database fill in the subscription's current version
    /// (the rollup trigger), at the cost of a lookup and a second write of the row.
    pub plan_version_id: Option<&'a str>,
}

/// The head of an event insert; its eleven columns are [`NewEvent`]'s fields in order.
pub(crate) const INSERT_EVENTS: &str = "INSERT INTO usage_events (id, user_id, metric, kind, amount, at, period_start, request_id, idempotency_key, answer, plan_version_id) VALUES ";
/// An event insert of one row (an idempotency-key duplicate is skipped).
pub(crate) const INSERT_EVENT: &str = "INSERT INTO usage_events (id, user_id, metric, kind, amount, at, period_start, request_id, idempotency_key, answer, plan_version_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING";
/// The head and tail of a counter upsert; its five columns are [`CounterDelta`]'s fields.
pub(crate) const ADD_COUNTERS: (&str, &str) = (
    "INSERT INTO usage_counters (user_id, metric, period_start, period_end, used) VALUES ",
    " ON CONFLICT (user_id, metric, period_start) DO UPDATE SET used = usage_counters.used + excluded.used",
);
/// Adds `$3` to a balance unless it would go below zero; answers the new balance.
pub(crate) const ADD_CREDITS: &str = "UPDATE credit_balances SET balance = balance + $3 WHERE user_id = $1 AND metric = $2 AND balance + $3 >= 0 RETURNING balance";
/// Adds `$3` to a balance, creating it, and moves its grant period forward to `$4`.
pub(crate) const ADD_CREDITS_UPSERT: &str = "INSERT INTO credit_balances (user_id, metric, balance, granted_for) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, metric) DO UPDATE SET balance = credit_balances.balance + excluded.balance,
           granted_for = CASE WHEN excluded.granted_for > credit_balances.granted_for
                              THEN excluded.granted_for ELSE credit_balances.granted_for END";
/// Records that a balance's grant for the period starting `$3` was made.
pub(crate) const ADVANCE_GRANTED_FOR: &str = "UPDATE credit_balances SET granted_for = $3 WHERE user_id = $1 AND metric = $2 AND granted_for < $3";

/// Inserts an event; false when its idempotency key was already used.
#[tracing::instrument(level = "debug", skip_all, fields(kind = e.kind))]
pub async fn insert_event(conn: &mut AnyConnection, e: &NewEvent<'_>) -> Result<bool, sqlx::Error> {
    let r = bind_event(sqlx::query(INSERT_EVENT), e)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Binds an event's eleven columns in the order of `insert_event`'s column list.
fn bind_event<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    e: &NewEvent<'q>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    q.bind(e.id)
        .bind(e.user_id)
        .bind(e.metric)
        .bind(e.kind)
        .bind(e.amount)
        .bind(e.at)
        .bind(e.period_start)
        .bind(e.request_id)
        .bind(e.idempotency_key)
        .bind(e.answer)
        .bind(e.plan_version_id)
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct EventRow {
    pub id: UsageEventId,
    pub user_id: UserId,
    pub metric: String,
    pub kind: String,
    pub amount: i64,
    pub at: i64,
    pub period_start: i64,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub answer: Option<String>,
    /// 1 once released.
    pub released: i64,
}

const EVENT_COLUMNS: &str = "id, user_id, metric, kind, amount, at, period_start, request_id, idempotency_key, answer, released";

/// The consumption recorded under an idempotency key, on the pool or inside a transaction.
#[tracing::instrument(level = "debug", skip(ex))]
pub async fn event_by_key<'e>(
    ex: impl Executor<'e, Database = Any>,
    user: &str,
    key: &str,
) -> Result<Option<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM usage_events WHERE user_id = $1 AND idempotency_key = $2 AND kind = 'consume'"
    ))
    .bind(user)
    .bind(key)
    .fetch_optional(ex)
    .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn event_in(conn: &mut AnyConnection, id: &str) -> Result<Option<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM usage_events WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Marks a consumption released; false when it already was.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn mark_released(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE usage_events SET released = 1 WHERE id = $1 AND kind = 'consume' AND released = 0",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn recent_events(
    pool: &AnyPool,
    user: &str,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {EVENT_COLUMNS} FROM usage_events WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2"))
        .bind(user)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Net use per metric and UTC day since `since_ms`: (metric, day start ms, amount).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn daily_history(
    pool: &AnyPool,
    user: &str,
    since_ms: i64,
    metric: Option<&str>,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT metric, (at / 86400000) * 86400000 AS day, CAST(SUM(amount) AS BIGINT) AS total
         FROM usage_events
         WHERE user_id = $1 AND at >= $2 AND kind IN ('consume', 'release') AND ($3 IS NULL OR metric = $3)
         GROUP BY metric, (at / 86400000) * 86400000
         ORDER BY day, metric",
    )
    .bind(user)
    .bind(since_ms)
    .bind(metric)
    .fetch_all(pool)
    .await
}

/// What the events say every counter should be: (user, metric, period_start, used).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn counters_from_events(
    pool: &AnyPool,
) -> Result<Vec<(UserId, String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, metric, period_start, CAST(SUM(amount) AS BIGINT) FROM usage_events
         WHERE kind IN ('consume', 'release', 'reset') AND period_start >= 0
         GROUP BY user_id, metric, period_start",
    )
    .fetch_all(pool)
    .await
}

/// What the events say every credit balance should be: grants minus spending.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn credits_from_events(
    pool: &AnyPool,
) -> Result<Vec<(UserId, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, metric, CAST(SUM(CASE WHEN kind = 'grant' THEN amount ELSE -amount END) AS BIGINT)
         FROM usage_events WHERE kind IN ('grant', 'expire', 'consume', 'release') AND period_start = -1
         GROUP BY user_id, metric",
    )
    .fetch_all(pool)
    .await
}

#[allow(clippy::too_many_arguments)]
#[tracing::instrument(level = "debug", skip(conn, facts))]
pub async fn insert_decision(
    conn: &mut AnyConnection,
    request_id: &str,
    user_id: Option<&str>,
    key_prefix: Option<&str>,
    code: &str,
    status: i64,
    route: Option<&str>,
    facts: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO decisions (request_id, user_id, key_prefix, code, status, route, facts, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request_id)
    .bind(user_id)
    .bind(key_prefix)
    .bind(code)
    .bind(status)
    .bind(route)
    .bind(facts)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct DecisionRow {
    pub request_id: String,
    pub user_id: Option<UserId>,
    pub key_prefix: Option<String>,
    pub code: String,
    pub status: i64,
    pub route: Option<String>,
    pub facts: String,
    pub at: i64,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn decision(
    pool: &AnyPool,
    request_id: &str,
) -> Result<Option<DecisionRow>, sqlx::Error> {
    sqlx::query_as("SELECT request_id, user_id, key_prefix, code, status, route, facts, at FROM decisions WHERE request_id = $1")
        .bind(request_id)
        .fetch_optional(pool)
        .await
}

/// Adds `delta` to a balance, creating it; `granted_for` only moves forward.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn add_credits_upsert(
    conn: &mut AnyConnection,
    user: &str,
    metric: &str,
    delta: i64,
    granted_for: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(ADD_CREDITS_UPSERT)
        .bind(user)
        .bind(metric)
        .bind(delta)
        .bind(granted_for)
        .execute(conn)
        .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn set_balance(
    conn: &mut AnyConnection,
    user: &str,
    metric: &str,
    balance: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE credit_balances SET balance = $3 WHERE user_id = $1 AND metric = $2")
        .bind(user)
        .bind(metric)
        .bind(balance)
        .execute(conn)
        .await?;
    Ok(())
}

/// `($1,$2,…),($n+1,…)`: `rows` rows of `columns` placeholders.
fn push_value_rows(sql: &mut String, rows: usize, columns: usize) {
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            sql.push('$');
            sql.push_str(&(i * columns + c + 1).to_string());
        }
        sql.push(')');
    }
}

/// Chunks of a few fixed sizes, so that the statement cache keeps finding the same prepared
/// statements instead of parsing a new one for every batch size.
fn next_chunk<T>(rest: &[T]) -> (&[T], &[T]) {
    let size = [256, 64, 16, 4, 1]
        .into_iter()
        .find(|n| *n <= rest.len())
        .unwrap_or(1);
    rest.split_at(size)
}

/// One counter's change in a group commit.
pub struct CounterDelta<'a> {
    pub user_id: &'a str,
    pub metric: &'a str,
    pub period_start: i64,
    pub period_end: i64,
    pub delta: i64,
}

/// Adds many counter deltas in one statement per chunk (no limit: the caller decided them).
/// Each (user, metric, period) must appear once, as one upsert may not touch a row twice.
#[tracing::instrument(level = "debug", skip_all, fields(n = deltas.len()))]
pub async fn add_counters_batch(
    conn: &mut AnyConnection,
    deltas: &[CounterDelta<'_>],
) -> Result<(), sqlx::Error> {
    let mut rest = deltas;
    while !rest.is_empty() {
        let (chunk, tail) = next_chunk(rest);
        rest = tail;
        let mut sql = String::with_capacity(200 + chunk.len() * 32);
        sql.push_str(ADD_COUNTERS.0);
        push_value_rows(&mut sql, chunk.len(), 5);
        sql.push_str(ADD_COUNTERS.1);
        let mut q = sqlx::query(&sql);
        for d in chunk {
            q = q
                .bind(d.user_id)
                .bind(d.metric)
                .bind(d.period_start)
                .bind(d.period_end)
                .bind(d.delta);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Inserts many events in one statement per chunk (idempotency-key duplicates are skipped).
#[tracing::instrument(level = "debug", skip_all, fields(n = events.len()))]
pub async fn insert_events_batch(
    conn: &mut AnyConnection,
    events: &[NewEvent<'_>],
) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 11;
    let mut rest = events;
    while !rest.is_empty() {
        let (chunk, tail) = next_chunk(rest);
        rest = tail;
        let mut sql = String::with_capacity(140 + chunk.len() * 64);
        sql.push_str(INSERT_EVENTS);
        push_value_rows(&mut sql, chunk.len(), COLUMNS);
        sql.push_str(" ON CONFLICT DO NOTHING");
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = bind_event(q, e);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Records that a balance's grant for the period starting `granted_for` was made.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn advance_granted_for(
    conn: &mut AnyConnection,
    user: &str,
    metric: &str,
    granted_for: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(ADVANCE_GRANTED_FOR)
        .bind(user)
        .bind(metric)
        .bind(granted_for)
        .execute(conn)
        .await?;
    Ok(())
}

/// A user's latest events of one metric, newest first (a credit metric's ledger).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn recent_events_of(
    pool: &AnyPool,
    user: &str,
    metric: &str,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {EVENT_COLUMNS} FROM usage_events WHERE user_id = $1 AND metric = $2 ORDER BY at DESC, id DESC LIMIT $3"))
        .bind(user)
        .bind(metric)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// A user's latest refusals, newest first.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn recent_decisions(
    pool: &AnyPool,
    user: &str,
    limit: i64,
) -> Result<Vec<DecisionRow>, sqlx::Error> {
    sqlx::query_as("SELECT request_id, user_id, key_prefix, code, status, route, facts, at FROM decisions WHERE user_id = $1 ORDER BY at DESC, request_id DESC LIMIT $2")
        .bind(user)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// The latest refusals of every caller, newest first.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn latest_decisions(pool: &AnyPool, limit: i64) -> Result<Vec<DecisionRow>, sqlx::Error> {
    sqlx::query_as("SELECT request_id, user_id, key_prefix, code, status, route, facts, at FROM decisions ORDER BY at DESC, request_id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(pool)
        .await
}
