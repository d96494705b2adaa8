//! Plans, subscription, usage, metering and entitlements.

use super::auth::Caller;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::json::ApiJson;
use super::AppState;
use crate::domain::Scope;
use crate::plans::Plan;
use crate::service::entitlements::Entitlement;
use crate::service::metering::{Consumption, DailyUsage, MeterRequest, UsageSummary};
use crate::service::subscriptions::SubscriptionView;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_plans))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_subscription))
        .routes(routes!(my_usage))
        .routes(routes!(my_usage_history))
        .routes(routes!(meter))
        .routes(routes!(release))
        .routes(routes!(entitlement))
}

#[derive(Serialize, ToSchema)]
pub struct PlansResponse {
    catalog_version: i64,
    default_plan: String,
    metrics: Vec<String>,
    features: Vec<String>,
    plans: Vec<PublicPlan>,
}

#[derive(Serialize, ToSchema)]
pub struct PublicPlan {
    /// `pro@2`: the version new subscribers get.
    version: String,
    #[serde(flatten)]
    plan: Plan,
}

/// The current catalog: prices, features, quotas and rate limits.
#[utoipa::path(get, path = "/v1/plans", operation_id = "list_plans", tag = "plans",
    responses((status = 200, body = PlansResponse, example = json!({"catalog_version": 3, "default_plan": "free", "metrics": ["videos"], "features": ["vision"], "plans": [{"id": "pro", "name": "Pro", "description": "For products in production", "price": {"amount": 2900, "currency": "usd", "interval": "month"}, "stripe_price_ids": ["price_1QxPro"], "features": {"vision": true}, "quotas": {"videos": {"limit": 100, "per": "day", "kind": "limit"}}, "rate_limits": {"videos": {"requests": 10, "window_secs": 1}}, "trial_days": 14, "require_verified_email": true, "version": "pro@2"}]})), (status = 500, description = "internal: the catalog could not be read", body = ErrorBody)))]
async fn list_plans(State(state): State<AppState>) -> Result<Json<PlansResponse>, ApiError> {
    let c = state.engine.catalog().await?;
    Ok(Json(PlansResponse {
        catalog_version: c.version,
        default_plan: c.catalog.default_plan.clone(),
        metrics: c.catalog.metrics.clone(),
        features: c.catalog.features.clone(),
        plans: c
            .plans
            .iter()
            .map(|p| PublicPlan {
                version: p.label(),
                plan: p.plan.clone(),
            })
            .collect(),
    }))
}

/// The caller's subscription.
#[utoipa::path(get, path = "/v1/me/subscription", operation_id = "get_subscription", tag = "usage", security(("bearer" = [])),
    responses((status = 200, body = SubscriptionView, example = json!({"id": "sub_0355yUZMmE5fF0B3Q5AvLd", "user_id": "usr_0355yUZMmE5fF0B3KmxI4J", "plan": "free@1", "plan_id": "free", "plan_name": "Free", "effective_plan": "free@1", "status": "active", "current_period_start": "2026-11-29T11:46:14.310Z", "current_period_end": "2026-12-29T11:46:14.310Z", "cancel_at_period_end": false, "scheduled_plan": null, "trial_end": null, "grace_until": null, "stripe_customer_id": null, "stripe_subscription_id": null})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn my_subscription(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SubscriptionView>, ApiError> {
    let p = caller.require(Scope::Read)?;
    Ok(Json(state.engine.subscription(&p.user.id).await?))
}

/// Usage of every metric in its current window, and credit balances.
#[utoipa::path(get, path = "/v1/me/usage", operation_id = "get_usage", tag = "usage", security(("bearer" = [])),
    responses((status = 200, body = UsageSummary, example = json!({"plan": "free@1", "period": {"start": "2026-11-29T11:46:14.310Z", "end": "2026-12-29T11:46:14.310Z"}, "metrics": {"videos": {"limit": 3, "used": 1, "remaining": 2, "unlimited": false, "resets_at": "2026-11-30T00:00:00Z", "per": "day", "credits": null}}, "credits": {}})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn my_usage(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UsageSummary>, ApiError> {
    let p = caller.require(Scope::Read)?;
    Ok(Json(state.engine.usage_summary(&p.user.id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many UTC days, ending today: 1 to 366; 30 by default.
    #[param(minimum = 1, maximum = 366, default = 30)]
    days: Option<i64>,
    /// One metric; all when left out.
    metric: Option<String>,
}

/// Net use per UTC day.
#[utoipa::path(get, path = "/v1/me/usage/history", operation_id = "get_usage_history", tag = "usage", security(("bearer" = [])), params(HistoryQuery),
    responses((status = 200, body = Vec<DailyUsage>, example = json!([{"date": "2026-11-28", "metric": "videos", "used": 3}, {"date": "2026-11-29", "metric": "videos", "used": 1}])), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn my_usage_history(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<DailyUsage>>, ApiError> {
    let p = caller.require(Scope::Read)?;
    let Query(q) = q.map_err(|e| {
        ApiError::from(crate::Error::validation("query", "invalid", &e.body_text()))
    })?;
    let metric = q.metric.as_deref().filter(|m| !m.is_empty());
    Ok(Json(
        state
            .engine
            .usage_history(&p.user.id, q.days.unwrap_or(30), metric)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"metric": "videos", "amount": 1, "idempotency_key": "job-42"})))]
pub struct MeterBody {
    metric: String,
    /// 1 by default.
    amount: Option<i64>,
    /// Retries with the same key get the first answer and consume once.
    idempotency_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MeterAnswer {
    allowed: bool,
    #[serde(flatten)]
    consumption: Consumption,
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Check and consume usage before doing metered work.
#[utoipa::path(post, path = "/v1/meter", operation_id = "meter", tag = "metering", security(("bearer" = [])), request_body = MeterBody,
    responses(
        (status = 200, description = "allowed", body = MeterAnswer, example = json!({"allowed": true, "event_id": "use_0355yUenxVdhV0XuDtH4FZ", "metric": "videos", "amount": 1, "used": 1, "limit": 3, "remaining": 2, "unlimited": false, "resets_at": "2026-11-30T00:00:00Z", "credits": null, "replayed": false})),
        (status = 401, body = ErrorBody),
        (status = 402, description = "insufficient_credits", body = ErrorBody),
        (status = 403, description = "insufficient_scope, account_suspended", body = ErrorBody),
        (status = 422, description = "unknown_metric, validation_failed", body = ErrorBody),
        (status = 429, description = "quota_exceeded, rate_limited", body = ErrorBody),
    ))]
async fn meter(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MeterBody>,
) -> Result<Json<MeterAnswer>, ApiError> {
    let p = caller.require(Scope::Meter)?;
    let rid = request_id(&headers);
    state.engine.require_verified_email(&p.user.id).await?;
    let result = state
        .engine
        .check_and_consume(
            &p.user.id,
            MeterRequest {
                metric: &body.metric,
                amount: body.amount.unwrap_or(1),
                idempotency_key: body.idempotency_key.as_deref(),
                request_id: rid.as_deref(),
            },
        )
        .await;
    match result {
        Ok(c) => {
            state.metrics.record_decision(&c.metric, "allowed");
            Ok(Json(MeterAnswer {
                allowed: true,
                consumption: c,
            }))
        }
        Err(e) => {
            if !matches!(e, crate::Error::Internal(_)) {
                // Only declared metrics become label values: callers choose the name.
                let declared = state
                    .engine
                    .catalog()
                    .await
                    .is_ok_and(|c| c.catalog.metrics.contains(&body.metric));
                let metric = if declared {
                    body.metric.as_str()
                } else {
                    "undeclared"
                };
                state.metrics.record_decision(metric, e.code());
            }
            Err(e.into())
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"idempotency_key": "job-42"})))]
pub struct ReleaseBody {
    event_id: Option<String>,
    idempotency_key: Option<String>,
}

/// Undo a consumption whose work failed.
#[utoipa::path(post, path = "/v1/meter/release", operation_id = "release_usage", tag = "metering", security(("bearer" = [])), request_body = ReleaseBody,
    responses((status = 200, body = Consumption, example = json!({"event_id": "use_0355yUenxVdhV0XuDtH4FZ", "metric": "videos", "amount": 1, "used": 0, "limit": 3, "remaining": 3, "unlimited": false, "resets_at": "2026-11-30T00:00:00Z", "credits": null, "replayed": false})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "already released", body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn release(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Json<Consumption>, ApiError> {
    let p = caller.require(Scope::Meter)?;
    Ok(Json(
        state
            .engine
            .release(
                &p.user.id,
                body.event_id.as_deref(),
                body.idempotency_key.as_deref(),
            )
            .await?,
    ))
}

/// Whether the caller's plan includes a feature.
#[utoipa::path(get, path = "/v1/entitlements/{feature}", operation_id = "get_entitlement", tag = "metering", security(("bearer" = [])),
    params(("feature" = String, Path)),
    responses((status = 200, body = Entitlement, example = json!({"feature": "vision", "allowed": false, "plan": "free", "upgrade_to": "pro"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn entitlement(
    State(state): State<AppState>,
    caller: Caller,
    Path(feature): Path<String>,
) -> Result<Json<Entitlement>, ApiError> {
    let p = caller.require(Scope::Meter)?;
    Ok(Json(state.engine.entitlement(&p.user.id, &feature).await?))
}
