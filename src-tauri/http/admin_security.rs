//! `/v1/admin/users/{id}/…` for account security: support resends a verification mail or
//! turns off a locked-out user's two-factor authentication (both audited).

use super::admin::actor;
use super::auth::Caller;
use super::client_ip::ClientIp;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::json::{ApiJson, ApiJsonOrEmpty, PathId};
use super::AppState;
use crate::domain::UserId;
use crate::service::mail::MailSummary;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(resend_verification))
        .routes(routes!(reset_two_factor))
}

#[derive(Deserialize, ToSchema, Default)]
#[schema(examples(json!({"reason": "the user never got the first mail"})))]
pub struct OptionalReason {
    /// Kept in the audit log.
    reason: Option<String>,
}

/// Send the user a new verification mail (audited).
#[utoipa::path(post, path = "/v1/admin/users/{id}/verification/resend", tag = "admin",
    operation_id = "admin_resend_verification", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = OptionalReason,
    responses(
        (status = 202, body = MailSummary),
        (status = 401, body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "email_already_verified, account_not_active", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
async fn resend_verification(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty<OptionalReason>,
) -> Result<Response, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    let mail = state
        .engine
        .admin_resend_verification(&a, &id, b.reason.as_deref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(mail)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"reason": "lost phone; identity checked on a video call (ticket 5120)"})))]
pub struct RequiredReason {
    /// Why (for example how the user's identity was checked); kept in the audit log.
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct TwoFactorReset {
    /// Whether two-factor was on before the reset.
    was_enabled: bool,
    mfa_enabled: bool,
}

/// Turn off the user's two-factor authentication.
///
/// The reason is required and audited; the user is told by mail.
#[utoipa::path(post, path = "/v1/admin/users/{id}/mfa/reset", tag = "admin",
    operation_id = "admin_reset_two_factor", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = RequiredReason,
    responses(
        (status = 200, body = TwoFactorReset, example = json!({"was_enabled": true, "mfa_enabled": false})),
        (status = 401, body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "validation_failed (reason)", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
async fn reset_two_factor(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJson(b): ApiJson<RequiredReason>,
) -> Result<Json<TwoFactorReset>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    let was = state
        .engine
        .admin_reset_two_factor(&a, &id, Some(&b.reason))
        .await?;
    Ok(Json(TwoFactorReset {
        was_enabled: was,
        mfa_enabled: false,
    }))
}
