//! Receiving Stripe events: a webhook delivery is verified and stored (`pending`) before it is
//! answered, and applying it starts in the background. Replay and import store events through
//! the same step.

use super::event;
use super::signature;
use crate::error::{Error, Result};
use crate::service::Engine;
use crate::store::stripe as db;
use crate::store::AnyConn;
use serde::Serialize;

/// How applying an event ended; the event's stored `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Stored, not applied yet (or waiting for its customer to be linked to a user).
    Pending,
    Applied,
    /// Applying failed for a reason a retry will not fix (see `error`); replay after fixing.
    Failed,
    /// A type Tollgate does not act on.
    Ignored,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Applied => "applied",
            EventStatus::Failed => "failed",
            EventStatus::Ignored => "ignored",
        }
    }
    pub fn parse(s: &str) -> Option<EventStatus> {
        [
            EventStatus::Pending,
            EventStatus::Applied,
            EventStatus::Failed,
            EventStatus::Ignored,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Applied or ignored: applying it again changes nothing.
    pub fn is_done(self) -> bool {
        matches!(self, EventStatus::Applied | EventStatus::Ignored)
    }
}

/// A verified delivery, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Received {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    /// True when this event id was already stored: nothing changed.
    pub duplicate: bool,
}

impl Engine {
    /// Verifies a webhook delivery's signature, stores the event and starts applying it in the
    /// background. Nothing is stored unless the signature is valid; a repeated event id is
    /// acknowledged and changes nothing.
    #[tracing::instrument(skip_all)]
    pub async fn receive_stripe_webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> Result<Received> {
        let secrets = signature::secrets(self.settings().stripe_webhook_secret.as_ref());
        if secrets.is_empty() {
            return Err(Error::StripeNotConfigured);
        }
        signature::verify(signature_header, body, &secrets, self.now().timestamp())
            .map_err(|e| Error::InvalidSignature(e.to_string()))?;
        let payload = std::str::from_utf8(body)
            .map_err(|_| Error::InvalidStripeEvent("the body is not UTF-8".into()))?;
        let env = event::envelope(body).map_err(Error::InvalidStripeEvent)?;
        let mut tx = self.db().begin().await?;
        let inserted = self.store_stripe_event(&mut tx, &env, payload).await?;
        tx.commit().await?;
        tracing::info!(id = %env.id, r#type = %env.type_, duplicate = !inserted, "stripe event received");
        if inserted {
            self.spawn_apply_stripe_event(env.id.clone());
        }
        Ok(Received {
            id: env.id,
            type_: env.type_,
            duplicate: !inserted,
        })
    }

    /// Stores an event as `pending` in the caller's transaction; false when its id is
    /// already stored (then nothing changes).
    pub(crate) async fn store_stripe_event(
        &self,
        conn: &mut AnyConn,
        env: &event::Envelope,
        payload: &str,
    ) -> Result<bool> {
        Ok(db::insert_event(
            conn,
            &db::NewEvent {
                id: &env.id,
                type_: &env.type_,
                created: env.created,
                livemode: env.livemode,
                payload,
                received_at: self.now_ms(),
                customer_id: env.customer_id.as_deref(),
            },
        )
        .await?)
    }

    /// Applies a stored event in the background (the webhook answers before this runs).
    fn spawn_apply_stripe_event(&self, id: String) {
        let engine = self.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.apply_stripe_event(&id).await {
                tracing::warn!(id = %id, error = %e, "stripe event stays pending");
            }
        });
    }
}
