//! TOTP secrets (encrypted) and recovery codes (hashed).

use sqlx::{AnyConnection, AnyPool};

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct TotpRow {
    pub secret_enc: String,
    pub confirmed_at: Option<i64>,
    pub last_step: Option<i64>,
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn find(pool: &AnyPool, user_id: &str) -> Result<Option<TotpRow>, sqlx::Error> {
    sqlx::query_as("SELECT secret_enc, confirmed_at, last_step FROM mfa_totp WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn find_in(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Option<TotpRow>, sqlx::Error> {
    sqlx::query_as("SELECT secret_enc, confirmed_at, last_step FROM mfa_totp WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

/// Writes a new, unconfirmed secret (replacing an unconfirmed one).
#[tracing::instrument(level = "debug", skip(conn, secret_enc))]
pub async fn upsert_unconfirmed(
    conn: &mut AnyConnection,
    user_id: &str,
    secret_enc: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mfa_totp (user_id, secret_enc, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET secret_enc = EXCLUDED.secret_enc,
             created_at = EXCLUDED.created_at, confirmed_at = NULL, last_step = NULL",
    )
    .bind(user_id)
    .bind(secret_enc)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the step of an accepted code, only if it is later than the last one accepted;
/// false when the code's step was already used. Confirms the secret on first use.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn accept_step(
    conn: &mut AnyConnection,
    user_id: &str,
    step: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE mfa_totp SET last_step = $2, confirmed_at = COALESCE(confirmed_at, $3)
         WHERE user_id = $1 AND (last_step IS NULL OR last_step < $2)",
    )
    .bind(user_id)
    .bind(step)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[tracing::instrument(level = "debug", skip(conn))]
pub async fn delete(conn: &mut AnyConnection, user_id: &str) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected())
}

#[tracing::instrument(level = "debug", skip(conn, hashes))]
pub async fn replace_recovery_codes(
    conn: &mut AnyConnection,
    user_id: &str,
    hashes: &[String],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    for h in hashes {
        sqlx::query(
            "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(user_id)
        .bind(h)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Spends a recovery code; false when it is unknown or already used.
#[tracing::instrument(level = "debug", skip(conn, hash))]
pub async fn spend_recovery_code(
    conn: &mut AnyConnection,
    user_id: &str,
    hash: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE mfa_recovery_codes SET used_at = $3
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(hash)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn unused_recovery_codes(pool: &AnyPool, user_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await
}
