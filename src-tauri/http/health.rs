use super::AppState;
use crate::service::readiness::Readiness;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    status: &'static str,
    /// `ok` or `unreachable`.
    database: &'static str,
}

/// 200 when the database answers, 503 when it does not.
#[utoipa::path(get, path = "/health", operation_id = "get_health", tag = "system",
    responses((status = 200, body = Health, example = json!({"status": "ok", "database": "ok"})), (status = 503, description = "the database is unreachable", body = Health, example = json!({"status": "unavailable", "database": "unreachable"}))))]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    match state.engine.ping_database().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                database: "ok",
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    database: "unreachable",
                }),
            )
        }
    }
}

/// Readiness for load balancers: the database answers and has every migration.
///
/// 200 while the database answers and has every migration this build embeds, 503 otherwise.
/// `redis` tells where rate limits are counted (`ok`, `degraded`, `off`) and never makes the
/// instance unavailable: one whose Redis is away limits locally and still serves.
#[utoipa::path(get, path = "/ready", operation_id = "get_ready", tag = "system",
    responses(
        (status = 200, description = "send traffic to this instance", body = Readiness, examples(
            ("shared" = (summary = "rate limits shared through Redis", value = json!({"status": "ok", "database": "ok", "migrations": "ok", "redis": "ok"}))),
            ("degraded" = (summary = "Redis away: rate limits counted by this instance alone", value = json!({"status": "ok", "database": "ok", "migrations": "ok", "redis": "degraded"}))),
            ("alone" = (summary = "no Redis configured", value = json!({"status": "ok", "database": "ok", "migrations": "ok", "redis": "off"}))))),
        (status = 503, description = "the database is unreachable or lacks migrations", body = Readiness, examples(
            ("unreachable" = (summary = "the database does not answer", value = json!({"status": "unavailable", "database": "unreachable", "migrations": "unknown", "redis": "ok"}))),
            ("pending" = (summary = "run `tollgate migrate`", value = json!({"status": "unavailable", "database": "ok", "migrations": "pending", "redis": "off"})))))))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let readiness = state.engine.readiness().await;
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

/// Liveness: the process answers HTTP, and nothing else is checked (no database, no caller).
/// Also the reference the metering benchmark measures the API's own routes against.
pub(super) async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Prometheus metrics.
///
/// `http_server_request_duration_seconds` (histogram by method, route template and status),
/// `tollgate_meter_decisions_total` (by metric and decision), `tollgate_http_errors_total` (by
/// error code), database pool and metering write-queue gauges, build info and start time.
#[utoipa::path(get, path = "/metrics", operation_id = "get_metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
async fn metrics(state: State<AppState>) -> impl axum::response::IntoResponse {
    super::metrics::serve(state).await
}
