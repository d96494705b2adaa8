//! Back-office queries over many users.

use super::Kind;
use crate::domain::UserId;
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
    pub id: UserId,
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
async fn list_users(
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
async fn count_users(
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

/// How a user search is ordered; its keyset cursor follows the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOrder {
    CreatedDesc,
    CreatedAsc,
    EmailAsc,
}

/// Where a page starts: after the user with this sort key (`created_at` ms or email) and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Created(i64, String),
    Email(String, String),
}

/// How the email is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailMatch {
    /// By range on the email index: `ada@` matches `ada@…`.
    Prefix(String),
    /// Any part of the email, through the trigram index (3 characters or more).
    Substring(String),
}

/// A user search, as the service checked it. Every filter is optional; values are bound,
/// never written into the SQL text.
#[derive(Debug, Clone, Default)]
pub struct UserSearch {
    pub email: Option<EmailMatch>,
    /// Exactly this user id (`usr_…`).
    pub id: Option<String>,
    /// The user who has (or had) this Stripe customer (`cus_…`).
    pub stripe_customer: Option<String>,
    /// Subscriptions on any of these plan versions.
    pub plan_versions: Option<Vec<String>>,
    pub status: Option<String>,
    pub role: Option<String>,
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
}

/// Conditions and bound values, numbered `$1…` in order.
#[derive(Default)]
struct Conditions {
    filters: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    fn param(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }

    fn of(kind: Kind, s: &UserSearch) -> Conditions {
        let mut c = Conditions::default();
        match &s.email {
            Some(EmailMatch::Prefix(text)) => {
                let lo = c.param(Bind::Text(text.clone()));
                let hi = c.param(Bind::Text(format!("{text}\u{10FFFF}")));
                c.filters
                    .push(format!("(u.email >= {lo} AND u.email < {hi})"));
            }
            Some(EmailMatch::Substring(text)) => {
                let p = c.param(Bind::Text(substring_pattern(kind, text)));
                c.filters.push(substring_filter(kind, &p));
            }
            None => {}
        }
        if let Some(id) = &s.id {
            let p = c.param(Bind::Text(id.clone()));
            c.filters.push(format!("u.id = {p}"));
        }
        if let Some(customer) = &s.stripe_customer {
            // Through the customers table's primary key: one row, however many users there are.
            let p = c.param(Bind::Text(customer.clone()));
            c.filters.push(format!(
                "u.id IN (SELECT user_id FROM stripe_customers WHERE customer_id = {p})"
            ));
        }
        if let Some(versions) = &s.plan_versions {
            // By version ids, so that the subscriptions index answers it.
            let ps: Vec<String> = versions
                .iter()
                .map(|v| c.param(Bind::Text(v.clone())))
                .collect();
            c.filters
                .push(format!("s.plan_version_id IN ({})", ps.join(", ")));
        }
        if let Some(status) = &s.status {
            let p = c.param(Bind::Text(status.clone()));
            c.filters.push(format!("u.status = {p}"));
        }
        if let Some(role) = &s.role {
            let p = c.param(Bind::Text(role.clone()));
            c.filters.push(format!("u.role = {p}"));
        }
        if let Some(t) = s.created_after {
            let p = c.param(Bind::Int(t));
            c.filters.push(format!("u.created_at >= {p}"));
        }
        if let Some(t) = s.created_before {
            let p = c.param(Bind::Int(t));
            c.filters.push(format!("u.created_at < {p}"));
        }
        c
    }

    fn after(&mut self, after: &After, order: UserOrder) {
        let cond = match after {
            After::Created(key, id) => {
                let idp = self.param(Bind::Text(id.clone()));
                let kp = self.param(Bind::Int(*key));
                let op = if order == UserOrder::CreatedDesc {
                    "<"
                } else {
                    ">"
                };
                format!("(u.created_at {op} {kp} OR (u.created_at = {kp} AND u.id {op} {idp}))")
            }
            After::Email(key, id) => {
                let idp = self.param(Bind::Text(id.clone()));
                let kp = self.param(Bind::Text(key.clone()));
                format!("(u.email > {kp} OR (u.email = {kp} AND u.id > {idp}))")
            }
        };
        self.filters.push(cond);
    }
}

/// One page of a user search (up to `limit` rows after `after`), and how many users match
/// in all, counted up to `count_cap`.
pub async fn search_users(
    pool: &AnyPool,
    kind: Kind,
    search: &UserSearch,
    order: UserOrder,
    after: Option<&After>,
    limit: i64,
    count_cap: i64,
) -> Result<(Vec<ListedUser>, i64), sqlx::Error> {
    let matching = Conditions::of(kind, search);
    let mut page = Conditions {
        filters: matching.filters.clone(),
        binds: matching.binds.clone(),
    };
    if let Some(a) = after {
        page.after(a, order);
    }
    let order_by = match order {
        UserOrder::CreatedDesc => "u.created_at DESC, u.id DESC",
        UserOrder::CreatedAsc => "u.created_at ASC, u.id ASC",
        UserOrder::EmailAsc => "u.email ASC, u.id ASC",
    };
    let rows = list_users(pool, kind, &page.filters, &page.binds, order_by, limit).await?;
    let total = count_users(pool, &matching.filters, &matching.binds, count_cap).await?;
    Ok((rows, total))
}

pub async fn staff(pool: &AnyPool) -> Result<Vec<super::users::UserRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, email, full_name, password_hash, role, status, created_at, updated_at FROM users
         WHERE role <> 'user' AND status <> 'deleted' ORDER BY email",
    )
    .fetch_all(pool)
    .await
}
