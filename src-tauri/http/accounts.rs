//! `/v1/auth/*` and `/v1/me*`.

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::json::{ApiJson, PathId};
use super::AppState;
use crate::domain::{RefreshToken, Role, Scope, SessionId, User, UserStatus};
use crate::service::accounts::{Device, Registration, SessionInfo, TokenPair};
use crate::service::api_keys::NewKey;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout))
        .routes(routes!(me, update_me, delete_me))
        .routes(routes!(change_password))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"email": "ada@example.com", "password": "correct horse battery", "full_name": "Ada Lovelace"})))]
pub struct RegisterRequest {
    email: String,
    password: String,
    full_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    user: User,
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
    /// The account's first API key, shown this once.
    api_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    user: User,
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
}

impl TokenResponse {
    pub(super) fn new(user: User, pair: TokenPair) -> Self {
        Self {
            user,
            access_token: pair.access_token,
            refresh_token: pair.refresh_token.expose().to_owned(),
            token_type: "bearer",
            expires_in: pair.expires_in,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"email": "ada@example.com", "password": "correct horse battery"})))]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"refresh_token": "rt_BzW-f33tYsv9X7WVTZko0mf2gzedzZmZTO6nL5kSUjQ"})))]
pub struct RefreshRequest {
    refresh_token: String,
}

pub(super) fn device(headers: &HeaderMap, ip: ClientIp) -> Device {
    Device {
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ip: Some(ip.0.to_string()),
    }
}

/// Counts a request from this IP against the catalog's anonymous limit for `scope`.
async fn limit_ip(
    state: &AppState,
    scope: &str,
    ip: ClientIp,
) -> Result<Option<crate::service::rate_limits::RateDecision>, ApiError> {
    Ok(state
        .engine
        .check_ip_rate_limit(scope, &ip.0.to_string())
        .await?)
}

fn with_rate_headers(
    state: &AppState,
    mut res: Response,
    d: Option<crate::service::rate_limits::RateDecision>,
) -> Response {
    if let Some(d) = d {
        super::auth::set_rate_headers(res.headers_mut(), &d, state.engine.now());
    }
    res
}

/// Create an account on the default plan, with a session and a first API key.
#[utoipa::path(post, path = "/v1/auth/register", operation_id = "register", tag = "accounts", request_body = RegisterRequest,
    responses(
        (status = 201, body = RegisterResponse, example = json!({"user": {"id": "usr_0355yUZMmE5fF0B3KmxI4J", "email": "ada@example.com", "full_name": "Ada Lovelace", "role": "user", "status": "active", "created_at": "2026-11-29T11:46:14.310Z", "updated_at": "2026-11-29T11:46:14.310Z"}, "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMDM1NXlVWk1tRTVmRjBCM0tteEk0SiJ9.FHIMl5n7y7czooI0NFd_KyWZrjIEOelH-emMWSgrcbg", "refresh_token": "rt_NaPxFntQL28iBXmPUUVmuJGSZyD6VpMqWgCqgTy4OY4", "token_type": "bearer", "expires_in": 900, "api_key": "sk_live_SAM9OGeaxDpNzDsD8O2CNzhPR7q9qp0neANxoAp0z3F"})),
        (status = 409, description = "email_taken", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
        (status = 429, description = "rate_limited (per client IP)", body = ErrorBody),
    ))]
async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let decision = limit_ip(&state, "register", ip).await?;
    let result = async {
        let e = &state.engine;
        let user = e
            .register(Registration {
                email: &body.email,
                password: &body.password,
                full_name: body.full_name.as_deref(),
            })
            .await?;
        let pair = e.open_session(&user, &device(&headers, ip)).await?;
        let key = e
            .create_api_key(
                &user.id,
                NewKey {
                    name: "default",
                    scopes: None,
                    expires_at: None,
                },
            )
            .await?;
        let body = RegisterResponse {
            user,
            access_token: pair.access_token,
            refresh_token: pair.refresh_token.expose().to_owned(),
            token_type: "bearer",
            expires_in: pair.expires_in,
            api_key: key.plaintext.expose().to_owned(),
        };
        Ok::<_, ApiError>((StatusCode::CREATED, Json(body)).into_response())
    }
    .await;
    Ok(with_rate_headers(&state, result.into_response(), decision))
}

/// Exchange email and password for a token pair.
#[utoipa::path(post, path = "/v1/auth/login", operation_id = "login", tag = "accounts", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse, example = json!({"user": {"id": "usr_0355yUZMmE5fF0B3KmxI4J", "email": "ada@example.com", "full_name": "Ada Lovelace", "role": "user", "status": "active", "created_at": "2026-11-29T11:46:14.310Z", "updated_at": "2026-11-29T11:46:14.310Z"}, "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMDM1NXlVWk1tRTVmRjBCM0tteEk0SiJ9.FHIMl5n7y7czooI0NFd_KyWZrjIEOelH-emMWSgrcbg", "refresh_token": "rt_NaPxFntQL28iBXmPUUVmuJGSZyD6VpMqWgCqgTy4OY4", "token_type": "bearer", "expires_in": 900})),
        (status = 401, description = "invalid_credentials", body = ErrorBody),
        (status = 403, description = "account_suspended", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
        (status = 429, description = "rate_limited (per client IP)", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let decision = limit_ip(&state, "login", ip).await?;
    let result = state
        .engine
        .login(&body.email, &body.password, device(&headers, ip))
        .await;
    let res = match result {
        Ok((user, pair)) => Json(TokenResponse::new(user, pair)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    };
    Ok(with_rate_headers(&state, res, decision))
}

/// Rotate a refresh token. Presenting a used one revokes its session.
#[utoipa::path(post, path = "/v1/auth/refresh", operation_id = "refresh", tag = "accounts", request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse, example = json!({"user": {"id": "usr_0355yUZMmE5fF0B3KmxI4J", "email": "ada@example.com", "full_name": "Ada Lovelace", "role": "user", "status": "active", "created_at": "2026-11-29T11:46:14.310Z", "updated_at": "2026-11-29T11:46:14.310Z"}, "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMDM1NXlVWk1tRTVmRjBCM0tteEk0SiJ9.FHIMl5n7y7czooI0NFd_KyWZrjIEOelH-emMWSgrcbg", "refresh_token": "rt_NaPxFntQL28iBXmPUUVmuJGSZyD6VpMqWgCqgTy4OY4", "token_type": "bearer", "expires_in": 900})),
        (status = 401, description = "invalid_refresh_token, refresh_token_expired, refresh_token_reused, session_revoked", body = ErrorBody),
        (status = 403, description = "account_suspended", body = ErrorBody),
        (status = 422, description = "validation_failed", body = ErrorBody),
    ))]
async fn refresh(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let pair = state
        .engine
        .refresh(
            &RefreshToken::from_client(&body.refresh_token),
            device(&headers, ip),
        )
        .await?;
    let claims = state.engine.decode_access_token(&pair.access_token)?;
    let user = state
        .engine
        .user(&crate::domain::UserId::parse(&claims.sub)?)
        .await?;
    Ok(Json(TokenResponse::new(user, pair)))
}

/// End the session of the access token used.
#[utoipa::path(post, path = "/v1/auth/logout", operation_id = "logout", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 204, description = "signed out"),
        (status = 401, description = "missing_credentials, invalid_token, token_expired, session_revoked", body = ErrorBody),
        (status = 422, description = "validation_failed: API keys have no session", body = ErrorBody),
    ))]
async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let p = &caller.0;
    let sid = p.session_id().ok_or_else(|| {
        ApiError::from(crate::Error::validation(
            "authorization",
            "not_a_session",
            "log out with an access token, not an API key",
        ))
    })?;
    state
        .engine
        .revoke_session(&p.user.id, sid.as_str(), "logout")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    id: crate::domain::UserId,
    email: crate::domain::Email,
    full_name: Option<String>,
    role: Role,
    status: UserStatus,
    /// The plan whose limits apply now, e.g. `pro@1`.
    plan: String,
    created_at: DateTime<Utc>,
    /// Whether the email address was confirmed through the link of a verification mail.
    email_verified: bool,
    /// Whether two-factor authentication (TOTP) is on.
    mfa_enabled: bool,
}

async fn me_of(state: &AppState, user: User) -> Result<Me, ApiError> {
    let plan = state.engine.subscription(&user.id).await?.effective_plan;
    let facts = state.engine.account_facts(&user.id).await?;
    Ok(Me {
        email_verified: facts.email_verified_at.is_some(),
        mfa_enabled: facts.mfa_enabled,
        id: user.id,
        email: user.email,
        full_name: user.full_name,
        role: user.role,
        status: user.status,
        plan,
        created_at: user.created_at,
    })
}

/// The caller's account.
#[utoipa::path(get, path = "/v1/me", operation_id = "get_me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Me, example = json!({"id": "usr_0355yUZMmE5fF0B3KmxI4J", "email": "ada@example.com", "full_name": "Ada Lovelace", "role": "user", "status": "active", "plan": "free@1", "created_at": "2026-11-29T11:46:14.310Z"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let p = caller.require(Scope::Read)?;
    Ok(Json(me_of(&state, p.user.clone()).await?))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"full_name": "Ada King"})))]
pub struct UpdateMe {
    /// New full name; null or empty clears it.
    full_name: Option<String>,
}

/// Change the caller's profile.
#[utoipa::path(patch, path = "/v1/me", operation_id = "update_me", tag = "accounts", security(("bearer" = [])), request_body = UpdateMe,
    responses((status = 200, body = Me, example = json!({"id": "usr_0355yUZMmE5fF0B3KmxI4J", "email": "ada@example.com", "full_name": "Ada Lovelace", "role": "user", "status": "active", "plan": "free@1", "created_at": "2026-11-29T11:46:14.310Z"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn update_me(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<UpdateMe>,
) -> Result<Json<Me>, ApiError> {
    let p = caller.require_write()?;
    let user = state
        .engine
        .update_full_name(&p.user.id, body.full_name.as_deref())
        .await?;
    Ok(Json(me_of(&state, user).await?))
}

/// Delete the caller's account (soft: the email is freed; history is kept).
#[utoipa::path(delete, path = "/v1/me", operation_id = "delete_me", tag = "accounts", security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn delete_me(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let p = caller.require_write()?;
    state.engine.delete_account(&p.user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"current_password": "correct horse battery", "new_password": "staple battery horse"})))]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordChanged {
    /// Other sessions signed out by the change.
    revoked_sessions: u64,
}

/// Change the password; every other session is signed out.
#[utoipa::path(post, path = "/v1/me/password", operation_id = "change_password", tag = "accounts", security(("bearer" = [])), request_body = ChangePassword,
    responses((status = 200, body = PasswordChanged, example = json!({"revoked_sessions": 2})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, description = "wrong_password, validation_failed", body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<Json<PasswordChanged>, ApiError> {
    let p = caller.require_write()?;
    let revoked = state
        .engine
        .change_password(
            &p.user.id,
            p.session_id(),
            &body.current_password,
            &body.new_password,
        )
        .await?;
    Ok(Json(PasswordChanged {
        revoked_sessions: revoked,
    }))
}

/// The caller's signed-in devices.
#[utoipa::path(get, path = "/v1/me/sessions", operation_id = "list_sessions", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionInfo>, example = json!([{"id": "ses_0Fz3kQ9dY2mXb8Lr4TqW1a", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "ip": "203.0.113.7", "created_at": "2026-11-28T08:00:00Z", "last_seen_at": "2026-11-29T11:46:14.310Z", "expires_at": "2026-12-28T08:00:00Z", "current": true}])), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let p = caller.require(Scope::Read)?;
    Ok(Json(
        state
            .engine
            .list_sessions(&p.user.id, p.session_id())
            .await?,
    ))
}

/// Sign out one device.
#[utoipa::path(delete, path = "/v1/me/sessions/{id}", operation_id = "revoke_session", tag = "accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "session id (ses_…)")),
    responses((status = 204, description = "revoked"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn revoke_session(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId<SessionId>,
) -> Result<StatusCode, ApiError> {
    let p = caller.require_write()?;
    state
        .engine
        .revoke_session(&p.user.id, id.as_str(), "revoked_by_user")
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
