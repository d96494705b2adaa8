//! The migrations this build embeds, and whether a database has them all (readiness).

use super::{Db, Kind};
use sqlx::migrate::{Migrate, Migrator};

/// The embedded migrations of a database kind.
pub(super) fn migrator(kind: Kind) -> Migrator {
    match kind {
        Kind::Sqlite => sqlx::migrate!("migrations/sqlite"),
        Kind::Postgres => sqlx::migrate!("migrations/postgres"),
    }
}

/// Versions embedded in this build that the database has not applied (or applied from
/// different SQL), empty when its schema is current. An error when the database cannot say
/// (unreachable, no migrations table, a migration left half-applied).
#[tracing::instrument(skip_all)]
pub async fn missing_migrations(db: &Db) -> Result<Vec<i64>, sqlx::migrate::MigrateError> {
    let mut conn = db.read().acquire().await?;
    if let Some(version) = conn.dirty_version().await? {
        return Err(sqlx::migrate::MigrateError::Dirty(version));
    }
    let applied = conn.list_applied_migrations().await?;
    Ok(migrator(db.kind())
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .filter(|m| {
            !applied
                .iter()
                .any(|a| a.version == m.version && a.checksum == m.checksum)
        })
        .map(|m| m.version)
        .collect())
}
