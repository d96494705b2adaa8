//! Received Stripe events as operators read them (`tollgate stripe events …`).

use super::Engine;
use crate::error::Result;
use crate::store::{at, stripe};
use chrono::{DateTime, Utc};

/// One stored Stripe event and how applying it went.
#[derive(Debug, Clone, PartialEq)]
pub struct StripeEventRecord {
    pub id: String,
    pub type_: String,
    pub created: DateTime<Utc>,
    pub livemode: bool,
    /// pending, applied, failed or ignored.
    pub status: String,
    pub error: Option<String>,
    pub customer_id: Option<String>,
    pub user_id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
    pub attempts: i64,
    /// The payload as received (a string when it was not JSON).
    pub payload: serde_json::Value,
}

impl From<stripe::EventRow> for StripeEventRecord {
    fn from(e: stripe::EventRow) -> Self {
        let payload = serde_json::from_str::<serde_json::Value>(&e.payload)
            .unwrap_or(serde_json::Value::String(e.payload));
        StripeEventRecord {
            id: e.id,
            type_: e.type_,
            created: at(e.created),
            livemode: e.livemode != 0,
            status: e.status,
            error: e.error,
            customer_id: e.customer_id,
            user_id: e.user_id,
            received_at: at(e.received_at),
            applied_at: e.applied_at.map(at),
            attempts: e.attempts,
            payload,
        }
    }
}

impl Engine {
    /// Stored events, oldest first, optionally of one type and status.
    pub async fn stripe_events(
        &self,
        type_: Option<&str>,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StripeEventRecord>> {
        let rows = stripe::list_events(self.db().read(), type_, status, limit).await?;
        Ok(rows.into_iter().map(StripeEventRecord::from).collect())
    }

    /// One stored event, if it was received.
    pub async fn stripe_event(&self, id: &str) -> Result<Option<StripeEventRecord>> {
        Ok(stripe::event(self.db().read(), id)
            .await?
            .map(StripeEventRecord::from))
    }
}
