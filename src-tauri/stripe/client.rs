//! Outgoing calls to Stripe's API through async-stripe's 1.0 client and request builders, against
//! `TOLLGATE_STRIPE_API_BASE` (Stripe's own by default) so that tests point it at a local mock
//! server. Every creation carries an `Idempotency-Key`; every call has the configured timeout and
//! is made once (a retry is the caller's decision, with the same key).
//!
//! Answers are kept as JSON values rather than async-stripe's typed objects: creations need only
//! an id and a URL, and the reconcile listing reads each object on its own (one unreadable object
//! is a mismatch to report, not a failed listing) and falls back to raw fields that changed
//! between API versions (see `event::invoice_facts`).

use crate::config::Settings;
use crate::domain::SecretString;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::time::Duration;
use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice::ListInvoice;
use stripe_billing::subscription::{ListSubscription, ListSubscriptionStatus};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_core::customer::CreateCustomer;

/// Objects per page of a list (Stripe's maximum).
const PAGE: i64 = 100;

pub struct StripeClient {
    client: stripe::Client,
    base: String,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// What Checkout needs to start a subscription.
pub struct CheckoutRequest<'a> {
    pub customer: &'a str,
    pub price: &'a str,
    pub user_id: &'a str,
    pub plan: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    /// The plan's free trial, for a first subscription.
    pub trial_days: Option<u32>,
    pub idempotency_key: &'a str,
}

/// Stripe's answer as our error: its refusals keep our `stripe_error` code and carry Stripe's
/// own code and type as details; anything worth a later retry is `stripe_unavailable`.
fn stripe_failure(e: StripeError) -> Error {
    match e {
        // Rate limits and Stripe's own failures are worth a later retry; other 4xx are refusals.
        StripeError::Stripe(_, status) if status >= 500 || status == 429 => {
            Error::StripeUnavailable(format!("Stripe answered {status}"))
        }
        StripeError::Stripe(error, status) => Error::StripeError {
            status,
            code: error.code.as_ref().map(|c| c.as_str().to_owned()),
            kind: Some(error.type_.as_str().to_owned()),
            message: error
                .message
                .clone()
                .unwrap_or_else(|| format!("Stripe answered {status}")),
        },
        StripeError::Timeout => Error::StripeUnavailable("timed out".into()),
        StripeError::JSONDeserialize(why) => {
            Error::StripeUnavailable(format!("unreadable answer: {why}"))
        }
        StripeError::ClientError(why) => Error::StripeUnavailable(format!("request failed: {why}")),
        StripeError::ConfigError(why) => Error::Config(format!("Stripe client: {why}")),
    }
}

fn idempotent(key: &str) -> Result<RequestStrategy> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| Error::Internal(anyhow::anyhow!("idempotency key {key:?}: {e}")))
}

/// async-stripe reads answers with miniserde; the rest of Tollgate reads serde_json values.
fn to_json(v: miniserde::json::Value) -> Result<serde_json::Value> {
    serde_json::from_str(&miniserde::json::to_string(&v))
        .map_err(|e| Error::StripeUnavailable(format!("unreadable answer: {e}")))
}

fn str_field(v: &serde_json::Value, field: &str, what: &str) -> Result<String> {
    v.get(field)
        .and_then(|x| x.as_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::StripeUnavailable(format!("the {what} answer has no {field}")))
}

impl StripeClient {
    /// A client from the settings; `stripe_not_configured` without a secret key.
    pub fn from_settings(settings: &Settings) -> Result<StripeClient> {
        let key: SecretString = settings
            .stripe_secret_key
            .clone()
            .filter(|k| !k.expose().trim().is_empty())
            .ok_or(Error::StripeNotConfigured)?;
        // async-stripe appends `v1/…` to the base, which must end with a slash.
        let base = format!("{}/", settings.stripe_api_base.trim_end_matches('/'));
        let client = stripe::ClientBuilder::new(key.expose())
            .url(base.clone())
            .timeout(Duration::from_millis(settings.stripe.timeout_ms.max(1)))
            .request_strategy(RequestStrategy::Once)
            .app_info("tollgate", Some(env!("CARGO_PKG_VERSION").to_owned()), None)
            .build()
            .map_err(stripe_failure)?;
        Ok(StripeClient { client, base })
    }

    /// Sends a request built by one of async-stripe's request types, once, and returns the
    /// answer as JSON.
    async fn send(
        &self,
        request: &impl StripeRequest,
        strategy: RequestStrategy,
    ) -> Result<serde_json::Value> {
        let answer = request
            .build()
            .customize::<miniserde::json::Value>()
            .request_strategy(strategy)
            .send(&self.client)
            .await
            .map_err(stripe_failure)?;
        to_json(answer)
    }

    /// Creates the customer of a user. The idempotency key makes a retry after a lost answer
    /// return the same customer.
    pub async fn create_customer(
        &self,
        user_id: &str,
        email: &str,
        idempotency_key: &str,
    ) -> Result<String> {
        let request = CreateCustomer::new()
            .email(email)
            .metadata(HashMap::from([("user_id".to_owned(), user_id.to_owned())]));
        let v = self.send(&request, idempotent(idempotency_key)?).await?;
        str_field(&v, "id", "customer")
    }

    /// Creates a subscription-mode Checkout Session; returns (session id, url).
    pub async fn create_checkout_session(
        &self,
        r: &CheckoutRequest<'_>,
    ) -> Result<(String, String)> {
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(r.price.to_owned());
        item.quantity = Some(1);
        let mut subscription = CreateCheckoutSessionSubscriptionData::new();
        subscription.metadata = Some(HashMap::from([(
            "user_id".to_owned(),
            r.user_id.to_owned(),
        )]));
        subscription.trial_period_days = r.trial_days.filter(|d| *d > 0);
        let request = CreateCheckoutSession::new()
            .mode(stripe_shared::CheckoutSessionMode::Subscription)
            .customer(r.customer)
            .line_items(vec![item])
            .success_url(r.success_url)
            .cancel_url(r.cancel_url)
            .client_reference_id(r.user_id)
            .metadata(HashMap::from([
                ("user_id".to_owned(), r.user_id.to_owned()),
                ("plan".to_owned(), r.plan.to_owned()),
            ]))
            .subscription_data(subscription);
        let v = self.send(&request, idempotent(r.idempotency_key)?).await?;
        let id = str_field(&v, "id", "checkout session")?;
        let url = str_field(&v, "url", "checkout session")?;
        Ok((id, url))
    }

    /// Creates a billing-portal session; returns its url.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<String> {
        let request = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url);
        let v = self.send(&request, idempotent(idempotency_key)?).await?;
        str_field(&v, "url", "portal session")
    }

    /// Every subscription, whatever its status.
    pub async fn list_subscriptions(&self) -> Result<Vec<serde_json::Value>> {
        self.list_all(|after| {
            let mut request = ListSubscription::new()
                .status(ListSubscriptionStatus::All)
                .limit(PAGE);
            if let Some(id) = after {
                request = request.starting_after(id);
            }
            request
        })
        .await
    }

    /// Every invoice created at or after `since` (Unix seconds).
    pub async fn list_invoices_since(&self, since: i64) -> Result<Vec<serde_json::Value>> {
        self.list_all(|after| {
            let mut request = ListInvoice::new()
                .created(stripe_types::RangeQueryTs::gte(since))
                .limit(PAGE);
            if let Some(id) = after {
                request = request.starting_after(id);
            }
            request
        })
        .await
    }

    /// Every object of a list, following `has_more` page by page (`starting_after` the last id).
    async fn list_all<R: StripeRequest>(
        &self,
        page: impl Fn(Option<&str>) -> R,
    ) -> Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let answer = self
                .send(&page(after.as_deref()), RequestStrategy::Once)
                .await?;
            let serde_json::Value::Array(data) = answer.get("data").cloned().unwrap_or_default()
            else {
                return Err(Error::StripeUnavailable(
                    "unreadable list: no data array".into(),
                ));
            };
            let has_more = answer
                .get("has_more")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            let last = data.last().map(|v| str_field(v, "id", "list item"));
            out.extend(data);
            match (has_more, last) {
                (true, Some(id)) => after = Some(id?),
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_stripes_code_and_type_as_details() {
        let body = r#"{"error": {"code": "resource_missing", "type": "invalid_request_error",
            "message": "No such price: 'price_pro'"}}"#;
        let parsed: stripe_shared::Error = miniserde::json::from_str(body).unwrap();
        match stripe_failure(StripeError::Stripe(parsed.error, 400)) {
            Error::StripeError {
                status,
                code,
                kind,
                message,
            } => {
                assert_eq!(status, 400);
                assert_eq!(code.as_deref(), Some("resource_missing"));
                assert_eq!(kind.as_deref(), Some("invalid_request_error"));
                assert_eq!(message, "No such price: 'price_pro'");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stripes_own_failures_and_timeouts_are_worth_a_retry() {
        let body = r#"{"error": {"type": "api_error", "message": "boom"}}"#;
        let parsed: stripe_shared::Error = miniserde::json::from_str(body).unwrap();
        assert!(matches!(
            stripe_failure(StripeError::Stripe(parsed.error, 500)),
            Error::StripeUnavailable(_)
        ));
        assert!(matches!(
            stripe_failure(StripeError::Timeout),
            Error::StripeUnavailable(_)
        ));
    }

    #[test]
    fn an_empty_idempotency_key_is_refused_before_calling_stripe() {
        assert!(idempotent("").is_err());
        assert!(idempotent("cus-usr_1").is_ok());
    }
}
