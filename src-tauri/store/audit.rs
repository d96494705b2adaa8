//! The audit log: append-only, written in the same transaction as the change it records.

use crate::domain::AuditId;
use sqlx::{AnyConnection, AnyPool};

pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub before: &'a str,
    pub after: &'a str,
    pub reason: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub at: i64,
}

#[tracing::instrument(level = "debug", skip_all, fields(action = a.action))]
pub async fn insert(conn: &mut AnyConnection, a: &NewAudit<'_>) -> Result<(), sqlx::Error> {
    let id = AuditId::new();
    sqlx::query(
        "INSERT INTO audit_events (id, actor, action, target, before_state, after_state, reason, ip, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(a.actor)
    .bind(a.action)
    .bind(a.target)
    .bind(a.before)
    .bind(a.after)
    .bind(a.reason)
    .bind(a.ip)
    .bind(a.at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct AuditRow {
    pub id: AuditId,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before_state: String,
    pub after_state: String,
    pub reason: Option<String>,
    pub ip: Option<String>,
    pub at: i64,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(
    pool: &AnyPool,
    actor: Option<&str>,
    target: Option<&str>,
    action: Option<&str>,
    since_ms: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, actor, action, target, before_state, after_state, reason, ip, at FROM audit_events
         WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR target = $2) AND ($3 IS NULL OR action = $3)
           AND ($4 IS NULL OR at >= $4)
         ORDER BY at DESC, id DESC LIMIT $5",
    )
    .bind(actor)
    .bind(target)
    .bind(action)
    .bind(since_ms)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One page of the log, newest first: `until_ms` excludes later events and `before` (the last
/// row of the previous page, as `(at, id)`) continues a listing.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list_page(
    pool: &AnyPool,
    actor: Option<&str>,
    target: Option<&str>,
    action: Option<&str>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    before: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, actor, action, target, before_state, after_state, reason, ip, at FROM audit_events
         WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR target = $2) AND ($3 IS NULL OR action = $3)
           AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5)
           AND ($6 IS NULL OR at < $6 OR (at = $6 AND id < $7))
         ORDER BY at DESC, id DESC LIMIT $8",
    )
    .bind(actor)
    .bind(target)
    .bind(action)
    .bind(since_ms)
    .bind(until_ms)
    .bind(before.map(|b| b.0))
    .bind(before.map(|b| b.1))
    .bind(limit)
    .fetch_all(pool)
    .await
}
