//! Outgoing calls to Stripe's API: form-encoded, Bearer secret key, an `Idempotency-Key` on
//! every creation, against `TOLLGATE_STRIPE_API_BASE` (Stripe's own by default) so that tests
//! point it at a local mock server. Answers are read as JSON; lists page with `starting_after`.

use crate::config::Settings;
use crate::domain::SecretString;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::sync::OnceLock;
use std::time::Duration;

/// The API version whose object shapes Tollgate reads (the webhook endpoint is pinned to it).
pub const API_VERSION: &str = "2026-07-29.dahlia";

/// Form parameters in Stripe's bracket notation: `metadata[user_id]`, `line_items[0][price]`.
pub type Form = Vec<(String, String)>;

pub struct StripeClient {
    base: String,
    key: SecretString,
    timeout: Duration,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with default TLS settings")
    })
}

#[derive(Deserialize)]
struct ErrorBody {
    error: StripeErrorBody,
}

#[derive(Deserialize)]
struct StripeErrorBody {
    code: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct ListPage {
    data: Vec<serde_json::Value>,
    #[serde(default)]
    has_more: bool,
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

impl StripeClient {
    /// A client from the settings; `stripe_not_configured` without a secret key.
    pub fn from_settings(settings: &Settings) -> Result<StripeClient> {
        let key = settings
            .stripe_secret_key
            .clone()
            .filter(|k| !k.expose().trim().is_empty())
            .ok_or(Error::StripeNotConfigured)?;
        Ok(StripeClient {
            base: settings.stripe_api_base.trim_end_matches('/').to_owned(),
            key,
            timeout: Duration::from_millis(settings.stripe.timeout_ms.max(1)),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<serde_json::Value> {
        let res = req
            .bearer_auth(self.key.expose())
            .header("Stripe-Version", API_VERSION)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| {
                Error::StripeUnavailable(if e.is_timeout() {
                    "timed out".into()
                } else {
                    format!("request failed: {}", e.without_url())
                })
            })?;
        let status = res.status();
        let body = res
            .bytes()
            .await
            .map_err(|e| Error::StripeUnavailable(format!("reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| Error::StripeUnavailable(format!("unreadable answer: {e}")));
        }
        // Rate limits and Stripe's own failures are worth a later retry; other 4xx are refusals.
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Error::StripeUnavailable(format!(
                "Stripe answered {status}"
            )));
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(ErrorBody { error }) => Err(Error::StripeError {
                status: status.as_u16(),
                code: error.code,
                kind: error.kind,
                message: error
                    .message
                    .unwrap_or_else(|| format!("Stripe answered {status}")),
            }),
            Err(_) => Err(Error::StripeUnavailable(format!(
                "Stripe answered {status} without an error body"
            ))),
        }
    }

    async fn post(
        &self,
        path: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<serde_json::Value> {
        let req = http()
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", idempotency_key)
            .form(form);
        self.send(req).await
    }

    async fn get(&self, path: &str, query: &Form) -> Result<serde_json::Value> {
        self.send(http().get(format!("{}{path}", self.base)).query(query))
            .await
    }

    fn id_of(v: &serde_json::Value, what: &str) -> Result<String> {
        v.get("id")
            .and_then(|x| x.as_str())
            .map(str::to_owned)
            .ok_or_else(|| Error::StripeUnavailable(format!("the {what} answer has no id")))
    }

    /// Creates the customer of a user. The idempotency key makes a retry after a lost answer
    /// return the same customer.
    pub async fn create_customer(
        &self,
        user_id: &str,
        email: &str,
        idempotency_key: &str,
    ) -> Result<String> {
        let form = vec![
            ("email".to_owned(), email.to_owned()),
            ("metadata[user_id]".to_owned(), user_id.to_owned()),
        ];
        let v = self.post("/v1/customers", &form, idempotency_key).await?;
        Self::id_of(&v, "customer")
    }

    /// Creates a subscription-mode Checkout Session; returns (session id, url).
    pub async fn create_checkout_session(
        &self,
        r: &CheckoutRequest<'_>,
    ) -> Result<(String, String)> {
        let mut form: Form = [
            ("mode", "subscription"),
            ("customer", r.customer),
            ("line_items[0][price]", r.price),
            ("line_items[0][quantity]", "1"),
            ("success_url", r.success_url),
            ("cancel_url", r.cancel_url),
            ("client_reference_id", r.user_id),
            ("metadata[user_id]", r.user_id),
            ("metadata[plan]", r.plan),
            ("subscription_data[metadata][user_id]", r.user_id),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(days) = r.trial_days.filter(|d| *d > 0) {
            form.push((
                "subscription_data[trial_period_days]".into(),
                days.to_string(),
            ));
        }
        let v = self
            .post("/v1/checkout/sessions", &form, r.idempotency_key)
            .await?;
        let id = Self::id_of(&v, "checkout session")?;
        let url = v
            .get("url")
            .and_then(|x| x.as_str())
            .ok_or_else(|| Error::StripeUnavailable("the checkout session has no url".into()))?;
        Ok((id, url.to_owned()))
    }

    /// Creates a billing-portal session; returns its url.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<String> {
        let form = vec![
            ("customer".to_owned(), customer.to_owned()),
            ("return_url".to_owned(), return_url.to_owned()),
        ];
        let v = self
            .post("/v1/billing_portal/sessions", &form, idempotency_key)
            .await?;
        v.get("url")
            .and_then(|x| x.as_str())
            .map(str::to_owned)
            .ok_or_else(|| Error::StripeUnavailable("the portal session has no url".into()))
    }

    /// Every object of a list endpoint, following `has_more` page by page.
    pub async fn list_all(&self, path: &str, query: &Form) -> Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = query.clone();
            q.push(("limit".into(), "100".into()));
            if let Some(a) = &after {
                q.push(("starting_after".into(), a.clone()));
            }
            let page: ListPage = serde_json::from_value(self.get(path, &q).await?)
                .map_err(|e| Error::StripeUnavailable(format!("unreadable list: {e}")))?;
            let last = page.data.last().map(|v| Self::id_of(v, "list item"));
            out.extend(page.data);
            match (page.has_more, last) {
                (true, Some(id)) => after = Some(id?),
                _ => return Ok(out),
            }
        }
    }
}
