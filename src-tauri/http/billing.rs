//! `/v1/billing/*` (Checkout, portal, status) and the Stripe webhook.

use super::auth::Caller;
use super::docs::ErrorBody;
use super::error::ApiError;
use super::json::ApiJson;
use super::AppState;
use crate::domain::Scope;
use crate::stripe::billing::{BillingStatus, CheckoutStarted, PortalOpened};
use crate::stripe::Received;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stripe_webhook))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkout))
        .routes(routes!(portal))
        .routes(routes!(status))
}

#[derive(Deserialize, ToSchema)]
#[schema(examples(json!({"plan": "pro", "success_url": "https://app.example.com/billing/done", "cancel_url": "https://app.example.com/pricing"})))]
pub struct CheckoutBody {
    /// The plan to buy (`pro`).
    plan: String,
    /// Where Stripe sends the user after paying (default from the server's settings).
    success_url: Option<String>,
    /// Where Stripe sends the user who gives up.
    cancel_url: Option<String>,
}

/// Start a Stripe Checkout for a paid plan; send the user to `checkout_url`.
#[utoipa::path(post, path = "/v1/billing/checkout", operation_id = "start_checkout", tag = "billing", security(("bearer" = [])), request_body = CheckoutBody,
    responses((status = 200, body = CheckoutStarted, example = json!({"checkout_url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3", "session_id": "cs_test_a1b2c3"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "already subscribed: use the portal", body = ErrorBody),
        (status = 422, description = "unknown_plan, plan_is_free, plan_has_no_price, validation_failed", body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 502, description = "stripe_unavailable, or Stripe's own error code", body = ErrorBody),
        (status = 503, description = "stripe_not_configured", body = ErrorBody)))]
async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CheckoutBody>,
) -> Result<Json<CheckoutStarted>, ApiError> {
    let p = caller.require_write()?;
    Ok(Json(
        state
            .engine
            .start_checkout(
                &p.user,
                &body.plan,
                body.success_url.as_deref(),
                body.cancel_url.as_deref(),
            )
            .await?,
    ))
}

/// A Stripe billing-portal link (change plan, payment method, cancel).
#[utoipa::path(post, path = "/v1/billing/portal", operation_id = "open_billing_portal", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = PortalOpened, example = json!({"portal_url": "https://billing.stripe.com/p/session/test_YWNjdF8x"})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "no_billing_account", body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn portal(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PortalOpened>, ApiError> {
    let p = caller.require_write()?;
    Ok(Json(state.engine.open_billing_portal(&p.user.id).await?))
}

/// The caller's subscription, invoices and refunds.
#[utoipa::path(get, path = "/v1/billing/status", operation_id = "billing_status", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = BillingStatus, example = json!({"subscription": {"id": "sub_0Fz3kQ9dY2mXb8Lr4TqW1a", "user_id": "usr_0Fz3kQ9dY2mXb8Lr4TqW1a", "plan": "pro@2", "plan_id": "pro", "plan_name": "Pro", "effective_plan": "pro@2", "status": "active", "current_period_start": "2026-11-02T09:15:00Z", "current_period_end": "2026-12-02T09:15:00Z", "cancel_at_period_end": false, "scheduled_plan": null, "trial_end": null, "grace_until": null, "stripe_customer_id": "cus_Qx7Lk2", "stripe_subscription_id": "sub_1QxLk2"}, "has_billing_account": true, "invoices": [{"id": "in_1QxLk2Hn3f", "status": "paid", "amount_due": 2900, "amount_paid": 2900, "currency": "usd", "plan": "pro@2", "billing_reason": "subscription_cycle", "period_start": "2026-11-02T09:15:00Z", "period_end": "2026-12-02T09:15:00Z", "created": "2026-11-02T09:15:03Z", "paid_at": "2026-11-02T09:15:05Z"}], "refunds": []})), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<BillingStatus>, ApiError> {
    let p = caller.require(Scope::Read)?;
    Ok(Json(state.engine.billing_status(&p.user.id).await?))
}

/// Stripe's webhook: verified against `Stripe-Signature`, stored, answered, applied after.
#[utoipa::path(post, path = "/v1/stripe/webhook", operation_id = "stripe_webhook", tag = "billing",
    params(("Stripe-Signature" = String, Header, description = "t=…,v1=… as Stripe signs")),
    request_body(content = String, content_type = "application/json", description = "the event, as Stripe sends it"),
    responses((status = 200, body = Received, example = json!({"id": "evt_1QxLk2Hn3f", "type": "customer.subscription.updated", "duplicate": false})), (status = 400, description = "invalid_signature, invalid_stripe_event", body = ErrorBody),
        (status = 503, description = "stripe_not_configured", body = ErrorBody)))]
async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    Ok(Json(
        state
            .engine
            .receive_stripe_webhook(signature, &body)
            .await?,
    ))
}
