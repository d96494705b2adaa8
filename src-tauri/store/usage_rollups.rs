//! Usage over time (`usage_hourly`, `usage_daily`, `usage_user_daily`): triggers keep them in
//! the same transaction as each usage event (migration 0006); these functions read them,
//! recount them from the events and rewrite them.

use super::Kind;
use sqlx::{AnyConnection, AnyPool};

/// One bucket of a series: (bucket start in ms, plan id or '' , kind, amount).
pub type Bucket = (i64, String, String, i64);

/// A rollup table and how its rows are keyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollup {
    Hourly,
    Daily,
    UserDaily,
}

impl Rollup {
    pub const ALL: [Rollup; 3] = [Rollup::Hourly, Rollup::Daily, Rollup::UserDaily];

    pub fn table(self) -> &'static str {
        match self {
            Rollup::Hourly => "usage_hourly",
            Rollup::Daily => "usage_daily",
            Rollup::UserDaily => "usage_user_daily",
        }
    }

    /// The columns that name a row besides metric, bucket and kind.
    fn owner(self) -> &'static str {
        match self {
            Rollup::UserDaily => "user_id",
            _ => "plan_version_id",
        }
    }

    fn bucket(self) -> &'static str {
        match self {
            Rollup::Hourly => "hour",
            _ => "day",
        }
    }

    fn width_ms(self) -> i64 {
        match self {
            Rollup::Hourly => 3_600_000,
            _ => 86_400_000,
        }
    }

    /// The rows the events say, as (owner, metric, bucket, kind, amount, events).
    fn recount_sql(self) -> String {
        let w = self.width_ms();
        let owner = match self {
            Rollup::UserDaily => "user_id",
            _ => "COALESCE(plan_version_id, '')",
        };
        format!(
            "SELECT {owner} AS owner, metric, at / {w} * {w} AS bucket, kind,
                    CAST(SUM(amount) AS BIGINT) AS amount, CAST(COUNT(*) AS BIGINT) AS events
             FROM usage_events GROUP BY {owner}, metric, at / {w} * {w}, kind"
        )
    }
}

/// A rollup row summed over its shards: (owner, metric, bucket, kind, amount, events).
pub type RollupRow = (String, String, i64, String, i64, i64);

/// The platform's usage of `metric` per bucket, plan and kind in `[from, to)`.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn platform(
    pool: &AnyPool,
    rollup: Rollup,
    metric: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Bucket>, sqlx::Error> {
    let b = rollup.bucket();
    let sql = format!(
        "SELECT r.{b}, COALESCE(pv.plan_id, ''), r.kind, CAST(SUM(r.amount) AS BIGINT)
         FROM {} r LEFT JOIN plan_versions pv ON pv.id = r.plan_version_id
         WHERE r.metric = $1 AND r.{b} >= $2 AND r.{b} < $3
         GROUP BY r.{b}, pv.plan_id, r.kind",
        rollup.table()
    );
    sqlx::query_as(&sql)
        .bind(metric)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
}

/// One user's usage of `metric` per day and kind in `[from, to)`.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn user_daily(
    pool: &AnyPool,
    user_id: &str,
    metric: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Bucket>, sqlx::Error> {
    sqlx::query_as(
        "SELECT day, '', kind, CAST(SUM(amount) AS BIGINT) FROM usage_user_daily
         WHERE user_id = $1 AND metric = $2 AND day >= $3 AND day < $4 GROUP BY day, kind",
    )
    .bind(user_id)
    .bind(metric)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// One user's usage of `metric` per hour and kind in `[from, to)`, from the events (a short
/// range of one user's events, on their `(user_id, at)` index).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn user_hourly(
    pool: &AnyPool,
    user_id: &str,
    metric: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Bucket>, sqlx::Error> {
    sqlx::query_as(
        "SELECT at / 3600000 * 3600000, '', kind, CAST(SUM(amount) AS BIGINT) FROM usage_events
         WHERE user_id = $1 AND metric = $2 AND at >= $3 AND at < $4
         GROUP BY at / 3600000 * 3600000, kind",
    )
    .bind(user_id)
    .bind(metric)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// Every stored row of a rollup, summed over its shards.
pub async fn stored(pool: &AnyPool, rollup: Rollup) -> Result<Vec<RollupRow>, sqlx::Error> {
    let (o, b) = (rollup.owner(), rollup.bucket());
    sqlx::query_as(&format!(
        "SELECT {o}, metric, {b}, kind, CAST(SUM(amount) AS BIGINT), CAST(SUM(events) AS BIGINT)
         FROM {} GROUP BY {o}, metric, {b}, kind",
        rollup.table()
    ))
    .fetch_all(pool)
    .await
}

/// Every row of a rollup recounted from the usage events.
pub async fn recount(pool: &AnyPool, rollup: Rollup) -> Result<Vec<RollupRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT owner, metric, CAST(bucket AS BIGINT), kind, amount, events FROM ({}) r",
        rollup.recount_sql()
    ))
    .fetch_all(pool)
    .await
}

/// Rewrites every rollup from the events. On PostgreSQL the rollups are locked first, so that
/// a transaction adding an event either finished before the recount or waits for it.
pub async fn rebuild(conn: &mut AnyConnection, kind: Kind) -> Result<(), sqlx::Error> {
    if kind == Kind::Postgres {
        sqlx::query("LOCK TABLE usage_hourly, usage_daily, usage_user_daily IN EXCLUSIVE MODE")
            .execute(&mut *conn)
            .await?;
    }
    for rollup in Rollup::ALL {
        sqlx::query(&format!("DELETE FROM {}", rollup.table()))
            .execute(&mut *conn)
            .await?;
        let (o, b) = (rollup.owner(), rollup.bucket());
        let (cols, shard) = match rollup {
            Rollup::UserDaily => (format!("{o}, metric, {b}, kind, amount, events"), ""),
            _ => (
                format!("{o}, metric, {b}, kind, shard, amount, events"),
                "0, ",
            ),
        };
        sqlx::query(&format!(
            "INSERT INTO {} ({cols}) SELECT owner, metric, bucket, kind, {shard}amount, events FROM ({}) r",
            rollup.table(),
            rollup.recount_sql()
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Adds the usage events whose ids lie in `[first_id, last_id]` to every rollup in one
/// set-based statement per table, summing what the trigger would have added (into shard 0).
/// For bulk loads with the trigger suspended ([`suspend_trigger`]).
pub async fn add_events(
    conn: &mut AnyConnection,
    first_id: &str,
    last_id: &str,
) -> Result<(), sqlx::Error> {
    for rollup in Rollup::ALL {
        let (o, b, w) = (rollup.owner(), rollup.bucket(), rollup.width_ms());
        let (owner, shard, conflict) = match rollup {
            Rollup::UserDaily => ("user_id", "", format!("user_id, metric, {b}, kind")),
            _ => (
                "COALESCE(plan_version_id, '')",
                "0, ",
                format!("metric, {b}, plan_version_id, kind, shard"),
            ),
        };
        let shard_col = if shard.is_empty() { "" } else { "shard, " };
        let t = rollup.table();
        sqlx::query(&format!(
            "INSERT INTO {t} ({o}, metric, {b}, kind, {shard_col}amount, events)
             SELECT {owner}, metric, at / {w} * {w}, kind, {shard}SUM(amount), COUNT(*)
             FROM usage_events WHERE id BETWEEN $1 AND $2 AND substr(id, 1, CAST($3 AS INTEGER)) = $4
             GROUP BY {owner}, metric, at / {w} * {w}, kind
             ON CONFLICT ({conflict})
             DO UPDATE SET amount = {t}.amount + excluded.amount, events = {t}.events + excluded.events"
        ))
        .bind(first_id)
        .bind(last_id)
        .bind(common_prefix(first_id, last_id).len() as i64)
        .bind(common_prefix(first_id, last_id))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

const TRIGGER: &str = "usage_events_rollup";

/// The rollup trigger, switched off inside one transaction; [`resume_trigger`] switches it
/// back on before that transaction commits.
#[must_use]
pub struct SuspendedTrigger {
    /// SQLite has no DISABLE TRIGGER: the trigger is dropped and created again from its text.
    sqlite_definition: Option<String>,
}

/// Switches the rollup trigger off for the rest of `conn`'s transaction (PostgreSQL
/// locks the table meanwhile; on SQLite the single writer already excludes other writes).
pub async fn suspend_trigger(
    conn: &mut AnyConnection,
    kind: Kind,
) -> Result<SuspendedTrigger, sqlx::Error> {
    match kind {
        Kind::Postgres => {
            sqlx::query(&format!(
                "ALTER TABLE usage_events DISABLE TRIGGER {TRIGGER}"
            ))
            .execute(&mut *conn)
            .await?;
            Ok(SuspendedTrigger {
                sqlite_definition: None,
            })
        }
        Kind::Sqlite => {
            let sql: String = sqlx::query_scalar(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = $1",
            )
            .bind(TRIGGER)
            .fetch_one(&mut *conn)
            .await?;
            sqlx::query(&format!("DROP TRIGGER {TRIGGER}"))
                .execute(&mut *conn)
                .await?;
            Ok(SuspendedTrigger {
                sqlite_definition: Some(sql),
            })
        }
    }
}

/// Switches the rollup trigger back on.
pub async fn resume_trigger(
    conn: &mut AnyConnection,
    suspended: SuspendedTrigger,
) -> Result<(), sqlx::Error> {
    let sql = match suspended.sqlite_definition {
        Some(definition) => definition,
        None => format!("ALTER TABLE usage_events ENABLE TRIGGER {TRIGGER}"),
    };
    sqlx::query(&sql).execute(&mut *conn).await?;
    Ok(())
}

/// What `a` and `b` start with. A range of ids is also filtered on it: under a linguistic
/// collation (PostgreSQL's default), other ids can sort between two ids of one run.
pub fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let n = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    &a[..n]
}
