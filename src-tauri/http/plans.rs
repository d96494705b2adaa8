//! `/v1/admin/plans/*` (the plans workbench) and `/v1/admin/traffic` (what this server has been
//! answering): thin handlers over the back-office service.

use super::admin::actor;
use super::auth::Caller;
use super::client_ip::ClientIp;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::json::ApiJson;
use super::AppState;
use crate::service::catalog::{ApplyOutcome, PlanChange};
use crate::service::plans_admin::{Migration, PlanCatalog, PlanCheck, SimulationReport};
use crate::service::traffic::Traffic;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(catalog))
        .routes(routes!(check))
        .routes(routes!(diff))
        .routes(routes!(simulate))
        .routes(routes!(apply))
        .routes(routes!(migrate))
        .routes(routes!(traffic))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"source": "default_plan = \"free\"\nmetrics = [\"videos\"]\n..."})))]
pub struct PlanFile {
    /// The plan file's TOML text.
    source: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"source": "default_plan = \"free\"\nmetrics = [\"videos\"]\n...", "events": "{\"user\": \"u1\", \"plan\": \"free\", \"metric\": \"videos\", \"amount\": 1, \"at\": \"2026-01-01T09:00:00Z\"}\n"})))]
pub struct PlanSimulation {
    /// The plan file's TOML text.
    source: String,
    /// Usage attempts as JSON lines: `{"user", "plan", "metric", "amount", "at"}`.
    events: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"source": "default_plan = \"free\"\nmetrics = [\"videos\"]\n...", "reason": "spring pricing"})))]
pub struct PlanApply {
    /// The plan file's TOML text.
    source: String,
    reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"from": "pro@1", "to": "pro@2", "reason": "grandfathering ends"})))]
pub struct PlanMigration {
    /// `pro@1`.
    from: String,
    /// `pro@2`.
    to: String,
    reason: Option<String>,
}

/// The current catalog and every plan version with its subscribers.
#[utoipa::path(get, path = "/v1/admin/plans", operation_id = "admin_plan_catalog", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = PlanCatalog, example = json!({"catalog_version": 3, "default_plan": "free", "metrics": ["videos", "tokens"], "versions": [{"id": "plv_0Fz3kQ9dY2mXb8Lr4TqW1a", "plan_id": "pro", "version": 2, "label": "pro@2", "name": "Pro", "price": 2900, "currency": "usd", "interval": "month", "current": true, "is_default": false, "subscribers": 412}, {"id": "plv_0Fz3kQ9dY2mXb8Lr4TqW0b", "plan_id": "free", "version": 1, "label": "free@1", "name": "Free", "price": 0, "currency": "usd", "interval": "month", "current": true, "is_default": true, "subscribers": 9120}]})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn catalog(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
) -> Result<Json<PlanCatalog>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    Ok(Json(state.engine.admin_plan_catalog(&a).await?))
}

/// `plans check`: every problem of a plan file with its line, column and text.
#[utoipa::path(post, path = "/v1/admin/plans/check", operation_id = "admin_check_plans", tag = "admin", security(("bearer" = [])), request_body = PlanFile,
    responses((status = 200, body = PlanCheck, example = json!({"ok": false, "plans": ["free", "pro"], "metrics": ["videos"], "problems": [{"line": 7, "column": 9, "message": "quota for `vidoes`: the catalog declares no such metric (declared: videos)", "source_line": "vidoes = { limit = 3, per = \"day\" }"}]})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn check(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(b): ApiJson<PlanFile>,
) -> Result<Json<PlanCheck>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    Ok(Json(state.engine.admin_check_plans(&a, &b.source)?))
}

/// `plans diff`: what applying a file would change, with the subscribers each change touches.
#[utoipa::path(post, path = "/v1/admin/plans/diff", operation_id = "admin_diff_plans", tag = "admin", security(("bearer" = [])), request_body = PlanFile,
    responses((status = 200, body = Vec<PlanChange>, example = json!([{"plan": "pro", "change": "videos: 100 per day -> 200 per day", "subscribers": 412}, {"plan": "team", "change": "new plan", "subscribers": 0}])), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn diff(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(b): ApiJson<PlanFile>,
) -> Result<Json<Vec<PlanChange>>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    Ok(Json(state.engine.admin_diff_plans(&a, &b.source).await?))
}

/// `plans simulate`: usage attempts replayed against a plan file with a simulated clock.
#[utoipa::path(post, path = "/v1/admin/plans/simulate", operation_id = "admin_simulate_plans", tag = "admin", security(("bearer" = [])), request_body = PlanSimulation,
    responses((status = 200, body = SimulationReport, example = json!({"outcomes": [{"line": 1, "user": "u1", "plan": "free", "metric": "videos", "amount": 1, "at": "2026-01-01T09:00:00Z", "allowed": true, "reason": null, "used": 1, "limit": 3, "credits": null}], "periods": [{"user": "u1", "metric": "videos", "plan": "free", "period_start": "2026-01-01T00:00:00Z", "period_end": "2026-01-02T00:00:00Z", "allowed": 1, "denied": 0, "used": 1, "limit": 3, "credits": null, "denials": {}}], "table": "user  metric  period      allowed  denied  used/limit\nu1    videos  2026-01-01  1        0       1/3\n"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn simulate(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(b): ApiJson<PlanSimulation>,
) -> Result<Json<SimulationReport>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    Ok(Json(
        state
            .engine
            .admin_simulate_plans(&a, &b.source, &b.events)?,
    ))
}

/// Publishes a plan file as the new catalog (admins; audited).
#[utoipa::path(post, path = "/v1/admin/plans/apply", operation_id = "admin_apply_plans", tag = "admin", security(("bearer" = [])), request_body = PlanApply,
    responses((status = 200, body = ApplyOutcome, example = json!({"catalog_version": 4, "changed": true, "new_plan_versions": ["pro@3"]})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(b): ApiJson<PlanApply>,
) -> Result<Json<ApplyOutcome>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    Ok(Json(
        state
            .engine
            .admin_apply_plans(&a, &b.source, b.reason.as_deref())
            .await?,
    ))
}

/// Moves every subscriber of one plan version to another (admins; audited).
#[utoipa::path(post, path = "/v1/admin/plans/migrate", operation_id = "admin_migrate_plans", tag = "admin", security(("bearer" = [])), request_body = PlanMigration,
    responses((status = 200, body = Migration, example = json!({"from": "pro@1", "to": "pro@2", "moved": 37})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn migrate(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    ApiJson(b): ApiJson<PlanMigration>,
) -> Result<Json<Migration>, ApiError> {
    let a = actor(&state, &caller, ip, true)?;
    Ok(Json(
        state
            .engine
            .admin_migrate_plans(&a, &b.from, &b.to, b.reason.as_deref())
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrafficQuery {
    /// Refusals to list, 1 to 200; 20 by default.
    #[param(minimum = 1, maximum = 200, default = 20)]
    limit: Option<i64>,
}

/// This server's traffic and latest refusals.
///
/// Requests per second and error counts (as `/metrics` counts them) with the latest refusals.
#[utoipa::path(get, path = "/v1/admin/traffic", operation_id = "admin_traffic", tag = "admin", security(("bearer" = [])), params(TrafficQuery),
    responses((status = 200, body = Traffic, example = json!({"requests": 18240, "requests_per_second": 12.4, "errors_by_status": [{"key": "401", "count": 17}, {"key": "429", "count": 318}], "errors_by_code": [{"key": "quota_exceeded", "count": 318}, {"key": "invalid_token", "count": 17}], "latest_refusals": [{"request_id": "01938a2f-6c1e-7d3a-9b7e-2f4c8a1d5e60", "at": "2026-11-29T11:46:14.310Z", "code": "quota_exceeded", "status": 429, "route": "/v1/meter", "user_id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "key_prefix": "sk_live_3kT9", "facts": {"metric": "videos", "limit": 3, "used": 3, "resets_at": "2026-11-30T00:00:00Z"}}]})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn traffic(
    State(state): State<AppState>,
    caller: Caller,
    ip: ClientIp,
    Query(q): Query<TrafficQuery>,
) -> Result<Json<Traffic>, ApiError> {
    let a = actor(&state, &caller, ip, false)?;
    Ok(Json(
        state
            .engine
            .admin_traffic(&a, state.metrics.counts(), q.limit)
            .await?,
    ))
}
