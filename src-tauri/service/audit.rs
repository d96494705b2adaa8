//! The audit log: every state-changing back-office action writes one event, in the same
//! transaction as the change.

use super::Engine;
use crate::error::{Error, Result};
use crate::store::{at, audit, AnyConn};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Who did what to whom, and why; before/after are added by the action itself.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    /// The staff member's user id, or `cli`.
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub reason: Option<&'a str>,
    /// Client IP, or `desktop` / `cli`.
    pub via: Option<&'a str>,
}

impl Draft<'_> {
    pub(crate) async fn write(
        &self,
        tx: &mut AnyConn,
        before: serde_json::Value,
        after: serde_json::Value,
        now_ms: i64,
    ) -> Result<()> {
        audit::insert(
            tx,
            &audit::NewAudit {
                actor: self.actor,
                action: self.action,
                target: self.target,
                before: &before.to_string(),
                after: &after.to_string(),
                reason: self.reason,
                ip: self.via,
                at: now_ms,
            },
        )
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
    pub reason: Option<String>,
    pub via: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

impl Engine {
    /// Audit events, newest first.
    pub async fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let limit = f.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::validation(
                "limit",
                "out_of_range",
                "limit must be between 1 and 1000",
            ));
        }
        let rows = audit::list(
            self.db().read(),
            f.actor.as_deref(),
            f.target.as_deref(),
            f.action.as_deref(),
            f.since.map(crate::store::ms),
            limit,
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: at(r.at),
                actor: r.actor,
                action: r.action,
                target: r.target,
                before: serde_json::from_str(&r.before_state).unwrap_or(serde_json::Value::Null),
                after: serde_json::from_str(&r.after_state).unwrap_or(serde_json::Value::Null),
                reason: r.reason,
                via: r.ip,
            })
            .collect())
    }
}
