//! One-time tokens sent by mail (email verification, password reset), stored hashed.

use crate::domain::UserId;
use sqlx::AnyConnection;

pub const VERIFY_EMAIL: &str = "verify_email";
pub const PASSWORD_RESET: &str = "password_reset";

#[derive(sqlx::FromRow, Debug)]
pub struct TokenRow {
    pub user_id: UserId,
    pub purpose: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[tracing::instrument(level = "debug", skip(conn, hash))]
pub async fn insert(
    conn: &mut AnyConnection,
    hash: &str,
    user_id: &str,
    purpose: &str,
    now_ms: i64,
    expires_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account_tokens (token_hash, user_id, purpose, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash)
    .bind(user_id)
    .bind(purpose)
    .bind(now_ms)
    .bind(expires_ms)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(conn: &mut AnyConnection, hash: &str) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, purpose, expires_at, used_at FROM account_tokens WHERE token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await
}

/// Spends one token; false when it was already spent (a replay or a concurrent use).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn spend(conn: &mut AnyConnection, hash: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE account_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
    )
    .bind(hash)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Spends every outstanding token of a user for `purpose`; returns how many.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn spend_all(
    conn: &mut AnyConnection,
    user_id: &str,
    purpose: &str,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE account_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(purpose)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}
