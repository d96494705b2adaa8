//! Device sessions and the refresh tokens that keep them alive.

use crate::domain::{SessionId, UserId};
use sqlx::{AnyConnection, AnyPool};

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct SessionRow {
    pub id: SessionId,
    pub user_id: UserId,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str =
    "id, user_id, user_agent, ip, created_at, last_seen_at, expires_at, revoked_at";

pub struct NewSession<'a> {
    pub id: &'a SessionId,
    pub user_id: &'a UserId,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub now_ms: i64,
    pub expires_ms: i64,
}

#[tracing::instrument(level = "debug", skip_all, fields(session = %s.id))]
pub async fn insert(conn: &mut AnyConnection, s: NewSession<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, user_agent, ip, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(s.id.as_str())
    .bind(s.user_id.as_str())
    .bind(s.user_agent)
    .bind(s.ip)
    .bind(s.now_ms)
    .bind(s.expires_ms)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn find(pool: &AnyPool, id: &SessionId) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM sessions WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn find_in(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM sessions WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Live sessions of a user, newest first.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list_live(
    pool: &AnyPool,
    user: &UserId,
    now_ms: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
         ORDER BY created_at DESC"
    ))
    .bind(user.as_str())
    .bind(now_ms)
    .fetch_all(pool)
    .await
}

/// Whether a user has ever had a session opened from `ip` (revoked and expired ones count).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn any_from_ip(pool: &AnyPool, user_id: &str, ip: &str) -> Result<bool, sqlx::Error> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND ip = $2")
            .bind(user_id)
            .bind(ip)
            .fetch_one(pool)
            .await?;
    Ok(n > 0)
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn touch(
    conn: &mut AnyConnection,
    id: &str,
    ip: Option<&str>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_seen_at = $2, ip = COALESCE($3, ip) WHERE id = $1")
        .bind(id)
        .bind(now_ms)
        .bind(ip)
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes one session of a user; returns whether a live one was revoked.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn revoke(
    conn: &mut AnyConnection,
    user: &UserId,
    id: &str,
    reason: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(user.as_str())
    .bind(now_ms)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Revokes every live session of a user except `keep`; returns how many.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn revoke_all(
    conn: &mut AnyConnection,
    user: &UserId,
    keep: Option<&SessionId>,
    reason: &str,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3
         WHERE user_id = $1 AND revoked_at IS NULL AND ($4 IS NULL OR id <> $4)",
    )
    .bind(user.as_str())
    .bind(now_ms)
    .bind(reason)
    .bind(keep.map(|k| k.as_str().to_owned()))
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

#[derive(sqlx::FromRow, Debug)]
pub struct RefreshRow {
    pub session_id: SessionId,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn insert_refresh(
    conn: &mut AnyConnection,
    hash: &str,
    session: &str,
    now_ms: i64,
    expires_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(hash)
        .bind(session)
        .bind(now_ms)
        .bind(expires_ms)
        .execute(conn)
        .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn find_refresh(
    conn: &mut AnyConnection,
    hash: &str,
) -> Result<Option<RefreshRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await
}

/// Marks a refresh token used; false when it already was (a concurrent or replayed use).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn mark_refresh_used(
    conn: &mut AnyConnection,
    hash: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
    )
    .bind(hash)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
