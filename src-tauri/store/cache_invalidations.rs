//! SQLite's record of changes that cached values depend on (written by triggers, see the
//! `0010_scale_out` migration), polled by every process that shares the file.

use sqlx::AnyPool;

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct InvalidationRow {
    pub id: i64,
    pub kind: String,
    pub subject: String,
}

/// The newest id, or 0 when there is none.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn latest_id(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM cache_invalidations")
        .fetch_one(pool)
        .await
}

/// Rows above `after`, oldest first.
#[tracing::instrument(level = "trace", skip(pool))]
pub async fn after(
    pool: &AnyPool,
    after: i64,
    limit: i64,
) -> Result<Vec<InvalidationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, subject FROM cache_invalidations WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Deletes rows written before `before_ms`; returns how many.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn prune(pool: &AnyPool, before_ms: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM cache_invalidations WHERE created_at < $1")
        .bind(before_ms)
        .execute(pool)
        .await?;
    Ok(r.rows_affected())
}
