use super::{at, unique_violation};
use crate::domain::{Email, Role, User, UserId, UserStatus};
use crate::error::Error;
use sqlx::{AnyConnection, AnyPool};

#[derive(sqlx::FromRow)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub full_name: Option<String>,
    pub password_hash: String,
    pub role: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRow {
    pub fn into_user(self) -> User {
        User {
            id: self.id,
            email: Email::parse(&self.email).expect("stored emails are valid"),
            full_name: self.full_name,
            role: Role::parse(&self.role).unwrap_or(Role::User),
            status: UserStatus::parse(&self.status).unwrap_or(UserStatus::Suspended),
            created_at: at(self.created_at),
            updated_at: at(self.updated_at),
        }
    }
}

const COLUMNS: &str = "id, email, full_name, password_hash, role, status, created_at, updated_at";

pub struct NewUser<'a> {
    pub id: &'a UserId,
    pub email: &'a Email,
    pub full_name: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: Role,
    pub now_ms: i64,
}

/// Inserts a user; a live account with the same email gives [`Error::EmailTaken`].
#[tracing::instrument(level = "debug", skip_all, fields(user = %u.id))]
pub async fn insert(conn: &mut AnyConnection, u: NewUser<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO users (id, email, full_name, password_hash, role, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'active', $6, $6)",
    )
    .bind(u.id.as_str())
    .bind(u.email.as_str())
    .bind(u.full_name)
    .bind(u.password_hash)
    .bind(u.role.as_str())
    .bind(u.now_ms)
    .execute(conn)
    .await
    .map_err(|e| match unique_violation(&e) {
        Some(_) => Error::EmailTaken,
        None => e.into(),
    })?;
    Ok(())
}

/// The live (not deleted) account with this email.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn find_live_by_email(
    pool: &AnyPool,
    email: &Email,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE email = $1 AND status <> 'deleted'"
    ))
    .bind(email.as_str())
    .fetch_optional(pool)
    .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn find(pool: &AnyPool, id: &UserId) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn find_for_update(
    conn: &mut AnyConnection,
    id: &UserId,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn set_full_name(
    conn: &mut AnyConnection,
    id: &UserId,
    full_name: Option<&str>,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE users SET full_name = $2, updated_at = $3 WHERE id = $1 AND status <> 'deleted'",
    )
    .bind(id.as_str())
    .bind(full_name)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

#[tracing::instrument(level = "debug", skip(conn, hash))]
pub async fn set_password_hash(
    conn: &mut AnyConnection,
    id: &UserId,
    hash: &str,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id.as_str())
        .bind(hash)
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn set_role(
    conn: &mut AnyConnection,
    id: &UserId,
    role: Role,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("UPDATE users SET role = $2, updated_at = $3 WHERE id = $1")
        .bind(id.as_str())
        .bind(role.as_str())
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
}

/// Moves an account to `status`; deleting also stamps `deleted_at`.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn set_status(
    conn: &mut AnyConnection,
    id: &UserId,
    status: UserStatus,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    let deleted_at = (status == UserStatus::Deleted).then_some(now_ms);
    let r = sqlx::query(
        "UPDATE users SET status = $2, updated_at = $3, deleted_at = COALESCE($4, deleted_at)
         WHERE id = $1 AND status <> 'deleted'",
    )
    .bind(id.as_str())
    .bind(status.as_str())
    .bind(now_ms)
    .bind(deleted_at)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn count_live(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE status <> 'deleted'")
        .fetch_one(pool)
        .await
}

/// Whether any live account has the role `user`.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn any_customer(pool: &AnyPool) -> Result<bool, sqlx::Error> {
    let row: Option<String> = sqlx::query_scalar(
        "SELECT id FROM users WHERE role = 'user' AND status <> 'deleted' LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

/// The account status of a user (`active`, `suspended`, `deleted`), read in `conn`.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn status_in(conn: &mut AnyConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// When an account's email was verified and when its two-factor sign-in was confirmed.
pub type AccountFactsRow = (Option<i64>, Option<i64>);

/// What `/v1/me` and the email-verification gate read of an account besides its row
/// (`None`: no such account).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn account_facts(
    pool: &AnyPool,
    id: &str,
) -> Result<Option<AccountFactsRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.email_verified_at, (SELECT m.confirmed_at FROM mfa_totp m WHERE m.user_id = u.id)
         FROM users u WHERE u.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Marks the email verified (once: a later verification keeps the first time).
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn set_email_verified(
    conn: &mut AnyConnection,
    id: &str,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $2), updated_at = $2
         WHERE id = $1 AND status <> 'deleted'",
    )
    .bind(id)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}
