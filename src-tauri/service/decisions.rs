//! The facts behind every refused request, kept by request id so that support can later
//! explain exactly why a customer was refused.

use super::Engine;
use crate::error::{Error, Result};
use crate::store::{at, usage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Refusal {
    pub request_id: String,
    pub route: String,
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The error's structured details (limit, used, window, …).
    pub details: serde_json::Value,
    pub user_id: Option<String>,
    pub key_prefix: Option<String>,
    pub plan_version: Option<String>,
    pub subscription_status: Option<String>,
    /// The rate limiter's state when the request came in.
    pub limiter: Option<serde_json::Value>,
}

/// A recorded refusal, as support reads it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct Decision {
    pub request_id: String,
    pub at: DateTime<Utc>,
    pub code: String,
    pub status: i64,
    pub route: Option<String>,
    pub user_id: Option<String>,
    pub key_prefix: Option<String>,
    #[schema(value_type = Object)]
    pub facts: serde_json::Value,
}

impl Engine {
    pub async fn record_refusal(&self, r: Refusal) -> Result<()> {
        if r.request_id.is_empty() {
            return Ok(());
        }
        let facts = serde_json::to_string(&r).map_err(|e| Error::Internal(e.into()))?;
        let mut tx = self.db().begin().await?;
        usage::insert_decision(
            &mut tx,
            &r.request_id,
            r.user_id.as_deref(),
            r.key_prefix.as_deref(),
            &r.code,
            i64::from(r.status),
            Some(&r.route),
            &facts,
            self.now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn decision(&self, request_id: &str) -> Result<Decision> {
        let row = usage::decision(self.db().read(), request_id)
            .await?
            .ok_or(Error::NotFound("decision"))?;
        Ok(Decision::from(row))
    }

    /// A user's latest refusals, newest first.
    pub async fn recent_decisions(
        &self,
        user: &crate::domain::UserId,
        limit: i64,
    ) -> Result<Vec<Decision>> {
        let rows = usage::recent_decisions(self.db().read(), user.as_str(), limit).await?;
        Ok(rows.into_iter().map(Decision::from).collect())
    }
}

impl From<usage::DecisionRow> for Decision {
    fn from(row: usage::DecisionRow) -> Self {
        Decision {
            request_id: row.request_id,
            at: at(row.at),
            code: row.code,
            status: row.status,
            route: row.route,
            user_id: row.user_id,
            key_prefix: row.key_prefix,
            facts: serde_json::from_str(&row.facts).unwrap_or(serde_json::Value::Null),
        }
    }
}
