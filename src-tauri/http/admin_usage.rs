//! `/v1/admin/usage/*`: usage over time for the back office's Usage screen.

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::AppState;
use crate::service::usage_series::{UsageSeries, UsageSeriesQuery};
use axum::extract::{Query, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(usage_series))
}

/// A metric's usage over time.
///
/// Per day (per hour for ranges under three days): the platform's stacked by plan, or one
/// user's (`user_id`). Needs the `view_stats` permission (and `view_user` for one user).
#[utoipa::path(get, path = "/v1/admin/usage/series", operation_id = "admin_usage_series", tag = "admin", security(("bearer" = [])), params(UsageSeriesQuery),
    responses((status = 200, body = UsageSeries, example = json!({"metric": "videos", "user_id": null, "grain": "day", "from": "2026-11-27", "to": "2026-11-29", "buckets": ["2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z"], "lines": [{"plan_id": "free", "net": [812, 790, 655]}, {"plan_id": "pro", "net": [2310, 2402, 1980]}], "rows": [{"at": "2026-11-27T00:00:00Z", "consumed": 3140, "released": 18, "reset": 0, "net": 3122}, {"at": "2026-11-28T00:00:00Z", "consumed": 3201, "released": 9, "reset": 0, "net": 3192}, {"at": "2026-11-29T00:00:00Z", "consumed": 2640, "released": 5, "reset": 0, "net": 2635}]})), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn usage_series(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    Query(q): Query<UsageSeriesQuery>,
) -> Result<Json<UsageSeries>, ApiError> {
    let p = caller.require(crate::domain::Scope::Read)?;
    let a = state.engine.actor(p, &ip.0.to_string())?;
    Ok(Json(state.engine.admin_usage_series(&a, &q).await?))
}
