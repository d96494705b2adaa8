//! Back-office queries over many users.

use super::Kind;
use sqlx::any::AnyArguments;
use sqlx::query::QueryAs;
use sqlx::{Any, AnyPool};

/// A value bound to a dynamically built query.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// Binds the values of a dynamically built query. Such queries are not kept as prepared
/// statements (`persistent(false)`): their text varies with the filters, and PostgreSQL then
/// plans each with its actual values, so that a trigram index serves `LIKE '%…%'`.
fn bind_all<'q, O>(
    mut q: QueryAs<'q, Any, O, AnyArguments<'q>>,
    binds: &'q [Bind],
) -> QueryAs<'q, Any, O, AnyArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s.as_str()),
            Bind::Int(i) => q.bind(*i),
        };
    }
    q
}

/// The email-substring condition, through each engine's trigram index: FTS5's trigram
/// tokenizer on SQLite (a quoted phrase matches any substring of 3+ characters), pg_trgm on
/// PostgreSQL.
pub fn substring_filter(kind: Kind, param: &str) -> String {
    match kind {
        Kind::Sqlite => format!("u.id IN (SELECT user_id FROM users_email_search WHERE users_email_search MATCH {param})"),
        Kind::Postgres => format!("u.email LIKE {param}"),
    }
}

/// The value bound to [`substring_filter`]'s parameter for `text`.
pub fn substring_pattern(kind: Kind, text: &str) -> String {
    match kind {
        Kind::Sqlite => format!("email : \"{}\"", text.replace('"', "\"\"")),
        Kind::Postgres => format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        ),
    }
}

/// Every published version of a plan.
pub async fn plan_version_ids(pool: &AnyPool, plan_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM plan_versions WHERE plan_id = $1")
        .bind(plan_id)
        .fetch_all(pool)
        .await
}

#[derive(sqlx::FromRow, Debug)]
pub struct ListedUser {
    pub id: String,
    pub email: String,
    pub full_name: Option<String>,
    pub role: String,
    pub status: String,
    pub plan_id: String,
    pub plan_version: i64,
    pub created_at: i64,
}

/// Users with their subscription and plan. On SQLite `CROSS JOIN` keeps users as the outer
/// loop, so that a page walks the users index in sort order and stops after `limit` rows
/// instead of sorting every subscriber of a plan.
fn from_clause(kind: Kind) -> &'static str {
    match kind {
        Kind::Sqlite => {
            "FROM users u CROSS JOIN subscriptions s ON s.user_id = u.id JOIN plan_versions pv ON pv.id = s.plan_version_id"
        }
        Kind::Postgres => "FROM users u JOIN subscriptions s ON s.user_id = u.id JOIN plan_versions pv ON pv.id = s.plan_version_id",
    }
}

fn where_clause(filters: &[String]) -> String {
    if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    }
}

#[tracing::instrument(level = "debug", skip(pool, binds))]
pub async fn list_users(
    pool: &AnyPool,
    kind: Kind,
    filters: &[String],
    binds: &[Bind],
    order: &str,
    limit: i64,
) -> Result<Vec<ListedUser>, sqlx::Error> {
    let sql = format!(
        "SELECT u.id, u.email, u.full_name, u.role, u.status, pv.plan_id, pv.version AS plan_version, u.created_at
         {} {} ORDER BY {order} LIMIT {limit}",
        from_clause(kind),
        where_clause(filters)
    );
    bind_all(sqlx::query_as(&sql).persistent(false), binds)
        .fetch_all(pool)
        .await
}

/// Matching users, counted up to `cap`.
#[tracing::instrument(level = "debug", skip(pool, binds))]
pub async fn count_users(
    pool: &AnyPool,
    filters: &[String],
    binds: &[Bind],
    cap: i64,
) -> Result<i64, sqlx::Error> {
    // Read only the tables the filters need: every user has exactly one subscription, so a
    // plan filter alone is counted on the subscriptions index.
    let reads_subscription = filters.iter().any(|f| f.starts_with("s."));
    let reads_user = filters.iter().any(|f| !f.starts_with("s."));
    let from = match (reads_subscription, reads_user) {
        (true, true) => "FROM users u JOIN subscriptions s ON s.user_id = u.id",
        (true, false) => "FROM subscriptions s",
        _ => "FROM users u",
    };
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 {from} {} LIMIT {cap}) matching",
        where_clause(filters)
    );
    let (n,): (i64,) = bind_all(sqlx::query_as(&sql).persistent(false), binds)
        .fetch_one(pool)
        .await?;
    Ok(n)
}

pub async fn staff(pool: &AnyPool) -> Result<Vec<super::users::UserRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, email, full_name, password_hash, role, status, created_at, updated_at FROM users
         WHERE role <> 'user' AND status <> 'deleted' ORDER BY email",
    )
    .fetch_all(pool)
    .await
}
