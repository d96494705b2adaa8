//! `/v1/admin/stripe/events/*`: stored Stripe events, their replay (or its dry run) and the
//! import of event files, as thin handlers over the back-office service.

use super::admin::actor;
use super::auth::Caller;
use super::client_ip::ClientIp;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::json::ApiJson;
use super::AppState;
use crate::service::stripe_events::admin::{
    ImportReport, ReplayReport, ReplayRequest, StripeEventDetail, StripeEventImport,
    StripeEventPage, StripeEventQuery,
};
use axum::extract::{Path, Query, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(replay))
        .routes(routes!(import))
}

/// Stored events, newest first, by type, status and customer or user.
#[utoipa::path(get, path = "/v1/admin/stripe/events", operation_id = "admin_list_stripe_events", tag = "admin", security(("bearer" = [])), params(StripeEventQuery),
    responses((status = 200, body = StripeEventPage, example = json!({"events": [{"id": "evt_1QxLk2Hn3f", "type": "customer.subscription.updated", "created": "2026-11-29T11:40:02Z", "livemode": false, "status": "applied", "error": null, "customer_id": "cus_Qx7Lk2", "user_id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "received_at": "2026-11-29T11:40:03Z", "applied_at": "2026-11-29T11:40:03Z", "attempts": 1}], "next_cursor": "evt_1QxLk2Hn3f"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    q: Result<Query<StripeEventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<StripeEventPage>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    let Query(q) = q.map_err(|e| {
        ApiError::from(crate::Error::validation("query", "invalid", &e.body_text()))
    })?;
    Ok(Json(state.engine.admin_stripe_events(&a, &q).await?))
}

/// One stored event with its raw JSON.
#[utoipa::path(get, path = "/v1/admin/stripe/events/{id}", operation_id = "admin_get_stripe_event", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = StripeEventDetail, example = json!({"event": {"id": "evt_1QxLk2Hn3f", "type": "customer.subscription.updated", "created": "2026-11-29T11:40:02Z", "livemode": false, "status": "applied", "error": null, "customer_id": "cus_Qx7Lk2", "user_id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "received_at": "2026-11-29T11:40:03Z", "applied_at": "2026-11-29T11:40:03Z", "attempts": 1}, "raw": "{\"id\": \"evt_1QxLk2Hn3f\", \"object\": \"event\", \"type\": \"customer.subscription.updated\", \"data\": {\"object\": {\"id\": \"sub_1QxLk2\", \"status\": \"active\"}}}"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Json<StripeEventDetail>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    Ok(Json(state.engine.admin_stripe_event(&a, &id).await?))
}

/// Apply stored events again.
///
/// With `dry_run`, says what that would change (support and admins; audited when real).
#[utoipa::path(post, path = "/v1/admin/stripe/events/replay", operation_id = "admin_replay_stripe_events", tag = "admin", security(("bearer" = [])), request_body = ReplayRequest,
    responses((status = 200, body = ReplayReport, example = json!({"dry_run": true, "events": [{"id": "evt_1QxLk2Hn3f", "type": "customer.subscription.updated", "outcome": "applied", "error": null, "changes": ["plan free@1 -> pro@2"]}], "users": [{"user_id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "before": {"account_status": "active", "subscription_status": "active", "plan_version": "free@1", "credits": [{"metric": "tokens", "balance": 100}]}, "after": {"account_status": "active", "subscription_status": "active", "plan_version": "pro@2", "credits": [{"metric": "tokens", "balance": 5000}]}, "changed": ["plan_version", "credits"]}]})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(b): ApiJson<ReplayRequest>,
) -> Result<Json<ReplayReport>, ApiError> {
    let a = actor(&state, &caller, ip, !b.dry_run)?;
    Ok(Json(state.engine.admin_replay_stripe_events(&a, &b).await?))
}

/// Import events from a file.
///
/// Stores them as pending, marked as unsigned local test data (support and admins; audited).
#[utoipa::path(post, path = "/v1/admin/stripe/events/import", operation_id = "admin_import_stripe_events", tag = "admin", security(("bearer" = [])), request_body = StripeEventImport,
    responses((status = 200, body = ImportReport, example = json!({"stored": ["evt_1QxLk2Hn3f", "evt_1QxLk9Pa2c"], "duplicates": ["evt_1QxJh0Tq7r"], "notes": ["line 4: not an event (no `id` and `type`)"]})), (status = 400, description = "invalid_stripe_event", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(b): ApiJson<StripeEventImport>,
) -> Result<Json<ImportReport>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    Ok(Json(state.engine.admin_import_stripe_events(&a, &b).await?))
}
