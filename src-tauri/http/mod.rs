//! The public HTTP API (axum). Handlers are a few lines over the service layer.

mod accounts;
mod admin;
mod admin_security;
mod admin_usage;
pub mod auth;
mod billing;
pub mod client_ip;
pub mod docs;
pub mod error;
mod health;
pub mod json;
mod keys;
pub mod metrics;
mod plans;
mod revenue;
mod security;
mod stripe_events;
mod usage;

use crate::service::Engine;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler and middleware shares. axum clones the state for each extractor and
/// layer of a request, so it is one reference count behind one pointer (four counts, each a
/// cache line that both cores write to, before).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub engine: Engine,
    pub metrics: Arc<metrics::Metrics>,
    openapi_json: String,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Routes anyone may call, and routes that need a caller.
fn route_groups() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let public = OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .merge(health::routes())
        .merge(accounts::public_routes())
        .merge(security::public_routes())
        .merge(usage::public_routes())
        .merge(billing::public_routes());
    let authed = OpenApiRouter::new()
        .merge(accounts::routes())
        .merge(security::routes())
        .merge(keys::routes())
        .merge(usage::routes())
        .merge(billing::routes())
        .merge(admin::routes())
        .merge(admin_security::routes())
        .merge(plans::routes())
        .merge(admin_usage::routes())
        .merge(revenue::routes())
        .merge(stripe_events::routes());
    (public, authed)
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (public, authed) = route_groups();
    let mut doc = public.merge(authed).into_openapi();
    docs::describe_error_answers(&mut doc);
    doc
}

/// The whole API with its middleware, as served by `tollgate serve`, the desktop app and tests.
pub fn router(engine: Engine) -> Router {
    router_with_metrics(engine, Arc::default())
}

/// [`router`] counting into `metrics`, so that its owner (the desktop console) can read them.
pub fn router_with_metrics(engine: Engine, metrics: Arc<metrics::Metrics>) -> Router {
    let settings = engine.settings().http.clone();
    let doc = openapi().to_json().unwrap_or_else(|_| "{}".into());
    let state = AppState(Arc::new(Shared {
        engine,
        metrics,
        openapi_json: doc,
    }));
    let (public, authed) = route_groups();
    let authed = authed.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_caller,
    ));
    let (api, _) = public.merge(authed).split_for_parts();
    let routes = api
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs::page))
        .route("/docs/scalar.js", get(docs::renderer))
        .merge(security::pages())
        .route("/health/live", get(health::live))
        .route_layer(middleware::from_fn(metrics::note_route))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state.clone());

    let cors = if settings.cors_origins.is_empty() {
        CorsLayer::new()
    } else if settings.cors_origins.iter().any(|o| o == "*") {
        CorsLayer::permissive()
    } else {
        let origins: Vec<HeaderValue> = settings
            .cors_origins
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                REQUEST_ID.clone(),
            ])
    };
    let hsts = settings
        .hsts
        .then(|| HeaderValue::from_static("max-age=63072000; includeSubDomains"));

    routes.layer(
        ServiceBuilder::new()
            .layer(tower_http::compression::CompressionLayer::new())
            .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                // The matched route is known only after routing: `metrics::note_route` records it.
                let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %req.method(), route = tracing::field::Empty, request_id = %id)
            }))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
            .layer(middleware::from_fn_with_state(state, render_errors))
            .layer(SetResponseHeaderLayer::overriding(
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                HeaderName::from_static("referrer-policy"),
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static("strict-transport-security"),
                move |_: &Response| hsts.clone(),
            ))
            .layer(cors)
            .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(settings.timeout_secs)))
            .layer(axum::extract::DefaultBodyLimit::max(settings.body_limit_bytes)),
    )
}

async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        state.openapi_json.as_str().to_owned(),
    )
        .into_response()
}

/// Writes error bodies (with the request id) and records the facts behind every refusal
/// (401, 402, 403, 429) so that support can explain it later.
async fn render_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|r| r.header_value().to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let route = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    let status = res.status().as_u16();
    if let Some(payload) = res.extensions().get::<error::ErrorPayload>() {
        state.metrics.record_error(&payload.code);
    }
    if matches!(status, 401 | 402 | 403 | 429) {
        let ctx = res
            .extensions_mut()
            .remove::<auth::DecisionContext>()
            .unwrap_or_default();
        let details = res
            .extensions_mut()
            .remove::<crate::service::decisions::RefusalDetail>()
            .unwrap_or_default();
        if let Some(payload) = res.extensions().get::<error::ErrorPayload>() {
            let refusal = crate::service::decisions::Refusal {
                request_id: id.clone(),
                route,
                status,
                code: payload.code.clone(),
                message: payload.message.clone(),
                details,
                user_id: ctx.user_id,
                key_prefix: ctx.key_prefix,
                plan_version: ctx.plan_version,
                subscription_status: ctx.subscription_status,
                limiter: ctx.limiter.and_then(|l| serde_json::to_value(l).ok()),
            };
            let engine = state.engine.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.record_refusal(refusal).await {
                    tracing::warn!(error = %e, "could not record a refusal");
                }
            });
        }
    }
    error::render(res, &id)
}

async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "route_not_found",
        "no such route",
    )
}

/// Serves the API until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    engine: Engine,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_metrics(engine, listener, shutdown, Arc::default()).await
}

/// [`serve`] counting into `metrics`.
pub async fn serve_with_metrics(
    engine: Engine,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    metrics: Arc<metrics::Metrics>,
) -> std::io::Result<()> {
    let app =
        router_with_metrics(engine, metrics).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
