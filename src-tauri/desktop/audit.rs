//! The audit log screen.

use super::error::CommandError;
use super::state::Console;
use crate::service::audit::{AuditFilter, AuditPage};
use tauri::State;

impl Console {
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<AuditPage, CommandError> {
        let (engine, actor) = self.staff().await?;
        Ok(engine.admin_audit_page(&actor, filter).await?)
    }
}

/// The audit log, newest first, filtered and paged (`next_cursor` → `cursor`).
#[tauri::command]
#[specta::specta]
pub async fn audit_log(
    filter: AuditFilter,
    console: State<'_, Console>,
) -> Result<AuditPage, CommandError> {
    console.audit_log(&filter).await
}
