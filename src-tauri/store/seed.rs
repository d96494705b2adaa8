//! Bulk inserts for `tollgate dev seed`: many rows per statement, many statements per
//! transaction.

use super::usage_rollups::common_prefix;
use sqlx::AnyConnection;

/// One value of a bulk-inserted row.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Int(i64),
    Null,
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}
impl From<i64> for Cell {
    fn from(n: i64) -> Cell {
        Cell::Int(n)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Cell {
        v.map_or(Cell::Null, Into::into)
    }
}

/// Bound values per statement. sqlx looks each parameter up by name, and SQLite finds a name
/// by walking the statement's list of them, so binding costs the square of the values bound:
/// a statement of 32,000 values spends nearly all its time there. Rows are sent in statements
/// of about this many values instead.
const VALUES_PER_STATEMENT: usize = 800;

/// Inserts `rows` into `into` (`table (col, …)`), as many statements as the rows need (each
/// row with as many cells as the column list names).
pub async fn insert_rows(
    conn: &mut AnyConnection,
    into: &str,
    rows: &[Vec<Cell>],
) -> Result<(), sqlx::Error> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    for chunk in rows.chunks((VALUES_PER_STATEMENT / width).max(1)) {
        insert_statement(&mut *conn, into, width, chunk).await?;
    }
    Ok(())
}

async fn insert_statement(
    conn: &mut AnyConnection,
    into: &str,
    width: usize,
    rows: &[Vec<Cell>],
) -> Result<(), sqlx::Error> {
    let mut sql = format!("INSERT INTO {into} VALUES ");
    let mut n = 0;
    for (i, row) in rows.iter().enumerate() {
        debug_assert_eq!(row.len(), width, "every row has the same columns");
        sql.push_str(if i == 0 { "(" } else { ",(" });
        for j in 0..row.len() {
            n += 1;
            sql.push_str(&format!("{}${n}", if j == 0 { "" } else { "," }));
        }
        sql.push(')');
    }
    let mut q = sqlx::query(&sql);
    for cell in rows.iter().flatten() {
        q = match cell {
            Cell::Text(s) => q.bind(s.as_str()),
            Cell::Int(v) => q.bind(*v),
            Cell::Null => q.bind(None::<i64>),
        };
    }
    q.execute(conn).await?;
    Ok(())
}

pub struct SeedUser {
    pub id: String,
    pub email: String,
    pub full_name: String,
    pub status: &'static str,
    pub created_at: i64,
    pub plan_version_id: crate::domain::PlanVersionId,
    pub sub_id: String,
    pub period_end: i64,
}

/// Inserts users and their subscriptions (rows share one password hash).
pub async fn insert_users(
    conn: &mut AnyConnection,
    rows: &[SeedUser],
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    let users: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
            let deleted_at = (r.status == "deleted").then_some(r.created_at);
            vec![
                r.id.as_str().into(),
                r.email.as_str().into(),
                r.full_name.as_str().into(),
                password_hash.into(),
                "user".into(),
                r.status.into(),
                r.created_at.into(),
                r.created_at.into(),
                deleted_at.into(),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "users (id, email, full_name, password_hash, role, status, created_at, updated_at, deleted_at)",
        &users,
    )
    .await?;
    let subscriptions: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
            vec![
                r.sub_id.as_str().into(),
                r.id.as_str().into(),
                r.plan_version_id.as_str().into(),
                "active".into(),
                r.created_at.into(),
                r.created_at.into(),
                r.period_end.into(),
                0.into(),
                r.created_at.into(),
                r.created_at.into(),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "subscriptions (id, user_id, plan_version_id, status, period_anchor, current_period_start, \
         current_period_end, cancel_at_period_end, created_at, updated_at)",
        &subscriptions,
    )
    .await
}

pub struct SeedEvent {
    pub id: String,
    pub user_id: String,
    pub metric: String,
    pub at: i64,
    pub period_start: i64,
    /// The plan version the event counts under (what the triggers would look up).
    pub plan_version_id: crate::domain::PlanVersionId,
}

pub async fn insert_events(
    conn: &mut AnyConnection,
    rows: &[SeedEvent],
) -> Result<(), sqlx::Error> {
    let rows: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.as_str().into(),
                r.user_id.as_str().into(),
                r.metric.as_str().into(),
                "consume".into(),
                1.into(),
                r.at.into(),
                r.period_start.into(),
                r.plan_version_id.as_str().into(),
            ]
        })
        .collect();
    insert_rows(
        conn,
        "usage_events (id, user_id, metric, kind, amount, at, period_start, plan_version_id)",
        &rows,
    )
    .await
}

/// Adds the usage events whose ids lie in `[first_id, last_id]` to their daily counters, one
/// set-based statement (the seeder's counters are day windows).
pub async fn add_counters_from_events(
    conn: &mut AnyConnection,
    first_id: &str,
    last_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO usage_counters (user_id, metric, period_start, period_end, used)
         SELECT user_id, metric, period_start, period_start + 86400000, SUM(amount)
         FROM usage_events WHERE id BETWEEN $1 AND $2 AND substr(id, 1, CAST($3 AS INTEGER)) = $4
         GROUP BY user_id, metric, period_start
         ON CONFLICT (user_id, metric, period_start)
         DO UPDATE SET used = usage_counters.used + excluded.used",
    )
    .bind(first_id)
    .bind(last_id)
    .bind(common_prefix(first_id, last_id).len() as i64)
    .bind(common_prefix(first_id, last_id))
    .execute(conn)
    .await?;
    Ok(())
}

/// Customers' ids for a revenue history: users who are not staff and not deleted, oldest first.
pub async fn customer_ids(
    conn: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM users WHERE role = 'user' AND deleted_at IS NULL ORDER BY created_at, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Puts a customer who still pays on the plan version they pay for, linked to Stripe.
pub async fn link_subscription(
    conn: &mut AnyConnection,
    user_id: &str,
    plan_version_id: &str,
    customer_id: &str,
    subscription_id: &str,
    period: (i64, i64),
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE subscriptions SET plan_version_id = $2, stripe_customer_id = $3,
                stripe_subscription_id = $4, period_anchor = $5, current_period_start = $5,
                current_period_end = $6, stripe_updated_at = $5, updated_at = $5
         WHERE user_id = $1",
    )
    .bind(user_id)
    .bind(plan_version_id)
    .bind(customer_id)
    .bind(subscription_id)
    .bind(period.0)
    .bind(period.1)
    .execute(conn)
    .await?;
    Ok(())
}
