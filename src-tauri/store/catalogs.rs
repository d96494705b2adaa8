//! Catalog versions and the immutable plan versions they publish.

use crate::domain::PlanVersionId;
use sqlx::{AnyConnection, AnyPool};

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct CatalogRow {
    pub version: i64,
    pub checksum: String,
    pub definition: String,
    pub applied_at: i64,
}

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct PlanVersionRow {
    pub id: PlanVersionId,
    pub plan_id: String,
    pub version: i64,
    pub definition: String,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn latest(pool: &AnyPool) -> Result<Option<CatalogRow>, sqlx::Error> {
    sqlx::query_as("SELECT version, checksum, definition, applied_at FROM catalog_versions ORDER BY version DESC LIMIT 1")
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn latest_in(conn: &mut AnyConnection) -> Result<Option<CatalogRow>, sqlx::Error> {
    sqlx::query_as("SELECT version, checksum, definition, applied_at FROM catalog_versions ORDER BY version DESC LIMIT 1")
        .fetch_optional(conn)
        .await
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn insert_catalog(
    conn: &mut AnyConnection,
    version: i64,
    checksum: &str,
    source: &str,
    definition: &str,
    now_ms: i64,
    applied_by: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO catalog_versions (version, checksum, source, definition, applied_at, applied_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(version)
    .bind(checksum)
    .bind(source)
    .bind(definition)
    .bind(now_ms)
    .bind(applied_by)
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest published version of a plan id.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn latest_plan_version(
    conn: &mut AnyConnection,
    plan_id: &str,
) -> Result<Option<PlanVersionRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, plan_id, version, definition FROM plan_versions WHERE plan_id = $1 ORDER BY version DESC LIMIT 1")
        .bind(plan_id)
        .fetch_optional(conn)
        .await
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn insert_plan_version(
    conn: &mut AnyConnection,
    id: &str,
    plan_id: &str,
    version: i64,
    definition: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO plan_versions (id, plan_id, version, definition, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(plan_id)
        .bind(version)
        .bind(definition)
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn link(
    conn: &mut AnyConnection,
    catalog: i64,
    plan_version: &str,
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO catalog_plans (catalog_version, plan_version_id, position) VALUES ($1, $2, $3)")
        .bind(catalog)
        .bind(plan_version)
        .bind(position)
        .execute(conn)
        .await?;
    Ok(())
}

/// Plan versions published by a catalog version, in file order.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn plans_of(pool: &AnyPool, catalog: i64) -> Result<Vec<PlanVersionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id, p.plan_id, p.version, p.definition FROM catalog_plans c
         JOIN plan_versions p ON p.id = c.plan_version_id
         WHERE c.catalog_version = $1 ORDER BY c.position",
    )
    .bind(catalog)
    .fetch_all(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn plan_version(pool: &AnyPool, id: &str) -> Result<Option<PlanVersionRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, plan_id, version, definition FROM plan_versions WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn plan_version_by_number(
    pool: &AnyPool,
    plan_id: &str,
    version: i64,
) -> Result<Option<PlanVersionRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, plan_id, version, definition FROM plan_versions WHERE plan_id = $1 AND version = $2")
        .bind(plan_id)
        .bind(version)
        .fetch_optional(pool)
        .await
}

/// Subscribers per plan version.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn subscriber_counts(pool: &AnyPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT plan_version_id, COUNT(*) FROM subscriptions GROUP BY plan_version_id")
        .fetch_all(pool)
        .await
}

/// Every plan version ever published, by plan and version.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn all_plan_versions(pool: &AnyPool) -> Result<Vec<PlanVersionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, plan_id, version, definition FROM plan_versions ORDER BY plan_id, version",
    )
    .fetch_all(pool)
    .await
}
