//! Bulk inserts for `tollgate dev seed`: many rows per statement, many statements per
//! transaction.

use sqlx::AnyConnection;

pub struct SeedUser {
    pub id: String,
    pub email: String,
    pub full_name: String,
    pub status: &'static str,
    pub created_at: i64,
    pub plan_version_id: String,
    pub sub_id: String,
    pub period_end: i64,
}

/// Inserts users and their subscriptions (rows share one password hash).
pub async fn insert_users(
    conn: &mut AnyConnection,
    rows: &[SeedUser],
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO users (id, email, full_name, password_hash, role, status, created_at, updated_at, deleted_at) VALUES ",
    );
    for (i, _) in rows.iter().enumerate() {
        let b = i * 6;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, 'user', ${}, ${}, ${}, CASE WHEN ${} = 'deleted' THEN ${} END)",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 6,
            b + 5,
            b + 6
        ));
    }
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = q
            .bind(&r.id)
            .bind(&r.email)
            .bind(&r.full_name)
            .bind(password_hash)
            .bind(r.status)
            .bind(r.created_at);
    }
    q.execute(&mut *conn).await?;

    let mut sql = String::from(
        "INSERT INTO subscriptions (id, user_id, plan_version_id, status, period_anchor, current_period_start, \
         current_period_end, cancel_at_period_end, created_at, updated_at) VALUES ",
    );
    for (i, _) in rows.iter().enumerate() {
        let b = i * 5;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, 'active', ${}, ${}, ${}, 0, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 4,
            b + 5,
            b + 4,
            b + 4
        ));
    }
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = q
            .bind(&r.sub_id)
            .bind(&r.id)
            .bind(&r.plan_version_id)
            .bind(r.created_at)
            .bind(r.period_end);
    }
    q.execute(conn).await?;
    Ok(())
}

pub struct SeedEvent {
    pub id: String,
    pub user_id: String,
    pub metric: String,
    pub at: i64,
    pub period_start: i64,
}

pub async fn insert_events(
    conn: &mut AnyConnection,
    rows: &[SeedEvent],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO usage_events (id, user_id, metric, kind, amount, at, period_start) VALUES ",
    );
    for (i, _) in rows.iter().enumerate() {
        let b = i * 5;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, 'consume', 1, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5
        ));
    }
    let mut q = sqlx::query(&sql);
    for r in rows {
        q = q
            .bind(&r.id)
            .bind(&r.user_id)
            .bind(&r.metric)
            .bind(r.at)
            .bind(r.period_start);
    }
    q.execute(conn).await?;
    Ok(())
}
