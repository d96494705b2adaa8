//! `/v1/admin/*`: the back office over HTTP. Every handler turns the caller into an
//! [`Actor`] and calls the one back-office service, which checks the permission table.

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::json::{ApiJson, ApiJsonOrEmpty, PathId};
use super::AppState;
use crate::domain::{KeyId, Role, Scope, SessionId, User, UserId};
use crate::service::admin::{
    Actor, Explanation, Fix, Impersonation, Stats, UserDetail, UserPage, UserQuery,
};
use crate::service::audit::{AuditEntry, AuditFilter};
use crate::service::subscriptions::{Effective, SubscriptionView};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(user_detail, delete_user))
        .routes(routes!(suspend))
        .routes(routes!(reactivate))
        .routes(routes!(change_plan))
        .routes(routes!(grant_credits))
        .routes(routes!(reset_usage))
        .routes(routes!(clear_limits))
        .routes(routes!(revoke_sessions))
        .routes(routes!(revoke_keys))
        .routes(routes!(impersonate))
        .routes(routes!(explain))
        .routes(routes!(apply_fix))
        .routes(routes!(stats))
        .routes(routes!(audit))
        .routes(routes!(list_staff, set_staff))
}

/// The caller as a staff actor; reads need `read`, changes `write` on API keys.
pub(super) fn actor(
    state: &AppState,
    caller: &Caller,
    ip: ClientIp,
    write: bool,
) -> Result<Actor, ApiError> {
    let p = caller.require(if write { Scope::Write } else { Scope::Read })?;
    Ok(state.engine.actor(p, &ip.0.to_string())?)
}

#[derive(Deserialize, ToSchema, Default)]
#[schema(examples(json!({"reason": "chargeback under review (ticket 4711)"})))]
pub struct Reason {
    /// Why: kept in the audit log (required for suspend, delete, plan override, credit grant,
    /// impersonation).
    reason: Option<String>,
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct ReasonQuery {
    /// Why: kept in the audit log (required).
    reason: Option<String>,
}

/// Search and page through users.
#[utoipa::path(get, path = "/v1/admin/users", operation_id = "admin_list_users", tag = "admin", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, body = UserPage, example = json!({"users": [{"id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "email": "ada@example.com", "full_name": "Ada Lovelace", "role": "user", "status": "active", "plan": "pro@2", "created_at": "2026-10-02T09:15:00Z"}], "total": 1, "total_capped": false, "next_cursor": null})), (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    q: Result<Query<UserQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UserPage>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    let Query(q) = q.map_err(|e| {
        ApiError::from(crate::Error::validation("query", "invalid", &e.body_text()))
    })?;
    Ok(Json(state.engine.admin_list_users(&a, &q).await?))
}

/// Everything about one user.
#[utoipa::path(get, path = "/v1/admin/users/{id}", operation_id = "admin_get_user", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserDetail, example = json!({"user": {"id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "email": "ada@example.com", "full_name": "Ada Lovelace", "role": "user", "status": "active", "created_at": "2026-10-02T09:15:00Z", "updated_at": "2026-11-29T11:46:14.310Z"}, "subscription": {"id": "sub_0Fz3kQ9dY2mXb8Lr4TqW1a", "user_id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "plan": "pro@2", "plan_id": "pro", "plan_name": "Pro", "effective_plan": "pro@2", "status": "active", "current_period_start": "2026-11-02T09:15:00Z", "current_period_end": "2026-12-02T09:15:00Z", "cancel_at_period_end": false, "scheduled_plan": null, "trial_end": null, "grace_until": null, "stripe_customer_id": "cus_Qx7Lk2", "stripe_subscription_id": "sub_1QxLk2"}, "usage": {"plan": "pro@2", "period": {"start": "2026-11-02T09:15:00Z", "end": "2026-12-02T09:15:00Z"}, "metrics": {"videos": {"limit": 100, "used": 12, "remaining": 88, "unlimited": false, "resets_at": "2026-11-30T00:00:00Z", "per": "day", "credits": null}}, "credits": {}}, "sessions": [{"id": "ses_0Fz3kQ9dY2mXb8Lr4TqW1a", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "ip": "203.0.113.7", "created_at": "2026-11-28T08:00:00Z", "last_seen_at": "2026-11-29T11:46:14.310Z", "expires_at": "2026-12-28T08:00:00Z", "current": true}], "keys": [{"id": "key_0Fz3kQ9dY2mXb8Lr4TqW1a", "name": "production", "prefix": "sk_live_3kT9", "scopes": ["meter", "read"], "created_at": "2026-10-02T09:16:00Z", "last_used_at": "2026-11-29T11:46:14.310Z", "expires_at": null, "revoked_at": null}], "recent_usage": [{"id": "use_0355yUenxVdhV0XuDtH4FZ", "metric": "videos", "kind": "consume", "amount": 1, "at": "2026-11-29T11:46:14.310Z", "request_id": "01938a2f-6c1e-7d3a-9b7e-2f4c8a1d5e60", "released": false}], "audit": [{"id": "aud_0Fz3kQ9dY2mXb8Lr4TqW1a", "at": "2026-11-29T11:46:14.310Z", "actor": "ops@example.com", "action": "user.suspend", "target": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "before": {"status": "active"}, "after": {"status": "suspended"}, "reason": "chargeback", "via": "http"}], "credit_ledger": [], "refusals": [{"decision": {"request_id": "01938a2f-6c1e-7d3a-9b7e-2f4c8a1d5e60", "at": "2026-11-29T11:46:14.310Z", "code": "quota_exceeded", "status": 429, "route": "/v1/meter", "user_id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "key_prefix": "sk_live_3kT9", "facts": {"metric": "videos", "limit": 3, "used": 3, "resets_at": "2026-11-30T00:00:00Z"}}, "summary": ["free@1 allows 3 videos per day; 3 were used before this request.", "The counter resets at 2026-11-30T00:00:00Z."], "fixes": ["quota_boost", "clear_limit"]}], "email_verified_at": "2026-10-02T09:20:00Z", "mfa_enabled": false, "recovery_codes_left": 0, "recent_mail": [{"id": "mail_0Fz3kQ9dY2mXb8Lr4TqW1a", "user_id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "to": "ada@example.com", "template": "verify_email", "subject": "Confirm your email address for Tollgate", "status": "sent", "attempts": 1, "last_error": null, "created_at": "2026-10-02T09:15:01Z", "sent_at": "2026-10-02T09:15:02Z"}]})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn user_detail(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
) -> Result<Json<UserDetail>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    Ok(Json(state.engine.admin_user_detail(&a, &id).await?))
}

/// Soft-delete a user (reason required, as `?reason=`).
#[utoipa::path(delete, path = "/v1/admin/users/{id}", operation_id = "admin_delete_user", tag = "admin", security(("bearer" = [])), params(("id" = String, Path), ReasonQuery),
    responses((status = 204, description = "deleted"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    Query(q): Query<ReasonQuery>,
) -> Result<StatusCode, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    state
        .engine
        .admin_delete_user(&a, &id, q.reason.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Suspend: the user's tokens and keys stop working on their next request.
#[utoipa::path(post, path = "/v1/admin/users/{id}/suspend", operation_id = "admin_suspend_user", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), request_body = Reason,
    responses((status = 200, body = User, example = json!({"id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "email": "ada@example.com", "full_name": "Ada Lovelace", "role": "user", "status": "suspended", "created_at": "2026-10-02T09:15:00Z", "updated_at": "2026-11-29T11:46:14.310Z"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty<Reason>,
) -> Result<Json<User>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    Ok(Json(
        state
            .engine
            .admin_suspend(&a, &id, b.reason.as_deref())
            .await?,
    ))
}

/// Reactivate a suspended user.
#[utoipa::path(post, path = "/v1/admin/users/{id}/reactivate", operation_id = "admin_reactivate_user", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), request_body = Reason,
    responses((status = 200, body = User, example = json!({"id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "email": "ada@example.com", "full_name": "Ada Lovelace", "role": "user", "status": "active", "created_at": "2026-10-02T09:15:00Z", "updated_at": "2026-11-29T11:46:14.310Z"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty<Reason>,
) -> Result<Json<User>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    Ok(Json(
        state
            .engine
            .admin_reactivate(&a, &id, b.reason.as_deref())
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"plan": "pro", "effective": "now", "reason": "partner account"})))]
pub struct PlanChange {
    plan: String,
    /// `now` (default) or `period_end`.
    effective: Option<Effective>,
    reason: Option<String>,
}

/// Override the plan without Stripe, now or at the end of the period.
#[utoipa::path(post, path = "/v1/admin/users/{id}/plan", operation_id = "admin_change_plan", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), request_body = PlanChange,
    responses((status = 200, body = SubscriptionView, example = json!({"id": "sub_0Fz3kQ9dY2mXb8Lr4TqW1a", "user_id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "plan": "team@1", "plan_id": "team", "plan_name": "Team", "effective_plan": "team@1", "status": "active", "current_period_start": "2026-11-02T09:15:00Z", "current_period_end": "2026-12-02T09:15:00Z", "cancel_at_period_end": false, "scheduled_plan": null, "trial_end": null, "grace_until": null, "stripe_customer_id": null, "stripe_subscription_id": null})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn change_plan(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJson(b): ApiJson<PlanChange>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    let when = b.effective.unwrap_or(Effective::Now);
    Ok(Json(
        state
            .engine
            .admin_change_plan(&a, &id, &b.plan, when, b.reason.as_deref())
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"metric": "videos", "amount": 100, "reason": "outage compensation"})))]
pub struct CreditGrant {
    metric: String,
    /// Positive grants, negative takes back.
    amount: i64,
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Balance {
    metric: String,
    balance: i64,
}

/// Grant or take back credits.
#[utoipa::path(post, path = "/v1/admin/users/{id}/credits", operation_id = "admin_grant_credits", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), request_body = CreditGrant,
    responses((status = 200, body = Balance, example = json!({"metric": "tokens", "balance": 5100})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn grant_credits(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJson(b): ApiJson<CreditGrant>,
) -> Result<Json<Balance>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    let balance = state
        .engine
        .admin_grant_credits(&a, &id, &b.metric, b.amount, b.reason.as_deref())
        .await?;
    Ok(Json(Balance {
        metric: b.metric,
        balance,
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"metric": "videos", "reason": "double-counted batch"})))]
pub struct UsageReset {
    metric: String,
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Done {
    /// How many things the action touched (units reset, sessions revoked, windows cleared…).
    affected: i64,
}

/// Reset a metric's usage for the current window.
#[utoipa::path(post, path = "/v1/admin/users/{id}/usage/reset", operation_id = "admin_reset_usage", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), request_body = UsageReset,
    responses((status = 200, body = Done, example = json!({"affected": 1})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn reset_usage(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJson(b): ApiJson<UsageReset>,
) -> Result<Json<Done>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    let n = state
        .engine
        .admin_reset_usage(&a, &id, &b.metric, b.reason.as_deref())
        .await?;
    Ok(Json(Done { affected: n }))
}

/// Forget the user's rate-limit windows.
#[utoipa::path(post, path = "/v1/admin/users/{id}/limits/clear", operation_id = "admin_clear_limits", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), request_body = Reason,
    responses((status = 200, body = Done, example = json!({"affected": 1})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn clear_limits(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty<Reason>,
) -> Result<Json<Done>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    let n = state
        .engine
        .admin_clear_limits(&a, &id, b.reason.as_deref())
        .await?;
    Ok(Json(Done { affected: n as i64 }))
}

#[derive(Deserialize, ToSchema, Default)]
#[schema(examples(json!({"session_id": null, "reason": "lost laptop"})))]
pub struct SessionRevoke {
    /// One session; all when left out.
    session_id: Option<String>,
    reason: Option<String>,
}

/// Revoke one or all of the user's sessions.
#[utoipa::path(post, path = "/v1/admin/users/{id}/sessions/revoke", operation_id = "admin_revoke_sessions", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), request_body = SessionRevoke,
    responses((status = 200, body = Done, example = json!({"affected": 2})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn revoke_sessions(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty<SessionRevoke>,
) -> Result<Json<Done>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    let session = b.session_id.as_deref().map(SessionId::parse).transpose()?;
    let n = state
        .engine
        .admin_revoke_sessions(&a, &id, session.as_ref(), b.reason.as_deref())
        .await?;
    Ok(Json(Done { affected: n as i64 }))
}

#[derive(Deserialize, ToSchema, Default)]
#[schema(examples(json!({"key_id": "key_0355yUaHhfBmu1tcKPQpfL", "reason": "key leaked in a public repository"})))]
pub struct KeyRevoke {
    /// One key; all when left out.
    key_id: Option<String>,
    reason: Option<String>,
}

/// Revoke one or all of the user's API keys.
#[utoipa::path(post, path = "/v1/admin/users/{id}/keys/revoke", operation_id = "admin_revoke_keys", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), request_body = KeyRevoke,
    responses((status = 200, body = Done, example = json!({"affected": 2})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn revoke_keys(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty<KeyRevoke>,
) -> Result<Json<Done>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    let key = b.key_id.as_deref().map(KeyId::parse).transpose()?;
    let n = state
        .engine
        .admin_revoke_keys(&a, &id, key.as_ref(), b.reason.as_deref())
        .await?;
    Ok(Json(Done { affected: n as i64 }))
}

/// A ten-minute token acting as the user (read-only unless the permission table allows).
#[utoipa::path(post, path = "/v1/admin/users/{id}/impersonate", operation_id = "admin_impersonate", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), request_body = Reason,
    responses((status = 200, body = Impersonation, example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMEZ6M2tROWRZMm1YYjhMcjRUcVcxYSIsImltcCI6dHJ1ZX0.sig", "token_type": "bearer", "expires_in": 900, "can_write": false})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn impersonate(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    PathId(id): PathId<UserId>,
    ApiJsonOrEmpty(b): ApiJsonOrEmpty<Reason>,
) -> Result<Json<Impersonation>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    Ok(Json(
        state
            .engine
            .admin_impersonate(&a, &id, b.reason.as_deref())
            .await?,
    ))
}

/// Why a request was refused, in plain words, with the fixes support may apply.
#[utoipa::path(get, path = "/v1/admin/decisions/{request_id}", operation_id = "admin_explain_decision", tag = "admin", security(("bearer" = [])), params(("request_id" = String, Path)),
    responses((status = 200, body = Explanation, example = json!({"decision": {"request_id": "01938a2f-6c1e-7d3a-9b7e-2f4c8a1d5e60", "at": "2026-11-29T11:46:14.310Z", "code": "quota_exceeded", "status": 429, "route": "/v1/meter", "user_id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "key_prefix": "sk_live_3kT9", "facts": {"metric": "videos", "limit": 3, "used": 3, "resets_at": "2026-11-30T00:00:00Z"}}, "summary": ["free@1 allows 3 videos per day; 3 were used before this request.", "The counter resets at 2026-11-30T00:00:00Z."], "fixes": ["quota_boost", "clear_limit"]})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn explain(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    Path(request_id): Path<String>,
) -> Result<Json<Explanation>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    Ok(Json(state.engine.admin_explain(&a, &request_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"fix": "quota_boost", "reason": "demo for a prospect"})))]
pub struct ApplyFix {
    fix: Fix,
    reason: Option<String>,
}

/// Apply one of the fixes an explanation offers.
#[utoipa::path(post, path = "/v1/admin/decisions/{request_id}/fix", operation_id = "admin_apply_fix", tag = "admin", security(("bearer" = [])), params(("request_id" = String, Path)), request_body = ApplyFix,
    responses((status = 204, description = "applied"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn apply_fix(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    Path(request_id): Path<String>,
    ApiJson(b): ApiJson<ApplyFix>,
) -> Result<StatusCode, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    state
        .engine
        .admin_apply_fix(&a, &request_id, b.fix, b.reason.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Days of daily series: 1 to 366; 30 by default.
    #[param(minimum = 1, maximum = 366, default = 30)]
    days: Option<i64>,
}

/// Users by status and plan, signups and active users per day.
#[utoipa::path(get, path = "/v1/admin/stats", operation_id = "admin_stats", tag = "admin", security(("bearer" = [])), params(StatsQuery),
    responses((status = 200, body = Stats, example = json!({"users_total": 9540, "users_active": 9490, "users_suspended": 38, "users_deleted": 12, "users_per_plan": [{"name": "free", "count": 9078}, {"name": "pro", "count": 412}], "users_per_role": [{"name": "user", "count": 9530}, {"name": "admin", "count": 2}], "signups_per_day": [{"date": "2026-11-29", "count": 41}], "active_users_per_day": [{"date": "2026-11-29", "count": 2210}], "refusals_today": [{"name": "quota_exceeded", "count": 318}, {"name": "rate_limited", "count": 12}]})), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Stats>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    Ok(Json(
        state.engine.admin_stats(&a, q.days.unwrap_or(30)).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries by this staff member (`usr_…`).
    actor: Option<String>,
    /// Entries about this user or object.
    target: Option<String>,
    /// One action, such as `suspend` or `grant_credits`.
    action: Option<String>,
    /// Entries at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// 1 to 1000; 100 by default.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/v1/admin/audit", operation_id = "admin_audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>, example = json!([{"id": "aud_0Fz3kQ9dY2mXb8Lr4TqW1a", "at": "2026-11-29T11:46:14.310Z", "actor": "ops@example.com", "action": "user.suspend", "target": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "before": {"status": "active"}, "after": {"status": "suspended"}, "reason": "chargeback", "via": "http"}])), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    let f = AuditFilter {
        actor: q.actor,
        target: q.target,
        action: q.action,
        since: q.since,
        limit: q.limit,
        ..Default::default()
    };
    Ok(Json(state.engine.admin_audit(&a, &f).await?))
}

/// Staff accounts.
#[utoipa::path(get, path = "/v1/admin/staff", operation_id = "admin_list_staff", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>, example = json!([{"id": "usr_0Fz3kQ9dY2mXb8Lr4TqW9c", "email": "ops@example.com", "full_name": "Grace Hopper", "role": "support", "status": "active", "created_at": "2026-10-02T09:15:00Z", "updated_at": "2026-11-29T11:46:14.310Z"}])), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn list_staff(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
) -> Result<Json<Vec<User>>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    Ok(Json(state.engine.admin_list_staff(&a).await?))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"email": "grace@example.com", "role": "support", "reason": "joins the support team"})))]
pub struct StaffRole {
    email: String,
    /// `support`, `finance`, `admin`, or `user` to take staff rights away.
    role: Role,
    reason: Option<String>,
}

/// Give an existing account a role.
#[utoipa::path(post, path = "/v1/admin/staff", operation_id = "admin_set_staff_role", tag = "admin", security(("bearer" = [])), request_body = StaffRole,
    responses((status = 200, body = User, example = json!({"id": "usr_0Fz3kQ9dY2mXb8Lr4TqW9c", "email": "finance@example.com", "full_name": null, "role": "finance", "status": "active", "created_at": "2026-10-02T09:15:00Z", "updated_at": "2026-11-29T11:46:14.310Z"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn set_staff(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(b): ApiJson<StaffRole>,
) -> Result<Json<User>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    Ok(Json(
        state
            .engine
            .admin_set_role(&a, &b.email, b.role, b.reason.as_deref())
            .await?,
    ))
}
