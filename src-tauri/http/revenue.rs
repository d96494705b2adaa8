//! `/v1/admin/revenue/*`: the finance tables as JSON, or as CSV with `?format=csv`.
//! Definitions of every figure: `docs/revenue.md`.

use super::auth::Caller;
use super::client_ip::ClientIp;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::AppState;
use crate::domain::Scope;
use crate::service::admin::Actor;
use crate::service::permissions::Action;
use crate::service::revenue::{ChurnMonth, CsvRow, MovementMonth, MrrMonth, PlanMonth, Report};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mrr))
        .routes(routes!(movements))
        .routes(routes!(by_plan))
        .routes(routes!(churn))
}

#[derive(Deserialize, ToSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Csv,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevenueQuery {
    /// How many months, ending with the current one (UTC): 1 to 120, 12 by default.
    #[param(minimum = 1, maximum = 120, default = 12)]
    months: Option<i64>,
    /// `json` (default) or `csv`.
    #[param(inline, default = "json")]
    format: Option<Format>,
}

/// The caller as a staff actor and the query, checked; a malformed query is a 422.
fn parse(
    state: &AppState,
    caller: &Caller,
    ip: ClientIp,
    q: Result<Query<RevenueQuery>, QueryRejection>,
) -> Result<(Actor, RevenueQuery), ApiError> {
    let p = caller.require(Scope::Read)?;
    let actor = state.engine.actor(p, &ip.0.to_string())?;
    // Refuse before reading the query, so that a forbidden caller learns nothing from it.
    state.engine.authorize(&actor, Action::ViewRevenue)?;
    let Query(q) = q.map_err(|e| {
        ApiError::from(crate::Error::validation("query", "invalid", &e.body_text()))
    })?;
    Ok((actor, q))
}

fn answer<Row: CsvRow + Serialize>(report: Report<Row>, format: Option<Format>) -> Response {
    match format.unwrap_or_default() {
        Format::Json => Json(report).into_response(),
        Format::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            report.to_csv(),
        )
            .into_response(),
    }
}

/// MRR, ARR, paying customers, ARPU, money collected and refunded, per month and currency.
#[utoipa::path(get, path = "/v1/admin/revenue/mrr", operation_id = "admin_revenue_mrr", tag = "admin", security(("bearer" = [])), params(RevenueQuery),
    responses((status = 200, description = "one row per month and currency", content((Report<MrrMonth> = "application/json"), (String = "text/csv")), example = json!({"as_of": "2026-11-29T11:46:14.310Z", "rows": [{"month": "2026-11", "currency": "usd", "snapshot_at": "2026-11-30T23:59:59Z", "mrr": 1194800, "arr": 14337600, "paying_customers": 412, "arpu": 2900, "collected": 1180300, "refunded": 2900, "net_revenue": 1177400}]})),
        (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn mrr(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    q: Result<Query<RevenueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (a, q) = parse(&state, &caller, ip, q)?;
    let r = state.engine.admin_revenue_mrr(&a, q.months).await?;
    Ok(answer(r, q.format))
}

/// MRR movements per month: new, expansion, contraction, churned, reactivation.
#[utoipa::path(get, path = "/v1/admin/revenue/movements", operation_id = "admin_revenue_movements", tag = "admin", security(("bearer" = [])), params(RevenueQuery),
    responses((status = 200, description = "one row per month and currency", content((Report<MovementMonth> = "application/json"), (String = "text/csv")), example = json!({"as_of": "2026-11-29T11:46:14.310Z", "rows": [{"month": "2026-11", "currency": "usd", "start_mrr": 1160000, "new": 43500, "expansion": 17400, "contraction": 5800, "churned": 23200, "reactivation": 2900, "net_new": 34800, "end_mrr": 1194800, "new_customers": 15, "expansion_customers": 6, "contraction_customers": 2, "churned_customers": 8, "reactivated_customers": 1}]})),
        (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn movements(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    q: Result<Query<RevenueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (a, q) = parse(&state, &caller, ip, q)?;
    let r = state.engine.admin_revenue_movements(&a, q.months).await?;
    Ok(answer(r, q.format))
}

/// Customers, MRR, collected and refunded money per plan, month and currency.
#[utoipa::path(get, path = "/v1/admin/revenue/by-plan", operation_id = "admin_revenue_by_plan", tag = "admin", security(("bearer" = [])), params(RevenueQuery),
    responses((status = 200, description = "one row per month, currency and plan with any figure", content((Report<PlanMonth> = "application/json"), (String = "text/csv")), example = json!({"as_of": "2026-11-29T11:46:14.310Z", "rows": [{"month": "2026-11", "plan": "pro", "currency": "usd", "customers": 412, "mrr": 1194800, "collected": 1180300, "refunded": 2900, "net_revenue": 1177400}]})),
        (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn by_plan(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    q: Result<Query<RevenueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (a, q) = parse(&state, &caller, ip, q)?;
    let r = state.engine.admin_revenue_by_plan(&a, q.months).await?;
    Ok(answer(r, q.format))
}

/// Customer churn and revenue churn rates per month.
#[utoipa::path(get, path = "/v1/admin/revenue/churn", operation_id = "admin_revenue_churn", tag = "admin", security(("bearer" = [])), params(RevenueQuery),
    responses((status = 200, description = "one row per month and currency", content((Report<ChurnMonth> = "application/json"), (String = "text/csv")), example = json!({"as_of": "2026-11-29T11:46:14.310Z", "rows": [{"month": "2026-11", "currency": "usd", "customers_at_start": 400, "churned_customers": 8, "customer_churn_rate": 0.02, "mrr_at_start": 1160000, "churned_mrr": 23200, "contraction_mrr": 5800, "revenue_churn_rate": 0.025}]})),
        (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn churn(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    q: Result<Query<RevenueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (a, q) = parse(&state, &caller, ip, q)?;
    let r = state.engine.admin_revenue_churn(&a, q.months).await?;
    Ok(answer(r, q.format))
}
