//! The counts behind the back office's home figures (`stat_counts`, `user_active_days`).
//! Triggers keep them in the same transaction as each change (migration 0005); these
//! functions read them, recount them from the base tables, and rewrite them.

use super::Kind;
use sqlx::{AnyConnection, AnyPool};

/// One figure: `stat` and `key` name it, `day` is a UTC day's start in ms (0 when the figure
/// is not per day).
pub type StatCount = (String, String, i64, i64);

/// The recount, written once in the SQL both engines share.
const RECOUNT: &str = "
    SELECT 'users_status' AS stat, status AS key, 0 AS day, COUNT(*) AS n FROM users GROUP BY status
    UNION ALL SELECT 'users_role', role, 0, COUNT(*) FROM users WHERE status <> 'deleted' GROUP BY role
    UNION ALL SELECT 'users_plan', s.plan_version_id, 0, COUNT(*) FROM subscriptions s
        JOIN users u ON u.id = s.user_id WHERE u.status <> 'deleted' GROUP BY s.plan_version_id
    UNION ALL SELECT 'signups', '', created_at / 86400000 * 86400000, COUNT(*) FROM users
        GROUP BY created_at / 86400000 * 86400000
    UNION ALL SELECT 'refusals', code, at / 86400000 * 86400000, COUNT(*) FROM decisions
        GROUP BY code, at / 86400000 * 86400000
    UNION ALL SELECT 'active_users', '', day, COUNT(*) FROM (
        SELECT DISTINCT user_id, at / 86400000 * 86400000 AS day FROM usage_events
        WHERE kind = 'consume') d GROUP BY day";

/// The figures the home screen shows: users by status, role and plan version, signups and
/// active users per day from `since_day`, refusals per code from `refusals_since`.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn home(
    pool: &AnyPool,
    since_day: i64,
    refusals_since: i64,
) -> Result<Vec<StatCount>, sqlx::Error> {
    sqlx::query_as(
        "SELECT stat, key, day, CAST(SUM(count) AS BIGINT) FROM stat_counts
         WHERE stat IN ('users_status', 'users_role', 'users_plan')
            OR (stat IN ('signups', 'active_users') AND day >= $1)
            OR (stat = 'refusals' AND day >= $2)
         GROUP BY stat, key, day ORDER BY stat, key, day",
    )
    .bind(since_day)
    .bind(refusals_since)
    .fetch_all(pool)
    .await
}

/// Every stored figure, summed over its shards.
pub async fn stored(pool: &AnyPool) -> Result<Vec<StatCount>, sqlx::Error> {
    sqlx::query_as(
        "SELECT stat, key, day, CAST(SUM(count) AS BIGINT) FROM stat_counts GROUP BY stat, key, day",
    )
    .fetch_all(pool)
    .await
}

/// Every figure recounted from users, subscriptions, decisions and usage events.
pub async fn recount(pool: &AnyPool) -> Result<Vec<StatCount>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT stat, key, CAST(day AS BIGINT), CAST(n AS BIGINT) FROM ({RECOUNT}) r"
    ))
    .fetch_all(pool)
    .await
}

/// (rows of `user_active_days` no consumption backs, consumption days missing from it).
pub async fn active_days_mismatch(pool: &AnyPool) -> Result<(i64, i64), sqlx::Error> {
    let spurious: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_active_days a WHERE NOT EXISTS (
             SELECT 1 FROM usage_events e WHERE e.user_id = a.user_id AND e.kind = 'consume'
             AND e.at >= a.day AND e.at < a.day + 86400000)",
    )
    .fetch_one(pool)
    .await?;
    let missing: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT DISTINCT user_id, at / 86400000 * 86400000 AS day
             FROM usage_events WHERE kind = 'consume') d
         WHERE NOT EXISTS (SELECT 1 FROM user_active_days a WHERE a.user_id = d.user_id AND a.day = d.day)",
    )
    .fetch_one(pool)
    .await?;
    Ok((spurious, missing))
}

/// Rewrites every figure from a recount. On PostgreSQL the tables are locked first, so that
/// a transaction counting a change either finished before the recount or waits for it.
pub async fn rebuild(conn: &mut AnyConnection, kind: Kind) -> Result<(), sqlx::Error> {
    if kind == Kind::Postgres {
        sqlx::query("LOCK TABLE stat_counts, user_active_days IN EXCLUSIVE MODE")
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM user_active_days")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO user_active_days (user_id, day)
         SELECT DISTINCT user_id, at / 86400000 * 86400000 FROM usage_events WHERE kind = 'consume'",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM stat_counts")
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "INSERT INTO stat_counts (stat, key, day, shard, count) SELECT stat, key, day, 0, n FROM ({RECOUNT}) r"
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Live users per plan (all its versions together), plans without users left out.
pub async fn users_per_plan(pool: &AnyPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT pv.plan_id, CAST(SUM(c.count) AS BIGINT) FROM stat_counts c
         JOIN plan_versions pv ON pv.id = c.key WHERE c.stat = 'users_plan'
         GROUP BY pv.plan_id HAVING SUM(c.count) <> 0 ORDER BY pv.plan_id",
    )
    .fetch_all(pool)
    .await
}
