//! The mail outbox: rows written in the transaction of the action that causes them, and
//! claimed by the sender task.

use crate::domain::{MailId, UserId};
use sqlx::{AnyConnection, AnyPool};

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct MailRow {
    pub id: MailId,
    pub user_id: Option<UserId>,
    pub to_email: String,
    pub template: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, to_email, template, subject, body_text, body_html, status, \
     CAST(attempts AS BIGINT) AS attempts, next_attempt_at, last_error, created_at, sent_at";

pub struct NewMail<'a> {
    pub id: &'a MailId,
    pub user_id: Option<&'a str>,
    pub to_email: &'a str,
    pub template: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
    pub now_ms: i64,
}

#[tracing::instrument(level = "debug", skip_all, fields(mail = %m.id, template = %m.template))]
pub async fn insert(conn: &mut AnyConnection, m: NewMail<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mail_outbox (id, user_id, to_email, template, subject, body_text, body_html, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(m.id)
    .bind(m.user_id)
    .bind(m.to_email)
    .bind(m.template)
    .bind(m.subject)
    .bind(m.body_text)
    .bind(m.body_html)
    .bind(m.now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Pending mail whose next attempt is due, oldest first.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn due(pool: &AnyPool, now_ms: i64, limit: i64) -> Result<Vec<MailRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= $1
         ORDER BY next_attempt_at, id LIMIT $2"
    ))
    .bind(now_ms)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Takes a due row for one delivery attempt by moving its next attempt past `lease_until`;
/// false when another sender took it first.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn claim(
    pool: &AnyPool,
    id: &str,
    seen_next_attempt: i64,
    lease_until: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE mail_outbox SET next_attempt_at = $3
         WHERE id = $1 AND status = 'pending' AND next_attempt_at = $2",
    )
    .bind(id)
    .bind(seen_next_attempt)
    .bind(lease_until)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn mark_sent(pool: &AnyPool, id: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mail_outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, last_error = NULL
         WHERE id = $1",
    )
    .bind(id)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed attempt: the row waits until `next_attempt_at`, or is given up
/// (`failed`) when `give_up`.
#[tracing::instrument(level = "debug", skip(pool, error))]
pub async fn mark_attempt_failed(
    pool: &AnyPool,
    id: &str,
    error: &str,
    next_attempt_at: i64,
    give_up: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3,
             status = CASE WHEN $4 THEN 'failed' ELSE 'pending' END
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(next_attempt_at)
    .bind(give_up)
    .execute(pool)
    .await?;
    Ok(())
}

/// The newest mail, optionally of one user only.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(
    pool: &AnyPool,
    user_id: Option<&str>,
    limit: i64,
) -> Result<Vec<MailRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM mail_outbox WHERE ($1 IS NULL OR user_id = $1)
         ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(user_id.map(str::to_owned))
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn find(pool: &AnyPool, id: &str) -> Result<Option<MailRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM mail_outbox WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}
