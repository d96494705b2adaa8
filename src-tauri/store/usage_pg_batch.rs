//! PostgreSQL statements of the database strategy's group commit. Each takes a whole batch of
//! consumptions as arrays (`UNNEST`), so a batch costs the same few statements whatever its
//! size. The arrays travel as text in PostgreSQL's array syntax and are cast in SQL, because
//! the `Any` driver binds scalars only; the statement text never changes, so each stays one
//! prepared statement per connection.

use super::usage::NewEvent;
use sqlx::AnyConnection;

/// One quota consumption of a batch: add `amount` to the counter (user, metric, period) only
/// while the result stays within `limit` (`None`: no limit).
#[derive(Debug, Clone)]
pub struct Take<'a> {
    pub user_id: &'a str,
    pub metric: &'a str,
    pub period_start: i64,
    pub period_end: i64,
    pub amount: i64,
    pub limit: Option<i64>,
}

/// A counter after a batch added to it.
#[derive(sqlx::FromRow, Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub user_id: String,
    pub metric: String,
    pub period_start: i64,
    pub used: i64,
}

/// The stored answer of a consumption made under an idempotency key.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct StoredAnswer {
    pub user_id: String,
    pub idempotency_key: String,
    pub answer: Option<String>,
}

const ANSWERS_BY_KEYS: &str = "SELECT e.user_id, e.idempotency_key, e.answer
     FROM UNNEST($1::text[], $2::text[]) AS k(user_id, idempotency_key)
     JOIN usage_events e ON e.user_id = k.user_id AND e.idempotency_key = k.idempotency_key
     WHERE e.kind = 'consume' AND e.idempotency_key IS NOT NULL";

/// Adds each take to its counter where the guard holds. Counters the statement's snapshot
/// has are updated (a row another transaction changes meanwhile is re-checked against its
/// newest value); missing ones are created. A counter another instance creates between the
/// snapshot and the insert is left alone: its take is in neither part and the caller tries
/// it again.
const TAKE_WITHIN: &str = "WITH b AS (
       SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
         AS b(user_id, metric, period_start, period_end, n, lim)
       WHERE b.lim IS NULL OR b.n <= b.lim
     ),
     bumped AS (
       UPDATE usage_counters c SET used = c.used + b.n FROM b
       WHERE c.user_id = b.user_id AND c.metric = b.metric AND c.period_start = b.period_start
         AND (b.lim IS NULL OR c.used + b.n <= b.lim)
       RETURNING c.user_id, c.metric, c.period_start, c.used
     ),
     created AS (
       INSERT INTO usage_counters (user_id, metric, period_start, period_end, used)
       SELECT b.user_id, b.metric, b.period_start, b.period_end, b.n FROM b
       WHERE NOT EXISTS (SELECT 1 FROM usage_counters c
                         WHERE c.user_id = b.user_id AND c.metric = b.metric AND c.period_start = b.period_start)
       ON CONFLICT (user_id, metric, period_start) DO NOTHING
       RETURNING user_id, metric, period_start, used
     )
     SELECT user_id, metric, period_start, used FROM bumped
     UNION ALL SELECT user_id, metric, period_start, used FROM created";

const INSERT_CONSUME_EVENTS: &str = "INSERT INTO usage_events
       (id, user_id, metric, kind, amount, at, period_start, request_id, idempotency_key, answer, plan_version_id)
     SELECT id, user_id, metric, kind, amount, at, period_start, request_id, idempotency_key, answer, plan_version_id
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
                 $8::text[], $9::text[], $10::text[], $11::text[])
       AS e(id, user_id, metric, kind, amount, at, period_start, request_id, idempotency_key, answer, plan_version_id)
     ON CONFLICT DO NOTHING";

const COUNTERS_OF: &str = "SELECT b.i, COALESCE(c.used, 0)
     FROM UNNEST($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS b(user_id, metric, period_start, i)
     LEFT JOIN usage_counters c
       ON c.user_id = b.user_id AND c.metric = b.metric AND c.period_start = b.period_start";

/// The stored answers of consumptions made under any of `keys` (user, idempotency key).
#[tracing::instrument(level = "debug", skip_all, fields(n = keys.len()))]
pub async fn answers_by_keys(
    conn: &mut AnyConnection,
    keys: &[(&str, &str)],
) -> Result<Vec<StoredAnswer>, sqlx::Error> {
    sqlx::query_as(ANSWERS_BY_KEYS)
        .bind(text_array(keys.iter().map(|k| Some(k.0))))
        .bind(text_array(keys.iter().map(|k| Some(k.1))))
        .fetch_all(conn)
        .await
}

/// Applies every take whose guard holds, in one statement, and answers the counters taken
/// with their new value. Each counter may appear once in `takes` (one statement may not
/// change a row twice).
#[tracing::instrument(level = "debug", skip_all, fields(n = takes.len()))]
pub async fn take_within(
    conn: &mut AnyConnection,
    takes: &[Take<'_>],
) -> Result<Vec<Taken>, sqlx::Error> {
    sqlx::query_as(TAKE_WITHIN)
        .bind(text_array(takes.iter().map(|t| Some(t.user_id))))
        .bind(text_array(takes.iter().map(|t| Some(t.metric))))
        .bind(int_array(takes.iter().map(|t| Some(t.period_start))))
        .bind(int_array(takes.iter().map(|t| Some(t.period_end))))
        .bind(int_array(takes.iter().map(|t| Some(t.amount))))
        .bind(int_array(takes.iter().map(|t| t.limit)))
        .fetch_all(conn)
        .await
}

/// Inserts the events in one statement; answers how many were inserted (an event whose
/// idempotency key is already used is skipped).
#[tracing::instrument(level = "debug", skip_all, fields(n = events.len()))]
pub async fn insert_consume_events(
    conn: &mut AnyConnection,
    events: &[NewEvent<'_>],
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(INSERT_CONSUME_EVENTS)
        .bind(text_array(events.iter().map(|e| Some(e.id))))
        .bind(text_array(events.iter().map(|e| Some(e.user_id))))
        .bind(text_array(events.iter().map(|e| Some(e.metric))))
        .bind(text_array(events.iter().map(|e| Some(e.kind))))
        .bind(int_array(events.iter().map(|e| Some(e.amount))))
        .bind(int_array(events.iter().map(|e| Some(e.at))))
        .bind(int_array(events.iter().map(|e| Some(e.period_start))))
        .bind(text_array(events.iter().map(|e| e.request_id)))
        .bind(text_array(events.iter().map(|e| e.idempotency_key)))
        .bind(text_array(events.iter().map(|e| e.answer)))
        .bind(text_array(events.iter().map(|e| e.plan_version_id)))
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
}

/// The current value of each counter (0 for one that does not exist), in the order asked.
#[tracing::instrument(level = "debug", skip_all, fields(n = counters.len()))]
pub async fn counters_of(
    conn: &mut AnyConnection,
    counters: &[(&str, &str, i64)],
) -> Result<Vec<i64>, sqlx::Error> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(COUNTERS_OF)
        .bind(text_array(counters.iter().map(|c| Some(c.0))))
        .bind(text_array(counters.iter().map(|c| Some(c.1))))
        .bind(int_array(counters.iter().map(|c| Some(c.2))))
        .fetch_all(conn)
        .await?;
    let mut used = vec![0; counters.len()];
    for (i, n) in rows {
        if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| used.get_mut(i)) {
            *slot = n;
        }
    }
    Ok(used)
}

/// A `text[]` literal: every element quoted, `"` and `\` escaped, `None` as NULL.
fn text_array<'a>(items: impl Iterator<Item = Option<&'a str>>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("NULL"),
            Some(s) => {
                out.push('"');
                for ch in s.chars() {
                    if ch == '"' || ch == '\\' {
                        out.push('\\');
                    }
                    out.push(ch);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    out
}

/// A `bigint[]` literal, `None` as NULL.
fn int_array(items: impl Iterator<Item = Option<i64>>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("NULL"),
            Some(n) => out.push_str(&n.to_string()),
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::{int_array, text_array};

    #[test]
    fn array_literals_quote_escape_and_mark_nulls() {
        let items = [Some("a"), Some(r#"say "hi" \ bye"#), None, Some("")];
        assert_eq!(
            text_array(items.into_iter()),
            r#"{"a","say \"hi\" \\ bye",NULL,""}"#
        );
        assert_eq!(
            int_array([Some(-1), None, Some(7)].into_iter()),
            "{-1,NULL,7}"
        );
        assert_eq!(text_array(std::iter::empty()), "{}");
    }
}
