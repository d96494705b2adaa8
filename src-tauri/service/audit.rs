//! The audit log: every state-changing back-office action writes one event, in the same
//! transaction as the change.

use super::Engine;
use crate::domain::AuditId;
use crate::error::{Error, Result};
use crate::store::{at, audit, AnyConn};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct AuditEntry {
    pub id: AuditId,
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

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
#[serde(default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// One page of the audit log, newest first.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "desktop", derive(specta::Type))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Passed back as `cursor` for the next (older) page; `None` on the last page.
    pub next_cursor: Option<String>,
}

fn cursor_encode(e: &AuditEntry) -> String {
    format!("{}.{}", crate::store::ms(e.at), e.id)
}

fn cursor_decode(c: &str) -> Result<(i64, &str)> {
    c.split_once('.')
        .and_then(|(at, id)| Some((at.parse().ok()?, id)))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| {
            Error::validation("cursor", "invalid", "cursor is not one this log gave out")
        })
}

impl Engine {
    /// Audit events, newest first.
    pub async fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        Ok(self.audit_page(f).await?.entries)
    }

    /// Audit events, newest first, one page at a time.
    pub async fn audit_page(&self, f: &AuditFilter) -> Result<AuditPage> {
        let limit = f.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::validation(
                "limit",
                "out_of_range",
                "limit must be between 1 and 1000",
            ));
        }
        let before = f.cursor.as_deref().map(cursor_decode).transpose()?;
        let rows = audit::list_page(
            self.db().read(),
            f.actor.as_deref(),
            f.target.as_deref(),
            f.action.as_deref(),
            f.since.map(crate::store::ms),
            f.until.map(crate::store::ms),
            before,
            limit + 1,
        )
        .await?;
        let more = rows.len() as i64 > limit;
        let entries: Vec<AuditEntry> = rows
            .into_iter()
            .take(limit as usize)
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
            .collect();
        let next_cursor = if more {
            entries.last().map(cursor_encode)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_cursor,
        })
    }
}
