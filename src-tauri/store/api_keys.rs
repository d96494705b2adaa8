use crate::domain::{KeyId, UserId};
use sqlx::{AnyConnection, AnyPool};

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct ApiKeyRow {
    pub id: KeyId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str =
    "id, user_id, name, prefix, scopes, created_at, last_used_at, expires_at, revoked_at";

pub struct NewApiKey<'a> {
    pub id: &'a KeyId,
    pub user_id: &'a UserId,
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a str,
    pub scopes: &'a str,
    pub now_ms: i64,
    pub expires_ms: Option<i64>,
}

#[tracing::instrument(level = "debug", skip_all, fields(key = %k.id))]
pub async fn insert(conn: &mut AnyConnection, k: NewApiKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(k.id.as_str())
    .bind(k.user_id.as_str())
    .bind(k.name)
    .bind(k.prefix)
    .bind(k.key_hash)
    .bind(k.scopes)
    .bind(k.now_ms)
    .bind(k.expires_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The one indexed lookup that verifies a key.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find_by_hash(pool: &AnyPool, hash: &str) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1"
    ))
    .bind(hash)
    .fetch_optional(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn list(pool: &AnyPool, user: &UserId) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(user.as_str())
    .fetch_all(pool)
    .await
}

/// Revokes a key of a user; returns whether a live key was revoked.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn revoke(
    conn: &mut AnyConnection,
    user: &UserId,
    id: &KeyId,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(id.as_str())
    .bind(user.as_str())
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn revoke_all(
    conn: &mut AnyConnection,
    user: &UserId,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user.as_str())
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// Records when keys were last used: one statement for all of `uses` (never moving a time
/// back). The caller keeps `uses` short, so that the write lock is held briefly.
#[tracing::instrument(level = "debug", skip_all, fields(n = uses.len()))]
pub async fn record_last_used(
    conn: &mut AnyConnection,
    uses: &[(String, i64)],
) -> Result<(), sqlx::Error> {
    if uses.is_empty() {
        return Ok(());
    }
    // VALUES names its columns column1, column2 on both databases.
    let mut sql = String::from("UPDATE api_keys SET last_used_at = v.column2 FROM (VALUES ");
    for i in 0..uses.len() {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
    }
    sql.push_str(
        ") AS v WHERE api_keys.id = v.column1 AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < v.column2)",
    );
    let mut q = sqlx::query(&sql);
    for (id, when) in uses {
        q = q.bind(id).bind(when);
    }
    q.execute(conn).await?;
    Ok(())
}
