//! Leases on background work: one row per kind of work, held by one process until it stops
//! renewing it.

use sqlx::AnyPool;

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub expires_at: i64,
    pub acquired_at: i64,
}

/// Takes the lease `name` for `holder` until `until_ms`, or renews it when `holder` has it
/// already; true when `holder` holds it afterwards. A lease held by another is taken only once
/// it has expired (`expires_at <= now_ms`).
#[tracing::instrument(level = "trace", skip(pool))]
pub async fn take_or_renew(
    pool: &AnyPool,
    name: &str,
    holder: &str,
    now_ms: i64,
    until_ms: i64,
) -> Result<bool, sqlx::Error> {
    let row: Option<String> = sqlx::query_scalar(
        "INSERT INTO background_leases (name, holder, expires_at, acquired_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET
             holder = excluded.holder,
             expires_at = excluded.expires_at,
             acquired_at = CASE WHEN background_leases.holder = excluded.holder
                                THEN background_leases.acquired_at ELSE excluded.acquired_at END
         WHERE background_leases.holder = excluded.holder OR background_leases.expires_at <= $4
         RETURNING holder",
    )
    .bind(name)
    .bind(holder)
    .bind(until_ms)
    .bind(now_ms)
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

/// Gives the lease up (at shutdown), so that another process need not wait for it to expire.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn release(pool: &AnyPool, name: &str, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM background_leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn find(pool: &AnyPool, name: &str) -> Result<Option<LeaseRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, holder, expires_at, acquired_at FROM background_leases WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await
}
