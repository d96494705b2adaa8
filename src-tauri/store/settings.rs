//! Named values the server keeps for itself (such as a generated secret).

use sqlx::AnyPool;

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn get(pool: &AnyPool, name: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
}

/// Inserts the value unless one exists; returns the value that is stored afterwards, so that
/// two processes starting at once agree on one.
#[tracing::instrument(level = "debug", skip(pool, value))]
pub async fn get_or_insert(
    pool: &AnyPool,
    name: &str,
    value: &str,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    sqlx::query("INSERT INTO settings (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(value)
        .bind(now_ms)
        .execute(pool)
        .await?;
    sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
}
