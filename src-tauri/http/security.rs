//! Account security over HTTP: email verification, password reset, TOTP two-factor, and the
//! two small pages that links in mail open.

use super::accounts::{device, TokenResponse};
use super::auth::Caller;
use super::client_ip::ClientIp;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::json::ApiJson;
use super::AppState;
use crate::service::auth::{Credential, Principal};
use crate::service::mfa::{SecondFactor, TotpEnrolment};
use crate::service::recovery::{RESET_PAGE, VERIFY_PAGE};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify_email))
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
        .routes(routes!(login_mfa))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(resend_verification))
        .routes(routes!(start_totp, disable_totp))
        .routes(routes!(confirm_totp))
}

/// The pages links in mail open (HTML, outside the API document).
pub fn pages() -> Router<AppState> {
    Router::new()
        .route(VERIFY_PAGE, get(verify_page).post(verify_page_submit))
        .route(RESET_PAGE, get(reset_page).post(reset_page_submit))
}

/// Two-factor settings change only through the account holder's own session: not an API
/// key, not an impersonation token.
fn own_session(caller: &Caller) -> Result<&Principal, ApiError> {
    let p = caller.require_write()?;
    match &p.credential {
        Credential::Session {
            impersonated_by: None,
            ..
        } => Ok(p),
        _ => Err(ApiError::from(crate::Error::Forbidden).with_detail(
            "reason",
            "sign in with your password to change two-factor settings",
        )),
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"token": "vt_4k2Qh7ZbYp0aLx9RmC3s"})))]
pub struct TokenBody {
    /// The `token` of the link in the mail.
    token: String,
}

#[derive(Serialize, ToSchema)]
pub struct EmailVerified {
    email_verified: bool,
}

/// Confirm an email address with the token of a verification mail.
#[utoipa::path(post, path = "/v1/auth/verify-email", tag = "accounts", operation_id = "verify_email",
    request_body = TokenBody,
    responses(
        (status = 200, body = EmailVerified, example = json!({"email_verified": true})),
        (status = 403, description = "account_suspended", body = ErrorBody),
        (status = 422, description = "invalid_link_token (unknown, expired or used), validation_failed", body = ErrorBody),
    ))]
async fn verify_email(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<EmailVerified>, ApiError> {
    state.engine.verify_email(&body.token).await?;
    Ok(Json(EmailVerified {
        email_verified: true,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    status: &'static str,
}

/// Send a new verification mail to the caller (rate limited).
#[utoipa::path(post, path = "/v1/auth/verify-email/resend", tag = "accounts", operation_id = "resend_verification_email",
    security(("bearer" = [])),
    responses(
        (status = 202, body = Accepted),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "email_already_verified", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ))]
async fn resend_verification(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let p = caller.require_write()?;
    state.engine.resend_verification(&p.user.id).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { status: "sent" })).into_response())
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"email": "ada@example.com"})))]
pub struct ResetRequest {
    email: String,
}

/// Ask for a password-reset mail.
///
/// The answer is the same whether or not an account has the address.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "accounts", operation_id = "request_password_reset",
    request_body = ResetRequest,
    responses(
        (status = 202, body = Accepted),
        (status = 422, description = "validation_failed", body = ErrorBody),
        (status = 429, description = "rate_limited (per client IP and per address)", body = ErrorBody),
    ))]
async fn request_password_reset(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<Response, ApiError> {
    state
        .engine
        .request_password_reset(&body.email, &ip.0.to_string())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { status: "accepted" })).into_response())
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"token": "rt_8JfK2mQp0Zs7LxV1bN4c", "password": "a new long passphrase"})))]
pub struct ResetConfirm {
    token: String,
    /// The new password (8 to 256 characters).
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordReset {
    /// Sessions signed out by the reset (all of them).
    revoked_sessions: u64,
}

/// Set a new password with the token of a reset mail; every session is signed out.
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "accounts", operation_id = "confirm_password_reset",
    request_body = ResetConfirm,
    responses(
        (status = 200, body = PasswordReset, example = json!({"revoked_sessions": 2})),
        (status = 403, description = "account_suspended", body = ErrorBody),
        (status = 422, description = "invalid_link_token, validation_failed", body = ErrorBody),
    ))]
async fn confirm_password_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetConfirm>,
) -> Result<Json<PasswordReset>, ApiError> {
    let revoked = state
        .engine
        .confirm_password_reset(&body.token, &body.password)
        .await?;
    Ok(Json(PasswordReset {
        revoked_sessions: revoked,
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"challenge": "mfa_eyJ1c3IiOiJ1c3JfMEZ6M2tROWRZMm1YYjhMcjRUcVcxYSJ9", "code": "492039"})))]
pub struct MfaLogin {
    /// The `challenge` of the `mfa_required` answer.
    challenge: String,
    /// A code from the authenticator app.
    code: Option<String>,
    /// Or one of the recovery codes (each works once).
    recovery_code: Option<String>,
}

fn factor<'a>(
    code: &'a Option<String>,
    recovery: &'a Option<String>,
) -> Result<SecondFactor<'a>, ApiError> {
    match (code, recovery) {
        (Some(c), None) => Ok(SecondFactor::Code(c)),
        (None, Some(r)) => Ok(SecondFactor::RecoveryCode(r)),
        _ => {
            Err(
                crate::Error::validation("code", "one_of", "give either `code` or `recovery_code`")
                    .into(),
            )
        }
    }
}

/// Complete a login that answered `mfa_required`, with a code or a recovery code.
#[utoipa::path(post, path = "/v1/auth/login/mfa", tag = "accounts", operation_id = "login_mfa",
    request_body = MfaLogin,
    responses(
        (status = 200, body = TokenResponse, example = json!({"user": {"id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "email": "ada@example.com", "full_name": "Ada Lovelace", "role": "user", "status": "active", "created_at": "2026-10-02T09:15:00Z", "updated_at": "2026-11-29T11:46:14.310Z"}, "access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMEZ6M2tROWRZMm1YYjhMcjRUcVcxYSJ9.sig", "refresh_token": "rt_3kT9b2Lq8Zp0Xw7Vn4Mc", "token_type": "bearer", "expires_in": 900})),
        (status = 401, description = "invalid_mfa_code (wrong or used code, or an expired challenge)", body = ErrorBody),
        (status = 403, description = "account_suspended", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ))]
async fn login_mfa(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MfaLogin>,
) -> Result<Json<TokenResponse>, ApiError> {
    let f = factor(&body.code, &body.recovery_code)?;
    let (user, pair) = state
        .engine
        .login_mfa(&body.challenge, f, device(&headers, ip))
        .await?;
    Ok(Json(TokenResponse::new(user, pair)))
}

/// Start two-factor enrolment: a new secret, its otpauth:// URI and a QR code (SVG).
#[utoipa::path(post, path = "/v1/me/mfa/totp", tag = "accounts", operation_id = "start_totp",
    security(("bearer" = [])),
    responses(
        (status = 200, body = TotpEnrolment, example = json!({"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "otpauth_uri": "otpauth://totp/Tollgate:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Tollgate", "qr_svg": "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 29 29\">...</svg>"})),
        (status = 401, body = ErrorBody),
        (status = 403, description = "forbidden (API keys and impersonation)", body = ErrorBody),
        (status = 409, description = "mfa_already_enabled", body = ErrorBody),
    ))]
async fn start_totp(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TotpEnrolment>, ApiError> {
    let p = own_session(&caller)?;
    Ok(Json(state.engine.start_totp(&p.user).await?))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"code": "492039"})))]
pub struct CodeBody {
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes, shown this once.
    recovery_codes: Vec<String>,
}

/// Confirm enrolment with a first code; answers ten recovery codes, shown this once.
#[utoipa::path(post, path = "/v1/me/mfa/totp/confirm", tag = "accounts", operation_id = "confirm_totp",
    security(("bearer" = [])), request_body = CodeBody,
    responses(
        (status = 200, body = RecoveryCodes, example = json!({"recovery_codes": ["k7q2-m9xp", "a4tw-3hzd", "p8vn-6cre"]})),
        (status = 401, description = "invalid_mfa_code", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "mfa_not_enabled (enrol first), mfa_already_enabled", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ))]
async fn confirm_totp(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let p = own_session(&caller)?;
    let codes = state.engine.confirm_totp(&p.user, &body.code).await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"code": "492039"})))]
pub struct DisableBody {
    code: Option<String>,
    recovery_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MfaState {
    mfa_enabled: bool,
}

/// Turn two-factor off; needs a current code (or a recovery code).
#[utoipa::path(delete, path = "/v1/me/mfa/totp", tag = "accounts", operation_id = "disable_totp",
    security(("bearer" = [])), request_body = DisableBody,
    responses(
        (status = 200, body = MfaState, example = json!({"mfa_enabled": false})),
        (status = 401, description = "invalid_mfa_code", body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "mfa_not_enabled", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ))]
async fn disable_totp(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<DisableBody>,
) -> Result<Json<MfaState>, ApiError> {
    let p = own_session(&caller)?;
    let f = factor(&body.code, &body.recovery_code)?;
    state.engine.disable_totp(&p.user, f).await?;
    Ok(Json(MfaState { mfa_enabled: false }))
}

// ---------------------------------------------------------------------------------------------
// Pages. Opening a link only shows a form: mail scanners that follow links spend nothing.

#[derive(Deserialize)]
struct PageToken {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(state: &AppState, title: &str, body: &str) -> Html<String> {
    let product = escape(&state.engine.settings().product_name);
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} · {product}</title></head>\
         <body style=\"font-family: sans-serif; max-width: 32rem; margin: 3rem auto; line-height: 1.5\">\
         <h1>{title}</h1>{body}</body></html>"
    ))
}

async fn verify_page(State(state): State<AppState>, Query(q): Query<PageToken>) -> Html<String> {
    page(
        &state,
        "Confirm your email address",
        &format!(
            "<form method=\"post\" action=\"{VERIFY_PAGE}\"><input type=\"hidden\" name=\"token\" value=\"{}\">\
             <button type=\"submit\">Confirm</button></form>",
            escape(&q.token)
        ),
    )
}

async fn verify_page_submit(State(state): State<AppState>, Form(f): Form<PageToken>) -> Response {
    match state.engine.verify_email(&f.token).await {
        Ok(_) => page(
            &state,
            "Email address confirmed",
            "<p>Thank you: your email address is confirmed.</p>",
        )
        .into_response(),
        Err(e) => (
            super::error::status_of(&e),
            page(
                &state,
                "This link does not work",
                &format!("<p>{}</p>", escape(&e.to_string())),
            ),
        )
            .into_response(),
    }
}

async fn reset_page(State(state): State<AppState>, Query(q): Query<PageToken>) -> Html<String> {
    page(
        &state,
        "Choose a new password",
        &format!(
            "<form method=\"post\" action=\"{RESET_PAGE}\"><input type=\"hidden\" name=\"token\" value=\"{}\">\
             <label>New password <input type=\"password\" name=\"password\" minlength=\"8\" required autocomplete=\"new-password\"></label> \
             <button type=\"submit\">Set password</button></form>",
            escape(&q.token)
        ),
    )
}

async fn reset_page_submit(State(state): State<AppState>, Form(f): Form<ResetForm>) -> Response {
    match state
        .engine
        .confirm_password_reset(&f.token, &f.password)
        .await
    {
        Ok(_) => page(
            &state,
            "Password changed",
            "<p>Your password is changed and every device was signed out. Sign in again with the new password.</p>",
        )
        .into_response(),
        Err(e) => (
            super::error::status_of(&e),
            page(&state, "The password was not changed", &format!("<p>{}</p>", escape(&e.to_string()))),
        )
            .into_response(),
    }
}
